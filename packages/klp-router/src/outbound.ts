import { AbortError, InvalidParametersError, type Connection } from '@kos-mesh/interface'
import { SendQueueFullError } from './errors.js'

export interface OutboundInit {
  /** Bytes waiting to be handed to one connection. Default 4 MiB (always room for one frame). */
  maxBytesPerConnection?: number
  /** Bytes waiting over all connections together. Default 64 MiB. */
  maxBytesTotal?: number
}

interface Item {
  frame: Uint8Array
  /** Set for `deliver()`: settles once the connection took the frame (or failed). */
  done?: (err?: Error) => void
}

interface Outbox {
  readonly conn: Connection
  items: Item[]
  head: number
  bytes: number
  writing: boolean
  /** `deliver()` callers waiting for room, in order. */
  waiters: Array<() => void>
}

export interface OutboundStats {
  /** Bytes waiting over all connections. */
  queuedBytes: number
  /** Frames dropped because a connection's (or the total) outbound bound was reached. */
  dropped: number
  /** Frames the connection refused or lost (closed, aborted) after they were queued. */
  failed: number
}

/**
 * The router's outbound side: one FIFO per connection, bounded in bytes per connection and in
 * total, drained by one writer per connection that awaits the transport's `send()`. The pipeline
 * never waits for a peer: `post()` queues or drops at once, so a peer that stops reading holds no
 * pipeline slot and no more than its byte bound (and the transport aborts it when its send buffer
 * stays full past its deadline). Callers that want backpressure (`send()`, `request()`) use
 * `deliver()`, which waits for room and for the connection to take the frame.
 */
export class OutboundQueues {
  private readonly boxes = new Map<Connection, Outbox>()
  readonly maxBytesPerConnection: number
  readonly maxBytesTotal: number
  private total = 0
  private dropped = 0
  private failed = 0
  /** Called after a frame was handed to a connection (metrics). */
  onSent: (frame: Uint8Array) => void = () => {}
  /** Called when a queued frame could not be handed over (the connection failed). */
  onError: (conn: Connection, err: unknown) => void = () => {}

  constructor(init: OutboundInit = {}) {
    this.maxBytesPerConnection = init.maxBytesPerConnection ?? 4 * 1024 * 1024
    this.maxBytesTotal = init.maxBytesTotal ?? 64 * 1024 * 1024
    if (!(this.maxBytesPerConnection >= 1) || !(this.maxBytesTotal >= this.maxBytesPerConnection)) {
      throw new InvalidParametersError(`expected outbound bounds 1 <= per connection <= total, got ${this.maxBytesPerConnection} and ${this.maxBytesTotal}`)
    }
  }

  stats(): OutboundStats {
    return { queuedBytes: this.total, dropped: this.dropped, failed: this.failed }
  }

  /** Bytes waiting for one connection. */
  queuedBytes(conn: Connection): number {
    return this.boxes.get(conn)?.bytes ?? 0
  }

  private fits(box: Outbox | undefined, n: number): boolean {
    const queued = box?.bytes ?? 0
    // one frame always fits when nothing at all is queued (a frame may be larger than a bound)
    if (this.total === 0) return true
    if (queued > 0 && queued + n > this.maxBytesPerConnection) return false
    return this.total + n <= this.maxBytesTotal
  }

  /**
   * Queues a frame without waiting. Returns false (the frame is dropped and counted) when the
   * connection's or the total bound would be exceeded, or the connection is not open.
   */
  post(conn: Connection, frame: Uint8Array): boolean {
    if (conn.status !== 'open') {
      this.dropped++
      return false
    }
    const box = this.boxes.get(conn)
    if (!this.fits(box, frame.byteLength)) {
      this.dropped++
      return false
    }
    this.push(conn, box, { frame })
    return true
  }

  /**
   * Queues a frame, waiting (FIFO, abortable) while the connection's bound is reached; resolves
   * once the connection took the frame, rejects with the connection's error when it could not.
   */
  async deliver(conn: Connection, frame: Uint8Array, signal?: AbortSignal): Promise<void> {
    for (;;) {
      if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason })
      if (conn.status !== 'open') throw new SendQueueFullError(`expected an open connection to ${conn.remotePeer}, got ${conn.status}`)
      const box = this.boxes.get(conn)
      if (this.fits(box, frame.byteLength)) break
      if (box === undefined) throw new SendQueueFullError(`expected room in the router's outbound queues, got ${this.total} of ${this.maxBytesTotal} bytes queued`)
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          const i = box.waiters.indexOf(wake)
          if (i >= 0) box.waiters.splice(i, 1)
          reject(new AbortError(undefined, { cause: signal?.reason }))
        }
        const wake = (): void => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        }
        signal?.addEventListener('abort', onAbort, { once: true })
        box.waiters.push(wake)
      })
    }
    await new Promise<void>((resolve, reject) => {
      this.push(conn, this.boxes.get(conn), { frame, done: (err) => (err === undefined ? resolve() : reject(err)) })
    })
  }

  private push(conn: Connection, box: Outbox | undefined, item: Item): void {
    if (box === undefined) {
      box = { conn, items: [], head: 0, bytes: 0, writing: false, waiters: [] }
      this.boxes.set(conn, box)
    }
    box.items.push(item)
    box.bytes += item.frame.byteLength
    this.total += item.frame.byteLength
    if (!box.writing) void this.drain(box)
  }

  private async drain(box: Outbox): Promise<void> {
    box.writing = true
    const conn = box.conn
    try {
      while (box.head < box.items.length) {
        const item = box.items[box.head]!
        box.items[box.head++] = undefined as unknown as Item
        let err: Error | undefined
        try {
          await conn.send(item.frame)
          this.onSent(item.frame)
        } catch (e) {
          err = e instanceof Error ? e : new Error(String(e))
        }
        box.bytes -= item.frame.byteLength
        this.total -= item.frame.byteLength
        if (box.head > 64 && box.head * 2 > box.items.length) {
          box.items = box.items.slice(box.head)
          box.head = 0
        }
        item.done?.(err)
        if (err !== undefined) {
          this.failed++
          this.onError(conn, err)
          if (conn.status !== 'open') {
            this.discard(box, err)
            return
          }
        }
        const w = box.waiters.shift()
        w?.()
      }
    } finally {
      box.writing = false
      if (box.head >= box.items.length && this.boxes.get(conn) === box) {
        this.boxes.delete(conn)
        for (const w of box.waiters.splice(0)) w()
      }
    }
  }

  /** Drops everything queued for a connection (it closed); `deliver()` callers see `err`. */
  private discard(box: Outbox, err: Error): void {
    for (let i = box.head; i < box.items.length; i++) {
      const item = box.items[i]!
      this.failed++
      box.bytes -= item.frame.byteLength
      this.total -= item.frame.byteLength
      item.done?.(err)
    }
    box.items = []
    box.head = 0
    this.boxes.delete(box.conn)
    for (const w of box.waiters.splice(0)) w()
  }

  /** Forgets a closed connection's queue. */
  remove(conn: Connection, err: Error): void {
    const box = this.boxes.get(conn)
    if (box !== undefined) this.discard(box, err)
  }

  clear(err: Error): void {
    for (const box of [...this.boxes.values()]) this.discard(box, err)
  }
}
