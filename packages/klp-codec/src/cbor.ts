/**
 * DAG-CBOR for the KLP data model: byte for byte what `@ipld/dag-cbor` (the IPLD DAG-CBOR codec,
 * https://ipld.io/specs/codecs/dag-cbor/spec/) writes for the same value, and a strict decoder that
 * accepts exactly those bytes:
 * - integers (a `number` that is a safe integer, or a `bigint` of at most 64 bits) as major type 0/1
 *   in the shortest head; `-0` is the integer 0 (`00`), as @ipld/dag-cbor writes it;
 * - every other finite number (non-integral, or integral beyond +/-(2^53 - 1)) as a 64-bit float
 *   (`fb`), never float16/32; NaN and +/-Infinity are outside the data model and rejected;
 * - definite lengths only; map keys are text strings sorted length-first, then bytewise (RFC 7049
 *   §3.9 "canonical CBOR", RFC 8949 §4.2.3), no duplicates;
 * - byte strings are untagged; no tags (the model has no links), no `undefined`, no other simple values.
 * This is not RFC 8949 §4.2.1 core deterministic encoding, which would shorten floats to 16/32 bits
 * and sort keys bytewise: DAG-CBOR keeps 64-bit floats and length-first keys.
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

const TWO_32 = 0x1_0000_0000
const MAX_U64 = (1n << 64n) - 1n
const MIN_NEG64 = -(1n << 64n)
const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
const textEncoder = new TextEncoder()
/** Above this many chars TextEncoder#encodeInto beats a charCodeAt loop (its fixed cost is ~0.07 µs). */
const ENCODE_INTO_MIN = 40

// ------------------------------------------------------------------ encoding

/** A growable byte buffer with CBOR head writers. */
export class Writer {
  buf: Uint8Array
  view: DataView
  pos = 0
  /** Array elements + map entries written so far (checked against maxItems by callers). */
  items = 0
  /** Longest text string accepted, UTF-8 bytes. */
  maxText = Infinity
  /** Longest byte string accepted. */
  maxBytes = Infinity

  constructor(size = 512) {
    this.buf = new Uint8Array(size)
    this.view = new DataView(this.buf.buffer)
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.pos + n) size *= 2
    const next = new Uint8Array(size)
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
    this.view = new DataView(next.buffer)
  }

  /** Writes a head with a non-negative safe-integer argument in its shortest form. */
  head(major: number, n: number): void {
    if (major >= 4) this.items += n
    this.ensure(9)
    const m = major << 5
    const b = this.buf
    if (n < 24) {
      b[this.pos++] = m | n
    } else if (n < 0x100) {
      b[this.pos++] = m | 24
      b[this.pos++] = n
    } else if (n < 0x10000) {
      b[this.pos++] = m | 25
      b[this.pos++] = n >>> 8
      b[this.pos++] = n & 0xff
    } else if (n < TWO_32) {
      b[this.pos++] = m | 26
      this.view.setUint32(this.pos, n)
      this.pos += 4
    } else {
      b[this.pos++] = m | 27
      this.view.setUint32(this.pos, Math.floor(n / TWO_32))
      this.view.setUint32(this.pos + 4, n >>> 0)
      this.pos += 8
    }
  }

  headBig(major: number, n: bigint): void {
    if (n <= BigInt(Number.MAX_SAFE_INTEGER)) {
      this.head(major, Number(n))
      return
    }
    this.ensure(9)
    this.buf[this.pos++] = (major << 5) | 27
    this.view.setBigUint64(this.pos, n)
    this.pos += 8
  }

  bytes(b: Uint8Array): void {
    if (b.length > this.maxBytes) throw new StringTooLongError(`expected a byte string of at most ${this.maxBytes} bytes, got ${b.length}`)
    this.head(2, b.length)
    this.raw(b)
  }

  raw(b: Uint8Array): void {
    const n = b.length
    this.ensure(n)
    if (n <= 32) {
      // TypedArray#set has a fixed cost that dominates for the short constant runs we write.
      const d = this.buf
      let p = this.pos
      for (let i = 0; i < n; i++) d[p++] = b[i] as number
      this.pos = p
      return
    }
    this.buf.set(b, this.pos)
    this.pos += n
  }

  text(s: string): void {
    const len = s.length
    // Fast path: ASCII strings up to 4 KiB, checked and copied in one pass (UTF-8 length = length).
    if (len <= 4096 && len <= this.maxText) {
      const start = this.pos
      this.head(3, len)
      this.ensure(len)
      if (len > ENCODE_INTO_MIN) {
        // Natively: `len` UTF-8 bytes hold all `len` chars only when every char is ASCII (a lone
        // surrogate would become 3 bytes of U+FFFD), so read === len proves the ASCII case.
        const r = textEncoder.encodeInto(s, this.buf.subarray(this.pos, this.pos + len))
        if (r.read === len && r.written === len) {
          this.pos += len
          return
        }
      } else {
        const b = this.buf
        let p = this.pos
        let i = 0
        for (; i < len; i++) {
          const c = s.charCodeAt(i)
          if (c > 0x7f) break
          b[p++] = c
        }
        if (i === len) {
          this.pos = p
          return
        }
      }
      // Not ASCII: rewind (head() counted no items for major 3) and take the general path.
      this.pos = start
    }
    if (!(s as unknown as { isWellFormed(): boolean }).isWellFormed()) {
      throw new InvalidParametersError('expected a well-formed string, got one with a lone surrogate')
    }
    const bytes = Buffer.byteLength(s, 'utf8')
    if (bytes > this.maxText) throw new StringTooLongError(`expected a text string of at most ${this.maxText} bytes, got ${bytes}`)
    this.head(3, bytes)
    this.ensure(bytes)
    const written = textEncoder.encodeInto(s, this.buf.subarray(this.pos, this.pos + bytes)).written
    if (written !== bytes) throw new InvalidParametersError(`expected ${bytes} UTF-8 bytes, got ${written}`)
    this.pos += bytes
  }

  bool(v: boolean): void {
    this.ensure(1)
    this.buf[this.pos++] = v ? 0xf5 : 0xf4
  }

  float64(v: number): void {
    this.ensure(9)
    this.buf[this.pos++] = 0xfb
    this.view.setFloat64(this.pos, v)
    this.pos += 8
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos)
  }

  reset(): void {
    this.pos = 0
    this.items = 0
    this.maxText = Infinity
    this.maxBytes = Infinity
  }
}

