/**
 * The inbound queue of a KLP connection: decoded frames waiting for the consumer, bounded in bytes.
 * When it holds `maxBytes` the libp2p stream is paused (Yamux then stops granting send window, so
 * the remote's sends block), and it is resumed when the consumer drained it to half. One reader at
 * a time may wait for the next frame. Internal; used by `Libp2pConnection`.
 */
import { InvalidParametersError } from '@kos-mesh/interface'
import type { Stream } from '@libp2p/interface'

/** The consumer waiting for the next frame. */
interface Reader {
  resolve(r: IteratorResult<Uint8Array>): void
  reject(e: Error): void
}

const EMPTY = new Uint8Array(0)

/** Frames in arrival order, with the stream's pause and resume (see the module comment). */
export class InboundQueue {
  private readonly queue: Uint8Array[] = []
  private head = 0
  private queued = 0
  private paused = false
  private reader: Reader | undefined

  constructor(
    private readonly stream: Stream,
    /** Queued bytes at which the stream is paused (resumed at half). */
    private readonly maxBytes: number,
  ) {}

  /** Bytes of decoded frames waiting for the consumer. */
  get bytes(): number {
    return this.queued
  }

  /** Hands a frame to the waiting reader, or queues it (pausing the stream at the bound). */
  push(body: Uint8Array): void {
    if (this.reader !== undefined && this.queued === 0) {
      const r = this.reader
      this.reader = undefined
      r.resolve({ done: false, value: body })
      return
    }
    this.queue.push(body)
    this.queued += body.byteLength
    if (!this.paused && this.queued >= this.maxBytes && this.stream.readStatus === 'readable') {
      this.paused = true
      this.stream.pause()
    }
  }

  /** The oldest queued frame, or undefined; resumes the stream once the queue is down to half. */
  shift(): Uint8Array | undefined {
    if (this.head >= this.queue.length) return undefined
    const f = this.queue[this.head] as Uint8Array
    this.queue[this.head] = EMPTY
    this.head++
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head)
      this.head = 0
    }
    this.queued -= f.byteLength
    if (this.paused && this.queued <= this.maxBytes / 2) {
      this.paused = false
      try { if (this.stream.readStatus === 'paused') this.stream.resume() } catch { /* closing */ }
    }
    return f
  }

  /** Waits for the next frame; rejects with InvalidParametersError while another reader waits. */
  wait(): Promise<IteratorResult<Uint8Array>> {
    if (this.reader !== undefined) return Promise.reject(new InvalidParametersError('expected one reader at a time, got two'))
    return new Promise((resolve, reject) => { this.reader = { resolve, reject } })
  }

  /** Ends the waiting reader (`done`) if nothing is queued: the caller knows no more frames come. */
  endIfDrained(): void {
    if (this.reader !== undefined && this.queued === 0 && this.queue.length - this.head === 0) {
      const r = this.reader
      this.reader = undefined
      r.resolve({ done: true, value: undefined })
    }
  }

  /** Drops every queued frame and rejects the waiting reader with `err` (the connection failed). */
  clear(err: Error): void {
    this.queue.length = 0
    this.head = 0
    this.queued = 0
    if (this.reader !== undefined) {
      const r = this.reader
      this.reader = undefined
      r.reject(err)
    }
  }

  /** Resumes a paused stream whatever is queued (closing: never keep the remote blocked on our account). */
  release(): void {
    if (this.paused) {
      this.paused = false
      try { if (this.stream.readStatus === 'paused') this.stream.resume() } catch { /* closing */ }
    }
  }
}
