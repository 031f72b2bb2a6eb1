/**
 * The send stall deadline of a KLP connection: while bytes are held on the way out (copies of
 * frames waiting for their turn, the batch, the stream's write buffer), the stream must pass some
 * on (the muxer has window, i.e. the peer reads) at least every `deadlineMs`; otherwise the
 * connection is ended (`Libp2pConnection` aborts it with SlowPeerError). Runs on the injected
 * clock. Internal.
 */
import type { Clock, TimerHandle } from '@kos-mesh/interface'

/** What the deadline watches on its connection. */
export interface StallSubject {
  /** Bytes held on the way out now. */
  held(): number
  /** Bytes the stream has passed on to the muxer so far (only grows). */
  drained(): number
  /** Whether the connection has already ended with an error (the watch then stops). */
  failed(): boolean
  /** No progress within `deadlineMs`: end the connection. */
  stalled(deadlineMs: number): void
}

/** The stall deadline is checked every quarter of it (at most every second): it fires within 1.25x. */
export function stallTickMs(deadlineMs: number): number {
  return Math.max(1, Math.min(deadlineMs / 4, 1_000))
}

/** Watches one connection's outbound progress while it holds bytes (see the module comment). */
export class SendStallWatch {
  private timer: TimerHandle | undefined
  private since = 0
  private done = 0

  constructor(
    private readonly clock: Clock,
    /** The deadline, ms; `Infinity` disables the watch. */
    private readonly deadlineMs: number,
    private readonly subject: StallSubject,
  ) {}

  /** Starts watching from now (bytes are held), unless it already does, is disabled or the connection failed. */
  arm(): void {
    const ms = this.deadlineMs
    if (!(ms < Infinity) || this.subject.failed() || this.timer !== undefined) return
    this.since = this.clock.now()
    this.done = this.subject.drained()
    this.timer = this.clock.setTimeout(this.tick, stallTickMs(ms), { unref: true })
  }

  /** Stops watching (the connection ended). */
  stop(): void {
    this.clock.clearTimeout(this.timer)
    this.timer = undefined
  }

  /** While bytes are held, some must have been passed on within the deadline. */
  private readonly tick = (): void => {
    this.timer = undefined
    if (this.subject.failed()) return
    if (this.subject.held() === 0) return
    const ms = this.deadlineMs
    const now = this.clock.now()
    const done = this.subject.drained()
    if (done > this.done) {
      this.since = now
      this.done = done
    } else if (now - this.since >= ms) {
      this.subject.stalled(ms)
      return
    }
    this.timer = this.clock.setTimeout(this.tick, stallTickMs(ms), { unref: true })
  }
}
