/**
 * Framing. Every KLP frame is an 8-byte header followed by the body:
 *
 *   offset 0  u8   magic 0x4b ('K')
 *   offset 1  u8   version, 0x01
 *   offset 2  u8   kind (FrameKind.MESSAGE = 0x01 for a signed KLP message; 0x00 and 0x80..0xff are
 *                  free for applications)
 *   offset 3  u8   flags, must be 0 (reserved)
 *   offset 4  u32  body length, big-endian
 *   offset 8  ...  body
 *
 * `maxFrameSize` bounds the whole frame (header + body) and is checked from the header, before
 * any body byte is buffered.
 */
import { InvalidParametersError } from '@kos-mesh/interface'
import { FrameTooLargeError, InvalidFrameError, TrailingBytesError, TruncatedInputError } from './errors.js'
import { DEFAULT_LIMITS } from './limits.js'

/** First byte of every frame header (`K`). */
export const FRAME_MAGIC = 0x4b
/** Frame format version written in the header; other versions are refused. */
export const FRAME_VERSION = 1
/** Bytes of the frame header before the body. */
export const FRAME_HEADER_LENGTH = 8
/** Largest body length the header can carry (u32). */
const MAX_U32 = 0xffff_ffff

/** Frame kinds (the header's kind byte). */
export const FrameKind = {
  /** A signed KLP message (encodeMessage output). */
  MESSAGE: 0x01,
} as const

/** A decoded frame: its kind and its body (a view into the input). */
export interface Frame {
  kind: number
  body: Uint8Array
}

/** Options of encoding and decoding frames. */
export interface FrameOptions {
  /** Frame kind, 0..255. Default FrameKind.MESSAGE. */
  kind?: number
  /** Largest frame, header included. Default 1 MiB. */
  maxFrameSize?: number
}

function checkMax(v: number | undefined): number {
  const max = v ?? DEFAULT_LIMITS.maxFrameSize
  if (!Number.isSafeInteger(max) || max < FRAME_HEADER_LENGTH || max > MAX_U32 + FRAME_HEADER_LENGTH) {
    throw new InvalidParametersError(`expected maxFrameSize to be an integer in ${FRAME_HEADER_LENGTH}..${MAX_U32 + FRAME_HEADER_LENGTH}, got ${String(v)}`)
  }
  return max
}

/**
 * The last buffer encodeMessage returned, which has FRAME_HEADER_LENGTH private bytes in front of
 * it (inside the same ArrayBuffer, outside the view). encodeFrame may write its header there once
 * and return a view over header + body instead of copying the body. One slot: the header room is
 * used at most once, and only for the most recent message, so no earlier frame is ever rewritten.
 */
let headroom: Uint8Array | undefined

/** @internal Marks `body` (a fresh view with FRAME_HEADER_LENGTH bytes before it) as frameable in place. */
export function reserveFrameHeader(body: Uint8Array): Uint8Array {
  headroom = body
  return body
}

/**
 * Wraps a body in a frame. Throws FrameTooLargeError when the frame would exceed maxFrameSize.
 * The frame is a new buffer, except for the output of the latest `encodeMessage` call: that one is
 * framed in place (the result then shares memory with `body`; do not mutate either).
 */
export function encodeFrame(body: Uint8Array, options?: FrameOptions): Uint8Array {
  if (!(body instanceof Uint8Array)) throw new InvalidParametersError(`expected body to be a Uint8Array, got ${typeof body}`)
  const kind = options?.kind ?? FrameKind.MESSAGE
  if (!Number.isInteger(kind) || kind < 0 || kind > 255) throw new InvalidParametersError(`expected kind to be an integer in 0..255, got ${String(kind)}`)
  const max = checkMax(options?.maxFrameSize)
  const len = body.length
  const total = FRAME_HEADER_LENGTH + len
  if (total > max) throw new FrameTooLargeError(`expected a frame of at most ${max} bytes, got ${total}`)
  let out: Uint8Array
  if (body === headroom && body.byteOffset >= FRAME_HEADER_LENGTH) {
    headroom = undefined
    out = new Uint8Array(body.buffer, body.byteOffset - FRAME_HEADER_LENGTH, total)
  } else {
    out = new Uint8Array(total)
    out.set(body, FRAME_HEADER_LENGTH)
  }
  out[0] = FRAME_MAGIC
  out[1] = FRAME_VERSION
  out[2] = kind
  out[3] = 0
  out[4] = len >>> 24
  out[5] = (len >>> 16) & 0xff
  out[6] = (len >>> 8) & 0xff
  out[7] = len & 0xff
  return out
}

