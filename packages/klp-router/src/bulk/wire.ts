/**
 * Bulk transfer on the wire (sans-I/O): the control messages (data maps of signed KLP messages on
 * the embedder's message type at the service's path) and the data frame header. Every parser caps
 * sizes and counts and throws `InvalidBulkMessageError` ("expected X, got Y") on anything else.
 *
 * Control messages, `payload.data = { op, ... }`:
 *
 * | op | direction | how | fields | answer |
 * |---|---|---|---|---|
 * | `offer` | sender -> receiver | request | the offer (below) | `{ op: 'accept', id }` or an error response |
 * | `get` | receiver -> sender | request | `id` | the offer |
 * | `leaves` | receiver -> sender | request | `id`, `page` | `{ op: 'leaves', id, page, leaves, proof }` |
 * | `pull` | receiver -> sender | one-way | `id`, `stream`, `epoch`, `ranges` ([start, count, ...]) | data frames |
 * | `done` | receiver -> sender | request (one-way when failed) | `id`, `stream`, `ok`, `code?` | `{ op: 'ack', id }` |
 * | `cancel` | sender -> receiver | one-way | `id`, `code?` | |
 *
 * The offer: `{ op: 'offer', v: 1, id (16 bytes), size, chunkSize, chunks, pageLeaves, hash:
 * 'sha-256', root (32 bytes), contentHash (32 bytes, or 0 bytes: none offered), addrs: [transport address], expiresAt (ms),
 * meta }`. The router signs it; the receiver checks every chunk against it.
 *
 * Data frame (on the service's data channel, unsigned): `stream u32 | epoch u32 | index u32 |
 * chunk bytes`, big endian. `stream` is the receiver's number for the transfer, `epoch` the
 * receiver's current pull epoch (raised after a stall or a reconnect, so late frames of an older
 * request are ignored instead of counted twice).
 */
import { describeValue, type KLPValue } from '@kos-mesh/interface'
import { InvalidBulkMessageError } from './errors.js'
import { HASH_BYTES, isPowerOfTwo } from './tree.js'

export const PROTOCOL_VERSION = 1
export const ID_BYTES = 16
export const DATA_HEADER_BYTES = 12
/** Hash algorithm of leaves, nodes and the content hash. */
export const HASH_ALGORITHM = 'sha-256'
/** Largest leaf page the protocol allows (512 KiB of hashes). */
export const MAX_PAGE_LEAVES = 16_384
/** Most (start, count) pairs in one pull. */
export const MAX_PULL_RANGES = 64
/** Most chunks one pull may ask for. */
export const MAX_PULL_CHUNKS = 1024
const MAX_ADDRS = 16
const MAX_ADDR_LENGTH = 512
const MAX_CODE_LENGTH = 64
const U32 = 0xffffffff

/** A verified offer as the receiver sees it (and the sender describes it). */
export interface BulkOfferInfo {
  /** 32 hex characters (16 random bytes). */
  id: string
  /** Payload bytes. */
  size: number
  chunkSize: number
  /** max(1, ceil(size / chunkSize)); an empty payload is one empty chunk. */
  chunks: number
  /** Leaf hashes per page (power of two). */
  pageLeaves: number
  /** Root of the hash tree over the chunk hashes (see tree.ts). */
  root: Uint8Array
  /** SHA-256 of the whole payload, or 0 bytes when the sender offered none (the root identifies the content). */
  contentHash: Uint8Array
  /** Where the sender can be dialled for data frames (its listen addresses). */
  addrs: string[]
  /** Clock time (ms) the sender keeps the offer until, unless used (each request extends it). */
  expiresAt: number
  /** What the embedder attached (e.g. a migration id); null when nothing. */
  meta: KLPValue
}

export type ControlMessage =
  | { op: 'offer'; offer: BulkOfferInfo }
  | { op: 'get'; id: string }
  | { op: 'leaves'; id: string; page: number }
  | { op: 'pull'; id: string; stream: number; epoch: number; ranges: number[] }
  | { op: 'done'; id: string; stream: number; ok: boolean; code: string | undefined }
  | { op: 'cancel'; id: string; code: string | undefined }

