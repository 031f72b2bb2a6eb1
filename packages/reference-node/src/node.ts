/**
 * `createNode()`: wires identity, transports, storage, router, trust (engine, service, operator
 * anchors), agents and services.
 * The agent runtime and the task service come from `@kos-mesh/agents`; this file only wires them.
 * Construction only checks and records; every I/O (keystore, database, sockets) happens in
 * `start()`, and `stop()` undoes it in reverse order. The parts live beside it: the public types
 * (node-types.ts), the checks of NodeInit (node-init.ts), the service graph (node-services.ts),
 * the router (node-router.ts), reconnection (node-reconnect.ts), operator events
 * (node-activity.ts), bootstrap (node-bootstrap.ts), trust (node-trust.ts), status (node-status.ts).
 */
import {
  InvalidAddressError,
  InvalidParametersError,
  NodeType,
  throwIfAborted,
  type AbortOptions,
  type Clock,
  type FederatedNode,
  type Logger,
  type Transport,
  systemClock,
} from '@kos-mesh/interface'
import { createSignatureVerifier, generateIdentity, type Identity } from '@kos-mesh/did-security'
import type { PeerInfo, Router } from '@kos-mesh/klp-router'
import type { AttestInit, AttestationBody, ReputationReport, RevocationBody, SignedStatement, StatementQuery, TrustGraphEngine } from '@kos-mesh/trust'
import type { BootstrapResult, PeerDiscovery } from '@kos-mesh/peer-discovery'
import { agents as agentRegistry, type AgentRegistry, type SendTaskOptions, type TaskRequest, type TaskResult, type TaskService } from '@kos-mesh/agents'
import type { NodeComponents, NodeInfo, NodeService } from './components.js'
import { MissingServiceDependencyError, NodeNotStartedError } from './errors.js'
import { checkDid } from './did.js'
import type { IdentitySource } from './identity.js'
import { silentLogger } from './logger.js'
import { memoryStore, type NodeStore } from './storage/memory.js'
import { persistentTrustStore, type PersistentTrustStore, type TrustListEntry } from './trust.js'
import { PinWriter } from './pins.js'
import { EventLog } from './events.js'
import { observeRouter, transportLogger } from './observe.js'
import { NodeStats, nodeMetricsText, serviceMetrics } from './node-metrics.js'
import type { KosMeshNode, NodeInit, NodePeer, NodeRevokeInit, NodeStatus } from './node-types.js'
import { discoveryService, memory, orderServices, startServices, taskService, type UndoSteps } from './node-services.js'
import { PeerReconnection } from './node-reconnect.js'
import { NodeActivity } from './node-activity.js'
import { NodeBootstrap } from './node-bootstrap.js'
import { NodeTrust } from './node-trust.js'
import { createRouter, startRouter } from './node-router.js'
import { listPeers, nodeStatus } from './node-status.js'
import { checkNodeInit, defaultAuthority, withNodeRecord } from './node-init.js'
import { meshServices } from './mesh-services.js'
import { migrationService } from './node-migration.js'
import { vectorsService } from './node-vectors.js'
import { NodeMesh } from './node-mesh.js'

export type { KosMeshNode, NodeInit, NodePeer, NodeRevokeInit, NodeStatus, TransportFactory } from './node-types.js'
export { memory, taskService, discoveryService } from './node-services.js'
export { PIN_PREFIX } from './pins.js'
export { defaultAuthority } from './node-init.js'

class Node implements KosMeshNode {
  readonly agents: AgentRegistry
  readonly storage: NodeStore
  readonly trustStore: PersistentTrustStore
  readonly mesh: NodeMesh
  private readonly init: NodeInit
  private readonly serviceFactories: Map<string, NodeService>
  private readonly serviceOrder: string[]
  private readonly log: Logger
  private readonly clock: Clock
  private identity: Identity | undefined
  private identitySource: IdentitySource | undefined
  private _authority: string | undefined
  private _router: Router | undefined
  /** The router as services see it: dials timed, task results observed (see observe.ts). */
  private observedRouter: Router | undefined
  private transports: Transport[] = []
  private readonly services = new Map<string, unknown>()
  private started = false
  private starting: Promise<void> | undefined
  private undo: UndoSteps = []
  /** Operator events, rate-limited per kind. */
  private readonly events: EventLog
  /** Counters and histograms of what the node itself observes (see node-metrics.ts). */
  private readonly stats = new NodeStats()
  private readonly reconnection: PeerReconnection
  private readonly activity: NodeActivity
  private readonly boot: NodeBootstrap
  private readonly trusts: NodeTrust

