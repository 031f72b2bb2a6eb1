/**
 * Framing seam. Every byte on the socket is a sequence of length-prefixed frames: handshake
 * messages before the session exists, one encrypted record per frame after it.
 *
 * This file holds the transport's view of a framer (`Framer`, `StreamFrameDecoder`) and an internal
 * implementation (4-byte big-endian length prefix) used until/unless the klp-codec framer is wired.
 */
import { FrameTooLargeError, InvalidFrameError } from './errors.js'

/** Incremental decoder fed with socket chunks of arbitrary boundaries. */
export interface StreamFrameDecoder {
  /** Appends bytes received from the socket. */
  push(chunk: Uint8Array): void
  /** The next complete frame payload, or undefined when more bytes are needed. Throws typed errors. */
  read(): Uint8Array | undefined
  /** Bytes held that do not yet form a complete frame (non-zero at EOF means truncation). */
  readonly bufferedBytes: number
  /** Largest payload accepted; may be lowered during the handshake and raised after it. */
  maxFrameSize: number
}

export interface Framer {
  /** Header bytes added to every frame. */
  readonly overhead: number
  /** Returns the bytes to write for one frame (header + payload). */
  encode(payload: Uint8Array): Uint8Array
  createDecoder(maxFrameSize: number): StreamFrameDecoder
}

const HEADER = 4

class LengthPrefixDecoder implements StreamFrameDecoder {
  maxFrameSize: number
  private readonly chunks: Uint8Array[] = []
  private head = 0
  private offset = 0
  private total = 0
  private need = -1

  constructor(maxFrameSize: number) {
    this.maxFrameSize = maxFrameSize
  }

  get bufferedBytes(): number {
    return this.total + (this.need >= 0 ? HEADER : 0)
  }

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return
    this.chunks.push(chunk)
    this.total += chunk.byteLength
  }

  read(): Uint8Array | undefined {
    if (this.need < 0) {
      if (this.total < HEADER) return undefined
      const h = this.take(HEADER)
      const len = ((h[0] ?? 0) * 0x1000000) + (((h[1] ?? 0) << 16) | ((h[2] ?? 0) << 8) | (h[3] ?? 0))
      if (len > this.maxFrameSize) {
        throw new FrameTooLargeError(`expected a frame of at most ${this.maxFrameSize} bytes, got a header announcing ${len}`)
      }
      if (len === 0) throw new InvalidFrameError('expected a non-empty frame, got length 0')
      this.need = len
    }
    if (this.total < this.need) return undefined
    const frame = this.take(this.need)
    this.need = -1
    return frame
  }

  private take(n: number): Uint8Array {
    this.total -= n
    const first = this.chunks[this.head] as Uint8Array
    const avail = first.byteLength - this.offset
    if (avail >= n) {
      const out = first.subarray(this.offset, this.offset + n)
      this.offset += n
      if (this.offset === first.byteLength) this.shift()
      return out
    }
    const out = new Uint8Array(n)
    let filled = 0
    while (filled < n) {
      const c = this.chunks[this.head] as Uint8Array
      const k = Math.min(c.byteLength - this.offset, n - filled)
      out.set(c.subarray(this.offset, this.offset + k), filled)
      filled += k
      this.offset += k
      if (this.offset === c.byteLength) this.shift()
    }
    return out
  }

  private shift(): void {
    this.head++
    this.offset = 0
    if (this.head === this.chunks.length) {
      this.chunks.length = 0
      this.head = 0
    } else if (this.head > 64) {
      this.chunks.splice(0, this.head)
      this.head = 0
    }
  }
}

/** The internal framer: `u32be length || payload`. */
export const lengthPrefixFramer: Framer = {
  overhead: HEADER,
  encode(payload: Uint8Array): Uint8Array {
    const len = payload.byteLength
    const out = new Uint8Array(HEADER + len)
    out[0] = len >>> 24
    out[1] = (len >>> 16) & 0xff
    out[2] = (len >>> 8) & 0xff
    out[3] = len & 0xff
    out.set(payload, HEADER)
    return out
  },
  createDecoder(maxFrameSize: number): StreamFrameDecoder {
    return new LengthPrefixDecoder(maxFrameSize)
  },
}
