/**
 * DAG-CBOR encoder (the form is described in cbor-shared.ts): the growable `Writer` with its CBOR
 * head writers, the reusable scratch writer, canonical (length-first) map-key order, `writeValue`,
 * the writer limits and `encodeValue`.
 */
import { InvalidParametersError } from '@kos-mesh/interface'
import type { KLPValue } from '@kos-mesh/interface'
import { StringTooLongError, TooManyItemsError } from './errors.js'
import { resolveLimits } from './limits.js'
import type { CodecLimits } from './limits.js'
import { TWO_32, isCborInt, typeName } from './cbor-shared.js'

const MAX_U64 = (1n << 64n) - 1n
const MIN_NEG64 = -(1n << 64n)
const textEncoder = new TextEncoder()
/** Above this many chars TextEncoder#encodeInto beats a charCodeAt loop (its fixed cost is ~0.07 µs). */
const ENCODE_INTO_MIN = 40

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
