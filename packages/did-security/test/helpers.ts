/** In-memory message pipes for handshake tests (test-only). */
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

/** A manual Clock (test-only): the compliance package's. */
export { ManualClock } from '@kos-mesh/interface-compliance-tests'
