/**
 * One KLP connection = one libp2p stream of protocol `/kos/klp/1.0.0`. The stream runs over a
 * libp2p connection that Noise authenticated (the remote PeerId, hence its DID) and Yamux
 * multiplexes; many KLP connections to one peer share that libp2p connection.
 *
 * Framing: each application frame travels as one klp-codec frame (8-byte header, kind
 * FRAME_KIND_DATA, data-frame.ts) on the stream; the header's length is checked against
 * `maxFrameSize` before any body byte is buffered, and a bad header aborts the connection.
 *
 * Inbound: decoded frames go to a bounded queue (inbound.ts); when it holds `maxInboundBufferBytes`
 * the stream is paused (Yamux then stops granting send window, so the remote's sends block), and it
 * is resumed when the consumer drained it to half.
 *
 * Outbound: the frames sent in one tick are batched (outbound.ts, batch.ts): gathered in send order and handed
 * to the stream as one write at the end of the tick (process.nextTick, so no event-loop turn is
 * added), or at once when the batch reaches MAX_BATCH_BYTES (one Noise message), so they travel as
 * one Yamux frame in one Noise message. Frames larger than a batch go to the stream on their own,
 * after the batch before them. Bytes held on the way out (copies of frames waiting for their turn,
 * the current batch and the stream's own write buffer) are bounded by `maxOutboundBufferBytes`:
 * when a frame would go past it the batch is handed to the stream first (the muxer takes what its
 * window allows), and if the frame still does not fit `send()` rejects at once with
 * SendBufferFullError. While bytes are held the peer must take some of them at least every
 * `sendStallTimeoutMs`, otherwise the connection is aborted with SlowPeerError (stall.ts).
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
  WriteTurns,
} from '@kos-mesh/interface'
import { FRAME_HEADER_LENGTH, FrameDecoder, FrameTooLargeError, InvalidFrameError, type Frame } from '@kos-mesh/klp-codec'
import type { Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import { FRAME_KIND_DATA, encodeDataFrame } from './data-frame.js'
import { SendBufferFullError, SlowPeerError } from './errors.js'
import { InboundQueue } from './inbound.js'
import { OutboundWriter } from './outbound.js'
import { SendStallWatch } from './stall.js'
import { mapStreamError } from './stream-error.js'

export { FRAME_KIND_DATA, encodeDataFrame } from './data-frame.js'

/** The bounds of one KLP connection (the transport's options, resolved; see `Libp2pTransportInit`). */
export interface ConnectionLimits {
  maxFrameSize: number
  maxInboundBufferBytes: number
  maxOutboundBufferBytes: number
  sendStallTimeoutMs: number
  closeTimeoutMs: number
  /** Bytes the libp2p stream may buffer while paused (at least the muxer's largest stream window). */
  streamReadBufferBytes: number
}

/** What the transport hands a new KLP connection. */
export interface Libp2pConnectionInit {
  id: string
  stream: Stream
  direction: ConnectionDirection
  remotePeer: string
  remoteAddr: string
  limits: ConnectionLimits
  clock: Clock
  logger?: Logger
  /** On a limited (relayed) connection: throws when a frame would pass the relay's data limit (limited.ts). */
  budget?: ((bytes: number, held: number) => void) | undefined
}

/** Marker for a clean end (not surfaced to callers as an error). */
class LocalClose extends Error {}

