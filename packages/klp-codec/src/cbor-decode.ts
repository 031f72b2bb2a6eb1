/**
 * Strict DAG-CBOR decoder (the form is described in cbor-shared.ts): the bounded `Reader`, the
 * intern table of short strings, the byte order of encoded map keys and `decodeValue`.
 *
 * The decoder is strict and bounded: it checks every length against the remaining input and
 * the configured limits before allocating, and rejects any non-canonical form with a typed
 * error, so `encode(decode(b))` equals `b` for every accepted `b`. Byte strings are decoded as
 * views (`subarray`) into the input, not copies.
 */
import { InvalidParametersError } from '@kos-mesh/interface'
import type { KLPValue } from '@kos-mesh/interface'
import {
  DuplicateKeyError,
  MalformedCborError,
  NestingTooDeepError,
  NonCanonicalCborError,
  StringTooLongError,
  TooManyItemsError,
  TrailingBytesError,
  TruncatedInputError,
} from './errors.js'
import { resolveLimits } from './limits.js'
import type { CodecLimits } from './limits.js'
import { TWO_32, isCborInt, typeName } from './cbor-shared.js'

const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Longest string kept in the intern table (ASCII bytes), its size (a power of two) and mask. */
const INTERN_MAX_LENGTH = 48
const INTERN_SIZE = 2048
const INTERN_MASK = INTERN_SIZE - 1
/** Direct-mapped cache of recently decoded short ASCII strings; a collision just overwrites. */
const internTable: Array<string | undefined> = new Array<string | undefined>(INTERN_SIZE).fill(undefined)

/** A bounded, strict reader over one input buffer. */
export class Reader {
  readonly buf: Uint8Array
  readonly view: DataView
  pos: number
  end: number
  itemsLeft: number
  readonly limits: Readonly<CodecLimits>
  /** Freeze every decoded array and map (used for decoded messages, which must stay immutable). */
  freeze = false

  constructor(buf: Uint8Array, limits: Readonly<CodecLimits>, start = 0, end = buf.length) {
    this.buf = buf
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
    this.pos = start
    this.end = end
    this.limits = limits
    this.itemsLeft = limits.maxItems
  }

  need(n: number): void {
    if (n > this.end - this.pos) {
      throw new TruncatedInputError(`expected ${n} more byte(s) at offset ${this.pos}, got ${this.end - this.pos}`)
    }
  }

  /** Reads a head; returns the argument (number, or bigint beyond 2^53). Sets `this.major`/`this.ai`. */
  major = 0
  ai = 0
  headStart = 0

  /** Major type of the last head read (a method, so TS does not narrow it across reads). */
  type(): number {
    return this.major
  }

  head(): number | bigint {
    this.need(1)
    this.headStart = this.pos
    const ib = this.buf[this.pos++] as number
    const major = ib >> 5
    const ai = ib & 31
    this.major = major
    this.ai = ai
    if (major === 7) return 0 // simple/float: caller handles ai
    if (ai < 24) return ai
    switch (ai) {
      case 24: {
        this.need(1)
        const n = this.buf[this.pos++] as number
        if (n < 24) throw new NonCanonicalCborError(`expected the shortest head at offset ${this.headStart}, got 1-byte argument ${n}`)
        return n
      }
      case 25: {
        this.need(2)
        const n = this.view.getUint16(this.pos)
        this.pos += 2
        if (n < 0x100) throw new NonCanonicalCborError(`expected the shortest head at offset ${this.headStart}, got 2-byte argument ${n}`)
        return n
      }
      case 26: {
        this.need(4)
        const n = this.view.getUint32(this.pos)
        this.pos += 4
        if (n < 0x10000) throw new NonCanonicalCborError(`expected the shortest head at offset ${this.headStart}, got 4-byte argument ${n}`)
        return n
      }
      case 27: {
        this.need(8)
        const hi = this.view.getUint32(this.pos)
        const lo = this.view.getUint32(this.pos + 4)
        this.pos += 8
        if (hi === 0) throw new NonCanonicalCborError(`expected the shortest head at offset ${this.headStart}, got 8-byte argument ${lo}`)
        if (hi < 0x200000) return hi * TWO_32 + lo
        return (BigInt(hi) << 32n) | BigInt(lo)
      }
      case 31:
        if (major === 2 || major === 3 || major === 4 || major === 5) {
          throw new NonCanonicalCborError(`expected a definite length at offset ${this.headStart}, got an indefinite-length item`)
        }
        throw new MalformedCborError(`expected a valid head at offset ${this.headStart}, got additional info 31 for major type ${major}`)
      default:
        throw new MalformedCborError(`expected a valid head at offset ${this.headStart}, got reserved additional info ${ai}`)
    }
  }

