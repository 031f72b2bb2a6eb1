/**
 * An offer on the sender's side: what the caller chooses (options), what it gets back, the
 * sender's limits, the records of an offer and of one receiver's session, and hashing the source
 * once when the offer is made (leaf hashes and, optionally, the content hash; outside any
 * transfer). Internal.
 */
import { createHash } from 'node:crypto'
import { throwIfAborted, type KLPValue, type TimerHandle } from '@kos-mesh/interface'
import type { BulkProgress, Deferred } from './context.js'
import { BulkIoError } from './errors.js'
import type { BulkSource } from './source.js'
import { HASH_BYTES, leafHash, type HashTree } from './tree.js'
import { chunkCount, chunkLength, type BulkOfferInfo } from './wire.js'

/**
 * Options of one offer (`offer()` and `push()`); each size field overrides the service's default.
 * `offer()` throws `InvalidParametersError` when `chunkSize` is not an integer in 1..`maxChunkSize`,
 * `pageLeaves` is not a power of two <= 16,384, `ttlMs` is not > 0 or `to` is an authority with no
 * pinned DID, and `BulkBusyError` when `maxOffers` offers are alive.
 */
export interface OfferOptions {
  /** Only this receiver (a DID, or an authority resolved to its pinned DID) may fetch the offer. Default: anyone who knows the id. */
  to?: string
  /** Handed to the receiver with the offer (e.g. a migration id). Default null. */
  meta?: KLPValue
  /** Chunk size, bytes. Default: the service's `chunkSize`. */
  chunkSize?: number
  /** Leaf hashes per page. Default: the service's `pageLeaves`. */
  pageLeaves?: number
  /** The offer lives this long after its last use, ms. Default: the service's `offerTtlMs`. */
  ttlMs?: number
  /**
   * Also offer the SHA-256 of the whole payload (the receiver checks it before it commits: a
   * second hash pass over every byte on both sides). Default: the service's `contentHash`.
   */
  contentHash?: boolean
  /** Cancels the offer (hashing, or a transfer in progress: the receivers are told). */
  signal?: AbortSignal
  /** Bytes handed to the connection, per receiver. */
  onProgress?: (progress: BulkProgress) => void
}

/** What a sender learns when a receiver reports success (`push()`, `OutgoingOffer.done`). */
export interface BulkSendResult {
  /** The offer's transfer id. */
  id: string
  /** The receiver's DID. */
  receiver: string
  /** Chunks and bytes sent to that receiver (a chunk lost in a dropped connection counts again when re-sent). */
  chunksSent: number
  /** Payload bytes of the chunks sent to that receiver (re-sent chunks count again). */
  bytesSent: number
  /** From the offer to the receiver's report, ms of the clock. */
  durationMs: number
}

/** An offer on the sender's side. */
export interface OutgoingOffer {
  readonly id: string
  readonly info: BulkOfferInfo
  /**
   * Settles when a receiver reports: resolves on its success; rejects when the offer's receiver
   * (`to`) failed or cancelled, the offer expired (`BulkTimeoutError`) or was cancelled here.
   */
  readonly done: Promise<BulkSendResult>
  /** Withdraws the offer and tells the receivers fetching it. */
  cancel(): Promise<void>
}

export interface SenderLimits {
  chunkSize: number
  pageLeaves: number
  offerTtlMs: number
  maxOffers: number
  maxSessionsPerOffer: number
  maxChunkSize: number
  maxSendBufferBytes: number
  contentHash: boolean
}

export interface Session {
  readonly did: string
  readonly authority: string
  readonly stream: number
  epoch: number
  queue: number[]
  head: number
  pumping: boolean
  chunksSent: number
  bytesSent: number
  scratch: Uint8Array | undefined
  lastUsed: number
}

export interface Offer {
  readonly id: string
  readonly info: BulkOfferInfo
  readonly source: BulkSource
  readonly tree: HashTree
  to: string | undefined
  /** The receiver's authority when the offer was pushed to it (told on cancel even before it pulled). */
  toAuthority: string | undefined
  readonly ttlMs: number
  expiresAt: number
  timer: TimerHandle | undefined
  readonly sessions: Map<string, Session>
  readonly done: Deferred<BulkSendResult>
  readonly createdAt: number
  readonly onProgress: ((p: BulkProgress) => void) | undefined
  closed: boolean
  unlisten: (() => void) | undefined
}

/** Reads a source once: the leaf hash of every chunk and the content hash. One chunk in memory at a time. */
export async function hashSource(source: BulkSource, chunkSize: number, signal?: AbortSignal, withContent = true): Promise<{ leaves: Uint8Array; contentHash: Uint8Array }> {
  const size = source.size
  const n = chunkCount(size, chunkSize)
  const leaves = new Uint8Array(n * HASH_BYTES)
  const content = createHash('sha256')
  let buf: Uint8Array | undefined
  for (let i = 0; i < n; i++) {
    throwIfAborted(signal)
    const len = chunkLength(size, chunkSize, i)
    let bytes: Uint8Array
    if (source.readInto !== undefined) {
      // one buffer for every chunk
      buf ??= new Uint8Array(Math.min(chunkSize, size))
      bytes = buf.subarray(0, len)
      await source.readInto(i * chunkSize, bytes)
    } else {
      bytes = await source.read(i * chunkSize, len)
      if (bytes.byteLength !== len) throw new BulkIoError(`expected ${len} bytes of chunk ${i} from the source, got ${bytes.byteLength}`)
    }
    leaves.set(leafHash(bytes), i * HASH_BYTES)
    if (withContent) content.update(bytes)
  }
  return { leaves, contentHash: withContent ? content.digest() : new Uint8Array(0) }
}
