/**
 * The node's mesh operations (`node.mesh`): discovery through the DHT and gossip sources, DHT node
 * and provider lookups, broadcasts (sent through the router's broadcast, which the gossip service
 * spreads; received ones recorded and logged), the DHT join (from the connected peers, after the
 * first connection and after each bootstrap, then the table is saved), and the summary that status
 * and metrics report.
 */
import { InvalidParametersError, KLPMessageType, ProcessingStatus, type AbortOptions, type Clock, type DiscoveredPeer, type KLPValue, type Logger, type MessageHandler, type NetworkAddress, type PeerInfo, type TimerHandle } from '@kos-mesh/interface'
import type { Router } from '@kos-mesh/klp-router'
import { CAPABILITY_FLAGS, type DhtService, type GossipService, type NodeRecord, type PeerDiscovery } from '@kos-mesh/peer-discovery'
import type { EventLog } from './events.js'
import { collectFoundBy } from './mesh-services.js'
import { errName } from './reasons.js'
import { NodeNotStartedError, ServiceOffError } from './errors.js'
import type { UndoSteps } from './node-services.js'

/** The path received broadcasts are handled at (the router's default broadcast target path). */
export const BROADCAST_PATH = '/broadcast'
/** Received broadcasts remembered (the newest). */
export const MAX_BROADCASTS_KEPT = 64
/** Largest broadcast data kept in the received list (JSON characters); larger data is summarized. */
export const MAX_BROADCAST_KEPT_CHARS = 16 * 1024
/** Largest broadcast this node sends through `mesh.broadcast` (JSON characters). */
export const MAX_BROADCAST_CHARS = 64 * 1024

/** What `node.mesh.discover()` looks for, and where. */
export interface MeshDiscoverQuery {
  /** Boolean capabilities every peer must have (`vector_storage`, ...). */
  capabilities?: string[]
  /** Most peers returned. */
  max?: number
  /** Hops of the gossip peer-list walk (the spec's gossip_hops). */
  hops?: number
  /** Ask the DHT. Default true (when the node runs it). */
  dht?: boolean
  /** Ask the gossip overlay. Default true (when the node runs it). */
  gossip?: boolean
}

/** A discovered peer as the node reports it. */
export interface MeshPeer {
  peer_id: string
  authority?: string
  node_type?: string
  /** How the node first learned of the peer (the registry keeps the first way). */
  discovery_method: string
  /** The sources that returned the peer's record during this call (`dht`, `gossip`). */
  found_by: string[]
  trust_score: number
  /** The true boolean capabilities. */
  capabilities: string[]
  addresses: string[]
  connected: boolean
  discovery_timestamp: number
}

/** What `node.mesh.discover()` found, and which sources it asked. */
export interface MeshDiscoverResult {
  /** The peers found, ranked by the discovery service (at most `query.max`). */
  peers: MeshPeer[]
  /** The sources asked: `dht` and `gossip`, each `asked`, `skipped` (not asked) or `off` (not running). */
  sources: Record<'dht' | 'gossip', 'asked' | 'skipped' | 'off'>
}

/** A node's verified record as `dht find` reports it. */
export interface MeshRecord {
  did: string
  authority?: string
  /** The node type (its role): PeerNode, GatewayNode, ArchiveNode, ValidatorNode. */
  role: string
  capabilities: string[]
  addresses: string[]
  /** When the record was signed and when it expires, ms since the epoch. */
  timestamp: number
  expires_at: number
  node: NodeRecord['node']
}

/** A verified provider record of a name in the DHT, as `dht providers` reports it. */
export interface MeshProvider {
  /** The provider's DID. */
  provider: string
  /** The name provided (`capability:vector_storage`, ...). */
  name: string
  /** When the record expires, ms since the epoch. */
  expires_at: number
  /** The provider's authority, when its node record is known. */
  authority?: string
  /** Transport addresses it can be dialled at (from its node record; [] when unknown). */
  addresses: string[]
}

