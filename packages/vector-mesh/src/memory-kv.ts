/**
 * An in-memory KeyValueStore (the contract of @kos-mesh/interface): for tests, examples and nodes
 * that keep nothing across restarts. Keys sort by UTF-8 bytes; values are copied in and out.
 */
import { AbortError, InvalidParametersError, describeValue, type AbortOptions, type KeyValueStore } from '@kos-mesh/interface'

/** The `KeyValueStore` of `memoryKeyValueStore`, which also tells its number of keys. */
export interface MemoryKeyValueStore extends KeyValueStore {
  /** Number of keys. */
  readonly size: number
}

/**
 * A new, empty in-memory `KeyValueStore`: nothing survives the process (for tests, examples and
 * nodes that keep nothing across restarts). `query` yields keys in UTF-8 byte order; values are
 * copied in and out. Throws `InvalidParametersError` for an empty or non-string key, a value that
 * is not a Uint8Array or a bad `limit`, and `AbortError` when the signal is aborted.
 */
export function memoryKeyValueStore(): MemoryKeyValueStore {
  const map = new Map<string, Uint8Array>()
  const checkKey = (k: unknown): string => {
    if (typeof k !== 'string' || k.length === 0) throw new InvalidParametersError(`expected a non-empty string key, got ${describeValue(k)}`)
    return k
  }
  const checkSignal = (o?: AbortOptions): void => {
    if (o?.signal?.aborted === true) throw new AbortError(undefined, { cause: o.signal.reason })
  }
  return {
    get size() { return map.size },
    async get(k, o) { checkKey(k); checkSignal(o); return map.get(k)?.slice() },
    async put(k, v, o) {
      checkKey(k)
      if (!(v instanceof Uint8Array)) throw new InvalidParametersError(`expected a Uint8Array value, got ${describeValue(v)}`)
      checkSignal(o)
      map.set(k, v.slice())
    },
    async delete(k, o) { checkKey(k); checkSignal(o); map.delete(k) },
    async has(k, o) { checkKey(k); checkSignal(o); return map.has(k) },
    async *query(prefix, o) {
      if (typeof prefix !== 'string') throw new InvalidParametersError(`expected a string prefix, got ${describeValue(prefix)}`)
      const limit = o?.limit
      if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0)) throw new InvalidParametersError(`expected a non-negative integer limit, got ${describeValue(limit)}`)
      checkSignal(o)
      const keys = [...map.keys()].filter((k) => k.startsWith(prefix)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
      let n = 0
      for (const k of keys) {
        checkSignal(o)
        if (limit !== undefined && n++ >= limit) return
        const v = map.get(k)
        if (v !== undefined) yield { key: k, value: v.slice() }
      }
    },
  }
}
