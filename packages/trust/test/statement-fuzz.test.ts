/**
 * Bad input: every byte of a valid statement flipped, arbitrary bytes, mutated statements, arbitrary
 * payloads in a well-formed envelope and near-valid bodies. Only typed errors come out (instances of
 * KosMeshError, and for bytes only the statement errors), nothing hangs, and nothing but an
 * unchanged statement is accepted. More than 100,000 inputs in all.
 */
import { createSignatureVerifier, identityFromSeed } from '@kos-mesh/did-security'
import { KosMeshError } from '@kos-mesh/interface'
import type { KLPValue } from '@kos-mesh/interface'
import { encodeValue } from '@kos-mesh/klp-codec'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { STATEMENT_AAD, checkStatementTime, decodeStatement, encodeStatementBody, signStatement, statementId, validateStatementBody, verifyStatement } from '../src/index.js'
import type { SignedStatement, StatementBody } from '../src/index.js'

const T0 = 1_732_460_000_000
const DAY = 86_400_000
const alice = identityFromSeed(new Uint8Array(32).fill(21))
const bob = identityFromSeed(new Uint8Array(32).fill(22))
const verifier = createSignatureVerifier()
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

const bodies: StatementBody[] = [
  { kind: 'attestation', v: 1, issuer: alice.did, subject: bob.did, issued_at: T0, claim: 'role', value: 'ValidatorNode', context: '*', expires_at: T0 + 90 * DAY },
  { kind: 'delta', v: 1, issuer: alice.did, subject: bob.did, issued_at: T0, window: T0 - (T0 % 3_600_000), window_ms: 3_600_000, counts: { task_ok: 40, task_failed: 2, timeout: 300 }, expires_at: T0 + 7 * DAY },
  { kind: 'revocation', v: 1, issuer: alice.did, subject: bob.did, issued_at: T0, scope: 'statement', statement: statementId(encodeValue({ a: 1 })), reason: 'mistake' },
]
const signed: SignedStatement[] = await Promise.all(bodies.map(async (b) => signStatement(b, alice.signer)))
const originals = new Set(signed.map((s) => hex(s.bytes)))

const BYTE_ERRORS = new Set(['InvalidStatementError', 'InvalidStatementSignatureError', 'StatementTooLargeError'])

/** Decodes and reports the outcome: 'ok' or the error's name; anything untyped fails the test. */
function decodeOutcome(bytes: Uint8Array): string {
  try {
    decodeStatement(bytes)
    return 'ok'
  } catch (err) {
    if (!(err instanceof KosMeshError) || !BYTE_ERRORS.has(err.name)) throw err
    return err.name
  }
}

/**
 * Verifies at T0 and checks the outcome: accepted only if the bytes are an original statement;
 * otherwise one of the byte errors, or StatementExpiredError only when the tampered bytes decode to
 * a body that really is out of time at T0 (the time check runs before the signature check).
 */
async function verifyOutcome(bytes: Uint8Array): Promise<string> {
  try {
    await verifyStatement(bytes, verifier, { now: T0 })
  } catch (err) {
    if (!(err instanceof KosMeshError)) throw err
    if (err.name === 'StatementExpiredError') {
      const body = decodeStatement(bytes).body
      expect(() => checkStatementTime(body, T0)).toThrow()
      return err.name
    }
    if (!BYTE_ERRORS.has(err.name)) throw err
    return err.name
  }
  expect(originals.has(hex(bytes))).toBe(true)
  return 'ok'
}

