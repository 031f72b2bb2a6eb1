/**
 * The sending half: offers (a source, its hash tree and content hash, kept alive for a TTL that
 * every request extends) and per-receiver sessions that answer pulls with data frames. Memory per
 * offer: 32 bytes of leaf hash per chunk; per session: at most two chunks read ahead; over all
 * sessions: `maxSendBufferBytes` of chunks read and not yet handed to the router. Internal.
 */
import { createHash, randomBytes } from 'node:crypto'
import { InvalidParametersError, throwIfAborted, type KLPValue, type TimerHandle } from '@kos-mesh/interface'
import { ByteGate, controlSend, deferred, type BulkContext, type BulkProgress, type Deferred } from './context.js'
import { BulkBusyError, BulkCancelledError, BulkIoError, BulkReason, BulkTimeoutError, BulkUnknownOfferError, errorForReason } from './errors.js'
import type { BulkSource } from './source.js'
import { HASH_BYTES, HashTree, isPowerOfTwo, leafHash } from './tree.js'
import { DATA_HEADER_BYTES, MAX_PAGE_LEAVES, chunkCount, chunkLength, idFromHex, idToHex, offerData, writeDataHeader, type BulkOfferInfo } from './wire.js'

/** Chunks a session reads ahead of the one being handed to the router. */
const SEND_AHEAD = 2

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

export interface BulkSendResult {
  id: string
  /** The receiver's DID. */
  receiver: string
  /** Chunks and bytes sent to that receiver (a chunk lost in a dropped connection counts again when re-sent). */
  chunksSent: number
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

interface Session {
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

interface Offer {
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
  for (let i = 0; i < n; i++) {
    throwIfAborted(signal)
    const len = chunkLength(size, chunkSize, i)
    const bytes = await source.read(i * chunkSize, len)
    if (bytes.byteLength !== len) throw new BulkIoError(`expected ${len} bytes of chunk ${i} from the source, got ${bytes.byteLength}`)
    leaves.set(leafHash(bytes), i * HASH_BYTES)
    if (withContent) content.update(bytes)
  }
  return { leaves, contentHash: withContent ? content.digest() : new Uint8Array(0) }
}

export class BulkSender {
  private readonly offers = new Map<string, Offer>()
  private readonly gate: ByteGate

  constructor(
    private readonly ctx: BulkContext,
    private readonly limits: SenderLimits,
  ) {
    this.gate = new ByteGate(limits.maxSendBufferBytes)
  }

  get size(): number {
    return this.offers.size
  }

  async createOffer(source: BulkSource, options: OfferOptions = {}): Promise<OutgoingOffer> {
    const ctx = this.ctx
    const chunkSize = options.chunkSize ?? this.limits.chunkSize
    const pageLeaves = options.pageLeaves ?? this.limits.pageLeaves
    const ttlMs = options.ttlMs ?? this.limits.offerTtlMs
    if (!Number.isSafeInteger(chunkSize) || chunkSize < 1 || chunkSize > this.limits.maxChunkSize) throw new InvalidParametersError(`expected chunkSize in 1..${this.limits.maxChunkSize}, got ${String(chunkSize)}`)
    if (!isPowerOfTwo(pageLeaves) || pageLeaves > MAX_PAGE_LEAVES) throw new InvalidParametersError(`expected pageLeaves to be a power of two <= ${MAX_PAGE_LEAVES}, got ${String(pageLeaves)}`)
    if (!(ttlMs > 0)) throw new InvalidParametersError(`expected ttlMs > 0, got ${String(ttlMs)}`)
    if (source === null || typeof source !== 'object' || typeof source.read !== 'function' || !Number.isSafeInteger(source.size) || source.size < 0) {
      throw new InvalidParametersError('expected a BulkSource { size, read(offset, length) }')
    }
    if (chunkCount(source.size, chunkSize) > 0xffffffff) throw new InvalidParametersError(`expected at most 2^32 - 1 chunks, got ${chunkCount(source.size, chunkSize)}`)
    if (this.offers.size >= this.limits.maxOffers) throw new BulkBusyError(`expected fewer than ${this.limits.maxOffers} offers alive, got ${this.offers.size}`)
    const to = options.to === undefined ? undefined : this.resolveDid(options.to)
    const { leaves, contentHash } = await hashSource(source, chunkSize, options.signal, options.contentHash ?? this.limits.contentHash)
    throwIfAborted(options.signal)
    if (this.offers.size >= this.limits.maxOffers) throw new BulkBusyError(`expected fewer than ${this.limits.maxOffers} offers alive, got ${this.offers.size}`)
    const tree = new HashTree(leaves, pageLeaves)
    const id = idToHex(randomBytes(16))
    const now = ctx.clock.now()
    const info: BulkOfferInfo = {
      id,
      size: source.size,
      chunkSize,
      chunks: tree.count,
      pageLeaves,
      root: tree.root,
      contentHash,
      addrs: ctx.router.addrs().slice(0, 16),
      expiresAt: Math.ceil(now + ttlMs),
      meta: options.meta ?? null,
    }
    const offer: Offer = {
      id,
      info,
      source,
      tree,
      to,
      toAuthority: undefined,
      ttlMs,
      expiresAt: now + ttlMs,
      timer: undefined,
      sessions: new Map(),
      done: deferred<BulkSendResult>(),
      createdAt: now,
      onProgress: options.onProgress,
      closed: false,
      unlisten: undefined,
    }
    this.offers.set(id, offer)
    ctx.stats.offers = this.offers.size
    offer.timer = ctx.clock.setTimeout(() => this.checkExpiry(offer), ttlMs, { unref: true })
    const signal = options.signal
    if (signal !== undefined) {
      const onAbort = (): void => void this.cancel(offer, new BulkCancelledError('offer cancelled by its signal'))
      signal.addEventListener('abort', onAbort, { once: true })
      offer.unlisten = () => signal.removeEventListener('abort', onAbort)
    }
    return {
      id,
      info,
      done: offer.done.promise,
      cancel: () => this.cancel(offer, new BulkCancelledError('offer cancelled')),
    }
  }

