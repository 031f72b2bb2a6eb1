/**
 * libp2p transport addresses (`libp2p://<multiaddr>[/did:...]`, or a bare multiaddr `/ip4/...`) as
 * @kos-mesh/transport-libp2p dials and listens on them, checked without loading libp2p, and their form
 * in signed node records (`{ protocol: 'libp2p', address: '<multiaddr without its last /p2p/<id>>',
 * port: <tcp port or 0> }`). `toNetworkAddress` / `toTransportAddress` (addresses.ts) use them, so a
 * node on libp2p publishes dialable libp2p addresses and its peers dial them from its record.
 */
import { isIPv4, isIPv6 } from 'node:net'
import { InvalidAddressError, type NetworkAddress, type TransportAddress } from '@kos-mesh/interface'

/** The scheme of libp2p transport addresses: `libp2p://` + the multiaddr (`libp2p:///ip4/...`). */
export const LIBP2P_SCHEME = 'libp2p://'
/** Longest libp2p address accepted (the transport's limit). */
export const MAX_LIBP2P_ADDRESS_LENGTH = 1024

/** Multiaddr protocols accepted, and whether they take a value. */
const PROTOCOLS: Record<string, boolean> = {
  ip4: true,
  ip6: true,
  dns: true,
  dns4: true,
  dns6: true,
  dnsaddr: true,
  tcp: true,
  p2p: true,
  ipfs: true,
  sni: true,
  ws: false,
  wss: false,
  tls: false,
  'p2p-circuit': false,
}
const HOSTS = ['ip4', 'ip6', 'dns', 'dns4', 'dns6', 'dnsaddr']
const PEER_ID_RE = /^(?:[1-9A-HJ-NP-Za-km-z]{40,60}|b[a-z2-7]{50,70})$/
const DNS_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/
const DID_SUFFIX_RE = /\/(did:[a-z0-9]+:[^\s/]+)\/?$/

/** A libp2p address taken apart. */
export interface ParsedLibp2pAddress {
  /** The multiaddr without the DID suffix (`/ip4/127.0.0.1/tcp/4747/p2p/12D3KooW...`). */
  multiaddr: string
  /** The multiaddr without its trailing `/p2p/<id>` (what a node record carries). */
  base: string
  /** The DID appended to the address. */
  did?: string
  /** The PeerId of the last `/p2p/` component. */
  peerId?: string
  /** `ip4`, `ip6`, `dns`, ... */
  hostProtocol: string
  host: string
  /** The TCP port, when the address has one. */
  port?: number
}

/** True for an address of the libp2p transport: `libp2p://...` or a bare multiaddr `/ip4/...`. */
export function isLibp2pAddress(addr: unknown): boolean {
  return typeof addr === 'string' && (addr.startsWith(LIBP2P_SCHEME) || addr.startsWith('/'))
}

/**
 * Parses `libp2p://<multiaddr>[/did:...]` or a bare multiaddr: the components the libp2p transport
 * dials and listens on (ip4/ip6/dns*, tcp, ws/wss/tls/sni, p2p, p2p-circuit). Throws
 * InvalidAddressError saying what is wrong.
 */
