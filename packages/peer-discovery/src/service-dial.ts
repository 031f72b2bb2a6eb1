/**
 * The discovery service's dialer: connects to the best-ranked known peers up to the target, a few
 * dials at a time, announcing this node to each new neighbour; a peer whose dial failed is left
 * alone for a backoff.
 */
import { KLPMessageType, MessagePriority, throwIfAborted } from '@kos-mesh/interface'
import type { NetworkAddress, TransportAddress } from '@kos-mesh/interface'
import { discoveryPayloadValue } from './protocol.js'
import { clockTimeout, DISCOVERY_PATH, errName, quiet } from './service-util.js'
import type { DiscoveryContext } from './service-util.js'

/** The dialer's settings (resolved options of the service). */
export interface PeerDialerInit {
  targetPeers: number
  dialConcurrency: number
  dialBackoffMs: number
  /** Time for one dial, ms (the service's `seedTimeoutMs`). */
  dialTimeoutMs: number
  toTransport: (a: NetworkAddress) => TransportAddress | undefined
}

/** Dials discovered peers; remembers failed ones (bounded by maxPeers) until their backoff ends. */
export class PeerDialer {
  readonly #d: DiscoveryContext
  readonly #targetPeers: number
  readonly #dialConcurrency: number
  readonly #dialBackoffMs: number
  readonly #dialTimeoutMs: number
  readonly #toTransport: (a: NetworkAddress) => TransportAddress | undefined
  readonly #dialFailures = new Map<string, number>()
  readonly #dialing = new Set<string>()

  constructor(discovery: DiscoveryContext, init: PeerDialerInit) {
    this.#d = discovery
    this.#targetPeers = init.targetPeers
    this.#dialConcurrency = init.dialConcurrency
    this.#dialBackoffMs = init.dialBackoffMs
    this.#dialTimeoutMs = init.dialTimeoutMs
    this.#toTransport = init.toTransport
  }

  /** Dials the best known, unconnected peers up to `targetPeers`; returns how many were connected. */
  async dialBest(signal: AbortSignal): Promise<number> {
    const connected = new Set(this.#d.router.peers().map((p) => p.did))
    const want = this.#targetPeers - connected.size
    if (want <= 0) return 0
    const now = this.#d.clock.now()
    for (const [peer, until] of this.#dialFailures) if (until <= now) this.#dialFailures.delete(peer)
    const exclude = new Set([...connected, ...this.#dialing, ...this.#dialFailures.keys()])
    const candidates = this.#d.registry.rank({ exclude }).slice(0, want)
    let made = 0
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < candidates.length) {
        const c = candidates[next++]!
        throwIfAborted(signal)
        if (await this.#dialPeer(c.entry.peerId, c.entry.record.node.network_info.addresses, signal)) made++
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.#dialConcurrency, candidates.length) }, worker))
    return made
  }

  async #dialPeer(did: string, addresses: NetworkAddress[], signal: AbortSignal): Promise<boolean> {
    this.#dialing.add(did)
    try {
      for (const a of addresses) {
        const addr = this.#toTransport(a)
        if (addr === undefined) continue
        this.#d.counters.dials++
        const timeout = clockTimeout(this.#d.clock, this.#dialTimeoutMs, `a dial to ${addr.slice(0, 200)} to finish`)
        try {
          const info = await this.#d.router.dial(addr, { signal: quiet(AbortSignal.any([signal, timeout.signal])), remotePeer: did })
          this.#d.registry.touch(did)
          // Tell the new neighbour about us (it may not know this node yet).
          const record = this.#d.localRecord()
          if (info.authority !== undefined && record !== undefined) {
            void this.#d.router
              .send({ type: KLPMessageType.PEER_DISCOVERY, target: `klp://${info.authority}${DISCOVERY_PATH}`, sourcePath: DISCOVERY_PATH, priority: MessagePriority.LOW, data: discoveryPayloadValue({ action: 'announce', record: record.bytes }) }, { signal })
              .catch(() => {})
          }
          return true
        } catch (err) {
          throwIfAborted(signal)
          this.#d.counters.dialFailures++
          this.#d.log.debug('dial failed', { peer: did, addr, err: errName(err) })
        } finally {
          timeout.clear()
        }
      }
      if (this.#dialFailures.size >= this.#d.registry.maxPeers) {
        const first = this.#dialFailures.keys().next()
        if (first.done !== true) this.#dialFailures.delete(first.value)
      }
      this.#dialFailures.set(did, this.#d.clock.now() + this.#dialBackoffMs)
      return false
    } finally {
      this.#dialing.delete(did)
    }
  }
}
