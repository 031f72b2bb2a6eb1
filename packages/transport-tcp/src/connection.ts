/**
 * One TCP connection: handshake I/O over length-prefixed frames, then one encrypted record per
 * frame. Inbound records go to a bounded queue (socket paused when full, resumed when drained);
 * data records that arrive while nobody reads wait there sealed and are decrypted when read, so a
 * consumer that stops reading a peer also stops spending CPU on it;
 * `send()` waits for 'drain' in FIFO order so the socket's write buffer never grows past one frame
 * over its high-water mark. Outbound bytes (frames waiting for their turn plus the socket's write
 * buffer) are bounded by `maxOutboundBufferBytes` (`send()` rejects at once beyond it), and a peer
 * that lets them sit undrained for `sendStallTimeoutMs` is aborted with `SlowPeerError`.
 *
 * This module holds the connection's state, its socket events, establish(), keep-alive and close;
 * the handshake phase is in handshake.ts, the read path in inbound.ts, the write path in outbound.ts.
 */
import type { Socket } from 'node:net'
import {
  AbortError,
  ConnectionClosedError,
  type AbortOptions,
  type Connection,
  type ConnectionDirection,
  type Clock,
  type ConnectionStatus,
  type Logger,
  every,
} from '@kos-mesh/interface'
import { FRAME_HEADER_LENGTH, FrameDecoder, TruncatedInputError, type Frame } from '@kos-mesh/klp-codec'
import { HandshakeError } from '@kos-mesh/did-security'
import { ConnectionResetError, InvalidRecordError, KeepAliveTimeoutError } from './errors.js'
import { HandshakePhase, type HandshakeHost } from './handshake.js'
import { RecordReader, type InboundHost } from './inbound.js'
import { RecordWriter, type OutboundHost } from './outbound.js'
import { EMPTY, FRAME_KIND_RECORD, KIND_CLOSE, KIND_PING, LocalClose, RECORD_OVERHEAD_ALLOWANCE, type ConnectionLimits } from './record.js'
import type { HandshakeIo, SecureSession } from './security.js'

export interface TcpConnectionInit {
  id: string
  socket: Socket
  direction: ConnectionDirection
  remoteAddr: string
  maxHandshakeFrameSize: number
  limits: ConnectionLimits
  /** Time and timers (keep-alive, stall deadline, close timeout, session expiry, handshake progress). */
  clock: Clock
  logger?: Logger
  /** Called once, when the first complete handshake message has arrived from the remote. */
  onFirstHandshakeMessage?: () => void
}

export class TcpConnection implements Connection, HandshakeHost, InboundHost, OutboundHost {
  readonly id: string
  /** `send()` encrypts the frame before it returns or copies it to wait: callers may reuse the buffer once it settled. */
  readonly copiesOnSend = true
  readonly direction: ConnectionDirection
  readonly remoteAddr: string
  readonly closed: Promise<void>

  private readonly socket: Socket
  private readonly decoder: FrameDecoder
  private readonly limits: ConnectionLimits
  private readonly log: Logger | undefined
  private readonly clock: Clock
  // the state below and the parts are internal: read by the handshake phase, the reader and the writer
  /** @internal */
  session: SecureSession | undefined
  /** @internal */
  state: 'handshake' | ConnectionStatus = 'handshake'
  /** @internal */
  error: Error | undefined

  /** @internal handshake phase (handshake.ts) */
  readonly hs: HandshakePhase
  /** @internal read path (inbound.ts) */
  readonly rx: RecordReader
  /** @internal write path (outbound.ts) */
  readonly tx: RecordWriter

  // keep-alive
  /** Stops the keep-alive loop. */
  private stopKeepAlive: (() => void) | undefined
  private receivedSinceTick = false
  /** @internal */
  awaitingPong = false
  /** @internal */
  missedPongs = 0

  private closePromise: Promise<void> | undefined
  private resolveClosed!: () => void

  constructor(init: TcpConnectionInit) {
    this.id = init.id
    this.socket = init.socket
    this.direction = init.direction
    this.remoteAddr = init.remoteAddr
    this.limits = init.limits
    this.log = init.logger
    this.clock = init.clock
    const maxWireFrame = FRAME_HEADER_LENGTH + Math.max(init.limits.maxFrameSize + 1 + RECORD_OVERHEAD_ALLOWANCE, init.maxHandshakeFrameSize)
    this.hs = new HandshakePhase(this, this.socket, this.clock, init.maxHandshakeFrameSize, maxWireFrame, init.onFirstHandshakeMessage)
    this.rx = new RecordReader(this, this.socket, this.limits, maxWireFrame)
    this.tx = new RecordWriter(this, this.socket, this.limits, this.clock)
    this.decoder = new FrameDecoder({ maxFrameSize: maxWireFrame })
    this.closed = new Promise((resolve) => { this.resolveClosed = resolve })

    const s = this.socket
    s.setNoDelay(true)
    s.on('data', (chunk: Buffer) => { this.onData(chunk) })
    s.on('end', () => { this.onEnd() })
    s.on('error', (err) => { this.fail(new ConnectionClosedError(`socket error: ${err.message}`, { cause: err })) })
    s.on('close', () => { this.onSocketClose() })
    s.on('drain', () => { this.tx.turns.pump() })
    if (s.destroyed) queueMicrotask(() => { this.onSocketClose() })
  }

