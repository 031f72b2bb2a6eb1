/**
 * The node's DHT and gossip services (`services.dht`, `services.gossip`, on by default): factories
 * wrapping @kos-mesh/peer-discovery's `dhtService` and `gossipService` with the node's components
 * (router, signer, verifier, clock, logger, and its store for the DHT's contacts), and the two
 * discovery sources the discovery service merges from when asked (`use_dht`, `use_gossip`).
 *
 * The sources are lazy: they read `components.dht` / `components.gossip` when asked, so the
 * discovery service can be built before, after or without them (no ordering between the
 * services), and a call made inside `collectFoundBy` learns which source returned which DID.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { DiscoveryMethod, type AbortOptions } from '@kos-mesh/interface'
import {
  createRecordPeek,
  defaultGroupOf,
  dhtService,
  gossipService,
  type Contact,
  type DhtInit,
  type DhtService,
  type DiscoverySource,
  type GossipService,
  type GossipServiceInit,
  type LocalNodeInit,
  type PeerQuery,
} from '@kos-mesh/peer-discovery'
import { defineService, type NodeComponents, type NodeService } from './components.js'

/** Which sources returned which DIDs during one `discoverPeers` call (DID -> source names). */
export type FoundBy = Map<string, Set<string>>

const foundByStore = new AsyncLocalStorage<FoundBy>()
const peek = createRecordPeek()

/** Runs `fn` and collects, for the discovery sources asked inside it, the DIDs each returned. */
export async function collectFoundBy<T>(fn: () => Promise<T>): Promise<{ result: T; foundBy: FoundBy }> {
  const foundBy: FoundBy = new Map()
  const result = await foundByStore.run(foundBy, fn)
  return { result, foundBy }
}

function note(name: string, bytes: Uint8Array): void {
  const store = foundByStore.getStore()
  const did = store === undefined ? undefined : peek(bytes)?.peerId
  if (store === undefined || did === undefined) return
  let s = store.get(did)
  if (s === undefined) store.set(did, (s = new Set()))
  s.add(name)
}

/** A source that asks `get()` (the service, once created) at each call; none: no records. */
function lazySource(method: DiscoveryMethod, name: string, get: () => DiscoverySource | undefined): DiscoverySource {
  return {
    method,
    name,
    async findPeers(query: PeerQuery, options?: AbortOptions): Promise<Uint8Array[]> {
      const source = get()
      if (source === undefined) return []
      const out: Uint8Array[] = []
      for await (const bytes of await source.findPeers(query, options)) {
        note(name, bytes)
        out.push(bytes)
      }
      return out
    },
  }
}

/** The DHT and gossip sources of the discovery service (lazy; see the module comment). */
export function meshSources(c: NodeComponents): DiscoverySource[] {
  return [
    lazySource(DiscoveryMethod.DHT, 'dht', () => c.dht as DhtService | undefined),
    lazySource(DiscoveryMethod.GOSSIP, 'gossip', () => (c.gossip as GossipService | undefined)?.source),
  ]
}

const LOOPBACK_RE = /^[a-z][a-z0-9+.-]*:\/\/(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|localhost)(:\d+)?(\/|$)/

/**
 * The DHT's diversity group of a contact: the default (the /24 or /48 of its address, so one
 * operator cannot fill the table), except that a loopback address is a group of its own (nodes
 * on one machine are told apart by port, not lumped into one group of 2 per bucket).
 */
export function nodeGroupOf(contact: Contact): string {
  const first = contact.addrs.find((a) => a.startsWith('tcp://')) ?? contact.addrs[0]
  if (first !== undefined && LOOPBACK_RE.test(first)) return `loopback:${first}`
  return defaultGroupOf(contact)
}

/**
 * The DHT service factory (`services.dht`): Kademlia over the node's router, its routing table's
 * contacts kept in the node's store (`dht/contact/<did>`), this node's record as discovery
 * publishes it (`node`: type, capabilities, published addresses) unless `init.node` says.
 */
export function dhtNodeService(init: DhtInit = {}, node?: LocalNodeInit): NodeService<DhtService> {
  return defineService(['router', 'signer', 'signatureVerifier', 'clock', 'logger', 'storage'], (c) =>
    dhtService({ ...(node === undefined ? {} : { node }), ...init, kad: { groupOf: nodeGroupOf, ...init.kad } })({
      router: c.router,
      signer: c.signer,
      signatureVerifier: c.signatureVerifier,
      clock: c.clock,
      logger: c.logger,
      store: c.storage,
    }),
  )
}

/**
 * The gossip service factory (`services.gossip`): HyParView membership and Plumtree broadcast over
 * the node's router (it installs the router's broadcast strategy), and a `gossip` source.
 */
export function gossipNodeService(init: GossipServiceInit = {}, node?: LocalNodeInit): NodeService<GossipService> {
  return defineService(['router', 'signer', 'signatureVerifier', 'clock', 'logger'], (c) =>
    gossipService({ ...(node === undefined ? {} : { node }), ...init })({
      router: c.router,
      signer: c.signer,
      signatureVerifier: c.signatureVerifier,
      clock: c.clock,
      logger: c.logger,
    }),
  )
}

/** The default `dht` and `gossip` services of a node (`false` when turned off). */
export function meshServices(init: { dht?: DhtInit | false; gossip?: GossipServiceInit | false; discovery?: { node?: LocalNodeInit } }): Record<string, NodeService | false> {
  const node = init.discovery?.node
  return {
    dht: init.dht === false ? false : dhtNodeService(init.dht ?? {}, node),
    gossip: init.gossip === false ? false : gossipNodeService(init.gossip ?? {}, node),
  }
}
