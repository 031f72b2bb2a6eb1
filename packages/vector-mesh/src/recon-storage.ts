/**
 * The sorted set that range-based reconciliation works on: items (timestamp, 32-byte id) in
 * (timestamp, id) order, frozen into flat typed arrays, with range fingerprints.
 *
 * Fingerprint of a range = the first 16 bytes of SHA-256(sum of its ids mod 2^256 || count as a
 * varint), the ids read as 256-bit little-endian numbers (negentropy's additive construction: it
 * needs no tree, and any split of a range can be fingerprinted by one pass over it).
 */
import { createHash } from 'node:crypto'
import { InvalidParametersError } from '@kos-mesh/interface'

/** Bytes of an item id: an entry version's hash (SHA-256 of its payload). */
export const ID_SIZE = 32
/** Bytes of a range fingerprint (the first 16 bytes of a SHA-256). */
export const FINGERPRINT_SIZE = 16
/** The timestamp of the upper bound of everything. */
export const MAX_TIMESTAMP = Number.MAX_SAFE_INTEGER

/**
 * One element of a reconciliation set: a current version of an entry, tombstones included
 * (`ShardStore.reconSet`). Sets are ordered by `compareItems`.
 */
export interface ReconItem {
  /** Version timestamp (the entry's HLC wall time, ms). */
  ts: number
  /** 32-byte id (the entry version's hash). */
  id: Uint8Array
}

/** An upper bound: items strictly below (ts, prefix padded with zeros). */
export interface Bound {
  ts: number
  prefix: Uint8Array
}

/** The order of a reconciliation set: by timestamp, then by id bytes. Returns -1, 0 or 1. */
export function compareItems(a: ReconItem, b: ReconItem): number {
  if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1
  return Buffer.compare(a.id, b.id)
}

export function encodeVarint(n: number, out: number[]): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidParametersError(`expected a safe non-negative integer, got ${n}`)
  const bytes: number[] = []
  do { bytes.push(n % 128); n = Math.floor(n / 128) } while (n > 0)
  for (let i = bytes.length - 1; i >= 0; i--) out.push((bytes[i] as number) | (i > 0 ? 0x80 : 0))
}

function varintBytes(n: number): number[] {
  const out: number[] = []
  encodeVarint(n, out)
  return out
}

/** A frozen, sorted item set. Build with `ReconStorage.from(items)` (sorts) or `fromSorted`. */
export class ReconStorage {
  readonly size: number
  private readonly ts: Float64Array
  private readonly ids: Uint8Array
  private readonly limbs: Uint32Array

  private constructor(ts: Float64Array, ids: Uint8Array) {
    this.size = ts.length
    this.ts = ts
    this.ids = ids
    this.limbs = new Uint32Array(ids.buffer, ids.byteOffset, ids.byteLength / 4)
  }

  /**
   * Builds a storage from items in any order (sorts a copy; items must not repeat). Throws
   * `InvalidParametersError` for an id that is not 32 bytes or a timestamp outside 0..2^53 - 2.
   */
  static from(items: Iterable<ReconItem>): ReconStorage {
    const arr = [...items]
    arr.sort(compareItems)
    return ReconStorage.fromSorted(arr)
  }

  /** Items already in (ts, id) order without duplicates. */
  static fromSorted(items: ReadonlyArray<ReconItem>): ReconStorage {
    const ts = new Float64Array(items.length)
    const ids = new Uint8Array(items.length * ID_SIZE)
    for (let i = 0; i < items.length; i++) {
      const it = items[i] as ReconItem
      if (it.id.length !== ID_SIZE || !Number.isSafeInteger(it.ts) || it.ts < 0 || it.ts >= MAX_TIMESTAMP) throw new InvalidParametersError('expected items with a 32-byte id and a timestamp in 0..2^53-2')
      ts[i] = it.ts
      ids.set(it.id, i * ID_SIZE)
    }
    return new ReconStorage(ts, ids)
  }

  /** The timestamp (ms) of item `i`, 0..size - 1 in set order (not range-checked). */
  timestampAt(i: number): number { return this.ts[i] as number }
  /** The 32-byte id of item `i`, 0..size - 1 (not range-checked): a view into the storage, copy it to keep it. */
  idAt(i: number): Uint8Array { return this.ids.subarray(i * ID_SIZE, (i + 1) * ID_SIZE) }

  /** -1, 0, 1: item i against bound b. */
  private cmpBound(i: number, b: Bound): number {
    const t = this.ts[i] as number
    if (t !== b.ts) return t < b.ts ? -1 : 1
    const off = i * ID_SIZE
    for (let k = 0; k < ID_SIZE; k++) {
      const x = this.ids[off + k] as number
      const y = k < b.prefix.length ? (b.prefix[k] as number) : 0
      if (x !== y) return x < y ? -1 : 1
    }
    return 0
  }

  /** The first index in [from, size) whose item is >= bound. */
  lowerBound(bound: Bound, from = 0): number {
    let lo = from
    let hi = this.size
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.cmpBound(mid, bound) < 0) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Fingerprint of items [lo, hi). */
  fingerprint(lo: number, hi: number): Uint8Array {
    const acc = new Uint32Array(8)
    const l = this.limbs
    for (let i = lo; i < hi; i++) {
      let carry = 0
      const base = i * 8
      for (let k = 0; k < 8; k++) {
        const s = (acc[k] as number) + (l[base + k] as number) + carry
        acc[k] = s >>> 0
        carry = s > 0xffffffff ? 1 : 0
      }
    }
    const h = createHash('sha256').update(new Uint8Array(acc.buffer)).update(Uint8Array.from(varintBytes(hi - lo))).digest()
    return new Uint8Array(h.buffer, h.byteOffset, FINGERPRINT_SIZE)
  }

  /** The shortest bound that separates item i-1 (below) from item i (at or above). */
  minimalBound(i: number): Bound {
    const t = this.ts[i] as number
    if (i === 0 || (this.ts[i - 1] as number) !== t) return { ts: t, prefix: new Uint8Array(0) }
    const a = this.idAt(i - 1)
    const b = this.idAt(i)
    let shared = 0
    while (shared < ID_SIZE && a[shared] === b[shared]) shared++
    return { ts: t, prefix: b.slice(0, shared + 1) }
  }
}
