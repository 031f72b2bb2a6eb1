/**
 * Which shard an entry belongs to, which shards a query visits, and which nodes hold a shard.
 *
 * - hash: SHA-256 of the entry key, modulo shard_count (every shard gets an even share).
 * - range: the entry id against sorted boundaries (shard i holds ids in [b[i-1], b[i])).
 * - semantic: the nearest centroid (learned by k-means from a sample, `learnCentroids`); a query
 *   visits only its `probeShards` nearest shards.
 * - geographic: the entry's region names the shard (locality hint i = shard i); an entry without a
 *   known region falls back to hashing.
 * Placement: rendezvous hashing over the nodes that advertise `vector_storage` and pass the minimum
 * trust: each node scores -w / ln(h(shard, node)) and the `replication_factor` best hold the shard;
 * nodes of the shard's locality hint region come first. When a holder leaves, the next best node
 * takes its place and nothing else moves (`placementChanges`). Every node must compute the same
 * holders, so the weight w is 1 by default: trust is personal (each node's view differs) and
 * weighting by it would make nodes disagree on who holds what. Trust decides who may hold a shard
 * (`minTrust`) and the order in which a node asks the holders (`rankHolders`); `weightByTrust`
 * is for a shared, agreed trust table only.
 */
import { createHash } from 'node:crypto'
import { InvalidParametersError } from '@kos-mesh/interface'
import type { ResolvedCollection } from './collection.js'
import { ShardingMethod, type EntryBody } from './types.js'

/**
 * A node that may hold shards: a `vector_storage` provider from discovery, with this node's trust
 * in it (`storageNodesFromRegistry` builds them), as given in `VectorMeshComponents.storageNodes`.
 */
export interface StorageNode {
  /** The node's DID. */
  did: string
  /** Its KLP authority, when known (needed to send it requests). */
  authority?: string
  /** Trust score 0..10 (this node's view). */
  trust: number
  /** Its region, for geographic placement. */
  region?: string
}

function hash64(...parts: string[]): number {
  const h = createHash('sha256')
  for (const p of parts) h.update(p).update('\0')
  const d = h.digest()
  // 52 bits, as a fraction in (0, 1)
  return (d.readUIntBE(0, 6) * 16 + (d[6]! >> 4) + 0.5) / 2 ** 52
}

/**
 * The squared Euclidean distance of two vectors (how semantic sharding finds the nearest
 * centroid). Iterates over `a`: give vectors of the same length (not checked; a shorter `b` gives NaN).
 */
export function squaredDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0
  for (let i = 0; i < a.length; i++) { const d = (a[i] as number) - (b[i] as number); s += d * d }
  return s
}

function nearest(centroids: Float32Array[], v: ArrayLike<number>, count: number): number[] {
  return centroids.map((c, i) => ({ i, d: squaredDistance(c, v) })).sort((x, y) => x.d - y.d || x.i - y.i).slice(0, count).map((x) => x.i)
}

/** The shard of an entry. `vector` is the entry's f32 vector (semantic sharding). */
export function shardOf(c: ResolvedCollection, key: string, body: Pick<EntryBody, 'id' | 'region'>, vector?: ArrayLike<number>): number {
  const n = c.sharding.shard_count
  if (n === 1) return 0
  const byHash = (): number => Math.floor(hash64('shard', key) * n)
  switch (c.sharding.sharding_method) {
    case ShardingMethod.RANGE_BASED: {
      let lo = 0
      while (lo < c.rangeBoundaries.length && body.id >= (c.rangeBoundaries[lo] as string)) lo++
      return lo
    }
    case ShardingMethod.SEMANTIC_BASED:
      // a tombstone has no vector: it goes to the shard of the version it deletes (the caller's job)
      return vector === undefined ? byHash() : (nearest(c.centroids, vector, 1)[0] as number)
    case ShardingMethod.GEOGRAPHIC: {
      const i = c.sharding.locality_hints.findIndex((h) => h.region === body.region)
      return i >= 0 ? (c.sharding.locality_hints[i]?.shard ?? i) % n : byHash()
    }
    default:
      return byHash()
  }
}

/** The shards a query visits: the `probeShards` nearest for semantic sharding, else all. */
export function shardsForQuery(c: ResolvedCollection, vector: ArrayLike<number>, options: { region?: string } = {}): number[] {
  const n = c.sharding.shard_count
  if (c.sharding.sharding_method === ShardingMethod.SEMANTIC_BASED) return nearest(c.centroids, vector, c.probeShards)
  if (c.sharding.sharding_method === ShardingMethod.GEOGRAPHIC && options.region !== undefined) {
    const i = c.sharding.locality_hints.findIndex((h) => h.region === options.region)
    if (i >= 0) return [(c.sharding.locality_hints[i]?.shard ?? i) % n]
  }
  return Array.from({ length: n }, (_, i) => i)
}