  get remotePeer(): string {
    return this.session?.remoteDid ?? ''
  }

  get localPeer(): string {
    return this.session?.localDid ?? ''
  }

  get status(): ConnectionStatus {
    return this.state === 'handshake' ? 'open' : this.state
  }

  /** Whether a complete handshake message has arrived from the remote (inbound slot accounting). */
  get receivedHandshakeMessage(): boolean {
    return this.hs.hsReceived
  }

  /** Complete handshake messages received from the remote so far. */
  get handshakeMessages(): number {
    return this.hs.hsMessages
  }

  /**
   * Clock time (ms) of the last handshake progress: the socket was accepted, a complete handshake
   * message arrived, or we wrote one (the peer owes the next one from then on).
   */
  get handshakeProgressAt(): number {
    return this.hs.hsProgressAt
  }

  /** Bytes of decoded records waiting for the consumer. */
  get inboundBufferedBytes(): number {
    return this.rx.queuedBytes
  }

  /**
   * Bytes held on the way out: copies of frames waiting for their turn (each counted with
   * RECORD_WIRE_OVERHEAD) plus the socket's write buffer. `maxOutboundBufferBytes` bounds it.
   */
  get outboundBufferedBytes(): number {
    if (this.error !== undefined) return 0
    return this.tx.waitingBytes + this.socket.writableLength
  }

  /** I/O for the handshake (see HandshakePhase.handshakeIo). */
  handshakeIo(): HandshakeIo {
    return this.hs.handshakeIo()
  }

  /** Switches from the handshake to encrypted records. Frames already received become records. */
  establish(session: SecureSession): void {
    if (this.error !== undefined) throw this.error
    if (this.hs.hsFrames.length > 0) {
      const err = new InvalidRecordError(`expected no handshake message after the handshake, got ${this.hs.hsFrames.length}`)
      this.fail(err)
      throw err
    }
    this.session = session
    this.state = 'open'
    const held = this.hs.held
    this.hs.held = undefined
    if (held !== undefined) for (const chunk of held) this.onData(chunk)
    if (this.error !== undefined) throw this.error
    this.hs.hsResume()
    if (this.limits.keepAliveIntervalMs > 0 && this.limits.keepAliveIntervalMs < Infinity) {
      this.stopKeepAlive = every(this.clock, this.limits.keepAliveIntervalMs, () => { this.keepAliveTick() }, { unref: true })
    }
    if (session.expiresAt !== undefined && Number.isFinite(session.expiresAt)) {
      // close a little before the keys expire, so the close record can still be sealed and opened
      const left = session.expiresAt - this.clock.now()
      const ms = Math.max(0, left - Math.min(1_000, left / 10))
      if (ms < 2 ** 31 - 1) {
        const t = this.clock.setTimeout(() => { void this.close().catch(() => {}) }, ms, { unref: true })
        void this.closed.then(() => { this.clock.clearTimeout(t) })
      }
    }
  }

  // ------------------------------------------------------------------ inbound

  private onData(chunk: Uint8Array): void {
    if (this.error !== undefined) return
    this.receivedSinceTick = true
    try {
      if (this.state !== 'handshake') {
        this.rx.onRecordData(chunk)
        return
      }
      chunk = this.hs.gateHandshake(chunk)
      if (chunk.byteLength === 0) return
      const frames = this.decoder.push(chunk)
      for (let i = 0; i < frames.length; i++) {
        if (this.error !== undefined) return
        const frame = frames[i] as Frame
        if (this.state === 'handshake') this.hs.onHandshakeFrame(frame)
        else if (frame.kind === FRAME_KIND_RECORD) this.rx.onRecord(frame.body)
        else throw new InvalidRecordError(`expected frame kind 0x${FRAME_KIND_RECORD.toString(16)} after the handshake, got 0x${frame.kind.toString(16)}`)
      }
    } catch (err) {
      this.fail(err as Error)
    }
  }

  private onEnd(): void {
    if (this.error !== undefined) return
    try {
      this.decoder.end() // TruncatedInputError when the stream stops inside a frame
      const partial = this.rx.rxHeaderFill + this.rx.rxBodyFill
      if (partial > 0) throw new TruncatedInputError(`expected the stream to end on a frame boundary, got ${partial} byte(s) of a partial frame`)
    } catch (err) {
      this.fail(err as Error)
      return
    }
    if (this.state === 'handshake') {
      this.fail(new HandshakeError('expected a handshake message, got end of stream'))
      return
    }
    if (!this.rx.remoteClosed) {
      this.fail(new ConnectionResetError('expected a close record before end of stream, got end of stream'))
    }
  }

