/**
 * NAT classification from the evidence a node can collect about itself: the addresses peers observed
 * it at (identify's `observedAddr`), the local port of those connections when known, and AutoNAT v2
 * dial-back results. Pure functions, so the rules are unit-tested without a network.
 */
import { NATType } from '@kos-mesh/interface'

/**
 * The node's NAT behaviour, finer than the spec's NATType:
 * - `open`: no NAT (a peer saw us at one of our interface addresses) and a dial-back to it succeeded
 * - `full_cone`: behind a NAT, but a dial-back to the mapped (public) address succeeded
 * - `restricted`: behind a NAT (or a firewall) that keeps the port of our outbound connections
 *   (endpoint-independent mapping) but refused unsolicited inbound dials: reachable through a relay,
 *   and a direct connection needs the peer to be public or a hole punch
 * - `symmetric`: behind a NAT whose mapping changes per destination (different public IPs seen by
 *   different peers, or the source port rewritten): hole punching by port prediction fails
 * - `unknown`: not enough evidence yet
 */
export type NatBehaviour = 'open' | 'full_cone' | 'restricted' | 'symmetric' | 'unknown'

/** What one peer told us through identify about the address it saw our connection come from. */
export interface Observation {
  /** The remote peer (PeerId string). */
  peer: string
  observedIp: string
  observedPort: number
  /** Our local TCP port of that connection, when it could be read (Linux, outbound TCP). */
  localPort?: number
  /** Direction of the connection, from our side. */
  direction: 'inbound' | 'outbound'
}

export interface NatEvidence {
  /** The IP addresses of our network interfaces. */
  localIps: readonly string[]
  /** Observations over direct (not relayed) connections. */
  observations: readonly Observation[]
  /** Public, non-relay addresses AutoNAT confirmed dialable. */
  verified: ReadonlyArray<{ ip: string; port: number }>
  /** AutoNAT dial-backs that failed (a peer tried to dial one of our public candidates and could not). */
  dialBackFailures: number
  /** AutoNAT dial-backs that succeeded (not yet enough for a confirmation, or already confirmed). */
  dialBackSuccesses: number
}

export interface NatClassification {
  nat: NatBehaviour
  /** Whether some peer saw us at an address that is not ours (so there is a NAT on the path). */
  behindNat: boolean | undefined
  /** Human-readable reasons, for logs and the scenario output. */
  reasons: string[]
}

/** Classifies the NAT from the evidence; the rules are documented on `NatBehaviour`. */
export function classifyNat(e: NatEvidence): NatClassification {
  const local = new Set(e.localIps)
  const reasons: string[] = []
  const outbound = e.observations.filter((o) => o.direction === 'outbound')
  const seen = outbound.length > 0 ? outbound : e.observations
  const behindNat = seen.length === 0 ? undefined : seen.some((o) => !local.has(o.observedIp))
  const verifiedLocal = e.verified.filter((v) => local.has(v.ip))
  const verifiedMapped = e.verified.filter((v) => !local.has(v.ip))
  if (verifiedLocal.length > 0) {
    reasons.push(`autonat confirmed ${verifiedLocal.map((v) => `${v.ip}:${v.port}`).join(', ')}, an interface address`)
    return { nat: 'open', behindNat: false, reasons }
  }
  if (verifiedMapped.length > 0) {
    reasons.push(`autonat confirmed the mapped address ${verifiedMapped.map((v) => `${v.ip}:${v.port}`).join(', ')}`)
    return { nat: 'full_cone', behindNat: true, reasons }
  }
  if (behindNat === undefined) {
    reasons.push('no peer has reported an observed address yet')
    return { nat: 'unknown', behindNat, reasons }
  }
  const ips = [...new Set(seen.filter((o) => !local.has(o.observedIp)).map((o) => o.observedIp))]
  if (!behindNat) {
    reasons.push(`peers saw us at our own address (${[...new Set(seen.map((o) => o.observedIp))].join(', ')}): no NAT`)
    if (e.dialBackFailures > 0) {
      reasons.push(`${e.dialBackFailures} autonat dial-back(s) failed: a firewall refuses unsolicited inbound`)
      return { nat: 'restricted', behindNat, reasons }
    }
    if (e.dialBackSuccesses > 0) {
      reasons.push(`${e.dialBackSuccesses} autonat dial-back(s) succeeded (not yet confirmed)`)
      return { nat: 'open', behindNat, reasons }
    }
    reasons.push('no autonat result yet')
    return { nat: 'unknown', behindNat, reasons }
  }
  reasons.push(`peers saw us at ${ips.join(', ')}, not an interface address: behind a NAT`)
  if (ips.length > 1) {
    reasons.push('different peers saw different public IPs: address-dependent mapping')
    return { nat: 'symmetric', behindNat, reasons }
  }
  const withPort = seen.filter((o) => o.localPort !== undefined && !local.has(o.observedIp))
  const rewritten = withPort.filter((o) => o.localPort !== o.observedPort)
  const kept = withPort.filter((o) => o.localPort === o.observedPort)
  // a port-preserving NAT still rewrites a port now and then (a clash with a lingering conntrack
  // entry), so the ports it kept must outnumber the ones it rewrote
  if (rewritten.length > kept.length) {
    reasons.push(`the NAT rewrote our source port (${rewritten.map((o) => `${o.localPort} -> ${o.observedPort}`).join(', ')}): mapping not predictable`)
    return { nat: 'symmetric', behindNat, reasons }
  }
  if (kept.length > 0) {
    reasons.push(`the NAT kept our source ports (${kept.map((o) => o.localPort).join(', ')}): endpoint-independent mapping` +
      (rewritten.length > 0 ? ` (rewrote ${rewritten.map((o) => `${o.localPort} -> ${o.observedPort}`).join(', ')}, a port clash)` : ''))
  }
  if (e.dialBackSuccesses > 0) {
    reasons.push(`${e.dialBackSuccesses} autonat dial-back(s) to the mapped address succeeded`)
    return { nat: 'full_cone', behindNat, reasons }
  }
  if (e.dialBackFailures > 0) {
    reasons.push(`${e.dialBackFailures} autonat dial-back(s) to the mapped address failed: unsolicited inbound filtered`)
    return { nat: 'restricted', behindNat, reasons }
  }
  if (withPort.length > 0) {
    reasons.push('no autonat dial-back result yet: assuming the NAT filters unsolicited inbound, as connection-tracking NATs do')
    return { nat: 'restricted', behindNat, reasons }
  }
  reasons.push('no autonat dial-back result and no local port to compare yet')
  return { nat: 'unknown', behindNat, reasons }
}

/**
 * The spec's NATType for a behaviour: open -> open, full_cone -> moderate, restricted -> strict,
 * symmetric -> symmetric. The spec has no "unknown"; it maps to `strict` (peers should not count on
 * dialing the node directly until something proved they can).
 */
export function specNatType(nat: NatBehaviour): NATType {
  switch (nat) {
    case 'open': return NATType.OPEN
    case 'full_cone': return NATType.MODERATE
    case 'symmetric': return NATType.SYMMETRIC
    case 'restricted':
    case 'unknown':
    default: return NATType.STRICT
  }
}
