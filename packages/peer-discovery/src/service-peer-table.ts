/**
 * The discovery service's outbound peer-table exchange: `get_peers` requests to one peer (announcing
 * this node's record, sending the `known` keys, measuring the RTT) and the refresh round that
 * rotates through connected peers.
 */
import { DiscoveryMethod, KLPMessageType, MessagePriority, throwIfAborted } from '@kos-mesh/interface'
import type { PeerInfo } from '@kos-mesh/interface'
import { UnexpectedResponseError } from './errors.js'
import { KNOWN_KEY_BYTES, discoveryPayloadValue, parseDiscoveryPayload } from './protocol.js'
import type { MergeResult } from './registry-types.js'
import { DISCOVERY_PATH, errName } from './service-util.js'
import type { DiscoveryContext } from './service-util.js'
import { didOfKeyId } from './validate.js'

/** Pulls peer tables from connected peers into the registry. */
export class PeerTables {
  readonly #d: DiscoveryContext
  readonly #requestTimeoutMs: number
  /** When each peer was last asked for its table (rotation of refresh rounds); bounded by maxPeers. */
  readonly #lastAsked = new Map<string, number>()
  #askSeq = 0

  constructor(discovery: DiscoveryContext, requestTimeoutMs: number) {
    this.#d = discovery
    this.#requestTimeoutMs = requestTimeoutMs
  }

  /** Asks `authority` for its peer table (announcing our record), merges it, measures the RTT. */
  async pullFrom(peer: PeerInfo, method: DiscoveryMethod, signal: AbortSignal, query: { capabilities?: string[]; max?: number } = {}): Promise<MergeResult> {
    if (peer.authority === undefined) throw new UnexpectedResponseError(`expected the authority of ${peer.did.slice(0, 80)} to be known, got none`)
    const record = this.#d.localRecord()?.bytes
    this.#lastAsked.delete(peer.did)
    if (this.#lastAsked.size >= this.#d.registry.maxPeers) {
      const first = this.#lastAsked.keys().next()
      if (first.done !== true) this.#lastAsked.delete(first.value)
    }
    this.#lastAsked.set(peer.did, ++this.#askSeq)
    const t0 = this.#d.clock.now()
    const response = await this.#d.router.request(
      {
        type: KLPMessageType.PEER_DISCOVERY,
        target: `klp://${peer.authority}${DISCOVERY_PATH}`,
        sourcePath: DISCOVERY_PATH,
        priority: MessagePriority.LOW,
        data: discoveryPayloadValue({
          action: 'get_peers',
          ...(record ? { record } : {}),
          max: query.max ?? this.#d.limits.maxRecordsPerMessage,
          ...(query.capabilities ? { capabilities: query.capabilities } : {}),
          ...(this.#d.registry.size > 0 ? { known: this.#d.registry.knownKeys(this.#d.limits.maxKnown, KNOWN_KEY_BYTES) } : {}),
        }),
      },
      { signal, timeoutMs: this.#requestTimeoutMs },
    )
    const rtt = this.#d.clock.now() - t0
    if (response.type !== KLPMessageType.PEER_DISCOVERY || didOfKeyId(response.signer) !== peer.did) {
      throw new UnexpectedResponseError(`expected a PEER_DISCOVERY response from ${peer.did.slice(0, 80)}, got ${response.type} from ${response.signer.slice(0, 80)}`)
    }
    let payload
    try {
      payload = parseDiscoveryPayload(response.payload.data, this.#d.limits)
    } catch (err) {
      this.#d.counters.invalidMessages++
      throw new UnexpectedResponseError(`expected a valid peers response, got an invalid one (${errName(err)})`, { cause: err })
    }
    if (payload.action !== 'peers') throw new UnexpectedResponseError(`expected action peers, got ${payload.action}`)
    const result = await this.#d.registry.merge(payload.records, { source: peer.did, method, signal })
    this.#d.registry.touch(peer.did)
    this.#d.registry.setLatency(peer.did, rtt)
    return result
  }

  /**
   * The peer-table part of a refresh round: asks up to `fanout` connected peers (with a known
   * authority) for their tables, those asked longest ago first, and sums what the merges did.
   */
  async pullRound(fanout: number, signal: AbortSignal): Promise<MergeResult> {
    const total: MergeResult = { added: 0, updated: 0, unchanged: 0, rejected: 0, reasons: {} }
    const connected = this.#d.router.peers().filter((p) => p.authority !== undefined)
    // Rotate through connected peers: the ones asked longest ago (or never) first.
    connected.sort((a, b) => (this.#lastAsked.get(a.did) ?? -1) - (this.#lastAsked.get(b.did) ?? -1) || (a.did < b.did ? -1 : a.did > b.did ? 1 : 0))
    await Promise.all(
      connected.slice(0, fanout).map(async (p) => {
        try {
          const r = await this.pullFrom(p, DiscoveryMethod.DIRECT, signal)
          total.added += r.added
          total.updated += r.updated
          total.unchanged += r.unchanged
          total.rejected += r.rejected
          for (const [k, v] of Object.entries(r.reasons)) total.reasons[k as keyof MergeResult['reasons']] = (total.reasons[k as keyof MergeResult['reasons']] ?? 0) + v
        } catch (err) {
          throwIfAborted(signal)
          this.#d.counters.requestsFailed++
          this.#d.log.debug('peer table request failed', { peer: p.did, err: errName(err) })
        }
      }),
    )
    return total
  }
}
