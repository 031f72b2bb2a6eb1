/**
 * The libp2p features of a node's config (`libp2p.relay`, `autonat`, `dcutr`, `dht`, `gossipsub`)
 * as services of the host @kos-mesh/transport-libp2p creates (merged into its `libp2pOptions`), the
 * libp2p kad-dht as a discovery source of the node (`libp2pDhtDiscovery`), and the host's
 * NetworkInfo (`libp2pNetworkInfo`), and gossipsub connected to the router (`libp2pGossipsub`).
 *
 * kad-dht, gossipsub and multiaddr are dependencies of transport-libp2p, not of this package: they
 * are imported (once, only when configured) from where transport-libp2p resolves them.
 */
import { createSignatureVerifier } from '@kos-mesh/did-security'
import { DiscoveryMethod, KosMeshError, type AbortOptions, type Transport } from '@kos-mesh/interface'
import { CAPABILITY_FLAGS, createRecordVerifier, type DiscoverySource, type PeerDiscovery, type PeerQuery } from '@kos-mesh/peer-discovery'
import {
  gossipsubBroadcast,
  kosDhtRecordOptions,
  libp2pDhtSource,
  networkInfoOf,
  reachabilityOptions,
  type GossipsubBroadcast,
  type Libp2pDhtSource,
  type Libp2pTransportApi,
  type Libp2pTransportInit,
} from '@kos-mesh/transport-libp2p'
import { defineService, type NodeService } from './components.js'
import type { KosLibp2pInit, Libp2pFeatures } from './config-libp2p.js'

/** A module transport-libp2p depends on could not be loaded. */
export class Libp2pModuleUnavailableError extends KosMeshError {
  static override readonly code: string = 'ERR_LIBP2P_MODULE_UNAVAILABLE'
  override name = 'Libp2pModuleUnavailableError'
  override readonly code: string = 'ERR_LIBP2P_MODULE_UNAVAILABLE'
}

type AnyModule = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any
const modules = new Map<string, Promise<AnyModule>>()

/**
 * Imports one of the optional libp2p modules (kad-dht, gossipsub, multiaddr: dependencies of this
 * package) only when a feature that needs it is turned on, so a node that does not use them never
 * loads them. A failed import is a typed error naming the module.
 */
export function importLibp2pModule(name: string): Promise<AnyModule> {
  let p = modules.get(name)
  if (p === undefined) {
    p = (import(name) as Promise<AnyModule>).catch((err: unknown) => {
      throw new Libp2pModuleUnavailableError(`expected ${name} to be installed (a dependency of @kos-mesh/reference-node), got none`, { cause: err })
    })
    modules.set(name, p)
  }
  return p
}

/** What a node's features resolve to (the defaults filled in). */
export interface ResolvedLibp2pFeatures {
  relayClient: boolean
  relayServer: boolean
  autonat: boolean
  dcutr: boolean
  dht: { enabled: boolean; clientMode?: boolean; bootstrap: string[] }
  gossipsub: boolean
}

export function resolveLibp2pFeatures(f: Libp2pFeatures = {}): ResolvedLibp2pFeatures {
  return {
    relayClient: f.relay?.client ?? true,
    relayServer: f.relay?.server ?? false,
    autonat: f.autonat ?? true,
    dcutr: f.dcutr ?? true,
    dht: { enabled: f.dht?.enabled ?? false, ...(f.dht?.clientMode === undefined ? {} : { clientMode: f.dht.clientMode }), bootstrap: f.dht?.bootstrap ?? [] },
    gossipsub: f.gossipsub ?? false,
  }
}

/**
 * The `libp2pOptions` of a node's features: transports (TCP, WebSockets and, with relay.client, the
 * circuit relay transport), identify/ping, AutoNAT v2, DCUtR, the relay server, kad-dht (with our
 * `kos` record namespace) and gossipsub. Loads kad-dht / gossipsub only when configured.
 */
