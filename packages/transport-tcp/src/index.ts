/**
 * @kos-mesh/transport-tcp: KLP over node:net. Every socket runs the did-security handshake, so
 * `connection.remotePeer` is the DID the remote proved; after it, each frame is one encrypted record
 * inside one length-prefixed frame. Bounded buffers with real backpressure, keep-alive pings,
 * handshake/dial timeouts, connection limits and a graceful, authenticated close.
 *
 * @example
 * ```ts
 * const transport = tcp()({ identity })
 * const listener = await transport.listen('tcp://127.0.0.1:0', (conn) => { ... })
 * const conn = await transport.dial(listener.addrs()[0], { remotePeer: otherDid })
 * ```
 *
 * @packageDocumentation
 */
import type { Identity } from '@kos-mesh/did-security'
import type { Transport } from '@kos-mesh/interface'
import type { TcpComponents, TcpInit } from './options.js'
import { TcpTransport } from './transport.js'

export * from './errors.js'
export { DEFAULTS, type TcpInit, type TcpComponents } from './options.js'
export { parseTcpAddress, formatTcpAddress, type TcpAddress } from './address.js'
export type { HandshakeFn, HandshakeIo, HandshakeOptions, SecureSession } from './security.js'
export { FRAME_KIND_HANDSHAKE, FRAME_KIND_RECORD } from './record.js'

/** The TCP transport with a few extras over the `Transport` contract. */
export interface TcpTransportApi extends Transport {
  /** Connections handshaking or open. */
  readonly connectionCount: number
}

/**
 * `tcp(init)(components)` returns a Transport (js-libp2p module shape). No socket is opened before
 * `dial` / `listen`. The second call throws `InvalidParametersError` for a bad limit in `init` (see
 * {@link TcpInit}) or bad `components` (see {@link TcpComponents}).
 */
export function tcp(init: TcpInit<Identity> = {}): (components: TcpComponents<Identity>) => TcpTransportApi {
  return (components) => new TcpTransport<Identity>(init, components)
}
