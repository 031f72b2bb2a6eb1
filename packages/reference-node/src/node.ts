/**
 * `createNode()`: wires identity, transports, storage, router, trust store, agents and services.
 * The agent runtime and the task service come from `@kos-mesh/agents`; this file only wires them.
 * Construction only checks and records; every I/O (keystore, database, sockets) happens in
 * `start()`, and `stop()` undoes it in reverse order.
 */
import { createHash } from 'node:crypto'
import {
  InvalidAddressError,
  InvalidParametersError,
  KLPMessageType,
  NodeType,
  VerificationLevel,
  throwIfAborted,
  type AbortOptions,
  type Clock,
  type FederatedNode,
  type Logger,
  type NodeCapabilities,
  type SignatureVerifier,
  type Startable,
  type Transport,
  type TransportAddress,
  type TrustRequirements,
  systemClock,
} from '@kos-mesh/interface'
import { parseAddress } from '@kos-mesh/klp-codec'
import { createSignatureVerifier, generateIdentity, type Identity } from '@kos-mesh/did-security'
import { klpRouter, strictestTrust, type PeerInfo, type Router, type RouterInit } from '@kos-mesh/klp-router'
import { peerDiscovery, type BootstrapResult, type PeerDiscovery, type PeerDiscoveryInit } from '@kos-mesh/peer-discovery'
import { memoryTransport, type MemoryNetwork } from '@kos-mesh/transport-memory'
import {
  agents as agentRegistry,
  taskService as createTaskService,
  type AgentInit,
  type AgentRegistry,
  type AuthorityResolver,
  type SendTaskOptions,
  type TaskRequest,
  type TaskResult,
  type TaskService,
  type TaskServiceInit,
} from '@kos-mesh/agents'
import { BUILTIN_COMPONENTS, defineService, type NodeComponents, type NodeInfo, type NodeService } from './components.js'
import {
  DuplicateServiceError,
  InvalidConfigError,
  MissingServiceDependencyError,
  NodeNotStartedError,
  ServiceDependencyCycleError,
  UnpinnedAuthorityError,
} from './errors.js'
import { checkDid } from './did.js'
import { isIdentitySource, type IdentitySource } from './identity.js'
import { silentLogger } from './logger.js'
import { memoryStore, type NodeStore } from './storage/memory.js'
import { persistentTrustStore, type PersistentTrustStore, type TrustEntry } from './trust.js'
import { loadPins, PinWriter, type PinChange, type PinValue } from './pins.js'

/** Builds a transport once the node identity is known. */
export type TransportFactory = (components: { identity: Identity; logger: Logger }) => Transport

/** The in-memory transport as a node transport factory (default network: the process-wide one). */
export function memory(init: { network?: MemoryNetwork; maxFrameSize?: number } = {}): TransportFactory {
  return ({ identity }) => memoryTransport({ peerId: identity.did, ...init })
}

/**
 * The task service factory (`services.tasks`), wrapping `@kos-mesh/agents`' `taskService` with the
 * node's components. Needs `router`, `agents` and `clock`; when the node runs discovery, a DID
 * target may also be resolved through the DID's signed node record.
 */
export function taskService(init: TaskServiceInit = {}): NodeService<TaskService> {
  return defineService(['router', 'agents', 'clock'], (c) => {
    // discovery is optional and read lazily (services are added to `c` as they are created)
    const authorityResolver: AuthorityResolver = (did) => {
      const discovery = c.discovery as PeerDiscovery | undefined
      const authority = discovery?.registry?.get(did)?.record.address?.authority
      return typeof authority === 'string' && authority.length > 0 ? authority : undefined
    }
    return createTaskService(init)({ router: c.router, agents: c.agents, clock: c.clock, authorityResolver })
  })
}

/** The discovery service factory (`services.discovery`), wrapping `@kos-mesh/peer-discovery`. */
export function discoveryService(init: PeerDiscoveryInit = {}): NodeService<PeerDiscovery> {
  return defineService(['router', 'signer', 'signatureVerifier', 'clock', 'logger'], (c) =>
    peerDiscovery(init)({ router: c.router, signer: c.signer, signatureVerifier: c.signatureVerifier, clock: c.clock, logger: c.logger }),
  )
}

