/**
 * VECTOR_SYNC payloads (KLP message `data`, DAG-CBOR). Requests go to `klp://<authority>/vectors`
 * with the spec's trust requirements; answers come back as VECTOR_SYNC responses.
 *
 * | op | request fields | answer |
 * |---|---|---|
 * | `recon` | collection, shard, since (ms, 0 = all), msg (bytes, a reconciliation message) | `{ op: 'recon', msg }` |
 * | `fetch` | collection, shard, ids (32-byte version hashes, <= 1,024) | `{ op: 'entries', entries: bytes[] }` (up to maxChunkBytes; ask again for the rest) |
 * | `push` | collection, shard, entries (bytes[]) | `{ op: 'ack', applied, rejected }` |
 * | `search` | collection, shard, vector (f32 bytes), k | `{ op: 'hits', hits: [{ id, owner, key, distance, metadata? }] }` |
 * | `snapshot` | collection, shard, since | `{ op: 'snapshot', offer, count, size }`: a bulk-transfer offer of the packed shard, for the requester only |
 * | `announce` (broadcast) | collection, shard, fp (16 bytes), count | none: a receiver that differs pulls from the announcer |
 * A refusal is `{ status: 'rejected', error: { code, message } }` with a `VectorRejectReason` code.
 */
import type { KLPValue } from '@kos-mesh/interface'
import { isCollectionName, MAX_ENTRY_BYTES } from './entry.js'
import { InvalidVectorMessageError } from './errors.js'
import { MAX_SHARDS } from './collection.js'

/** The KLP path of the service: VECTOR_SYNC requests (and gossip broadcasts) go to `klp://<authority>/vectors`. */
export const VECTORS_PATH = '/vectors'

/**
 * Why a node refused a VECTOR_SYNC request: the `error.code` of the refusal, and
 * `VectorSyncRejectedError.reason` on the requester's side.
 */
export const VectorRejectReason = {
  /** The payload does not parse (unknown op or field, value out of bounds, a message over `maxReconBytes`), an announce not sent as a broadcast, or a snapshot asked of a node without bulk transfer. */
  INVALID_REQUEST: 'invalid_request',
  /** The collection is not created on the receiving node. */
  UNKNOWN_COLLECTION: 'unknown_collection',
  /** The receiving node does not hold that shard. */
  NOT_HOLDER: 'not_holder',
  /** The requester's trust, as the receiver's trust engine sees it, is below the receiver's `minSyncTrust`. */
  INSUFFICIENT_TRUST: 'insufficient_trust',
  /** Reserved for a request over a size bound; this version refuses those as `invalid_request`. */
  TOO_LARGE: 'too_large',
  /** The receiver is already handling `maxConcurrentRequests` requests (default 32): try again later. */
  BUSY: 'busy',
} as const
/** One of the `VectorRejectReason` codes. */
export type VectorRejectReason = (typeof VectorRejectReason)[keyof typeof VectorRejectReason]

/** Most version hashes in one `fetch` request (1,024); `syncShard` asks for more in several. */
export const MAX_FETCH_IDS = 1024
/** Most entries in one `push` request (1,024). */
export const MAX_PUSH_ENTRIES = 1024
/** Largest `k` of a `search` request (1,000), and of `VectorMesh.search`. */
export const MAX_SEARCH_K = 1000

/**
 * A VECTOR_SYNC request payload as `parseVectorRequest` returns it, one variant per `op` (`recon`,
 * `fetch`, `push`, `search`, `announce`, `snapshot`); the module comment of src/wire.ts gives
 * each op's fields and answer. `since` is an HLC wall time in ms (0: everything), `ids` are
 * 32-byte version hashes, `vector` is f32 little-endian bytes.
 */
export type VectorRequest =
  | { op: 'recon'; collection: string; shard: number; since: number; msg: Uint8Array }
  | { op: 'fetch'; collection: string; shard: number; ids: Uint8Array[] }
  | { op: 'push'; collection: string; shard: number; entries: Uint8Array[] }
  | { op: 'search'; collection: string; shard: number; vector: Uint8Array; k: number }
  | { op: 'announce'; collection: string; shard: number; fp: Uint8Array; count: number }
  | { op: 'snapshot'; collection: string; shard: number; since: number }

/** One hit of a shard search as it travels in a `hits` answer. */
export interface WireHit {
  /** The entry's id. */
  id: string
  /** The DID that owns the entry. */
  owner: string
  /** The entry key (`entryKey(owner, id)`): unique in the collection. */
  key: string
  /** Distance to the query under the collection's metric, smaller is nearer. */
  distance: number
  /** The entry's metadata, when it has some. */
  metadata?: Record<string, string | number | boolean>
}

const bad = (msg: string): never => { throw new InvalidVectorMessageError(msg) }

function map(v: unknown, what: string): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) return bad(`expected ${what} to be a map`)
  return v as Record<string, unknown>
}

