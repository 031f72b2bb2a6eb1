import { QueueFullError, type AbortOptions, type KeyValueStore, type Startable } from '@kos-mesh/interface'
import { aborted, checkKey, checkLimit, checkValue, compareKeys } from './keys.js'

/** A KeyValueStore that also has a lifecycle (the node starts and stops it). */
export interface NodeStore extends KeyValueStore, Startable {
  /** Short name for logs: `memory`, `level`. */
  readonly kind: string
}

export interface MemoryStoreInit {
  /** Largest number of keys kept; `put` of a new key beyond it throws. Default 1,000,000. */
  maxEntries?: number
}

class MemoryStore implements NodeStore {
  readonly kind = 'memory'
  private readonly values = new Map<string, Uint8Array>()
  /** Keys in UTF-8 byte order. */
  private readonly keys: string[] = []
  private readonly maxEntries: number

  constructor(init: MemoryStoreInit) {
    this.maxEntries = init.maxEntries ?? 1_000_000
  }

  start(): void {}
  stop(): void {}

  /** Index of the first key >= `key`. */
  private lowerBound(key: string): number {
    let lo = 0
    let hi = this.keys.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (compareKeys(this.keys[mid] as string, key) < 0) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  async get(key: string, options?: AbortOptions): Promise<Uint8Array | undefined> {
    aborted(options)
    checkKey(key)
    const v = this.values.get(key)
    return v === undefined ? undefined : v.slice()
  }

  async put(key: string, value: Uint8Array, options?: AbortOptions): Promise<void> {
    aborted(options)
    checkKey(key)
    checkValue(value)
    if (!this.values.has(key)) {
      if (this.values.size >= this.maxEntries) {
        throw new QueueFullError(`expected at most ${this.maxEntries} entries, got one more`)
      }
      this.keys.splice(this.lowerBound(key), 0, key)
    }
    this.values.set(key, value.slice())
  }

  async delete(key: string, options?: AbortOptions): Promise<void> {
    aborted(options)
    checkKey(key)
    if (!this.values.delete(key)) return
    const i = this.lowerBound(key)
    if (this.keys[i] === key) this.keys.splice(i, 1)
  }

  async has(key: string, options?: AbortOptions): Promise<boolean> {
    aborted(options)
    checkKey(key)
    return this.values.has(key)
  }

  async *query(prefix: string, options?: AbortOptions & { limit?: number }): AsyncIterable<{ key: string; value: Uint8Array }> {
    checkKey(prefix, 'prefix')
    const limit = checkLimit(options?.limit)
    aborted(options)
    let n = 0
    // snapshot the matching keys so writes during iteration do not skip or repeat entries
    const start = this.lowerBound(prefix)
    const matched: string[] = []
    for (let i = start; i < this.keys.length && matched.length < limit; i++) {
      const k = this.keys[i] as string
      if (!k.startsWith(prefix)) break
      matched.push(k)
    }
    for (const key of matched) {
      aborted(options)
      const value = this.values.get(key)
      if (value === undefined) continue
      yield { key, value: value.slice() }
      if (++n >= limit) return
    }
  }
}

/** An in-memory KeyValueStore (the node's default). Values are copied in and out. */
export function memoryStore(init: MemoryStoreInit = {}): NodeStore {
  return new MemoryStore(init)
}
