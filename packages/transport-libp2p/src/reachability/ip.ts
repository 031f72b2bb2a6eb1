/** Small IP and multiaddr helpers of the reachability module (no @libp2p/utils dependency). */
import { networkInterfaces } from 'node:os'
import { readFileSync } from 'node:fs'
import type { Multiaddr } from '@multiformats/multiaddr'

/** IPv4 ranges that are not publicly routable (the list js-libp2p's AutoNAT and DCUtR use). */
const PRIVATE_V4: Array<[string, number]> = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.31.196.0', 24], ['192.52.193.0', 24],
  ['192.88.99.0', 24], ['192.168.0.0', 16], ['192.175.48.0', 24], ['198.18.0.0', 15],
  ['198.51.100.0', 24], ['203.0.113.0', 24], ['240.0.0.0', 4], ['255.255.255.255', 32],
]

function v4(ip: string): number | undefined {
  const p = ip.split('.')
  if (p.length !== 4) return undefined
  let n = 0
  for (const s of p) {
    const x = Number(s)
    if (!/^\d{1,3}$/.test(s) || x > 255) return undefined
    n = n * 256 + x
  }
  return n
}

/** Whether an IP is not publicly routable (private, loopback, link-local, CGNAT, documentation, ...). */
export function isPrivateIp(ip: string): boolean {
  const n = v4(ip)
  if (n !== undefined) {
    return PRIVATE_V4.some(([base, bits]) => {
      const b = v4(base) as number
      const size = 2 ** (32 - bits)
      return n >= b && n < b + size
    })
  }
  const l = ip.toLowerCase()
  if (l.startsWith('::ffff:')) return isPrivateIp(l.slice(7))
  return l === '::' || l === '::1' || /^f[cd]/.test(l) || /^fe[89ab]/.test(l) || /^ff/.test(l) || l.startsWith('2001:db8:')
}

export interface AddrParts {
  /** ip4 / ip6 / dns* value, when the multiaddr starts with one. */
  host?: string
  family?: 'ip4' | 'ip6' | 'dns'
  /** The first tcp/udp port. */
  port?: number
  /** `tcp`, `ws`, `wss`, `quic-v1`, ...: the outermost transport before `/p2p` and `/p2p-circuit`. */
  protocol: string
  relayed: boolean
}

/** Splits a multiaddr into what NetworkAddress and the classifier need. */
export function addrParts(ma: Multiaddr): AddrParts {
  const comps = ma.getComponents()
  const out: AddrParts = { protocol: 'unknown', relayed: comps.some((c) => c.name === 'p2p-circuit') }
  const first = comps[0]
  if (first !== undefined) {
    if (first.name === 'ip4' || first.name === 'ip6') { out.family = first.name; if (first.value !== undefined) out.host = first.value }
    else if (first.name.startsWith('dns')) { out.family = 'dns'; if (first.value !== undefined) out.host = first.value }
  }
  for (const c of comps) {
    if (c.name === 'p2p' || c.name === 'p2p-circuit') break
    if ((c.name === 'tcp' || c.name === 'udp') && out.port === undefined) out.port = Number(c.value)
    if (c.name !== 'ip4' && c.name !== 'ip6' && !c.name.startsWith('dns') && c.name !== 'ip6zone' && c.name !== 'certhash') out.protocol = c.name
  }
  return out
}

/** The IP addresses of this host's (this network namespace's) interfaces. */
export function localIps(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address))
}

function hexToIpv4(hex: string): string {
  // /proc/net/tcp stores the IPv4 address as a little-endian 32-bit word
  const b = [0, 2, 4, 6].map((i) => parseInt(hex.slice(i, i + 2), 16)).reverse()
  return b.join('.')
}

/**
 * Our local port of the TCP socket connected to `remoteIp:remotePort`, read from /proc/net/tcp
 * (Linux, IPv4, the current network namespace). With several such sockets, `hint` (the port a peer
 * observed) is returned when one of them has it; otherwise undefined when unknown or ambiguous.
 */
export function localTcpPortTo(remoteIp: string, remotePort: number, hint?: number): number | undefined {
  let text: string
  try { text = readFileSync('/proc/net/tcp', 'utf8') } catch { return undefined }
  const found = new Set<number>()
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/)
    const local = cols[1]; const rem = cols[2]; const state = cols[3]
    // every state of a connected socket (a peer may already have closed ours: CLOSE_WAIT, TIME_WAIT...), not LISTEN (0A) or CLOSE (07)
    if (local === undefined || rem === undefined || state === undefined || state === '0A' || state === '07') continue
    const [rh, rp] = rem.split(':')
    if (rh === undefined || rp === undefined || rh.length !== 8) continue
    if (hexToIpv4(rh) !== remoteIp || parseInt(rp, 16) !== remotePort) continue
    const lp = local.split(':')[1]
    if (lp !== undefined) found.add(parseInt(lp, 16))
  }
  if (hint !== undefined && found.has(hint)) return hint
  return found.size === 1 ? [...found][0] : undefined
}