  constructor(init: NodeInit) {
    this.init = init
    this.log = init.logger ?? silentLogger
    this.clock = init.clock ?? systemClock
    this.events = new EventLog(this.log, this.clock, init.events)
    const { identity, identitySource } = checkNodeInit(init)
    this.identity = identity
    this.identitySource = identitySource
    this.storage = init.storage ?? memoryStore()
    this.trustStore = persistentTrustStore(this.storage, () => this.clock.now())
    this.agents = agentRegistry({ agents: init.agents ?? [] })()
    const merged: Record<string, NodeService | false> = { ...meshServices(init), discovery: discoveryService(init.discovery), tasks: taskService(), migration: init.migration === false ? false : migrationService(init.migration), vectors: init.vectors === undefined || init.vectors === false ? false : vectorsService(init.vectors), ...init.services }
    this.serviceFactories = new Map(Object.entries(merged).filter((e): e is [string, NodeService] => e[1] !== false))
    this.serviceOrder = orderServices(this.serviceFactories)
    const { log, clock, events, stats, storage, trustStore } = this
    this.trusts = new NodeTrust({ trustStore, storage, events, log, router: () => this.assertStarted() })
    const parts = { storage, log, clock, events, stats, transports: () => this.transports, router: () => this._router, isStarted: () => this.started }
    this.reconnection = new PeerReconnection({ ...parts, dialer: () => this.observedRouter, discovery: () => this.discovery(), isTrusted: (did) => this.trusts.isTrusted(did) })
    this.activity = new NodeActivity({ ...parts, reconnection: this.reconnection, seedCount: () => (this.init.seeds ?? []).length })
    this.mesh = new NodeMesh({ clock, log, events, service: <S>(name: string) => this.services.get(name) as S | undefined })
    const redialing = (): number => this.reconnection.pending()
    this.boot = new NodeBootstrap({ clock, events, did: () => this.did, connect: (a, o) => this.connect(a, o), redialing, warnNoPeers: () => this.activity.warnNoPeers() })
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

  private discovery(): PeerDiscovery | undefined {
    return this.services.get('discovery') as PeerDiscovery | undefined
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
    const undo: UndoSteps = []
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
      const tlog = transportLogger(this.log, this.activity.transportHooks())
      this.transports = factories.map((f) => f({ identity, logger: tlog }))
      const signatureVerifier = this.init.signatureVerifier ?? createSignatureVerifier()
      const persistPins = this.init.persistPins !== false
      // the pin writer flushes before the store stops (undo runs in reverse order)
      const pins = persistPins ? new PinWriter(this.storage, this.log) : undefined
      if (pins !== undefined) undo.push(() => pins.flush({ retry: true }))
      const pinnedAuthorities = pins !== undefined ? await this.trusts.restorePins(this.init, authority, identity.did, pins, options) : { ...this.init.router?.pinnedAuthorities }
      // the peers this node knew (redialled after the router starts)
      const reconnect = this.init.reconnect === false ? undefined : (this.init.reconnect ?? {})
      await this.reconnection.loadKnown({ persistPeers: this.init.persistPeers, reconnect }, identity.did, undo, options)
      // the trust engine (the operator's anchors fed to it) decides for the router
      const trust = this.trusts.createRuntime({
        did: identity.did,
        ...(this.init.trust === undefined ? {} : { engine: this.init.trust }),
        // with gossip on, statements ride the router's broadcast (the gossip tree) instead of the service's own flood
        service: { ...(this.init.gossip === false ? {} : { spread: 'broadcast' as const }), ...this.init.trustService },
        anchors: this.trustStore,
        store: this.storage,
        signer: identity.signer,
        verifier: signatureVerifier,
        clock: this.clock,
        logger: this.log,
      }, undo)
      const router = createRouter(this.init, authority, pinnedAuthorities, {
        signer: identity.signer,
        signatureVerifier,
        trustEngine: trust.engine,
        transports: this.transports,
        clock: this.clock,
        logger: this.log,
      })
      this._router = router
      // pins persisted and made firm for trusted DIDs; connections, rejects reported
      const unlistenTrust = this.trusts.listen(router, pins)
      const unlistenActivity = this.activity.listen(router)
      // persisted statements loaded and the handlers registered before any message arrives
      await trust.start(router)
      this.events.start()
      this.activity.stopping = false
      undo.push(async () => {
        this.activity.stopping = true
        this.reconnection.syncAddresses()
        await router.stop()
        await Promise.allSettled(this.transports.map((t) => t.close()))
        unlistenTrust()
        unlistenActivity()
        this.reconnection.cancelAddressSync()
        this.activity.cancelNoPeersCheck()
        this.events.stop()
      })
      await startRouter(router)
      // what services see: the same router, with dials timed and task results observed
      const observed = observeRouter(router, this.activity.routerObserver(), () => this.clock.now())
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
        trustEngine: trust.engine,
        trustService: trust.service,
        agents: this.agents,
        logger: this.log,
        clock: this.clock,
        nodeInfo: info,
      }
      await startServices(this.serviceOrder, this.serviceFactories, components, this.services, undo)
      // broadcasts received are recorded; the DHT joins once a peer connects
      this.mesh.start(router, undo)
      this.started = true
      // 5. redial the peers this node knew and its seeds (backoff and jitter on the clock)
      if (reconnect !== undefined) this.reconnection.startRedial(reconnect, this.init.seeds ?? [], identity.did, router, undo)
      this.undo = undo
      // 6. bootstrap from seeds (spec VII: connect to seeds, receive their peer table, join)
      const seeds = this.init.seeds ?? []
      if (seeds.length > 0 && this.init.bootstrap !== false) await this.bootstrap(seeds, options)
      this.log.info('node started', { did: identity.did, authority, addrs: router.addrs(), ...(this.init.publish === undefined ? {} : { published: this.init.publish }) })
      this.activity.scheduleNoPeersCheck()
    } catch (err) {
      this.started = false
      this.reconnection.abortRedial()
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
    const r = await this.boot.bootstrap(this.assertStarted(), this.discovery(), seeds, options)
    await this.mesh.joinDht()
    return r
  }

