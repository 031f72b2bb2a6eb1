/**
 * Sealed records waiting for the consumer, kept as bytes: one growable buffer per connection with
 * a 4-byte length before each record, not one object (and one small buffer) per record. A peer
 * that is not read (the consumer's backpressure or CPU budget) may have up to
 * `maxInboundBufferBytes` of small records waiting; as objects they were thousands of long-lived
 * allocations the garbage collector had to trace and promote, as bytes they are one. Internal.
 */

const LEN = 4
/** A buffer of at most this size is kept when it drains (larger ones are let go). */
const KEEP_BYTES = 64 * 1024

export class SealedRecords {
  private buf: Uint8Array = new Uint8Array(0)
  private head = 0
  private tail = 0
  /** Records held. */
  count = 0

  /** Appends a copy of `record` (which may be a view of a socket chunk or a reused buffer). */
  push(record: Uint8Array): void {
    const need = LEN + record.byteLength
    if (this.tail + need > this.buf.byteLength) {
      const live = this.tail - this.head
      if (live + need <= this.buf.byteLength && this.head >= live) {
        // room once the consumed front is dropped: move what is left to the start
        this.buf.copyWithin(0, this.head, this.tail)
      } else {
        const next = Buffer.allocUnsafe(Math.max(this.buf.byteLength * 2, live + need, 4096))
        next.set(this.buf.subarray(this.head, this.tail))
        this.buf = next
      }
      this.head = 0
      this.tail = live
    }
    const b = this.buf
    const n = record.byteLength
    const t = this.tail
    b[t] = n >>> 24
    b[t + 1] = (n >>> 16) & 0xff
    b[t + 2] = (n >>> 8) & 0xff
    b[t + 3] = n & 0xff
    b.set(record, t + LEN)
    this.tail = t + need
    this.count++
  }

  /**
   * The oldest record, as a view valid until the next `push` or `clear` (open it at once). Its
   * bytes are given up: the caller may decrypt the view in place.
   */
  shift(): Uint8Array {
    if (this.count === 0) throw new RangeError('expected a sealed record, got none')
    const b = this.buf
    const h = this.head
    const n = ((b[h]! << 24) >>> 0) + (b[h + 1]! << 16) + (b[h + 2]! << 8) + b[h + 3]!
    const view = b.subarray(h + LEN, h + LEN + n)
    this.head = h + LEN + n
    if (--this.count === 0) {
      this.head = this.tail = 0
      // a burst's large buffer is let go once it drained (the view stays valid: nothing reuses it)
      if (b.byteLength > KEEP_BYTES) this.buf = new Uint8Array(0)
    }
    return view
  }

  /** Bytes held (records and their length prefixes). */
  get bytes(): number {
    return this.tail - this.head
  }

  clear(): void {
    this.buf = new Uint8Array(0)
    this.head = this.tail = this.count = 0
  }
}