export interface NodeInit {
  /** The node identity, or a source that loads it at start (see `keystoreIdentity`). Default: a new random identity. */
  identity?: Identity | IdentitySource
  /** KLP authority (`node-a.mesh.kai`). Default: `n<12 hex of sha256(did)>.mesh.kai`. */
  authority?: string
  /** Spec node type published in the node record. Default `PeerNode`. */
  nodeType?: NodeType
  /** Capabilities published in the node record (merged over defaults; `agent_hosting` follows the agents). */
  capabilities?: Partial<NodeCapabilities>
  /** Transport factories. Default `[memory()]`. */
  transports?: TransportFactory[]
  /** Addresses to listen on at start (`tcp://127.0.0.1:0`, `memory://a`). Default none. */
  listen?: TransportAddress[]
  /** Seeds to bootstrap from after listening (`tcp://host:port[/did:...]`). Default none. */
  seeds?: string[]
  /** Key-value store (started and stopped with the node). Default `memoryStore()`. */
  storage?: NodeStore
  /**
   * Services by name, started in dependency order after the router. Merged over the defaults
   * `{ discovery: discoveryService(), tasks: taskService() }`; `false` removes a default.
   */
  services?: Record<string, NodeService | false>
  /** Local agents. Default none. */
  agents?: AgentInit[]
  /** Router options besides authority and listen. */
  router?: Omit<RouterInit, 'authority' | 'listen'>
  /**
   * Minimum trust score (0..10) a sender's DID needs for this node to run its `TASK_REQUEST`s,
   * whatever `trust_requirements` the sender wrote (the router's receiver-side
   * `trustPolicy.TASK_REQUEST`; merged with `router.trustPolicy`, the stricter wins). Raise it
   * with `trust(did, level)`. Default 0: open, any authenticated DID may run tasks.
   */
  taskMinTrust?: number
  /**
   * Persist the router's authority -> DID pins in `storage`, one key per pin
   * (`pin/<authority>` -> `{ did, firm }`, written as each pin is made, becomes firm or is
   * evicted), and restore them at start as `pinnedAuthorities` with their firmness, so a restart
   * neither reopens trust on first use nor changes which pins may be evicted. Configured
   * `router.pinnedAuthorities` win over stored ones. Default true.
   */
  persistPins?: boolean
  /** Options of the default discovery service. */
  discovery?: PeerDiscoveryInit
  /** Bootstrap seeds at start (throwing if none answers). Default true when seeds are given. */
  bootstrap?: boolean
  signatureVerifier?: SignatureVerifier
  logger?: Logger
  clock?: Clock
}

/** A peer as the node reports it: connected and/or discovered. */
export interface NodePeer {
  did: string
  authority?: string
  connected: boolean
  addresses: string[]
  node_type?: string
  trust_score: number
  discovery_method?: string
  last_seen?: number
}

export interface NodeStatus {
  did: string
  authority: string
  nodeType: string
  started: boolean
  addrs: string[]
  agents: Array<{ name: string; address: string; capabilities: readonly string[]; description: string }>
  peers: number
  /** Minimum trust score a sender needs to run tasks here (0 = open). */
  taskMinTrust: number
  bootstrap?: BootstrapResult | undefined
}

