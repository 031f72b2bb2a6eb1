/**
 * The receiving half: one `Download` per transfer. It reserves chunks in a pull window
 * (window.ts), asks the sender for them, and hands the arrived ones, in index order, to the
 * verifier (verify.ts): hashed on the event loop or in libuv's thread pool, checked against their
 * leaf from a page verified against the signed root (leaf-pages.ts), and only then written to the
 * sink; the content hash, when the offer has one, is fed in index order. A chunk reaches the sink
 * only after it matched its leaf; on failure the sink is aborted (nothing partial is kept) or,
 * when the failure is not the data's fault and the sink can, suspended for a later resume.
 *
 * Resume: chunks written stay written. After a dropped connection (or a stall, link.ts) the
 * receiver raises its epoch, re-dials the sender, and asks again only for the chunks it had asked
 * for and not received; frames of the older epoch are ignored. A sink that reports chunks from an
 * earlier attempt (`open()`, e.g. a resumable file sink after a restart) has them read back and
 * re-checked instead of fetched. Internal.
 */
import type { KLPValue } from '@kos-mesh/interface'
import { controlRequest, controlSend, type BulkContext, type BulkProgress } from './context.js'
import { BulkCancelledError, BulkChunkHashError, BulkContentHashError, BulkIoError, BulkReason, errorForReason, reasonOf } from './errors.js'
import { inlineHasher, leafHasher, type LeafHashing } from './hasher.js'
import { LeafPages } from './leaf-pages.js'
import { StallWatch, isConnected, redial, type StallLimits } from './link.js'
import { openSink } from './resume.js'
import type { BulkSink } from './sink.js'
import { bytesEqual } from './tree.js'
import { ChunkVerifier } from './verify.js'
import { PullWindow } from './window.js'
import { chunkLength, idFromHex, type BulkOfferInfo } from './wire.js'

export interface ReceiverLimits extends StallLimits {
  window: number
  reconnectTimeoutMs: number
  leafHashing: LeafHashing
}

/**
 * Options of one transfer on the receiving side (`receive()`, `IncomingOffer.accept()`). `receive()`
 * throws `InvalidParametersError` when `sink` lacks `write` / `commit` / `abort`, `window` is not an
 * integer in 1..1024 or `maxBytes` is negative, and `BulkBusyError` when `maxTransfers` transfers run.
 */
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

