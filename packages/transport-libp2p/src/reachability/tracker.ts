/**
 * The `reachability` libp2p service: records the addresses peers observed this node at (identify),
 * with the local port of the connection when it can be read, and offers AutoNAT v2 the NAT's public
 * address with our listen port (`<observed ip>/tcp/<listen port>`) to verify: js-libp2p's identify
 * ignores observed TCP addresses (their port is the ephemeral port of an outbound dial), so without
 * this candidate AutoNAT has nothing to test behind a NAT.
 */
import type { IdentifyResult, Libp2pEvents, TypedEventTarget } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { addrParts, isPrivateIp, localIps, localTcpPortTo } from './ip.js'
import { classifyNat, type NatClassification, type Observation } from './nat.js'

/** The parts of js-libp2p's internal AddressManager the service uses. */
export interface AddressManagerView {
  addObservedAddr(addr: Multiaddr): void
  getAddressesWithMetadata(): Array<{ multiaddr: Multiaddr; verified: boolean; type: string; expires: number; lastVerified?: number }>
}

export interface ReachabilityComponents {
  events: TypedEventTarget<Libp2pEvents>
  addressManager: AddressManagerView
  transportManager: { getAddrs(): Multiaddr[] }
}

/** Options of the `reachability` service ({@link reachabilityTracker}). */
export interface ReachabilityTrackerInit {
  /** Offer `<observed public ip>/tcp/<listen port>` to AutoNAT as a candidate. Default true. */
  offerMappedCandidates?: boolean
  /** Observations kept (the most recent). Default 64. */
  maxObservations?: number
}

/** AutoNAT v2 results as far as they can be read (js-libp2p keeps per-address counts internally). */
export interface DialBackCounts { successes: number; failures: number }

/**
 * The `reachability` libp2p service (see the module comment): records what peers observed of this
 * node's address on identify, offers AutoNAT v2 the NAT's public address with our listen port, and
 * classifies the NAT from that evidence ({@link ReachabilityTracker.classify}). Created by
 * {@link reachabilityTracker} in the host's `services` (`reachabilityServices` includes it); js-libp2p
 * starts and stops it with the host.
 */
export class ReachabilityTracker {
  readonly [Symbol.toStringTag] = '@kos-mesh/reachability'
  private readonly observations: Observation[] = []
  private readonly offered = new Set<string>()
  private readonly settled = new Map<string, DialBackCounts>()
  private readonly max: number
  private readonly offer: boolean
  private started = false

  constructor(private readonly components: ReachabilityComponents, init: ReachabilityTrackerInit = {}) {
    this.max = init.maxObservations ?? 64
    this.offer = init.offerMappedCandidates ?? true
  }

  private readonly onIdentify = (evt: CustomEvent<IdentifyResult>): void => {
    try { this.record(evt.detail) } catch { /* never break identify */ }
  }

  /** Starts listening to the host's `peer:identify` events (idempotent; js-libp2p calls it). */
  start(): void {
    if (this.started) return
    this.started = true
    this.components.events.addEventListener('peer:identify', this.onIdentify)
  }

  /** Stops listening to identify events; what was recorded is kept. */
  stop(): void {
    this.started = false
    this.components.events.removeEventListener('peer:identify', this.onIdentify)
  }

  /** Whether the service listens to identify events (js-libp2p's Startable). */
  isStarted(): boolean {
    return this.started
  }

  /** Observations so far (most recent last). */
  getObservations(): Observation[] {
    return [...this.observations]
  }

  private record(r: IdentifyResult): void {
    const conn = r.connection
    if (r.observedAddr === undefined || conn === undefined) return
    const remote = addrParts(conn.remoteAddr)
    if (remote.relayed) return // a relay's view of us says nothing about our own NAT mapping
    const seen = addrParts(r.observedAddr)
    if (seen.host === undefined || seen.port === undefined || seen.family === 'dns' || seen.relayed) return
    const direction = conn.direction === 'inbound' ? 'inbound' : 'outbound'
    let localPort: number | undefined
    if (direction === 'outbound' && conn.status === 'open' && remote.family === 'ip4' && remote.host !== undefined && remote.port !== undefined && remote.protocol === 'tcp') {
      localPort = localTcpPortTo(remote.host, remote.port, seen.port)
    }
    const o: Observation = { peer: r.peerId.toString(), observedIp: seen.host, observedPort: seen.port, direction, ...(localPort === undefined ? {} : { localPort }) }
    this.observations.push(o)
    if (this.observations.length > this.max) this.observations.splice(0, this.observations.length - this.max)
    if (this.offer && direction === 'outbound' && !isPrivateIp(seen.host) && !localIps().includes(seen.host)) this.offerCandidates(seen.host, seen.family === 'ip6' ? 'ip6' : 'ip4')
  }

  /** Offers `<public ip>/tcp/<each listen port>` to the address manager, which AutoNAT v2 then verifies. */
  private offerCandidates(ip: string, family: 'ip4' | 'ip6'): void {
    const ports = new Set<number>()
    for (const a of this.components.transportManager.getAddrs()) {
      const p = addrParts(a)
      if (p.protocol === 'tcp' && !p.relayed && p.port !== undefined && p.port > 0) ports.add(p.port)
    }
    for (const port of ports) {
      const ma = multiaddr(`/${family}/${ip}/tcp/${port}`)
      const key = ma.toString()
      if (this.offered.has(key)) continue
      this.offered.add(key)
      this.components.addressManager.addObservedAddr(ma)
    }
  }

  /**
   * The host's addresses with their AutoNAT verification, from the address manager js-libp2p hands
   * this service (the public route to it: a service declares the components it needs).
   */
  addressMetadata(): Array<{ multiaddr: Multiaddr; verified: boolean }> {
    return this.components.addressManager.getAddressesWithMetadata()
  }

  /** Candidate addresses offered to AutoNAT. */
  getOfferedCandidates(): string[] {
    return [...this.offered]
  }

  /** Remembers AutoNAT counts (they vanish from AutoNAT once an address is confirmed or dropped). */
  noteDialBacks(addr: string, c: DialBackCounts): void {
    const prev = this.settled.get(addr)
    if (prev === undefined || c.successes + c.failures >= prev.successes + prev.failures) this.settled.set(addr, c)
  }

  /** AutoNAT v2 dial-back successes and failures, summed over every address remembered by `noteDialBacks`. */
  dialBackCounts(): DialBackCounts {
    let successes = 0; let failures = 0
    for (const c of this.settled.values()) { successes += c.successes; failures += c.failures }
    return { successes, failures }
  }

  /** The NAT classification from what was observed and what AutoNAT confirmed. */
  classify(autonat?: Map<string, DialBackCounts>): NatClassification {
    for (const [a, c] of autonat ?? []) this.noteDialBacks(a, c)
    const verified: Array<{ ip: string; port: number }> = []
    for (const m of this.components.addressManager.getAddressesWithMetadata()) {
      const p = addrParts(m.multiaddr)
      if (!m.verified || m.type === 'announce' || p.relayed || p.host === undefined || p.port === undefined || p.family === 'dns' || isPrivateIp(p.host)) continue
      verified.push({ ip: p.host, port: p.port })
    }
    const { successes, failures } = this.dialBackCounts()
    return classifyNat({ localIps: localIps(), observations: this.observations, verified, dialBackFailures: failures, dialBackSuccesses: successes })
  }
}

/** The `reachability` service factory (js-libp2p service shape). */
export function reachabilityTracker(init: ReachabilityTrackerInit = {}): (components: ReachabilityComponents) => ReachabilityTracker {
  return (components) => new ReachabilityTracker(components, init)
}
