/**
 * Data frames out (`Router.sendData`). The frame is a copy of the caller's bytes behind the
 * envelope header. For a connection that keeps no reference to a frame once its `send()` settled
 * (it declares `copiesOnSend: true`, as transport-tcp's does: it encrypts or copies the frame
 * before `send()` returns), the copy goes into a buffer reused from a small free list, so a bulk
 * transfer does not allocate a fresh chunk-sized buffer per chunk (each one is external memory,
 * and their churn made the garbage collector run often). Any other connection gets a fresh frame
 * each time. At most MAX_FREE buffers are kept, each reused only after the send it served settled.
 * Internal.
 */
import type { Connection } from '@kos-mesh/interface'
import { ENVELOPE_HEADER_BYTES, encodeDataFrame, writeDataFrame } from './envelope.js'

/** Free frame buffers kept (two chunks in flight per bulk transfer and a few sizes). */
const MAX_FREE = 8

/** What `send` needs of the outbound queues. */
export type Deliver = (conn: Connection, frame: Uint8Array, signal?: AbortSignal) => Promise<void>

/** True when `conn` says it holds no reference to a frame after its `send()` settled. */
export function copiesOnSend(conn: Connection): boolean {
  return (conn as Connection & { copiesOnSend?: unknown }).copiesOnSend === true
}

export class DataFrames {
  private readonly free: Uint8Array[] = []
  /** Frames built in a reused buffer (for tests and metrics). */
  reused = 0

  constructor(private readonly deliver: Deliver) {}

  /** Builds the frame (synchronously: `data` may be reused once this returns) and delivers it. */
  async send(conn: Connection, channel: number, data: Uint8Array, signal?: AbortSignal): Promise<void> {
    if (!copiesOnSend(conn)) {
      await this.deliver(conn, encodeDataFrame(channel, data), signal)
      return
    }
    const frame = writeDataFrame(this.take(ENVELOPE_HEADER_BYTES + data.byteLength), channel, data)
    try {
      await this.deliver(conn, frame, signal)
    } finally {
      // settled: the connection took (encrypted or copied) the frame, or never will
      this.free.push(frame)
      if (this.free.length > MAX_FREE) this.free.shift()
    }
  }

  private take(n: number): Uint8Array {
    for (let i = this.free.length - 1; i >= 0; i--) {
      const b = this.free[i]!
      if (b.byteLength !== n) continue
      this.free.splice(i, 1)
      this.reused++
      return b
    }
    return new Uint8Array(n)
  }

  /** Buffers kept for reuse. */
  get kept(): number {
    return this.free.length
  }
}