export interface KosMeshNode extends Startable {
  /** The node DID (throws NodeNotStartedError before start unless an Identity was given). */
  readonly did: string
  readonly authority: string
  readonly router: Router
  readonly agents: AgentRegistry
  readonly trustStore: PersistentTrustStore
  readonly storage: NodeStore
  isStarted(): boolean
  start(options?: AbortOptions): Promise<void>
  stop(): Promise<void>
  /** Listening addresses, each with the node DID appended (what other nodes dial). */
  addrs(): string[]
  /** A started service by name. */
  service<S = unknown>(name: string): S
  /**
   * Bootstraps as the spec's section VII: connects to the seeds, receives their peer tables,
   * announces this node's signed record and dials the best peers. `start()` calls it when seeds
   * are configured (a failure there fails `start()`; call it yourself with `bootstrap: false`).
   */
  bootstrap(seeds?: string[], options?: AbortOptions): Promise<BootstrapResult>
  /** Dials a peer (`tcp://host:port[/did:...]`). */
  connect(addr: string, options?: AbortOptions): Promise<PeerInfo>
  /** Connected and discovered peers. */
  peers(): NodePeer[]
  /**
   * Trusts a DID, or the DID behind an agent/node address `klp://authority/...`, at `level`
   * 0..10. Persists. An address resolves only through the router's pins (an authenticated signed
   * hello, or a restored pin), never through a self-asserted discovery record: an unpinned
   * authority throws UnpinnedAuthorityError (connect first, or pass the DID). A level above 0
   * makes the DID's authority pin firm (never evicted), now or when the DID identifies.
   */
  trust(subject: string, level: number, options?: AbortOptions): Promise<TrustEntry>
  /**
   * Sends a task to `target`: `klp://authority[/agents/<name>]`, or a DID (its authority is
   * resolved through the router's pins, else its signed node record). The answer must be signed by
   * the target's DID when it is known (a DID target or a pinned authority).
   */
  task(target: string, request: TaskRequest, options?: SendTaskOptions): Promise<TaskResult>
  /** This node's FederatedNode record (undefined before start or without discovery). */
  record(): FederatedNode | undefined
  status(): NodeStatus
}

const DEFAULT_CAPABILITIES: NodeCapabilities = {
  agent_hosting: false,
  vector_storage: false,
  relay_services: false,
  validation_services: false,
  archive_services: false,
  bandwidth_mbps: 0,
  storage_gb: 0,
  compute_units: 0,
}

export { PIN_PREFIX } from './pins.js'
/** The router's default `maxPinnedAuthorities`. */
const DEFAULT_MAX_PINS = 65_536

/** The default authority of a DID: `n<12 hex>.mesh.kai`. */
export function defaultAuthority(did: string): string {
  return `n${createHash('sha256').update(did).digest('hex').slice(0, 12)}.mesh.kai`
}

function checkAuthority(authority: string): void {
  let a
  try {
    a = parseAddress(`klp://${authority}`)
  } catch (err) {
    throw new InvalidConfigError(`expected an authority like node-a.mesh.kai, got ${JSON.stringify(authority)}`, { cause: err })
  }
  if (a.authority !== authority) throw new InvalidConfigError(`expected a lower-case authority, got ${JSON.stringify(authority)}`)
}

/** Orders services so that each comes after what it requires; checks every requirement exists. */
function orderServices(services: Map<string, NodeService>): string[] {
  for (const name of services.keys()) {
    if (BUILTIN_COMPONENTS.includes(name)) throw new DuplicateServiceError(`expected a service name other than the built-in component "${name}", got it`)
  }
  for (const [name, svc] of services) {
    if (typeof svc !== 'function') throw new InvalidParametersError(`expected service "${name}" to be a factory function, got ${typeof svc}`)
    for (const dep of svc.requires ?? []) {
      if (!BUILTIN_COMPONENTS.includes(dep) && !services.has(dep)) throw new MissingServiceDependencyError(name, dep)
    }
  }
  const order: string[] = []
  const state = new Map<string, 'visiting' | 'done'>()
  const visit = (name: string, path: string[]): void => {
    const s = state.get(name)
    if (s === 'done') return
    if (s === 'visiting') throw new ServiceDependencyCycleError(`expected no dependency cycle between services, got ${[...path, name].join(' -> ')}`)
    state.set(name, 'visiting')
    for (const dep of services.get(name)?.requires ?? []) if (services.has(dep)) visit(dep, [...path, name])
    state.set(name, 'done')
    order.push(name)
  }
  for (const name of services.keys()) visit(name, [])
  return order
}

function isStartable(v: unknown): v is Startable {
  return v !== null && typeof v === 'object' && typeof (v as Startable).start === 'function' && typeof (v as Startable).stop === 'function'
}

class Node implements KosMeshNode {
  readonly agents: AgentRegistry
  readonly storage: NodeStore
  readonly trustStore: PersistentTrustStore
  private readonly init: NodeInit
  private readonly serviceFactories: Map<string, NodeService>
  private readonly serviceOrder: string[]
  private readonly log: Logger
  private readonly clock: Clock
  private identity: Identity | undefined
  private identitySource: IdentitySource | undefined
  private _authority: string | undefined
  private _router: Router | undefined
  private transports: Transport[] = []
  private readonly services = new Map<string, unknown>()
  private started = false
  private starting: Promise<void> | undefined
  private bootstrapResult: BootstrapResult | undefined

