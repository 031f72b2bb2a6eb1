/**
 * The public shape of a node: what `createNode()` takes (`NodeInit`), what it returns
 * (`KosMeshNode`) and what that reports (`NodePeer`, `NodeStatus`).
 */
import type { AbortOptions, Clock, FederatedNode, Logger, NetworkInfo, NodeCapabilities, NodeType, SignatureVerifier, Startable, Transport, TransportAddress } from '@kos-mesh/interface'
import type { Identity } from '@kos-mesh/did-security'
import type { PeerInfo, Router, RouterInit } from '@kos-mesh/klp-router'
import type { AttestInit, AttestationBody, ReputationReport, RevocationBody, SignedStatement, StatementQuery, TrustEngineInit, TrustGraphEngine, TrustServiceInit } from '@kos-mesh/trust'
import type { BootstrapResult, DhtInit, GossipServiceInit, PeerDiscoveryInit } from '@kos-mesh/peer-discovery'
import type { AgentInit, AgentRegistry, SendTaskOptions, TaskRequest, TaskResult } from '@kos-mesh/agents'
import type { NodeService } from './components.js'
import type { MigrationMetrics, MigrationNodeInit } from './node-migration.js'
import type { VectorMetrics, VectorsNodeInit } from './node-vectors.js'
import type { IdentitySource } from './identity.js'
import type { NodeStore } from './storage/memory.js'
import type { PersistentTrustStore, TrustListEntry, TrustSummary } from './trust.js'
import type { EventLogInit } from './events.js'
import type { ReconnectInit, RedialState } from './redial.js'
import type { MeshSummary, NodeMesh } from './node-mesh.js'

/** Builds a transport once the node identity is known. */
export type TransportFactory = (components: { identity: Identity; logger: Logger }) => Transport

/**
 * The options of `createNode()`. Every field is optional: the defaults make an in-memory node
 * (a new random identity, the memory transport, in-memory storage, open task policy) that does no
 * I/O until `start()`. Invalid values throw InvalidParametersError from `createNode()`, and a
 * service requiring a component nobody provides throws MissingServiceDependencyError there.
 */
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
   * `{ dht, gossip, discovery: discoveryService(), tasks: taskService() }` (dht and gossip as
   * `dht` and `gossip` below say); `false` removes a default.
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
  /**
   * Options of the trust engine (`@kos-mesh/trust`'s `createTrustEngine`, without `self`: the
   * node's DID). The engine is the router's TrustEngine; the operator's `trust()` decisions are
   * its anchors. Default `{}` (the engine's defaults).
   */
  trust?: Omit<TrustEngineInit, 'self'>
  /**
   * Options of the trust service (`trustService`): it signs, verifies, persists (in `storage`,
   * `trust-statement/<id>`) and floods attestations, revocations and reputation deltas.
   */
  trustService?: TrustServiceInit
  /** Options of the default discovery service. */
  discovery?: PeerDiscoveryInit
  /**
   * The DHT service (`services.dht`, @kos-mesh/peer-discovery's `dhtService`): Kademlia over the
   * router, this node's capabilities provided as `capability:<flag>`, its routing table's contacts
   * kept in `storage` (`dht/contact/<did>`) across restarts; it joins through the connected peers
   * after the first connection and after each bootstrap. A discovery source (`use_dht`). `false`
   * turns it off. Default `{}` (on).
   */
  dht?: DhtInit | false
  /**
   * The gossip service (`services.gossip`, `gossipService`): HyParView membership and Plumtree
   * broadcast (the router's broadcast strategy), a discovery source (`use_gossip`). `false` turns
   * it off (broadcasts are then flooded). Default `{}` (on).
   */
  gossip?: GossipServiceInit | false
  /**
   * Agent migration (`services.migration`, @kos-mesh/agent-migration): hosts sandboxed agents
   * (registered in `agents`, so they answer tasks) and moves, copies, clones and backs them up
   * between nodes, its agent records and logs in `storage`. `false` turns it off. Default `{}` (on).
   */
  migration?: MigrationNodeInit | false
  /**
   * Vector collections (`services.vectors`, @kos-mesh/vector-mesh): signed entries, usearch shard
   * indexes (files in `vectors.dataDir`), sync with the shards' other holders, federated search.
   * An object turns it on and the node advertises `vector_storage`. Default off.
   */
  vectors?: VectorsNodeInit | false
  /** Bootstrap seeds at start (throwing if none answers). Default true when seeds are given. */
  bootstrap?: boolean
  signatureVerifier?: SignatureVerifier
  logger?: Logger
  clock?: Clock
}

