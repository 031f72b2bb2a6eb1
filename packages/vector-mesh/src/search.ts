/**
 * Federated k-NN: scatter a query to the shards that matter (all, or the nearest ones under
 * semantic sharding), one holder per shard (this node first when it holds the shard, then the
 * others best-first); a holder that fails or times out is replaced by the next one; the whole
 * query has a deadline, and shards with no answer by then are reported, not fatal. The top k of
 * all answers are merged by distance (ties by key).
 */
import { InvalidParametersError, type Clock, type KLPValue } from '@kos-mesh/interface'
import { vectorBytes } from './entry.js'
import { shardsForQuery } from './sharding.js'
import { ask, type SyncContext } from './sync.js'
import type { VectorStore } from './vector-store.js'
import { parseHits, type WireHit } from './wire.js'

/** Options of `VectorMesh.search` (and `federatedSearch`). */
export interface SearchOptions {
  /** Number of neighbours, 1..1,000. Default 10. */
  k?: number
  /** Whole-query deadline, ms. Default 5,000. */
  deadlineMs?: number
  /** Geographic sharding: search only the shard of this region. */
  region?: string
  /** Aborts the requests to other nodes: their shards count as failed (the result is incomplete), nothing is thrown. */
  signal?: AbortSignal
}

/** One hit of a federated search: a live entry, its distance to the query, and the shard it came from. */
export interface SearchHit extends WireHit {
  /** The shard the hit came from. */
  shard: number
}

/** How one visited shard was answered: by which node, after which holders failed. */
export interface ShardAnswer {
  /** The shard number. */
  shard: number
  /** The DID that answered (this node's own DID for a local answer). */
  answeredBy?: string
  /** Holders tried and why they failed (error names). */
  failures: Array<{ did: string; error: string }>
}

/** The answer of a federated search. */
export interface SearchResult {
  /** The k nearest entries over every shard that answered, nearest first (ties by key), one per key. */
  hits: SearchHit[]
  /** One answer per visited shard, in the order visited. */
  shards: ShardAnswer[]
  /** True when every shard visited answered. */
  complete: boolean
}

/**
 * What `federatedSearch` needs besides a `SyncContext`: the clock of its deadline, this node's DID
 * and the holders of each shard (`VectorMesh.search` passes its own).
 */
export interface SearchContext extends SyncContext {
  /** Measures the deadline. */
  clock: Clock
  /** This node's DID (the `answeredBy` of shards searched here). */
  selfDid: string
  /** Holders of a shard other than this node, best first: [{ did, authority }]. */
  holders(collection: string, shard: number): Array<{ did: string; authority: string }>
}

async function withDeadline<T>(clock: Clock, ms: number, p: Promise<T>): Promise<T> {
  let handle: ReturnType<Clock['setTimeout']> | undefined
  const timeout = new Promise<never>((_, reject) => { handle = clock.setTimeout(() => reject(Object.assign(new Error('deadline'), { name: 'TimeoutError' })), Math.max(0, ms)) })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clock.clearTimeout(handle)
  }
}

/**
 * A k-NN query over `collection`: the shards of `shardsForQuery` are searched at once, a shard held
 * here locally, any other by asking `ctx.holders` in order (the next holder takes over when one
 * fails or times out), all within `deadlineMs` (default 5,000). The answers are merged by distance
 * (ties by key). A shard left without an answer makes the result incomplete, not an error.
 *
 * @throws UnknownCollectionError for a collection not created here; InvalidParametersError for
 * `k` outside 1..1,000 or a vector whose length is not the collection's dimensions.
 */
export async function federatedSearch(ctx: SearchContext, store: VectorStore, collection: string, vector: ArrayLike<number>, options: SearchOptions = {}): Promise<SearchResult> {
  const c = store.collection(collection)
  const k = options.k ?? 10
  if (!Number.isInteger(k) || k < 1 || k > 1000) throw new InvalidParametersError(`expected k in 1..1000, got ${k}`)
  if (vector.length !== c.dimensions) throw new InvalidParametersError(`expected a query of ${c.dimensions} dimensions, got ${vector.length}`)
  const deadline = ctx.clock.now() + (options.deadlineMs ?? 5000)
  const shards = shardsForQuery(c, vector, options.region === undefined ? {} : { region: options.region })
  const bytes = vectorBytes(vector)
  const answers = await Promise.all(shards.map(async (shard): Promise<{ a: ShardAnswer; hits: SearchHit[] }> => {
    const a: ShardAnswer = { shard, failures: [] }
    if (store.holds(collection, shard)) {
      const hits = await store.searchShard(collection, shard, vector, k)
      a.answeredBy = ctx.selfDid
      return { a, hits: hits.map((h) => ({ id: h.id, owner: h.owner, key: h.key, distance: h.distance, shard, ...(h.metadata === undefined ? {} : { metadata: h.metadata }) })) }
    }
    for (const h of ctx.holders(collection, shard)) {
      const left = deadline - ctx.clock.now()
      if (left <= 0) break
      try {
        const data = await withDeadline(ctx.clock, left, ask({ ...ctx, requestTimeoutMs: Math.min(ctx.requestTimeoutMs, left) }, h.authority, { op: 'search', collection, shard, vector: bytes, k } as KLPValue, options.signal))
        a.answeredBy = h.did
        return { a, hits: parseHits(data, k).map((x) => ({ ...x, shard })) }
      } catch (err) {
        a.failures.push({ did: h.did, error: (err as Error)?.name ?? 'Error' })
      }
    }
    return { a, hits: [] }
  }))
  const all = answers.flatMap((x) => x.hits)
  all.sort((x, y) => x.distance - y.distance || (x.key < y.key ? -1 : x.key > y.key ? 1 : 0))
  const seen = new Set<string>()
  const hits: SearchHit[] = []
  for (const h of all) {
    if (seen.has(h.key)) continue
    seen.add(h.key)
    hits.push(h)
    if (hits.length === k) break
  }
  const shardAnswers = answers.map((x) => x.a)
  return { hits, shards: shardAnswers, complete: shardAnswers.every((a) => a.answeredBy !== undefined) }
}
