/**
 * One end of an in-process connection. The two ends of a connection are two `MemoryConnection`s
 * that point at each other (`peer`). Frames travel through the network (`Wire`), which decides
 * their fate (loss, duplication, delay) and calls `deliver` on the receiving end.
 */
import {
  AbortError,
  ConnectionClosedError,
  InvalidParametersError,
  type AbortOptions,
  type Connection,
  type ConnectionDirection,
  type ConnectionStatus,
  type TimerHandle,
  type TransportAddress,
} from '@kos-mesh/interface'
import { FrameTooLargeError, SendBufferFullError, SendTimeoutError, SlowPeerError } from './errors.js'
import type { Scheduler } from './scheduler.js'

/** What a connection needs from the network. */
export interface Wire {
  readonly clock: Scheduler
  /** Sends an admitted frame (already copied) from `src` to `src.peer`. */
  transmit(src: MemoryConnection, frame: Uint8Array): void
  /** Sends a FIN (after every frame in flight) or a RST (right away) from `src` to `src.peer`. */
  control(src: MemoryConnection, kind: 'fin' | 'rst'): void
  /** Bookkeeping when an end reaches `closed`. */
  ended(conn: MemoryConnection): void
}

export interface ConnectionLimits {
  maxBufferedBytes: number
  maxFrameSize: number
  sendTimeoutMs: number
  /** Bytes of frames waiting for room in the remote buffer before send() rejects (SendBufferFullError). */
  maxOutboundBufferBytes: number
  /** Network ms the waiting frames may go without the remote freeing room before SlowPeerError; Infinity disables. */
  sendStallTimeoutMs: number
}

interface SendWaiter {
  frame: Uint8Array
  resolve(): void
  reject(err: Error): void
  cleanup(): void
}

interface ReadWaiter {
  resolve(r: IteratorResult<Uint8Array>): void
  reject(err: Error): void
}

/** Per-direction channel state, kept on the sending end. */
export interface OutChannel {
  /** Delivery time of the last in-order frame (later in-order frames never arrive before it). */
  lastOrderedAt: number
  /** Latest delivery time of anything scheduled on this channel. */
  maxScheduledAt: number
  /** Scheduled deliveries not yet run. */
  pending: number
  /** The network's state of the directed link (cached by the network). */
  link: unknown
}

export class MemoryConnection implements Connection {
  readonly id: string
  readonly localPeer: string
  readonly remotePeer: string
  readonly localAddr: TransportAddress
  readonly remoteAddr: TransportAddress
  readonly direction: ConnectionDirection
  readonly closed: Promise<void>
  /** The other end. Set right after both ends exist. */
  peer!: MemoryConnection
  readonly out: OutChannel = { lastOrderedAt: 0, maxScheduledAt: 0, pending: 0, link: undefined }
  /** Bytes in flight to this end plus bytes queued here and not read yet (the backpressure budget). */
  inboundBytes = 0
  /** No more frames are accepted into the inbound queue. */
  inEnded = false

  private readonly wire: Wire
  private readonly limits: ConnectionLimits
  private _status: ConnectionStatus = 'open'
  private readonly queue: Array<{ data: Uint8Array; accounted: number }> = []
  private head = 0
  private inError: Error | undefined
  private errorThrown = false
  private readonly readers: ReadWaiter[] = []
  private readonly senders: SendWaiter[] = []
  /** Bytes of the copies held by `senders`. */
  private waitingBytes = 0
  /** Network time the remote last freed room while senders waited (or the first one started waiting). */
  private progressAt = 0
  private stallTimer: TimerHandle | undefined
  private closeErr: Error | undefined
  private resolveClosed!: () => void

  constructor(init: {
    id: string
    localPeer: string
    remotePeer: string
    localAddr: string
    remoteAddr: string
    direction: ConnectionDirection
    wire: Wire
    limits: ConnectionLimits
  }) {
    this.id = init.id
    this.localPeer = init.localPeer
    this.remotePeer = init.remotePeer
    this.localAddr = init.localAddr
    this.remoteAddr = init.remoteAddr
    this.direction = init.direction
    this.wire = init.wire
    this.limits = init.limits
    this.closed = new Promise<void>((resolve) => { this.resolveClosed = resolve })
  }

  get status(): ConnectionStatus {
    return this._status
  }

  /** Frames queued here and not read yet. */
  get queuedFrames(): number {
    return this.queue.length - this.head
  }

  get maxBufferedBytes(): number {
    return this.limits.maxBufferedBytes
  }

  /**
   * Bytes held on the way out: copies of frames waiting for room in the remote buffer (frames in
   * flight and queued at the remote count against the remote's `maxBufferedBytes` instead).
   */
  get outboundBufferedBytes(): number {
    return this.waitingBytes
  }