export async function libp2pFeatureOptions(features: Libp2pFeatures = {}): Promise<NonNullable<Libp2pTransportInit['libp2pOptions']>> {
  const f = resolveLibp2pFeatures(features)
  const base = reachabilityOptions({ relay: f.relayServer, ...(f.autonat ? {} : { autonat: false }), ...(f.dcutr ? {} : { dcutr: false }) })
  const transports = f.relayClient ? base.transports ?? [] : (base.transports ?? []).slice(0, 2)
  const services: Record<string, unknown> = { ...base.services }
  if (f.dht.enabled) {
    const { kadDHT, passthroughMapper } = await importLibp2pModule('@libp2p/kad-dht')
    const recordVerifier = createRecordVerifier({ signatureVerifier: createSignatureVerifier() })
    services.dht = kadDHT({
      ...kosDhtRecordOptions({ recordVerifier }),
      // a node's own addresses (private ones included, a LAN or one machine) are kept in its peer records
      peerInfoMapper: passthroughMapper,
      ...(f.dht.clientMode === undefined ? {} : { clientMode: f.dht.clientMode }),
    })
  }
  if (f.gossipsub) {
    const { gossipsub } = await importLibp2pModule('@libp2p/gossipsub')
    services.pubsub = gossipsub({ emitSelf: false })
  }
  return { transports, services } as NonNullable<Libp2pTransportInit['libp2pOptions']>
}

/**
 * The hook of libp2p.ts: `libp2pTransport(init)` with `init.features` turned into `libp2pOptions`
 * (merged under `init.libp2pOptions`). The host is created at the first listen/dial, which waits for
 * the options (the optional modules load); `dht.bootstrap` peers are dialled once it runs.
 */
export function withLibp2pServices<C>(init: KosLibp2pInit, make: (init: Libp2pTransportInit) => (components: C) => Libp2pTransportApi): (components: C) => Libp2pTransportApi {
  const { features, ...rest } = init
  if (features === undefined) return make(rest)
  const options: NonNullable<Libp2pTransportInit['libp2pOptions']> = { ...rest.libp2pOptions }
  const ready = libp2pFeatureOptions(features).then((o) => {
    Object.assign(options, { ...o, ...rest.libp2pOptions, services: { ...o.services, ...rest.libp2pOptions?.services } })
  })
  ready.catch(() => {}) // reported by the first listen/dial
  const bootstrap = resolveLibp2pFeatures(features).dht.bootstrap
  const factory = make({ ...rest, libp2pOptions: options })
  return (components) => {
    const t = factory(components)
    let booted = false
    const boot = (): void => {
      if (booted || bootstrap.length === 0 || t.libp2p === undefined) return
      booted = true
      void importLibp2pModule('@multiformats/multiaddr').then(({ multiaddr }) => Promise.allSettled(bootstrap.map((a) => t.libp2p?.dial(multiaddr(a)))))
    }
    return new Proxy(t, {
      get(target, prop) {
        if (prop === 'listen' || prop === 'dial') {
          return async (...args: unknown[]) => {
            await ready
            const r = await (target[prop] as (...a: unknown[]) => Promise<unknown>).apply(target, args)
            boot()
            return r
          }
        }
        const v = Reflect.get(target, prop, target) as unknown
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
      },
    })
  }
}

/** The libp2p host of the node's transports (the first libp2p transport that has one). */
export function libp2pHostOf(transports: readonly Transport[]): Libp2pTransportApi['libp2p'] {
  for (const t of transports) {
    const h = (t as Partial<Libp2pTransportApi>).libp2p
    if (h !== undefined) return h
  }
  return undefined
}

/** `kos-mesh status`' libp2p NetworkInfo (nat_type, connectivity_status, addresses incl. relay ones); undefined off libp2p. */
export function libp2pNetworkInfo(transports: readonly Transport[]): ReturnType<typeof networkInfoOf> | undefined {
  const host = libp2pHostOf(transports)
  return host === undefined ? undefined : networkInfoOf(host)
}

export interface Libp2pDhtDiscovery {
  /** The node service (`services.libp2pDht`): publishes the record and capability providers. */
  service: NodeService<Libp2pDhtNodeService>
  /** A `dht` discovery source (for `discovery.sources`) asking the libp2p kad-dht. */
  source: DiscoverySource
}

export interface Libp2pDhtNodeService {
  readonly source: Libp2pDhtSource
  /** Publishes the node's signed record and provides its capabilities. */
  publish(options?: AbortOptions): Promise<void>
  start(): Promise<void>
  stop(): Promise<void>
}

/**
 * The libp2p kad-dht as a discovery source of the node: a service (needs the node's libp2p transport
 * with `dht.enabled`, and `discovery`) that publishes this node's signed record and provides its
 * capabilities at start and again at half the record's lifetime, and a lazy `dht` source.
 */
