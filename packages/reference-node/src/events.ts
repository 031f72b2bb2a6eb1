/**
 * The node's operator log: one structured line per event an operator asks about (connections,
 * refused handshakes, tasks, rejected messages, trust changes, bootstrap, redials), rate-limited per
 * event kind so that a flood (a peer replaying thousands of messages) cannot flood the log. Each
 * kind has a token bucket on the injected clock; lines over the budget are counted, not written,
 * and one summary line (`log events suppressed`, with the count) follows when the kind may write
 * again or at the next periodic flush.
 */
import type { Clock, Logger, TimerHandle } from '@kos-mesh/interface'
import { InvalidParametersError } from '@kos-mesh/interface'

export type EventLevel = 'debug' | 'info' | 'warn' | 'error'

/**
 * The rate limit of the node's operator log lines (`NodeInit.events`): a token bucket per kind of
 * event, and a periodic "log events suppressed" line counting what was left out. A value below its
 * minimum throws InvalidParametersError from `createNode()`.
 */
export interface EventLogInit {
  /** Lines of one kind written at once before the rate limit applies (>= 1). Default 20. */
  burst?: number
  /** Lines of one kind per second in the long run (>= 0). Default 2. */
  perSecond?: number
  /** How often pending "suppressed" summaries are written, ms (>= 1). Default 10,000. */
  summaryIntervalMs?: number
  /** Distinct kinds tracked (>= 1); further kinds share the bucket `other`. Default 128. */
  maxKinds?: number
}

interface Bucket {
  tokens: number
  at: number
  /** Suppressed since the last summary. */
  pending: number
  /** When the first pending line was suppressed. */
  since: number
}

/** A rate-limited, structured event writer on top of a Logger. */
export class EventLog {
  private readonly burst: number
  private readonly perMs: number
  private readonly summaryMs: number
  private readonly maxKinds: number
  private readonly buckets = new Map<string, Bucket>()
  /** Lines suppressed per kind since the start (for metrics). */
  private readonly suppressedTotal = new Map<string, number>()
  /** Lines written per kind since the start (for metrics). */
  private readonly writtenTotal = new Map<string, number>()
  private timer: TimerHandle | undefined
  private running = false

  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    init: EventLogInit = {},
  ) {
    const num = (name: string, v: number | undefined, dflt: number, min: number): number => {
      const n = v ?? dflt
      if (typeof n !== 'number' || !Number.isFinite(n) || n < min) throw new InvalidParametersError(`expected ${name} to be a number >= ${min}, got ${String(v)}`)
      return n
    }
    this.burst = num('burst', init.burst, 20, 1)
    this.perMs = num('perSecond', init.perSecond, 2, 0) / 1000
    this.summaryMs = num('summaryIntervalMs', init.summaryIntervalMs, 10_000, 1)
    this.maxKinds = Math.floor(num('maxKinds', init.maxKinds, 128, 1))
  }

  /** Starts the periodic summary of suppressed lines. */
  start(): void {
    if (this.running) return
    this.running = true
    const tick = (): void => {
      if (!this.running) return
      this.flush()
      this.timer = this.clock.setTimeout(tick, this.summaryMs, { unref: true })
    }
    this.timer = this.clock.setTimeout(tick, this.summaryMs, { unref: true })
  }

  /** Writes the pending summaries and stops the timer. */
  stop(): void {
    this.running = false
    this.clock.clearTimeout(this.timer)
    this.timer = undefined
    this.flush()
  }

  /**
   * Writes `msg` with `{ event: kind, ...fields }` at `level`, unless the kind is over its budget
   * (then it is counted and summarised later). Returns whether the line was written.
   */
  emit(kind: string, level: EventLevel, msg: string, fields: Record<string, unknown> = {}): boolean {
    const key = this.buckets.has(kind) || this.buckets.size < this.maxKinds ? kind : 'other'
    const now = this.clock.now()
    let b = this.buckets.get(key)
    if (b === undefined) {
      b = { tokens: this.burst, at: now, pending: 0, since: now }
      this.buckets.set(key, b)
    }
    b.tokens = Math.min(this.burst, b.tokens + Math.max(0, now - b.at) * this.perMs)
    b.at = now
    if (b.tokens < 1) {
      if (b.pending === 0) b.since = now
      b.pending++
      this.suppressedTotal.set(key, (this.suppressedTotal.get(key) ?? 0) + 1)
      return false
    }
    b.tokens -= 1
    if (b.pending > 0) this.summary(key, b, now)
    this.writtenTotal.set(key, (this.writtenTotal.get(key) ?? 0) + 1)
    this.log[level](msg, { event: kind, ...fields })
    return true
  }

  /** Writes one summary line per kind that has suppressed lines. */
  flush(): void {
    const now = this.clock.now()
    for (const [kind, b] of this.buckets) if (b.pending > 0) this.summary(kind, b, now)
  }

  private summary(kind: string, b: Bucket, now: number): void {
    this.log.warn('log events suppressed', { event: 'log_suppressed', kind, suppressed: b.pending, window_ms: Math.max(0, now - b.since) })
    b.pending = 0
  }

  /** Lines suppressed since the start, by kind. */
  suppressed(): Record<string, number> {
    return Object.fromEntries(this.suppressedTotal)
  }

  /** Lines written since the start, by kind. */
  written(): Record<string, number> {
    return Object.fromEntries(this.writtenTotal)
  }
}
