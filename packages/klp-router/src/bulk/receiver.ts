/**
 * The receiving half: one `Download` per transfer. It pulls chunks through a sliding window over
 * the chunk indices and, in index order as they arrive, checks each against its leaf (from a leaf
 * page verified against the signed root), feeds it to the content hash and writes it to the sink.
 *
 * The window spans indices [base, base + window): a chunk holds its slot from the moment it is
 * asked for until it was hashed (in index order: its leaf checked, the content hash fed), written
 * and released, so at most `window` chunks are requested, arriving, hashing or being written at
 * any time: the receiver's memory for chunks is bounded by window x chunkSize whatever the sender
 * does (a frame nobody asked for is dropped unread). A chunk reaches the sink only after it
 * matched its leaf. Pulls are batched (half a window each) to keep signed control messages rare.
 *
 * Resume: chunks written stay written. After a dropped connection (or a stall) the receiver raises
 * its epoch, re-dials the sender, and asks again only for the chunks it had asked for and not
 * received; frames of the older epoch are ignored. A sink that reports chunks from an earlier
 * attempt (`open()`, e.g. a resumable file sink after a restart) has them read back and re-checked
 * instead of fetched. Internal.
 */
import type { KLPValue, TimerHandle } from '@kos-mesh/interface'
import { controlRequest, controlSend, type BulkContext, type BulkProgress } from './context.js'
import {
  BulkCancelledError,
  BulkChunkHashError,
  BulkContentHashError,
  BulkIoError,
  BulkProofError,
  BulkReason,
  BulkTimeoutError,
  BulkUnreachableError,
  errorForReason,
  reasonOf,
} from './errors.js'
import { inlineHasher, leafHasher, type ChunkHasher } from './hasher.js'
import type { BulkSink } from './sink.js'
import { HASH_BYTES, bytesEqual, pageCount, verifyPage } from './tree.js'
import { MAX_PULL_RANGES, chunkLength, idFromHex, parseLeaves, type BulkOfferInfo } from './wire.js'

export interface ReceiveOptions {
  /** Where verified chunks go. */
  sink: BulkSink
  /** Refuse offers larger than this, before anything is transferred. Default: the service's `maxBytes`. */
  maxBytes?: number
  /** Chunks outstanding at once (1..1024). Default: the service's `window`. */
  window?: number
  /** Cancels the transfer: the sender is told and the sink aborted. */
  signal?: AbortSignal
  /** Bytes verified so far (in index order), after each chunk. */
  onProgress?: (progress: BulkProgress) => void
}

export interface BulkReceiveResult {
  id: string
  /** The sender's DID. */
  from: string
  size: number
  chunks: number
  contentHash: Uint8Array
  meta: KLPValue
  /** Chunks and bytes received over the network (each once). */
  chunksFetched: number
  bytesFetched: number
  /** Chunks taken from the sink's earlier attempt. */
  chunksResumed: number
  /** Connections re-established after a drop. */
  reconnects: number
  /** Times no chunk arrived for `stallTimeoutMs` and the outstanding ones were asked again. */
  stalls: number
  /** Clock ms from the start of the pull to the commit. */
  durationMs: number
}

export interface ReceiverLimits {
  window: number
  stallTimeoutMs: number
  maxStalls: number
  reconnectTimeoutMs: number
}

/**
 * want -> requested -> arrived -> hashing -> writing -> ready (network), or
 * reading -> checked -> hashing -> ready (read back from the sink, already written).
 */
type SlotState = 'want' | 'requested' | 'arrived' | 'hashing' | 'writing' | 'ready' | 'reading' | 'checked'

interface Slot {
  state: SlotState
  bytes: Uint8Array | undefined
  readonly length: number
}

const isTransient = (err: unknown): boolean => {
  const n = err instanceof Error ? err.name : ''
  return n === 'BulkTimeoutError' || n === 'BulkUnreachableError'
}