/**
 * k-means (k-means++ seeding from a seeded generator, Lloyd iterations) over a sample: the
 * centroids of semantic sharding. Deterministic for a seed.
 */
export function learnCentroids(sample: ReadonlyArray<ArrayLike<number>>, k: number, options: { iterations?: number; seed?: number } = {}): number[][] {
  if (!Number.isInteger(k) || k < 1 || sample.length < k) throw new InvalidParametersError(`expected k in 1..${sample.length}, got ${k}`)
  let s = (options.seed ?? 1) >>> 0
  const rnd = (): number => { s = (s + 0x6d2b79f5) >>> 0; let t = Math.imul(s ^ (s >>> 15), s | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296 }
  const dims = sample[0]!.length
  const cs: Float32Array[] = [Float32Array.from(sample[Math.floor(rnd() * sample.length)]!)]
  const d2 = sample.map((v) => squaredDistance(v, cs[0]!))
  while (cs.length < k) {
    const total = d2.reduce((a, b) => a + b, 0)
    let target = rnd() * total
    let pick = 0
    for (; pick < sample.length - 1; pick++) { target -= d2[pick]!; if (target <= 0) break }
    const c = Float32Array.from(sample[pick]!)
    cs.push(c)
    for (let i = 0; i < sample.length; i++) d2[i] = Math.min(d2[i]!, squaredDistance(sample[i]!, c))
  }
  for (let it = 0; it < (options.iterations ?? 20); it++) {
    const sums = cs.map(() => new Float64Array(dims))
    const counts = new Array<number>(k).fill(0)
    for (const v of sample) {
      const j = nearest(cs, v, 1)[0]!
      counts[j]!++
      const sj = sums[j]!
      for (let d = 0; d < dims; d++) sj[d]! += v[d] as number
    }
    for (let j = 0; j < k; j++) if (counts[j]! > 0) for (let d = 0; d < dims; d++) cs[j]![d] = sums[j]![d]! / counts[j]!
  }
  return cs.map((c) => Array.from(c))
}

/**
 * The holders of a shard, best first: the nodes of the shard's hint region first, then by
 * trust-weighted rendezvous score. Nodes below `minTrust` (default 0) are never chosen.
 */
export function placeShard(collection: string, shard: number, nodes: ReadonlyArray<StorageNode>, replicationFactor: number, options: { region?: string; minTrust?: number; weightByTrust?: boolean } = {}): StorageNode[] {
  const min = options.minTrust ?? 0
  const scored = nodes
    .filter((n) => n.trust >= min)
    .map((n) => ({ n, local: options.region !== undefined && n.region === options.region ? 1 : 0, score: -(options.weightByTrust === true ? Math.max(n.trust, 0.01) : 1) / Math.log(hash64('place', collection, String(shard), n.did)) }))
  scored.sort((a, b) => b.local - a.local || b.score - a.score || (a.n.did < b.n.did ? -1 : 1))
  return scored.slice(0, replicationFactor).map((x) => x.n)
}

/** Every shard's holders. */
export function placement(c: ResolvedCollection, nodes: ReadonlyArray<StorageNode>, options: { minTrust?: number; weightByTrust?: boolean } = {}): Map<number, StorageNode[]> {
  const out = new Map<number, StorageNode[]>()
  for (let s = 0; s < c.sharding.shard_count; s++) {
    const hint = c.sharding.locality_hints.find((h, i) => (h.shard ?? i) === s)
    out.set(s, placeShard(c.name, s, nodes, c.sharding.replication_factor, { ...options, ...(hint === undefined ? {} : { region: hint.region }) }))
  }
  return out
}

/** What must be copied when the node set changes: for each shard, the new holders that need a copy. */
export function placementChanges(before: Map<number, StorageNode[]>, after: Map<number, StorageNode[]>): Array<{ shard: number; add: StorageNode[]; drop: StorageNode[]; sources: StorageNode[] }> {
  const out: Array<{ shard: number; add: StorageNode[]; drop: StorageNode[]; sources: StorageNode[] }> = []
  for (const [shard, next] of after) {
    const prev = before.get(shard) ?? []
    const prevDids = new Set(prev.map((n) => n.did))
    const nextDids = new Set(next.map((n) => n.did))
    const add = next.filter((n) => !prevDids.has(n.did))
    const drop = prev.filter((n) => !nextDids.has(n.did))
    if (add.length > 0 || drop.length > 0) out.push({ shard, add, drop, sources: prev.filter((n) => nextDids.has(n.did)) })
  }
  return out
}

/** Holders in the order this node asks them: its own trust in them, highest first (stable). */
export function rankHolders<T extends { trust: number }>(holders: readonly T[]): T[] {
  return holders.map((h, i) => ({ h, i })).sort((a, b) => b.h.trust - a.h.trust || a.i - b.i).map((x) => x.h)
}
