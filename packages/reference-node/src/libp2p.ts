/**
 * The libp2p transport as a node transport factory: KLP as the libp2p protocol `/kos/klp/1.0.0`
 * on a js-libp2p host (TCP + WebSockets, Noise, Yamux, identify, ping) whose key is the node's
 * Ed25519 identity, so the node's libp2p PeerId is its DID. Its own module, so that the CLI loads
 * libp2p only for a node configured with `"transport": "libp2p"`.
 */
import { libp2pTransport, type Libp2pTransportInit } from '@kos-mesh/transport-libp2p'
import type { Datastore } from 'interface-datastore'
import type { TransportFactory } from './node-types.js'
import { withLibp2pServices } from './libp2p-services.js'

export type { Libp2pTransportInit } from '@kos-mesh/transport-libp2p'

/**
 * `libp2p(init)`: the node's libp2p transport (`@kos-mesh/transport-libp2p`), listening on
 * `libp2p:///ip4/0.0.0.0/tcp/4747`-style addresses and dialling `libp2p:///ip4/.../tcp/4747/p2p/12D3KooW...[/did:...]`.
 * `init` is passed through (frame and buffer bounds, timeouts, connection limits, `libp2pOptions`
 * merged over the defaults of the host it creates, or `libp2p`: a host of yours to run KLP on).
 */
export function libp2p(init: Libp2pTransportInit & { datastore?: Datastore } = {}): TransportFactory {
  // datastore: the host's Datastore (peer store, DHT records), e.g. the node's levelStore(...).datastore
  const { datastore, ...rest } = init
  const make = withLibp2pServices(datastore === undefined ? rest : { ...rest, libp2pOptions: { ...rest.libp2pOptions, datastore } }, libp2pTransport)
  return ({ identity, logger }) => make({ identity, logger })
}
