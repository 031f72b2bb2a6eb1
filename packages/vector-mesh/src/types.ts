/**
 * The data model of the spec's section V ("Federated Indexing and Vector Sync"), with enums as
 * `as const` objects like the rest of @kos-mesh/interface, plus this package's own entry types.
 */
import type { MessagePriority, ShardingMethod, SyncStatus, SyncStrategy } from '@kos-mesh/interface'

/** The spec's enums of section V, defined once in @kos-mesh/interface and re-exported here. */
export { ShardingMethod, SyncStatus, SyncStrategy } from '@kos-mesh/interface'

type ValueOf<T> = T[keyof T]




/**
 * The consistency a collection offers. The spec names the type without defining it; vector-mesh
 * implements one: `eventual` (strong eventual consistency: replicas that received the same entries
 * hold the same set, whatever the order).
 */
export const ConsistencyModel = {
  EVENTUAL: 'eventual',
} as const
export type ConsistencyModel = ValueOf<typeof ConsistencyModel>

/**
 * A locality hint (the spec names the type without defining it): shard `shard` (for geographic
 * sharding, the shard of region `region`) prefers holders in `region`.
 */
export interface LocalityHint {
  region: string
  shard?: number
}

/**
 * How a collection is split into shards and replicated (spec V.A): `CollectionConfig.sharding`,
 * where a missing field takes its default (hash-based, 1 shard - for geographic sharding one per
 * locality hint -, replication factor 1, no hints). Every node must use the same config.
 */
export interface ShardingConfig {
  /** Which shard an entry goes to and which shards a query visits. */
  sharding_method: ShardingMethod
  /** Number of shards, 1..1,024 (`MAX_SHARDS`); shard ids are `<collection>/0` .. `<collection>/<shard_count - 1>`. */
  shard_count: number
  /**
   * Holders per shard, 1..16 (`MAX_REPLICATION`), chosen by rendezvous hashing among the
   * `storageNodes`. Without `storageNodes` every node holds every shard and this is not used.
   */
  replication_factor: number
  /** Preferred regions of shards (placement), and under geographic sharding the region of each shard. */
  locality_hints: LocalityHint[]
}

/** What a node runs for one collection (spec V.A), as returned by `VectorMesh.protocol`. */
export interface VectorMeshProtocol {
  /** The vector-mesh protocol version, `VECTOR_MESH_PROTOCOL_VERSION` (`'1.0'`). */
  protocol_version: string
  /** The strategies this node runs (its `strategies` init option; default `['hybrid']`). */
  sync_strategies: SyncStrategy[]
  /** The collection's sharding, defaults filled in. */
  sharding_config: ShardingConfig
  /** Always `eventual`. */
  consistency_model: ConsistencyModel
}

/**
 * A request to reconcile shards with their other holders (spec V.A), the argument of
 * `VectorMesh.syncVectorData`. Shards this node does not hold are skipped; an id of an unknown
 * collection or without a shard number makes `syncVectorData` throw `InvalidParametersError`.
 */
export interface VectorSyncRequest {
  /** `<collection>/<shard>` ids, e.g. `docs/3`; empty = every shard of every collection this node holds. */
  shard_ids: string[]
  /**
   * Only entries written (HLC wall time) at or after this time are compared. An optimisation only:
   * a full reconciliation (the default, epoch 0) never depends on clocks.
   */
  since_timestamp: Date
  /** Most entries fetched from one peer in this sync. */
  max_vectors: number
  /** Priority of the VECTOR_SYNC requests of this sync. */
  priority: MessagePriority
  /** When the sync was asked for; returned in `SyncResult.request`, not used for scheduling. */
  start_time: Date
}

