/**
 * The few helpers every package needs, in one place (they used to be copied): a silent logger,
 * the "got Y" half of boundary errors, byte comparison, and the DID of a key id.
 */
import type { Logger } from './contracts.js'

/** A logger that drops everything (the default of every component). */
export const silentLogger: Logger = Object.freeze({ debug() {}, info() {}, warn() {}, error() {} })

/** A short description of a value for "expected X, got Y" errors (never the whole value). */
export function describeValue(v: unknown): string {
  if (v === null) return 'null'
  if (v === undefined) return 'undefined'
  if (v instanceof Uint8Array) return `${v.byteLength} bytes`
  if (Array.isArray(v)) return `an array of ${v.length}`
  if (typeof v === 'string') return v.length > 40 ? `a string of ${v.length} characters` : JSON.stringify(v)
  if (typeof v === 'object') return 'an object'
  return `${typeof v} ${String(v)}`
}

/** True when both byte arrays hold the same bytes (time independent of where they differ). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let d = 0
  for (let i = 0; i < a.length; i++) d |= (a[i] as number) ^ (b[i] as number)
  return d === 0
}

/** The DID part of a key id (`did:key:z6Mk...#z6Mk...` -> `did:key:z6Mk...`). */
export function didOfKeyId(keyId: string): string {
  const i = keyId.indexOf('#')
  return i < 0 ? keyId : keyId.slice(0, i)
}

/**
 * A small, fast, seeded PRNG (mulberry32): uniform numbers in [0, 1), the same sequence for the same
 * seed on every platform. For simulations, topologies, fuzzing and benchmarks; never for keys.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
