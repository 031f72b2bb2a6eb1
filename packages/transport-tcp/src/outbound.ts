/**
 * The write path of one TCP connection: `send()` with its outbound byte bound (frames waiting for
 * their turn plus the socket's write buffer, at most `maxOutboundBufferBytes`; `send()` rejects at
 * once beyond it) and its FIFO write turns (it waits for 'drain', so the socket's write buffer never
 * grows past one frame over its high-water mark), sealing and writing records (coalesced or written
 * without a copy), and the send stall deadline that aborts a peer which lets the outbound bytes sit
 * undrained for `sendStallTimeoutMs` (`SlowPeerError`). Internal.
 */
import type { Socket } from 'node:net'
import {
  AbortError,
  InvalidParametersError,
  WriteTurns,
  type AbortOptions,
  type Clock,
  type ConnectionStatus,
  type TimerHandle,
} from '@kos-mesh/interface'
import { FRAME_HEADER_LENGTH, FrameTooLargeError, encodeFrame } from '@kos-mesh/klp-codec'
import { SendBufferFullError, SlowPeerError } from './errors.js'
import { EMPTY, FRAME_KIND_RECORD, KIND_AAD, KIND_DATA, type ConnectionLimits } from './record.js'
import type { SecureSession } from './security.js'

/**
 * Bytes a record adds on the wire to its payload (frame header 8, record kind 1, record header 8,
 * tag 16 = 33 with did-security's session), rounded up: what the outbound bound charges per frame on
 * top of its payload, so the bound holds whether a frame waits as a copy or sits in the socket.
 */
export const RECORD_WIRE_OVERHEAD = 64

/** What the record writer uses of its connection (TcpConnection). */
export interface OutboundHost {
  readonly state: 'handshake' | ConnectionStatus
  readonly error: Error | undefined
  readonly session: SecureSession | undefined
  fail(err: Error): void
  /** The error a send on the ended (or not open) connection rejects with. */
  closedError(): Error
}

export class RecordWriter {
  private readonly conn: OutboundHost
  private readonly socket: Socket
  private readonly limits: ConnectionLimits
  private readonly clock: Clock

  readonly turns = new WriteTurns(() => this.socket.writableNeedDrain)
  /** Bytes of the copies held by senders waiting for their turn (payload + RECORD_WIRE_OVERHEAD each). */
  waitingBytes = 0
  /** Bytes this connection ever handed to the socket (so bytes drained = txBytes - writableLength). */
  txBytes = 0

  // send stall detection (see stallTick)
  /** The pending stall tick, if any. */
  private stallTimer: TimerHandle | undefined
  stallArmed = false
  private stallDone = 0
  private stallQueue = 0
  private stallSince = 0
  private stallLastTick = 0

  constructor(conn: OutboundHost, socket: Socket, limits: ConnectionLimits, clock: Clock) {
    this.conn = conn
    this.socket = socket
    this.limits = limits
    this.clock = clock
  }

  async send(frame: Uint8Array, options: AbortOptions): Promise<void> {
    if (!(frame instanceof Uint8Array)) {
      throw new InvalidParametersError(`expected frame to be a Uint8Array, got ${frame === null ? 'null' : typeof frame}`)
    }
    if (frame.byteLength > this.limits.maxFrameSize) {
      throw new FrameTooLargeError(`expected a frame of at most ${this.limits.maxFrameSize} bytes, got ${frame.byteLength}`)
    }
    if (this.conn.state !== 'open') throw this.conn.closedError()
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
        if (this.conn.error !== undefined) throw this.conn.closedError()
        this.writeRecord(KIND_DATA, copy)
      } finally {
        this.turns.release()
      }
      return
    }
    this.writeRecord(KIND_DATA, frame)
  }

  /**
   * Seals one record and writes `frame header | kind | record header`, ciphertext and tag. The session
   * returns the parts separately (encryptParts), so the payload is never copied: node:crypto's output
   * goes to the socket as is. Small records are copied into one frame buffer and coalesced with the
   * other small records of this tick (one writev); large ones are written as three buffers under
   * cork(), i.e. one writev without any copy.
   */
  writeRecord(kind: number, payload: Uint8Array): void {
    const session = this.conn.session as SecureSession
    const aad = KIND_AAD[kind] as Uint8Array
    let parts: Uint8Array[]
    try {
      parts = session.encryptParts !== undefined ? session.encryptParts(payload, aad) : [session.encrypt(payload, aad)]
    } catch (err) {
      // the session refused (expired, closed): the connection cannot go on
      this.conn.fail(err as Error)
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
    if (!(ms < Infinity) || this.conn.error !== undefined) return
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
    if (this.conn.error !== undefined) { this.stallArmed = false; return }
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
      this.conn.fail(new SlowPeerError(`expected the peer to drain some of our ${pending + this.waitingBytes} outbound bytes within ${ms} ms, got no progress`))
      return
    }
    this.stallDone = done
    this.stallQueue = queue
    this.stallLastTick = now
    this.stallTimer = this.clock.setTimeout(this.stallTick, stallTickMs(ms), { unref: true })
  }

  /** Cancels the pending stall tick (the connection stops its timers). */
  stopStallTimer(): void {
    this.clock.clearTimeout(this.stallTimer)
    this.stallTimer = undefined
  }

  private corked = false
  private readonly uncork = (): void => {
    this.corked = false
    this.socket.uncork()
  }
}

/** Records at least this large are written as header + body (no copy) instead of one frame buffer. */
const SPLIT_WRITE_BYTES = 16 * 1024
/** A record frame header with a zero length (magic, version, kind, flags), from klp-codec. */
const RECORD_FRAME_HEADER = encodeFrame(EMPTY, { kind: FRAME_KIND_RECORD })

/** Writes the klp-codec frame header of a record frame whose body is `bodyLen` bytes into `out`. */
function frameHeader(out: Uint8Array, bodyLen: number): void {
  out.set(RECORD_FRAME_HEADER, 0)
  out[4] = bodyLen >>> 24; out[5] = (bodyLen >>> 16) & 0xff; out[6] = (bodyLen >>> 8) & 0xff; out[7] = bodyLen & 0xff
}

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