type DataMap = Record<string, KLPValue>

function isMap(v: unknown): v is DataMap {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)
}

function bad(what: string, v: unknown): never {
  throw new InvalidBulkMessageError(`expected ${what}, got ${describeValue(v)}`)
}

function int(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) bad(`${what} to be an integer in ${min}..${max}`, v)
  return v
}

function bytes(v: unknown, what: string, length: number): Uint8Array {
  if (!(v instanceof Uint8Array) || v.byteLength !== length) bad(`${what} of ${length} bytes`, v)
  return v
}

export function idToHex(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex')
}

export function idFromHex(id: string): Uint8Array {
  if (typeof id !== 'string' || !/^[0-9a-f]{32}$/.test(id)) bad('an offer id of 32 lower-case hex characters', id)
  return new Uint8Array(Buffer.from(id, 'hex'))
}

function idOf(v: unknown): string {
  return idToHex(bytes(v, 'an offer id', ID_BYTES))
}

function code(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_CODE_LENGTH) bad(`a code of 1..${MAX_CODE_LENGTH} characters`, v)
  return v
}

/** Chunk count of a payload: max(1, ceil(size / chunkSize)). */
export function chunkCount(size: number, chunkSize: number): number {
  return Math.max(1, Math.ceil(size / chunkSize))
}

/** Bytes of chunk `index`. */
export function chunkLength(size: number, chunkSize: number, index: number): number {
  return Math.max(0, Math.min(chunkSize, size - index * chunkSize))
}

export interface OfferLimits {
  /** Largest chunk the receiver takes (a data frame must fit the router's frame limit). */
  maxChunkSize: number
}

/** Checks an offer map (from a signed message) and returns it; sizes are checked here, `maxBytes` by the caller. */
export function parseOffer(d: unknown, limits: OfferLimits): BulkOfferInfo {
  if (!isMap(d)) bad('an offer map', d)
  if (d.v !== PROTOCOL_VERSION) bad(`protocol version ${PROTOCOL_VERSION}`, d.v)
  if (d.hash !== HASH_ALGORITHM) bad(`hash "${HASH_ALGORITHM}"`, d.hash)
  const id = idOf(d.id)
  const size = int(d.size, 'size', 0, Number.MAX_SAFE_INTEGER)
  const chunkSize = int(d.chunkSize, 'chunkSize', 1, limits.maxChunkSize)
  const chunks = int(d.chunks, 'chunks', 1, Number.MAX_SAFE_INTEGER)
  if (chunks !== chunkCount(size, chunkSize)) bad(`chunks = max(1, ceil(size / chunkSize)) = ${chunkCount(size, chunkSize)}`, chunks)
  if (chunks > U32) bad(`at most ${U32} chunks`, chunks)
  const pageLeaves = int(d.pageLeaves, 'pageLeaves', 1, MAX_PAGE_LEAVES)
  if (!isPowerOfTwo(pageLeaves)) bad('pageLeaves to be a power of two', pageLeaves)
  const root = bytes(d.root, 'a root', HASH_BYTES)
  // the whole-payload SHA-256 is optional (empty): the tree root already commits to the content
  const contentHash = d.contentHash instanceof Uint8Array && d.contentHash.byteLength === 0 ? d.contentHash : bytes(d.contentHash, 'a content hash (or none: 0 bytes)', HASH_BYTES)
  const addrs = d.addrs
  if (!Array.isArray(addrs) || addrs.length > MAX_ADDRS) bad(`at most ${MAX_ADDRS} addresses`, addrs)
  for (const a of addrs) if (typeof a !== 'string' || a.length === 0 || a.length > MAX_ADDR_LENGTH) bad(`an address of 1..${MAX_ADDR_LENGTH} characters`, a)
  const expiresAt = int(d.expiresAt, 'expiresAt', 0, Number.MAX_SAFE_INTEGER)
  return { id, size, chunkSize, chunks, pageLeaves, root, contentHash, addrs: addrs as string[], expiresAt, meta: d.meta ?? null }
}