export class Download {
  readonly stream: number
  private epoch = 1
  private state: 'running' | 'done' | 'failed' = 'running'
  private error: Error | undefined
  private readonly n: number
  private readonly P: number
  private readonly W: number
  private readonly batch: number
  private readonly idBytes: Uint8Array
  private base = 0
  /** Next index to hand to the content hash (base <= hashNext <= next). */
  private hashNext = 0
  private next = 0
  private readonly slots = new Map<number, Slot>()
  /** Indices reserved and not yet asked for (in this epoch). */
  private wanted: number[] = []
  private requested = 0
  private reserved = 0
  private readonly pages = new Map<number, Uint8Array>()
  private readonly pageLoads = new Set<number>()
  private fillBlocked = false
  private resume: Set<number> | undefined
  private readonly writes = new Set<Promise<void>>()
  private hasher: ChunkHasher = inlineHasher()
  private connected = false
  private everConnected = false
  /** Keep the sink's partial data (suspend) whatever the error: the service is stopping. */
  private keepPartial = false
  private wake: (() => void) | undefined
  private woken = false
  private stallTimer: TimerHandle | undefined
  private lastProgress = 0
  private stalls = 0
  private stallsTotal = 0
  private reconnects = 0
  private chunksFetched = 0
  private bytesFetched = 0
  private chunksResumed = 0
  private verifiedBytes = 0
  /** Set when the sender ended the transfer (cancel): no failure report back. */
  private remoteEnded = false
  /** Aborts this transfer's control requests and dials. */
  private readonly controller = new AbortController()

  constructor(
    private readonly ctx: BulkContext,
    private readonly limits: ReceiverLimits,
    readonly offer: BulkOfferInfo,
    readonly senderDid: string,
    readonly senderAuthority: string,
    stream: number,
    private readonly options: ReceiveOptions,
  ) {
    this.stream = stream
    if (offer.contentHash.byteLength === 0) this.hasher = leafHasher()
    this.n = offer.chunks
    this.P = offer.pageLeaves
    this.W = options.window ?? limits.window
    this.batch = Math.max(1, Math.floor(this.W / 2))
    this.idBytes = idFromHex(offer.id)
  }

