import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { InvalidAddressError } from '@kos-mesh/interface'
import { formatAddress, isValidAddress, MAX_ADDRESS_LENGTH, parseAddress } from '../src/index.js'
import { addressArb } from './helpers/arbitraries.js'

function expectInvalid(s: string): void {
  let err: unknown
  try { parseAddress(s) } catch (e) { err = e }
  expect(err).toBeInstanceOf(InvalidAddressError)
  expect((err as InvalidAddressError).name).toBe('InvalidAddressError')
  expect((err as InvalidAddressError).code).toBe('ERR_INVALID_ADDRESS')
  expect(isValidAddress(s)).toBe(false)
}

describe('klp:// addresses', () => {
  it('parses the example from the issue', () => {
    expect(parseAddress('klp://node.domain.kai/agents/genie?x=1#f')).toEqual({
      scheme: 'klp', authority: 'node.domain.kai', path: '/agents/genie', query: 'x=1', fragment: 'f',
    })
  })

  it('round-trips exactly, keeping empty query/fragment distinct from absent ones', () => {
    for (const s of [
      'klp://a/', 'klp://node.domain.kai/agents/genie?x=1#f', 'klp://a.b/x/', 'klp://a/x?', 'klp://a/x#', 'klp://a/x?#',
      "klp://n1-2.kai/a%2Fb/c:d@e!$&'()*+,;=~._-?q=/?x#frag/?", 'klp://a/%C3%A9',
    ]) {
      expect(formatAddress(parseAddress(s))).toBe(s)
    }
    expect(parseAddress('klp://a/x?').query).toBe('')
    expect(parseAddress('klp://a/x').query).toBeUndefined()
  })

  it('normalises only an absent path to "/" (and strict mode rejects it)', () => {
    expect(parseAddress('klp://node.kai')).toEqual({ scheme: 'klp', authority: 'node.kai', path: '/' })
    expect(formatAddress(parseAddress('klp://node.kai?q'))).toBe('klp://node.kai/?q')
    expect(() => parseAddress('klp://node.kai', { strict: true })).toThrow(InvalidAddressError)
  })

  it('rejects malformed addresses with InvalidAddressError', () => {
    for (const s of [
      '', 'klp:/a/b', 'KLP://a/b', 'http://a/b', 'klp://', 'klp:///x', 'klp://Node.kai/', 'klp://-a.kai/', 'klp://a-.kai/',
      'klp://a..b/', 'klp://.a/', 'klp://a./', 'klp://a:80/', 'klp://u@a/', 'klp://a_b/', 'klp://a//x', 'klp://a/./x',
      'klp://a/../x', 'klp://a/x y', 'klp://a/%zz', 'klp://a/%4', 'klp://a/é', 'klp://a/x?y z', 'klp://a/x#a#b',
      'klp://a/x?[', 'klp://a\\b/', `klp://${'a'.repeat(64)}/`, `klp://${('a'.repeat(63) + '.').repeat(4)}a/`,
      `klp://a/${'x'.repeat(MAX_ADDRESS_LENGTH)}`,
    ]) {
      expectInvalid(s)
    }
    expect(() => parseAddress(42 as unknown as string)).toThrow(InvalidAddressError)
  })

  it('enforces length limits at the boundary', () => {
    const label63 = 'a'.repeat(63)
    expect(isValidAddress(`klp://${label63}/`)).toBe(true)
    const auth253 = [label63, label63, label63, 'a'.repeat(61)].join('.')
    expect(auth253.length).toBe(253)
    expect(isValidAddress(`klp://${auth253}/`)).toBe(true)
    expect(isValidAddress(`klp://${auth253}a/`)).toBe(false)
    const base = 'klp://a/'
    expect(isValidAddress(base + 'x'.repeat(MAX_ADDRESS_LENGTH - base.length))).toBe(true)
    expect(isValidAddress(base + 'x'.repeat(MAX_ADDRESS_LENGTH - base.length + 1))).toBe(false)
  })

  it('formatAddress validates its input', () => {
    expect(() => formatAddress({ scheme: 'klp', authority: 'A', path: '/' })).toThrow(InvalidAddressError)
    expect(() => formatAddress({ scheme: 'klp', authority: 'a', path: 'x' })).toThrow(InvalidAddressError)
    expect(() => formatAddress({ scheme: 'http' as 'klp', authority: 'a', path: '/' })).toThrow(InvalidAddressError)
    expect(() => formatAddress({ scheme: 'klp', authority: 'a', path: '/', query: 'a#b' })).toThrow(InvalidAddressError)
    expect(() => formatAddress(null as unknown as never)).toThrow(InvalidAddressError)
  })
})

describe('klp:// addresses (properties)', () => {
  it('parse(format(a)) equals a and format(parse(s)) equals s', () => {
    fc.assert(fc.property(addressArb, (a) => {
      const s = formatAddress(a)
      expect(parseAddress(s)).toEqual(a)
      expect(formatAddress(parseAddress(s))).toBe(s)
      expect(parseAddress(s, { strict: true })).toEqual(a)
    }), { numRuns: 500 })
  })

  it('never throws anything but InvalidAddressError on arbitrary strings', () => {
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 60 }), fc.string({ maxLength: 40 }).map((s) => 'klp://' + s)), (s) => {
      try {
        const a = parseAddress(s)
        expect(formatAddress(a).length).toBeGreaterThan(6)
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidAddressError)
      }
    }), { numRuns: 2000 })
  })
})