describe('tampering', () => {
  it('flipping any bit of any byte of a valid statement never yields an accepted statement or an untyped error', async () => {
    const seen = new Map<string, number>()
    let n = 0
    for (const s of signed) {
      for (let i = 0; i < s.bytes.length; i++) {
        for (let bit = 0; bit < 8; bit++) {
          const t = Uint8Array.from(s.bytes)
          t[i] = (t[i] as number) ^ (1 << bit)
          const outcome = await verifyOutcome(t)
          expect(outcome).not.toBe('ok')
          seen.set(outcome, (seen.get(outcome) ?? 0) + 1)
          n++
        }
        const z = Uint8Array.from(s.bytes)
        z[i] = (z[i] as number) ^ 0xff
        expect(await verifyOutcome(z)).not.toBe('ok')
        n++
      }
    }
    expect(n).toBeGreaterThan(5000)
    // flips in the signature or in a DID / count keep the structure: they reach the signature check
    expect(seen.get('InvalidStatementSignatureError')).toBeGreaterThan(1000)
    expect(seen.get('InvalidStatementError')).toBeGreaterThan(1000)
  })

  it('every truncation and every one-byte extension is refused', async () => {
    for (const s of signed) {
      for (let len = 0; len < s.bytes.length; len++) expect(decodeOutcome(s.bytes.subarray(0, len))).toBe('InvalidStatementError')
      for (let b = 0; b < 256; b++) expect(decodeOutcome(Uint8Array.from([...s.bytes, b]))).toBe('InvalidStatementError')
    }
  })
})

