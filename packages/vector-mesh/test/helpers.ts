import { createHash } from 'node:crypto'
import { identityFromSeed, type Identity } from '@kos-mesh/did-security'
import type { Clock, KeyValueStore, TimerHandle } from '@kos-mesh/interface'
import { mulberry32 } from '@kos-mesh/interface'

export function identity(name: string): Identity {
  return identityFromSeed(new Uint8Array(createHash('sha256').update(`vm-test ${name}`).digest()))
}

/** A manual clock for unit tests. */
export function manualClock(start = 1_700_000_000_000): Clock & { set(t: number): void } {
  let now = start
  return {
    now: () => now,
    set: (t: number) => { now = t },
    setTimeout: (_fn: () => void, ms: number): TimerHandle => ({ at: now + ms }),
    clearTimeout: () => {},
    sleep: async () => {},
  }
}

/** An in-memory KeyValueStore that can be made to "crash" (throw) on the n-th put. */
export class MemoryKv implements KeyValueStore {
  readonly map = new Map<string, Uint8Array>()
  crashAfterPuts = Infinity
  puts = 0
  async get(key: string) { return this.map.get(key)?.slice() }
  async put(key: string, value: Uint8Array) {
    if (this.puts >= this.crashAfterPuts) throw new Error('crash')
    this.puts++
    this.map.set(key, value.slice())
  }
  async delete(key: string) { this.map.delete(key) }
  async has(key: string) { return this.map.has(key) }
  async *query(prefix: string, options?: { limit?: number }) {
    const keys = [...this.map.keys()].filter((k) => k.startsWith(prefix)).sort()
    let n = 0
    for (const key of keys) {
      if (options?.limit !== undefined && n++ >= options.limit) return
      const value = this.map.get(key)
      if (value !== undefined) yield { key, value: value.slice() }
    }
  }
}

/** Deterministic pseudo-random numbers (interface's mulberry32). */
export const rng = mulberry32

export function randomVector(r: () => number, dims: number): number[] {
  return Array.from({ length: dims }, () => r() * 2 - 1)
}
