/**
 * One TCP connection: handshake I/O over length-prefixed frames, then one encrypted record per
 * frame. Inbound records go to a bounded queue (socket paused when full, resumed when drained);
 * data records that arrive while nobody reads wait there sealed and are decrypted when read, so a
 * consumer that stops reading a peer also stops spending CPU on it;
 * `send()` waits for 'drain' in FIFO order so the socket's write buffer never grows past one frame
 * over its high-water mark. Outbound bytes (frames waiting for their turn plus the socket's write
 * buffer) are bounded by `maxOutboundBufferBytes` (`send()` rejects at once beyond it), and a peer
 * that lets them sit undrained for `sendStallTimeoutMs` is aborted with `SlowPeerError`.
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
  type Clock,
  type ConnectionStatus,
  type Logger,
  type TimerHandle,
  every,
  WriteTurns,
} from '@kos-mesh/interface'
import {
  FRAME_HEADER_LENGTH, FRAME_MAGIC, FRAME_VERSION, FrameDecoder, FrameTooLargeError, InvalidFrameError, TruncatedInputError, encodeFrame, type Frame,
} from '@kos-mesh/klp-codec'
import { HandshakeError } from '@kos-mesh/did-security'
import { BadRecordError, ConnectionResetError, InvalidRecordError, KeepAliveTimeoutError, ReplayedRecordError, SendBufferFullError, SlowPeerError } from './errors.js'
import type { HandshakeIo, SecureSession } from './security.js'
import { SealedRecords } from './sealed.js'

/** klp-codec frame kind of a handshake message (application range 0x80..0xff). */
export const FRAME_KIND_HANDSHAKE = 0x80
/** klp-codec frame kind of an encrypted record. */
export const FRAME_KIND_RECORD = 0x81

/**
 * Record kinds: the first byte of every record frame body, sent in the clear in front of the session
 * record and bound into its AEAD as associated data (so it cannot be changed on the path).
 */
const KIND_DATA = 0
const KIND_PING = 1
const KIND_PONG = 2
const KIND_CLOSE = 3
/** The associated data of each kind: one constant 1-byte array each (no allocation per record). */
const KIND_AAD: readonly Uint8Array[] = [Uint8Array.of(KIND_DATA), Uint8Array.of(KIND_PING), Uint8Array.of(KIND_PONG), Uint8Array.of(KIND_CLOSE)]

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
  /** Outbound bytes held per connection (waiting copies + socket write buffer) before send() rejects. */
  maxOutboundBufferBytes: number
  /** Time outbound bytes may sit undrained before the peer is aborted (SlowPeerError); Infinity disables. */
  sendStallTimeoutMs: number
}

/**
 * Bytes a record adds on the wire to its payload (frame header 8, record kind 1, record header 8,
 * tag 16 = 33 with did-security's session), rounded up: what the outbound bound charges per frame on
 * top of its payload, so the bound holds whether a frame waits as a copy or sits in the socket.
 */
export const RECORD_WIRE_OVERHEAD = 64

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

export class TcpConnection implements Connection {
  readonly id: string
  /** `send()` encrypts the frame before it returns or copies it to wait: callers may reuse the buffer once it settled. */
  readonly copiesOnSend = true
  readonly direction: ConnectionDirection
  readonly remoteAddr: string
  readonly closed: Promise<void>

  private readonly socket: Socket
  private readonly decoder: FrameDecoder
  private readonly maxHandshakeFrameSize: number
  private readonly maxWireFrame: number
  private readonly limits: ConnectionLimits
  private readonly log: Logger | undefined
  private readonly clock: Clock
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
  private hsReceived = false
  private hsMessages = 0
  private hsProgressAt: number
  private onFirstHsMessage: (() => void) | undefined