describe('fuzz', () => {
  it('arbitrary bytes: only statement errors (40,000 inputs)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1100 }), (bytes) => {
      expect(decodeOutcome(bytes)).not.toBe('ok')
    }), { numRuns: 40_000 })
  })

  it('arbitrary bytes behind a COSE_Sign1 head and a valid protected header: only statement errors (20,000 inputs)', () => {
    const prefix = signed[0]!.bytes.subarray(0, 2 + 2 + 4 + 2 + alice.keyId.length + 1) // d2 84, protected bstr, a0
    expect(prefix[prefix.length - 1]).toBe(0xa0)
    fc.assert(fc.property(fc.oneof(fc.constant(0), fc.constant(2)), fc.uint8Array({ maxLength: 600 }), (cut, tail) => {
      const bytes = Uint8Array.from([...prefix.subarray(0, cut === 0 ? prefix.length : 2), ...tail])
      expect(decodeOutcome(bytes)).not.toBe('ok')
    }), { numRuns: 20_000 })
  })

  it('mutated valid statements (set, insert, delete, truncate, splice): refused with typed errors, never accepted changed (30,000 inputs)', async () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('set' as const), at: fc.nat(), b: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ k: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
      fc.record({ k: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }),
      fc.record({ k: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({ k: fc.constant('splice' as const), at: fc.nat(), from: fc.nat(), n: fc.integer({ min: 1, max: 64 }), src: fc.nat({ max: 2 }) }),
    )
    await fc.assert(fc.asyncProperty(fc.nat({ max: 2 }), fc.array(op, { minLength: 1, maxLength: 4 }), async (which, ops) => {
      let b = [...signed[which]!.bytes]
      for (const o of ops) {
        const at = o.at % (b.length + 1)
        if (o.k === 'set') b[Math.min(at, b.length - 1)] = o.b
        else if (o.k === 'insert') b.splice(at, 0, ...o.bytes)
        else if (o.k === 'delete') b.splice(at, o.n)
        else if (o.k === 'truncate') b = b.slice(0, at)
        else {
          const src = signed[o.src]!.bytes
          const from = o.from % src.length
          b.splice(at, o.n, ...src.subarray(from, from + o.n))
        }
      }
      await verifyOutcome(Uint8Array.from(b))
    }), { numRuns: 30_000 })
  })

  it('arbitrary DAG-CBOR payloads in a well-formed, validly signed envelope: only InvalidStatementError (10,000 inputs)', async () => {
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string({ maxLength: 20 }), fc.boolean(), fc.constant(null),
        fc.uint8Array({ maxLength: 8 }), fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(fc.string({ maxLength: 10 }), tie('v'), { maxKeys: 4 })),
    })).v
    // mostly near-valid: a valid body with one field replaced, added or removed
    const field = fc.constantFrom('kind', 'v', 'issuer', 'subject', 'issued_at', 'claim', 'level', 'value', 'context', 'expires_at', 'window', 'window_ms', 'counts', 'scope', 'statement', 'reason', 'x')
    const nearValid = fc.tuple(fc.nat({ max: 2 }), field, fc.option(value, { nil: undefined })).map(([w, f, v]) => {
      const o: Record<string, unknown> = { ...bodies[w] }
      if (v === undefined) delete o[f]
      else o[f] = v
      return o
    })
    const prot = signed[0]!.bytes.subarray(2, 2 + 2 + 4 + 2 + alice.keyId.length)
    const aad = utf8(STATEMENT_AAD)
    await fc.assert(fc.asyncProperty(fc.oneof(value, nearValid), async (v) => {
      let payload: Uint8Array
      try {
        payload = encodeValue(v as KLPValue)
      } catch {
        return // outside the data model
      }
      const head = payload.length < 24 ? [0x40 | payload.length] : payload.length < 256 ? [0x58, payload.length] : [0x59, payload.length >> 8, payload.length & 0xff]
      const toSign = Uint8Array.from([0x84, 0x6a, ...utf8('Signature1'), ...prot, 0x40 | aad.length, ...aad, ...head, ...payload])
      const bytes = Uint8Array.from([0xd2, 0x84, ...prot, 0xa0, ...head, ...payload, 0x58, 0x40, ...alice.sign(toSign)])
      let accepted: SignedStatement | undefined
      try {
        accepted = await verifyStatement(bytes, verifier, { now: T0 })
      } catch (err) {
        expect(err).toBeInstanceOf(KosMeshError)
        if ((err as Error).name === 'StatementExpiredError') return
        expect(BYTE_ERRORS.has((err as Error).name)).toBe(true)
        expect((err as Error).name).not.toBe('InvalidStatementSignatureError') // the signature is good: only the body can be wrong
        return
      }
      // accepted: then it is a valid body, and re-encoding it gives the very payload
      expect(hex(encodeStatementBody(accepted.body))).toBe(hex(payload))
    }), { numRuns: 10_000 })
  })

  it('near-valid in-memory bodies: validateStatementBody returns a body that round-trips, or throws InvalidStatementError (10,000 inputs)', () => {
    const anyValue = fc.oneof(fc.integer({ min: -5, max: 2 ** 42 }), fc.double(), fc.string({ maxLength: 70 }), fc.constant(null), fc.constant(undefined),
      fc.bigInt(), fc.array(fc.nat(), { maxLength: 3 }), fc.constantFrom('*', 'trust', 'key', 'delta', 'statement', alice.did, bob.did, 3_600_000, 86_400_000, T0, 1, 10, 65_535, 65_536),
      fc.dictionary(fc.constantFrom('task_ok', 'timeout', 'x'), fc.integer({ min: -1, max: 70_000 }), { maxKeys: 3 }))
    fc.assert(fc.property(fc.nat({ max: 2 }), fc.array(fc.tuple(fc.constantFrom('kind', 'v', 'issuer', 'subject', 'issued_at', 'claim', 'level', 'value', 'context', 'expires_at', 'window', 'window_ms', 'counts', 'scope', 'statement', 'reason', 'zz'), anyValue), { maxLength: 3 }), (w, changes) => {
      const o: Record<string, unknown> = { ...bodies[w] }
      for (const [k, v] of changes) o[k] = v
      let body: StatementBody
      try {
        body = validateStatementBody(o)
      } catch (err) {
        expect(err).toBeInstanceOf(KosMeshError)
        expect((err as Error).name).toBe('InvalidStatementError')
        return
      }
      expect(validateStatementBody(JSON.parse(JSON.stringify(body)))).toEqual(body)
      expect(hex(encodeStatementBody(body))).toBe(hex(encodeValue(body as unknown as KLPValue)))
    }), { numRuns: 10_000 })
  })
})
