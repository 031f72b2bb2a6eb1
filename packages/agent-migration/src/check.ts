/**
 * Small strict shape checks for decoded DAG-CBOR values: exact key sets, types, ranges and
 * lengths, each failure an InvalidBundleError ("expected X, got Y"). Sizes are checked before use.
 */
import { describeValue, type KLPValue } from '@kos-mesh/interface'
import { isValidDid } from '@kos-mesh/did-security'
import { InvalidBundleError } from './errors.js'

export type Obj = { readonly [key: string]: KLPValue }

export function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)
}

/** `v` as a map with exactly the `keys` (no more, no fewer). */
export function obj(v: unknown, what: string, keys: readonly string[]): Obj {
  if (!isObj(v)) throw new InvalidBundleError(`expected ${what} as a map, got ${describeValue(v)}`)
  const have = Object.keys(v)
  for (const k of have) if (!keys.includes(k)) throw new InvalidBundleError(`expected no field ${JSON.stringify(k.slice(0, 40))} in ${what}`)
  for (const k of keys) if (!(k in v)) throw new InvalidBundleError(`expected the field ${k} in ${what}, got none`)
  return v
}

export function str(v: unknown, what: string, max: number, min = 0, re?: RegExp): string {
  if (typeof v !== 'string') throw new InvalidBundleError(`expected ${what} as a string, got ${describeValue(v)}`)
  if (v.length < min || v.length > max) throw new InvalidBundleError(`expected ${what} of ${min}..${max} characters, got ${v.length}`)
  if (re !== undefined && !re.test(v)) throw new InvalidBundleError(`expected ${what} matching ${re.source}, got ${describeValue(v)}`)
  return v
}

export function int(v: unknown, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw new InvalidBundleError(`expected ${what} as an integer in ${min}..${max}, got ${describeValue(v)}`)
  return v
}

export function bool(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') throw new InvalidBundleError(`expected ${what} as a boolean, got ${describeValue(v)}`)
  return v
}

export function bytes(v: unknown, what: string, max: number, exact?: number): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new InvalidBundleError(`expected ${what} as bytes, got ${describeValue(v)}`)
  if (exact !== undefined ? v.length !== exact : v.length > max) throw new InvalidBundleError(`expected ${what} of ${exact ?? `at most ${max}`} bytes, got ${v.length}`)
  return v
}

export function arr(v: unknown, what: string, max: number): readonly KLPValue[] {
  if (!Array.isArray(v)) throw new InvalidBundleError(`expected ${what} as an array, got ${describeValue(v)}`)
  if (v.length > max) throw new InvalidBundleError(`expected at most ${max} items in ${what}, got ${v.length}`)
  return v as readonly KLPValue[]
}

export function did(v: unknown, what: string): string {
  const s = str(v, what, 256, 1)
  if (!s.startsWith('did:key:') || !isValidDid(s)) throw new InvalidBundleError(`expected ${what} as a did:key, got ${describeValue(s)}`)
  return s
}

export function strList(v: unknown, what: string, max: number, maxLen: number, re?: RegExp): string[] {
  const a = arr(v, what, max).map((x, i) => str(x, `${what}[${i}]`, maxLen, 1, re))
  if (new Set(a).size !== a.length) throw new InvalidBundleError(`expected distinct items in ${what}`)
  return a
}

export function oneOf<T extends string>(v: unknown, what: string, values: readonly T[]): T {
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) throw new InvalidBundleError(`expected ${what} in ${values.join('|')}, got ${describeValue(v)}`)
  return v as T
}

/** True when `v` has no byte strings at any depth (the sandbox sees JSON-like values only). */
export function jsonLike(v: KLPValue): boolean {
  if (v instanceof Uint8Array || typeof v === 'bigint') return false
  if (Array.isArray(v)) return v.every((x) => jsonLike(x as KLPValue))
  if (isObj(v)) return Object.values(v).every((x) => jsonLike(x))
  return true
}
