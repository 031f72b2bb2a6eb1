/**
 * @kos-mesh/transport-libp2p: KLP as the libp2p protocol `/kos/klp/1.0.0` on a real js-libp2p host
 * (TCP + WebSockets, Noise, Yamux, identify, ping). The node's Ed25519 key is its PeerId, so
 * `connection.remotePeer` is the did:key of the PeerId that Noise proved. Each KLP connection is one
 * libp2p stream carrying klp-codec frames, with the same bounds as transport-tcp (max frame size,
 * bounded inbound queue with backpressure, bounded send buffer, slow peers aborted).
 *
 * @example
 * ```ts
 * const transport = libp2pTransport()({ identity })
 * const listener = await transport.listen('libp2p:///ip4/127.0.0.1/tcp/0', (conn) => { ... })
 * const conn = await transport.dial(listener.addrs()[0], { remotePeer: otherDid })
 * ```
 *
 * @packageDocumentation
 */
import './polyfill.js'
import type { Transport } from '@kos-mesh/interface'
import type { Libp2p, PeerId } from '@libp2p/interface'
import { Libp2pTransport } from './transport.js'
import type { Libp2pComponents, Libp2pTransportInit } from './transport-options.js'

export * from './errors.js'
export { LimitedConnectionError, RelayDataLimitError, LIMITED_RESERVE_BYTES, wireBytes } from './limited.js'
export { DEFAULTS, type Libp2pTransportInit, type Libp2pComponents } from './transport-options.js'
export { KLP_PROTOCOL } from './protocol.js'
export type { Libp2pListener } from './listener.js'
export { peerIdFromDid, didFromPeerId, privateKeyFromIdentity } from './peer-id.js'
export { LIBP2P_SCHEME, parseLibp2pAddress, formatLibp2pAddress, type Libp2pAddress } from './address.js'
export { FRAME_KIND_DATA } from './data-frame.js'
export type { Libp2pConnection } from './connection.js'
export * from './reachability/index.js'
import type { ReachabilityReport } from './reachability/index.js'
export * from './discovery/index.js'

/** The libp2p transport with a few extras over the `Transport` contract. */
export interface Libp2pTransportApi extends Transport {
  /** `/kos/klp/1.0.0` */
  readonly protocol: string
  /** The libp2p host: the one passed in, or the one created at the first listen/dial (undefined before). */
  readonly libp2p: Libp2p | undefined
  /** The local DID (= the host's PeerId as did:key). */
  readonly did: string
  /** The local PeerId (= the identity's Ed25519 key). */
  readonly peerId: PeerId
  /** KLP connections open (both directions). */
  readonly connectionCount: number
  /** The spec's NetworkInfo of the host now (nat_type, connectivity, public and relay addresses), once it runs. */
  networkInfo(): ReachabilityReport | undefined
}

/**
 * `libp2pTransport(init)(components)` returns a Transport (js-libp2p module shape). Without
 * `init.libp2p` the transport creates its own host from `components.identity` on first use.
 */
export function libp2pTransport(init: Libp2pTransportInit = {}): (components: Libp2pComponents) => Libp2pTransportApi {
  return (components) => new Libp2pTransport(init, components)
}