export function libp2pDhtDiscovery(init: { queryTimeoutMs?: number } = {}): Libp2pDhtDiscovery {
  let current: Libp2pDhtSource | undefined
  const service = defineService(['transports', 'discovery', 'signatureVerifier', 'clock', 'logger'], (c) => {
    const host = libp2pHostOf(c.transports)
    if (host === undefined) throw new Libp2pModuleUnavailableError('expected a node on transport libp2p (with libp2p.dht.enabled), got none')
    const source = libp2pDhtSource(init.queryTimeoutMs === undefined ? {} : { queryTimeoutMs: init.queryTimeoutMs })({ libp2p: host, recordVerifier: createRecordVerifier({ signatureVerifier: c.signatureVerifier, clock: c.clock }) })
    const discovery = c.discovery as PeerDiscovery
    let timer: unknown
    let stopped = false
    const publish = async (options: AbortOptions = {}): Promise<void> => {
      const record = discovery.localRecord()
      if (record === undefined) return
      await source.publishRecord(record.bytes, options)
      for (const cap of CAPABILITY_FLAGS) if ((record.node.capabilities as unknown as Record<string, unknown>)[cap] === true) await source.provide(cap, options)
    }
    const schedule = (): void => {
      if (stopped) return
      const record = discovery.localRecord()
      const ms = record === undefined ? 60_000 : Math.max(10_000, Math.floor((record.expiresAt - c.clock.now()) / 2))
      timer = c.clock.setTimeout(() => {
        publish().catch((err: Error) => c.logger.warn('libp2p dht publish failed', { err: err.name })).finally(schedule)
      }, ms)
    }
    const svc: Libp2pDhtNodeService = {
      source,
      publish,
      async start() {
        current = source
        stopped = false
        // the first publish waits for DHT peers: not awaited by start
        publish().catch((err: Error) => c.logger.debug('libp2p dht publish failed', { err: err.name }))
        schedule()
      },
      async stop() {
        stopped = true
        current = undefined
        c.clock.clearTimeout(timer as never)
      },
    }
    return svc
  })
  const source: DiscoverySource = {
    method: DiscoveryMethod.DHT,
    name: 'libp2p-kad-dht',
    async findPeers(query: PeerQuery, options?: AbortOptions): Promise<Uint8Array[]> {
      if (current === undefined) return []
      const out: Uint8Array[] = []
      for await (const b of current.findPeers(query, options)) out.push(b)
      return out
    },
  }
  return { service, source }
}

export interface Libp2pGossipsubNodeService {
  /** The bridge between the host's gossipsub topic `/kos/broadcast/1.0.0` and the router. */
  readonly bridge: GossipsubBroadcast
  start(): Promise<void>
  stop(): Promise<void>
}

/**
 * gossipsub connected to the router (`services.libp2pGossipsub`; needs the node's libp2p transport
 * with `libp2p.gossipsub`): the node's own broadcasts are also published to the topic, and every
 * broadcast gossipsub brings goes through the router's checks to its handlers (once, whichever path
 * brought it first; refusals counted in the router's rejects). The router's broadcast strategy (the
 * gossip service's, when it runs) is wrapped, not replaced: a gossip service started before this
 * one is restarted once so that its strategy is installed through the bridge.
 */
export function libp2pGossipsub(): NodeService<Libp2pGossipsubNodeService> {
  return defineService(['transports', 'router', 'signatureVerifier', 'trustEngine', 'clock', 'logger'], (c) => {
    const host = libp2pHostOf(c.transports)
    if (host === undefined) throw new Libp2pModuleUnavailableError('expected a node on transport libp2p (with libp2p.gossipsub and a libp2p listen address), got none')
    const engine = c.trustEngine as { isRevoked?: (did: string) => boolean }
    // revoked signers are refused by the topic validator already: gossipsub does not spread them
    const isRevoked = typeof engine.isRevoked === 'function' ? engine.isRevoked.bind(engine) : undefined
    const bridge = gossipsubBroadcast()({ libp2p: host, signatureVerifier: c.signatureVerifier, clock: c.clock, ...(isRevoked === undefined ? {} : { isRevoked }) })
    let detach: (() => void) | undefined
    return {
      bridge,
      async start() {
        if (detach !== undefined) return
        bridge.start()
        detach = bridge.attach(c.router)
        const gossip = c.gossip as { isStarted?: () => boolean; start?: () => Promise<void>; stop?: () => Promise<void> } | undefined
        if (gossip?.isStarted?.() === true && gossip.stop !== undefined && gossip.start !== undefined) {
          await gossip.stop()
          await gossip.start()
        }
        c.logger.debug('gossipsub connected to the router', { topic: bridge.topic })
      },
      async stop() {
        detach?.()
        detach = undefined
        bridge.stop()
      },
    }
  })
}