  constructor(init: NodeInit) {
    this.init = init
    this.log = init.logger ?? silentLogger
    this.clock = init.clock ?? systemClock
    if (init.authority !== undefined) checkAuthority(init.authority)
    if (init.taskMinTrust !== undefined && !(typeof init.taskMinTrust === 'number' && init.taskMinTrust >= 0 && init.taskMinTrust <= 10)) {
      throw new InvalidConfigError(`expected taskMinTrust to be a number in 0..10, got ${String(init.taskMinTrust)}`)
    }
    if (init.identity !== undefined) {
      if (isIdentitySource(init.identity)) this.identitySource = init.identity
      else if (typeof (init.identity as Identity).did === 'string' && typeof (init.identity as Identity).signer === 'object') this.identity = init.identity as Identity
      else throw new InvalidParametersError('expected identity to be a did-security Identity or an IdentitySource')
    }
    this.storage = init.storage ?? memoryStore()
    this.trustStore = persistentTrustStore(this.storage, () => this.clock.now())
    this.agents = agentRegistry({ agents: init.agents ?? [] })()
    const merged: Record<string, NodeService | false> = { discovery: discoveryService(init.discovery), tasks: taskService(), ...init.services }
    this.serviceFactories = new Map(Object.entries(merged).filter((e): e is [string, NodeService] => e[1] !== false))
    this.serviceOrder = orderServices(this.serviceFactories)
  }

  get did(): string {
    if (this.identity === undefined) throw new NodeNotStartedError('expected a started node (its identity loads at start), got a stopped one')
    return this.identity.did
  }

  get authority(): string {
    if (this._authority !== undefined) return this._authority
    if (this.init.authority !== undefined) return this.init.authority
    return defaultAuthority(this.did)
  }

  get router(): Router {
    if (this._router === undefined) throw new NodeNotStartedError('expected a started node, got a stopped one')
    return this._router
  }

  isStarted(): boolean {
    return this.started
  }

  service<S = unknown>(name: string): S {
    if (!this.services.has(name)) {
      if (this.serviceFactories.has(name)) throw new NodeNotStartedError(`expected a started node for service "${name}", got a stopped one`)
      throw new InvalidParametersError(`expected a configured service name (${[...this.serviceFactories.keys()].join(', ')}), got "${name}"`)
    }
    return this.services.get(name) as S
  }

  async start(options: AbortOptions = {}): Promise<void> {
    if (this.started) return
    this.starting ??= this.doStart(options).finally(() => {
      this.starting = undefined
    })
    return this.starting
  }