  // inbound record frames (after the handshake the connection splits frames itself, see onRecordData)
  private readonly rxHeader = new Uint8Array(FRAME_HEADER_LENGTH)
  private rxHeaderFill = 0
  /** Body of the frame being assembled across chunks (a view of rxScratch or a fresh buffer). */
  private rxBody: Uint8Array | undefined
  private rxBodyFill = 0
  /** Reused assembly buffer for frames up to RX_SCRATCH_MAX bytes: the body is decrypted synchronously. */
  private rxScratch: Uint8Array = EMPTY

  // inbound records
  /**
   * Records for the consumer: decrypted, or `SEALED` for the next record still sealed in `sealed`
   * (decrypted when read). Sealed records are kept as bytes, not as an object each (see SealedRecords).
   */
  private readonly queue: Uint8Array[] = []
  /** The sealed records of `queue`, in order. */
  private readonly sealed = new SealedRecords()
  private queueHead = 0
  private queuedBytes = 0
  private pausedForBackpressure = false
  private remoteClosed = false
  private reader: { resolve(r: IteratorResult<Uint8Array>): void; reject(e: Error): void } | undefined

  // outbound
  private readonly turns = new WriteTurns(() => this.socket.writableNeedDrain)
  /** Bytes of the copies held by senders waiting for their turn (payload + RECORD_WIRE_OVERHEAD each). */
  private waitingBytes = 0
  /** Bytes this connection ever handed to the socket (so bytes drained = txBytes - writableLength). */
  private txBytes = 0

  // send stall detection (see stallTick)
  /** The pending stall tick, if any. */
  private stallTimer: TimerHandle | undefined
  private stallArmed = false
  private stallDone = 0
  private stallQueue = 0
  private stallSince = 0
  private stallLastTick = 0

  // keep-alive
  /** Stops the keep-alive loop. */
  private stopKeepAlive: (() => void) | undefined
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
    this.clock = init.clock
    this.hsProgressAt = this.clock.now()
    this.maxHandshakeFrameSize = init.maxHandshakeFrameSize
    this.onFirstHsMessage = init.onFirstHandshakeMessage
    this.maxWireFrame = FRAME_HEADER_LENGTH + Math.max(init.limits.maxFrameSize + 1 + RECORD_OVERHEAD_ALLOWANCE, init.maxHandshakeFrameSize)
    this.decoder = new FrameDecoder({ maxFrameSize: this.maxWireFrame })
    this.closed = new Promise((resolve) => { this.resolveClosed = resolve })

