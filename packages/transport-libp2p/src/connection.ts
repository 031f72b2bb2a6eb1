/**
 * One KLP connection = one libp2p stream of protocol `/kos/klp/1.0.0`. The stream runs over a
 * libp2p connection that Noise authenticated (the remote PeerId, hence its DID) and Yamux
 * multiplexes; many KLP connections to one peer share that libp2p connection.
 *
 * Framing: each application frame travels as one klp-codec frame (8-byte header, kind
 * FRAME_KIND_DATA) on the stream; the header's length is checked against `maxFrameSize` before any
 * body byte is buffered, and a bad header aborts the connection.
 *
 * Inbound: decoded frames go to a bounded queue; when it holds `maxInboundBufferBytes` the stream is
 * paused (Yamux then stops granting send window, so the remote's sends block), and it is resumed when
 * the consumer drained it to half.
 *
 * Outbound: the frames sent in one tick are batched (src/batch.ts): gathered in send order and handed
 * to the stream as one write at the end of the tick (process.nextTick, so no event-loop turn is
 * added), or at once when the batch reaches MAX_BATCH_BYTES (one Noise message), so they travel as
 * one Yamux frame in one Noise message. Frames larger than a batch go to the stream on their own,
 * after the batch before them. Bytes held on the way out (copies of frames waiting for their turn,
 * the current batch and the stream's own write buffer) are bounded by `maxOutboundBufferBytes`:
 * when a frame would go past it the batch is handed to the stream first (the muxer takes what its
 * window allows), and if the frame still does not fit `send()` rejects at once with
 * SendBufferFullError. While bytes are held the peer must take some of them at least every
 * `sendStallTimeoutMs`, otherwise the connection is aborted with SlowPeerError.
 *
 * Close: `close()` flushes (waiting senders, then the batch), then closes the stream's write end (a Yamux FIN inside Noise, so it is
 * authenticated); the remote answers by closing its own end, and both sides end cleanly. `abort()`
 * resets the stream (Yamux RST) and drops the batch.
 */
