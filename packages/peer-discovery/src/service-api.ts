/**
 * The discovery service's public interface: its options, components, seeds, discovery config,
 * bootstrap result and counters.
 */
import type { BootstrapStatus, NATType, NodeType } from '@kos-mesh/interface'
import type {
  AbortOptions,
  Clock,
  DiscoveredPeer,
  Logger,
  MessageRouter,
  NetworkAddress,
  NodeCapabilities,
  NodeTrustProfile,
  SignatureVerifier,
  Signer,
  Startable,
  TransportAddress,
  TrustEngine,
} from '@kos-mesh/interface'
import type { ProtocolLimits } from './protocol.js'
import type { PeerRegistry } from './registry.js'
import type { MergeResult, PeerRegistryInit, RankingWeights, RegistryStats } from './registry-types.js'
import type { DiscoverySource, NodeRecord } from './types.js'

/** A seed to bootstrap from. */
export interface SeedNode {
  /** Transport address of the seed (`memory://seed`, `tcp://10.0.0.1:4001`); may end in `/did:...`. */
  address: TransportAddress
  /** The seed's expected DID: the connection must authenticate as it. */
  did?: string
}

/** The spec's DiscoveryConfig (all fields optional here). */
export interface DiscoveryConfig {
  /** Ask registered DHT sources. Default false. */
  use_dht?: boolean
  /** Ask registered gossip sources. Default false. */
  use_gossip?: boolean
  /** Seeds to bootstrap from first (strings are `address[/did:...]`). Default none. */
  seed_nodes?: Array<string | SeedNode>
  /** Boolean capability names every returned peer must have. */
  required_capabilities?: string[]
  /** Most peers returned. Default: all. */
  max_peers?: number
  /** How far a gossip peer-list request travels (hops), passed to the sources as `PeerQuery.hops`. */
  gossip_hops?: number
  /** Extra filter on the ranked result. */
  peer_filter?: (peer: DiscoveredPeer) => boolean
  /** Ranking weights for this call (`trust`, `latency`, `capabilities`, `role`). */
  ranking_criteria?: Partial<RankingWeights>
  /** Node roles (`NodeType`) that score for the `role` weight, e.g. `['ValidatorNode']`. */
  preferred_roles?: string[]
}

/** The spec's BootstrapResult, plus what discovery learned. */
export interface BootstrapResult {
  node_id: string
  /** Connected peers after bootstrap (seeds and auto-dialled peers). */
  peer_connections: number
  /** True when at least one seed answered with a valid peer table. */
  trust_mesh_joined: boolean
  /** ms since the epoch. */
  bootstrap_timestamp: number
  status: BootstrapStatus
  /** Seeds that answered. */
  seeds_reached: number
  /** Peers added to the registry during bootstrap. */
  discovered: number
  /** Seeds that failed, with the error of each. */
  errors: Array<{ address: string; error: unknown }>
}

/** What this node publishes in its signed record. */
export interface LocalNodeInit {
  node_type?: NodeType
  capabilities?: Partial<NodeCapabilities>
  trust_profile?: Partial<NodeTrustProfile>
  /**
   * Addresses published in the record. Default: the router's listen addresses at `start()` /
   * `bootstrap()` / `announce()` (set this when listening on 0.0.0.0 or behind NAT).
   */
  addresses?: NetworkAddress[]
  protocols_supported?: string[]
  nat_type?: NATType
}

