/**
 * The handshake phase of one TCP connection: the `HandshakeIo` the channel handshake runs over (one
 * length-prefixed frame per message), the gate that keeps unauthenticated bytes small (frame headers
 * checked before the decoder sees them, bytes after the last handshake frame held undecoded until
 * establish()), the queue of unread handshake messages and the socket pause it needs. Internal.
 */
import type { Socket } from 'node:net'
import { AbortError, InvalidParametersError, type AbortOptions, type Clock, type ConnectionStatus } from '@kos-mesh/interface'
import { FRAME_HEADER_LENGTH, FRAME_MAGIC, FRAME_VERSION, FrameTooLargeError, encodeFrame, type Frame } from '@kos-mesh/klp-codec'
import { HandshakeError } from '@kos-mesh/did-security'
import type { RecordReader } from './inbound.js'
import type { RecordWriter } from './outbound.js'
import { EMPTY, FRAME_KIND_HANDSHAKE } from './record.js'
import type { HandshakeIo } from './security.js'

/** Handshake messages queued unread (the socket is paused while any is queued). */
const MAX_QUEUED_HANDSHAKE_FRAMES = 4
/** Bytes held undecoded between the handshake frames and establish() (about one socket read). */
const MAX_HELD_BYTES = 256 * 1024

/** What the handshake phase reads of its connection (TcpConnection). */
export interface HandshakeHost {
  readonly state: 'handshake' | ConnectionStatus
  readonly error: Error | undefined
  readonly rx: RecordReader
  readonly tx: RecordWriter
}

export class HandshakePhase {
  private readonly conn: HandshakeHost
  private readonly socket: Socket
  private readonly clock: Clock
  private readonly maxHandshakeFrameSize: number
  private readonly maxWireFrame: number

  readonly hsFrames: Uint8Array[] = []
  /** Pre-scan of frame headers during the handshake (see gateHandshake). */
  private readonly hsHeader = new Uint8Array(FRAME_HEADER_LENGTH)
  private hsHeaderFill = 0
  private hsBodyLeft = 0
  /** Bytes after the handshake frames, held undecoded until establish(). */
  held: Uint8Array[] | undefined
  private heldBytes = 0
  private hsPaused = false
  private hsReader: { resolve(f: Uint8Array): void; reject(e: Error): void } | undefined
  hsReceived = false
  hsMessages = 0
  hsProgressAt: number
  private onFirstHsMessage: (() => void) | undefined

  constructor(conn: HandshakeHost, socket: Socket, clock: Clock, maxHandshakeFrameSize: number, maxWireFrame: number, onFirstHandshakeMessage: (() => void) | undefined) {
    this.conn = conn
    this.socket = socket
    this.clock = clock
    this.hsProgressAt = this.clock.now()
    this.maxHandshakeFrameSize = maxHandshakeFrameSize
    this.onFirstHsMessage = onFirstHandshakeMessage
    this.maxWireFrame = maxWireFrame
  }

  /** I/O for the handshake: each `write` sends one frame, each `read` returns one frame. */
  handshakeIo(): HandshakeIo {
    return {
      write: (msg: Uint8Array) => {
        if (this.conn.error !== undefined) throw this.conn.error
        if (msg.byteLength > this.maxHandshakeFrameSize) {
          throw new FrameTooLargeError(`expected a handshake message of at most ${this.maxHandshakeFrameSize} bytes, got ${msg.byteLength}`)
        }
        const frame = encodeFrame(msg, { kind: FRAME_KIND_HANDSHAKE, maxFrameSize: this.maxWireFrame })
        this.conn.tx.txBytes += frame.byteLength
        this.hsProgressAt = this.clock.now()
        this.socket.write(frame)
      },
      read: (options?: AbortOptions) => {
        if (this.conn.error !== undefined) return Promise.reject(this.conn.error)
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

  /**
   * Before authentication only handshake frames (each <= maxHandshakeFrameSize) reach the decoder.
   * The gate reads frame headers itself; from the first header of another kind on (the peer's first
   * records, sent right after its last handshake message), bytes are held undecoded and the socket is
   * paused until establish(). So an unauthenticated peer can make us buffer one handshake frame and
   * about one socket read, never a large frame.
   */
  gateHandshake(chunk: Uint8Array): Uint8Array {
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

  onHandshakeFrame(frame: Frame): void {
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

  hsResume(): void {
    if (this.conn.state === 'handshake' && this.held !== undefined) return // held until establish()
    if (this.hsPaused) {
      this.hsPaused = false
      if (!this.conn.rx.pausedForBackpressure && this.conn.error === undefined) this.socket.resume()
    }
  }

  /** The connection failed with `err`: queued messages and held bytes are dropped, a pending read rejects. */
  fail(err: Error): void {
    this.hsFrames.length = 0
    this.held = undefined
    if (this.hsReader !== undefined) {
      const r = this.hsReader
      this.hsReader = undefined
      r.reject(err)
    }
  }
}
