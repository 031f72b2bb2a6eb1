/**
 * One TCP connection: handshake I/O over length-prefixed frames, then one encrypted record per
 * frame. Inbound records go to a bounded queue (socket paused when full, resumed when drained);
 * `send()` waits for 'drain' in FIFO order so the socket's write buffer never grows past one frame
 * over its high-water mark.
 */
import type { Socket } from 'node:net'
import {
  AbortError,
  ConnectionClosedError,
  InvalidParametersError,
  LimitExceededError,
  ReplayError,
  type AbortOptions,
  type Connection,
  type ConnectionDirection,
  type ConnectionStatus,
  type Logger,
} from '@kos-mesh/interface'
import { FRAME_HEADER_LENGTH, FRAME_MAGIC, FRAME_VERSION, FrameDecoder, FrameTooLargeError, encodeFrame, type Frame } from '@kos-mesh/klp-codec'
import { HandshakeError } from '@kos-mesh/did-security'
import { BadRecordError, ConnectionResetError, InvalidRecordError, KeepAliveTimeoutError, ReplayedRecordError } from './errors.js'
import type { HandshakeIo, SecureSession } from './security.js'

/** klp-codec frame kind of a handshake message (application range 0x80..0xff). */
export const FRAME_KIND_HANDSHAKE = 0x80
/** klp-codec frame kind of an encrypted record. */
export const FRAME_KIND_RECORD = 0x81

/** Record kinds: first plaintext byte of every encrypted record. */
const KIND_DATA = 0
const KIND_PING = 1
const KIND_PONG = 2
const KIND_CLOSE = 3

/** Extra bytes a record may carry over its plaintext (session overhead: nonce/seq, tag...). */
export const RECORD_OVERHEAD_ALLOWANCE = 256
/** Handshake messages queued unread (the socket is paused while any is queued). */
const MAX_QUEUED_HANDSHAKE_FRAMES = 4
/** Bytes held undecoded between the handshake frames and establish() (about one socket read). */
const MAX_HELD_BYTES = 256 * 1024

export interface ConnectionLimits {
  maxFrameSize: number
  maxInboundBufferBytes: number
  keepAliveIntervalMs: number
  maxMissedPongs: number
  closeTimeoutMs: number
}

interface Waiter {
  resolve(): void
  reject(err: Error): void
}

export interface TcpConnectionInit {
  id: string
  socket: Socket
  direction: ConnectionDirection
  remoteAddr: string
  maxHandshakeFrameSize: number
  limits: ConnectionLimits
  logger?: Logger
}

export class TcpConnection implements Connection {
  readonly id: string
  readonly direction: ConnectionDirection
  readonly remoteAddr: string
  readonly closed: Promise<void>

  private readonly socket: Socket
  private readonly decoder: FrameDecoder
  private readonly maxHandshakeFrameSize: number
  private readonly maxWireFrame: number
  private readonly limits: ConnectionLimits
  private readonly log: Logger | undefined
  private session: SecureSession | undefined
  private state: 'handshake' | ConnectionStatus = 'handshake'
  private error: Error | undefined

  // handshake phase
  private readonly hsFrames: Uint8Array[] = []
  /** Pre-scan of frame headers during the handshake (see gateHandshake). */
  private readonly hsHeader = new Uint8Array(FRAME_HEADER_LENGTH)
  private hsHeaderFill = 0
  private hsBodyLeft = 0
  /** Bytes after the handshake frames, held undecoded until establish(). */
  private held: Uint8Array[] | undefined
  private heldBytes = 0
  private hsPaused = false
  private hsReader: { resolve(f: Uint8Array): void; reject(e: Error): void } | undefined

  // inbound records
  private readonly queue: Uint8Array[] = []
  private queueHead = 0
  private queuedBytes = 0
  private pausedForBackpressure = false
  private remoteClosed = false
  private reader: { resolve(r: IteratorResult<Uint8Array>): void; reject(e: Error): void } | undefined

  // outbound
  private readonly writers: Waiter[] = []
  private writerRunning = false

  // keep-alive
  private keepAliveTimer: ReturnType<typeof setInterval> | undefined
  private receivedSinceTick = false
  private awaitingPong = false
  private missedPongs = 0

  private closePromise: Promise<void> | undefined
  private resolveClosed!: () => void