/**
 * A KLP connection of the libp2p transport: one `/kos/klp/1.0.0` stream over a Noise-authenticated,
 * Yamux-multiplexed libp2p connection, carrying application frames of at most `maxFrameSize`
 * bytes. `remotePeer` is the did:key of the PeerId Noise proved. Reading (async iteration) is
 * bounded by `maxInboundBufferBytes` with backpressure; `send()` is bounded by
 * `maxOutboundBufferBytes` (SendBufferFullError) and aborts a peer that stops reading
 * (SlowPeerError after `sendStallTimeoutMs`). Created by the transport's `dial()` and `listen()`.
 */
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
  private readonly budget: ((bytes: number, held: number) => void) | undefined
  private state: ConnectionStatus = 'open'
  private error: Error | undefined
  private resolveClosed!: () => void
  private closePromise: Promise<void> | undefined

  // inbound
  private readonly inbound: InboundQueue
  private inputEnded = false

  // outbound
  private readonly turns = new WriteTurns(() => this.stream.writableNeedsDrain)
  private waitingBytes = 0
  /** The batch of this tick and the stream writes. */
  private readonly out: OutboundWriter
  /** The send stall deadline. */
  private readonly stall: SendStallWatch

  constructor(init: Libp2pConnectionInit) {
    this.id = init.id
    this.stream = init.stream
    this.direction = init.direction
    this.remotePeer = init.remotePeer
    this.remoteAddr = init.remoteAddr
    this.limits = init.limits
    this.clock = init.clock
    this.log = init.logger
    this.budget = init.budget
    this.decoder = new FrameDecoder({ maxFrameSize: init.limits.maxFrameSize + FRAME_HEADER_LENGTH })
    this.inbound = new InboundQueue(init.stream, init.limits.maxInboundBufferBytes)
    this.out = new OutboundWriter(init.stream, {
      failed: () => this.error !== undefined,
      fail: (err) => { this.fail(err) },
      held: () => { this.stall.arm() },
    })
    this.stall = new SendStallWatch(init.clock, init.limits.sendStallTimeoutMs, {
      held: () => this.heldBytes(),
      drained: () => this.out.drained,
      failed: () => this.error !== undefined,
      stalled: (ms) => { this.fail(new SlowPeerError(`expected the peer to take some of our ${this.outboundBufferedBytes} outbound bytes within ${ms} ms, got no progress`)) },
    })
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

  /**
   * `open`, then `closing` once `close()` was called, then `closed` (after a clean close, a reset by
   * either side, or a failure such as SlowPeerError; see `closeError`).
   */
  get status(): ConnectionStatus {
    return this.state
  }

  /** Bytes of decoded frames waiting for the consumer. */
  get inboundBufferedBytes(): number {
    return this.inbound.bytes
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
    return this.waitingBytes + this.out.batchBytes + this.stream.writeBufferLength
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
      this.inbound.push(Buffer.isBuffer(b) ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : b)
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
    if (this.inputEnded || this.state === 'closed') this.inbound.endIfDrained()
  }

  private next(): Promise<IteratorResult<Uint8Array>> {
    const f = this.inbound.shift()
    if (f !== undefined) return Promise.resolve({ done: false, value: f })
    if (this.error !== undefined && !(this.error instanceof LocalClose)) return Promise.reject(this.error)
    if (this.inputEnded || this.state === 'closed') return Promise.resolve({ done: true, value: undefined })
    return this.inbound.wait()
  }

  /**
   * The received frames, in order, each a view of its bytes (valid until the consumer drops it).
   * Ends after the remote closed its side and every frame was read; throws the error that ended
   * the connection otherwise. One reader at a time (a second concurrent `next()` rejects with
   * InvalidParametersError); leaving a `for await` loop early does not close the connection.
   */
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
    if (held > 0 && held + cost > max && this.out.batchBytes > 0) {
      // the batch only waits for the end of the tick: hand it to the stream now (the muxer takes
      // what its window allows, so those bytes are no longer held) and count again
      this.out.flush()
      if (this.error !== undefined) throw this.closedError()
      held = this.heldBytes()
    }
    if (held > 0 && held + cost > max) {
      throw new SendBufferFullError(`expected at most ${this.limits.maxOutboundBufferBytes} outbound bytes on the connection, got ${held} held and a frame of ${frame.byteLength}`)
    }
    // a limited connection: refused here rather than cut by the relay
    this.budget?.(cost, held + this.waitingBytes)
    const wire = encodeDataFrame(frame) // a copy: the caller may reuse its buffer at once
    if (this.turns.busy) {
      this.waitingBytes += cost
      this.stall.arm()
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
   * Adds one encoded frame to the batch of this tick (outbound.ts). Throws ConnectionClosedError when
   * the stream refused bytes (the connection is then failed).
   */
  private enqueue(wire: Uint8Array): void {
    this.out.enqueue(wire)
    if (this.error !== undefined) throw this.closedError()
  }

  private closedError(): Error {
    if (this.error !== undefined && !(this.error instanceof LocalClose)) {
      return new ConnectionClosedError(`connection is closed: ${this.error.message}`, { cause: this.error })
    }
    return new ConnectionClosedError(`expected an open connection, got status ${this.state}`)
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
        this.out.flush()
        // we may stop reading now: never keep the remote blocked on our account
        this.inbound.release()
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
    this.inbound.clear(err)
    this.out.clear()
    const closedErr = this.closedError()
    this.turns.rejectAll(closedErr)
    this.stall.stop()
    try { this.stream.abort(err) } catch { /* already closed */ }
    this.finish()
  }

  private finish(): void {
    if (this.finished) return
    this.finished = true
    this.stall.stop()
    this.state = 'closed'
    this.out.clear()
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
