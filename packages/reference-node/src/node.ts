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
  ProcessingStatus,
  VerificationLevel,
  throwIfAborted,
  type AbortOptions,
  type Clock,
  type FederatedNode,
  type Logger,
  type NodeCapabilities,
  type ProcessingResult,
  type RejectInfo,
  type SignatureVerifier,
  type TimerHandle,
  type Startable,
  type Transport,
  type TransportAddress,
  type TrustRequirements,
  systemClock,
} from '@kos-mesh/interface'
import { parseAddress } from '@kos-mesh/klp-codec'
import { createSignatureVerifier, generateIdentity, type Identity } from '@kos-mesh/did-security'
import { klpRouter, strictestTrust, type PeerInfo, type Router, type RouterInit } from '@kos-mesh/klp-router'
import { peerDiscovery, toNetworkAddress, toTransportAddress, type BootstrapResult, type PeerDiscovery, type PeerDiscoveryInit } from '@kos-mesh/peer-discovery'
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
  AddressInUseError,
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
import { EventLog, type EventLogInit } from './events.js'
import { KnownPeers } from './known-peers.js'
import { Redialer, type ReconnectInit, type RedialState } from './redial.js'
import { observeRouter, transportLogger } from './observe.js'
import { NodeStats, nodeMetricsText } from './node-metrics.js'
import { isUnspecifiedHost } from './config.js'

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
  /**
   * Addresses other nodes should dial to reach this one (`tcp://203.0.113.7:4747`), published in
   * the node's signed record instead of its listen addresses: for a node behind a port forward or
   * NAT, or listening on 0.0.0.0. Default none (the listen addresses are published).
   */
  publish?: TransportAddress[]
  /**
   * Redialing of the peers the node knew and of its seeds, after a restart or a lost connection,
   * with exponential backoff and jitter on the node's clock (see `ReconnectInit` for the
   * defaults). `false` turns it off. Default `{}` (on).
   */
  reconnect?: ReconnectInit | false
  /**
   * Remember the peers the node connects to in `storage` (`peer/<did>` -> `{ did, authority,
   * addrs, lastConnected }`, at most `reconnect.maxKnownPeers`, 256 by default), so that a restart
   * can redial them. Default true.
   */
  persistPeers?: boolean
  /** Rate limit of the node's operator events, per event kind (default 20 at once, then 2 per second). */
  events?: EventLogInit
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
  /** Known from an earlier connection (saved in the store). */
  known?: boolean
  /** When the node was last connected to it (clock ms), for a known peer. */
  last_connected?: number
  /** Being redialled: `waiting` or `dialing`, with the failed attempts so far. */
  redial?: { state: RedialState['state']; attempts: number; nextAt?: number; lastError?: string }
}

export interface NodeStatus {
  did: string
  authority: string
  nodeType: string
  started: boolean
  addrs: string[]
  agents: Array<{ name: string; address: string; capabilities: readonly string[]; description: string }>
  /** Connected peers. */
  peers: number
  /** Peers remembered from earlier connections (in the store). */
  peersKnown: number
  /** Addresses published in the node record (with the DID), when set with `publish`. */
  published: string[]
  /** Peers and seeds being redialled (not connected), and each target's state. */
  redial: { pending: number; targets: RedialState[] }
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
  /**
   * Forgets the trust decision of a DID, or of the DID a pinned `klp://` authority resolves to.
   * Resolves with the DID and whether an entry was removed.
   */
  untrust(subject: string, options?: AbortOptions): Promise<{ did: string; removed: boolean }>
  /** This node's FederatedNode record (undefined before start or without discovery). */
  record(): FederatedNode | undefined
  status(): NodeStatus
  /**
   * The node's metrics in the Prometheus text exposition format (0.0.4): router traffic and
   * rejects, queues, peers, pending requests, replay windows, pins, dial (handshake) and task
   * request latency histograms, tasks served and refused, suppressed log lines, resident memory.
   */
  metricsText(): string
}

/** Router reject reasons that mean a forged, replayed or hostile message (logged at warn). */
const HOSTILE_REASONS = new Set(['invalid_signature', 'unknown_key', 'source_mismatch', 'replay', 'authority_conflict', 'response_mismatch', 'malformed', 'frame_too_large', 'invalid_route', 'expired', 'ttl_too_long'])
/** Dial errors that mean the peer proved another identity than expected. */
const IDENTITY_ERRORS = new Set(['PeerMismatchError', 'AuthorityConflictError', 'TargetConflictError'])