  constructor(init: TcpConnectionInit) {
    this.id = init.id
    this.socket = init.socket
    this.direction = init.direction
    this.remoteAddr = init.remoteAddr
    this.limits = init.limits
    this.log = init.logger
    this.maxHandshakeFrameSize = init.maxHandshakeFrameSize
    this.maxWireFrame = FRAME_HEADER_LENGTH + Math.max(init.limits.maxFrameSize + 1 + RECORD_OVERHEAD_ALLOWANCE, init.maxHandshakeFrameSize)
    this.decoder = new FrameDecoder({ maxFrameSize: this.maxWireFrame })
    this.closed = new Promise((resolve) => { this.resolveClosed = resolve })

    const s = this.socket
    s.setNoDelay(true)
    s.on('data', (chunk: Buffer) => { this.onData(chunk) })
    s.on('end', () => { this.onEnd() })
    s.on('error', (err) => { this.fail(new ConnectionClosedError(`socket error: ${err.message}`, { cause: err })) })
    s.on('close', () => { this.onSocketClose() })
    s.on('drain', () => { this.pumpWriters() })
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

  /** Bytes of decoded records waiting for the consumer. */
  get inboundBufferedBytes(): number {
    return this.queuedBytes
  }

  /** I/O for the handshake: each `write` sends one frame, each `read` returns one frame. */
  handshakeIo(): HandshakeIo {
    return {
      write: (msg: Uint8Array) => {
        if (this.error !== undefined) throw this.error
        if (msg.byteLength > this.maxHandshakeFrameSize) {
          throw new FrameTooLargeError(`expected a handshake message of at most ${this.maxHandshakeFrameSize} bytes, got ${msg.byteLength}`)
        }
        this.socket.write(encodeFrame(msg, { kind: FRAME_KIND_HANDSHAKE, maxFrameSize: this.maxWireFrame }))
      },
      read: (options?: AbortOptions) => {
        if (this.error !== undefined) return Promise.reject(this.error)
        const f = this.hsFrames.shift()
        if (f !== undefined) return Promise.resolve(f)
        this.hsResume()
        if (this.hsReader !== undefined) return Promise.reject(new InvalidParametersError('expected one pending handshake read, got two'))
        return new Promise<Uint8Array>((resolve, reject) => {
          const signal = options?.signal
          const onAbort = (): void => {
            this.hsReader = undefined
            reject(new AbortError(undefined, { cause: signal?.reason }))
          }
          if (signal?.aborted === true) { onAbort(); return }
          signal?.addEventListener('abort', onAbort, { once: true })
          this.hsReader = {
            resolve: (v) => { signal?.removeEventListener('abort', onAbort); resolve(v) },
            reject: (e) => { signal?.removeEventListener('abort', onAbort); reject(e) },
          }
        })
      },
    }
  }

  /** Switches from the handshake to encrypted records. Frames already received become records. */
  establish(session: SecureSession): void {
    if (this.error !== undefined) throw this.error
    if (this.hsFrames.length > 0) {
      const err = new InvalidRecordError(`expected no handshake message after the handshake, got ${this.hsFrames.length}`)
      this.fail(err)
      throw err
    }
    this.session = session
    this.state = 'open'
    const held = this.held
    this.held = undefined
    if (held !== undefined) for (const chunk of held) this.onData(chunk)
    if (this.error !== undefined) throw this.error
    this.hsResume()
    if (this.limits.keepAliveIntervalMs > 0 && this.limits.keepAliveIntervalMs < Infinity) {
      this.keepAliveTimer = setInterval(() => { this.keepAliveTick() }, this.limits.keepAliveIntervalMs)
      this.keepAliveTimer.unref()
    }
    if (session.expiresAt !== undefined && Number.isFinite(session.expiresAt)) {
      // close a little before the keys expire, so the close record can still be sealed and opened
      const left = session.expiresAt - Date.now()
      const ms = Math.max(0, left - Math.min(1_000, left / 10))
      if (ms < 2 ** 31 - 1) {
        const t = setTimeout(() => { void this.close().catch(() => {}) }, ms)
        t.unref()
        void this.closed.then(() => { clearTimeout(t) })
      }
    }
  }

  // ------------------------------------------------------------------ inbound

  private onData(chunk: Uint8Array): void {
    if (this.error !== undefined) return
    this.receivedSinceTick = true
    try {
      if (this.state === 'handshake') {
        chunk = this.gateHandshake(chunk)
        if (chunk.byteLength === 0) return
      }
      const frames = this.decoder.push(chunk)
      for (let i = 0; i < frames.length; i++) {
        if (this.error !== undefined) return
        const frame = frames[i] as Frame
        if (this.state === 'handshake') this.onHandshakeFrame(frame)
        else if (frame.kind === FRAME_KIND_RECORD) this.onRecord(frame.body)
        else throw new InvalidRecordError(`expected frame kind 0x${FRAME_KIND_RECORD.toString(16)} after the handshake, got 0x${frame.kind.toString(16)}`)
      }
    } catch (err) {
      this.fail(err as Error)
    }
  }

  /**
   * Before authentication only handshake frames (each <= maxHandshakeFrameSize) reach the decoder.
   * The gate reads frame headers itself; from the first header of another kind on (the peer's first
   * records, sent right after its last handshake message), bytes are held undecoded and the socket is
   * paused until establish(). So an unauthenticated peer can make us buffer one handshake frame and
   * about one socket read, never a large frame.
   */
  private gateHandshake(chunk: Uint8Array): Uint8Array {
    if (this.held !== undefined) {
      this.heldBytes += chunk.byteLength
      if (this.heldBytes > MAX_HELD_BYTES) throw new HandshakeError(`expected at most ${MAX_HELD_BYTES} bytes before the handshake completes, got ${this.heldBytes}`)
      this.held.push(chunk)
      this.hsPause()
      return EMPTY
    }
    const n = chunk.byteLength
    let pos = 0
    while (pos < n) {
      if (this.hsBodyLeft > 0) {
        const k = Math.min(this.hsBodyLeft, n - pos)
        pos += k
        this.hsBodyLeft -= k
        continue
      }
      const start = pos
      const k = Math.min(FRAME_HEADER_LENGTH - this.hsHeaderFill, n - pos)
      this.hsHeader.set(chunk.subarray(pos, pos + k), this.hsHeaderFill)
      this.hsHeaderFill += k
      pos += k
      if (this.hsHeaderFill < FRAME_HEADER_LENGTH) break
      this.hsHeaderFill = 0
      const h = this.hsHeader
      // not a frame at all: let the decoder reject it with its typed error
      if (h[0] !== FRAME_MAGIC || h[1] !== FRAME_VERSION) return chunk
      const len = new DataView(h.buffer, h.byteOffset, FRAME_HEADER_LENGTH).getUint32(4)
      if (h[2] !== FRAME_KIND_HANDSHAKE) {
        this.held = [chunk.subarray(start)]
        this.heldBytes = n - start
        this.hsPause()
        return chunk.subarray(0, start)
      }
      if (len > this.maxHandshakeFrameSize) {
        throw new FrameTooLargeError(`expected a handshake message of at most ${this.maxHandshakeFrameSize} bytes, got a header announcing ${len}`)
      }
      this.hsBodyLeft = len
    }
    return chunk
  }

  private onHandshakeFrame(frame: Frame): void {
    if (frame.kind !== FRAME_KIND_HANDSHAKE) {
      throw new HandshakeError(`expected frame kind 0x${FRAME_KIND_HANDSHAKE.toString(16)} during the handshake, got 0x${frame.kind.toString(16)}`)
    }
    if (this.hsReader !== undefined) {
      const r = this.hsReader
      this.hsReader = undefined
      r.resolve(frame.body.slice())
      return
    }
    if (this.hsFrames.length >= MAX_QUEUED_HANDSHAKE_FRAMES) {
      throw new HandshakeError(`expected at most ${MAX_QUEUED_HANDSHAKE_FRAMES} unread handshake messages, got more`)
    }
    this.hsFrames.push(frame.body.slice())
    // nobody is reading: stop reading the socket until the handshake asks for more
    this.hsPause()
  }

  private hsPause(): void {
    if (!this.hsPaused) {
      this.hsPaused = true
      this.socket.pause()
    }
  }

  private hsResume(): void {
    if (this.state === 'handshake' && this.held !== undefined) return // held until establish()
    if (this.hsPaused) {
      this.hsPaused = false
      if (!this.pausedForBackpressure && this.error === undefined) this.socket.resume()
    }
  }

  private onRecord(record: Uint8Array): void {
    const session = this.session as SecureSession
    let plain: Uint8Array
    try {
      plain = session.decrypt(record)
    } catch (err) {
      throw mapRecordError(err)
    }
    if (plain.byteLength < 1) throw new InvalidRecordError('expected a record with a kind byte, got an empty record')
    if (plain.byteLength > this.limits.maxFrameSize + 1) {
      throw new FrameTooLargeError(`expected a record of at most ${this.limits.maxFrameSize} bytes, got ${plain.byteLength - 1}`)
    }
    const kind = plain[0]
    if (this.remoteClosed) throw new InvalidRecordError(`expected no record after the close record, got kind ${kind ?? -1}`)
    switch (kind) {
      case KIND_DATA: {
        const data = plain.subarray(1)
        if (this.reader !== undefined) {
          const r = this.reader
          this.reader = undefined
          r.resolve({ done: false, value: data })
          return
        }
        if (this.state === 'closing' && this.queuedBytes >= this.limits.maxInboundBufferBytes) {
          return // closing and the consumer is not reading: drop rather than grow
        }
        this.queue.push(data)
        this.queuedBytes += data.byteLength
        if (this.queuedBytes >= this.limits.maxInboundBufferBytes && !this.pausedForBackpressure) {
          this.pausedForBackpressure = true
          this.socket.pause()
        }
        return
      }
      case KIND_PING: {
        if (plain.byteLength > 65) throw new InvalidRecordError(`expected a ping of at most 64 bytes, got ${plain.byteLength - 1}`)
        // a peer that floods pings without reading pongs must not grow our write buffer
        if (!this.socket.writableNeedDrain && this.state === 'open') this.writeRecord(KIND_PONG, plain.subarray(1))
        return
      }
      case KIND_PONG:
        this.awaitingPong = false
        this.missedPongs = 0
        return
      case KIND_CLOSE:
        this.remoteClosed = true
        this.endReader()
        void this.close().catch(() => {})
        return
      default:
        throw new InvalidRecordError(`expected a record kind in 0..3, got ${kind ?? -1}`)
    }
  }

  private onEnd(): void {
    if (this.error !== undefined) return
    try {
      this.decoder.end() // TruncatedInputError when the stream stops inside a frame
    } catch (err) {
      this.fail(err as Error)
      return
    }
    if (this.state === 'handshake') {
      this.fail(new HandshakeError('expected a handshake message, got end of stream'))
      return
    }
    if (!this.remoteClosed) {
      this.fail(new ConnectionResetError('expected a close record before end of stream, got end of stream'))
    }
  }

  private onSocketClose(): void {
    if (this.error === undefined && !this.remoteClosed && this.state !== 'closing') {
      this.fail(new ConnectionResetError('the socket closed without a close record'))
    }
    this.finish()
  }

  private endReader(): void {
    if (this.reader !== undefined && this.queueHead >= this.queue.length) {
      const r = this.reader
      this.reader = undefined
      r.resolve({ done: true, value: undefined })
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => this.next(),
      return: async () => ({ done: true, value: undefined }),
    }
  }

  private next(): Promise<IteratorResult<Uint8Array>> {
    if (this.queueHead < this.queue.length) {
      const value = this.queue[this.queueHead] as Uint8Array
      this.queue[this.queueHead++] = EMPTY
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue.splice(0, this.queueHead)
        this.queueHead = 0
      }
      this.queuedBytes -= value.byteLength
      if (this.pausedForBackpressure && this.queuedBytes <= this.limits.maxInboundBufferBytes / 2) {
        this.pausedForBackpressure = false
        if (this.error === undefined) this.socket.resume()
      }
      return Promise.resolve({ done: false, value })
    }
    if (this.error !== undefined) {
      if (this.error instanceof LocalClose) return Promise.resolve({ done: true, value: undefined })
      return Promise.reject(this.error)
    }
    if (this.remoteClosed || this.state === 'closed') return Promise.resolve({ done: true, value: undefined })
    if (this.reader !== undefined) return Promise.reject(new InvalidParametersError('expected one pending read, got two'))
    return new Promise((resolve, reject) => { this.reader = { resolve, reject } })
  }

