/**
 * One sync session with one peer for one shard (the client side): range-based reconciliation
 * over VECTOR_SYNC `recon` requests, then the entries this node lacks fetched in chunks (each
 * entry verified and applied on arrival), and the entries the peer lacks pushed to it in chunks.
 * A session that fails part-way keeps what it applied (every entry stands alone); the next one
 * finishes the job.
 */
import { KLPMessageType, MessagePriority, VerificationLevel, throwIfAborted, type KLPMessage, type KLPValue, type MessageRouter, type TrustRequirements } from '@kos-mesh/interface'
import { KosMeshError } from '@kos-mesh/interface'
import type { BulkTransfer } from '@kos-mesh/klp-router'
import { VectorSyncRejectedError } from './errors.js'
import { Reconciler } from './recon.js'
import { fetchSnapshot } from './snapshot.js'
import type { VectorStore } from './vector-store.js'
import { MAX_FETCH_IDS, MAX_PUSH_ENTRIES, VECTORS_PATH, parseAnswer, parseEntriesAnswer } from './wire.js'

/**
 * What a sync or search session needs (`syncShard`, `federatedSearch`): the router to send
 * VECTOR_SYNC requests through, the local store, and the limits. `vectorMesh` builds it from its
 * init options; build one only to drive `syncShard` yourself.
 */
export interface SyncContext {
  /** Sends the VECTOR_SYNC requests. */
  router: MessageRouter
  /** The local store the received entries are verified into. */
  store: VectorStore
  /** Timeout of each request, ms (the service's default: 10,000). */
  requestTimeoutMs: number
  /** The spec's trust requirements carried by VECTOR_SYNC messages. */
  trustRequirements: TrustRequirements
  /** Largest payload of entries in one message, bytes. */
  maxChunkBytes: number
  /** The initiator's reconciliation frame limit, bytes. */
  frameSizeLimit: number
  /** Largest reconciliation message accepted from the peer, bytes. */
  maxReconBytes: number
  /** Priority of the requests (a `MessagePriority` value; the service uses 5). */
  priority: number
  /** Bulk transfer for large deltas (optional). */
  bulk?: BulkTransfer
  /** More missing entries than this go by a bulk snapshot when `bulk` is set. */
  bulkThreshold: number
}

/** What one shard's sync with one peer moved (`syncShard`, `VectorMesh.syncShardWith`). */
export interface ShardSyncResult {
  /** Entries received and applied (new versions). */
  fetched: number
  /** Entries received and refused (forged, foreign owner, too old...), by error name. */
  refused: Record<string, number>
  /** Entries pushed to the peer. */
  pushed: number
  /** Reconciliation round trips (0 when the shard came by snapshot only). */
  rounds: number
  /** Bytes of reconciliation messages both ways, plus snapshot bytes received (entries fetched and pushed are not counted). */
  bytes: number
}

/**
 * The spec's trust requirements carried by every VECTOR_SYNC request: `minimum` as the minimum
 * trust score (0..10; the service passes its `minSyncTrust`, default 6.0), no endorsements,
 * verification level `basic`.
 */
export const defaultTrustRequirements = (minimum: number): TrustRequirements => ({ minimum_trust_score: minimum, required_endorsements: 0, verification_level: VerificationLevel.BASIC })

export async function ask(ctx: SyncContext, authority: string, data: KLPValue, signal?: AbortSignal): Promise<KLPMessage['payload']['data']> {
  try {
    const res = await ctx.router.request(
      { type: KLPMessageType.VECTOR_SYNC, target: `klp://${authority}${VECTORS_PATH}`, data, trustRequirements: ctx.trustRequirements, priority: ctx.priority as MessagePriority },
      { timeoutMs: ctx.requestTimeoutMs, ...(signal === undefined ? {} : { signal }) },
    )
    return res.payload.data
  } catch (err) {
    const e = err as { name?: unknown; reason?: unknown }
    if (e?.name === 'RemoteRejectedError' && typeof e.reason === 'string') throw new VectorSyncRejectedError(`${authority} refused: ${e.reason}`, e.reason, { cause: err })
    throw err
  }
}