const scratch = new Writer(64 * 1024)
let scratchBusy = false

/**
 * Runs `fn` with the reusable scratch writer (a fresh one if re-entered) and returns what `fn`
 * returns. `fn` must copy out whatever it keeps: the scratch buffer is reused by the next call.
 */
export function useWriter<T>(fn: (w: Writer) => T): T {
  if (scratchBusy) return fn(new Writer(1024))
  scratchBusy = true
  try {
    scratch.reset()
    return fn(scratch)
  } finally {
    scratchBusy = false
    if (scratch.buf.length > 1024 * 1024) { scratch.buf = new Uint8Array(64 * 1024); scratch.view = new DataView(scratch.buf.buffer) }
  }
}

/** Runs `fn` with a reusable writer (a fresh one if re-entered) and returns a copy of what it wrote. */
export function withWriter(fn: (w: Writer) => void): Uint8Array {
  return useWriter((w) => {
    fn(w)
    return w.finish()
  })
}

function typeName(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object'
  return typeof v
}

/**
 * True for a number that DAG-CBOR writes as an integer: a safe integer, `-0` included (written `00`,
 * as @ipld/dag-cbor does). Integral numbers beyond 2^53 - 1 are written as float64, like it does too.
 */
function isCborInt(v: number): boolean {
  return Number.isSafeInteger(v)
}

function compareKeys(a: string, b: string): number {
  // Encoded-key order: shorter UTF-8 first, then bytewise. For ASCII keys UTF-8 length equals
  // string length and bytewise equals code-unit order.
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0)
}

function isAscii(k: string): boolean {
  for (let i = 0; i < k.length; i++) if (k.charCodeAt(i) > 0x7f) return false
  return true
}