export function offerData(o: BulkOfferInfo): DataMap {
  return {
    op: 'offer',
    v: PROTOCOL_VERSION,
    id: idFromHex(o.id),
    size: o.size,
    chunkSize: o.chunkSize,
    chunks: o.chunks,
    pageLeaves: o.pageLeaves,
    hash: HASH_ALGORITHM,
    root: o.root,
    contentHash: o.contentHash,
    addrs: o.addrs,
    expiresAt: o.expiresAt,
    meta: o.meta,
  }
}

/** Parses a control message (any op). */
export function parseControl(d: unknown, limits: OfferLimits): ControlMessage {
  if (!isMap(d)) bad('a bulk control map { op, ... }', d)
  switch (d.op) {
    case 'offer':
      return { op: 'offer', offer: parseOffer(d, limits) }
    case 'get':
      return { op: 'get', id: idOf(d.id) }
    case 'leaves':
      return { op: 'leaves', id: idOf(d.id), page: int(d.page, 'page', 0, U32) }
    case 'pull': {
      const r = d.ranges
      if (!Array.isArray(r) || r.length === 0 || r.length % 2 !== 0 || r.length > 2 * MAX_PULL_RANGES) bad(`ranges of 1..${MAX_PULL_RANGES} (start, count) pairs`, r)
      let total = 0
      const ranges: number[] = []
      for (let i = 0; i < r.length; i += 2) {
        ranges.push(int(r[i], 'a range start', 0, U32), int(r[i + 1], 'a range count', 1, MAX_PULL_CHUNKS))
        total += ranges[i + 1]!
      }
      if (total > MAX_PULL_CHUNKS) bad(`at most ${MAX_PULL_CHUNKS} chunks in one pull`, total)
      return { op: 'pull', id: idOf(d.id), stream: int(d.stream, 'stream', 0, U32), epoch: int(d.epoch, 'epoch', 0, U32), ranges }
    }
    case 'done':
      if (typeof d.ok !== 'boolean') bad('ok to be a boolean', d.ok)
      return { op: 'done', id: idOf(d.id), stream: int(d.stream, 'stream', 0, U32), ok: d.ok, code: code(d.code) }
    case 'cancel':
      return { op: 'cancel', id: idOf(d.id), code: code(d.code) }
    default:
      return bad('op offer, get, leaves, pull, done or cancel', d.op)
  }
}

export interface LeavesPage {
  page: number
  leaves: Uint8Array
  proof: Uint8Array
}

export function parseLeaves(d: unknown, id: string, page: number): LeavesPage {
  if (!isMap(d) || d.op !== 'leaves') bad('a leaves map', d)
  if (idOf(d.id) !== id) bad(`the leaves of offer ${id}`, idOf(d.id))
  if (d.page !== page) bad(`page ${page}`, d.page)
  const leaves = d.leaves
  const proof = d.proof
  if (!(leaves instanceof Uint8Array) || leaves.byteLength === 0 || leaves.byteLength > MAX_PAGE_LEAVES * HASH_BYTES || leaves.byteLength % HASH_BYTES !== 0) bad('packed leaf hashes', leaves)
  if (!(proof instanceof Uint8Array) || proof.byteLength > 64 * HASH_BYTES || proof.byteLength % HASH_BYTES !== 0) bad('packed proof hashes', proof)
  return { page, leaves, proof }
}

/** Writes the data frame header in front of a chunk (`out` has DATA_HEADER_BYTES + chunk bytes). */
export function writeDataHeader(out: Uint8Array, stream: number, epoch: number, index: number): void {
  const v = new DataView(out.buffer, out.byteOffset, DATA_HEADER_BYTES)
  v.setUint32(0, stream)
  v.setUint32(4, epoch)
  v.setUint32(8, index)
}

export interface DataHeader {
  stream: number
  epoch: number
  index: number
}

/** Reads a data frame's header; undefined when the frame is too short. */
export function readDataHeader(frame: Uint8Array): DataHeader | undefined {
  if (frame.byteLength < DATA_HEADER_BYTES) return undefined
  const v = new DataView(frame.buffer, frame.byteOffset, DATA_HEADER_BYTES)
  return { stream: v.getUint32(0), epoch: v.getUint32(4), index: v.getUint32(8) }
}
