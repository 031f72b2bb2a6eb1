/** In-memory message pipes for handshake tests (test-only). */
import type { Clock, TimerHandle } from '@kos-mesh/interface'
import type { HandshakeIO } from '../src/index.js'

export interface Pipe extends HandshakeIO { sent: Uint8Array[] }

class Queue {
  private items: Uint8Array[] = []
  private waiters: Array<(m: Uint8Array) => void> = []
  push(m: Uint8Array): void { const w = this.waiters.shift(); if (w !== undefined) w(m); else this.items.push(m) }
  pop(signal?: AbortSignal): Promise<Uint8Array> {
    const m = this.items.shift()
    if (m !== undefined) return Promise.resolve(m)
    return new Promise((resolve, reject) => {
      const w = (x: Uint8Array): void => { resolve(x) }
      this.waiters.push(w)
      signal?.addEventListener('abort', () => { this.waiters = this.waiters.filter((v) => v !== w); reject(signal.reason as Error) }, { once: true })
    })
  }
}

/** Two connected ends; `tap` can rewrite or drop messages going a -> b (index i) and b -> a. */
export function pipePair(tap?: { aToB?: (m: Uint8Array, i: number) => Uint8Array | undefined; bToA?: (m: Uint8Array, i: number) => Uint8Array | undefined }): [Pipe, Pipe] {
  const qa = new Queue(); const qb = new Queue()
  let ia = 0; let ib = 0
  const a: Pipe = { sent: [], write(m) { a.sent.push(m); const x = tap?.aToB ? tap.aToB(m, ia++) : m; if (x !== undefined) qb.push(x) }, read: (o) => qa.pop(o?.signal) }
  const b: Pipe = { sent: [], write(m) { b.sent.push(m); const x = tap?.bToA ? tap.bToA(m, ib++) : m; if (x !== undefined) qa.push(x) }, read: (o) => qb.pop(o?.signal) }
  return [a, b]
}

/** A manual Clock (test-only): time moves, and timers run, only on `advance`. */
export class ManualClock implements Clock {
  private t: number
  private seq = 0
  private readonly timers = new Map<TimerHandle, { fn: () => void; seq: number }>()
  constructor(start = 0) { this.t = start }
  now(): number { return this.t }
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