import {
  AbortError,
  ConnectionClosedError,
  InvalidParametersError,
  type AbortOptions,
  type Clock,
  type Connection,
  type ConnectionDirection,
  type ConnectionStatus,
  type Logger,
  type TimerHandle,
  WriteTurns,
} from '@kos-mesh/interface'
import { FRAME_HEADER_LENGTH, FRAME_MAGIC, FRAME_VERSION, FrameDecoder, FrameTooLargeError, InvalidFrameError, type Frame } from '@kos-mesh/klp-codec'
import type { Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import { FrameBatch, MAX_BATCH_BYTES } from './batch.js'
import { ConnectionResetError, SendBufferFullError, SlowPeerError } from './errors.js'

/** klp-codec frame kind of an application frame on a KLP stream (application range 0x80..0xff). */
export const FRAME_KIND_DATA = 0x80

export interface ConnectionLimits {
  maxFrameSize: number
  maxInboundBufferBytes: number
  maxOutboundBufferBytes: number
  sendStallTimeoutMs: number
  closeTimeoutMs: number
  /** Bytes the libp2p stream may buffer while paused (at least the muxer's largest stream window). */
  streamReadBufferBytes: number
}

export interface Libp2pConnectionInit {
  id: string
  stream: Stream
  direction: ConnectionDirection
  remotePeer: string
  remoteAddr: string
  limits: ConnectionLimits
  clock: Clock
  logger?: Logger
}

/** Marker for a clean end (not surfaced to callers as an error). */
class LocalClose extends Error {}

export class Libp2pConnection implements Connection {
  readonly id: string
  readonly direction: ConnectionDirection
  readonly remotePeer: string
  readonly remoteAddr: string
  readonly closed: Promise<void>

  private readonly stream: Stream
  private readonly limits: ConnectionLimits
  private readonly clock: Clock
  private readonly log: Logger | undefined
  private readonly decoder: FrameDecoder
  private state: ConnectionStatus = 'open'
  private error: Error | undefined
  private resolveClosed!: () => void
  private closePromise: Promise<void> | undefined

  // inbound
  private readonly queue: Uint8Array[] = []
  private queueHead = 0
  private queuedBytes = 0
  private paused = false
  private inputEnded = false
  private reader: { resolve(r: IteratorResult<Uint8Array>): void; reject(e: Error): void } | undefined

  // outbound
  private readonly turns = new WriteTurns(() => this.stream.writableNeedsDrain)
  private waitingBytes = 0
  /** Frames sent in this tick, handed to the stream as one write at its end (see flushBatch). */
  private readonly batch = new FrameBatch()
  private flushScheduled = false
  /** Bytes ever handed to the stream (so bytes the stream passed on = sent - writeBufferLength). */
  private sent = 0

  // send stall deadline
  private stallTimer: TimerHandle | undefined
  private stallSince = 0
  private stallDone = 0

  constructor(init: Libp2pConnectionInit) {
    this.id = init.id
    this.stream = init.stream
    this.direction = init.direction
    this.remotePeer = init.remotePeer
    this.remoteAddr = init.remoteAddr
    this.limits = init.limits
    this.clock = init.clock
    this.log = init.logger
    this.decoder = new FrameDecoder({ maxFrameSize: init.limits.maxFrameSize + FRAME_HEADER_LENGTH })
    this.closed = new Promise((resolve) => { this.resolveClosed = resolve })
    const s = this.stream
    // paused bytes are bounded by the muxer's stream window: never let libp2p reset us below it
    if (s.maxReadBufferLength < init.limits.streamReadBufferBytes) s.maxReadBufferLength = init.limits.streamReadBufferBytes
    s.addEventListener('message', (evt) => { this.onMessage(evt.data) })
    s.addEventListener('end', () => { this.onInputEnd() })
    s.addEventListener('remoteCloseWrite', () => { this.onRemoteCloseWrite() })
    s.addEventListener('drain', () => { this.turns.pump() })
    s.addEventListener('close', (evt) => { this.onStreamClose(evt.error) })
    if (s.status !== 'open') queueMicrotask(() => { this.onStreamClose(undefined) })
  }

  get status(): ConnectionStatus {
    return this.state
  }

  /** Bytes of decoded frames waiting for the consumer. */
  get inboundBufferedBytes(): number {
    return this.queuedBytes
  }

  /**
   * Bytes held on the way out: copies of frames waiting for their turn, the batch of this tick and the
   * stream's write buffer.
   */
  get outboundBufferedBytes(): number {
    if (this.error !== undefined) return 0
    return this.heldBytes()
  }

  private heldBytes(): number {
    return this.waitingBytes + this.batch.bytes + this.stream.writeBufferLength
  }

  /** The libp2p stream underneath (protocol `/kos/klp/1.0.0`). */
  get libp2pStream(): Stream {
    return this.stream
  }

  // ------------------------------------------------------------------ inbound

  private onMessage(data: Uint8Array | Uint8ArrayList): void {
    if (this.error !== undefined) return
    try {
      if (data instanceof Uint8Array) this.onBytes(data)
      else for (const chunk of data) this.onBytes(chunk)
    } catch (err) {
      this.fail(err as Error)
    }
  }

  private onBytes(chunk: Uint8Array): void {
    const frames = this.decoder.push(chunk)
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i] as Frame
      if (f.kind !== FRAME_KIND_DATA) throw new InvalidFrameError(`expected frame kind 0x${FRAME_KIND_DATA.toString(16)}, got 0x${f.kind.toString(16)}`)
      // Noise hands out Buffers; consumers get plain Uint8Array views (no copy)
      const b = f.body
      this.deliver(Buffer.isBuffer(b) ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : b)
    }
  }

  private deliver(body: Uint8Array): void {
    if (this.reader !== undefined && this.queuedBytes === 0) {
      const r = this.reader
      this.reader = undefined
      r.resolve({ done: false, value: body })
      return
    }
    this.queue.push(body)
    this.queuedBytes += body.byteLength
    if (!this.paused && this.queuedBytes >= this.limits.maxInboundBufferBytes && this.stream.readStatus === 'readable') {
      this.paused = true
      this.stream.pause()
    }
  }

  private onRemoteCloseWrite(): void {
    // the remote finished sending: answer with our own close once our pending frames are out
    if (this.state === 'open') void this.close().catch(() => {})
  }

  private onInputEnd(): void {
    if (this.inputEnded) return
    this.inputEnded = true
    try {
      this.decoder.end()
    } catch (err) {
      this.fail(err as Error)
      return
    }
    this.endReaderIfDrained()
  }

  private endReaderIfDrained(): void {
    if (this.reader !== undefined && this.queuedBytes === 0 && this.queue.length - this.queueHead === 0 && (this.inputEnded || this.state === 'closed')) {
      const r = this.reader
      this.reader = undefined
      r.resolve({ done: true, value: undefined })
    }
  }

  private shift(): Uint8Array | undefined {
    if (this.queueHead >= this.queue.length) return undefined
    const f = this.queue[this.queueHead] as Uint8Array
    this.queue[this.queueHead] = EMPTY
    this.queueHead++
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead)
      this.queueHead = 0
    }
    this.queuedBytes -= f.byteLength
    if (this.paused && this.queuedBytes <= this.limits.maxInboundBufferBytes / 2) {
      this.paused = false
      try { if (this.stream.readStatus === 'paused') this.stream.resume() } catch { /* closing */ }
    }
    return f
  }

  private next(): Promise<IteratorResult<Uint8Array>> {
    const f = this.shift()
    if (f !== undefined) return Promise.resolve({ done: false, value: f })
    if (this.error !== undefined && !(this.error instanceof LocalClose)) return Promise.reject(this.error)
    if (this.inputEnded || this.state === 'closed') return Promise.resolve({ done: true, value: undefined })
    if (this.reader !== undefined) return Promise.reject(new InvalidParametersError('expected one reader at a time, got two'))
    return new Promise((resolve, reject) => { this.reader = { resolve, reject } })
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => this.next(),
      return: async () => ({ done: true, value: undefined }),
    }
  }

  // ------------------------------------------------------------------ outbound

  async send(frame: Uint8Array, options: AbortOptions = {}): Promise<void> {
    if (!(frame instanceof Uint8Array)) throw new InvalidParametersError(`expected a Uint8Array frame, got ${typeof frame}`)
    if (frame.byteLength > this.limits.maxFrameSize) {
      throw new FrameTooLargeError(`expected a frame of at most ${this.limits.maxFrameSize} bytes, got ${frame.byteLength}`)
    }
    if (this.state !== 'open') throw this.closedError()
    if (options.signal?.aborted === true) throw new AbortError(undefined, { cause: options.signal.reason })
    const cost = frame.byteLength + FRAME_HEADER_LENGTH
    const max = this.limits.maxOutboundBufferBytes
    let held = this.heldBytes()
    if (held > 0 && held + cost > max && this.batch.bytes > 0) {
      // the batch only waits for the end of the tick: hand it to the stream now (the muxer takes
      // what its window allows, so those bytes are no longer held) and count again
      this.flushBatch()
      if (this.error !== undefined) throw this.closedError()
      held = this.heldBytes()
    }
    if (held > 0 && held + cost > max) {
      throw new SendBufferFullError(`expected at most ${this.limits.maxOutboundBufferBytes} outbound bytes on the connection, got ${held} held and a frame of ${frame.byteLength}`)
    }
    const wire = encodeDataFrame(frame) // a copy: the caller may reuse its buffer at once
    if (this.turns.busy) {
      this.waitingBytes += cost
      this.armStall()
      try {
        await this.turns.wait(options.signal)
      } finally {
        this.waitingBytes -= cost
      }
      try {
        if (this.error !== undefined || this.stream.writeStatus !== 'writable') throw this.closedError()
        this.enqueue(wire)
      } finally {
        this.turns.release()
      }
      return
    }
    this.enqueue(wire)
  }

  /**
   * Adds one encoded frame to the batch of this tick (flushed at its end), or, for a frame larger
   * than a batch, hands the batch and then the frame to the stream. Throws ConnectionClosedError when
   * the stream refused bytes (the connection is then failed).
   */
  private enqueue(wire: Uint8Array): void {
    const n = wire.byteLength
    if (!this.batch.fits(n)) this.flushBatch()
    if (this.error === undefined) {
      if (n >= MAX_BATCH_BYTES) {
        this.write(wire)
      } else {
        this.batch.push(wire)
        // full (no room for another header): out now; otherwise at the end of the tick
        if (!this.batch.fits(FRAME_HEADER_LENGTH + 1)) this.flushBatch()
        else if (!this.flushScheduled) {
          this.flushScheduled = true
          process.nextTick(this.onTickEnd)
        }
      }
    }
    if (this.error !== undefined) throw this.closedError()
  }

  private readonly onTickEnd = (): void => {
    this.flushScheduled = false
    this.flushBatch()
  }

  /** Hands the batch to the stream as one write. Never throws: a refusal fails the connection. */
  private flushBatch(): void {
    const wire = this.batch.take()
    if (wire === undefined || this.error !== undefined) return
    this.write(wire)
  }

  private write(wire: Uint8Array): void {
    try {
      this.stream.send(wire)
    } catch (err) {
      // the stream's write end is gone (reset, transport closed): frames already accepted are lost
      this.fail(mapStreamError(err))
      return
    }
    this.sent += wire.byteLength
    if (this.stream.writeBufferLength > 0) this.armStall()
  }

  private closedError(): Error {
    if (this.error !== undefined && !(this.error instanceof LocalClose)) {
      return new ConnectionClosedError(`connection is closed: ${this.error.message}`, { cause: this.error })
    }
    return new ConnectionClosedError(`expected an open connection, got status ${this.state}`)
  }


  // ------------------------------------------------------------------ send stall deadline

  /** Bytes the stream has passed on to the muxer so far. */
  private get drained(): number {
    return this.sent - this.stream.writeBufferLength
  }

  private armStall(): void {
    const ms = this.limits.sendStallTimeoutMs
    if (!(ms < Infinity) || this.error !== undefined || this.stallTimer !== undefined) return
    this.stallSince = this.clock.now()
    this.stallDone = this.drained
    this.stallTimer = this.clock.setTimeout(this.stallTick, stallTickMs(ms), { unref: true })
  }

  /**
   * While bytes are held (waiting copies or the stream's write buffer), the stream must pass some on
   * (the muxer has window, i.e. the peer reads) at least every `sendStallTimeoutMs`.
   */
  private readonly stallTick = (): void => {
    this.stallTimer = undefined
    if (this.error !== undefined) return
    if (this.heldBytes() === 0) return
    const ms = this.limits.sendStallTimeoutMs
    const now = this.clock.now()
    const done = this.drained
    if (done > this.stallDone) {
      this.stallSince = now
      this.stallDone = done
    } else if (now - this.stallSince >= ms) {
      this.fail(new SlowPeerError(`expected the peer to take some of our ${this.outboundBufferedBytes} outbound bytes within ${ms} ms, got no progress`))
      return
    }
    this.stallTimer = this.clock.setTimeout(this.stallTick, stallTickMs(ms), { unref: true })
  }

  // ------------------------------------------------------------------ close

  close(options: AbortOptions = {}): Promise<void> {
    if (this.closePromise !== undefined) return this.closePromise
    if (this.state === 'closed') return this.closed
    this.state = 'closing'
    this.closePromise = (async () => {
      const signal = options.signal
      const timer = this.clock.setTimeout(() => { this.fail(new ConnectionClosedError(`graceful close did not finish within ${this.limits.closeTimeoutMs} ms`)) }, this.limits.closeTimeoutMs, { unref: true })
      const onAbort = (): void => { this.fail(new AbortError('close aborted', { cause: signal?.reason })) }
      signal?.addEventListener('abort', onAbort, { once: true })
      try {
        if (signal?.aborted === true) onAbort()
        // pending senders go first, then the FIN
        if (this.turns.running || this.turns.waiting > 0) {
          const turn = await this.turns.wait().then(() => true, () => false)
          if (turn) this.turns.release()
        }
        // then the frames of this tick, so they go before the FIN
        this.flushBatch()
        // we may stop reading now: never keep the remote blocked on our account
        if (this.paused) {
          this.paused = false
          try { if (this.stream.readStatus === 'paused') this.stream.resume() } catch { /* closing */ }
        }
        if (this.error === undefined) await this.stream.close({ signal: signal ?? undefined }).catch((err: unknown) => { this.fail(mapStreamError(err)) })
        await this.closed
      } finally {
        this.clock.clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
      }
    })()
    return this.closePromise
  }

  abort(err: Error): void {
    this.fail(err instanceof Error ? err : new ConnectionClosedError(String(err)))
  }

  private onStreamClose(error: Error | undefined): void {
    if (error !== undefined) {
      this.fail(this.error ?? mapStreamError(error))
      return
    }
    this.finish()
  }

  /** Tears the connection down with `err`: queue dropped, waiters rejected, stream reset. */
  private fail(err: Error): void {
    if (this.error !== undefined) {
      this.finish()
      return
    }
    this.error = err
    if (!(err instanceof LocalClose)) this.log?.debug('libp2p klp connection aborted', { id: this.id, error: err.name, message: err.message })
    this.state = 'closed'
    this.queue.length = 0
    this.queueHead = 0
    this.queuedBytes = 0
    this.batch.clear()
    if (this.reader !== undefined) {
      const r = this.reader
      this.reader = undefined
      r.reject(err)
    }
    const closedErr = this.closedError()
    this.turns.rejectAll(closedErr)
    this.clock.clearTimeout(this.stallTimer)
    this.stallTimer = undefined
    try { this.stream.abort(err) } catch { /* already closed */ }
    this.finish()
  }

  private finish(): void {
    if (this.finished) return
    this.finished = true
    this.clock.clearTimeout(this.stallTimer)
    this.stallTimer = undefined
    this.state = 'closed'
    this.batch.clear()
    if (this.error === undefined) this.inputEnded = true
    this.turns.rejectAll(this.closedError())
    this.endReaderIfDrained()
    this.resolveClosed()
  }

  private finished = false

  /** The error that ended the connection, if it ended with one. */
  get closeError(): Error | undefined {
    return this.error instanceof LocalClose ? undefined : this.error
  }
}