  /** Reads a length head of the given major type and checks it against the remaining input. */
  length(n: number | bigint, what: string): number {
    if (typeof n === 'bigint' || n > this.end - this.pos) {
      throw new TruncatedInputError(`expected ${what} of ${String(n)} byte(s) at offset ${this.headStart} to fit in the ${this.end - this.pos} remaining`)
    }
    return n
  }

  textBody(n: number | bigint): string {
    if (n > this.limits.maxStringLength) {
      throw new StringTooLongError(`expected a text string of at most ${this.limits.maxStringLength} bytes, got ${String(n)}`)
    }
    const len = this.length(n, 'a text string')
    const start = this.pos
    this.pos += len
    const b = this.buf
    if (len <= INTERN_MAX_LENGTH) {
      // Short ASCII strings (map keys, types, addresses, versions...) repeat from message to
      // message: look them up in a small hash table by their bytes instead of building a new string.
      let h = len
      for (let i = start; i < start + len; i++) {
        const c = b[i] as number
        if (c > 0x7f) return this.textSlow(start, len)
        h = (Math.imul(h, 31) + c) | 0
      }
      const slot = (h ^ (h >>> 13)) & INTERN_MASK
      const hit = internTable[slot]
      if (hit !== undefined && hit.length === len) {
        let i = 0
        while (i < len && hit.charCodeAt(i) === b[start + i]) i++
        if (i === len) return hit
      }
      const str = String.fromCharCode.apply(null, b.subarray(start, start + len) as unknown as number[])
      internTable[slot] = str
      return str
    }
    if (len < 64) {
      for (let i = start; i < start + len; i++) {
        if ((b[i] as number) > 0x7f) return this.textSlow(start, len)
      }
      return String.fromCharCode.apply(null, b.subarray(start, start + len) as unknown as number[])
    }
    return this.textSlow(start, len)
  }

  private textSlow(start: number, len: number): string {
    try {
      return textDecoder.decode(this.buf.subarray(start, start + len))
    } catch (err) {
      throw new MalformedCborError(`expected valid UTF-8 in the text string at offset ${start}`, { cause: err })
    }
  }

  /**
   * A byte string's content as a view (`subarray`) into the input: no copy, so a decoded 1 MiB
   * byte string costs no second MiB. The view shares memory with the input (and keeps it alive).
   */
  bytesBody(n: number | bigint): Uint8Array {
    if (n > this.limits.maxBytesLength) {
      throw new StringTooLongError(`expected a byte string of at most ${this.limits.maxBytesLength} bytes, got ${String(n)}`)
    }
    const len = this.length(n, 'a byte string')
    const out = this.buf.subarray(this.pos, this.pos + len)
    this.pos += len
    return out
  }

  takeItems(n: number | bigint, perItem: number, what: string): number {
    if (typeof n === 'bigint' || n * perItem > this.end - this.pos) {
      throw new TruncatedInputError(`expected ${what} of ${String(n)} item(s) at offset ${this.headStart} to fit in the ${this.end - this.pos} remaining bytes`)
    }
    if (n > this.itemsLeft) {
      throw new TooManyItemsError(`expected at most ${this.limits.maxItems} array elements and map entries in total, got more`)
    }
    this.itemsLeft -= n
    return n
  }