export function parseLibp2pTransportAddress(addr: string): ParsedLibp2pAddress {
  const shown = JSON.stringify(String(addr).slice(0, 120))
  if (typeof addr !== 'string' || addr.length > MAX_LIBP2P_ADDRESS_LENGTH) throw new InvalidAddressError(`expected a libp2p address of at most ${MAX_LIBP2P_ADDRESS_LENGTH} characters, got ${shown}`)
  let rest = addr.startsWith(LIBP2P_SCHEME) ? addr.slice(LIBP2P_SCHEME.length) : addr
  if (!rest.startsWith('/') || /\s/.test(rest)) throw new InvalidAddressError(`expected libp2p://<multiaddr> like libp2p:///ip4/127.0.0.1/tcp/4747, got ${shown}`)
  let did: string | undefined
  const m = DID_SUFFIX_RE.exec(rest)
  if (m !== null) {
    did = m[1] as string
    rest = rest.slice(0, m.index)
  }
  if (rest.endsWith('/')) rest = rest.slice(0, -1)
  const parts = rest.split('/').slice(1)
  const comps: Array<{ name: string; value?: string }> = []
  for (let i = 0; i < parts.length; i++) {
    const name = parts[i] as string
    const takesValue = PROTOCOLS[name]
    if (takesValue === undefined) throw new InvalidAddressError(`expected multiaddr components among ${Object.keys(PROTOCOLS).join(', ')}, got "${name.slice(0, 40)}" in ${shown}`)
    if (!takesValue) {
      comps.push({ name })
      continue
    }
    const value = parts[++i]
    if (value === undefined || value.length === 0) throw new InvalidAddressError(`expected a value after /${name} in ${shown}`)
    comps.push({ name, value })
  }
  const first = comps[0]
  if (first === undefined || !HOSTS.includes(first.name)) throw new InvalidAddressError(`expected a multiaddr starting with /ip4, /ip6 or /dns*, got ${shown}`)
  const host = first.value as string
  if (first.name === 'ip4' && !isIPv4(host)) throw new InvalidAddressError(`expected an IPv4 address after /ip4, got "${host.slice(0, 60)}" in ${shown}`)
  if (first.name === 'ip6' && !isIPv6(host)) throw new InvalidAddressError(`expected an IPv6 address after /ip6, got "${host.slice(0, 60)}" in ${shown}`)
  if (first.name.startsWith('dns') && !DNS_RE.test(host)) throw new InvalidAddressError(`expected a host name after /${first.name}, got "${host.slice(0, 60)}" in ${shown}`)
  let port: number | undefined
  const second = comps[1]
  if (second?.name === 'tcp') {
    if (!/^\d{1,5}$/.test(second.value as string) || Number(second.value) > 65535) throw new InvalidAddressError(`expected a TCP port 0..65535 after /tcp, got "${String(second.value).slice(0, 20)}" in ${shown}`)
    port = Number(second.value)
  } else if (first.name !== 'dnsaddr') {
    throw new InvalidAddressError(`expected /tcp/<port> after the host (libp2p over TCP or WebSockets), got ${shown}`)
  }
  for (const c of comps) {
    if ((c.name === 'p2p' || c.name === 'ipfs') && !PEER_ID_RE.test(c.value as string)) throw new InvalidAddressError(`expected a PeerId (12D3KooW...) after /${c.name}, got "${String(c.value).slice(0, 60)}" in ${shown}`)
  }
  const last = comps[comps.length - 1]
  const peerId = last !== undefined && (last.name === 'p2p' || last.name === 'ipfs') ? last.value : undefined
  const base = peerId === undefined ? rest : rest.slice(0, rest.lastIndexOf(`/${last?.name}/`))
  return { multiaddr: rest, base, ...(did === undefined ? {} : { did }), ...(peerId === undefined ? {} : { peerId }), hostProtocol: first.name, host, ...(port === undefined ? {} : { port }) }
}

/** True for 0.0.0.0 / :: in a parsed libp2p address (listen on every interface; never dialable). */
export function isUnspecifiedLibp2pHost(a: ParsedLibp2pAddress): boolean {
  return (a.hostProtocol === 'ip4' && a.host === '0.0.0.0') || (a.hostProtocol === 'ip6' && /^[0:]+$/.test(a.host))
}

/** `libp2p://...` as a record address (the DID and the last `/p2p/<id>` dropped); undefined when not a valid one. */
export function libp2pToNetworkAddress(addr: TransportAddress, flags: { is_public?: boolean; is_relay?: boolean } = {}): NetworkAddress | undefined {
  let a
  try {
    a = parseLibp2pTransportAddress(addr)
  } catch {
    return undefined
  }
  return { protocol: 'libp2p', address: a.base, port: a.port ?? 0, is_public: flags.is_public ?? false, is_relay: flags.is_relay ?? a.base.includes('/p2p-circuit') }
}

/** A `protocol: 'libp2p'` record address as `libp2p://<multiaddr>`; undefined when not a valid one. */
export function libp2pToTransportAddress(a: NetworkAddress): TransportAddress | undefined {
  if (typeof a.address !== 'string' || !a.address.startsWith('/') || a.address.includes('/did:')) return undefined
  const addr = `${LIBP2P_SCHEME}${a.address}`
  try {
    parseLibp2pTransportAddress(addr)
  } catch {
    return undefined
  }
  return addr
}
