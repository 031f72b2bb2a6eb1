/**
 * Addresses of the libp2p transport. A `TransportAddress` is a URL-like string; a libp2p address is
 * a multiaddr, so the canonical form is the scheme `libp2p://` followed by the multiaddr verbatim
 * (which starts with `/`):
 *
 *   libp2p:///ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...
 *   libp2p:///dns4/example.org/tcp/443/wss/p2p/12D3KooW...
 *
 * Like the other transports, a peer address may append the expected DID:
 * `libp2p:///ip4/127.0.0.1/tcp/4001/did:key:z6Mk...`. A bare multiaddr string (`/ip4/...`) is accepted
 * too, for addresses copied from libp2p tools. `libp2p://` alone (no multiaddr) means "wherever the
 * host already listens" and is only meaningful to `listen()`.
 */
import { InvalidAddressError } from '@kos-mesh/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'

/** The scheme of libp2p transport addresses: `libp2p://` followed by a multiaddr (see the module comment). */
export const LIBP2P_SCHEME = 'libp2p://'
/** Longest address string accepted (multiaddr + DID). */
export const MAX_ADDRESS_LENGTH = 1024

/**
 * A libp2p transport address, parsed by {@link parseLibp2pAddress}: the multiaddr, the PeerId in it
 * and the DID appended to it, each when present. All empty for the bare `libp2p://`.
 */
export interface Libp2pAddress {
  /** The multiaddr, without the DID suffix; undefined for the bare `libp2p://`. */
  multiaddr?: Multiaddr
  /** The PeerId string of the multiaddr's last `/p2p/` component, when present. */
  peerId?: string
  /** The DID appended to the address, when present. */
  peer?: string
}

const DID_SUFFIX = /\/(did:[a-z0-9]+:[^\s/]+)\/?$/

/** Parses `libp2p://<multiaddr>[/<did>]`, `<multiaddr>[/<did>]` or the bare `libp2p://`. */
export function parseLibp2pAddress(addr: string): Libp2pAddress {
  if (typeof addr !== 'string') throw new InvalidAddressError(`expected a libp2p:// address string, got ${typeof addr}`)
  if (addr.length > MAX_ADDRESS_LENGTH) throw new InvalidAddressError(`expected an address of at most ${MAX_ADDRESS_LENGTH} chars, got ${addr.length}`)
  let rest = addr.startsWith(LIBP2P_SCHEME) ? addr.slice(LIBP2P_SCHEME.length) : addr
  if (rest === '' && addr === LIBP2P_SCHEME) return {}
  if (!rest.startsWith('/')) {
    throw new InvalidAddressError(`expected libp2p://<multiaddr> or a multiaddr starting with '/', got ${JSON.stringify(addr.slice(0, 80))}`)
  }
  const out: Libp2pAddress = {}
  const m = DID_SUFFIX.exec(rest)
  if (m !== null) {
    out.peer = m[1] as string
    rest = rest.slice(0, m.index)
  }
  let ma: Multiaddr
  try {
    ma = multiaddr(rest)
  } catch (err) {
    throw new InvalidAddressError(`expected a valid multiaddr, got ${JSON.stringify(rest.slice(0, 80))}`, { cause: err })
  }
  if (ma.getComponents().length === 0) throw new InvalidAddressError(`expected a non-empty multiaddr, got ${JSON.stringify(addr.slice(0, 80))}`)
  out.multiaddr = ma
  const p2p = ma.getComponents().filter((c) => c.name === 'p2p').pop()
  if (p2p?.value !== undefined) out.peerId = p2p.value
  return out
}

/** Formats a multiaddr as a transport address: `libp2p://` + the multiaddr. */
export function formatLibp2pAddress(ma: Multiaddr | string): string {
  return `${LIBP2P_SCHEME}${typeof ma === 'string' ? ma : ma.toString()}`
}

/** The multiaddr with its last `/p2p/<id>` replaced (or added) by `peerId`. */
export function withPeerId(ma: Multiaddr, peerId: string): Multiaddr {
  const comps = ma.getComponents()
  let end = comps.length
  while (end > 0 && comps[end - 1]?.name === 'p2p') end--
  const base = comps.slice(0, end)
  return multiaddr([...base.map((c) => `/${c.name}${c.value === undefined ? '' : `/${c.value}`}`), `/p2p/${peerId}`].join(''))
}

/** Whether the multiaddr can be dialled over TCP or WebSockets (a concrete port, not 0). */
export function isDialable(ma: Multiaddr): boolean {
  const comps = ma.getComponents()
  const host = comps[0]
  if (host === undefined || !['ip4', 'ip6', 'dns', 'dns4', 'dns6', 'dnsaddr'].includes(host.name)) return false
  if (host.name === 'dnsaddr') return true
  const tcp = comps[1]
  if (tcp?.name !== 'tcp' || tcp.value === undefined) return false
  const port = Number(tcp.value)
  return Number.isInteger(port) && port > 0 && port <= 65535
}
