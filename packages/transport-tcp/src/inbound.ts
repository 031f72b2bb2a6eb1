/**
 * The read path of one TCP connection after the handshake: record frames split from the socket's
 * chunks (a frame inside one chunk is opened from a view, a frame spanning chunks is assembled in a
 * reused buffer), each record opened and dispatched by kind, data records queued for the consumer in
 * a bounded queue (the socket paused when full, resumed when drained; records that arrive while
 * nobody reads wait there sealed and are decrypted when read), and the consumer's `next()`. Internal.
 */
import type { Socket } from 'node:net'
import { InvalidParametersError, LimitExceededError, ReplayError, type ConnectionStatus } from '@kos-mesh/interface'
import { FRAME_HEADER_LENGTH, FRAME_MAGIC, FRAME_VERSION, FrameTooLargeError, InvalidFrameError } from '@kos-mesh/klp-codec'
import { BadRecordError, InvalidRecordError, ReplayedRecordError } from './errors.js'
import type { RecordWriter } from './outbound.js'
import { EMPTY, FRAME_KIND_RECORD, KIND_AAD, KIND_CLOSE, KIND_DATA, KIND_PING, KIND_PONG, LocalClose, type ConnectionLimits } from './record.js'
import { SealedRecords } from './sealed.js'
import type { SecureSession } from './security.js'

/** What the record reader uses of its connection (TcpConnection). */
export interface InboundHost {
  readonly state: 'handshake' | ConnectionStatus
  readonly error: Error | undefined
  readonly session: SecureSession | undefined
  readonly tx: RecordWriter
  /** Keep-alive state: a pong clears both. */
  awaitingPong: boolean
  missedPongs: number
  fail(err: Error): void
  close(): Promise<void>
}

export class RecordReader {
  private readonly conn: InboundHost
  private readonly socket: Socket
  private readonly limits: ConnectionLimits
  private readonly maxWireFrame: number

  // inbound record frames (after the handshake the connection splits frames itself, see onRecordData)
  private readonly rxHeader = new Uint8Array(FRAME_HEADER_LENGTH)
  rxHeaderFill = 0
  /** Body of the frame being assembled across chunks (a view of rxScratch or a fresh buffer). */
  private rxBody: Uint8Array | undefined
  rxBodyFill = 0
  /** Reused assembly buffer for frames up to RX_SCRATCH_MAX bytes: the body is decrypted synchronously. */
  private rxScratch: Uint8Array = EMPTY

  // inbound records
  /**
   * Records for the consumer: decrypted, or `SEALED` for the next record still sealed in `sealed`
   * (decrypted when read). Sealed records are kept as bytes, not as an object each (see SealedRecords).
   */
  private readonly queue: Uint8Array[] = []
  /** The sealed records of `queue`, in order. */
  readonly sealed = new SealedRecords()
  private queueHead = 0
  queuedBytes = 0
  pausedForBackpressure = false
  remoteClosed = false
  private reader: { resolve(r: IteratorResult<Uint8Array>): void; reject(e: Error): void } | undefined

  constructor(conn: InboundHost, socket: Socket, limits: ConnectionLimits, maxWireFrame: number) {
    this.conn = conn
    this.socket = socket
    this.limits = limits
    this.maxWireFrame = maxWireFrame
  }

