/**
 * The js-libp2p host the transport creates when none is passed in (TCP + WebSockets, Noise, Yamux,
 * identify, ping, the identity's key), and the part of js-libp2p's internals the transport uses to
 * add listen addresses to a running host. Internal.
 */
import type { Identity } from '@kos-mesh/did-security'
import { identify } from '@libp2p/identify'
import type { Libp2p, Listener as P2PListener } from '@libp2p/interface'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import type { Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { privateKeyFromIdentity } from './peer-id.js'
import type { Libp2pTransportInit } from './transport-options.js'

/** The part of libp2p's internal TransportManager the transport uses to bind addresses on a running host. */
export interface TransportManagerView {
  listen(addrs: Multiaddr[]): Promise<void>
  getListeners(): P2PListener[]
}

/** The host's TransportManager, when it is a js-libp2p host that exposes its components. */
export function transportManagerOf(host: Libp2p): TransportManagerView | undefined {
  // js-libp2p's Libp2p class exposes its components (not part of the Libp2p interface)
  const tm = (host as unknown as { components?: { transportManager?: Partial<TransportManagerView> } }).components?.transportManager
  return typeof tm?.listen === 'function' && typeof tm.getListeners === 'function' ? (tm as TransportManagerView) : undefined
}

/** How the transport's own host is made. */
export interface OwnedHostInit {
  identity: Identity
  /** The addresses of the first listen() (the host starts listening there). */
  listenAddrs: Multiaddr[]
  /** KLP streams per connection and direction (also Yamux's early stream allowance). */
  maxStreams: number
  /** Yamux's maxStreamWindowSize, bytes. */
  streamWindowBytes: number
}

/**
 * Creates (and starts) the transport's own host: the defaults, then `init.libp2pOptions`, with the
 * listen and announce addresses merged, not replaced, and the identity's key.
 */
export function createOwnedHost(init: Libp2pTransportInit, o: OwnedHostInit): Promise<Libp2p> {
  const extra = init.libp2pOptions?.addresses
  const announce = [...(init.announce ?? []), ...(extra?.announce ?? [])]
  return createLibp2p({
    transports: [tcp(), webSockets()],
    connectionEncrypters: [noise()],
    // maxEarlyStreams: a dialer may open many KLP streams at once on a fresh connection, before this
    // side's upgrade has attached its stream listener (Yamux's default of 10 resets the connection)
    streamMuxers: [yamux({ maxEarlyStreams: o.maxStreams, streamOptions: { maxStreamWindowSize: o.streamWindowBytes } })],
    services: { identify: identify(), ping: ping() },
    ...init.libp2pOptions,
    // merged, not replaced: the first listen() address and the announce option stay
    addresses: {
      ...extra,
      listen: [...o.listenAddrs.map((m) => m.toString()), ...(extra?.listen ?? [])],
      ...(announce.length === 0 ? {} : { announce }),
    },
    privateKey: privateKeyFromIdentity(o.identity),
  })
}