  private async doStart(options: AbortOptions): Promise<void> {
    throwIfAborted(options.signal)
    const undo: Array<() => Promise<void> | void> = []
    try {
      // 1. identity (keystore read, or created on the first start)
      if (this.identity === undefined) this.identity = this.identitySource !== undefined ? await this.identitySource.loadIdentity(options) : generateIdentity()
      const identity = this.identity
      const authority = this.init.authority ?? defaultAuthority(identity.did)
      this._authority = authority
      // 2. storage and the persisted trust table
      await this.storage.start()
      undo.push(() => this.storage.stop())
      await this.trustStore.load(options)
      this.agents.bind(authority, identity.did)
      // 3. transports and router (the router listens on start)
      const factories = this.init.transports ?? [memory()]
      this.transports = factories.map((f) => f({ identity, logger: this.log }))
      const signatureVerifier = this.init.signatureVerifier ?? createSignatureVerifier()
      const persistPins = this.init.persistPins !== false
      // the pin writer flushes before the store stops (undo runs in reverse order)
      const pins = persistPins ? new PinWriter(this.storage, this.log) : undefined
      if (pins !== undefined) undo.push(() => pins.flush({ retry: true }))
      const pinnedAuthorities = pins !== undefined ? await this.restorePins(authority, identity.did, pins, options) : { ...this.init.router?.pinnedAuthorities }
      const router = klpRouter({
        ...this.init.router,
        authority,
        listen: this.init.listen ?? [],
        pinnedAuthorities,
        ...(this.trustPolicy() === undefined ? {} : { trustPolicy: this.trustPolicy() }),
      })({
        signer: identity.signer,
        signatureVerifier,
        trustEngine: this.trustStore,
        transports: this.transports,
        clock: this.clock,
        logger: this.log,
      })
      this._router = router
      // every pin change is one store write (evicted: one delete), in order
      const onPinChange = (e: CustomEvent<PinChange>): void => pins?.change(e.detail)
      // a DID the operator trusts gets its pin firm as soon as it identifies
      const onIdentify = (e: CustomEvent<PeerInfo>): void => this.confirmIfTrusted(router, e.detail.did, e.detail.authority)
      if (pins !== undefined) router.addEventListener('pin:change', onPinChange)
      router.addEventListener('peer:identify', onIdentify)
      undo.push(async () => {
        await router.stop()
        await Promise.allSettled(this.transports.map((t) => t.close()))
        router.removeEventListener('pin:change', onPinChange)
        router.removeEventListener('peer:identify', onIdentify)
      })
      await router.start()
      // 4. services, in dependency order
      const info: NodeInfo = { authority, did: identity.did, nodeType: this.init.nodeType ?? NodeType.PEER_NODE }
      const components: NodeComponents = {
        identity,
        signer: identity.signer,
        signatureVerifier,
        router,
        transports: this.transports,
        storage: this.storage,
        trustStore: this.trustStore,
        agents: this.agents,
        logger: this.log,
        clock: this.clock,
        nodeInfo: info,
      }
      for (const name of this.serviceOrder) {
        const factory = this.serviceFactories.get(name) as NodeService
        const svc = factory(components)
        components[name] = svc
        this.services.set(name, svc)
        if (isStartable(svc)) {
          await svc.start()
          undo.push(() => svc.stop())
        }
      }
      this.started = true
      this.undo = undo
      // 5. bootstrap from seeds (spec VII: connect to seeds, receive their peer table, join)
      const seeds = this.init.seeds ?? []
      if (seeds.length > 0 && this.init.bootstrap !== false) await this.bootstrap(seeds, options)
      this.log.info('node started', { did: identity.did, authority, addrs: router.addrs() })
    } catch (err) {
      this.started = false
      for (const u of undo.reverse()) {
        try {
          await u()
        } catch {
          // best effort
        }
      }
      this.services.clear()
      this._router = undefined
      this.undo = []
      throw err
    }
  }

  private undo: Array<() => Promise<void> | void> = []

  /** The router's trust policy: `router.trustPolicy` with `taskMinTrust` folded into TASK_REQUEST. */
  private trustPolicy(): RouterInit['trustPolicy'] {
    const base = this.init.router?.trustPolicy
    const min = this.init.taskMinTrust ?? 0
    if (min <= 0) return base
    const own: TrustRequirements = { minimum_trust_score: min, required_endorsements: 0, verification_level: VerificationLevel.NONE }
    const cur = base?.[KLPMessageType.TASK_REQUEST]
    return { ...base, [KLPMessageType.TASK_REQUEST]: cur === undefined ? own : strictestTrust(cur, own) }
  }

  /**
   * Stored pins with their firmness, merged with the configured ones (`router.pinnedAuthorities`
   * win). Pins of DIDs the operator trusts come back firm. Corrupt entries, this node's own
   * authority or DID, and pins contradicting a configured one are deleted from the store.
   */
  private async restorePins(authority: string, did: string, writer: PinWriter, options: AbortOptions): Promise<Record<string, PinValue>> {
    const r = await loadPins(this.storage, {
      authority,
      did,
      configured: { ...this.init.router?.pinnedAuthorities },
      maxPins: this.init.router?.maxPinnedAuthorities ?? DEFAULT_MAX_PINS,
      trusted: (d) => this.isTrusted(d),
      writer,
    }, options)
    if (r.restored > 0 || r.dropped > 0) {
      this.log.info('authority pins restored', { restored: r.restored, firm: r.firm, migrated: r.migrated, confirmed: r.confirmed, dropped: r.dropped })
    }
    return r.pinned
  }

  /** True when the operator trusts `did` (a trust level above 0). */
  private isTrusted(did: string): boolean {
    return (this.trustStore.peerScore(did) ?? 0) > 0
  }

