/** fast-check arbitraries shared by the tests. */
import fc from 'fast-check'
import { KLP_MESSAGE_TYPES, MessagePriority, VerificationLevel } from '@kos-mesh/interface'
import type { KLPValue } from '@kos-mesh/interface'
import type { CreateMessageInit } from '../../src/index.js'

const labelArb = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?$/)
const pchar = fc.oneof(fc.constantFrom(...'abcXYZ019-._~!$&\'()*+,;=:@'.split('')), fc.constantFrom('%20', '%C3', '%a9'))
const segArb = fc.array(pchar, { minLength: 1, maxLength: 8 }).map((a) => a.join('')).filter((s) => s !== '.' && s !== '..')
const queryArb = fc.array(fc.oneof(pchar, fc.constantFrom('/', '?')), { maxLength: 10 }).map((a) => a.join(''))
export const addressArb = fc.record({
  authority: fc.array(labelArb, { minLength: 1, maxLength: 4 }).map((l) => l.join('.')),
  segs: fc.array(segArb, { maxLength: 4 }),
  trailing: fc.boolean(),
  query: fc.option(queryArb, { nil: undefined }),
  fragment: fc.option(queryArb, { nil: undefined }),
}).map(({ authority, segs, trailing, query, fragment }) => {
  const path = segs.length === 0 ? '/' : '/' + segs.join('/') + (trailing ? '/' : '')
  const a: { scheme: 'klp'; authority: string; path: string; query?: string; fragment?: string } = { scheme: 'klp', authority, path }
  if (query !== undefined) a.query = query
  if (fragment !== undefined) a.fragment = fragment
  return a
})


/**
 * Any KLPValue the codec round-trips to an equal value (bigints only outside the safe-integer range,
 * which decode as numbers; no -0, which is written as the integer 0 and decodes as 0).
 */
export const valueArb: fc.Arbitrary<KLPValue> = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.maxSafeInteger(),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Object.is(x, -0)),
    fc.bigInt({ min: -(1n << 64n), max: -(1n << 53n) }),
    fc.bigInt({ min: 1n << 53n, max: (1n << 64n) - 1n }),
    fc.string({ maxLength: 20 }),
    fc.string({ unit: 'grapheme', maxLength: 10 }),
    fc.uint8Array({ maxLength: 20 }),
  ),
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('leaf'), tie('arr'), tie('obj')),
  arr: fc.array(tie('node'), { maxLength: 5 }),
  obj: fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.string({ unit: 'grapheme', maxLength: 3 })), tie('node'), { maxKeys: 5 }),
})).node as fc.Arbitrary<KLPValue>

/**
 * Every value of the KLP data model, for the @ipld/dag-cbor oracle: -0, integral numbers beyond
 * 2^53, extreme and subnormal floats, bigints over the whole 64-bit range (small ones too), strings
 * and map keys of any Unicode code point (well-formed), byte strings, nested arrays and maps.
 */
export const modelValueArb: fc.Arbitrary<KLPValue> = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.maxSafeInteger(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.constantFrom(-0, 0.1, 2 ** 53, -(2 ** 53), 2 ** 53 + 2, 2 ** 64, -(2 ** 64), 2 ** 63, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE,
      Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 32, 2 ** 32 - 1, -(2 ** 32), 65535.5, 1e-300),
    fc.bigInt({ min: -(1n << 64n), max: (1n << 64n) - 1n }),
    fc.bigInt({ min: -1000n, max: 1000n }),
    fc.string({ maxLength: 20 }),
    fc.string({ unit: 'binary', maxLength: 12 }),
    fc.string({ unit: 'grapheme', maxLength: 10 }),
    fc.uint8Array({ maxLength: 40 }),
  ),
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('leaf'), tie('arr'), tie('obj')),
  arr: fc.array(tie('node'), { maxLength: 5 }),
  obj: fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.string({ unit: 'binary', maxLength: 4 }), fc.string({ unit: 'grapheme', maxLength: 3 })), tie('node'), { maxKeys: 6 }),
})).node as fc.Arbitrary<KLPValue>

export const messageInitArb: fc.Arbitrary<CreateMessageInit> = fc.record({
  type: fc.constantFrom(...KLP_MESSAGE_TYPES),
  source: addressArb,
  target: addressArb,
  data: valueArb,
  content_type: fc.constantFrom('application/cbor', 'application/json', 'text/plain', 'application/octet-stream', 'text/plain; charset=utf-8'),
  priority: fc.constantFrom(...Object.values(MessagePriority)),
  ttl: fc.integer({ min: 0, max: 0xffff_ffff }),
  correlation_id: fc.option(fc.string({ minLength: 1, maxLength: 40 }), { nil: undefined }),
  routing_hints: fc.array(fc.record({ kind: fc.string({ minLength: 1, maxLength: 10 }), value: fc.string({ maxLength: 20 }) }), { maxLength: 3 }),
  trust_requirements: fc.record({
    minimum_trust_score: fc.oneof(fc.integer({ min: 0, max: 10 }), fc.double({ min: 0, max: 10, noNaN: true }).filter((x) => !Object.is(x, -0))),
    required_endorsements: fc.integer({ min: 0, max: 1000 }),
    verification_level: fc.constantFrom(...Object.values(VerificationLevel)),
  }),
  timestamp: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  version: fc.constantFrom('1.0', '1', '2.1.3'),
}, { requiredKeys: ['type', 'source', 'target', 'data'] })