  /** Runs the transfer to the end: resolves after the commit, rejects (sink aborted) on failure. */
  async run(): Promise<BulkReceiveResult> {
    const ctx = this.ctx
    const started = ctx.clock.now()
    const signal = this.options.signal
    const onAbort = (): void => this.fail(new BulkCancelledError('transfer cancelled by its signal'))
    signal?.addEventListener('abort', onAbort, { once: true })
    let opened = false
    try {
      if (signal?.aborted === true) throw new BulkCancelledError('transfer cancelled by its signal')
      await this.openSink()
      opened = true
      this.connected = this.isConnected()
      this.everConnected = this.connected
      for (;;) {
        this.check()
        if (!this.connected) {
          await this.reconnect()
          continue
        }
        // release what is done first: it frees slots that fill() then reserves (nothing else wakes us for that)
        this.advance()
        if (this.base >= this.n) break
        this.fill()
        this.dispatch()
        this.flush()
        await this.waitEvent()
      }
      this.check()
      const digest = this.hasher.digest()
      if (this.offer.contentHash.byteLength > 0 && !bytesEqual(this.offer.contentHash, digest)) {
        throw new BulkContentHashError(`expected the payload to hash to ${Buffer.from(this.offer.contentHash).toString('hex')}, got ${Buffer.from(digest).toString('hex')}`)
      }
      try {
        await this.sink.commit()
      } catch (err) {
        throw new BulkIoError('expected the sink to commit', { cause: err })
      }
      this.state = 'done'
      this.cleanup()
      // the sender's `done` settles on this report (the router retries it); not awaited: the
      // payload is committed whatever happens to the report, and a lost one only delays the TTL
      void controlRequest(ctx, this.senderAuthority, { op: 'done', id: this.idBytes, stream: this.stream, ok: true }, 'done report').catch((err: unknown) => {
        ctx.log.debug('bulk done report not acknowledged', { id: this.offer.id, err: err instanceof Error ? err.name : '' })
      })
      return {
        id: this.offer.id,
        from: this.senderDid,
        size: this.offer.size,
        chunks: this.n,
        contentHash: this.offer.contentHash,
        meta: this.offer.meta,
        chunksFetched: this.chunksFetched,
        bytesFetched: this.bytesFetched,
        chunksResumed: this.chunksResumed,
        reconnects: this.reconnects,
        stalls: this.stallsTotal,
        durationMs: ctx.clock.now() - started,
      }
    } catch (e) {
      const err = this.error ?? (e instanceof Error ? e : new Error(String(e)))
      this.error ??= err
      this.state = 'failed'
      this.cleanup()
      await Promise.allSettled([...this.writes])
      // a sink that can keep its data (and a failure that is not the data's fault) is suspended for a
      // later resume: the sender is not told, so its offer lives on for its TTL; otherwise the data
      // is discarded and the sender learns why
      const suspend = opened && (isTransient(err) || this.keepPartial) && this.sink.suspend !== undefined
      try {
        if (suspend) await this.sink.suspend!()
        else await this.sink.abort()
      } catch (abortErr) {
        ctx.log.warn('bulk sink abort failed', { id: this.offer.id, err: abortErr instanceof Error ? abortErr.name : '' })
      }
      if (!suspend && !this.remoteEnded) void controlSend(ctx, this.senderAuthority, { op: 'done', id: this.idBytes, stream: this.stream, ok: false, code: reasonOf(err) })
      throw err
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  private get sink(): BulkSink {
    return this.options.sink
  }

  private check(): void {
    if (this.error !== undefined) throw this.error
  }

  /** Ends the transfer with `err` (the first error wins). */
  fail(err: Error): void {
    if (this.state !== 'running' || this.error !== undefined) return
    this.error = err
    this.controller.abort() // interrupts a dial, a back-off sleep, control requests
    this.wakeUp()
  }

  /** The service stops: the transfer ends with `BulkCancelledError`, a resumable sink keeps its data. */
  stop(): void {
    this.keepPartial = true
    this.fail(new BulkCancelledError('the bulk service stopped'))
  }

  /** The sender withdrew the offer. */
  onRemoteCancel(code: string | undefined): void {
    if (this.state !== 'running') return
    this.remoteEnded = true
    this.fail(code === undefined || code === BulkReason.CANCELLED ? new BulkCancelledError('the sender cancelled the offer', true) : errorForReason(code, `the sender ended the transfer (${code})`))
  }

  private cleanup(): void {
    if (this.stallTimer !== undefined) this.ctx.clock.clearTimeout(this.stallTimer)
    this.stallTimer = undefined
    this.controller.abort()
    this.pages.clear()
    this.slots.clear()
    this.wanted = []
    this.reserved = 0
  }

  private waitEvent(): Promise<void> {
    if (this.woken) {
      this.woken = false
      return Promise.resolve()
    }
    return new Promise<void>((resolve) => {
      this.wake = resolve
    })
  }

  private wakeUp(): void {
    const w = this.wake
    if (w !== undefined) {
      this.wake = undefined
      this.woken = false
      w()
    } else {
      this.woken = true
    }
  }

  // -------------------------------------------------------------- sink and resume

  private async openSink(): Promise<void> {
    const o = this.offer
    let held: Iterable<number> | undefined
    try {
      held = (await this.sink.open?.({ id: o.id, size: o.size, chunkSize: o.chunkSize, chunks: o.chunks, root: o.root, contentHash: o.contentHash })) ?? undefined
    } catch (err) {
      throw new BulkIoError('expected the sink to open', { cause: err })
    }
    if (held === undefined) return
    const set = new Set<number>()
    for (const i of held) if (Number.isSafeInteger(i) && i >= 0 && i < this.n) set.add(i)
    if (set.size > 0 && this.sink.read !== undefined) this.resume = set
  }

  /** A chunk the sink held from an earlier attempt: read back and checked against its leaf (any order). */
  private readLocal(index: number, slot: Slot): void {
    const sink = this.sink
    const leaves = this.pages.get(Math.floor(index / this.P))!
    const at = (index % this.P) * HASH_BYTES
    const refetch = (): void => {
      if (this.state !== 'running' || this.slots.get(index) !== slot) return
      slot.state = 'want' // torn, stale or unreadable: fetch it
      slot.bytes = undefined
      this.wanted.push(index)
      this.wakeUp()
    }
    Promise.resolve()
      .then(() => sink.read!(index))
      .then((bytes) => {
        if (this.state !== 'running' || this.slots.get(index) !== slot) return
        if (bytes.byteLength !== slot.length || !bytesEqual(this.hasher.leaf(bytes), leaves, at)) return refetch()
        slot.state = 'checked'
        slot.bytes = bytes
        this.chunksResumed++
        this.ctx.stats.chunksResumed++
        this.wakeUp()
      })
      .catch(refetch)
  }

  // -------------------------------------------------------------- the window

  /** Reserves slots up to the window; starts leaf page loads. */
  private fill(): void {
    this.fillBlocked = false
    const { size, chunkSize } = this.offer
    const P = this.P
    const pages = pageCount(this.n, P)
    while (this.next < this.n && this.next - this.base < this.W) {
      const i = this.next
      const p = Math.floor(i / P)
      if (!this.pages.has(p)) {
        this.loadPage(p)
        this.fillBlocked = true
        return
      }
      const length = chunkLength(size, chunkSize, i)
      const slot: Slot = { state: 'want', bytes: undefined, length }
      this.slots.set(i, slot)
      if (this.resume?.has(i) === true) {
        slot.state = 'reading'
        this.readLocal(i, slot)
      } else {
        this.wanted.push(i)
      }
      this.reserved += length
      if (this.reserved > this.ctx.stats.maxWindowBytes) this.ctx.stats.maxWindowBytes = this.reserved
      this.next++
      // fetch the next page while this one is being used, so pulls never wait for it
      if (i % P >= P / 2 && p + 1 < pages) this.loadPage(p + 1)
    }
  }

  /** Sends the wanted indices as pulls, in batches of half a window (or whatever is left). */
  private flush(): void {
    if (this.wanted.length === 0) return
    if (this.wanted.length < this.batch && this.requested > 0 && this.next < this.n && !this.fillBlocked) return
    const list = this.wanted.sort((a, b) => a - b)
    this.wanted = []
    const ranges: number[] = []
    for (const i of list) {
      const slot = this.slots.get(i)
      if (slot === undefined || slot.state !== 'want') continue
      slot.state = 'requested'
      const last = ranges.length - 2
      if (last >= 0 && ranges[last]! + ranges[last + 1]! === i) ranges[last + 1]!++
      else ranges.push(i, 1)
    }
    if (ranges.length === 0) return
    if (this.requested === 0) this.lastProgress = this.ctx.clock.now()
    for (let i = 1; i < ranges.length; i += 2) this.requested += ranges[i]!
    for (let k = 0; k < ranges.length; k += 2 * MAX_PULL_RANGES) {
      this.ctx.stats.pullsSent++
      void controlSend(this.ctx, this.senderAuthority, { op: 'pull', id: this.idBytes, stream: this.stream, epoch: this.epoch, ranges: ranges.slice(k, k + 2 * MAX_PULL_RANGES) })
    }
    this.armStall()
  }

  /**
   * Hands arrived chunks to the hasher in index order: leaf hash and content hash for chunks from
   * the network (then checked and written), content hash only for chunks read back from the sink.
   */
  private dispatch(): void {
    while (this.hashNext < this.next) {
      const i = this.hashNext
      const slot = this.slots.get(i)!
      if (slot.state === 'arrived') {
        slot.state = 'hashing'
        this.hashNext++
        this.onHashed(i, slot, this.hasher.both(slot.bytes!))
      } else if (slot.state === 'checked') {
        this.hashNext++
        this.hasher.content(slot.bytes!)
        slot.state = 'ready'
        this.wakeUp()
      } else {
        return
      }
    }
  }

  /** A chunk's leaf hash is known: checked against the verified page, then written to the sink. */
  private onHashed(index: number, slot: Slot, leaf: Uint8Array): void {
    const bytes = slot.bytes!
    const stats = this.ctx.stats
    const leaves = this.pages.get(Math.floor(index / this.P))!
    if (!bytesEqual(leaf, leaves, (index % this.P) * HASH_BYTES)) {
      stats.chunksRejected++
      this.fail(new BulkChunkHashError(`expected chunk ${index} to match its leaf hash, got ${bytes.byteLength} bytes that do not`, index))
      return
    }
    stats.chunksReceived++
    stats.bytesReceived += bytes.byteLength
    slot.state = 'writing'
    let r: Promise<void> | void
    try {
      r = this.sink.write(index, bytes)
    } catch (err) {
      this.fail(new BulkIoError(`expected the sink to take chunk ${index}`, { cause: err }))
      return
    }
    if (r instanceof Promise) {
      const p: Promise<void> = r.then(
        () => {
          this.writes.delete(p)
          if (slot.state === 'writing') slot.state = 'ready'
          this.wakeUp()
        },
        (err: unknown) => {
          this.writes.delete(p)
          this.fail(new BulkIoError(`expected the sink to take chunk ${index}`, { cause: err }))
        },
      )
      this.writes.add(p)
    } else {
      slot.state = 'ready'
      this.wakeUp()
    }
  }

  /** Frees the slots of hashed and written chunks in index order; reports progress. */
  private advance(): void {
    const before = this.base
    while (this.base < this.hashNext) {
      const slot = this.slots.get(this.base)
      if (slot === undefined || slot.state !== 'ready') break
      this.slots.delete(this.base)
      this.reserved -= slot.length
      this.verifiedBytes += slot.length
      this.base++
      const progress: BulkProgress = { id: this.offer.id, direction: 'in', peer: this.senderDid, bytes: this.verifiedBytes, total: this.offer.size, chunks: this.base, totalChunks: this.n }
      this.options.onProgress?.(progress)
      this.ctx.emit(progress)
    }
    if (this.base !== before) {
      const low = Math.floor(this.base / this.P)
      for (const p of this.pages.keys()) if (p < low) this.pages.delete(p)
    }
  }

  /** A data frame for this transfer (from the data channel handler). Synchronous; hashing happens in order in dispatch(). */
  onChunk(peer: string, epoch: number, index: number, bytes: Uint8Array): void {
    const stats = this.ctx.stats
    if (this.state !== 'running' || this.error !== undefined || peer !== this.senderDid || epoch !== this.epoch) {
      stats.framesIgnored++
      return
    }
    const slot = this.slots.get(index)
    if (slot === undefined || slot.state !== 'requested') {
      stats.framesIgnored++
      return
    }
    if (bytes.byteLength !== slot.length) {
      stats.chunksRejected++
      this.fail(new BulkChunkHashError(`expected chunk ${index} of ${slot.length} bytes, got ${bytes.byteLength}`, index))
      return
    }
    slot.state = 'arrived'
    slot.bytes = bytes
    this.requested--
    this.stalls = 0
    this.lastProgress = this.ctx.clock.now()
    this.chunksFetched++
    this.bytesFetched += bytes.byteLength
    this.wakeUp()
  }

  // -------------------------------------------------------------- leaf pages

  private loadPage(p: number): void {
    if (this.pages.has(p) || this.pageLoads.has(p)) return
    this.pageLoads.add(p)
    const { root, chunks, pageLeaves, id } = this.offer
    void controlRequest(this.ctx, this.senderAuthority, { op: 'leaves', id: this.idBytes, page: p }, `leaf page ${p}`, this.controller.signal)
      .then(({ data }) => {
        const page = parseLeaves(data, id, p)
        if (!verifyPage(root, chunks, pageLeaves, p, page.leaves, page.proof)) throw new BulkProofError(`expected leaf page ${p} to lead to the offer's root, got one that does not`)
        if (this.state === 'running' && p >= Math.floor(this.base / this.P)) this.pages.set(p, page.leaves)
      })
      .catch((err: unknown) => {
        if (this.state !== 'running') return
        // a page request lost with a connection is asked again, within the stall budget
        if (isTransient(err) && this.stalls < this.limits.maxStalls) {
          this.stalls++
          this.stallsTotal++
          return
        }
        this.fail(err instanceof Error ? err : new Error(String(err)))
      })
      .finally(() => {
        this.pageLoads.delete(p)
        this.wakeUp()
      })
  }

  // -------------------------------------------------------------- stalls and connections

  private armStall(): void {
    if (this.stallTimer !== undefined || this.state !== 'running') return
    this.stallTimer = this.ctx.clock.setTimeout(() => this.onStallTimer(), this.limits.stallTimeoutMs, { unref: true })
  }

  private onStallTimer(): void {
    this.stallTimer = undefined
    if (this.state !== 'running' || this.requested === 0) return
    if (!this.connected) {
      this.armStall()
      return
    }
    const idle = this.ctx.clock.now() - this.lastProgress
    const limit = this.limits.stallTimeoutMs
    if (idle < limit) {
      this.stallTimer = this.ctx.clock.setTimeout(() => this.onStallTimer(), limit - idle, { unref: true })
      return
    }
    this.stalls++
    this.stallsTotal++
    if (this.stalls > this.limits.maxStalls) {
      this.fail(new BulkTimeoutError(`expected a chunk from ${this.senderDid} within ${limit} ms, got none after ${this.limits.maxStalls} retries`))
      return
    }
    this.ctx.log.debug('bulk transfer stalled; asking again', { id: this.offer.id, stalls: this.stalls })
    this.restartEpoch()
    this.wakeUp()
  }

  /** What was asked and did not arrive is asked again, under a new epoch. */
  private restartEpoch(): void {
    this.epoch = (this.epoch + 1) >>> 0
    for (const [i, slot] of this.slots) {
      if (slot.state === 'requested') {
        slot.state = 'want'
        this.wanted.push(i)
      }
    }
    this.requested = 0
  }

  private isConnected(): boolean {
    return this.ctx.router.peers().some((p) => p.did === this.senderDid)
  }

  /** The router lost its connection to `did`. */
  onDisconnect(did: string): void {
    if (did !== this.senderDid || this.state !== 'running' || !this.connected) return
    if (this.isConnected()) return // another connection to it is still open
    this.connected = false
    this.restartEpoch()
    this.wakeUp()
  }

  /** Dials the sender (data frames need a direct connection) until connected or out of time. */
  private async reconnect(): Promise<void> {
    const ctx = this.ctx
    const clock = ctx.clock
    const deadline = clock.now() + this.limits.reconnectTimeoutMs
    const addrs = this.offer.addrs
    let attempt = 0
    let backoff = 50
    for (;;) {
      this.check()
      if (this.isConnected()) break
      const left = deadline - clock.now()
      if (left <= 0) throw new BulkUnreachableError(`expected a direct connection to ${this.senderDid} within ${this.limits.reconnectTimeoutMs} ms, got none (addresses: ${addrs.join(', ') || 'none'})`)
      const addr = addrs.length === 0 ? undefined : addrs[attempt++ % addrs.length]
      if (addr !== undefined) {
        const timeout = new AbortController()
        const t = clock.setTimeout(() => timeout.abort(), Math.min(left, ctx.requestTimeoutMs), { unref: true })
        try {
          await ctx.router.dial(addr, { remotePeer: this.senderDid, signal: AbortSignal.any([this.controller.signal, timeout.signal]) })
        } catch (err) {
          ctx.log.debug('bulk dial failed', { id: this.offer.id, addr, err: err instanceof Error ? err.name : '' })
        } finally {
          clock.clearTimeout(t)
        }
        this.check()
        if (this.isConnected()) break
      }
      await clock.sleep(Math.min(backoff, Math.max(1, deadline - clock.now())), { signal: this.controller.signal }).catch(() => {})
      backoff = Math.min(1000, backoff * 2)
    }
    this.connected = true
    if (this.everConnected) this.reconnects++
    this.everConnected = true
    this.lastProgress = clock.now()
  }
}