  /** Makes the pin of a trusted DID firm (never evicted), when it is pinned. */
  private confirmIfTrusted(router: Router, did: string, authority: string | undefined = router.routingTable.authorityOf(did)): void {
    if (authority === undefined || authority === router.authority || !this.isTrusted(did)) return
    router.routingTable.confirmPin(authority, did)
  }

  async stop(): Promise<void> {
    if (this.starting !== undefined) await this.starting.catch(() => {})
    if (!this.started) return
    this.started = false
    const undo = this.undo.reverse()
    this.undo = []
    for (const u of undo) {
      try {
        await u()
      } catch (err) {
        this.log.warn('stop step failed', { err: err instanceof Error ? err.name : String(err) })
      }
    }
    this.services.clear()
    this._router = undefined
    this.log.info('node stopped')
  }

  async bootstrap(seeds: string[] = this.init.seeds ?? [], options: AbortOptions = {}): Promise<BootstrapResult> {
    const router = this.assertStarted()
    const discovery = this.services.get('discovery') as PeerDiscovery | undefined
    if (discovery === undefined) {
      const errors: BootstrapResult['errors'] = []
      let reached = 0
      for (const s of seeds) {
        try {
          await this.connect(s, options)
          reached++
        } catch (error) {
          errors.push({ address: s, error })
        }
      }
      this.bootstrapResult = {
        node_id: this.did,
        peer_connections: router.peers().length,
        trust_mesh_joined: reached > 0,
        bootstrap_timestamp: this.clock.now(),
        status: reached > 0 ? 'completed' : 'failed',
        seeds_reached: reached,
        discovered: 0,
        errors,
      }
    } else {
      this.bootstrapResult = await discovery.bootstrap(seeds, options)
    }
    this.log.info('bootstrap done', { seeds: seeds.length, reached: this.bootstrapResult.seeds_reached, discovered: this.bootstrapResult.discovered })
    return this.bootstrapResult
  }

  private assertStarted(): Router {
    if (!this.started || this._router === undefined) throw new NodeNotStartedError('expected a started node, got a stopped one')
    return this._router
  }

  addrs(): string[] {
    const router = this.assertStarted()
    return router.addrs().map((a) => (a.includes('/did:') ? a : `${a}/${this.did}`))
  }

  async connect(addr: string, options: AbortOptions = {}): Promise<PeerInfo> {
    const router = this.assertStarted()
    if (typeof addr !== 'string' || addr.length === 0 || addr.length > 2048) throw new InvalidParametersError(`expected a transport address, got ${JSON.stringify(String(addr).slice(0, 80))}`)
    // validate first, then dial: a malformed DID or an address no transport can dial is the
    // caller's error (InvalidDidError / InvalidAddressError), never a dial attempt
    const i = addr.indexOf('/did:')
    const base = i < 0 ? addr : addr.slice(0, i)
    const remotePeer = i < 0 ? undefined : addr.slice(i + 1)
    if (remotePeer !== undefined) checkDid(remotePeer, 'the DID of the address')
    if (!this.transports.some((t) => t.canDial(base))) {
      throw new InvalidAddressError(`expected an address that a transport of this node (${this.transports.map((t) => t.name).join(', ')}) can dial, e.g. tcp://host:1..65535[/did:key:...], got ${JSON.stringify(addr.slice(0, 120))}`)
    }
    const info = remotePeer === undefined ? await router.dial(base, options) : await router.dial(base, { ...options, remotePeer })
    // pull the peer's table so that its neighbours become known too
    const discovery = this.services.get('discovery') as PeerDiscovery | undefined
    if (discovery !== undefined) await discovery.refresh(options).catch((err: unknown) => this.log.debug('refresh after connect failed', { err: String(err) }))
    return info
  }