/** Validates a header at `off` (8 bytes available) and returns the body length. */
function readHeader(b: Uint8Array, off: number, max: number): number {
  if (b[off] !== FRAME_MAGIC) throw new InvalidFrameError(`expected frame magic 0x4b, got 0x${(b[off] as number).toString(16).padStart(2, '0')}`)
  if (b[off + 1] !== FRAME_VERSION) throw new InvalidFrameError(`expected frame version ${FRAME_VERSION}, got ${String(b[off + 1])}`)
  if (b[off + 3] !== 0) throw new InvalidFrameError(`expected frame flags 0, got ${String(b[off + 3])}`)
  const len = (((b[off + 4] as number) << 24) >>> 0) + ((b[off + 5] as number) << 16) + ((b[off + 6] as number) << 8) + (b[off + 7] as number)
  if (len + FRAME_HEADER_LENGTH > max) throw new FrameTooLargeError(`expected a frame of at most ${max} bytes, got ${len + FRAME_HEADER_LENGTH}`)
  return len
}

/** Decodes exactly one frame. The body is a view into `bytes`. */
export function decodeFrame(bytes: Uint8Array, options?: { maxFrameSize?: number }): Frame {
  if (!(bytes instanceof Uint8Array)) throw new InvalidParametersError(`expected a Uint8Array, got ${typeof bytes}`)
  const max = checkMax(options?.maxFrameSize)
  if (bytes.length < FRAME_HEADER_LENGTH) throw new TruncatedInputError(`expected a ${FRAME_HEADER_LENGTH}-byte frame header, got ${bytes.length} byte(s)`)
  const len = readHeader(bytes, 0, max)
  const total = FRAME_HEADER_LENGTH + len
  if (bytes.length < total) throw new TruncatedInputError(`expected a frame of ${total} bytes, got ${bytes.length}`)
  if (bytes.length > total) throw new TrailingBytesError(`expected exactly one frame of ${total} bytes, got ${bytes.length - total} trailing byte(s)`)
  return { kind: bytes[2] as number, body: bytes.subarray(FRAME_HEADER_LENGTH, total) }
}

/**
 * Incremental frame decoder for a byte stream cut at arbitrary boundaries. It buffers at most
 * one frame (<= maxFrameSize bytes) and never allocates a body before its header passed the
 * size check. After an error the decoder is poisoned: every later call throws the same error.
 * Bodies are copies when they spanned chunks and views into the chunk otherwise.
 */
export class FrameDecoder {
  readonly maxFrameSize: number
  private readonly header = new Uint8Array(FRAME_HEADER_LENGTH)
  private headerFill = 0
  private body: Uint8Array | undefined
  private bodyFill = 0
  private kind = 0
  private error: Error | undefined

  constructor(options?: { maxFrameSize?: number }) {
    this.maxFrameSize = checkMax(options?.maxFrameSize)
  }

  /** Bytes of the current partial frame held in the buffer. */
  get bufferedBytes(): number {
    return this.headerFill + this.bodyFill
  }

  /** Feeds a chunk; returns every frame it completed, in order. */
  push(chunk: Uint8Array): Frame[] {
    if (this.error !== undefined) throw this.error
    if (!(chunk instanceof Uint8Array)) throw new InvalidParametersError(`expected a Uint8Array chunk, got ${typeof chunk}`)
    try {
      return this.consume(chunk)
    } catch (err) {
      this.error = err as Error
      this.body = undefined
      throw err
    }
  }

  private consume(chunk: Uint8Array): Frame[] {
    const out: Frame[] = []
    let off = 0
    const n = chunk.length
    while (off < n) {
      if (this.body === undefined) {
        // Fast path: a whole frame inside the chunk, nothing buffered.
        if (this.headerFill === 0 && n - off >= FRAME_HEADER_LENGTH) {
          const len = readHeader(chunk, off, this.maxFrameSize)
          if (n - off - FRAME_HEADER_LENGTH >= len) {
            out.push({ kind: chunk[off + 2] as number, body: chunk.subarray(off + FRAME_HEADER_LENGTH, off + FRAME_HEADER_LENGTH + len) })
            off += FRAME_HEADER_LENGTH + len
            continue
          }
        }
        const take = Math.min(FRAME_HEADER_LENGTH - this.headerFill, n - off)
        this.header.set(chunk.subarray(off, off + take), this.headerFill)
        this.headerFill += take
        off += take
        if (this.headerFill < FRAME_HEADER_LENGTH) break
        const len = readHeader(this.header, 0, this.maxFrameSize)
        this.kind = this.header[2] as number
        this.body = new Uint8Array(len)
        this.bodyFill = 0
      }
      const body = this.body
      const take = Math.min(body.length - this.bodyFill, n - off)
      body.set(chunk.subarray(off, off + take), this.bodyFill)
      this.bodyFill += take
      off += take
      if (this.bodyFill === body.length) {
        out.push({ kind: this.kind, body })
        this.body = undefined
        this.bodyFill = 0
        this.headerFill = 0
      }
    }
    return out
  }

  /** Call at end of stream: throws TruncatedInputError if a partial frame is buffered. */
  end(): void {
    if (this.error !== undefined) throw this.error
    if (this.bufferedBytes > 0) {
      const err = new TruncatedInputError(`expected the stream to end on a frame boundary, got ${this.bufferedBytes} byte(s) of a partial frame`)
      this.error = err
      throw err
    }
  }
}