/** What a receiver gets once every chunk was verified and the sink committed. */
export interface BulkReceiveResult {
  /** The offer's transfer id. */
  id: string
  /** The sender's DID. */
  from: string
  /** Payload size in bytes, as signed in the offer. */
  size: number
  /** Number of chunks of the payload. */
  chunks: number
  /** The SHA-256 of the whole payload (checked before the commit) when the offer carried one; 0 bytes otherwise. */
  contentHash: Uint8Array
  /** The sender's `meta` from the offer (null when none). */
  meta: KLPValue
  /** Chunks and bytes received over the network (each once). */
  chunksFetched: number
  /** Payload bytes of the chunks received over the network (each once). */
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
  private readonly idBytes: Uint8Array
  private readonly window: PullWindow
  private readonly pages: LeafPages
  private readonly link: StallWatch
  /** No slot can be reserved before a leaf page arrives. */
  private fillBlocked = false
  private resume: Set<number> | undefined
  private readonly verify: ChunkVerifier
  private connected = false
  private everConnected = false
  /** Keep the sink's partial data (suspend) whatever the error: the service is stopping. */
  private keepPartial = false
  private wake: (() => void) | undefined
  private woken = false
  private reconnects = 0
  private chunksFetched = 0
  private bytesFetched = 0
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
    this.n = offer.chunks
    this.idBytes = idFromHex(offer.id)
    this.window = new PullWindow(this.n, options.window ?? limits.window)
    this.pages = new LeafPages(ctx, offer, this.idBytes, senderAuthority, this.controller.signal, {
      wanted: (p) => this.state === 'running' && p >= this.pages.pageOf(this.window.base),
      failed: (err) => {
        if (this.state !== 'running') return
        // a page request lost with a connection is asked again, within the stall budget
        if (isTransient(err) && this.link.spend()) return
        this.fail(err)
      },
      settled: () => this.wakeUp(),
    })
    this.verify = new ChunkVerifier(ctx, offer.contentHash.byteLength === 0 ? leafHasher() : inlineHasher(), this.pages, options.sink, {
      fail: (err) => this.fail(err),
      wake: () => this.wakeUp(),
      current: (index, slot) => this.state === 'running' && this.window.slot(index) === slot,
      refetch: (index, slot) => {
        this.window.refetch(index, slot)
        this.wakeUp()
      },
    }, limits.leafHashing)
    this.link = new StallWatch(ctx, limits, senderDid, {
      waiting: () => this.state === 'running' && this.window.requested > 0,
      connected: () => this.connected,
      giveUp: (err) => this.fail(err),
      retry: (stalls) => {
        this.ctx.log.debug('bulk transfer stalled; asking again', { id: this.offer.id, stalls })
        this.restartEpoch()
        this.wakeUp()
      },
    })
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
      this.resume = await openSink(this.sink, this.offer)
      opened = true
      this.connected = isConnected(ctx, this.senderDid)
      this.everConnected = this.connected
      for (;;) {
        this.check()
        if (!this.connected) {
          await this.reconnect()
          continue
        }
        // release what is done first: it frees slots that fill() then reserves (nothing else wakes us for that)
        this.advance()
        if (this.window.complete) break
        this.fill()
        this.dispatch()
        this.flush()
        await this.waitEvent()
      }
      this.check()
      const digest = this.verify.digest()
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
        chunksResumed: this.verify.resumed,
        reconnects: this.reconnects,
        stalls: this.link.total,
        durationMs: ctx.clock.now() - started,
      }
    } catch (e) {
      const err = this.error ?? (e instanceof Error ? e : new Error(String(e)))
      this.error ??= err
      this.state = 'failed'
      this.cleanup()
      await this.verify.settle()
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
    this.link.clear()
    this.controller.abort()
    this.pages.clear()
    this.window.clear()
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

  // -------------------------------------------------------------- the window

  /** Reserves slots up to the window; starts leaf page loads. */
  private fill(): void {
    this.fillBlocked = false
    const { size, chunkSize } = this.offer
    const w = this.window
    while (w.hasRoom) {
      const i = w.next
      if (!this.pages.has(i)) {
        this.pages.load(i, false)
        this.fillBlocked = true
        return
      }
      const local = this.resume?.has(i) === true
      const { slot } = w.reserve(chunkLength(size, chunkSize, i), local)
      if (local) this.verify.readBack(i, slot)
      if (w.reserved > this.ctx.stats.maxWindowBytes) this.ctx.stats.maxWindowBytes = w.reserved
      // fetch the next page while this one is being used, so pulls never wait for it
      this.pages.load(i, true)
    }
  }

  /** Sends the wanted indices as pulls, in batches of half a window (or whatever is left). */
  private flush(): void {
    const idle = this.window.requested === 0
    const pulls = this.window.takePulls(this.fillBlocked)
    if (pulls === undefined) return
    if (idle) this.link.lastProgress = this.ctx.clock.now()
    for (const ranges of pulls) {
      this.ctx.stats.pullsSent++
      void controlSend(this.ctx, this.senderAuthority, { op: 'pull', id: this.idBytes, stream: this.stream, epoch: this.epoch, ranges })
    }
    this.link.arm()
  }

  /**
   * Hands arrived chunks to the verifier in index order: chunks from the network are hashed,
   * checked and written; chunks read back from the sink (already checked) only feed the content hash.
   */
  private dispatch(): void {
    for (let next = this.window.nextToHash(); next !== undefined; next = this.window.nextToHash()) {
      if (next.slot.state === 'arrived') this.verify.network(next.index, next.slot)
      else this.verify.local(next.slot)
    }
  }

  /** Frees the slots of hashed and written chunks in index order; reports progress. */
  private advance(): void {
    const released = this.window.release((index, slot) => {
      this.verifiedBytes += slot.length
      const progress: BulkProgress = { id: this.offer.id, direction: 'in', peer: this.senderDid, bytes: this.verifiedBytes, total: this.offer.size, chunks: index + 1, totalChunks: this.n }
      this.options.onProgress?.(progress)
      this.ctx.emit(progress)
    })
    if (released > 0) this.pages.prune(this.window.base)
  }

  /**
   * A data frame for this transfer (from the data channel handler): `bytes` is a view into the
   * frame after its header (see `pooledLeafHash`). Synchronous; the chunk is verified from dispatch().
   */
  onChunk(peer: string, epoch: number, index: number, bytes: Uint8Array): void {
    const stats = this.ctx.stats
    if (this.state !== 'running' || this.error !== undefined || peer !== this.senderDid || epoch !== this.epoch) {
      stats.framesIgnored++
      return
    }
    const arrival = this.window.arrive(index, bytes)
    if (arrival === 'unrequested') {
      stats.framesIgnored++
      return
    }
    if (arrival === 'wrong-length') {
      stats.chunksRejected++
      this.fail(new BulkChunkHashError(`expected chunk ${index} of ${this.window.expectedLength(index)!} bytes, got ${bytes.byteLength}`, index))
      return
    }
    this.link.progress()
    this.chunksFetched++
    this.bytesFetched += bytes.byteLength
    this.wakeUp()
  }

  // -------------------------------------------------------------- connections

  /** What was asked and did not arrive is asked again, under a new epoch. */
  private restartEpoch(): void {
    this.epoch = (this.epoch + 1) >>> 0
    this.window.restart()
  }

  /** The router lost its connection to `did`. */
  onDisconnect(did: string): void {
    if (did !== this.senderDid || this.state !== 'running' || !this.connected) return
    if (isConnected(this.ctx, did)) return // another connection to it is still open
    this.connected = false
    this.restartEpoch()
    this.wakeUp()
  }

  /** Dials the sender (data frames need a direct connection) until connected or out of time. */
  private async reconnect(): Promise<void> {
    await redial(this.ctx, this.senderDid, this.offer.addrs, this.limits.reconnectTimeoutMs, this.controller.signal, () => this.check(), this.offer.id)
    this.connected = true
    if (this.everConnected) this.reconnects++
    this.everConnected = true
    this.link.lastProgress = this.ctx.clock.now()
  }
}
