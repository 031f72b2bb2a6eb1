import fc from 'fast-check'
import * as dagCbor from '@ipld/dag-cbor'
import { Decoder, Encoder } from 'cbor-x'
import { describe, expect, it } from 'vitest'
import { DecodeError, InvalidParametersError, KosMeshError, LimitExceededError } from '@kos-mesh/interface'
import type { KLPValue } from '@kos-mesh/interface'
import { decodeValue, encodeValue } from '../src/index.js'
import { modelValueArb, valueArb } from './helpers/arbitraries.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))

function errorOf(fn: () => unknown): KosMeshError {
  try { fn() } catch (err) { expect(err).toBeInstanceOf(KosMeshError); return err as KosMeshError }
  throw new Error('expected a throw')
}

describe('DAG-CBOR encoding', () => {
  it('writes shortest heads, float64, sorted keys, untagged bytes', () => {
    expect(hex(encodeValue(0))).toBe('00')
    expect(hex(encodeValue(23))).toBe('17')
    expect(hex(encodeValue(24))).toBe('1818')
    expect(hex(encodeValue(255))).toBe('18ff')
    expect(hex(encodeValue(256))).toBe('190100')
    expect(hex(encodeValue(65536))).toBe('1a00010000')
    expect(hex(encodeValue(1732460000123))).toBe('1b000001935ea9b37b') // ms timestamp: uint64, not float
    expect(hex(encodeValue(-1))).toBe('20')
    expect(hex(encodeValue(-25))).toBe('3818')
    expect(hex(encodeValue(1.5))).toBe('fb3ff8000000000000')
    expect(hex(encodeValue(-0))).toBe('00') // as @ipld/dag-cbor: -0 is the integer 0
    expect(hex(encodeValue(0.1))).toBe('fb3fb999999999999a') // float64 even where float32/16 would be exact or shorter
    expect(hex(encodeValue(65504.5))).toBe('fb40effc1000000000')
    expect(hex(encodeValue(2 ** 53))).toBe('fb4340000000000000') // an integral number beyond 2^53 - 1 stays a float64
    expect(hex(encodeValue(-(2 ** 53)))).toBe('fbc340000000000000')
    expect(hex(encodeValue(2n ** 53n))).toBe('1b0020000000000000') // the same integer as a bigint is an integer
    expect(hex(encodeValue(Number.MAX_SAFE_INTEGER))).toBe('1b001fffffffffffff')
    expect(hex(encodeValue(2n ** 64n - 1n))).toBe('1bffffffffffffffff')
    expect(hex(encodeValue(-(2n ** 64n)))).toBe('3bffffffffffffffff')
    expect(hex(encodeValue(5n))).toBe('05')
    expect(hex(encodeValue(new Uint8Array([1, 2])))).toBe('420102')
    expect(hex(encodeValue({ bb: 1, a: 2, c: 3 }))).toBe('a3616102616303626262' + '01')
    expect(hex(encodeValue([null, true, false]))).toBe('83f6f5f4')
    expect(hex(encodeValue('é'))).toBe('62c3a9')
  })

  it('sorts non-ASCII keys by UTF-8 bytes, not UTF-16 units', () => {
    // U+FF61 (ef bd a1) sorts before U+1F600 (f0 9f 98 80) in UTF-8, after it in UTF-16.
    const bytes = encodeValue({ '\u{1F600}': 1, '\uFF61': 2 })
    expect(hex(bytes)).toBe('a263efbda10264f09f988001')
    expect(decodeValue(bytes)).toEqual({ '\u{1F600}': 1, '\uFF61': 2 })
  })

  it('rejects values outside the data model with InvalidParametersError', () => {
    for (const v of [undefined, NaN, Infinity, () => 1, Symbol('x'), new Date(), new Map(), 2n ** 64n, -(2n ** 64n) - 1n, '\uD800', { a: undefined }, new Uint16Array(2)]) {
      expect(errorOf(() => encodeValue(v as unknown as KLPValue))).toBeInstanceOf(InvalidParametersError)
    }
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(errorOf(() => encodeValue(cyclic as KLPValue))).toBeInstanceOf(InvalidParametersError)
  })

  it('round-trips every KLPValue and re-encodes to the same bytes', () => {
    fc.assert(fc.property(valueArb, (v) => {
      const bytes = encodeValue(v)
      const back = decodeValue(bytes)
      expect(back).toEqual(v)
      expect(hex(encodeValue(back))).toBe(hex(bytes))
    }), { numRuns: 1500 })
  })

  it('agrees with cbor-x (canonical options, sorted keys) as an independent oracle', () => {
    const enc = new Encoder({ useRecords: false, variableMapSize: true, tagUint8Array: false, mapsAsObjects: true, useTag259ForMaps: false } as ConstructorParameters<typeof Encoder>[0])
    const dec = new Decoder({ useRecords: false, mapsAsObjects: true })
    // cbor-x writes ints >= 2^32 as float64: hand it bigints; skip -2^64 (and "__proto__" keys).
    const forCborX = (v: unknown): unknown => {
      if (typeof v === 'number' && Number.isSafeInteger(v) && Math.abs(v) >= 2 ** 32) return BigInt(v)
      if (Array.isArray(v)) return v.map(forCborX)
      if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
        const keys = Object.keys(v).sort((a, b) => Buffer.byteLength(a) - Buffer.byteLength(b) || Buffer.compare(Buffer.from(a), Buffer.from(b)))
        return new Map(keys.map((k) => [k, forCborX((v as Record<string, unknown>)[k])]))
      }
      return v
    }
    const skip = (v: unknown): boolean => v === -(2n ** 64n) || (Array.isArray(v) ? v.some(skip) : v !== null && typeof v === 'object' && !(v instanceof Uint8Array) ? Object.keys(v).includes('__proto__') || Object.values(v).some(skip) : false)
    let compared = 0
    fc.assert(fc.property(valueArb, (v) => {
      if (skip(v)) return
      compared++
      const ours = encodeValue(v)
      expect(hex(enc.encode(forCborX(v)))).toBe(hex(ours))
      expect(dec.decode(ours)).toBeDefined()
    }), { numRuns: 800 })
    expect(compared).toBeGreaterThan(400)
  })
})