  // ------------------------------------------------------------------ outbound

  async send(frame: Uint8Array, options: AbortOptions = {}): Promise<void> {
    if (!(frame instanceof Uint8Array)) {
      throw new InvalidParametersError(`expected frame to be a Uint8Array, got ${frame === null ? 'null' : typeof frame}`)
    }
    if (frame.byteLength > this.limits.maxFrameSize) {
      throw new FrameTooLargeError(`expected a frame of at most ${this.limits.maxFrameSize} bytes, got ${frame.byteLength}`)
    }
    if (this.state !== 'open') throw this.closedError()
    if (options.signal?.aborted === true) throw new AbortError(undefined, { cause: options.signal.reason })
    if (this.writerRunning || this.writers.length > 0 || this.socket.writableNeedDrain) {
      const copy = frame.slice() // the caller may reuse its buffer while we wait
      await this.waitTurn(options.signal)
      try {
        if (this.error !== undefined) throw this.closedError()
        this.writeRecord(KIND_DATA, copy)
      } finally {
        this.releaseTurn()
      }
      return
    }
    this.writeRecord(KIND_DATA, frame)
  }

  private closedError(): Error {
    if (this.error !== undefined && !(this.error instanceof LocalClose)) {
      return new ConnectionClosedError(`connection is closed: ${this.error.message}`, { cause: this.error })
    }
    return new ConnectionClosedError(`expected an open connection, got status ${this.status}`)
  }