/** A BROADCAST_ANNOUNCE this node received (the newest MAX_BROADCASTS_KEPT are kept). */
export interface ReceivedBroadcast {
  /** The message id. */
  message_id: string
  /** The DID that signed it. */
  from: string
  /** Its origin's authority. */
  authority: string
  /** The neighbour it came from. */
  via: string
  data: KLPValue
  received_at: number
}

/** The mesh counters of `status` and the metrics. */
export interface MeshSummary {
  /** The DHT: routing table contacts, provider records held, names provided, records known, requests sent and served (null when the node runs no DHT). */
  dht: { contacts: number; providersStored: number; provided: string[]; knownRecords: number; restored: number; joined: boolean; requestsSent: number; requestsServed: number } | null
  /** The gossip overlay: active and passive view sizes, records, messages sent and received (null when off). */
  gossip: { active: number; passive: number; records: number; sent: number; received: number } | null
  /** BROADCAST_ANNOUNCE messages this node sent and received. */
  broadcasts: { sent: number; received: number }
}

/** What a NodeMesh uses of its node. @internal */
export interface NodeMeshContext {
  clock: Clock
  log: Logger
  events: EventLog
  service<S>(name: string): S | undefined
}

/** JSON text of a value (bigints as strings), to measure and log it. */
function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x instanceof Uint8Array ? `<${x.byteLength} bytes>` : x)) ?? 'null'
}

function addressText(a: NetworkAddress): string {
  return a.port > 0 ? `${a.protocol}://${a.address}:${a.port}` : `${a.protocol}://${a.address}`
}

function capabilityList(caps: object): string[] {
  const c = caps as Record<string, unknown>
  return CAPABILITY_FLAGS.filter((f) => c[f] === true)
}

function recordView(r: NodeRecord): MeshRecord {
  return {
    did: r.peerId,
    ...(r.address?.authority === undefined ? {} : { authority: r.address.authority }),
    role: r.node.node_type,
    capabilities: capabilityList(r.node.capabilities),
    addresses: r.node.network_info.addresses.map(addressText),
    timestamp: r.timestamp,
    expires_at: r.expiresAt,
    node: r.node,
  }
}

/**
 * The node's mesh operations (`node.mesh`): discovery through the DHT and gossip, DHT node and
 * provider lookups, and broadcasts sent and received. The node makes it; the lookups need a
 * started node (NodeNotStartedError) and the service they use (ServiceOffError without it).
 */
export class NodeMesh {
  private router: Router | undefined
  private joined = false
  private joining: Promise<void> | undefined
  private joinAgain = false
  private joinTimer: TimerHandle | undefined
  private sent = 0
  private receivedCount = 0
  private readonly received: ReceivedBroadcast[] = []

  /** @internal */
  constructor(private readonly c: NodeMeshContext) {}

  private get dht(): DhtService | undefined {
    return this.c.service<DhtService>('dht')
  }

  private get gossip(): GossipService | undefined {
    return this.c.service<GossipService>('gossip')
  }

  private started(): Router {
    if (this.router === undefined) throw new NodeNotStartedError('expected a started node, got a stopped one')
    return this.router
  }

  /**
   * Registers the broadcast handler and the join on first connection; `undo` gets their removal.
   * @internal
   */
  start(router: Router, undo: UndoSteps): void {
    this.router = router
    this.joined = false
    router.handle(KLPMessageType.BROADCAST_ANNOUNCE, this.onBroadcast, { path: BROADCAST_PATH })
    const onIdentify = (e: CustomEvent<PeerInfo>): void => {
      if (!this.joined && e.detail.authority !== undefined) this.scheduleJoin()
    }
    router.addEventListener('peer:identify', onIdentify)
    undo.push(() => {
      router.removeEventListener('peer:identify', onIdentify)
      router.unhandle(KLPMessageType.BROADCAST_ANNOUNCE, { path: BROADCAST_PATH })
      this.c.clock.clearTimeout(this.joinTimer)
      this.router = undefined
    })
  }