  /** `to` as a DID: a DID as is, an authority through its pin. */
  resolveDid(to: string): string {
    if (typeof to !== 'string' || to.length === 0) throw new InvalidParametersError(`expected a DID or an authority, got ${String(to)}`)
    if (to.startsWith('did:')) return to
    const did = this.ctx.router.didOf(to)
    if (did === undefined) throw new InvalidParametersError(`expected a known authority (pinned to a DID), got ${to}`)
    return did
  }

  /** The offer is pushed to `authority`; sets its receiver's DID if it was not known (an unpinned authority). */
  bindReceiver(id: string, did: string | undefined, authority: string): void {
    const o = this.offers.get(id)
    if (o === undefined) return
    o.toAuthority = authority
    if (o.to === undefined && did !== undefined) o.to = did
  }

  offerData(id: string): Record<string, KLPValue> {
    const o = this.offers.get(id)
    if (o === undefined) throw new BulkUnknownOfferError(`expected a live offer ${id}`, BulkReason.UNKNOWN_OFFER)
    return offerData({ ...o.info, expiresAt: Math.ceil(o.expiresAt) })
  }

  private checkExpiry(o: Offer): void {
    if (o.closed) return
    const now = this.ctx.clock.now()
    if (now >= o.expiresAt) {
      this.close(o, new BulkTimeoutError(`offer ${o.id} expired (no use for ${o.ttlMs} ms)`))
      return
    }
    o.timer = this.ctx.clock.setTimeout(() => this.checkExpiry(o), o.expiresAt - now, { unref: true })
  }

  /** The offer for a request by `did`; extends its life. */
  private use(id: string, did: string): Offer {
    const o = this.offers.get(id)
    if (o === undefined || o.closed || (o.to !== undefined && o.to !== did)) throw new BulkUnknownOfferError(`expected a live offer ${id} for ${did}`, BulkReason.UNKNOWN_OFFER)
    o.expiresAt = this.ctx.clock.now() + o.ttlMs
    return o
  }

  // -------------------------------------------------------------- control messages (from receivers)

  onGet(did: string, id: string): Record<string, KLPValue> {
    const o = this.use(id, did)
    return offerData({ ...o.info, expiresAt: Math.ceil(o.expiresAt) })
  }

  onLeaves(did: string, id: string, page: number): Record<string, KLPValue> {
    const o = this.use(id, did)
    if (page >= o.tree.pages) throw new InvalidParametersError(`expected a page in 0..${o.tree.pages - 1}, got ${page}`)
    return { op: 'leaves', id: idFromHex(o.info.id), page, leaves: o.tree.pageLeavesOf(page), proof: o.tree.proof(page) }
  }