/** What `revoke()` takes: a subject (DID or pinned `klp://` authority) and/or a statement id of this node. */
export interface NodeRevokeInit {
  subject?: string
  scope?: 'statement' | 'attestations' | 'key'
  statement?: string
  reason?: string
  /** Required to revoke this node's own DID (scope `key`). */
  confirm?: boolean
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

/**
 * What `node.status()` reports (and `kos-mesh status --json` prints, with the control API's
 * additions): identity, addresses, agents, peers and redials, the task policy, and, while the
 * node runs, the trust, mesh, network, migration and vector summaries. A stopped node reports
 * `started: false`, no addresses and 0 connected peers. Times are clock ms.
 */
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
  /** Endorsements a sender needs to run tasks here (the router's trust policy for TASK_REQUEST; 0 = none). */
  taskEndorsements: number
  /** Trust counters: anchors, statements held, revoked DIDs, statements received and refused (when started). */
  trust?: TrustSummary
  /** DHT table and providers, gossip views, broadcasts sent and received (when started). */
  mesh?: MeshSummary
  /**
   * The spec's NetworkInfo as the node's libp2p host sees it (nat_type, connectivity_status, public and
   * relay addresses), when it runs on libp2p and is started.
   */
  network?: NetworkInfo
  /** Sandboxed agents by status, migrations running and their counters by type (when started with the migration service). */
  migration?: MigrationMetrics
  /** Vector collections, entries held, syncs and entries from peers (when started with the vector service). */
  vectors?: VectorMetrics
  bootstrap?: BootstrapResult | undefined
}

/**
 * A kOS mesh node, as `createNode()` returns it: identity, transports, storage, the KLP router,
 * the trust engine, discovery, agents and services wired together. Nothing happens before
 * `start()`; most methods need a started node and throw NodeNotStartedError otherwise.
 */
export interface KosMeshNode extends Startable {
  /** The node DID (throws NodeNotStartedError before start unless an Identity was given). */
  readonly did: string
  readonly authority: string
  readonly router: Router
  readonly agents: AgentRegistry
  readonly trustStore: PersistentTrustStore
  readonly storage: NodeStore
  /** True between a `start()` that resolved and the next `stop()`. */
  isStarted(): boolean
  /**
   * Starts the node, in order: loads (or creates) the identity, opens the storage and the
   * persisted trust table, starts the transports and the router (listening), the services in
   * dependency order, the redialing of known peers, then bootstraps from the seeds (unless
   * `bootstrap: false`). A second call while starting returns the same promise; on a started node
   * it resolves at once. A step that fails undoes the steps before it and rejects with its error
   * (e.g. AddressInUseError, KeystorePassphraseError, StoreIntegrityError, an AbortError of
   * `options.signal`).
   */
  start(options?: AbortOptions): Promise<void>
  /**
   * Stops what `start()` started, in reverse order (services, router, transports, storage),
   * waiting for a start in progress first. Never rejects: a step that fails is logged and the
   * others still run. Resolves at once on a stopped node.
   */
  stop(): Promise<void>
  /** Listening addresses, each with the node DID appended (what other nodes dial). */
  addrs(): string[]
  /** A started service by name. */
  service<S = unknown>(name: string): S
  /** Discovery through the DHT and gossip, DHT lookups, broadcasts (see NodeMesh). */
  readonly mesh: NodeMesh
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
  trust(subject: string, level: number, options?: AbortOptions & { validator?: boolean }): Promise<TrustListEntry>
  /** The trust engine (the router's TrustEngine; throws NodeNotStartedError before start). */
  readonly trustEngine: TrustGraphEngine
  /**
   * Signs an attestation by this node about `init.subject` (a DID, or a pinned `klp://`
   * authority as for `trust`), keeps it and floods it to the mesh.
   */
  attest(init: AttestInit, options?: AbortOptions): Promise<SignedStatement<AttestationBody>>
  /**
   * Signs a revocation by this node and floods it: of its attestations about `subject` (scope
   * `attestations`, the default), of one of its statements (`statement`), or of a key (scope
   * `key`; this node's own DID only with `confirm: true`).
   */
  revoke(init: NodeRevokeInit, options?: AbortOptions): Promise<SignedStatement<RevocationBody>>
  /** The score of a DID (or pinned `klp://` authority) with everything behind it. */
  reputation(subject: string): ReputationReport
  /** Statements the node holds (default: at most 256). */
  statements(query?: StatementQuery): SignedStatement[]
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
  /** The node's status now (see NodeStatus); never throws, also on a stopped node. */
  status(): NodeStatus
  /**
   * The node's metrics in the Prometheus text exposition format (0.0.4): router traffic and
   * rejects, queues, peers, pending requests, replay windows, pins, dial (handshake) and task
   * request latency histograms, tasks served and refused, suppressed log lines, resident memory,
   * trust, DHT and gossip, and, when the node runs them, agent migrations and vector collections.
   * Throws NodeNotStartedError on a stopped node.
   */
  metricsText(): string
}
