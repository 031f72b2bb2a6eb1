/**
 * The real clock: wall time and Node's timers. The one place outside the simulator where time
 * comes from; components take a `Clock` and default to this one.
 */
import type { AbortOptions, Clock, TimerHandle, TimerOptions } from './contracts.js'
import { AbortError } from './errors.js'

interface SystemTimer extends TimerHandle {
  readonly timer: ReturnType<typeof setTimeout>
}

class SystemClock implements Clock {
  now(): number {
    return Date.now()
  }

  setTimeout(fn: () => void, ms: number, options?: TimerOptions): TimerHandle {
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0
    const timer = setTimeout(fn, delay)
    if (options?.unref === true) timer.unref?.()
    const handle: SystemTimer = { at: Date.now() + delay, timer }
    return handle
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    const t = (handle as SystemTimer | undefined)?.timer
    if (t !== undefined) clearTimeout(t)
  }

  sleep(ms: number, options?: AbortOptions): Promise<void> {
    const signal = options?.signal
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(new AbortError(undefined, { cause: signal.reason }))
        return
      }
      const onAbort = (): void => {
        clearTimeout(t)
        reject(new AbortError(undefined, { cause: signal?.reason }))
      }
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }, Number.isFinite(ms) && ms > 0 ? ms : 0)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }
}

/** Wall-clock time and Node's timers. */
export const systemClock: Clock = new SystemClock()

/**
 * Calls `fn` every `ms` of the clock's time until the returned function is called (a timer loop
 * on any Clock, real or virtual). `fn` errors are the caller's to handle.
 */
export function every(clock: Clock, ms: number, fn: () => void, options?: TimerOptions): () => void {
  let handle: TimerHandle | undefined
  let stopped = false
  const tick = (): void => {
    if (stopped) return
    handle = clock.setTimeout(tick, ms, options)
    fn()
  }
  handle = clock.setTimeout(tick, ms, options)
  return () => {
    stopped = true
    clock.clearTimeout(handle)
  }
}