  private writeRecord(kind: number, payload: Uint8Array): void {
    const session = this.session as SecureSession
    const n = payload.byteLength + 1
    // the plaintext is only read by encrypt(), synchronously: reuse one scratch buffer for it
    let plain: Uint8Array
    if (n <= SCRATCH_BYTES) {
      if (this.scratch.byteLength < n) this.scratch = new Uint8Array(Math.min(SCRATCH_BYTES, Math.max(n, this.scratch.byteLength * 2, 1024)))
      plain = this.scratch.subarray(0, n)
    } else {
      plain = new Uint8Array(n)
    }
    plain[0] = kind
    plain.set(payload, 1)
    let record: Uint8Array
    try {
      record = session.encrypt(plain)
    } catch (err) {
      // the session refused (expired, closed): the connection cannot go on
      this.fail(err as Error)
      throw err
    }
    if (record.byteLength < SPLIT_WRITE_BYTES) {
      // coalesce the small records written in this tick into one writev (one syscall, not one per frame)
      if (!this.corked) {
        this.corked = true
        this.socket.cork()
        process.nextTick(this.uncork)
      }
      this.socket.write(encodeFrame(record, { kind: FRAME_KIND_RECORD, maxFrameSize: this.maxWireFrame }))
      return
    }
    // large record: header and body as one writev without copying the body, flushed right away
    const header = encodeFrame(EMPTY, { kind: FRAME_KIND_RECORD })
    new DataView(header.buffer, header.byteOffset, header.byteLength).setUint32(4, record.byteLength)
    if (this.corked) {
      this.socket.write(header)
      this.socket.write(record)
    } else {
      this.socket.cork()
      this.socket.write(header)
      this.socket.write(record)
      this.socket.uncork()
    }
  }

