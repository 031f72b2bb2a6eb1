/**
 * Flooding: this node's new statements go to every identified neighbour but the one they came
 * from, revocations first and at high priority, deltas at low priority, in batches a message can
 * carry. A statement is sent at most once per neighbour because the engine recognises duplicates,
 * so a flood ends.
 */
import { KLPMessageType, MessagePriority, type Logger, type MessageRouter, type PeerInfo } from '@kos-mesh/interface'
import { TRUST_PATH, batchStatements, trustPayloadValue, type TrustProtocolLimits } from './protocol.js'
import type { SignedStatement } from './types.js'

/** What the spreader counts (a view of the service's counters). */
export interface SpreadCounters {
  sent: number
  sendFailures: number
}

export class StatementSpreader {
  constructor(
    private readonly router: MessageRouter,
    private readonly self: string,
    private readonly limits: TrustProtocolLimits,
    private readonly counters: SpreadCounters,
    private readonly log: Logger,
  ) {}

  /** Identified neighbours (one entry per DID), this node and `except` left out. */
  neighbours(except: string | undefined): Array<PeerInfo & { authority: string }> {
    const seen = new Set<string>()
    const out: Array<PeerInfo & { authority: string }> = []
    for (const p of this.router.peers()) {
      if (p.authority === undefined || p.did === except || p.did === this.self || seen.has(p.did)) continue
      seen.add(p.did)
      out.push(p as PeerInfo & { authority: string })
    }
    return out
  }

  /** Sends statements to every neighbour but `except`: revocations first, by message type, in batches. */
  async spread(statements: readonly SignedStatement[], except: string | undefined, signal: AbortSignal): Promise<void> {
    const peers = this.neighbours(except)
    if (peers.length === 0) return
    await Promise.all(peers.map((p) => this.pushTo(p.authority, statements, signal)))
  }

  /**
   * Hands statements to the router's broadcast (BROADCAST_ANNOUNCE to `klp://<self>/trust`), in
   * batches, revocations first and at high priority: the router's broadcast strategy spreads them.
   */
  async broadcast(statements: readonly SignedStatement[], signal: AbortSignal): Promise<void> {
    const revocations: Uint8Array[] = []
    const others: Uint8Array[] = []
    for (const s of statements) (s.body.kind === 'revocation' ? revocations : others).push(s.bytes)
    for (const [list, priority] of [[revocations, MessagePriority.HIGH], [others, MessagePriority.NORMAL]] as const) {
      for (const batch of batchStatements(list, this.limits)) {
        try {
          await this.router.broadcast({ target: `klp://${this.router.authority}${TRUST_PATH}`, sourcePath: TRUST_PATH, priority, data: trustPayloadValue({ op: 'push', statements: batch }, this.limits) }, { signal })
          this.counters.sent++
        } catch (err) {
          this.counters.sendFailures++
          this.log.debug('a trust broadcast was not sent', { err: errName(err) })
        }
      }
    }
  }

  async pushTo(authority: string, statements: readonly SignedStatement[], signal: AbortSignal): Promise<void> {
    const revocations: Uint8Array[] = []
    const attestations: Uint8Array[] = []
    const deltas: Uint8Array[] = []
    for (const s of statements) (s.body.kind === 'revocation' ? revocations : s.body.kind === 'delta' ? deltas : attestations).push(s.bytes)
    const sends: Array<Promise<void>> = []
    for (const batch of batchStatements([...revocations, ...attestations], this.limits)) {
      const priority = revocations.includes(batch[0] as Uint8Array) ? MessagePriority.HIGH : MessagePriority.NORMAL
      sends.push(this.send(authority, KLPMessageType.TRUST_ATTESTATION, batch, priority, signal))
    }
    for (const batch of batchStatements(deltas, this.limits)) sends.push(this.send(authority, KLPMessageType.REPUTATION_DELTA, batch, MessagePriority.LOW, signal))
    await Promise.all(sends)
  }

  private async send(authority: string, type: KLPMessageType, statements: Uint8Array[], priority: MessagePriority, signal: AbortSignal): Promise<void> {
    try {
      await this.router.send(
        { type, target: `klp://${authority}${TRUST_PATH}`, sourcePath: TRUST_PATH, priority, data: trustPayloadValue({ op: 'push', statements }, this.limits) },
        { signal },
      )
      this.counters.sent++
    } catch (err) {
      this.counters.sendFailures++
      this.log.debug('a trust push was not sent', { to: authority, err: errName(err) })
    }
  }
}

function errName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err
}