  /** Decodes one KLPValue at the current position. `depth` = enclosing arrays/maps. */
  value(depth: number): KLPValue {
    const n = this.head()
    switch (this.major) {
      case 0:
        return n
      case 1:
        return typeof n === 'number' && n < Number.MAX_SAFE_INTEGER ? -1 - n : -1n - BigInt(n)
      case 2:
        return this.bytesBody(n)
      case 3:
        return this.textBody(n)
      case 4: {
        if (depth >= this.limits.maxDepth) throw new NestingTooDeepError(`expected nesting depth <= ${this.limits.maxDepth}, got deeper at offset ${this.headStart}`)
        const count = this.takeItems(n, 1, 'an array')
        const arr = new Array<KLPValue>(count)
        for (let i = 0; i < count; i++) arr[i] = this.value(depth + 1)
        return this.freeze ? Object.freeze(arr) : arr
      }
      case 5: {
        if (depth >= this.limits.maxDepth) throw new NestingTooDeepError(`expected nesting depth <= ${this.limits.maxDepth}, got deeper at offset ${this.headStart}`)
        const count = this.takeItems(n, 2, 'a map')
        const obj: Record<string, KLPValue> = {}
        let prevStart = -1
        let prevEnd = -1
        for (let i = 0; i < count; i++) {
          const keyStart = this.pos
          const kn = this.head()
          if (this.type() !== 3) throw new MalformedCborError(`expected a text-string map key at offset ${keyStart}, got major type ${this.type()}`)
          const key = this.textBody(kn)
          const keyEnd = this.pos
          if (prevStart >= 0) {
            const c = compareBytes(this.buf, prevStart, prevEnd, keyStart, keyEnd)
            if (c === 0) throw new DuplicateKeyError(`expected unique map keys, got ${JSON.stringify(key)} twice at offset ${keyStart}`)
            if (c > 0) throw new NonCanonicalCborError(`expected map keys in canonical order, got ${JSON.stringify(key)} out of order at offset ${keyStart}`)
          }
          prevStart = keyStart
          prevEnd = keyEnd
          const v = this.value(depth + 1)
          if (key === '__proto__') Object.defineProperty(obj, key, { value: v, enumerable: true, writable: true, configurable: true })
          else obj[key] = v
        }
        return this.freeze ? Object.freeze(obj) : obj
      }
      case 6:
        throw new MalformedCborError(`expected no CBOR tags, got tag ${String(n)} at offset ${this.headStart}`)
      default:
        return this.simple()
    }
  }

  private simple(): KLPValue {
    switch (this.ai) {
      case 20: return false
      case 21: return true
      case 22: return null
      case 25:
      case 26:
        this.need(this.ai === 25 ? 2 : 4)
        throw new NonCanonicalCborError(`expected float64, got a ${this.ai === 25 ? 16 : 32}-bit float at offset ${this.headStart}`)
      case 27: {
        this.need(8)
        const v = this.view.getFloat64(this.pos)
        this.pos += 8
        if (!Number.isFinite(v)) throw new MalformedCborError(`expected a finite float, got ${v} at offset ${this.headStart}`)
        // DAG-CBOR writes every safe integer, -0 included, as an integer: a float64 holding one is not its encoding
        if (isCborInt(v)) throw new NonCanonicalCborError(`expected ${Object.is(v, -0) ? '-0' : v} as a CBOR integer, got a float64 at offset ${this.headStart}`)
        return v
      }
      case 31:
        throw new MalformedCborError(`expected an item, got a stray "break" at offset ${this.headStart}`)
      default:
        throw new MalformedCborError(`expected null, true, false or float64, got simple value with additional info ${this.ai} at offset ${this.headStart}`)
    }
  }
}

/** Compares `b[s1..e1)` with `b[s2..e2)` bytewise (a proper prefix first): the order of encoded map keys. */
export function compareBytes(b: Uint8Array, s1: number, e1: number, s2: number, e2: number): number {
  const l1 = e1 - s1
  const l2 = e2 - s2
  const n = Math.min(l1, l2)
  for (let i = 0; i < n; i++) {
    const d = (b[s1 + i] as number) - (b[s2 + i] as number)
    if (d !== 0) return d
  }
  return l1 - l2
}

/**
 * Decodes exactly one DAG-CBOR item holding a KLPValue. Strict (only the bytes `encodeValue` would
 * write for the value are accepted); typed errors; bounded by `limits`.
 *
 * The result may reference `bytes`: every byte string in it is a view (`subarray`) into the input,
 * not a copy. Do not modify `bytes` while you use the result, and `.slice()` a byte string you keep
 * longer than the input should live (a small view keeps the whole input buffer alive).
 */
export function decodeValue(bytes: Uint8Array, options?: { limits?: Partial<CodecLimits> }): KLPValue {
  if (!(bytes instanceof Uint8Array)) throw new InvalidParametersError(`expected a Uint8Array, got ${typeName(bytes)}`)
  const r = new Reader(bytes, resolveLimits(options?.limits))
  const v = r.value(0)
  if (r.pos !== r.end) throw new TrailingBytesError(`expected one CBOR item, got ${r.end - r.pos} trailing byte(s) at offset ${r.pos}`)
  return v
}
