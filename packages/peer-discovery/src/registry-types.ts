/**
 * The peer registry's public types: ranking weights (and their defaults), options, entries, rank
 * queries, merge results and reject reasons, events and counters.
 */
import type { AbortOptions, Clock, DiscoveryMethod } from '@kos-mesh/interface'
import type { NodeRecord, PeerQuery, RecordPeek, RecordVerifier } from './types.js'

/** Weights of the rank score's parts (they need not sum to 1). */
export interface RankingWeights {
  /** Weight of the trust score (0..10 mapped to 0..1). Default 0.5. */
  trust: number
  /** Weight of measured latency (`ref / (ref + latency)`, 0.5 when never measured). Default 0.3. */
  latency: number
  /** Weight of capability richness (share of `preferredCapabilities` the peer has). Default 0.2. */
  capabilities: number
  /**
   * Weight of the node role: 1 when the peer's `node_type` is one of the query's `preferredRoles`
   * (e.g. `ValidatorNode`, `ArchiveNode`), else 0. Default 0 (roles do not rank unless asked).
   */
  role: number
}

/** The default ranking weights: trust 0.5, latency 0.3, capabilities 0.2, role 0. */
export const DEFAULT_RANKING_WEIGHTS: Readonly<RankingWeights> = Object.freeze({ trust: 0.5, latency: 0.3, capabilities: 0.2, role: 0 })

/** Options of the registry. */
export interface PeerRegistryInit {
  /** Decodes and verifies record bytes (see `createRecordVerifier`). Required. */
  verifyRecord: RecordVerifier
  /** Optional cheap peek used to skip verifying records that cannot replace the stored one. */
  peekRecord?: RecordPeek
  /** The local node's DID: its own record is never stored. */
  localPeerId?: string
  /** Time source (only `now()` is used: the registry sets no timers). Default `systemClock` (@kos-mesh/interface). */
  clock?: Pick<Clock, 'now'>
  /** Max peers kept; at the bound the worst-ranked peer is evicted for a better one. Default 1000. */
  maxPeers?: number
  /** A peer not heard of (no newer record, no `touch`) for this long is marked stale. Default 5 min. */
  staleAfterMs?: number
  /** A peer not heard of for this long is removed. Default 30 min. */
  removeAfterMs?: number
  /** Ranking weights. Default `DEFAULT_RANKING_WEIGHTS`. */
  weights?: Partial<RankingWeights>
  /** Latency (ms) that scores 0.5. Default 100. */
  latencyReferenceMs?: number
  /** Capabilities that count for the capability score. Default: every boolean capability. */
  preferredCapabilities?: readonly string[]
  /**
   * Trust a peer gets from its own (self-asserted) record is capped at this (0..10). A trust engine
   * sets real scores through `setTrust`. Default 5.
   */
  maxSelfAssertedTrust?: number
  /**
   * The trust engine's score of a DID (0..10), e.g. `(did) => engine.peerScore(did)` of
   * @kos-mesh/trust: it ranks before anything else (`setTrust`, then the capped self-asserted one).
   */
  trustScoreOf?: (did: string) => number | undefined
  /** Per-source budget of records considered: burst size. Default 256. */
  sourceBurst?: number
  /** Per-source budget refill, records per second. Default 64. */
  sourceRatePerSecond?: number
  /**
   * Max peers in the table introduced by one source (anti-Sybil: one peer cannot fill the table
   * with identities it made up). Default `max(64, floor(maxPeers / 4))`.
   */
  maxPeersPerSource?: number
  /** Max sources whose budgets are tracked (least recently used are forgotten). Default 1024. */
  maxTrackedSources?: number
  /** Rejected record byte strings remembered, so repeats are dropped without verifying. Default 1024. */
  maxRememberedRejects?: number
}

/** A peer in the registry: its verified record and what this node measured of it. */
export interface PeerEntry {
  readonly peerId: string
  /**
   * Tie-breaker among equal scores: a hash of (local id, peer id), so different nodes prefer
   * different peers among equals instead of all dialling the same ones.
   */
  readonly tieKey: number
  record: NodeRecord
  discoveryMethod: DiscoveryMethod
  /** Local time the peer was first added. */
  discoveredAt: number
  /** Local time of the last sign of life (newer record or `touch`). */
  lastSeen: number
  stale: boolean
  /** Measured round-trip latency (ms, smoothed), if any. */
  latencyMs?: number
  /** Trust score from a trust engine (0..10), if any; overrides the self-asserted one. */
  trustOverride?: number
  /** Who introduced this peer (counts against that source's `maxPeersPerSource`). */
  readonly source: string
}

export interface RankQuery extends PeerQuery {
  /** Peer ids left out (e.g. the requester, connected peers). */
  exclude?: ReadonlySet<string>
  /** Weights for this call only (missing ones keep the registry's). */
  weights?: Partial<RankingWeights>
  /** Node roles (`NodeType` values) that score for the `role` weight. Default none. */
  preferredRoles?: readonly string[]
}

/** A peer with its rank score and its trust score. */
export interface RankedPeer {
  entry: PeerEntry
  score: number
  trustScore: number
}

/** Why a record was not merged. */
export type RejectReason =
  | 'invalid'
  | 'limit'
  | 'forged'
  | 'signer_mismatch'
  | 'expired'
  | 'future'
  | 'rate_limited'
  | 'table_full'
  | 'source_full'
  | 'self'

/** What merging a batch of records did. */
export interface MergeResult {
  added: number
  updated: number
  /** Records that were valid but not newer than the stored one (or peeked as such). */
  unchanged: number
  rejected: number
  /** Rejections by reason. */
  reasons: Partial<Record<RejectReason, number>>
}

/** Options of merging records into the registry: who sent them, and how they were discovered. */
export interface MergeOptions extends AbortOptions {
  /** Who sent the records (a peer DID or a source name): budgets are per source. */
  source: string
  method: DiscoveryMethod
}

/** Why a peer left the registry. */
export type RemoveReason = 'expired' | 'timeout' | 'evicted' | 'manual'

/** Events of the registry: a peer added, updated, gone stale, removed. */
export interface PeerRegistryEvents {
  'peer:add': CustomEvent<PeerEntry>
  'peer:update': CustomEvent<PeerEntry>
  'peer:stale': CustomEvent<PeerEntry>
  'peer:remove': CustomEvent<{ entry: PeerEntry; reason: RemoveReason }>
}

/** Counters of the registry. */
export interface RegistryStats {
  peers: number
  added: number
  updated: number
  unchanged: number
  removed: number
  rejected: Record<RejectReason, number>
}
