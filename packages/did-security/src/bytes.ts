/** Small byte helpers (no dependencies). */
import { InvalidParametersError } from '@kos-mesh/interface'

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let len = 0
  for (const p of parts) len += p.length
  const out = new Uint8Array(len)
  let off = 0
  for (const p of parts) { out.set(p, off); off += p.length }
  return out
}

export { equalBytes } from '@kos-mesh/interface'

export function isAllZero(a: Uint8Array): boolean {
  let d = 0
  for (let i = 0; i < a.length; i++) d |= a[i] as number
  return d === 0
}

export function hexToBytes(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new InvalidParametersError(`expected an even-length hex string, got ${hex.length} characters`)
  }
  return new Uint8Array(Buffer.from(hex, 'hex'))
}

export function bytesToHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
}

export function toBase64Url(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url')
}

export function fromBase64Url(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'base64url'))
}

export const utf8 = new TextEncoder()

export function assertBytes(value: unknown, what: string, length?: number): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new InvalidParametersError(`expected ${what} to be a Uint8Array, got ${value === null ? 'null' : typeof value}`)
  }
  if (length !== undefined && value.length !== length) {
    throw new InvalidParametersError(`expected ${what} of ${length} bytes, got ${value.length}`)
  }
}

/** Bounded insertion-ordered cache (least recently inserted/used evicted first). */
export class LruCache<K, V> {
  private readonly map = new Map<K, V>()
  constructor(readonly max: number) {}
  get(key: K): V | undefined {
    const v = this.map.get(key)
    if (v !== undefined) { this.map.delete(key); this.map.set(key, v) }
    return v
  }
  set(key: K, value: V): void {
    if (this.map.has(key)) this.map.delete(key)
    else if (this.map.size >= this.max) {
      const first = this.map.keys().next()
      if (first.done !== true) this.map.delete(first.value)
    }
    this.map.set(key, value)
  }
  delete(key: K): void { this.map.delete(key) }
  clear(): void { this.map.clear() }
  get size(): number { return this.map.size }
}
