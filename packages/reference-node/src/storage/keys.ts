import { InvalidParametersError, throwIfAborted, type AbortOptions } from '@kos-mesh/interface'

/** Longest accepted key, in UTF-16 code units. */
export const MAX_KEY_LENGTH = 1024
/** Largest accepted value, bytes (16 MiB). */
export const MAX_VALUE_BYTES = 16 * 1024 * 1024

export function checkKey(key: unknown, what = 'key'): asserts key is string {
  if (typeof key !== 'string') throw new InvalidParametersError(`expected ${what} to be a string, got ${typeof key}`)
  if (what === 'key' && key.length === 0) throw new InvalidParametersError('expected a non-empty key, got ""')
  if (key.length > MAX_KEY_LENGTH) throw new InvalidParametersError(`expected ${what} of at most ${MAX_KEY_LENGTH} characters, got ${key.length}`)
}

export function checkValue(value: unknown): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new InvalidParametersError(`expected a Uint8Array value, got ${value === null ? 'null' : typeof value}`)
  if (value.byteLength > MAX_VALUE_BYTES) throw new InvalidParametersError(`expected a value of at most ${MAX_VALUE_BYTES} bytes, got ${value.byteLength}`)
}

export function checkLimit(limit: unknown): number {
  if (limit === undefined) return Number.POSITIVE_INFINITY
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 0) {
    throw new InvalidParametersError(`expected limit to be a non-negative integer, got ${String(limit)}`)
  }
  return limit
}

export function aborted(options?: AbortOptions): void {
  throwIfAborted(options?.signal)
}

/**
 * Compares strings by code point, which is the byte order of their UTF-8 encoding (LevelDB's
 * order), unlike `<` on strings (UTF-16 code units).
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i) ?? 0
    const y = b.codePointAt(i) ?? 0
    if (x !== y) return x < y ? -1 : 1
    if (x > 0xffff) i++
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1
}
