/**
 * The trust messages' payload codec: round trips through DAG-CBOR (as the router carries them),
 * every malformed shape refused with InvalidTrustMessageError, and the bounds.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { describe, expect, it } from 'vitest'
import { InvalidTrustMessageError } from '../src/errors.js'
import {
  DEFAULT_TRUST_PROTOCOL_LIMITS,
  batchStatements,
  parseTrustPayload,
  trustPayloadValue,
  type TrustPayload,
  type TrustProtocolLimits,
} from '../src/protocol.js'

const DID = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'
const bytes = (n: number, fill = 1): Uint8Array => new Uint8Array(n).fill(fill)

function roundTrip(p: TrustPayload, limits?: TrustProtocolLimits): TrustPayload {
  const wire = dagCbor.encode(trustPayloadValue(p, limits))
  return parseTrustPayload(dagCbor.decode(wire), limits)
}

function refused(data: unknown, limits?: TrustProtocolLimits): string {
  try {
    parseTrustPayload(data, limits)
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidTrustMessageError)
    expect((err as Error).name).toBe('InvalidTrustMessageError')
    expect((err as InvalidTrustMessageError).code).toBe('ERR_INVALID_TRUST_MESSAGE')
    return (err as Error).message
  }
  throw new Error(`expected ${JSON.stringify(data, (_k, v: unknown) => (v instanceof Uint8Array ? `bytes(${v.length})` : v))} to be refused`)
}

describe('trust payload codec: round trips', () => {
  it('push, answer and an empty list', () => {
    const statements = [bytes(10, 1), bytes(300, 2), bytes(DEFAULT_TRUST_PROTOCOL_LIMITS.maxStatementBytes, 3)]
    expect(roundTrip({ op: 'push', statements })).toEqual({ op: 'push', statements })
    expect(roundTrip({ op: 'answer', statements })).toEqual({ op: 'answer', statements })
    expect(roundTrip({ op: 'answer', statements: [] })).toEqual({ op: 'answer', statements: [] })
  })

  it('query with every field, with none, and optional fields omitted on the wire', () => {
    const full: TrustPayload = { op: 'query', query: { subject: DID, issuer: DID, kind: 'revocation', since: 1_767_225_600_000, limit: 64 } }
    expect(roundTrip(full)).toEqual(full)
    expect(roundTrip({ op: 'query', query: {} })).toEqual({ op: 'query', query: {} })
    expect(trustPayloadValue({ op: 'query', query: { kind: 'delta' } })).toEqual({ op: 'query', kind: 'delta' })
    for (const kind of ['attestation', 'delta', 'revocation'] as const) expect(roundTrip({ op: 'query', query: { kind } })).toEqual({ op: 'query', query: { kind } })
  })

  it('exactly at the bounds is accepted', () => {
    const max = DEFAULT_TRUST_PROTOCOL_LIMITS.maxStatementsPerMessage
    const p: TrustPayload = { op: 'push', statements: Array.from({ length: max }, (_, i) => bytes(100, i)) }
    expect(roundTrip(p)).toEqual(p)
    const limits = { ...DEFAULT_TRUST_PROTOCOL_LIMITS, maxMessageBytes: 1000 }
    const atBytes: TrustPayload = { op: 'push', statements: [bytes(500), bytes(500)] }
    expect(roundTrip(atBytes, limits)).toEqual(atBytes)
  })
})

describe('trust payload codec: malformed shapes -> InvalidTrustMessageError', () => {
  it('not an object', () => {
    for (const v of [null, undefined, 1, 'push', true, [], [{ op: 'push', statements: [] }], bytes(3)]) refused(v)
  })

  it('unknown or missing op', () => {
    refused({})
    refused({ op: 'pull', statements: [] })
    refused({ op: 'PUSH', statements: [] })
    refused({ op: 1 })
    refused({ statements: [] })
  })

  it('unknown fields', () => {
    expect(refused({ op: 'push', statements: [], extra: 1 })).toMatch(/only fields/)
    refused({ op: 'answer', statements: [], more: true })
    refused({ op: 'query', subject: DID, what: 'x' })
    refused({ op: 'query', __proto__x: 1 })
  })

  it('push / answer: statements not a list of non-empty bytes', () => {
    for (const op of ['push', 'answer']) {
      refused({ op })
      refused({ op, statements: null })
      refused({ op, statements: bytes(4) })
      refused({ op, statements: 'abc' })
      refused({ op, statements: { 0: bytes(4) } })
      refused({ op, statements: [bytes(4), 'x'] })
      refused({ op, statements: [[1, 2, 3]] })
      refused({ op, statements: [bytes(0)] })
      refused({ op, statements: [null] })
    }
  })

  it('query: wrong types and ranges', () => {
    refused({ op: 'query', subject: 'not-a-did' })
    refused({ op: 'query', subject: 5 })
    refused({ op: 'query', issuer: bytes(3) })
    refused({ op: 'query', issuer: `did:key:${'z'.repeat(600)}` })
    refused({ op: 'query', kind: 'Attestation' })
    refused({ op: 'query', kind: 'all' })
    refused({ op: 'query', kind: 1 })
    refused({ op: 'query', since: -1 })
    refused({ op: 'query', since: 1.5 })
    refused({ op: 'query', since: '0' })
    refused({ op: 'query', since: Number.MAX_SAFE_INTEGER + 2 })
    refused({ op: 'query', limit: 0 })
    refused({ op: 'query', limit: 65 })
    refused({ op: 'query', limit: 2.5 })
    refused({ op: 'query', limit: null })
    refused({ op: 'query', since: 10n })
  })
})

describe('trust payload codec: bounds', () => {
  it('more statements than maxStatementsPerMessage', () => {
    const max = DEFAULT_TRUST_PROTOCOL_LIMITS.maxStatementsPerMessage
    expect(refused({ op: 'push', statements: Array.from({ length: max + 1 }, () => bytes(10)) })).toMatch(/at most 64 statements/)
    refused({ op: 'answer', statements: Array.from({ length: 3 }, () => bytes(10)) }, { ...DEFAULT_TRUST_PROTOCOL_LIMITS, maxStatementsPerMessage: 2 })
  })

  it('a statement over maxStatementBytes', () => {
    expect(refused({ op: 'push', statements: [bytes(10), bytes(DEFAULT_TRUST_PROTOCOL_LIMITS.maxStatementBytes + 1)] })).toMatch(/at most 4096 bytes/)
  })

  it('more bytes in all than maxMessageBytes', () => {
    const limits = { ...DEFAULT_TRUST_PROTOCOL_LIMITS, maxMessageBytes: 1000 }
    expect(refused({ op: 'push', statements: [bytes(500), bytes(501)] }, limits)).toMatch(/at most 1000 statement bytes/)
    // the default: 64 statements of 4 KiB are 256 KiB, over the 128 KiB default
    refused({ op: 'push', statements: Array.from({ length: 64 }, () => bytes(4096)) })
  })

  it('the encoder refuses what a peer would refuse', () => {
    expect(() => trustPayloadValue({ op: 'push', statements: Array.from({ length: 65 }, () => bytes(1)) })).toThrow(InvalidTrustMessageError)
    expect(() => trustPayloadValue({ op: 'query', query: { limit: 1000 } })).toThrow(InvalidTrustMessageError)
    expect(() => trustPayloadValue({ op: 'query', query: { subject: 'x' } })).toThrow(InvalidTrustMessageError)
    expect(() => trustPayloadValue({ op: 'nope' } as unknown as TrustPayload)).toThrow(InvalidTrustMessageError)
  })

  it('batchStatements splits by count and by bytes, in order, and leaves out oversized statements', () => {
    const list = Array.from({ length: 130 }, (_, i) => bytes(10, i))
    const batches = batchStatements(list)
    expect(batches.map((b) => b.length)).toEqual([64, 64, 2])
    expect(batches.flat()).toEqual(list)
    const limits = { ...DEFAULT_TRUST_PROTOCOL_LIMITS, maxMessageBytes: 25 }
    expect(batchStatements([bytes(10), bytes(10), bytes(10), bytes(30), bytes(5)], limits).map((b) => b.map((s) => s.length))).toEqual([[10, 10], [10, 5]])
    expect(batchStatements([])).toEqual([])
    for (const b of batchStatements(Array.from({ length: 200 }, () => bytes(3000)))) expect(() => parseTrustPayload({ op: 'push', statements: b })).not.toThrow()
  })

  it('a fuzzed value never throws anything but InvalidTrustMessageError', () => {
    let s = 12345
    const rnd = (): number => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0
      return s / 4294967296
    }
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T
    const atoms: unknown[] = [null, 0, -1, 1.5, 64, 65, 'push', 'query', 'answer', DID, '', true, bytes(0), bytes(5), bytes(5000), [], {}]
    const value = (depth: number): unknown => {
      const r = rnd()
      if (depth > 2 || r < 0.5) return pick(atoms)
      if (r < 0.7) return Array.from({ length: Math.floor(rnd() * 4) }, () => value(depth + 1))
      const o: Record<string, unknown> = {}
      for (let i = 0; i < Math.floor(rnd() * 4); i++) o[pick(['op', 'statements', 'subject', 'issuer', 'kind', 'since', 'limit', 'x'])] = value(depth + 1)
      return o
    }
    let ok = 0
    for (let i = 0; i < 5000; i++) {
      const v = rnd() < 0.5 ? { op: pick(['push', 'query', 'answer']), ...(value(1) as object) } : value(0)
      try {
        parseTrustPayload(v)
        ok++
      } catch (err) {
        expect((err as Error).name).toBe('InvalidTrustMessageError')
      }
    }
    expect(ok).toBeGreaterThan(0)
  })
})
