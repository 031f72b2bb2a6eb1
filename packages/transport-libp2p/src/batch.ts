/**
 * Outbound batching: the encoded KLP frames sent in one tick are gathered here and handed to the
 * libp2p stream as one write, so they travel as one Yamux data frame inside one Noise message instead
 * of one of each per KLP frame (each costs a Yamux header, a ChaCha20-Poly1305 seal with its 16-byte
 * tag, a length prefix and a socket write, on both ends).
 */

/** Yamux data frame header (the muxer puts it in front of every stream write). */
const YAMUX_HEADER_LENGTH = 12
/** Largest Noise transport message plaintext (65535-byte message minus the 16-byte tag). */
const NOISE_MAX_PLAINTEXT = 65_535 - 16

/**
 * Largest batch: one batch plus its Yamux header fills one Noise message exactly (65507 bytes), so a
 * full batch is never split into a second, nearly empty Noise message.
 */
export const MAX_BATCH_BYTES = NOISE_MAX_PLAINTEXT - YAMUX_HEADER_LENGTH

/** Encoded frames waiting for the end of the tick, in send order. */
export class FrameBatch {
  private chunks: Uint8Array[] = []
  private length = 0

  /** Bytes gathered (they count towards the connection's outbound bound). */
  get bytes(): number {
    return this.length
  }

  /** Frames gathered. */
  get frames(): number {
    return this.chunks.length
  }

  /** Whether `bytes` more fit without going past MAX_BATCH_BYTES. */
  fits(bytes: number): boolean {
    return this.length + bytes <= MAX_BATCH_BYTES
  }

  /** Appends one encoded frame (kept by reference: the caller hands over ownership). */
  push(wire: Uint8Array): void {
    this.chunks.push(wire)
    this.length += wire.byteLength
  }

  /**
   * Empties the batch and returns its bytes as one buffer (the frame itself when there is only one,
   * so a lone frame, e.g. a request, is not copied again), or undefined when it was empty.
   */
  take(): Uint8Array | undefined {
    const chunks = this.chunks
    const n = chunks.length
    if (n === 0) return undefined
    const total = this.length
    this.chunks = []
    this.length = 0
    if (n === 1) return chunks[0] as Uint8Array
    const out = new Uint8Array(total)
    let off = 0
    for (let i = 0; i < n; i++) {
      const c = chunks[i] as Uint8Array
      out.set(c, off)
      off += c.byteLength
    }
    return out
  }

  /** Drops whatever was gathered (the connection failed). */
  clear(): void {
    this.chunks = []
    this.length = 0
  }
}