const EMPTY = new Uint8Array(0)

/** One klp-codec frame (kind FRAME_KIND_DATA) around a copy of `body`. */
export function encodeDataFrame(body: Uint8Array): Uint8Array {
  const len = body.byteLength
  const out = new Uint8Array(FRAME_HEADER_LENGTH + len)
  out[0] = FRAME_MAGIC
  out[1] = FRAME_VERSION
  out[2] = FRAME_KIND_DATA
  out[3] = 0
  out[4] = len >>> 24
  out[5] = (len >>> 16) & 0xff
  out[6] = (len >>> 8) & 0xff
  out[7] = len & 0xff
  out.set(body, FRAME_HEADER_LENGTH)
  return out
}

/** The stall deadline is checked every quarter of it (at most every second): it fires within 1.25x. */
function stallTickMs(deadlineMs: number): number {
  return Math.max(1, Math.min(deadlineMs / 4, 1_000))
}

function mapStreamError(err: unknown): Error {
  const e = err as { name?: unknown; message?: unknown }
  const msg = typeof e?.message === 'string' ? e.message : String(err)
  if (e?.name === 'StreamResetError' || e?.name === 'StreamAbortedError' || e?.name === 'ConnectionClosedError' || e?.name === 'MuxerClosedError') {
    return new ConnectionResetError(`the remote reset the stream: ${msg}`, { cause: err })
  }
  return new ConnectionClosedError(`stream closed: ${msg}`, { cause: err })
}