    const s = this.socket
    s.setNoDelay(true)
    s.on('data', (chunk: Buffer) => { this.onData(chunk) })
    s.on('end', () => { this.onEnd() })
    s.on('error', (err) => { this.fail(new ConnectionClosedError(`socket error: ${err.message}`, { cause: err })) })
    s.on('close', () => { this.onSocketClose() })
    s.on('drain', () => { this.turns.pump() })
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
    return this.hsReceived
  }

  /** Complete handshake messages received from the remote so far. */
  get handshakeMessages(): number {
    return this.hsMessages
  }

  /**
   * Clock time (ms) of the last handshake progress: the socket was accepted, a complete handshake
   * message arrived, or we wrote one (the peer owes the next one from then on).
   */
  get handshakeProgressAt(): number {
    return this.hsProgressAt
  }

  /** Bytes of decoded records waiting for the consumer. */
  get inboundBufferedBytes(): number {
    return this.queuedBytes
  }

  /**
   * Bytes held on the way out: copies of frames waiting for their turn (each counted with
   * RECORD_WIRE_OVERHEAD) plus the socket's write buffer. `maxOutboundBufferBytes` bounds it.
   */
  get outboundBufferedBytes(): number {
    if (this.error !== undefined) return 0
    return this.waitingBytes + this.socket.writableLength
  }

  /** I/O for the handshake: each `write` sends one frame, each `read` returns one frame. */
  handshakeIo(): HandshakeIo {
    return {
      write: (msg: Uint8Array) => {
        if (this.error !== undefined) throw this.error
        if (msg.byteLength > this.maxHandshakeFrameSize) {
          throw new FrameTooLargeError(`expected a handshake message of at most ${this.maxHandshakeFrameSize} bytes, got ${msg.byteLength}`)
        }
        const frame = encodeFrame(msg, { kind: FRAME_KIND_HANDSHAKE, maxFrameSize: this.maxWireFrame })
        this.txBytes += frame.byteLength
        this.hsProgressAt = this.clock.now()
        this.socket.write(frame)
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
        this.onRecordData(chunk)
        return
      }
      chunk = this.gateHandshake(chunk)
      if (chunk.byteLength === 0) return
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
   * Splits record frames after the handshake (the same header checks as klp-codec's FrameDecoder):
   * a frame inside one chunk is decrypted straight from the chunk (a view, no copy); a frame spanning
   * chunks is assembled into a per-connection buffer that is reused for the next frame (no allocation
   * per frame; frames over RX_SCRATCH_MAX get a fresh uninitialised buffer instead, so an idle
   * connection never holds more than RX_SCRATCH_MAX). The header is checked before any body byte is
   * buffered, so an announced oversized frame aborts the connection at once.
   */
  private onRecordData(chunk: Uint8Array): void {
    const n = chunk.byteLength
    let off = 0
    while (off < n) {
      if (this.error !== undefined) return
      if (this.rxBody === undefined) {
        if (this.rxHeaderFill === 0 && n - off >= FRAME_HEADER_LENGTH) {
          const len = this.recordHeader(chunk, off)
          if (n - off - FRAME_HEADER_LENGTH >= len) {
            const start = off + FRAME_HEADER_LENGTH
            off = start + len
            this.onRecord(chunk.subarray(start, off))
            continue
          }
        }
        const take = Math.min(FRAME_HEADER_LENGTH - this.rxHeaderFill, n - off)
        this.rxHeader.set(chunk.subarray(off, off + take), this.rxHeaderFill)
        this.rxHeaderFill += take
        off += take
        if (this.rxHeaderFill < FRAME_HEADER_LENGTH) return
        const len = this.recordHeader(this.rxHeader, 0)
        if (len <= RX_SCRATCH_MAX) {
          if (this.rxScratch.byteLength < len) this.rxScratch = Buffer.allocUnsafeSlow(Math.min(RX_SCRATCH_MAX, Math.max(len, this.rxScratch.byteLength * 2, 4096)))
          this.rxBody = this.rxScratch.subarray(0, len)
        } else {
          this.rxBody = Buffer.allocUnsafe(len)
        }
        this.rxBodyFill = 0
      }
      const body = this.rxBody
      const take = Math.min(body.byteLength - this.rxBodyFill, n - off)
      body.set(chunk.subarray(off, off + take), this.rxBodyFill)
      this.rxBodyFill += take
      off += take
      if (this.rxBodyFill < body.byteLength) return
      this.rxBody = undefined
      this.rxBodyFill = 0
      this.rxHeaderFill = 0
      this.onRecord(body)
    }
  }

  /** Checks a record frame header at `off`; returns the body length. */
  private recordHeader(b: Uint8Array, off: number): number {
    if (b[off] !== FRAME_MAGIC) throw new InvalidFrameError(`expected frame magic 0x${FRAME_MAGIC.toString(16)}, got 0x${(b[off] as number).toString(16).padStart(2, '0')}`)
    if (b[off + 1] !== FRAME_VERSION) throw new InvalidFrameError(`expected frame version ${FRAME_VERSION}, got ${String(b[off + 1])}`)
    if (b[off + 3] !== 0) throw new InvalidFrameError(`expected frame flags 0, got ${String(b[off + 3])}`)
    const kind = b[off + 2] as number
    if (kind !== FRAME_KIND_RECORD) {
      throw new InvalidRecordError(`expected frame kind 0x${FRAME_KIND_RECORD.toString(16)} after the handshake, got 0x${kind.toString(16)}`)
    }
    const len = (b[off + 4] as number) * 0x1000000 + (((b[off + 5] as number) << 16) | ((b[off + 6] as number) << 8) | (b[off + 7] as number))
    if (len + FRAME_HEADER_LENGTH > this.maxWireFrame) throw new FrameTooLargeError(`expected a frame of at most ${this.maxWireFrame} bytes, got ${len + FRAME_HEADER_LENGTH}`)
    return len
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
    this.hsMessages++
    this.hsProgressAt = this.clock.now()
    if (!this.hsReceived) {
      this.hsReceived = true
      const cb = this.onFirstHsMessage
      this.onFirstHsMessage = undefined
      cb?.()
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

  /** Decrypts one record (`aad` = its kind's associated data) and checks its size. */
  private open(record: Uint8Array, aad: Uint8Array): Uint8Array {
    let plain: Uint8Array
    try {
      // decrypted in place: the session reads the view and returns a new buffer (no copy of the record)
      plain = (this.session as SecureSession).decrypt(record, aad)
    } catch (err) {
      throw mapRecordError(err)
    }
    if (plain.byteLength > this.limits.maxFrameSize) {
      throw new FrameTooLargeError(`expected a record of at most ${this.limits.maxFrameSize} bytes, got ${plain.byteLength}`)
    }
    return plain
  }

  /** Decrypts the data records queued sealed, in order (before a control record is opened). */
  private unsealQueued(): void {
    for (let i = this.queueHead; i < this.queue.length; i++) {
      if (this.queue[i] !== SEALED) continue
      const record = this.sealed.shift()
      const n = record.byteLength
      const plain = this.open(record, KIND_AAD[KIND_DATA] as Uint8Array)
      this.queuedBytes += plain.byteLength - n
      this.queue[i] = plain
    }
  }

  /** `body` = kind byte | session record; a view into the socket chunk when the frame lay in one. */
  private onRecord(body: Uint8Array): void {
    if (body.byteLength < 1) throw new InvalidRecordError('expected a record kind byte, got an empty frame body')
    const kind = body[0] as number
    if (kind === KIND_DATA && this.reader === undefined && !this.remoteClosed) {
      // nobody is reading: the record waits sealed and is decrypted when the consumer reads it, so
      // a peer the consumer does not read (its backpressure, its CPU budget) costs no decryption,
      // and a burst of buffered bytes is not decrypted in one turn of the event loop. A copy: the
      // frame may be a view of a socket chunk or of the reused assembly buffer.
      if (this.state === 'closing' && this.queuedBytes >= this.limits.maxInboundBufferBytes) {
        return // closing and the consumer is not reading: drop rather than grow
      }
      this.sealed.push(body.subarray(1))
      this.queue.push(SEALED)
      this.queued(body.byteLength - 1)
      return
    }
    // a control record (or data for a waiting reader, when nothing is queued) keeps the record order
    if (this.sealed.count > 0) this.unsealQueued()
    const plain = this.open(body.subarray(1), KIND_AAD[kind] ?? body.subarray(0, 1))
    if (this.remoteClosed) throw new InvalidRecordError(`expected no record after the close record, got kind ${kind}`)
    switch (kind) {
      case KIND_DATA: {
        const data = plain
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
        this.queued(data.byteLength)
        return
      }
      case KIND_PING: {
        if (plain.byteLength > 64) throw new InvalidRecordError(`expected a ping of at most 64 bytes, got ${plain.byteLength}`)
        // a peer that floods pings without reading pongs must not grow our write buffer
        if (!this.socket.writableNeedDrain && this.state === 'open') this.writeRecord(KIND_PONG, plain)
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
        throw new InvalidRecordError(`expected a record kind in 0..3, got ${kind}`)
    }
  }

  /** Counts `n` more queued bytes; at the bound the socket is paused. */
  private queued(n: number): void {
    this.queuedBytes += n
    if (this.queuedBytes >= this.limits.maxInboundBufferBytes && !this.pausedForBackpressure) {
      this.pausedForBackpressure = true
      this.socket.pause()
    }
  }

  private onEnd(): void {
    if (this.error !== undefined) return
    try {
      this.decoder.end() // TruncatedInputError when the stream stops inside a frame
      const partial = this.rxHeaderFill + this.rxBodyFill
      if (partial > 0) throw new TruncatedInputError(`expected the stream to end on a frame boundary, got ${partial} byte(s) of a partial frame`)
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
      const e = this.queue[this.queueHead]!
      this.queue[this.queueHead++] = EMPTY
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue.splice(0, this.queueHead)
        this.queueHead = 0
      }
      let value: Uint8Array
      if (e === SEALED) {
        const record = this.sealed.shift()
        this.queuedBytes -= record.byteLength
        try {
          value = this.open(record, KIND_AAD[KIND_DATA] as Uint8Array)
        } catch (err) {
          this.fail(err as Error)
          return Promise.reject(err)
        }
      } else {
        value = e
        this.queuedBytes -= value.byteLength
      }
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
    // the outbound bound: an empty buffer always takes one frame, otherwise nothing goes past the bound
    const cost = frame.byteLength + RECORD_WIRE_OVERHEAD
    const held = this.waitingBytes + this.socket.writableLength
    if (held > 0 && held + cost > this.limits.maxOutboundBufferBytes) {
      throw new SendBufferFullError(`expected at most ${this.limits.maxOutboundBufferBytes} outbound bytes on the connection, got ${held} held and a frame of ${frame.byteLength}`)
    }
    if (this.turns.busy) {
      const copy = frame.slice() // the caller may reuse its buffer while we wait
      this.waitingBytes += cost
      try {
        await this.turns.wait(options.signal)
      } finally {
        this.waitingBytes -= cost
      }
      try {
        if (this.error !== undefined) throw this.closedError()
        this.writeRecord(KIND_DATA, copy)
      } finally {
        this.turns.release()
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

  /**
   * Seals one record and writes `frame header | kind | record header`, ciphertext and tag. The session
   * returns the parts separately (encryptParts), so the payload is never copied: node:crypto's output
   * goes to the socket as is. Small records are copied into one frame buffer and coalesced with the
   * other small records of this tick (one writev); large ones are written as three buffers under
   * cork(), i.e. one writev without any copy.
   */
  private writeRecord(kind: number, payload: Uint8Array): void {
    const session = this.session as SecureSession
    const aad = KIND_AAD[kind] as Uint8Array
    let parts: Uint8Array[]
    try {
      parts = session.encryptParts !== undefined ? session.encryptParts(payload, aad) : [session.encrypt(payload, aad)]
    } catch (err) {
      // the session refused (expired, closed): the connection cannot go on
      this.fail(err as Error)
      throw err
    }
    let recordLen = 0
    for (let i = 0; i < parts.length; i++) recordLen += (parts[i] as Uint8Array).byteLength
    const bodyLen = 1 + recordLen
    const s = this.socket
    if (recordLen < SPLIT_WRITE_BYTES) {
      const frame = new Uint8Array(FRAME_HEADER_LENGTH + bodyLen)
      frameHeader(frame, bodyLen)
      frame[FRAME_HEADER_LENGTH] = kind
      let off = FRAME_HEADER_LENGTH + 1
      for (let i = 0; i < parts.length; i++) { const p = parts[i] as Uint8Array; frame.set(p, off); off += p.byteLength }
      // coalesce the small records written in this tick into one writev (one syscall, not one per frame)
      if (!this.corked) {
        this.corked = true
        s.cork()
        process.nextTick(this.uncork)
      }
      s.write(frame)
      this.wrote(frame.byteLength)
      return
    }
    // large record: prefix (frame header, kind, record header), ciphertext, tag: one writev, no copy
    const split = parts.length === 3
    const head = split ? (parts[0] as Uint8Array) : EMPTY
    const prefix = new Uint8Array(FRAME_HEADER_LENGTH + 1 + head.byteLength)
    frameHeader(prefix, bodyLen)
    prefix[FRAME_HEADER_LENGTH] = kind
    prefix.set(head, FRAME_HEADER_LENGTH + 1)
    const wasCorked = this.corked
    if (!wasCorked) s.cork()
    s.write(prefix)
    for (let i = split ? 1 : 0; i < parts.length; i++) s.write(parts[i] as Uint8Array)
    if (!wasCorked) s.uncork()
    this.wrote(FRAME_HEADER_LENGTH + bodyLen)
  }

  /** Accounts `bytes` handed to the socket and makes sure the stall deadline watches them. */
  private wrote(bytes: number): void {
    this.txBytes += bytes
    if (!this.stallArmed) this.armStall()
  }

  // ------------------------------------------------------------------ send stall deadline

  /**
   * Starts watching the outbound bytes: from now on, while any are held, the peer must drain some of
   * them at least every `sendStallTimeoutMs`. At most one pending tick per connection (an earlier
   * pending tick is kept: the deadline counts from `stallSince`, not from the tick).
   */
  private armStall(): void {
    const ms = this.limits.sendStallTimeoutMs
    if (!(ms < Infinity) || this.error !== undefined) return
    this.stallArmed = true
    const now = this.clock.now()
    this.stallSince = now
    this.stallLastTick = now
    this.stallDone = this.txBytes - this.socket.writableLength
    this.stallQueue = writeQueueSize(this.socket)
    this.stallTimer ??= this.clock.setTimeout(this.stallTick, stallTickMs(ms), { unref: true })
  }

  /**
   * Progress is measured at the kernel's granularity: bytes whose socket write completed
   * (txBytes - writableLength grows), or, while one write is in flight, libuv's queue of that write
   * shrinking (the kernel took part of it because the peer read). Without progress for
   * `sendStallTimeoutMs` while bytes are held, the peer has stopped reading: SlowPeerError. A tick
   * that comes very late means our own event loop was held up (no write could progress meanwhile),
   * so it grants a fresh deadline instead of blaming the peer.
   */
  private readonly stallTick = (): void => {
    this.stallTimer = undefined
    if (this.error !== undefined) { this.stallArmed = false; return }
    const s = this.socket
    const pending = s.writableLength
    if (pending === 0 && this.turns.waiting === 0) { this.stallArmed = false; return }
    const ms = this.limits.sendStallTimeoutMs
    const now = this.clock.now()
    const done = this.txBytes - pending
    const queue = writeQueueSize(s)
    if (done > this.stallDone || queue < this.stallQueue || now - this.stallLastTick > 2 * stallTickMs(ms)) {
      this.stallSince = now
    } else if (now - this.stallSince >= ms) {
      this.fail(new SlowPeerError(`expected the peer to drain some of our ${pending + this.waitingBytes} outbound bytes within ${ms} ms, got no progress`))
      return
    }
    this.stallDone = done
    this.stallQueue = queue
    this.stallLastTick = now
    this.stallTimer = this.clock.setTimeout(this.stallTick, stallTickMs(ms), { unref: true })
  }

  private corked = false
  private readonly uncork = (): void => {
    this.corked = false
    this.socket.uncork()
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
    // records still sealed are opened now, while the session's keys are valid (a close may come
    // from the session's lifetime); the consumer reads them after the close
    if (this.sealed.count > 0) {
      try {
        this.unsealQueued()
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
        if (this.turns.busy) {
          turn = await this.turns.wait().then(() => true, () => false)
        }
        try {
          if (this.error === undefined) {
            try { this.writeRecord(KIND_CLOSE, EMPTY) } catch { /* writeRecord failed the connection */ }
            if (this.error === undefined) this.socket.end()
            // the local side may stop reading: do not keep the socket paused on our account
            if (this.pausedForBackpressure) { this.pausedForBackpressure = false; this.socket.resume() }
          }
        } finally {
          if (turn) this.turns.release()
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
  private fail(err: Error): void {
    if (this.error !== undefined) return
    this.error = err
    if (!(err instanceof LocalClose)) this.log?.debug('tcp connection aborted', { id: this.id, error: err.name, message: err.message })
    this.state = 'closed'
    this.queue.length = 0
    this.queueHead = 0
    this.queuedBytes = 0
    this.sealed.clear()
    this.hsFrames.length = 0
    this.held = undefined
    this.rxBody = undefined
    this.rxScratch = EMPTY
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
    this.turns.rejectAll(closedErr)
    this.stopTimers()
    this.stallArmed = false
    this.socket.destroy()
    if (this.socket.destroyed && this.socket.closed) this.finish()
  }

  private stopTimers(): void {
    this.stopKeepAlive?.()
    this.stopKeepAlive = undefined
    this.clock.clearTimeout(this.stallTimer)
    this.stallTimer = undefined
  }

  private finish(): void {
    this.stopTimers()
    try { this.session?.close?.() } catch { /* best effort */ }
    if (this.error === undefined) {
      this.error = new LocalClose('closed')
      this.endReader()
    }
    this.state = 'closed'
    this.turns.rejectAll(this.closedError())
    this.resolveClosed()
  }

  /** The error that ended the connection, if it ended with one. */
  get closeError(): Error | undefined {
    return this.error instanceof LocalClose ? undefined : this.error
  }
}

/** A data record received while nobody was reading: decrypted when the consumer reads it. */
/** Queue entry standing for the next record in `SealedRecords` (one shared marker, no allocation). */
const SEALED = new Uint8Array(0)

/** Marker for a clean end (not surfaced to callers as an error). */
class LocalClose extends Error {}

const EMPTY = new Uint8Array(0)
/** Records at least this large are written as header + body (no copy) instead of one frame buffer. */
const SPLIT_WRITE_BYTES = 16 * 1024
/** A record frame header with a zero length (magic, version, kind, flags), from klp-codec. */
const RECORD_FRAME_HEADER = encodeFrame(EMPTY, { kind: FRAME_KIND_RECORD })

/** Writes the klp-codec frame header of a record frame whose body is `bodyLen` bytes into `out`. */
function frameHeader(out: Uint8Array, bodyLen: number): void {
  out.set(RECORD_FRAME_HEADER, 0)
  out[4] = bodyLen >>> 24; out[5] = (bodyLen >>> 16) & 0xff; out[6] = (bodyLen >>> 8) & 0xff; out[7] = bodyLen & 0xff
}
const PING_BODY = new Uint8Array(8)

/** The stall deadline is checked every quarter of it (at most every second): it fires within 1.25x. */
function stallTickMs(deadlineMs: number): number {
  return Math.max(1, Math.min(deadlineMs / 4, 1_000))
}

/**
 * Bytes libuv still has to hand to the kernel for the write in flight (`_handle.writeQueueSize`, kept
 * current by libuv as the kernel accepts bytes). Not a public API: when it is missing, progress is
 * only seen when whole writes complete (coarser, still correct).
 */
function writeQueueSize(socket: Socket): number {
  const h = (socket as unknown as { _handle?: { writeQueueSize?: unknown } | null })._handle
  const n = h?.writeQueueSize
  return typeof n === 'number' ? n : 0
}
/**
 * Largest record frame body assembled in the reusable per-connection buffer: a 256 KiB payload plus
 * room for the headers around it (klp-router's envelope and bulk header, kind byte, record header
 * and tag: a 256 KiB bulk chunk's frame is 42 bytes over 256 KiB), so bulk transfers' default
 * chunks are assembled without an allocation per frame.
 */
const RX_SCRATCH_MAX = 256 * 1024 + 1024

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