  /**
   * Splits record frames after the handshake (the same header checks as klp-codec's FrameDecoder):
   * a frame inside one chunk is decrypted straight from the chunk (a view, no copy); a frame spanning
   * chunks is assembled into a per-connection buffer that is reused for the next frame (no allocation
   * per frame; frames over RX_SCRATCH_MAX get a fresh uninitialised buffer instead, so an idle
   * connection never holds more than RX_SCRATCH_MAX). The header is checked before any body byte is
   * buffered, so an announced oversized frame aborts the connection at once.
   */
  onRecordData(chunk: Uint8Array): void {
    const n = chunk.byteLength
    let off = 0
    while (off < n) {
      if (this.conn.error !== undefined) return
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

  /** Decrypts one record (`aad` = its kind's associated data) and checks its size. */
  private open(record: Uint8Array, aad: Uint8Array): Uint8Array {
    let plain: Uint8Array
    try {
      // decrypted in place: the session reads the view and returns a new buffer (no copy of the record)
      plain = (this.conn.session as SecureSession).decrypt(record, aad)
    } catch (err) {
      throw mapRecordError(err)
    }
    if (plain.byteLength > this.limits.maxFrameSize) {
      throw new FrameTooLargeError(`expected a record of at most ${this.limits.maxFrameSize} bytes, got ${plain.byteLength}`)
    }
    return plain
  }

  /** Decrypts the data records queued sealed, in order (before a control record is opened). */
  unsealQueued(): void {
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
  onRecord(body: Uint8Array): void {
    if (body.byteLength < 1) throw new InvalidRecordError('expected a record kind byte, got an empty frame body')
    const kind = body[0] as number
    if (kind === KIND_DATA && this.reader === undefined && !this.remoteClosed) {
      // nobody is reading: the record waits sealed and is decrypted when the consumer reads it, so
      // a peer the consumer does not read (its backpressure, its CPU budget) costs no decryption,
      // and a burst of buffered bytes is not decrypted in one turn of the event loop. A copy: the
      // frame may be a view of a socket chunk or of the reused assembly buffer.
      if (this.conn.state === 'closing' && this.queuedBytes >= this.limits.maxInboundBufferBytes) {
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
        if (this.conn.state === 'closing' && this.queuedBytes >= this.limits.maxInboundBufferBytes) {
          return // closing and the consumer is not reading: drop rather than grow
        }
        this.queue.push(data)
        this.queued(data.byteLength)
        return
      }
      case KIND_PING: {
        if (plain.byteLength > 64) throw new InvalidRecordError(`expected a ping of at most 64 bytes, got ${plain.byteLength}`)
        // a peer that floods pings without reading pongs must not grow our write buffer
        if (!this.socket.writableNeedDrain && this.conn.state === 'open') this.conn.tx.writeRecord(KIND_PONG, plain)
        return
      }
      case KIND_PONG:
        this.conn.awaitingPong = false
        this.conn.missedPongs = 0
        return
      case KIND_CLOSE:
        this.remoteClosed = true
        this.endReader()
        void this.conn.close().catch(() => {})
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

  endReader(): void {
    if (this.reader !== undefined && this.queueHead >= this.queue.length) {
      const r = this.reader
      this.reader = undefined
      r.resolve({ done: true, value: undefined })
    }
  }

  next(): Promise<IteratorResult<Uint8Array>> {
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
          this.conn.fail(err as Error)
          return Promise.reject(err)
        }
      } else {
        value = e
        this.queuedBytes -= value.byteLength
      }
      if (this.pausedForBackpressure && this.queuedBytes <= this.limits.maxInboundBufferBytes / 2) {
        this.pausedForBackpressure = false
        if (this.conn.error === undefined) this.socket.resume()
      }
      return Promise.resolve({ done: false, value })
    }
    if (this.conn.error !== undefined) {
      if (this.conn.error instanceof LocalClose) return Promise.resolve({ done: true, value: undefined })
      return Promise.reject(this.conn.error)
    }
    if (this.remoteClosed || this.conn.state === 'closed') return Promise.resolve({ done: true, value: undefined })
    if (this.reader !== undefined) return Promise.reject(new InvalidParametersError('expected one pending read, got two'))
    return new Promise((resolve, reject) => { this.reader = { resolve, reject } })
  }

  /**
   * The connection failed with `err`: queued records and the assembly buffer are dropped, a pending
   * read rejects (or ends, for a local close).
   */
  fail(err: Error): void {
    this.queue.length = 0
    this.queueHead = 0
    this.queuedBytes = 0
    this.sealed.clear()
    this.rxBody = undefined
    this.rxScratch = EMPTY
    if (this.reader !== undefined) {
      const r = this.reader
      this.reader = undefined
      if (err instanceof LocalClose) r.resolve({ done: true, value: undefined })
      else r.reject(err)
    }
  }
}

/** A data record received while nobody was reading: decrypted when the consumer reads it. */
/** Queue entry standing for the next record in `SealedRecords` (one shared marker, no allocation). */
const SEALED = new Uint8Array(0)

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