describe('string fast paths', () => {
  it('encodes ASCII-then-non-ASCII strings and decodes interned short strings exactly', () => {
    const strs: string[] = []
    for (let i = 0; i < 3000; i++) strs.push(`k${i.toString(36)}`, `${'x'.repeat(i % 60)}é${i}`, 'a'.repeat(i % 50))
    const bytes = encodeValue(strs)
    expect(hex(bytes)).toBe(hex(new Encoder({ useRecords: false, variableMapSize: true, tagUint8Array: false } as ConstructorParameters<typeof Encoder>[0]).encode(strs)))
    // Twice: the second pass is served from the intern table (and its collisions).
    expect(decodeValue(bytes)).toEqual(strs)
    expect(decodeValue(bytes)).toEqual(strs)
  })
})

describe('strict CBOR decoding', () => {
  const cases: Array<[string, string, string]> = [
    ['1817', 'NonCanonicalCborError', 'non-minimal 1-byte int'],
    ['190017', 'NonCanonicalCborError', 'non-minimal 2-byte int'],
    ['1a000000ff', 'NonCanonicalCborError', 'non-minimal 4-byte int'],
    ['1b00000000ffffffff', 'NonCanonicalCborError', 'non-minimal 8-byte int'],
    ['5801ff', 'NonCanonicalCborError', 'non-minimal byte length'],
    ['9f01ff', 'NonCanonicalCborError', 'indefinite array'],
    ['bf616101ff', 'NonCanonicalCborError', 'indefinite map'],
    ['7f6161ff', 'NonCanonicalCborError', 'indefinite text'],
    ['a2616201616101', 'NonCanonicalCborError', 'unsorted keys'],
    ['a2626161016162', 'NonCanonicalCborError', 'longer key first'],
    ['a2616101616102', 'DuplicateKeyError', 'duplicate keys'],
    ['f93c00', 'NonCanonicalCborError', 'float16'],
    ['fa3fc00000', 'NonCanonicalCborError', 'float32'],
    ['fb3ff0000000000000', 'NonCanonicalCborError', 'integral float64'],
    ['fb8000000000000000', 'NonCanonicalCborError', '-0 as a float64 (DAG-CBOR writes 00)'],
    ['fb433fffffffffffff', 'NonCanonicalCborError', '2^53 - 1 as a float64'],
    ['d82a4500010203ff', 'MalformedCborError', 'a CID link (tag 42): outside the KLP data model'],
    ['fb7ff8000000000000', 'MalformedCborError', 'NaN'],
    ['fb7ff0000000000000', 'MalformedCborError', 'Infinity'],
    ['c249010000000000000000', 'MalformedCborError', 'tag'],
    ['f7', 'MalformedCborError', 'undefined'],
    ['f0', 'MalformedCborError', 'simple value'],
    ['ff', 'MalformedCborError', 'stray break'],
    ['1c', 'MalformedCborError', 'reserved additional info'],
    ['a1016161', 'MalformedCborError', 'integer map key'],
    ['62c328', 'MalformedCborError', 'invalid UTF-8'],
    ['6261', 'TruncatedInputError', 'truncated text'],
    ['83010203ff'.slice(0, 6), 'TruncatedInputError', 'truncated array'],
    ['5a00010000', 'TruncatedInputError', 'length beyond input'],
    ['9bffffffffffffffff', 'TruncatedInputError', 'huge array count'],
    ['0101', 'TrailingBytesError', 'trailing bytes'],
    ['', 'TruncatedInputError', 'empty input'],
  ]
  for (const [h, name, what] of cases) {
    it(`rejects ${what} (${h || 'empty'}) with ${name}`, () => {
      const err = errorOf(() => decodeValue(unhex(h)))
      expect(err.name).toBe(name)
      expect(err).toBeInstanceOf(DecodeError)
    })
  }

  it('caps depth, items and string lengths before allocating', () => {
    const deep = unhex('81'.repeat(40) + '00')
    expect(errorOf(() => decodeValue(deep)).name).toBe('NestingTooDeepError')
    expect(decodeValue(deep, { limits: { maxDepth: 64 } })).toBeDefined()
    const many = encodeValue(new Array(50).fill(0))
    expect(errorOf(() => decodeValue(many, { limits: { maxItems: 49 } })).name).toBe('TooManyItemsError')
    expect((decodeValue(many, { limits: { maxItems: 50 } }) as unknown[]).length).toBe(50)
    const text = encodeValue('x'.repeat(100))
    const tooLong = errorOf(() => decodeValue(text, { limits: { maxStringLength: 99 } }))
    expect(tooLong.name).toBe('StringTooLongError')
    expect(tooLong).toBeInstanceOf(LimitExceededError)
    // A 4 GiB length claim is refused from the head alone.
    expect(errorOf(() => decodeValue(unhex('5affffffff00'))).name).toBe('StringTooLongError')
    expect(errorOf(() => encodeValue('x'.repeat(100), { limits: { maxStringLength: 99 } })).name).toBe('StringTooLongError')
    expect(errorOf(() => encodeValue(new Array(50).fill(0), { limits: { maxItems: 49 } })).name).toBe('TooManyItemsError')
  })

  it('decodes "__proto__" keys as plain data, without touching the prototype', () => {
    const v = decodeValue(unhex('a1695f5f70726f746f5f5fa1617801')) as Record<string, unknown>
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype)
    expect(Object.keys(v)).toEqual(['__proto__'])
    expect(hex(encodeValue(v as KLPValue))).toBe('a1695f5f70726f746f5f5fa1617801')
  })

  it('accepts integral float64 values beyond 2^53 - 1 (how DAG-CBOR writes such numbers)', () => {
    expect(decodeValue(unhex('fb4340000000000000'))).toBe(2 ** 53)
    expect(decodeValue(unhex('fbc3f0000000000000'))).toBe(-(2 ** 64))
  })

  it('turns integers beyond 2^53 into bigints and back', () => {
    expect(decodeValue(unhex('1b0020000000000000'))).toBe(2n ** 53n)
    expect(decodeValue(unhex('1b001fffffffffffff'))).toBe(2 ** 53 - 1)
    expect(decodeValue(unhex('3b001ffffffffffffe'))).toBe(-(2 ** 53 - 1))
    expect(decodeValue(unhex('3b001fffffffffffff'))).toBe(-(2n ** 53n))
  })
})

