/**
 * `networkInfoOf(host)`: the spec's NetworkInfo of a js-libp2p host, from its addresses (with their
 * AutoNAT verification), its relay reservations, the observed addresses the reachability tracker
 * recorded and AutoNAT v2's dial-back results.
 */
import { ConnectivityStatus, type NetworkAddress, type NetworkInfo } from '@kos-mesh/interface'
import type { Libp2p } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { KLP_PROTOCOL } from '../protocol.js'
import { addrParts, isPrivateIp } from './ip.js'
import { specNatType, type NatClassification } from './nat.js'
import { REACHABILITY_SERVICES } from './options.js'
import type { AddressManagerView, DialBackCounts, ReachabilityTracker } from './tracker.js'

/**
 * A NetworkAddress of a libp2p multiaddr: `protocol` is the multiaddr's transport (`tcp`, `ws`, ...,
 * or `p2p-circuit` for a relay address), `address` the whole multiaddr (a relay address cannot be
 * told by host and port alone; dial it as `libp2p://` + address), `port` its TCP/UDP port.
 */
export function toLibp2pNetworkAddress(ma: Multiaddr, flags: { verified?: boolean } = {}): NetworkAddress {
  const p = addrParts(ma)
  const isRelay = p.relayed
  const publicHost = p.host !== undefined && (p.family === 'dns' || !isPrivateIp(p.host))
  return {
    protocol: isRelay ? 'p2p-circuit' : p.protocol,
    address: ma.toString(),
    port: p.port ?? 0,
    // a relay address is public when the relay is; a direct one when it is routable and not refuted
    is_public: publicHost && (isRelay || flags.verified !== false),
    is_relay: isRelay,
  }
}

/** The transport address (`libp2p://<multiaddr>`) of a NetworkAddress made by `toLibp2pNetworkAddress`. */
export function libp2pTransportAddressOf(a: NetworkAddress): string | undefined {
  return a.address.startsWith('/') ? `libp2p://${a.address}` : undefined
}

export interface NetworkInfoOptions {
  /** Protocols listed in `protocols_supported`. Default: the host's protocols (KLP first when handled). */
  protocols?: string[]
  /** Latency to report. Default: the mean of the latest ping RTTs the host knows, else 0. */
  latencyMs?: number
}

export interface ReachabilityReport extends NetworkInfo {
  /** The finer NAT classification behind `nat_type`, with the reasons. */
  nat: NatClassification
  /** Observed addresses (ip:port, as peers saw our outbound connections). */
  observed: string[]
  /** Relay addresses (we hold a reservation). */
  relay_addresses: string[]
}

function components(host: Libp2p): { addressManager?: AddressManagerView } {
  return (host as unknown as { components?: { addressManager?: AddressManagerView } }).components ?? {}
}

/** AutoNAT v2's per-address dial-back counts (internal to js-libp2p; empty when not readable). */
export function autonatDialBacks(host: Libp2p): Map<string, DialBackCounts> {
  const out = new Map<string, DialBackCounts>()
  const svc = (host.services as Record<string, unknown>)[REACHABILITY_SERVICES.autonat] as { client?: { dialResults?: Map<string, { success?: number; failure?: number }> } } | undefined
  const results = svc?.client?.dialResults
  if (results === undefined || typeof results.entries !== 'function') return out
  for (const [addr, r] of results.entries()) {
    if (typeof r?.success === 'number' && typeof r.failure === 'number') out.set(addr, { successes: r.success, failures: r.failure })
  }
  return out
}

/** The reachability tracker service of the host, when it runs one. */
export function reachabilityTrackerOf(host: Libp2p): ReachabilityTracker | undefined {
  const t = (host.services as Record<string, unknown>)[REACHABILITY_SERVICES.tracker] as ReachabilityTracker | undefined
  return typeof t?.classify === 'function' ? t : undefined
}

/** The spec's NetworkInfo of the host, plus the evidence (`nat`, `observed`, `relay_addresses`). */
export function networkInfoOf(host: Libp2p, options: NetworkInfoOptions = {}): ReachabilityReport {
  const meta = new Map<string, boolean>()
  for (const m of components(host).addressManager?.getAddressesWithMetadata() ?? []) meta.set(m.multiaddr.toString(), m.verified)
  const addresses: NetworkAddress[] = []
  const seen = new Set<string>()
  for (const ma of host.getMultiaddrs()) {
    const key = ma.toString()
    if (seen.has(key)) continue
    seen.add(key)
    // getMultiaddrs() appends /p2p/<us>; the address manager keys are without it
    const bare = key.replace(/\/p2p\/[^/]+$/, '')
    const verified = meta.get(bare) ?? meta.get(key)
    addresses.push(toLibp2pNetworkAddress(ma, verified === undefined ? {} : { verified }))
  }
  const tracker = reachabilityTrackerOf(host)
  const nat: NatClassification = tracker?.classify(autonatDialBacks(host)) ?? { nat: 'unknown', behindNat: undefined, reasons: ['no reachability tracker service on the host'] }
  // behind a NAT, only a relay address (or an AutoNAT-confirmed mapping) is reachable from outside
  if (nat.behindNat === true) {
    for (const a of addresses) if (!a.is_relay && !(nat.nat === 'full_cone' && a.is_public)) a.is_public = false
  }
  const conns = host.getConnections()
  const status = host.status !== 'started'
    ? ConnectivityStatus.DISCONNECTED
    : conns.length > 0 ? ConnectivityStatus.CONNECTED : ConnectivityStatus.CONNECTING
  const protocols = options.protocols ?? (() => {
    const ps = host.getProtocols()
    return ps.includes(KLP_PROTOCOL) ? [KLP_PROTOCOL, ...ps.filter((p) => p !== KLP_PROTOCOL)] : ps
  })()
  const rtts = conns.map((c) => (c as unknown as { rtt?: number }).rtt).filter((x): x is number => typeof x === 'number' && x >= 0)
  const latency = options.latencyMs ?? (rtts.length === 0 ? 0 : Math.round(rtts.reduce((s, x) => s + x, 0) / rtts.length))
  return {
    addresses,
    protocols_supported: protocols,
    nat_type: specNatType(nat.nat),
    connectivity_status: status,
    latency_ms: latency,
    nat,
    observed: (tracker?.getObservations() ?? []).map((o) => `${o.observedIp}:${o.observedPort}${o.localPort === undefined ? '' : ` (local port ${o.localPort})`} seen by ${o.peer.slice(-8)}`),
    relay_addresses: addresses.filter((a) => a.is_relay).map((a) => a.address),
  }
}