  private scheduleJoin(): void {
    if (this.joinTimer !== undefined) return
    this.joinTimer = this.c.clock.setTimeout(() => {
      this.joinTimer = undefined
      void this.joinDht()
    }, 250, { unref: true })
  }

  /**
   * Joins the DHT through the connected peers (a ping of each, a lookup of the own id, a refresh
   * of the buckets), provides this node's capabilities, then saves the table. Never throws; a
   * join asked while one runs runs once more after it.
   */
  async joinDht(): Promise<void> {
    const dht = this.dht
    if (dht === undefined || this.router === undefined) return
    if (this.joining !== undefined) {
      this.joinAgain = true
      return this.joining
    }
    this.joining = (async () => {
      do {
        this.joinAgain = false
        try {
          const r = await dht.bootstrap()
          this.joined = true
          this.c.events.emit('dht', 'info', 'dht joined', { reached: r.seedsReached, contacts: r.contacts, provided: Object.keys(r.provided) })
          await dht.refresh().catch((err: unknown) => this.c.log.debug('dht table not saved', { err: errName(err) }))
        } catch (err) {
          this.c.log.debug('dht join failed', { err: errName(err) })
        }
      } while (this.joinAgain && this.router !== undefined)
    })().finally(() => {
      this.joining = undefined
    })
    return this.joining
  }

  /** Ranked peers (the discovery service's `discoverPeers`, merging the DHT and gossip sources). */
  async discover(query: MeshDiscoverQuery = {}, options: AbortOptions = {}): Promise<MeshDiscoverResult> {
    const router = this.started()
    const discovery = this.c.service<PeerDiscovery>('discovery')
    if (discovery === undefined) throw new ServiceOffError('expected the node to run the discovery service, got none (services.discovery: false)')
    const useDht = query.dht !== false && this.dht !== undefined
    const useGossip = query.gossip !== false && this.gossip !== undefined
    const { result, foundBy } = await collectFoundBy(() =>
      discovery.discoverPeers(
        {
          use_dht: useDht,
          use_gossip: useGossip,
          ...(query.capabilities === undefined || query.capabilities.length === 0 ? {} : { required_capabilities: query.capabilities }),
          ...(query.max === undefined ? {} : { max_peers: query.max }),
          ...(query.hops === undefined ? {} : { gossip_hops: query.hops }),
        },
        options,
      ),
    )
    const connected = new Set(router.peers().map((p) => p.did))
    const view = (p: DiscoveredPeer): MeshPeer => {
      const entry = discovery.registry.get(p.peer_id)
      const authority = entry?.record.address?.authority ?? router.routingTable.authorityOf(p.peer_id)
      return {
        peer_id: p.peer_id,
        ...(authority === undefined ? {} : { authority }),
        ...(entry === undefined ? {} : { node_type: entry.record.node.node_type }),
        discovery_method: p.discovery_method,
        found_by: [...(foundBy.get(p.peer_id) ?? [])].sort(),
        trust_score: p.trust_score,
        capabilities: capabilityList(p.capabilities),
        addresses: p.addresses.map(addressText),
        connected: connected.has(p.peer_id),
        discovery_timestamp: p.discovery_timestamp,
      }
    }
    const state = (running: boolean, asked: boolean): 'asked' | 'skipped' | 'off' => (!running ? 'off' : asked ? 'asked' : 'skipped')
    return { peers: result.map(view), sources: { dht: state(this.dht !== undefined, useDht), gossip: state(this.gossip !== undefined, useGossip) } }
  }

  private needDht(): DhtService {
    this.started()
    const dht = this.dht
    if (dht === undefined) throw new ServiceOffError('expected the node to run the DHT, got none ("dht": false in its config)')
    return dht
  }