describe('DAG-CBOR, with @ipld/dag-cbor as the oracle', () => {
  it('encodes every value of the data model byte-identically to @ipld/dag-cbor, and both decode it alike (property)', () => {
    fc.assert(fc.property(modelValueArb, (v) => {
      const ours = encodeValue(v)
      expect(hex(ours)).toBe(hex(dagCbor.encode(v)))
      // @ipld/dag-cbor decodes what we wrote to the same value our decoder returns, and we decode its bytes
      const back = decodeValue(ours)
      expect(back).toEqual(dagCbor.decode(ours))
      expect(hex(encodeValue(back))).toBe(hex(ours))
    }), { numRuns: 3000 })
  })

  it('whatever the strict decoder accepts, @ipld/dag-cbor decodes and re-encodes to the same bytes (mutation fuzz)', () => {
    let accepted = 0
    let rejected = 0
    fc.assert(fc.property(modelValueArb, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 3 }), (v, edits) => {
      const b = Uint8Array.from(encodeValue(v))
      for (const [at, byte] of edits) b[at % b.length] = byte
      let ok = false
      try {
        decodeValue(b)
        ok = true
      } catch (err) {
        expect(err).toBeInstanceOf(DecodeError)
        rejected++
      }
      if (ok) {
        accepted++
        expect(hex(dagCbor.encode(dagCbor.decode(b)))).toBe(hex(b))
      }
    }), { numRuns: 5000 })
    expect(accepted).toBeGreaterThan(100)
    expect(rejected).toBeGreaterThan(100)
  })

  it('rejects what @ipld/dag-cbor rejects on encode: NaN, +/-Infinity, undefined, bigints beyond 64 bits', () => {
    for (const v of [NaN, Infinity, -Infinity, undefined, 2n ** 64n, [1, { a: undefined }]]) {
      expect(() => dagCbor.encode(v)).toThrow()
      expect(errorOf(() => encodeValue(v as unknown as KLPValue))).toBeInstanceOf(InvalidParametersError)
    }
  })
})

describe('byte strings decode as views', () => {
  it('returns byte strings as views into the input, not copies', () => {
    const input = encodeValue({ a: new Uint8Array([1, 2, 3]), b: [new Uint8Array(300).fill(7)] })
    const v = decodeValue(input) as { a: Uint8Array; b: Uint8Array[] }
    expect(v.a).toEqual(new Uint8Array([1, 2, 3]))
    expect(v.a.buffer).toBe(input.buffer)
    expect(v.b[0]!.buffer).toBe(input.buffer)
    expect(v.b[0]!.byteOffset).toBeGreaterThan(input.byteOffset)
    // shared memory: a change to the input shows in the decoded bytes (documented: do not modify the input)
    input[input.length - 1] = 9
    expect(v.b[0]![299]).toBe(9)
  })
})
