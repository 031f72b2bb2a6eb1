/** Collection configuration: validation and defaults. */
import { InvalidCollectionError } from './errors.js'
import { isCollectionName, MAX_DIMENSIONS } from './entry.js'
import { ShardingMethod, type CollectionConfig, type LocalityHint, type ShardingConfig, type VectorMetric, type VectorQuantization } from './types.js'

/** Most shards of a collection (`shard_count` 1..1,024); also bounds the shard numbers accepted on the wire. */
export const MAX_SHARDS = 1024
/** Largest replication factor of a collection (`replication_factor` 1..16). */
export const MAX_REPLICATION = 16

/**
 * A `CollectionConfig` validated by `resolveCollection`, every default filled in: what the store,
 * the sharding functions and `VectorMesh.createCollection` return and take.
 */
export interface ResolvedCollection {
  name: string
  dimensions: number
  metric: VectorMetric
  quantization: VectorQuantization
  connectivity: number
  expansionAdd: number
  expansionSearch: number
  sharding: ShardingConfig
  rangeBoundaries: string[]
  /** Semantic sharding: one centroid per shard; empty otherwise. */
  centroids: Float32Array[]
  /** Semantic sharding: shards a query visits, 1..shard_count (default min(2, shard_count)). */
  probeShards: number
}

const bad = (msg: string): never => { throw new InvalidCollectionError(msg) }

/**
 * Validates a collection config and fills in its defaults: metric `cos`, quantization `f32`,
 * connectivity 16 (2..128), expansionAdd 128 and expansionSearch 64 (1..4,096), hash sharding over
 * 1 shard (geographic: one per locality hint), replication factor 1, probeShards min(2, shard_count).
 *
 * @throws InvalidCollectionError for a bad name, dimensions outside 1..4,096, an unknown metric,
 * quantization or sharding method, an integer out of its range, range boundaries that are not
 * `shard_count - 1` strictly increasing strings (range sharding), centroids that are not one per
 * shard of the collection's dimensions (semantic sharding), or not one locality hint per shard
 * (geographic sharding).
 */
export function resolveCollection(c: CollectionConfig): ResolvedCollection {
  if (c === null || typeof c !== 'object') bad('expected a collection config')
  if (!isCollectionName(c.name)) bad(`expected a collection name of 1..64 chars [A-Za-z0-9._-], got ${String(c.name).slice(0, 70)}`)
  if (!Number.isInteger(c.dimensions) || c.dimensions < 1 || c.dimensions > MAX_DIMENSIONS) bad(`expected dimensions in 1..${MAX_DIMENSIONS}, got ${c.dimensions}`)
  const metric = c.metric ?? 'cos'
  if (!['cos', 'ip', 'l2sq'].includes(metric)) bad(`expected metric cos, ip or l2sq, got ${String(metric)}`)
  const quantization = c.quantization ?? 'f32'
  if (!['f32', 'f16', 'i8'].includes(quantization)) bad(`expected quantization f32, f16 or i8, got ${String(quantization)}`)
  const int = (v: number | undefined, d: number, lo: number, hi: number, what: string): number => {
    const x = v ?? d
    if (!Number.isInteger(x) || x < lo || x > hi) bad(`expected ${what} in ${lo}..${hi}, got ${x}`)
    return x
  }
  const s = c.sharding ?? {}
  const method = s.sharding_method ?? ShardingMethod.HASH_BASED
  if (!Object.values(ShardingMethod).includes(method)) bad(`expected a sharding method, got ${String(method)}`)
  const hints: LocalityHint[] = s.locality_hints ?? []
  if (!Array.isArray(hints) || hints.length > MAX_SHARDS) bad('expected locality_hints as an array')
  for (const h of hints) if (typeof h?.region !== 'string' || h.region.length === 0 || h.region.length > 64) bad('expected locality hints with a region of 1..64 chars')
  let shardCount = int(s.shard_count, method === ShardingMethod.GEOGRAPHIC ? Math.max(1, hints.length) : 1, 1, MAX_SHARDS, 'shard_count')
  const sharding: ShardingConfig = {
    sharding_method: method,
    shard_count: shardCount,
    replication_factor: int(s.replication_factor, 1, 1, MAX_REPLICATION, 'replication_factor'),
    locality_hints: hints.map((h) => ({ ...h })),
  }
  const rangeBoundaries = c.rangeBoundaries ?? []
  if (method === ShardingMethod.RANGE_BASED) {
    if (rangeBoundaries.length !== shardCount - 1) bad(`expected ${shardCount - 1} range boundaries, got ${rangeBoundaries.length}`)
    for (let i = 1; i < rangeBoundaries.length; i++) if (!((rangeBoundaries[i - 1] as string) < (rangeBoundaries[i] as string))) bad('expected strictly increasing range boundaries')
  }
  const centroids = (c.centroids ?? []).map((v) => Float32Array.from(v))
  if (method === ShardingMethod.SEMANTIC_BASED) {
    if (centroids.length !== shardCount) bad(`expected ${shardCount} centroids, got ${centroids.length}`)
    for (const v of centroids) if (v.length !== c.dimensions) bad(`expected centroids of ${c.dimensions} dimensions, got ${v.length}`)
  }
  if (method === ShardingMethod.GEOGRAPHIC && hints.length !== shardCount) bad(`expected one locality hint per shard (${shardCount}), got ${hints.length}`)
  shardCount = sharding.shard_count
  return {
    name: c.name,
    dimensions: c.dimensions,
    metric,
    quantization,
    connectivity: int(c.connectivity, 16, 2, 128, 'connectivity'),
    expansionAdd: int(c.expansionAdd, 128, 1, 4096, 'expansionAdd'),
    expansionSearch: int(c.expansionSearch, 64, 1, 4096, 'expansionSearch'),
    sharding,
    rangeBoundaries: [...rangeBoundaries],
    centroids,
    probeShards: int(c.probeShards, Math.min(2, shardCount), 1, shardCount, 'probeShards'),
  }
}

/** The config as stored and sent (JSON-safe). */
export function collectionToJson(c: ResolvedCollection): CollectionConfig {
  return {
    name: c.name,
    dimensions: c.dimensions,
    metric: c.metric,
    quantization: c.quantization,
    connectivity: c.connectivity,
    expansionAdd: c.expansionAdd,
    expansionSearch: c.expansionSearch,
    sharding: { ...c.sharding, locality_hints: c.sharding.locality_hints.map((h) => ({ ...h })) },
    rangeBoundaries: [...c.rangeBoundaries],
    centroids: c.centroids.map((v) => Array.from(v)),
    probeShards: c.probeShards,
  }
}
