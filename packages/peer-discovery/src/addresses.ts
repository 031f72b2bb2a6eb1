/**
 * Conversions between transport addresses (`memory://name`, `tcp://host:port`,
 * `libp2p://<multiaddr>`) and the spec's NetworkAddress records carried in node records.
 */
import type { NetworkAddress, TransportAddress } from '@kos-mesh/interface'
import { LIBP2P_SCHEME, libp2pToNetworkAddress, libp2pToTransportAddress } from './libp2p-address.js'

const SCHEME_RE = /^([a-z][a-z0-9+.-]{0,31}):\/\/(.+)$/
const PORT_RE = /^(.*):(\d{1,5})$/

/**
 * `tcp://127.0.0.1:4001` -> `{ protocol: 'tcp', address: '127.0.0.1', port: 4001 }`,
 * `memory://node-a` -> `{ protocol: 'memory', address: 'node-a', port: 0 }`,
 * `libp2p:///ip4/1.2.3.4/tcp/4747/p2p/12D3KooW...` -> `{ protocol: 'libp2p', address:
 * '/ip4/1.2.3.4/tcp/4747', port: 4747 }` (the last `/p2p/<id>` dropped: the PeerId is the record's
 * node_id; `is_relay` by default for a `/p2p-circuit` address). A trailing `/did:...` is dropped (the
 * DID is the record's node_id). Returns undefined for anything else.
 */
export function toNetworkAddress(addr: TransportAddress, flags: { is_public?: boolean; is_relay?: boolean } = {}): NetworkAddress | undefined {
  if (typeof addr !== 'string') return undefined
  if (addr.startsWith(LIBP2P_SCHEME)) return libp2pToNetworkAddress(addr, flags)
  const m = SCHEME_RE.exec(addr)
  if (m === null) return undefined
  const protocol = m[1]!
  let rest = m[2]!
  const didAt = rest.indexOf('/did:')
  if (didAt !== -1) rest = rest.slice(0, didAt)
  if (rest.length === 0 || rest.includes('/')) return undefined
  let address = rest
  let port = 0
  if (protocol !== 'memory') {
    const pm = PORT_RE.exec(rest)
    if (pm !== null) {
      const p = Number(pm[2])
      if (p > 65535) return undefined
      address = pm[1]!
      port = p
    }
  }
  return { protocol, address, port, is_public: flags.is_public ?? false, is_relay: flags.is_relay ?? false }
}

/** The inverse of `toNetworkAddress`: `protocol://address[:port]`, or `libp2p://<multiaddr>`. */
export function toTransportAddress(a: NetworkAddress): TransportAddress | undefined {
  if (a.protocol === 'libp2p') return libp2pToTransportAddress(a)
  if (!/^[a-z][a-z0-9+.-]{0,31}$/.test(a.protocol)) return undefined
  if (a.address.length === 0 || /[\s/]/.test(a.address)) return undefined
  return a.port > 0 ? `${a.protocol}://${a.address}:${a.port}` : `${a.protocol}://${a.address}`
}

/** Splits `addr/did:...` into the transport address and the expected DID. */
export function splitPeerAddress(addr: string): { address: TransportAddress; did?: string } {
  const i = addr.indexOf('/did:')
  return i === -1 ? { address: addr } : { address: addr.slice(0, i), did: addr.slice(i + 1) }
}