function sortedKeys(obj: object): string[] {
  const keys = Object.keys(obj)
  const n = keys.length
  if (n < 2) return keys
  let ascii = true
  for (let i = 0; i < n; i++) if (!isAscii(keys[i] as string)) { ascii = false; break }
  if (ascii) {
    if (n <= 16) {
      // Insertion sort: no comparator calls through Array#sort for the small maps we see.
      for (let i = 1; i < n; i++) {
        const k = keys[i] as string
        let j = i - 1
        while (j >= 0 && compareKeys(keys[j] as string, k) > 0) { keys[j + 1] = keys[j] as string; j-- }
        keys[j + 1] = k
      }
      return keys
    }
    return keys.sort(compareKeys)
  }
  const enc = new Map<string, Buffer>()
  for (const k of keys) enc.set(k, Buffer.from(k, 'utf8'))
  return keys.sort((a, b) => {
    const ea = enc.get(a) as Buffer
    const eb = enc.get(b) as Buffer
    return ea.length - eb.length || Buffer.compare(ea, eb)
  })
}

/** Appends one KLPValue to `w` in canonical form. `depth` counts enclosing arrays/maps. */
export function writeValue(w: Writer, v: unknown, depth: number, maxDepth: number): void {
  switch (typeof v) {
    case 'string':
      w.text(v)
      return
    case 'number':
      if (isCborInt(v)) {
        if (v >= 0) w.head(0, v === 0 ? 0 : v) // -0 >= 0: written as 0
        else w.head(1, -1 - v)
      } else {
        if (!Number.isFinite(v)) throw new InvalidParametersError(`expected a finite number, got ${v}`)
        w.float64(v)
      }
      return
    case 'boolean':
      w.ensure(1)
      w.buf[w.pos++] = v ? 0xf5 : 0xf4
      return
    case 'bigint':
      if (v >= 0n) {
        if (v > MAX_U64) throw new InvalidParametersError(`expected a bigint of at most 64 bits, got ${v}`)
        w.headBig(0, v)
      } else {
        if (v < MIN_NEG64) throw new InvalidParametersError(`expected a bigint of at most 64 bits, got ${v}`)
        w.headBig(1, -1n - v)
      }
      return
    case 'object': {
      if (v === null) {
        w.ensure(1)
        w.buf[w.pos++] = 0xf6
        return
      }
      if (v instanceof Uint8Array) {
        w.bytes(v)
        return
      }
      if (depth >= maxDepth) throw new InvalidParametersError(`expected nesting depth <= ${maxDepth}, got deeper (or a cycle)`)
      if (Array.isArray(v)) {
        w.head(4, v.length)
        for (let i = 0; i < v.length; i++) writeValue(w, v[i], depth + 1, maxDepth)
        return
      }
      const proto = Object.getPrototypeOf(v) as unknown
      if (proto !== Object.prototype && proto !== null) {
        throw new InvalidParametersError(`expected a KLPValue (null, boolean, number, bigint, string, Uint8Array, array or plain object), got ${typeName(v)}`)
      }
      const keys = sortedKeys(v)
      w.head(5, keys.length)
      for (const k of keys) {
        w.text(k)
        writeValue(w, (v as Record<string, unknown>)[k], depth + 1, maxDepth)
      }
      return
    }
    default:
      throw new InvalidParametersError(`expected a KLPValue, got ${typeName(v)}`)
  }
}

/** Applies string/bytes limits to a writer and checks the item count once it is done. */
export function limitWriter(w: Writer, limits: Readonly<CodecLimits>): void {
  w.maxText = limits.maxStringLength
  w.maxBytes = limits.maxBytesLength
}

export function checkWriterItems(w: Writer, limits: Readonly<CodecLimits>): void {
  if (w.items > limits.maxItems) throw new TooManyItemsError(`expected at most ${limits.maxItems} array elements and map entries in total, got ${w.items}`)
}

/**
 * Encodes a KLPValue as DAG-CBOR (byte-identical to `@ipld/dag-cbor`'s `encode` of the same value),
 * within the same limits the decoder applies (so what encodes also decodes). Throws
 * `InvalidParametersError` for values outside the model (`undefined`, NaN, +/-Infinity, bigints
 * beyond 64 bits, strings with lone surrogates, non-plain objects, cycles).
 */
export function encodeValue(value: KLPValue, options?: { limits?: Partial<CodecLimits> }): Uint8Array {
  const limits = resolveLimits(options?.limits)
  return withWriter((w) => {
    limitWriter(w, limits)
    writeValue(w, value, 0, limits.maxDepth)
    checkWriterItems(w, limits)
  })
}

// ------------------------------------------------------------------ decoding

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
