/**
 * The write path of a KLP connection: encoded frames sent in one tick are gathered in a FrameBatch
 * (batch.ts) and handed to the libp2p stream as one write at the end of the tick (process.nextTick,
 * so no event-loop turn is added), or at once when the batch is full (one Noise message). A frame
 * larger than a batch goes to the stream on its own, after the batch before it. A write the stream
 * refuses fails the connection. Internal; used by `Libp2pConnection`, which owns the bounds, the
 * write turns and the close.
 */
import { FRAME_HEADER_LENGTH } from '@kos-mesh/klp-codec'
import type { Stream } from '@libp2p/interface'
import { FrameBatch, MAX_BATCH_BYTES } from './batch.js'
import { mapStreamError } from './stream-error.js'

/** What the writer needs of its connection. */
export interface OutboundOwner {
  /** Whether the connection has already ended with an error (nothing is written then). */
  failed(): boolean
  /** Ends the connection with `err` (the stream refused a write). */
  fail(err: Error): void
  /** Bytes wait in the stream's write buffer: start the send stall deadline. */
  held(): void
}

/** Batches encoded frames into stream writes (see the module comment). */
export class OutboundWriter {
  /** Frames sent in this tick, handed to the stream as one write at its end (see flush). */
  private readonly batch = new FrameBatch()
  private flushScheduled = false
  /** Bytes ever handed to the stream (so bytes the stream passed on = sent - writeBufferLength). */
  private sent = 0

  constructor(private readonly stream: Stream, private readonly owner: OutboundOwner) {}

  /** Bytes in the batch of this tick (they count towards the connection's outbound bound). */
  get batchBytes(): number {
    return this.batch.bytes
  }

  /** Bytes the stream has passed on to the muxer so far. */
  get drained(): number {
    return this.sent - this.stream.writeBufferLength
  }

  /**
   * Adds one encoded frame to the batch of this tick (flushed at its end), or, for a frame larger
   * than a batch, hands the batch and then the frame to the stream. When the stream refuses bytes
   * the connection is failed (the caller checks).
   */
  enqueue(wire: Uint8Array): void {
    const n = wire.byteLength
    if (!this.batch.fits(n)) this.flush()
    if (!this.owner.failed()) {
      if (n >= MAX_BATCH_BYTES) {
        this.write(wire)
      } else {
        this.batch.push(wire)
        // full (no room for another header): out now; otherwise at the end of the tick
        if (!this.batch.fits(FRAME_HEADER_LENGTH + 1)) this.flush()
        else if (!this.flushScheduled) {
          this.flushScheduled = true
          process.nextTick(this.onTickEnd)
        }
      }
    }
  }

  private readonly onTickEnd = (): void => {
    this.flushScheduled = false
    this.flush()
  }

  /** Hands the batch to the stream as one write. Never throws: a refusal fails the connection. */
  flush(): void {
    const wire = this.batch.take()
    if (wire === undefined || this.owner.failed()) return
    this.write(wire)
  }

  /** Drops the batch (the connection ended). */
  clear(): void {
    this.batch.clear()
  }

  private write(wire: Uint8Array): void {
    try {
      this.stream.send(wire)
    } catch (err) {
      // the stream's write end is gone (reset, transport closed): frames already accepted are lost
      this.owner.fail(mapStreamError(err))
      return
    }
    this.sent += wire.byteLength
    if (this.stream.writeBufferLength > 0) this.owner.held()
  }
}