  private onSocketClose(): void {
    if (this.error === undefined && !this.rx.remoteClosed && this.state !== 'closing') {
      this.fail(new ConnectionResetError('the socket closed without a close record'))
    }
    this.finish()
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => this.rx.next(),
      return: async () => ({ done: true, value: undefined }),
    }
  }

  // ------------------------------------------------------------------ outbound

  send(frame: Uint8Array, options: AbortOptions = {}): Promise<void> {
    return this.tx.send(frame, options)
  }

  /** @internal */
  closedError(): Error {
    if (this.error !== undefined && !(this.error instanceof LocalClose)) {
      return new ConnectionClosedError(`connection is closed: ${this.error.message}`, { cause: this.error })
    }
    return new ConnectionClosedError(`expected an open connection, got status ${this.status}`)
  }

  // ------------------------------------------------------------------ keep-alive

  private keepAliveTick(): void {
    if (this.state !== 'open') return
    if (this.receivedSinceTick) {
      this.receivedSinceTick = false
      this.awaitingPong = false
      this.missedPongs = 0
      return
    }
    // when we stopped reading (backpressure) or cannot write, silence is not the peer's fault here;
    // a peer that stops draining our writes is caught by the send stall deadline (SlowPeerError)
    const blocked = this.rx.pausedForBackpressure || this.socket.writableNeedDrain
    if (this.awaitingPong && !blocked) {
      this.missedPongs++
      if (this.missedPongs >= this.limits.maxMissedPongs) {
        this.fail(new KeepAliveTimeoutError(`expected a pong within ${this.limits.maxMissedPongs} keep-alive intervals, got none`))
        return
      }
    }
    if (!blocked) {
      this.awaitingPong = true
      try { this.tx.writeRecord(KIND_PING, PING_BODY) } catch { /* writeRecord failed the connection */ }
    }
  }

  // ------------------------------------------------------------------ close

  close(options: AbortOptions = {}): Promise<void> {
    if (this.closePromise !== undefined) return this.closePromise
    if (this.state === 'handshake' || this.state === 'closed') {
      this.fail(new LocalClose('closed locally'))
      return this.closed
    }
    this.state = 'closing'
    // records still sealed are opened now, while the session's keys are valid (a close may come
    // from the session's lifetime); the consumer reads them after the close
    if (this.rx.sealed.count > 0) {
      try {
        this.rx.unsealQueued()
      } catch (err) {
        this.fail(err as Error)
        return this.closed
      }
    }
    this.closePromise = (async () => {
      const signal = options.signal
      const timer = this.clock.setTimeout(() => { this.fail(new ConnectionClosedError(`graceful close did not finish within ${this.limits.closeTimeoutMs} ms`)) }, this.limits.closeTimeoutMs, { unref: true })
      const onAbort = (): void => { this.fail(new AbortError('close aborted', { cause: signal?.reason })) }
      signal?.addEventListener('abort', onAbort, { once: true })
      try {
        if (signal?.aborted === true) onAbort()
        // pending senders go first, then the close record, then FIN
        let turn = false
        if (this.tx.turns.busy) {
          turn = await this.tx.turns.wait().then(() => true, () => false)
        }
        try {
          if (this.error === undefined) {
            try { this.tx.writeRecord(KIND_CLOSE, EMPTY) } catch { /* writeRecord failed the connection */ }
            if (this.error === undefined) this.socket.end()
            // the local side may stop reading: do not keep the socket paused on our account
            if (this.rx.pausedForBackpressure) { this.rx.pausedForBackpressure = false; this.socket.resume() }
          }
        } finally {
          if (turn) this.tx.turns.release()
        }
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

  /** Tears the connection down with `err`: queues dropped, waiters rejected, socket destroyed. */
  fail(err: Error): void {
    if (this.error !== undefined) return
    this.error = err
    if (!(err instanceof LocalClose)) this.log?.debug('tcp connection aborted', { id: this.id, error: err.name, message: err.message })
    this.state = 'closed'
    this.hs.fail(err)
    try { this.session?.close?.() } catch { /* best effort */ }
    this.rx.fail(err)
    const closedErr = this.closedError()
    this.tx.turns.rejectAll(closedErr)
    this.stopTimers()
    this.tx.stallArmed = false
    this.socket.destroy()
    if (this.socket.destroyed && this.socket.closed) this.finish()
  }

  private stopTimers(): void {
    this.stopKeepAlive?.()
    this.stopKeepAlive = undefined
    this.tx.stopStallTimer()
  }

  private finish(): void {
    this.stopTimers()
    try { this.session?.close?.() } catch { /* best effort */ }
    if (this.error === undefined) {
      this.error = new LocalClose('closed')
      this.rx.endReader()
    }
    this.state = 'closed'
    this.tx.turns.rejectAll(this.closedError())
    this.resolveClosed()
  }

  /** The error that ended the connection, if it ended with one. */
  get closeError(): Error | undefined {
    return this.error instanceof LocalClose ? undefined : this.error
  }
}

const PING_BODY = new Uint8Array(8)
