/**
 * The network's clock and event queue. One min-heap of timed events ordered by (time, insertion),
 * used in both modes:
 * - `real`: time is wall-clock; one `setTimeout` is armed for the earliest event.
 * - `virtual`: time only moves when the caller advances it (`advance`, `runFor`); a discrete-event
 *   simulation that runs as fast as the CPU allows and is fully deterministic.
 */
import { AbortError, type AbortOptions, type Clock, type TimerHandle, type TimerOptions } from '@kos-mesh/interface'
import { VirtualTimeError } from './errors.js'

/**
 * How the network keeps time: `real` (the system clock's timers) or `virtual` (simulated time that moves
 * only when the test runs it).
 */
export type TimeMode = 'real' | 'virtual'

/**
 * The simulator's clock: exactly the interface `Clock` (hand `network.clock` to routers, discovery
 * and services as their clock).
 *
 * @deprecated use `Clock` from `@kos-mesh/interface`.
 */
export type SimClock = Clock

interface Event extends TimerHandle {
  at: number
  seq: number
  fn: (() => void) | null
  /** The scheduler that owns it: handles of other clocks are ignored by `clearTimeout`. */
  readonly owner: Scheduler
  /** Keeps a real-time process alive (not `unref`). */
  readonly ref: boolean
}

function before(a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq)
}

/** A binary min-heap of events. */
class EventHeap {
  private readonly items: Event[] = []
  get size(): number { return this.items.length }
  peek(): Event | undefined { return this.items[0] }
  push(ev: Event): void {
    const items = this.items
    items.push(ev)
    let i = items.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      const parent = items[p] as Event
      if (!before(ev, parent)) break
      items[i] = parent
      i = p
    }
    items[i] = ev
  }
  pop(): Event | undefined {
    const items = this.items
    const top = items[0]
    const last = items.pop()
    if (top === undefined || last === undefined || items.length === 0) return top
    let i = 0
    const n = items.length
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) break
      const r = l + 1
      let c = l
      if (r < n && before(items[r] as Event, items[l] as Event)) c = r
      if (!before(items[c] as Event, last)) break
      items[i] = items[c] as Event
      i = c
    }
    items[i] = last
    return top
  }
}

/** Options of `runFor` / `runUntilIdle`. */
export interface RunOptions {
  signal?: AbortSignal
  /** Events up to this many ms apart run in one batch between event-loop turns. Default 0 (exact). */
  stepMs?: number
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/**
 * Network time and timers; implements the interface `Clock`. In real mode `unref` timers do not keep
 * the process alive (the one wall-clock timer is unref'd while only such timers are pending); in
 * virtual mode `unref` means nothing.
 */
export class Scheduler implements Clock {
  readonly mode: TimeMode
  private readonly heap = new EventHeap()
  private seq = 0
  private live = 0
  /** Pending events that keep a real-time process alive. */
  private liveRef = 0
  private virtualNow: number
  private readonly epoch: number
  private readonly perfStart: number
  private timer: ReturnType<typeof setTimeout> | undefined
  private timerAt = Infinity
  private running = false

  constructor(mode: TimeMode, startTime: number) {
    this.mode = mode
    this.virtualNow = startTime
    this.epoch = Date.now()
    this.perfStart = performance.now()
  }

  now(): number {
    return this.mode === 'virtual' ? this.virtualNow : this.epoch + (performance.now() - this.perfStart)
  }

  /** Number of scheduled callbacks not yet run. */
  get pending(): number { return this.live }

  setTimeout(fn: () => void, ms: number, options?: TimerOptions): TimerHandle {
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0
    return this.at(this.now() + delay, fn, options)
  }

  /**
   * Schedules at an absolute network time. Events run in (time, scheduling order); a time in the
   * past runs at the next opportunity, still in that order.
   */
  at(time: number, fn: () => void, options?: TimerOptions): TimerHandle {
    const ref = options?.unref !== true
    const ev: Event = { at: time, seq: this.seq++, fn, owner: this, ref }
    this.heap.push(ev)
    this.live++
    if (ref) this.liveRef++
    if (this.mode === 'real') this.arm()
    return ev
  }