  onPull(did: string, authority: string, id: string, stream: number, epoch: number, ranges: readonly number[]): void {
    const o = this.use(id, did)
    this.ctx.stats.pullsReceived++
    const key = `${did} ${stream}`
    let s = o.sessions.get(key)
    const now = this.ctx.clock.now()
    if (s === undefined) {
      if (o.sessions.size >= this.limits.maxSessionsPerOffer && !this.evictIdleSession(o)) throw new BulkBusyError(`expected fewer than ${this.limits.maxSessionsPerOffer} receivers of offer ${id}`)
      s = { did, authority, stream, epoch, queue: [], head: 0, pumping: false, chunksSent: 0, bytesSent: 0, scratch: undefined, lastUsed: now }
      o.sessions.set(key, s)
    }
    s.lastUsed = now
    if (epoch < s.epoch) return // a pull of an older epoch, overtaken
    if (epoch > s.epoch) {
      // the receiver starts over (stall or reconnect): what was queued is asked again if still wanted
      s.epoch = epoch
      s.queue = []
      s.head = 0
    }
    const n = o.tree.count
    const pending = s.queue.length - s.head
    let add = 0
    for (let i = 1; i < ranges.length; i += 2) add += ranges[i]!
    // at most one maximal pull queued per session: a receiver cannot queue unbounded work
    if (pending + add > 2 * 1024) throw new BulkBusyError(`expected at most ${2 * 1024} chunks queued for one receiver, got ${pending + add}`)
    for (let i = 0; i < ranges.length; i += 2) {
      if (ranges[i]! + ranges[i + 1]! > n) throw new InvalidParametersError(`expected chunks below ${n}, got ${ranges[i]!}..${ranges[i]! + ranges[i + 1]! - 1}`)
    }
    for (let i = 0; i < ranges.length; i += 2) {
      for (let k = ranges[i]!, end = k + ranges[i + 1]!; k < end; k++) s.queue.push(k)
    }
    if (!s.pumping) void this.pump(o, s)
  }

  /** Drops the least recently used session with nothing queued (a receiver that went away without a report). */
  private evictIdleSession(o: Offer): boolean {
    let oldest: [string, Session] | undefined
    for (const e of o.sessions) {
      const s = e[1]
      if (s.pumping || s.head < s.queue.length) continue
      if (oldest === undefined || s.lastUsed < oldest[1].lastUsed) oldest = e
    }
    if (oldest === undefined) return false
    o.sessions.delete(oldest[0])
    return true
  }

  onDone(did: string, id: string, stream: number, ok: boolean, code: string | undefined): void {
    const o = this.offers.get(id)
    if (o === undefined || (o.to !== undefined && o.to !== did)) throw new BulkUnknownOfferError(`expected a live offer ${id} for ${did}`, BulkReason.UNKNOWN_OFFER)
    const key = `${did} ${stream}`
    const s = o.sessions.get(key)
    o.sessions.delete(key)
    if (ok) {
      o.done.resolve({ id, receiver: did, chunksSent: s?.chunksSent ?? 0, bytesSent: s?.bytesSent ?? 0, durationMs: this.ctx.clock.now() - o.createdAt })
      // an offer for one receiver ends with its report; an open one stays for others until its TTL
      if (o.to !== undefined) this.close(o)
      return
    }
    if (o.to !== undefined) this.close(o, errorForReason(code ?? BulkReason.REFUSED, `the receiver reported a failure (${code ?? 'no code'})`))
  }

  /** A connection to `did` closed: drop what was queued for it (it asks again with a new epoch). */
  onDisconnect(did: string): void {
    for (const o of this.offers.values()) {
      for (const s of o.sessions.values()) {
        if (s.did !== did) continue
        s.queue = []
        s.head = 0
      }
    }
  }

  // -------------------------------------------------------------- data

