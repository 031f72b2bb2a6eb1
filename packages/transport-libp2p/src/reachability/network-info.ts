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

/** Options of {@link networkInfoOf}: values to report instead of those read from the host. */
export interface NetworkInfoOptions {
  /** Protocols listed in `protocols_supported`. Default: the host's protocols (KLP first when handled). */
  protocols?: string[]
  /** Latency to report. Default: the mean of the latest ping RTTs the host knows, else 0. */
  latencyMs?: number
}

/**
 * The spec's NetworkInfo of a libp2p host ({@link networkInfoOf}), with the evidence behind its
 * `nat_type` and its public addresses: the NAT classification, the observed addresses and the relay
 * addresses.
 */
export interface ReachabilityReport extends NetworkInfo {
  /** The finer NAT classification behind `nat_type`, with the reasons. */
  nat: NatClassification
  /** Observed addresses (ip:port, as peers saw our outbound connections). */
  observed: string[]
  /** Relay addresses (we hold a reservation). */
  relay_addresses: string[]
}

/** The host's addresses with their verification: from our tracker service, else (guarded) the host's components. */
function addressMetadata(host: Libp2p, tracker: ReachabilityTracker | undefined): Array<{ multiaddr: Multiaddr; verified: boolean }> {
  if (tracker !== undefined) return tracker.addressMetadata()
  // no tracker: js-libp2p's Libp2p class exposes its components (not part of the Libp2p interface)
  const am = (host as unknown as { components?: { addressManager?: Partial<AddressManagerView> } }).components?.addressManager
  return typeof am?.getAddressesWithMetadata === 'function' ? am.getAddressesWithMetadata() : []
}

/**
 * What could be read of AutoNAT v2's dial-back results. js-libp2p has no public API for them (only
 * the outcome: an address confirmed becomes `verified` in the address manager, one refuted is
 * removed), so they are read from the service's internals (`client.dialResults`, a Map of address ->
 * `{ success, failure }`), guarded: `unreadable` when the service is there but its internals are not
 * shaped so any more (a js-libp2p update moved them; the classification then only has the outcomes),
 * `absent` when the host runs no AutoNAT v2 service.
 */
export type AutonatReadout =
  | { readonly status: 'ok'; readonly counts: Map<string, DialBackCounts> }
  | { readonly status: 'absent' | 'unreadable'; readonly counts: Map<string, DialBackCounts>; readonly reason: string }

/** Reads AutoNAT v2's per-address dial-back counts (see `AutonatReadout`). Never throws. */
export function readAutonatDialBacks(host: Libp2p): AutonatReadout {
  const counts = new Map<string, DialBackCounts>()
  const svc = (host.services as Record<string, unknown> | undefined)?.[REACHABILITY_SERVICES.autonat] as { client?: { dialResults?: unknown } } | undefined
  if (svc === undefined) return { status: 'absent', counts, reason: `no AutoNAT v2 service at host.services.${REACHABILITY_SERVICES.autonat}` }
  const results = svc.client?.dialResults as Map<string, { success?: unknown; failure?: unknown }> | undefined
  if (results === undefined || results === null || typeof results.entries !== 'function') {
    return { status: 'unreadable', counts, reason: 'AutoNAT v2 internals moved: expected client.dialResults to be a Map, got ' + (results === undefined ? 'none' : typeof results) }
  }
  try {
    for (const [addr, r] of results.entries()) {
      if (typeof r?.success !== 'number' || typeof r.failure !== 'number') {
        return { status: 'unreadable', counts: new Map(), reason: 'AutoNAT v2 internals moved: expected dial results with numeric success and failure counts' }
      }
      counts.set(String(addr), { successes: r.success, failures: r.failure })
    }
  } catch (err) {
    return { status: 'unreadable', counts: new Map(), reason: `AutoNAT v2 internals not readable: ${(err as Error)?.name ?? String(err)}` }
  }
  return { status: 'ok', counts }
}

/** AutoNAT v2's per-address dial-back counts; empty when not readable (see `readAutonatDialBacks`). */
export function autonatDialBacks(host: Libp2p): Map<string, DialBackCounts> {
  return readAutonatDialBacks(host).counts
}

/** The reachability tracker service of the host, when it runs one. */
export function reachabilityTrackerOf(host: Libp2p): ReachabilityTracker | undefined {
  const t = (host.services as Record<string, unknown>)[REACHABILITY_SERVICES.tracker] as ReachabilityTracker | undefined
  return typeof t?.classify === 'function' ? t : undefined
}

/** The spec's NetworkInfo of the host, plus the evidence (`nat`, `observed`, `relay_addresses`). */
export function networkInfoOf(host: Libp2p, options: NetworkInfoOptions = {}): ReachabilityReport {
  const tracker = reachabilityTrackerOf(host)
  const meta = new Map<string, boolean>()
  for (const m of addressMetadata(host, tracker)) meta.set(m.multiaddr.toString(), m.verified)
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
  const autonat = readAutonatDialBacks(host)
  const nat: NatClassification = tracker?.classify(autonat.counts) ?? { nat: 'unknown', behindNat: undefined, reasons: ['no reachability tracker service on the host'] }
  if (autonat.status === 'unreadable') nat.reasons.push(`${autonat.reason}: only AutoNAT's confirmed addresses count`)
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
