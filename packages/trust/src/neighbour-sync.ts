/**
 * Sync with new neighbours: a neighbour that identifies itself is marked authenticated in the
 * engine and is pushed the revocations and this node's own attestations (bounded, and only a few
 * syncs at a time).
 */
import type { Logger, PeerInfo } from '@kos-mesh/interface'
import { errName } from './intake.js'
import type { StatementSpreader } from './spread.js'
import type { TrustGraphEngine } from './types.js'

/** Syncs with new neighbours in flight at once (more are skipped: the neighbour syncs with us too). */
const MAX_CONCURRENT_SYNCS = 32

/** What syncing counts (a view of the service's counters). */
export interface SyncCounters {
  syncs: number
}

/** The syncs with new neighbours of one service: one per neighbour at a time, at most MAX_CONCURRENT_SYNCS at once. */
export class NeighbourSync {
  /** Neighbours (DIDs) a sync is in flight with. */
  readonly #syncing = new Set<string>()

  constructor(
    private readonly engine: TrustGraphEngine,
    private readonly spreader: StatementSpreader,
    private readonly self: string,
    /** Most statements pushed per sync; 0: no sync. */
    private readonly syncOnConnect: number,
    private readonly counters: SyncCounters,
    private readonly log: Logger,
  ) {}

  /**
   * A neighbour identified itself: marks it authenticated in the engine and, within the bounds,
   * starts a sync with it in the background (aborted by `signal`).
   */
  identified(peer: PeerInfo, signal: AbortSignal): void {
    if (peer.did === this.self) return
    try {
      this.engine.markAuthenticated(peer.did)
    } catch (err) {
      this.log.debug('markAuthenticated failed', { peer: peer.did, err: errName(err) })
    }
    const authority = peer.authority
    if (this.syncOnConnect === 0 || authority === undefined) return
    if (this.#syncing.has(peer.did) || this.#syncing.size >= MAX_CONCURRENT_SYNCS) return
    this.#syncing.add(peer.did)
    this.counters.syncs++
    void this.#sync(authority, signal)
      .catch((err: unknown) => this.log.debug('sync with a new neighbour failed', { peer: peer.did, err: errName(err) }))
      .finally(() => this.#syncing.delete(peer.did))
  }

  /** Pushes the revocations and this node's own attestations to a new neighbour (bounded). */
  async #sync(authority: string, signal: AbortSignal): Promise<void> {
    const revocations = this.engine.statements({ kind: 'revocation', limit: this.syncOnConnect })
    const room = this.syncOnConnect - revocations.length
    const own = room > 0 ? this.engine.statements({ issuer: this.self, kind: 'attestation', limit: room }) : []
    if (revocations.length + own.length === 0) return
    await this.spreader.pushTo(authority, [...revocations, ...own], signal)
  }

  /** Forgets the syncs in flight (the service stopped: their signal is aborted). */
  clear(): void {
    this.#syncing.clear()
  }
}