  /** The error that ended the connection (abort, reset, SlowPeerError), if it ended with one. */
  get closeError(): Error | undefined {
    return this.closeErr
  }

  // ---------------------------------------------------------------- sending

  send(frame: Uint8Array, options: AbortOptions = {}): Promise<void> {
    if (this._status !== 'open') return Promise.reject(new ConnectionClosedError(`expected an open connection, got ${this._status} (${this.id})`))
    if (!(frame instanceof Uint8Array)) return Promise.reject(new InvalidParametersError(`expected frame to be a Uint8Array, got ${frame === null ? 'null' : typeof frame}`))
    if (frame.byteLength > this.limits.maxFrameSize) {
      return Promise.reject(new FrameTooLargeError(`expected a frame of at most ${this.limits.maxFrameSize} bytes, got ${frame.byteLength}`))
    }
    const { signal } = options
    if (signal?.aborted === true) return Promise.reject(new AbortError(undefined, { cause: signal.reason }))
    const mustWait = this.senders.length > 0 || !this.canAdmit(frame.byteLength)
    // the outbound bound: an empty queue always takes one frame, otherwise nothing goes past the bound
    if (mustWait && this.waitingBytes > 0 && this.waitingBytes + frame.byteLength > this.limits.maxOutboundBufferBytes) {
      return Promise.reject(new SendBufferFullError(`expected at most ${this.limits.maxOutboundBufferBytes} outbound bytes waiting on the connection, got ${this.waitingBytes} and a frame of ${frame.byteLength} (${this.id})`))
    }
    // A real copy into a plain Uint8Array (Buffer#slice would return a view of the caller's memory).
    const copy = new Uint8Array(frame.byteLength)
    copy.set(frame)
    if (!mustWait) {
      this.wire.transmit(this, copy)
      return Promise.resolve()
    }
    if (this.senders.length === 0) this.progressAt = this.wire.clock.now() // the stall clock starts now
    this.armStall()
    return new Promise<void>((resolve, reject) => {
      let timer: TimerHandle | undefined
      const onAbort = (): void => {
        remove()
        reject(new AbortError(undefined, { cause: signal?.reason }))
      }
      const waiter: SendWaiter = {
        frame: copy,
        resolve,
        reject,
        cleanup: () => {
          if (timer !== undefined) this.wire.clock.clearTimeout(timer)
          signal?.removeEventListener('abort', onAbort)
        },
      }
      const remove = (): void => {
        waiter.cleanup()
        const i = this.senders.indexOf(waiter)
        if (i !== -1) {
          this.senders.splice(i, 1)
          this.waitingBytes -= copy.byteLength
          if (this.senders.length === 0) this.disarmStall()
        }
        // The head may have been the one blocking; later frames may fit now.
        this.pump()
      }
      if (Number.isFinite(this.limits.sendTimeoutMs)) {
        timer = this.wire.clock.setTimeout(() => {
          timer = undefined
          remove()
          reject(new SendTimeoutError(`expected room in the remote buffer within ${this.limits.sendTimeoutMs} ms, got none (${this.id})`))
        }, this.limits.sendTimeoutMs)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.senders.push(waiter)
      this.waitingBytes += copy.byteLength
    })
  }

  /** Watches the waiting senders: the remote must free room at least every `sendStallTimeoutMs`. */
  private armStall(): void {
    const ms = this.limits.sendStallTimeoutMs
    if (this.stallTimer !== undefined || !(ms < Infinity)) return
    this.stallTimer = this.wire.clock.setTimeout(this.stallCheck, Math.max(0, this.progressAt + ms - this.wire.clock.now()))
  }

  private disarmStall(): void {
    if (this.stallTimer === undefined) return
    this.wire.clock.clearTimeout(this.stallTimer)
    this.stallTimer = undefined
  }

  private readonly stallCheck = (): void => {
    this.stallTimer = undefined
    if (this._status !== 'open' || this.senders.length === 0) return
    const ms = this.limits.sendStallTimeoutMs
    if (this.wire.clock.now() - this.progressAt >= ms) {
      this.abort(new SlowPeerError(`expected the remote to free room for our ${this.waitingBytes} waiting bytes within ${ms} ms, got none (${this.id})`))
      return
    }
    this.armStall()
  }

  /** The remote freed room in its buffer (it read, or frames in flight were dropped). */
  drained(): void {
    if (this.senders.length > 0) this.progressAt = this.wire.clock.now()
    this.pump()
  }

  private canAdmit(bytes: number): boolean {
    const peer = this.peer
    if (peer.inEnded) return true // dropped on arrival; nothing to wait for
    return peer.inboundBytes === 0 || peer.inboundBytes + bytes <= peer.limits.maxBufferedBytes
  }

  /** Admits waiting senders, in order, while the remote buffer has room. */
  pump(): void {
    while (this._status === 'open') {
      const w = this.senders[0]
      if (w === undefined || !this.canAdmit(w.frame.byteLength)) break
      this.senders.shift()
      this.waitingBytes -= w.frame.byteLength
      w.cleanup()
      this.wire.transmit(this, w.frame)
      w.resolve()
    }
    if (this.senders.length === 0) this.disarmStall()
  }

  private rejectSenders(err: Error): void {
    const senders = this.senders.splice(0)
    this.waitingBytes = 0
    this.disarmStall()
    for (const w of senders) {
      w.cleanup()
      w.reject(err)
    }
  }

  // ---------------------------------------------------------------- receiving

  /** Called by the network when a frame arrives. `accounted` bytes were charged to `inboundBytes`. */
  deliver(data: Uint8Array, accounted: number): boolean {
    if (this.inEnded) {
      this.release(accounted)
      return false
    }
    const reader = this.readers.shift()
    if (reader !== undefined) {
      reader.resolve({ value: data, done: false })
      this.release(accounted)
    } else {
      this.queue.push({ data, accounted })
    }
    return true
  }

  /** Frees budget for a frame that will never be queued (dropped in flight). */
  release(bytes: number): void {
    if (bytes === 0) return
    this.inboundBytes -= bytes
    this.peer.drained()
  }

  private next(): Promise<IteratorResult<Uint8Array>> {
    if (this.head < this.queue.length) {
      const item = this.queue[this.head] as { data: Uint8Array; accounted: number }
      this.queue[this.head] = undefined as unknown as { data: Uint8Array; accounted: number }
      this.head++
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head)
        this.head = 0
      }
      this.release(item.accounted)
      return Promise.resolve({ value: item.data, done: false })
    }
    if (this.inError !== undefined && !this.errorThrown) {
      this.errorThrown = true
      return Promise.reject(this.inError)
    }
    if (this.inEnded) return Promise.resolve({ value: undefined, done: true })
    return new Promise((resolve, reject) => { this.readers.push({ resolve, reject }) })
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => this.next(),
      // Leaving a `for await` loop stops reading; it does not close the connection.
      return: async () => ({ value: undefined, done: true }),
    }
  }

  private endReaders(): void {
    if (this.head < this.queue.length) return
    const readers = this.readers.splice(0)
    for (const r of readers) {
      if (this.inError !== undefined && !this.errorThrown) {
        this.errorThrown = true
        r.reject(this.inError)
      } else {
        r.resolve({ value: undefined, done: true })
      }
    }
  }

  private dropQueue(): void {
    let bytes = 0
    for (let i = this.head; i < this.queue.length; i++) bytes += (this.queue[i] as { accounted: number }).accounted
    this.queue.length = 0
    this.head = 0
    this.release(bytes)
  }

  // ---------------------------------------------------------------- closing

  private finish(): void {
    this.disarmStall()
    this._status = 'closed'
    this.resolveClosed()
    this.wire.ended(this)
  }

  /**
   * Graceful close: frames already accepted by `send` are still delivered, then the remote's
   * iterator ends. Sends still waiting for buffer room are rejected. This end's iterator yields
   * what is already queued here, then ends. Resolves at once (the FIN travels in network time).
   */
  async close(_options: AbortOptions = {}): Promise<void> {
    if (this._status !== 'open') return this.closed
    this._status = 'closing'
    this.rejectSenders(new ConnectionClosedError(`expected an open connection, got closing (${this.id})`))
    this.inEnded = true
    this.endReaders()
    this.wire.control(this, 'fin')
    this.peer.pump() // senders blocked on our buffer: their frames will be dropped on arrival
    this.finish()
    return this.closed
  }

  /** Immediate close: queued frames are dropped, the iterator throws `err`, the remote is reset. */
  abort(err: Error): void {
    if (this._status === 'closed') return
    this.reset(err instanceof Error ? err : new ConnectionClosedError(String(err)))
    this.wire.control(this, 'rst')
  }

  /** The remote's FIN arrived. */
  remoteClosed(): void {
    if (this._status === 'closed') return
    this.rejectSenders(new ConnectionClosedError(`expected an open connection, got closed by the remote (${this.id})`))
    this.inEnded = true
    this.endReaders()
    this.finish()
  }

  /** Abort without telling the remote (used for a RST from the remote, and by `abort`). */
  reset(err: Error): void {
    if (this._status === 'closed') return
    this._status = 'closing'
    this.closeErr = err
    this.rejectSenders(new ConnectionClosedError(`expected an open connection, got aborted (${this.id})`, { cause: err }))
    this.inEnded = true
    this.inError = err
    this.dropQueue()
    this.endReaders()
    this.finish()
  }
}