/** The outcome of a sync with one peer (spec V.A): one per peer in `SyncResult.peer_results`. */
export interface PeerSyncResult {
  /** The peer's DID. */
  peer_id: string
  /** `completed`, or `failed` when the sync with this peer stopped on an error. */
  status: SyncStatus
  /** New versions fetched from this peer and applied here (entries pushed to it are not counted). */
  vectors_synced: number
  /** Wall time of the sync with this peer, ms (the node's clock). */
  sync_duration_ms?: number
  /** When `failed`: `<error name>: <message>` (or `sync failed` for an error that is not a kos-mesh one). */
  error?: string
}

/**
 * The outcome of `VectorMesh.syncVectorData` (spec V.A). A peer that fails does not make the call
 * throw: it appears in `peer_results` as `failed`.
 */
export interface SyncResult {
  /** Unique on this node: `sync-<authority>-<counter>-<ms>`. */
  sync_id: string
  /** The request, as given. */
  request: VectorSyncRequest
  /** One result per peer synced with (no peer: empty). */
  peer_results: PeerSyncResult[]
  /** Sum of the peers' `vectors_synced`. */
  total_vectors_synced: number
  /** When the sync ended (the node's clock). */
  sync_timestamp: Date
}

/** Distance metric of a collection. */
export type VectorMetric = 'cos' | 'ip' | 'l2sq'
/** Scalar type the local index stores (entries always carry f32). */
export type VectorQuantization = 'f32' | 'f16' | 'i8'

/** A collection: its vectors' shape, the local index settings and the sharding. */
export interface CollectionConfig {
  name: string
  dimensions: number
  /** Default `cos`. */
  metric?: VectorMetric
  /** Default `f32`. */
  quantization?: VectorQuantization
  /** HNSW connectivity (M). Default 16. */
  connectivity?: number
  /** HNSW expansion at add time (efConstruction). Default 128. */
  expansionAdd?: number
  /** HNSW expansion at search time (ef). Default 64. */
  expansionSearch?: number
  /** Default: hash-based, 1 shard, replication factor 1, no hints. */
  sharding?: Partial<ShardingConfig>
  /** Range sharding: the sorted id boundaries (shard i holds ids in [b[i-1], b[i])); shard_count - 1 of them. */
  rangeBoundaries?: string[]
  /** Semantic sharding: one centroid per shard (see `learnCentroids`). */
  centroids?: number[][]
  /** Semantic sharding: how many nearest shards a query visits. Default 2. */
  probeShards?: number
}

/** A hybrid logical clock timestamp: wall ms, then a counter for events in the same ms. */
export interface Hlc {
  wall: number
  counter: number
}

/** The body of a signed entry (a put or a tombstone). */
export interface EntryBody {
  /** Format version, 1. */
  v: 1
  collection: string
  id: string
  op: 'put' | 'del'
  /** f32 little-endian vector bytes (put only). */
  vector?: Uint8Array
  /** Small metadata map (put only): string, number, boolean values. */
  metadata?: Record<string, string | number | boolean>
  /** The DID that owns the entry: only it, or a DID it delegated to, may change or delete it. */
  owner: string
  /** The DID that signed this version (the owner, or a delegate). */
  writer: string
  hlc: Hlc
  /** Geographic sharding: the region of the entry. */
  region?: string
  /** When writer !== owner: the owner's signed delegation (bytes of a signed delegation). */
  delegation?: Uint8Array
}

/** A signed, decoded entry. */
export interface SignedEntry {
  /** SHA-256 of the payload (the body's DAG-CBOR): the entry version's id in reconciliation. */
  readonly hash: Uint8Array
  /** The collection-wide key of the entry: `<owner> <id>` hashed (hex, 32 chars). */
  readonly key: string
  readonly body: EntryBody
  /** The signed bytes (COSE_Sign1). */
  readonly bytes: Uint8Array
}

/** A delegation: `owner` lets `delegate` write its entries in `collection` until `expires_at`. */
export interface DelegationBody {
  v: 1
  kind: 'vector-delegation'
  owner: string
  delegate: string
  collection: string
  expires_at: number
}