  /** Cancels a timer; a handle of another clock, or of a timer that already ran, is ignored. */
  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle === undefined || (handle as Partial<Event>).owner !== this) return
    const ev = handle as Event
    if (ev.fn === null) return
    ev.fn = null
    this.live--
    if (ev.ref) {
      this.liveRef--
      if (this.liveRef === 0 && this.mode === 'real') this.syncRef()
    }
  }

  sleep(ms: number, options: AbortOptions = {}): Promise<void> {
    const { signal } = options
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(new AbortError(undefined, { cause: signal.reason }))
        return
      }
      if (!(ms > 0)) {
        // No network time to wait: settle on the microtask queue (works without advancing virtual time).
        queueMicrotask(() => {
          if (signal?.aborted === true) reject(new AbortError(undefined, { cause: signal.reason }))
          else resolve()
        })
        return
      }
      const onAbort = (): void => {
        this.clearTimeout(handle)
        reject(new AbortError(undefined, { cause: signal?.reason }))
      }
      const handle = this.setTimeout(() => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }, ms)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /**
   * Runs every event due at or before `until` (in time order). With `window` set, stops at the
   * first event later than (time of the first event run + window). Returns how many ran.
   */
  private runDue(until: number, window?: number): number {
    let ran = 0
    let first: number | undefined
    for (;;) {
      const top = this.heap.peek()
      if (top === undefined || top.at > until) break
      if (window !== undefined && first !== undefined && top.at > first + window) break
      this.heap.pop()
      const fn = top.fn
      if (fn === null) continue
      top.fn = null
      this.live--
      if (top.ref) this.liveRef--
      first ??= top.at
      if (this.mode === 'virtual' && top.at > this.virtualNow) this.virtualNow = top.at
      ran++
      fn()
    }
    return ran
  }

  // ------------------------------------------------------------------ real time

  private arm(): void {
    let top = this.heap.peek()
    while (top !== undefined && top.fn === null) {
      this.heap.pop()
      top = this.heap.peek()
    }
    if (top === undefined) {
      if (this.timer !== undefined) clearTimeout(this.timer)
      this.timer = undefined
      this.timerAt = Infinity
      return
    }
    if (this.timer !== undefined && this.timerAt <= top.at) {
      this.syncRef()
      return
    }
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timerAt = top.at
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.timerAt = Infinity
      this.runDue(this.now())
      this.arm()
    }, Math.max(0, top.at - this.now()))
    this.syncRef()
  }

  /** The wall-clock timer keeps the process alive only while a pending event does not ask otherwise. */
  private syncRef(): void {
    const t = this.timer
    if (t === undefined) return
    if (this.liveRef > 0) t.ref?.()
    else t.unref?.()
  }

  /** Cancels the wall-clock timer (network disposal). Pending events stay queued. */
  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.timerAt = Infinity
  }

  // ------------------------------------------------------------------ virtual time

  private assertVirtual(what: string): void {
    if (this.mode !== 'virtual') throw new VirtualTimeError(`${what} needs a virtual-time network, got time: '${this.mode}'`)
  }

  /**
   * Advances virtual time by `ms`, running due events synchronously (no promise callbacks run in
   * between). Returns the number of events run.
   */
  advance(ms: number): number {
    this.assertVirtual('advance()')
    if (this.running) throw new VirtualTimeError('expected no runFor() in progress, got advance() during runFor()')
    const target = this.virtualNow + Math.max(0, ms)
    const ran = this.runDue(target)
    this.virtualNow = target
    return ran
  }

  /**
   * Advances virtual time by `ms`. Between distinct event times it yields to the event loop so that
   * promise-based code (readers, handlers, protocol loops) reacts before time moves on.
   *
   * `stepMs` (default 0: exact) lets events up to `stepMs` apart run in one batch before yielding:
   * far fewer event-loop turns for large simulations, at the price of reactions happening up to
   * `stepMs` late in virtual time. Still deterministic.
   */
  async runFor(ms: number, options: RunOptions = {}): Promise<number> {
    this.assertVirtual('runFor()')
    if (this.running) throw new VirtualTimeError('expected one runFor() at a time, got a second concurrent call')
    this.running = true
    const target = this.virtualNow + Math.max(0, ms)
    let ran = 0
    try {
      await yieldToEventLoop()
      for (;;) {
        if (options.signal?.aborted === true) throw new AbortError(undefined, { cause: options.signal.reason })
        const n = this.runDue(target, Math.max(0, options.stepMs ?? 0))
        if (n === 0) break
        ran += n
        await yieldToEventLoop()
      }
      this.virtualNow = target
      await yieldToEventLoop()
    } finally {
      this.running = false
    }
    return ran
  }

  /**
   * Runs virtual time until no event is pending (or `maxMs` of virtual time passed, default
   * 1 hour). Returns the virtual milliseconds elapsed.
   */
  async runUntilIdle(options: RunOptions & { maxMs?: number } = {}): Promise<number> {
    this.assertVirtual('runUntilIdle()')
    if (this.running) throw new VirtualTimeError('expected one runFor()/runUntilIdle() at a time, got a second concurrent call')
    this.running = true
    const start = this.virtualNow
    const limit = start + (options.maxMs ?? 3_600_000)
    const window = Math.max(0, options.stepMs ?? 0)
    try {
      await yieldToEventLoop()
      for (;;) {
        if (options.signal?.aborted === true) throw new AbortError(undefined, { cause: options.signal.reason })
        if (this.runDue(limit, window) === 0) break
        await yieldToEventLoop()
      }
    } finally {
      this.running = false
    }
    return this.virtualNow - start
  }

}