  private scratch = new Uint8Array(0)
  private corked = false
  private readonly uncork = (): void => {
    this.corked = false
    this.socket.uncork()
  }

  /** Waits for this caller's turn to write: FIFO, and only while the socket buffer is below its mark. */
  private waitTurn(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.writers.indexOf(waiter)
        if (i >= 0) this.writers.splice(i, 1)
        reject(new AbortError(undefined, { cause: signal?.reason }))
      }
      const waiter: Waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort)
          this.writerRunning = true
          resolve()
        },
        reject: (e) => { signal?.removeEventListener('abort', onAbort); reject(e) },
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.writers.push(waiter)
      this.pumpWriters()
    })
  }

  /** Called by the writer that got its turn, once it has written (or given up). */
  private releaseTurn(): void {
    this.writerRunning = false
    this.pumpWriters()
  }

  private pumpWriters(): void {
    if (this.writerRunning || this.socket.writableNeedDrain) return
    const w = this.writers.shift()
    w?.resolve()
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
    // when we stopped reading (backpressure) or cannot write, silence is not the peer's fault
    const blocked = this.pausedForBackpressure || this.socket.writableNeedDrain
    if (this.awaitingPong && !blocked) {
      this.missedPongs++
      if (this.missedPongs >= this.limits.maxMissedPongs) {
        this.fail(new KeepAliveTimeoutError(`expected a pong within ${this.limits.maxMissedPongs} keep-alive intervals, got none`))
        return
      }
    }
    if (!blocked) {
      this.awaitingPong = true
      try { this.writeRecord(KIND_PING, PING_BODY) } catch { /* writeRecord failed the connection */ }
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
    this.closePromise = (async () => {
      const signal = options.signal
      const timer = setTimeout(() => { this.fail(new ConnectionClosedError(`graceful close did not finish within ${this.limits.closeTimeoutMs} ms`)) }, this.limits.closeTimeoutMs)
      timer.unref()
      const onAbort = (): void => { this.fail(new AbortError('close aborted', { cause: signal?.reason })) }
      signal?.addEventListener('abort', onAbort, { once: true })
      try {
        if (signal?.aborted === true) onAbort()
        // pending senders go first, then the close record, then FIN
        let turn = false
        if (this.writerRunning || this.writers.length > 0 || this.socket.writableNeedDrain) {
          turn = await this.waitTurn().then(() => true, () => false)
        }
        try {
          if (this.error === undefined) {
            try { this.writeRecord(KIND_CLOSE, EMPTY) } catch { /* writeRecord failed the connection */ }
            if (this.error === undefined) this.socket.end()
            // the local side may stop reading: do not keep the socket paused on our account
            if (this.pausedForBackpressure) { this.pausedForBackpressure = false; this.socket.resume() }
          }
        } finally {
          if (turn) this.releaseTurn()
        }
        await this.closed
      } finally {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
      }
    })()
    return this.closePromise
  }

  abort(err: Error): void {
    this.fail(err instanceof Error ? err : new ConnectionClosedError(String(err)))
  }

  /** Tears the connection down with `err`: queues dropped, waiters rejected, socket destroyed. */
  private fail(err: Error): void {
    if (this.error !== undefined) return
    this.error = err
    if (!(err instanceof LocalClose)) this.log?.debug('tcp connection aborted', { id: this.id, error: err.name, message: err.message })
    this.state = 'closed'
    this.queue.length = 0
    this.queueHead = 0
    this.queuedBytes = 0
    this.hsFrames.length = 0
    this.held = undefined
    if (this.hsReader !== undefined) {
      const r = this.hsReader
      this.hsReader = undefined
      r.reject(err)
    }
    try { this.session?.close?.() } catch { /* best effort */ }
    if (this.reader !== undefined) {
      const r = this.reader
      this.reader = undefined
      if (err instanceof LocalClose) r.resolve({ done: true, value: undefined })
      else r.reject(err)
    }
    const closedErr = this.closedError()
    for (const w of this.writers.splice(0)) w.reject(closedErr)
    if (this.keepAliveTimer !== undefined) clearInterval(this.keepAliveTimer)
    this.socket.destroy()
    if (this.socket.destroyed && this.socket.closed) this.finish()
  }

  private finish(): void {
    if (this.keepAliveTimer !== undefined) clearInterval(this.keepAliveTimer)
    try { this.session?.close?.() } catch { /* best effort */ }
    if (this.error === undefined) {
      this.error = new LocalClose('closed')
      this.endReader()
    }
    this.state = 'closed'
    for (const w of this.writers.splice(0)) w.reject(this.closedError())
    this.resolveClosed()
  }

  /** The error that ended the connection, if it ended with one. */
  get closeError(): Error | undefined {
    return this.error instanceof LocalClose ? undefined : this.error
  }
}

/** Marker for a clean end (not surfaced to callers as an error). */
class LocalClose extends Error {}

const EMPTY = new Uint8Array(0)
/** Records at least this large are written as header + body (no copy) instead of one frame buffer. */
const SPLIT_WRITE_BYTES = 16 * 1024
/** Largest plaintext assembled in the reusable per-connection scratch buffer. */
const SCRATCH_BYTES = 64 * 1024 + 1
const PING_BODY = new Uint8Array(8)

function mapRecordError(err: unknown): Error {
  const e = err as { name?: unknown; code?: unknown; message?: unknown }
  const msg = typeof e?.message === 'string' ? e.message : String(err)
  if (err instanceof ReplayError || e?.name === 'ReplayError' || e?.code === 'ERR_REPLAY' || e?.name === 'ReplayedRecordError') {
    return new ReplayedRecordError(`record replayed: ${msg}`, { cause: err })
  }
  // size limits keep their own type (LimitExceededError family)
  if (err instanceof LimitExceededError) return err
  return new BadRecordError(`record rejected: ${msg}`, { cause: err })
}