  /** The verified record of `did`, looked up in the DHT. Throws NodeNotFoundError. */
  async findNode(did: string, options: AbortOptions = {}): Promise<MeshRecord> {
    return recordView(await this.needDht().findNode(did, options))
  }

  /** The verified providers of `name` (`capability:vector_storage`, `agent:<kind>`, ...). */
  async findProviders(name: string, options: AbortOptions & { count?: number } = {}): Promise<MeshProvider[]> {
    const found = await this.needDht().findProviders(name, options)
    return found.map((p) => ({
      provider: p.provider,
      name: p.name,
      expires_at: p.expiresAt,
      ...(p.record?.address?.authority === undefined ? {} : { authority: p.record.address.authority }),
      addresses: p.record?.node.network_info.addresses.map(addressText) ?? [],
    }))
  }

  /** Sends a BROADCAST_ANNOUNCE (spread by the gossip service, else flooded). */
  async broadcast(data: KLPValue, options: AbortOptions = {}): Promise<{ message_id: string; strategy: 'gossip' | 'flooding'; neighbours: number }> {
    const router = this.started()
    const size = toJson(data).length
    if (size > MAX_BROADCAST_CHARS) throw new InvalidParametersError(`expected broadcast data of at most ${MAX_BROADCAST_CHARS} characters as JSON, got ${size}`)
    const msg = await router.broadcast({ data }, options)
    this.sent++
    const gossip = this.gossip
    const neighbours = gossip?.isStarted() === true ? gossip.neighbors().length : router.peers().length
    this.c.events.emit('broadcast', 'info', 'broadcast sent', { id: msg.metadata.message_id, bytes: size, neighbours })
    return { message_id: msg.metadata.message_id, strategy: gossip?.isStarted() === true ? 'gossip' : 'flooding', neighbours }
  }

  /** The broadcasts received (newest last), at most MAX_BROADCASTS_KEPT. */
  broadcasts(): ReceivedBroadcast[] {
    return this.received.map((b) => ({ ...b }))
  }

  private readonly onBroadcast: MessageHandler = async (msg, ctx) => {
    this.receivedCount++
    const text = toJson(msg.payload.data ?? null)
    const data: KLPValue = text.length <= MAX_BROADCAST_KEPT_CHARS ? (msg.payload.data ?? null) : { omitted: `larger than ${MAX_BROADCAST_KEPT_CHARS} characters`, size: text.length }
    const b: ReceivedBroadcast = { message_id: msg.metadata.message_id, from: ctx.signerDid, authority: msg.source.authority, via: ctx.fromPeer, data, received_at: this.c.clock.now() }
    this.received.push(b)
    if (this.received.length > MAX_BROADCASTS_KEPT) this.received.shift()
    this.c.events.emit('broadcast', 'info', 'broadcast received', { id: b.message_id, from: b.from, authority: b.authority, via: b.via, bytes: text.length, data: text.length <= 200 ? data : `${text.slice(0, 200)}...` })
    return { status: ProcessingStatus.PROCESSED }
  }

  /** What status and metrics report (null for a service the node does not run). */
  summary(): MeshSummary {
    const dht = this.dht
    const gossip = this.gossip
    const d = dht?.stats()
    const g = gossip?.isStarted() === true ? gossip.stats() : undefined
    return {
      dht: d === undefined || dht === undefined ? null : { contacts: d.contacts, providersStored: d.providersStored, provided: dht.provided(), knownRecords: d.knownRecords, restored: d.restored, joined: this.joined, requestsSent: d.requestsSent, requestsServed: d.requestsServed },
      gossip: g === undefined || gossip === undefined ? null : { active: gossip.neighbors().length, passive: gossip.passive().length, records: g.records, sent: g.sent, received: g.received },
      broadcasts: { sent: this.sent, received: this.receivedCount },
    }
  }
}