/** Reconciles one shard with one peer and exchanges the difference. */
export async function syncShard(ctx: SyncContext, authority: string, collection: string, shard: number, options: { since?: number; maxVectors?: number; signal?: AbortSignal } = {}): Promise<ShardSyncResult> {
  const st = await ctx.store.shard(collection, shard)
  const since = options.since ?? 0
  // "unlimited": no cap, or one no shard can reach
  const maxVectors = options.maxVectors === undefined || options.maxVectors >= 2 ** 32 ? Infinity : options.maxVectors
  if (ctx.bulk !== undefined && st.size === 0 && maxVectors === Infinity) {
    // a new replica: everything is missing, so take a snapshot straight away
    const result: ShardSyncResult = { fetched: 0, refused: {}, pushed: 0, rounds: 0, bytes: 0 }
    try {
      await fetchSnapshot({ ...ctx, bulk: ctx.bulk }, authority, collection, shard, since, result, options.signal)
      return result
    } catch (err) {
      if (!(err instanceof VectorSyncRejectedError) || err.reason !== 'invalid_request') throw err
    }
  }
  const rec = new Reconciler(st.reconSet(since), { frameSizeLimit: ctx.frameSizeLimit, maxMessageBytes: ctx.maxReconBytes })
  const result: ShardSyncResult = { fetched: 0, refused: {}, pushed: 0, rounds: 0, bytes: 0 }
  let msg: Uint8Array | undefined = rec.initiate()
  while (msg !== undefined) {
    throwIfAborted(options.signal)
    result.bytes += msg.length
    const answer = parseAnswer(await ask(ctx, authority, { op: 'recon', collection, shard, since, msg }, options.signal), 'recon')
    if (!(answer.msg instanceof Uint8Array)) throw new VectorSyncRejectedError('expected a reconciliation message in the answer', 'invalid_request')
    result.bytes += answer.msg.length
    result.rounds++
    msg = rec.reconcile(answer.msg).message
  }
  // what we lack: a bulk snapshot for a large delta, else fetch in chunks; verify and apply each entry
  const need = rec.need.slice(0, Number.isFinite(maxVectors) ? maxVectors : undefined)
  let pending = need
  if (ctx.bulk !== undefined && need.length > ctx.bulkThreshold && rec.need.length <= maxVectors) {
    try {
      await fetchSnapshot({ ...ctx, bulk: ctx.bulk }, authority, collection, shard, since, result, options.signal)
      pending = []
    } catch (err) {
      // a peer without bulk transfer refuses the snapshot: fall back to chunked fetches
      if (!(err instanceof VectorSyncRejectedError) || err.reason !== 'invalid_request') throw err
    }
  }
  while (pending.length > 0) {
    throwIfAborted(options.signal)
    const ask1 = pending.slice(0, MAX_FETCH_IDS)
    const entries = parseEntriesAnswer(await ask(ctx, authority, { op: 'fetch', collection, shard, ids: ask1 }, options.signal), ask1.length)
    if (entries.length === 0) break // the peer no longer has them (newer versions replaced them)
    const got = new Set<string>()
    for (const bytes of entries) {
      try {
        const r = await ctx.store.applyBytes(bytes, { collection, shard })
        got.add(Buffer.from(r.entry.hash).toString('hex'))
        if (r.outcome === 'applied') result.fetched++
      } catch (err) {
        if (!(err instanceof KosMeshError)) throw err
        result.refused[err.name] = (result.refused[err.name] ?? 0) + 1
      }
    }
    // ids answered are done; ids the peer skipped for size come again, ones it no longer has are dropped
    const rest = pending.slice(ask1.length)
    const skipped = ask1.filter((id) => !got.has(Buffer.from(id).toString('hex')))
    pending = entries.length < ask1.length && skipped.length < ask1.length ? [...skipped, ...rest] : rest
  }
  // what the peer lacks: push in chunks
  let batch: Uint8Array[] = []
  let size = 0
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return
    parseAnswer(await ask(ctx, authority, { op: 'push', collection, shard, entries: batch }, options.signal), 'ack')
    result.pushed += batch.length
    batch = []
    size = 0
  }
  for (const id of rec.have) {
    const bytes = await st.getByHash(id)
    if (bytes === undefined) continue
    if (batch.length >= MAX_PUSH_ENTRIES || size + bytes.length > ctx.maxChunkBytes) await flush()
    batch.push(bytes)
    size += bytes.length
  }
  await flush()
  return result
}