  peers(): NodePeer[] {
    const router = this.assertStarted()
    const out = new Map<string, NodePeer>()
    for (const p of router.peers()) {
      const authority = p.authority ?? router.routingTable.authorityOf(p.did)
      out.set(p.did, {
        did: p.did,
        ...(authority === undefined ? {} : { authority }),
        connected: true,
        addresses: [],
        trust_score: this.trustStore.get(p.did).trust_score,
      })
    }
    const discovery = this.services.get('discovery') as PeerDiscovery | undefined
    for (const d of discovery?.getPeers() ?? []) {
      const cur = out.get(d.peer_id)
      const entry = discovery?.registry.get(d.peer_id)
      const authority = cur?.authority ?? entry?.record.address?.authority ?? router.routingTable.authorityOf(d.peer_id)
      out.set(d.peer_id, {
        did: d.peer_id,
        ...(authority === undefined ? {} : { authority }),
        connected: cur?.connected ?? false,
        addresses: d.addresses.map((a) => (a.port > 0 ? `${a.protocol}://${a.address}:${a.port}` : `${a.protocol}://${a.address}`)),
        ...(entry === undefined ? {} : { node_type: entry.record.node.node_type, last_seen: entry.record.node.last_seen }),
        trust_score: this.trustStore.get(d.peer_id).trust_score,
        discovery_method: d.discovery_method,
      })
    }
    return [...out.values()].sort((a, b) => Number(b.connected) - Number(a.connected) || (a.did < b.did ? -1 : 1))
  }

  async trust(subject: string, level: number, options: AbortOptions = {}): Promise<TrustEntry> {
    const router = this.assertStarted()
    if (typeof subject !== 'string') throw new InvalidParametersError(`expected a DID or klp:// address, got ${typeof subject}`)
    if (typeof level !== 'number' || !Number.isInteger(level) || level < 0 || level > 10) throw new InvalidParametersError(`expected a trust level, an integer in 0..10, got ${String(level)}`)
    if (subject.startsWith('did:')) {
      checkDid(subject)
      const entry = await this.trustStore.trust(subject, level, subject, options)
      // the operator relies on this DID now: its pin (if any) is never evicted
      this.confirmIfTrusted(router, subject)
      return entry
    }
    if (!subject.startsWith('klp://')) throw new InvalidParametersError(`expected a DID or klp:// address, got ${JSON.stringify(subject.slice(0, 80))}`)
    const { authority } = parseAddress(subject)
    // only an authenticated binding: the pin of a signed hello on an authenticated connection
    const did = router.routingTable.didOf(authority)
    if (did === undefined) throw new UnpinnedAuthorityError(authority)
    const entry = await this.trustStore.trust(did, level, subject, options)
    this.confirmIfTrusted(router, did, authority)
    return entry
  }

  async task(target: string, request: TaskRequest, options: SendTaskOptions = {}): Promise<TaskResult> {
    this.assertStarted()
    const tasks = this.services.get('tasks') as TaskService | undefined
    if (tasks === undefined) throw new MissingServiceDependencyError('node.task', 'tasks')
    return tasks.send(target, request, options)
  }

  record(): FederatedNode | undefined {
    const discovery = this.services.get('discovery') as PeerDiscovery | undefined
    return discovery?.localRecord()?.node
  }

  status(): NodeStatus {
    const started = this.started && this._router !== undefined
    return {
      did: this.identity?.did ?? '',
      authority: this.identity === undefined && this.init.authority === undefined ? '' : this.authority,
      nodeType: this.init.nodeType ?? NodeType.PEER_NODE,
      started,
      addrs: started ? this.addrs() : [],
      agents: this.agents.list().map((a) => ({ name: a.name, address: a.address, capabilities: a.capabilities, description: a.description })),
      peers: started ? this.router.peers().length : 0,
      taskMinTrust: this.init.taskMinTrust ?? 0,
      bootstrap: this.bootstrapResult,
    }
  }
}

/**
 * Creates a node. No I/O happens here: it validates the options and the service graph (a service
 * requiring a component nobody provides throws MissingServiceDependencyError now, not at start).
 */
export function createNode(init: NodeInit = {}): KosMeshNode {
  const caps = { ...DEFAULT_CAPABILITIES, ...init.capabilities, agent_hosting: (init.agents?.length ?? 0) > 0 || init.capabilities?.agent_hosting === true }
  const discovery: PeerDiscoveryInit = {
    ...init.discovery,
    node: { node_type: init.nodeType ?? NodeType.PEER_NODE, ...init.discovery?.node, capabilities: { ...caps, ...init.discovery?.node?.capabilities } },
  }
  return new Node({ ...init, discovery })
}