/** `ConnectionResetError` -> `connection_reset`. */
function reasonOf(name: string): string {
  return name.replace(/Error$/, '').replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase() || 'error'
}

function errName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err
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
  /** Operator events, rate-limited per kind. */
  private readonly events: EventLog
  private knownPeers: KnownPeers | undefined
  private redialer: Redialer | undefined
  /** Error name of each connection the transport tore down (read at peer:disconnect); bounded. */
  private readonly closeReasons = new Map<string, string>()
  private stopping = false
  private addrSyncTimer: TimerHandle | undefined
  private noPeersTimer: TimerHandle | undefined
  /** Counters and histograms of what the node itself observes (see node-metrics.ts). */
  private readonly stats = new NodeStats()

  constructor(init: NodeInit) {
    this.init = init
    this.log = init.logger ?? silentLogger
    this.clock = init.clock ?? systemClock
    this.events = new EventLog(this.log, this.clock, init.events)
    if (init.publish !== undefined) {
      if (!Array.isArray(init.publish) || init.publish.some((a) => typeof a !== 'string' || toNetworkAddress(a) === undefined || a.includes('/did:'))) {
        throw new InvalidConfigError(`expected publish to be transport addresses like tcp://203.0.113.7:4747 (no DID), got ${JSON.stringify(init.publish).slice(0, 200)}`)
      }
    }
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
      const tlog = transportLogger(this.log, {
        handshakeRefused: (remote, reason) => this.onHandshakeRefused('inbound', remote, reason),
        connectionAborted: (id, reason) => {
          if (this.closeReasons.size >= 1024) this.closeReasons.delete(this.closeReasons.keys().next().value as string)
          this.closeReasons.set(id, reason)
        },
      })
      this.transports = factories.map((f) => f({ identity, logger: tlog }))
      const signatureVerifier = this.init.signatureVerifier ?? createSignatureVerifier()
      const persistPins = this.init.persistPins !== false
      // the pin writer flushes before the store stops (undo runs in reverse order)
      const pins = persistPins ? new PinWriter(this.storage, this.log) : undefined
      if (pins !== undefined) undo.push(() => pins.flush({ retry: true }))
      const pinnedAuthorities = pins !== undefined ? await this.restorePins(authority, identity.did, pins, options) : { ...this.init.router?.pinnedAuthorities }
      // the peers this node knew (redialled after the router starts)
      const reconnect = this.init.reconnect === false ? undefined : (this.init.reconnect ?? {})
      const known =
        this.init.persistPeers === false
          ? undefined
          : new KnownPeers(this.storage, { max: reconnect?.maxKnownPeers ?? 256, self: identity.did, usable: (a) => this.usableAddress(a), protect: (d) => this.isTrusted(d), logger: this.log })
      if (known !== undefined) {
        const r = await known.load(options)
        if (r.loaded > 0 || r.dropped > 0) this.log.info('known peers restored', { known: r.loaded, dropped: r.dropped })
        undo.push(() => known.flush())
      }
      this.knownPeers = known
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
      const onConnect = (e: CustomEvent<PeerInfo>): void => this.onPeerConnect(e.detail)
      const onIdentified = (e: CustomEvent<PeerInfo>): void => this.onPeerIdentify(e.detail)
      const onDisconnect = (e: CustomEvent<PeerInfo & { reason?: string }>): void => this.onPeerDisconnect(e.detail)
      const onRejected = (e: CustomEvent<RejectInfo>): void => this.onRejected(e.detail)
      router.addEventListener('peer:connect', onConnect)
      router.addEventListener('peer:identify', onIdentified)
      router.addEventListener('peer:disconnect', onDisconnect)
      router.addEventListener('message:rejected', onRejected)
      this.events.start()
      this.stopping = false
      undo.push(async () => {
        this.stopping = true
        this.syncAddresses()
        await router.stop()
        await Promise.allSettled(this.transports.map((t) => t.close()))
        router.removeEventListener('pin:change', onPinChange)
        router.removeEventListener('peer:identify', onIdentify)
        router.removeEventListener('peer:connect', onConnect)
        router.removeEventListener('peer:identify', onIdentified)
        router.removeEventListener('peer:disconnect', onDisconnect)
        router.removeEventListener('message:rejected', onRejected)
        this.clock.clearTimeout(this.addrSyncTimer)
        this.clock.clearTimeout(this.noPeersTimer)
        this.addrSyncTimer = undefined
        this.noPeersTimer = undefined
        this.events.stop()
      })
      try {
        await router.start()
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause
        if (errName(err) === 'ListenError' && cause?.code === 'EADDRINUSE') throw new AddressInUseError((err as Error).message.replace(/^expected to listen on /, '').replace(/, got EADDRINUSE$/, ''), { cause: err })
        throw err
      }
      // what services see: the same router, with dials timed and task results observed
      const observed = observeRouter(router, {
        dialed: (addr, ms, r) => this.onDialed(addr, ms, r),
        taskHandled: (from, capability, ms, r, err) => this.onTaskHandled(from, capability, ms, r, err),
        discoveryActivity: () => this.scheduleAddressSync(),
      }, () => this.clock.now())
      this.observedRouter = observed
      // 4. services, in dependency order
      const info: NodeInfo = { authority, did: identity.did, nodeType: this.init.nodeType ?? NodeType.PEER_NODE }
      const components: NodeComponents = {
        identity,
        signer: identity.signer,
        signatureVerifier,
        router: observed,
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
      // 5. redial the peers this node knew and its seeds (backoff and jitter on the clock)
      if (reconnect !== undefined) {
        const redialer = new Redialer(reconnect, {
          clock: this.clock,
          dial: (addr, did, signal) => this.dialQuiet(addr, did, signal),
          isConnected: (did) => router.peers().some((p) => p.did === did),
          onRedialed: (did, target, attempts) => {
            this.stats.redials++
            this.events.emit('redial', 'info', 'peer redialed', { peer: did, attempts, addr: target.addrs[0], seed: target.seed })
            // pull its table: the rest of the mesh comes back through it
            const discovery = this.services.get('discovery') as PeerDiscovery | undefined
            if (discovery?.isStarted() === true) void discovery.refresh().catch((err: unknown) => this.log.debug('refresh after redial failed', { err: errName(err) }))
          },
          onFailed: (target, attempts, delayMs, err) => {
            this.stats.redialFailures++
            this.events.emit('redial', attempts >= redialer.settings.maxAttempts ? 'warn' : 'info', 'redial failed', {
              peer: target.did ?? null,
              addrs: target.addrs,
              attempts,
              next_in_ms: delayMs,
              reason: reasonOf(errName(err)),
            })
          },
        })
        for (const p of known?.list() ?? []) if (p.addrs.length > 0) redialer.set({ did: p.did, addrs: p.addrs, seed: false })
        for (const seed of this.init.seeds ?? []) {
          const i = seed.indexOf('/did:')
          const did = i < 0 ? undefined : seed.slice(i + 1)
          if (did === identity.did) continue
          // with its DID known, the seed is one target with the known peer of that DID
          redialer.set({ ...(did === undefined ? {} : { did }), addrs: [i < 0 ? seed : seed.slice(0, i)], seed: true })
        }
        this.redialer = redialer
        undo.push(() => {
          redialer.stop()
          this.redialer = undefined
        })
        redialer.start()
        const n = redialer.pending()
        if (n > 0) this.events.emit('redial', 'info', 'redialing known peers and seeds', { targets: n, known: known?.size ?? 0, seeds: (this.init.seeds ?? []).length })
      }
      this.undo = undo
      // 6. bootstrap from seeds (spec VII: connect to seeds, receive their peer table, join)
      const seeds = this.init.seeds ?? []
      if (seeds.length > 0 && this.init.bootstrap !== false) await this.bootstrap(seeds, options)
      this.log.info('node started', { did: identity.did, authority, addrs: router.addrs(), ...(this.init.publish === undefined ? {} : { published: this.init.publish }) })
      this.scheduleNoPeersCheck()
    } catch (err) {
      this.started = false
      this.redialer?.stop()
      this.redialer = undefined
      for (const u of undo.reverse()) {
        try {
          await u()
        } catch {
          // best effort
        }
      }
      this.services.clear()
      this._router = undefined
      this.observedRouter = undefined
      this.undo = []
      throw err
    }
  }

  private observedRouter: Router | undefined

  // ---------------------------------------------------------------- operator events

  /** An address worth remembering: a transport can dial it and it is not 0.0.0.0 / ::. */
  private usableAddress(addr: string): boolean {
    if (typeof addr !== 'string' || addr.includes('/did:')) return false
    const na = toNetworkAddress(addr)
    if (na === undefined || (na.protocol !== 'memory' && isUnspecifiedHost(na.address))) return false
    return this.transports.some((t) => t.canDial(addr))
  }

  /** Dials for the redialer: `addr` may end with the DID; resolves with the DID reached. */
  private async dialQuiet(addr: string, did: string | undefined, signal: AbortSignal): Promise<{ did: string }> {
    const router = this.observedRouter
    if (router === undefined) throw new NodeNotStartedError('expected a started node, got a stopped one')
    const i = addr.indexOf('/did:')
    const base = i < 0 ? addr : addr.slice(0, i)
    const expected = did ?? (i < 0 ? undefined : addr.slice(i + 1))
    const info = await router.dial(base, { signal, ...(expected === undefined ? {} : { remotePeer: expected }) })
    return { did: info.did }
  }

  private onPeerConnect(p: PeerInfo): void {
    this.stats.connectionsOpened++
    this.clock.clearTimeout(this.noPeersTimer)
    this.noPeersTimer = undefined
    this.redialer?.connected(p.did)
    this.events.emit('connection', 'info', 'connection opened', { peer: p.did, connection: p.connectionId, ...(p.authority === undefined ? {} : { authority: p.authority }) })
  }

  private onPeerIdentify(p: PeerInfo): void {
    const router = this._router
    if (router === undefined) return
    const authority = p.authority ?? router.routingTable.authorityOf(p.did)
    this.events.emit('connection', 'debug', 'peer identified', { peer: p.did, ...(authority === undefined ? {} : { authority }) })
    const known = this.knownPeers
    if (known === undefined) return
    known.connected(p.did, this.clock.now(), authority, this.recordAddresses(p.did))
    this.syncRedialTarget(p.did)
  }

  private onPeerDisconnect(p: PeerInfo & { reason?: string }): void {
    const fromTransport = this.closeReasons.get(p.connectionId)
    this.closeReasons.delete(p.connectionId)
    // the router names the error that ended the read loop (`ConnectionResetError`), or `closed`
    const fromRouter = typeof p.reason === 'string' && p.reason !== 'closed' ? reasonOf(p.reason) : undefined
    const reason = fromRouter ?? (fromTransport !== undefined ? reasonOf(fromTransport) : this.stopping ? 'node_stopping' : 'closed')
    this.stats.connectionsClosed.set(reason, (this.stats.connectionsClosed.get(reason) ?? 0) + 1)
    const router = this._router
    const authority = p.authority ?? router?.routingTable.authorityOf(p.did)
    // its latest published addresses, in case no address sync ran since they arrived
    const published = this.recordAddresses(p.did)
    if (published.length > 0) this.knownPeers?.addAddresses(p.did, published)
    this.syncRedialTarget(p.did)
    const redialing = this.redialer?.disconnected(p.did) ?? false
    this.events.emit('connection', 'info', 'connection closed', { peer: p.did, connection: p.connectionId, reason, redialing, ...(authority === undefined ? {} : { authority }) })
    if (router !== undefined && router.peers().length === 0 && !this.stopping) this.warnNoPeers()
  }

  private onRejected(r: RejectInfo): void {
    const hostile = HOSTILE_REASONS.has(r.reason)
    this.events.emit(`message_rejected.${r.reason}`, hostile ? 'warn' : 'info', hostile ? 'message rejected (forged, replayed or invalid)' : 'message rejected', {
      reason: r.reason,
      from: r.fromPeer,
      ...(r.messageId === undefined ? {} : { message_id: r.messageId }),
    })
  }

  private onHandshakeRefused(direction: 'inbound' | 'outbound', remote: string, reason: string): void {
    const r = reasonOf(reason)
    this.stats.handshakesRefused.set(r, (this.stats.handshakesRefused.get(r) ?? 0) + 1)
    this.events.emit('handshake_refused', 'warn', 'handshake refused', { direction, remote, reason: r })
  }

  private onDialed(addr: string, ms: number, r: { info: PeerInfo } | { error: unknown }): void {
    if ('info' in r) {
      this.stats.dials.observe(ms / 1000)
      this.knownPeers?.addAddresses(r.info.did, [addr], true)
      this.syncRedialTarget(r.info.did)
      return
    }
    const name = errName(r.error)
    if (name === 'AbortError') return
    const reason = reasonOf(name)
    this.stats.dialsFailed.set(reason, (this.stats.dialsFailed.get(reason) ?? 0) + 1)
    if (IDENTITY_ERRORS.has(name)) this.onHandshakeRefused('outbound', addr, name)
    else this.events.emit('dial_failed', 'debug', 'dial failed', { addr, reason })
  }

  private onTaskHandled(from: string, capability: string | undefined, ms: number, r: ProcessingResult | undefined, err?: unknown): void {
    if (r !== undefined && r.status === ProcessingStatus.PROCESSED) {
      this.stats.tasksServed++
      const data = r.response?.payload.data as { agent?: unknown } | undefined
      this.events.emit('task_served', 'info', 'task served', { from, capability, agent: typeof data?.agent === 'string' ? data.agent : undefined, duration_ms: ms })
      return
    }
    const reason = r?.reason ?? (err === undefined ? 'rejected' : 'handler_error')
    this.stats.tasksRefused.set(reason, (this.stats.tasksRefused.get(reason) ?? 0) + 1)
    this.events.emit('task_refused', 'info', 'task refused', { from, capability, reason, duration_ms: ms })
  }

  /** Transport addresses a peer publishes in its signed record (usable ones). */
  private recordAddresses(did: string): string[] {
    const discovery = this.services.get('discovery') as PeerDiscovery | undefined
    const entry = discovery?.registry?.get(did)
    const out: string[] = []
    for (const a of entry?.record.node.network_info.addresses ?? []) {
      const t = toTransportAddress(a)
      if (t !== undefined && this.usableAddress(t)) out.push(t)
    }
    return out
  }

  /** After discovery traffic: the records of connected peers may carry (new) addresses. */
  private scheduleAddressSync(): void {
    if (this.addrSyncTimer !== undefined || this.knownPeers === undefined) return
    this.addrSyncTimer = this.clock.setTimeout(() => {
      this.addrSyncTimer = undefined
      if (this.started) this.syncAddresses()
    }, 100, { unref: true })
  }

  /** Saves the addresses connected peers publish in their records. */
  private syncAddresses(): void {
    for (const p of this._router?.peers() ?? []) {
      const addrs = this.recordAddresses(p.did)
      if (addrs.length === 0) continue
      this.knownPeers?.addAddresses(p.did, addrs)
      this.syncRedialTarget(p.did)
    }
  }

  private syncRedialTarget(did: string): void {
    const p = this.knownPeers?.get(did)
    if (p !== undefined && p.addrs.length > 0) this.redialer?.set({ did, addrs: p.addrs, seed: false })
  }

  /** Warns, some time after start, when the node still has no peer. */
  private scheduleNoPeersCheck(): void {
    this.clock.clearTimeout(this.noPeersTimer)
    this.noPeersTimer = this.clock.setTimeout(() => {
      this.noPeersTimer = undefined
      if (this.started && !this.stopping && (this._router?.peers().length ?? 0) === 0) this.warnNoPeers()
    }, 10_000, { unref: true })
  }

  private warnNoPeers(): void {
    const redialing = this.redialer?.pending() ?? 0
    const known = this.knownPeers?.size ?? 0
    const seeds = (this.init.seeds ?? []).length
    const hint =
      redialing > 0
        ? 'redialing known peers and seeds with backoff; `kos-mesh status` shows the attempts'
        : known + seeds === 0
          ? 'no seeds and no known peers: give a seed (start --seed tcp://host:port/did:key:...) or `kos-mesh connect` to a peer'
          : 'nothing to redial (no usable address saved); `kos-mesh connect` to a peer'
    this.events.emit('no_peers', 'warn', 'no peers connected', { known, seeds, redialing, hint })
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
    this.observedRouter = undefined
    this.log.info('node stopped')
  }

  async bootstrap(seeds: string[] = this.init.seeds ?? [], options: AbortOptions = {}): Promise<BootstrapResult> {
    const router = this.assertStarted()
    const discovery = this.services.get('discovery') as PeerDiscovery | undefined
    this.events.emit('bootstrap', 'info', 'bootstrap started', { seeds })
    try {
      await this.runBootstrap(router, discovery, seeds, options)
    } catch (err) {
      const errors = (err as { errors?: Array<{ address: string; error: unknown }> }).errors
      this.events.emit('bootstrap', 'warn', 'bootstrap failed', {
        seeds: seeds.length,
        reason: reasonOf(errName(err)),
        ...(Array.isArray(errors) ? { errors: errors.map((e) => ({ seed: e.address, reason: reasonOf(errName(e.error)) })) } : {}),
        redialing: this.redialer?.pending() ?? 0,
      })
      if (router.peers().length === 0) this.warnNoPeers()
      throw err
    }
    const r = this.bootstrapResult as BootstrapResult
    this.events.emit('bootstrap', 'info', 'bootstrap done', {
      seeds: seeds.length,
      reached: r.seeds_reached,
      discovered: r.discovered,
      peers: r.peer_connections,
      ...(r.errors.length > 0 ? { errors: r.errors.map((e) => ({ seed: e.address, reason: reasonOf(errName(e.error)) })) } : {}),
    })
    if (router.peers().length === 0) this.warnNoPeers()
    return r
  }

  private async runBootstrap(router: Router, discovery: PeerDiscovery | undefined, seeds: string[], options: AbortOptions): Promise<void> {
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
    const dialer = this.observedRouter ?? router
    const info = remotePeer === undefined ? await dialer.dial(base, options) : await dialer.dial(base, { ...options, remotePeer })
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
    // peers known from earlier connections (saved in the store), with their redial state
    for (const k of this.knownPeers?.list() ?? []) {
      const cur = out.get(k.did)
      const authority = cur?.authority ?? k.authority ?? router.routingTable.authorityOf(k.did)
      out.set(k.did, {
        did: k.did,
        ...(authority === undefined ? {} : { authority }),
        connected: cur?.connected ?? false,
        addresses: [...new Set([...(cur?.addresses ?? []), ...k.addrs])],
        ...(cur?.node_type === undefined ? {} : { node_type: cur.node_type }),
        ...(cur?.last_seen === undefined ? {} : { last_seen: cur.last_seen }),
        trust_score: this.trustStore.get(k.did).trust_score,
        ...(cur?.discovery_method === undefined ? {} : { discovery_method: cur.discovery_method }),
        known: true,
        last_connected: k.lastConnected,
      })
    }
    for (const r of this.redialer?.states() ?? []) {
      if (r.did === undefined || (r.state !== 'waiting' && r.state !== 'dialing')) continue
      const cur = out.get(r.did)
      if (cur === undefined || cur.connected) continue
      cur.redial = { state: r.state, attempts: r.attempts, ...(r.nextAt === undefined ? {} : { nextAt: r.nextAt }), ...(r.lastError === undefined ? {} : { lastError: r.lastError }) }
    }
    return [...out.values()].sort((a, b) => Number(b.connected) - Number(a.connected) || (a.authority ?? '~').localeCompare(b.authority ?? '~') || (a.did < b.did ? -1 : 1))
  }

  async trust(subject: string, level: number, options: AbortOptions = {}): Promise<TrustEntry> {
    const router = this.assertStarted()
    if (typeof subject !== 'string') throw new InvalidParametersError(`expected a DID or klp:// address, got ${typeof subject}`)
    if (typeof level !== 'number' || !Number.isInteger(level) || level < 0 || level > 10) throw new InvalidParametersError(`expected a trust level, an integer in 0..10, got ${String(level)}`)
    const { did, authority } = this.resolveSubject(router, subject)
    const previous = this.trustStore.peerScore(did) ?? null
    const entry = await this.trustStore.trust(did, level, subject, options)
    // the operator relies on this DID now: its pin (if any) is never evicted
    this.confirmIfTrusted(router, did, authority)
    this.events.emit('trust', 'info', 'trust changed', { did, trust_level: level, previous, subject })
    return entry
  }

  /** The DID of a `trust` subject: a valid DID, or the DID a pinned klp:// authority is bound to. */
  private resolveSubject(router: Router, subject: string): { did: string; authority?: string } {
    if (typeof subject !== 'string') throw new InvalidParametersError(`expected a DID or klp:// address, got ${typeof subject}`)
    if (subject.startsWith('did:')) {
      checkDid(subject)
      return { did: subject }
    }
    if (!subject.startsWith('klp://')) throw new InvalidParametersError(`expected a DID or klp:// address, got ${JSON.stringify(subject.slice(0, 80))}`)
    const { authority } = parseAddress(subject)
    // only an authenticated binding: the pin of a signed hello on an authenticated connection
    const did = router.routingTable.didOf(authority)
    if (did === undefined) throw new UnpinnedAuthorityError(authority)
    return { did, authority }
  }

  async untrust(subject: string, options: AbortOptions = {}): Promise<{ did: string; removed: boolean }> {
    const router = this.assertStarted()
    const { did } = this.resolveSubject(router, subject)
    const previous = this.trustStore.peerScore(did)
    const removed = this.trustStore.list().some((e) => e.did === did)
    await this.trustStore.untrust(did, options)
    if (removed) this.events.emit('trust', 'info', 'trust removed', { did, previous: previous ?? null, subject })
    return { did, removed }
  }

  async task(target: string, request: TaskRequest, options: SendTaskOptions = {}): Promise<TaskResult> {
    this.assertStarted()
    const tasks = this.services.get('tasks') as TaskService | undefined
    if (tasks === undefined) throw new MissingServiceDependencyError('node.task', 'tasks')
    const t0 = this.clock.now()
    try {
      const r = await tasks.send(target, request, options)
      this.stats.tasks.observe((this.clock.now() - t0) / 1000, { outcome: 'completed' })
      return r
    } catch (err) {
      const name = errName(err)
      const outcome = name === 'RemoteRejectedError' ? 'rejected' : /Timeout/.test(name) ? 'timeout' : 'failed'
      // a request refused before it was sent (bad input) is not a request latency
      if (!['InvalidTaskError', 'TaskTooLargeError', 'InvalidParametersError', 'InvalidDidError', 'InvalidAddressError'].includes(name)) {
        this.stats.tasks.observe((this.clock.now() - t0) / 1000, { outcome })
      }
      throw err
    }
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
      peersKnown: this.knownPeers?.size ?? 0,
      published: started ? (this.init.publish ?? []).map((a) => `${a}/${this.did}`) : [],
      redial: { pending: this.redialer?.pending() ?? 0, targets: this.redialer?.states().filter((t) => t.state !== 'connected') ?? [] },
      taskMinTrust: this.init.taskMinTrust ?? 0,
      bootstrap: this.bootstrapResult,
    }
  }

  metricsText(): string {
    const router = this.assertStarted()
    return nodeMetricsText({
      did: this.did,
      authority: this.authority,
      nodeType: this.init.nodeType ?? NodeType.PEER_NODE,
      router: router.metrics(),
      knownPeers: this.knownPeers?.size ?? 0,
      redialing: this.redialer?.pending() ?? 0,
      trustedDids: this.trustStore.list().length,
      suppressed: this.events.suppressed(),
      stats: this.stats,
    })
  }
}

/**
 * Creates a node. No I/O happens here: it validates the options and the service graph (a service
 * requiring a component nobody provides throws MissingServiceDependencyError now, not at start).
 */
export function createNode(init: NodeInit = {}): KosMeshNode {
  const caps = { ...DEFAULT_CAPABILITIES, ...init.capabilities, agent_hosting: (init.agents?.length ?? 0) > 0 || init.capabilities?.agent_hosting === true }
  const published = (init.publish ?? []).map((a) => toNetworkAddress(a, { is_public: true })).filter((a) => a !== undefined)
  const discovery: PeerDiscoveryInit = {
    ...init.discovery,
    node: {
      node_type: init.nodeType ?? NodeType.PEER_NODE,
      ...(published.length > 0 ? { addresses: published } : {}),
      ...init.discovery?.node,
      capabilities: { ...caps, ...init.discovery?.node?.capabilities },
    },
  }
  return new Node({ ...init, discovery })
}