/** Options of `peerDiscovery()`. */
export interface PeerDiscoveryInit {
  /** What this node publishes about itself (its record). */
  node?: LocalNodeInit
  /** Connected peers to aim for; discovery dials the best-ranked known peers up to it. Default 8. */
  targetPeers?: number
  /** Dial discovered peers automatically (after bootstrap and on refresh). Default true. */
  autoDial?: boolean
  /** Dials in flight at once. Default 4. */
  dialConcurrency?: number
  /** A peer whose dial failed is not dialled again for this long, ms. Default 30,000. */
  dialBackoffMs?: number
  /** Period of the refresh loop (prune, pull peer tables, auto-dial), ms; 0 disables. Default 60,000. */
  refreshIntervalMs?: number
  /** Period of re-signing and re-announcing the local record, ms; 0 disables. Default 600,000. */
  announceIntervalMs?: number
  /** Connected peers asked for their table on each refresh. Default 2. */
  refreshFanout?: number
  /** TTL of the local record, seconds. Default 3,600. */
  recordTtlSeconds?: number
  /** Clock skew accepted on records, ms. Default 30,000. */
  clockSkewMs?: number
  /** Time for one seed (dial + peer table), ms. Default 10,000. */
  seedTimeoutMs?: number
  /** Time for one discovery request, ms. Default 5,000. */
  requestTimeoutMs?: number
  /** Message bounds. Default `DEFAULT_PROTOCOL_LIMITS` (64 records per message, 8 KiB per record). */
  limits?: Partial<ProtocolLimits>
  /** Registry options (maxPeers, weights, liveness, per-source budgets). */
  registry?: Omit<PeerRegistryInit, 'verifyRecord' | 'peekRecord' | 'localPeerId' | 'clock'>
  /** Extra record sources (DHT, gossip) that `discoverPeers` merges from. */
  sources?: DiscoverySource[]
  /** Maps a record's NetworkAddress to a dialable transport address. Default `protocol://address[:port]`. */
  toTransportAddress?: (address: NetworkAddress) => TransportAddress | undefined
}

/**
 * What the discovery service needs: the router, a signer (or identity) and a signature verifier, and
 * optionally a trust engine (for ranking), clock and logger.
 */
export interface PeerDiscoveryComponents {
  /**
   * The router discovery runs on (the interface's `MessageRouter`; a klp-router Router is one).
   * Start it before the discovery service (its listen addresses go into the record).
   */
  router: MessageRouter
  /** Signs this node's record; its key id's DID must be the router's DID. Or give `identity`. */
  signer?: Signer
  /** Anything with a `signer` (a did-security Identity fits); used when `signer` is absent. */
  identity?: { signer: Signer }
  signatureVerifier: SignatureVerifier
  /**
   * The node's trust engine (any TrustEngine with `peerScore`, e.g. @kos-mesh/trust's): discovered
   * peers are ranked by its scores. Without it, by `registry.setTrust` and self-asserted trust (capped).
   */
  trustEngine?: Pick<TrustEngine, 'peerScore'>
  /**
   * Time and every timer (refresh and announce loops, seed and dial timeouts, dial backoff, RTTs,
   * record timestamps and expiry). Default `systemClock` (@kos-mesh/interface).
   */
  clock?: Clock
  logger?: Logger
}

/** Counters of the discovery service. */
export interface PeerDiscoveryStats {
  registry: RegistryStats
  bootstraps: number
  requestsServed: number
  requestsFailed: number
  invalidMessages: number
  dials: number
  dialFailures: number
}

/**
 * The discovery service: this node's signed record, the registry, seed bootstrap, peer tables, the spec's
 * `discoverPeers` over the registered sources.
 */
export interface PeerDiscovery extends Startable {
  readonly registry: PeerRegistry
  /** Whether the service is started. */
  isStarted(): boolean
  /** Connects to the seeds, pulls their peer tables, announces this node, then dials the best peers. */
  bootstrap(seeds: Array<SeedNode | string>, options?: AbortOptions): Promise<BootstrapResult>
  /** Seeds (when given) and registered sources, then the ranked, filtered, de-duplicated peers. */
  discoverPeers(config?: DiscoveryConfig, options?: AbortOptions): Promise<DiscoveredPeer[]>
  /** Known peers, best first. */
  getPeers(query?: { requiredCapabilities?: string[]; maxPeers?: number }): DiscoveredPeer[]
  /** This node's current signed record (undefined before `start()`). */
  localRecord(): NodeRecord | undefined
  /** Re-signs the local record and pushes it to every connected peer; returns how many got it. */
  announce(options?: AbortOptions): Promise<number>
  /** One refresh round: prune, pull peer tables from connected peers, auto-dial. */
  refresh(options?: AbortOptions): Promise<MergeResult>
  /** Dials the best known, unconnected peers up to `targetPeers`; returns how many were connected. */
  dialBest(options?: AbortOptions): Promise<number>
  /** The registry's and the service's counters. */
  stats(): PeerDiscoveryStats
}