  private async pump(o: Offer, s: Session): Promise<void> {
    s.pumping = true
    const ctx = this.ctx
    const { size, chunkSize, chunks } = o.info
    const inflight: Array<Promise<void>> = []
    let failed: unknown
    let failedEpoch = -1
    try {
      while (s.head < s.queue.length && !o.closed && failed === undefined) {
        const index = s.queue[s.head++]!
        if (s.head >= 1024 && s.head * 2 >= s.queue.length) {
          s.queue = s.queue.slice(s.head)
          s.head = 0
        }
        const epoch = s.epoch
        const len = chunkLength(size, chunkSize, index)
        const need = len + DATA_HEADER_BYTES
        const wait = this.gate.acquire(need)
        if (wait !== undefined) await wait
        let frame: Uint8Array
        try {
          const bytes = await o.source.read(index * chunkSize, len)
          if (bytes.byteLength !== len) throw new BulkIoError(`expected ${len} bytes of chunk ${index} from the source, got ${bytes.byteLength}`)
          // one scratch frame per session: router.sendData copies the bytes into its own frame
          // before it returns (encodeDataFrame), so the scratch is free again at once
          s.scratch ??= new Uint8Array(DATA_HEADER_BYTES + chunkSize)
          frame = s.scratch.subarray(0, need)
          writeDataHeader(frame, s.stream, epoch, index)
          frame.set(bytes, DATA_HEADER_BYTES)
        } catch (err) {
          this.gate.release(need)
          throw err
        }
        if (epoch !== s.epoch || o.closed) {
          this.gate.release(need) // the receiver started over while this chunk was read
          continue
        }
        const p = ctx.router.sendData(s.did, ctx.channel, frame).then(
          () => {
            this.gate.release(need)
            s.chunksSent++
            s.bytesSent += len
            ctx.stats.chunksSent++
            ctx.stats.bytesSent += len
            const progress: BulkProgress = { id: o.id, direction: 'out', peer: s.did, bytes: s.bytesSent, total: size, chunks: s.chunksSent, totalChunks: chunks }
            o.onProgress?.(progress)
            ctx.emit(progress)
          },
          (err: unknown) => {
            this.gate.release(need)
            if (failed === undefined) {
              failed = err
              failedEpoch = epoch
            }
          },
        )
        inflight.push(p)
        if (inflight.length >= SEND_AHEAD) await inflight.shift()
      }
      await Promise.all(inflight)
    } catch (err) {
      await Promise.all(inflight)
      // the source failed: nobody can get this payload any more
      ctx.log.warn('bulk source failed', { id: o.id, err: err instanceof Error ? err.name : '' })
      this.close(o, err instanceof Error ? err : new BulkIoError(String(err)), BulkReason.SOURCE)
      return
    } finally {
      s.pumping = false
    }
    if (failed !== undefined && s.epoch === failedEpoch) {
      // not connected (any more): drop the queue; the receiver re-dials and asks again with a new epoch
      ctx.log.debug('bulk data frame not sent', { id: o.id, err: failed instanceof Error ? failed.name : '' })
      s.queue = []
      s.head = 0
      return
    }
    // more was asked meanwhile (possibly under a new epoch, after a reconnect)
    if (s.head < s.queue.length && !o.closed) void this.pump(o, s)
  }

  // -------------------------------------------------------------- ending

  private async cancel(o: Offer, err: Error): Promise<void> {
    if (o.closed) return
    const receivers = new Set<string>()
    for (const s of o.sessions.values()) receivers.add(s.authority)
    if (o.toAuthority !== undefined) receivers.add(o.toAuthority)
    this.close(o, err)
    const data = { op: 'cancel', id: idFromHex(o.id), code: BulkReason.CANCELLED }
    await Promise.all([...receivers].map((a) => controlSend(this.ctx, a, data)))
  }

  /** Ends an offer (with `err`: `done` rejects unless a receiver already succeeded). */
  private close(o: Offer, err?: Error, tellReceivers?: string): void {
    if (o.closed) return
    o.closed = true
    this.ctx.clock.clearTimeout(o.timer)
    o.unlisten?.()
    this.offers.delete(o.id)
    this.ctx.stats.offers = this.offers.size
    if (err !== undefined) o.done.reject(err)
    if (tellReceivers !== undefined) {
      const data = { op: 'cancel', id: idFromHex(o.id), code: tellReceivers }
      for (const s of o.sessions.values()) void controlSend(this.ctx, s.authority, data)
    }
    o.sessions.clear()
    void Promise.resolve()
      .then(() => o.source.close?.())
      .catch(() => {})
  }

  /** Withdraws an offer without telling anyone (its receiver refused it). */
  discard(id: string, err: Error): void {
    const o = this.offers.get(id)
    if (o !== undefined) this.close(o, err)
  }

  /** Ends every offer (service stop). */
  stop(err: Error): void {
    for (const o of [...this.offers.values()]) this.close(o, err)
  }
}
