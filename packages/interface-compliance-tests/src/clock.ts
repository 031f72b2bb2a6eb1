/**
 * A manual Clock for tests: time moves, and timers run, only when the test calls `advance`. For
 * code under test that takes an injected `Clock` (every kos-mesh component does).
 */
import type { Clock, TimerHandle } from '@kos-mesh/interface'

/**
 * A Clock whose time moves, and whose timers run (in time order, then in the order they were set), only
 * when the test calls `advance`; starts at `start` ms since the epoch.
 */
export class ManualClock implements Clock {
  private t: number
  private seq = 0
  private readonly timers = new Map<TimerHandle, { fn: () => void; seq: number }>()
  constructor(start = 1_767_225_600_000) { this.t = start }
  now(): number { return this.t }
  /** Timers set and not yet run or cleared. */
  get pending(): number { return this.timers.size }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const h: TimerHandle = { at: this.t + Math.max(0, ms) }
    this.timers.set(h, { fn, seq: this.seq++ })
    return h
  }
  clearTimeout(handle: TimerHandle | undefined): void { if (handle !== undefined) this.timers.delete(handle) }
  sleep(ms: number): Promise<void> { return new Promise((resolve) => { this.setTimeout(resolve, ms) }) }
  /** Moves time by `ms`, running due timers in (time, order set). */
  advance(ms: number): void {
    const end = this.t + ms
    for (;;) {
      let next: [TimerHandle, { fn: () => void; seq: number }] | undefined
      for (const e of this.timers) if (e[0].at <= end && (next === undefined || e[0].at < next[0].at || (e[0].at === next[0].at && e[1].seq < next[1].seq))) next = e
      if (next === undefined) break
      this.timers.delete(next[0])
      this.t = Math.max(this.t, next[0].at)
      next[1].fn()
    }
    this.t = end
  }
}