  private assertStarted(): Router {
    if (!this.started || this._router === undefined) throw new NodeNotStartedError('expected a started node, got a stopped one')
    return this._router
  }

  /** The router's listen addresses (none before start); what the node record carries without `publish`. */
  routerAddrs(): string[] {
    return this._router?.addrs() ?? []
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
    const discovery = this.discovery()
    if (discovery !== undefined) await discovery.refresh(options).catch((err: unknown) => this.log.debug('refresh after connect failed', { err: String(err) }))
    return info
  }

  peers(): NodePeer[] {
    return listPeers(this.assertStarted(), this.trustStore, this.discovery(), this.reconnection)
  }

  // ---------------------------------------------------------------- trust (see node-trust.ts)

  get trustEngine(): TrustGraphEngine {
    return this.trusts.runtime().engine
  }

  async trust(subject: string, level: number, options: AbortOptions & { validator?: boolean } = {}): Promise<TrustListEntry> {
    return await this.trusts.trust(subject, level, options)
  }

  async untrust(subject: string, options: AbortOptions = {}): Promise<{ did: string; removed: boolean }> {
    return await this.trusts.untrust(subject, options)
  }

  async attest(init: AttestInit, options: AbortOptions = {}): Promise<SignedStatement<AttestationBody>> {
    return await this.trusts.attest(init, options)
  }

  async revoke(init: NodeRevokeInit, options: AbortOptions = {}): Promise<SignedStatement<RevocationBody>> {
    return await this.trusts.revoke(init, options)
  }

  reputation(subject: string): ReputationReport {
    return this.trusts.reputation(subject)
  }

  statements(query: StatementQuery = {}): SignedStatement[] {
    return this.trusts.statements(query)
  }

  // ----------------------------------------------------------------

  async task(target: string, request: TaskRequest, options: SendTaskOptions = {}): Promise<TaskResult> {
    this.assertStarted()
    const tasks = this.services.get('tasks') as TaskService | undefined
    if (tasks === undefined) throw new MissingServiceDependencyError('node.task', 'tasks')
    return await this.activity.timeTask(() => tasks.send(target, request, options))
  }

  record(): FederatedNode | undefined {
    return this.discovery()?.localRecord()?.node
  }

  status(): NodeStatus {
    return nodeStatus({
      init: this.init,
      did: this.identity?.did,
      started: this.started && this._router !== undefined,
      authority: () => this.authority,
      addrs: () => this.addrs(),
      router: () => this.router,
      agents: this.agents,
      reconnection: this.reconnection,
      trust: this.trusts.runtimeOrUndefined,
      bootstrap: this.boot.result,
      mesh: this.mesh,
      transports: this.transports,
      services: () => serviceMetrics((name) => this.services.get(name)),
    })
  }

  metricsText(): string {
    const router = this.assertStarted()
    const trust = this.trusts.runtimeOrUndefined
    return nodeMetricsText({
      did: this.did,
      authority: this.authority,
      nodeType: this.init.nodeType ?? NodeType.PEER_NODE,
      router: router.metrics(),
      knownPeers: this.reconnection.knownCount,
      redialing: this.reconnection.pending(),
      trustedDids: this.trustStore.list().length,
      ...(trust === undefined ? {} : { trust: trust.summary() }),
      suppressed: this.events.suppressed(),
      stats: this.stats,
      mesh: this.mesh.summary(),
      ...serviceMetrics((name) => this.services.get(name)),
    })
  }
}

/**
 * Creates a node. No I/O happens here: it validates the options and the service graph (a service
 * requiring a component nobody provides throws MissingServiceDependencyError now, not at start).
 */
export function createNode(init: NodeInit = {}): KosMeshNode {
  let node: Node | undefined
  node = new Node(withNodeRecord(init, () => node?.routerAddrs() ?? []))
  return node
}