function keys(m: Record<string, unknown>, allowed: string[]): void {
  for (const k of Object.keys(m)) if (!allowed.includes(k)) bad(`expected only ${allowed.join(', ')}, got ${k.slice(0, 40)}`)
}

function bytesList(v: unknown, max: number, maxEach: number, what: string): Uint8Array[] {
  if (!Array.isArray(v) || v.length > max) return bad(`expected ${what} as a list of at most ${max}`)
  for (const b of v) if (!(b instanceof Uint8Array) || b.length > maxEach) bad(`expected ${what} items of at most ${maxEach} bytes`)
  return v as Uint8Array[]
}

/** Strictly parses a request payload. */
export function parseVectorRequest(data: unknown, maxReconBytes: number): VectorRequest {
  const m = map(data, 'the request')
  const op = m.op
  if (!isCollectionName(m.collection)) bad('expected a collection name')
  if (!Number.isInteger(m.shard) || (m.shard as number) < 0 || (m.shard as number) >= MAX_SHARDS) bad(`expected a shard in 0..${MAX_SHARDS - 1}`)
  const base = { collection: m.collection as string, shard: m.shard as number }
  switch (op) {
    case 'recon':
      keys(m, ['op', 'collection', 'shard', 'since', 'msg'])
      if (!Number.isSafeInteger(m.since) || (m.since as number) < 0) bad('expected since as ms >= 0')
      if (!(m.msg instanceof Uint8Array) || m.msg.length > maxReconBytes) bad(`expected msg of at most ${maxReconBytes} bytes`)
      return { op, ...base, since: m.since as number, msg: m.msg as Uint8Array }
    case 'fetch': {
      keys(m, ['op', 'collection', 'shard', 'ids'])
      const ids = bytesList(m.ids, MAX_FETCH_IDS, 32, 'ids')
      for (const id of ids) if (id.length !== 32) bad('expected 32-byte ids')
      return { op, ...base, ids }
    }
    case 'push':
      keys(m, ['op', 'collection', 'shard', 'entries'])
      return { op, ...base, entries: bytesList(m.entries, MAX_PUSH_ENTRIES, MAX_ENTRY_BYTES, 'entries') }
    case 'search':
      keys(m, ['op', 'collection', 'shard', 'vector', 'k'])
      if (!(m.vector instanceof Uint8Array) || m.vector.length === 0 || m.vector.length % 4 !== 0 || m.vector.length > 4 * 4096) bad('expected a vector of f32 bytes')
      if (!Number.isInteger(m.k) || (m.k as number) < 1 || (m.k as number) > MAX_SEARCH_K) bad(`expected k in 1..${MAX_SEARCH_K}`)
      return { op, ...base, vector: m.vector as Uint8Array, k: m.k as number }
    case 'snapshot':
      keys(m, ['op', 'collection', 'shard', 'since'])
      if (!Number.isSafeInteger(m.since) || (m.since as number) < 0) bad('expected since as ms >= 0')
      return { op, ...base, since: m.since as number }
    case 'announce':
      keys(m, ['op', 'collection', 'shard', 'fp', 'count'])
      if (!(m.fp instanceof Uint8Array) || m.fp.length !== 16) bad('expected a 16-byte fingerprint')
      if (!Number.isSafeInteger(m.count) || (m.count as number) < 0) bad('expected a count')
      return { op, ...base, fp: m.fp as Uint8Array, count: m.count as number }
    default:
      return bad(`expected op recon, fetch, push, search, snapshot or announce, got ${String(op).slice(0, 20)}`)
  }
}

/** The `data` of an answer: checks it is not a refusal and has the expected op. */
export function parseAnswer(data: unknown, op: string): Record<string, unknown> {
  const m = map(data, 'the answer')
  if (m.op !== op) bad(`expected an answer with op ${op}, got ${String(m.op).slice(0, 20)}`)
  return m
}

export function parseEntriesAnswer(data: unknown, maxEntries: number): Uint8Array[] {
  const m = parseAnswer(data, 'entries')
  return bytesList(m.entries, maxEntries, MAX_ENTRY_BYTES, 'entries')
}

export function parseHits(data: unknown, k: number): WireHit[] {
  const m = parseAnswer(data, 'hits')
  if (!Array.isArray(m.hits) || m.hits.length > k) return bad(`expected at most ${k} hits`)
  return m.hits.map((h) => {
    const x = map(h, 'a hit')
    if (typeof x.id !== 'string' || typeof x.owner !== 'string' || typeof x.key !== 'string' || typeof x.distance !== 'number') bad('expected a hit {id, owner, key, distance}')
    if (x.metadata !== undefined) map(x.metadata, 'metadata')
    return x as unknown as WireHit
  })
}

export function hitsToWire(hits: WireHit[]): KLPValue {
  return hits.map((h) => ({ id: h.id, owner: h.owner, key: h.key, distance: h.distance, ...(h.metadata === undefined ? {} : { metadata: h.metadata }) }))
}
