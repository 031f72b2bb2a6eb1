/**
 * Statements: round trips with real did:key identities, every body rule, strict decoding, time
 * checks, size bounds, forged and cross-domain signatures.
 */
import { createSignatureVerifier, generateIdentity, identityFromSeed } from '@kos-mesh/did-security'
import { KosMeshError, UnknownKeyError } from '@kos-mesh/interface'
import type { Signer } from '@kos-mesh/interface'
import { signingInput as messageSigningInput } from '@kos-mesh/klp-codec'
import * as dagCbor from '@ipld/dag-cbor'
import { describe, expect, it } from 'vitest'
import {
  DEFAULT_MAX_LIFETIME_MS,
  MAX_STATEMENT_BYTES,
  STATEMENT_AAD,
  checkStatementTime,
  decodeStatement,
  encodeStatementBody,
  signStatement,
  statementId,
  validateStatementBody,
  verifyStatement,
} from '../src/index.js'
import type { AttestationBody, DeltaBody, RevocationBody, StatementBody } from '../src/index.js'

const T0 = 1_732_460_000_000
const MIN = 60_000
const DAY = 86_400_000
const alice = identityFromSeed(new Uint8Array(32).fill(1))
const bob = identityFromSeed(new Uint8Array(32).fill(2))
const verifier = createSignatureVerifier()
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

const attestation = (over: Record<string, unknown> = {}): AttestationBody => ({
  kind: 'attestation', v: 1, issuer: alice.did, subject: bob.did, issued_at: T0, claim: 'trust', level: 7, context: '*', expires_at: T0 + 90 * DAY, ...over,
}) as AttestationBody
const delta = (over: Record<string, unknown> = {}): DeltaBody => ({
  kind: 'delta', v: 1, issuer: alice.did, subject: bob.did, issued_at: T0, window: T0 - (T0 % 3_600_000), window_ms: 3_600_000,
  counts: { task_ok: 12, timeout: 1 }, expires_at: T0 + 7 * DAY, ...over,
}) as DeltaBody
const revocation = (over: Record<string, unknown> = {}): RevocationBody => ({
  kind: 'revocation', v: 1, issuer: alice.did, subject: bob.did, issued_at: T0, scope: 'attestations', ...over,
}) as RevocationBody
const someId = statementId(encodeStatementBody(attestation()))

/** The error a call or promise ends with (undefined when it succeeds). */
async function errorOf(f: () => unknown): Promise<unknown> {
  try {
    await f()
    return undefined
  } catch (err) {
    return err
  }
}
async function expectError(f: () => unknown, name: string): Promise<KosMeshError> {
  const err = await errorOf(f)
  expect(err, `expected ${name}`).toBeInstanceOf(KosMeshError)
  expect((err as Error).name).toBe(name)
  return err as KosMeshError
}

/** Writes a COSE_Sign1 from raw parts (a test-side assembler, independent of the module's writers). */
function cbor(major: number, n: number): number[] {
  if (n < 24) return [(major << 5) | n]
  if (n < 256) return [(major << 5) | 24, n]
  return [(major << 5) | 25, n >> 8, n & 0xff]
}
const bstr = (b: Uint8Array): Uint8Array => Uint8Array.from([...cbor(2, b.length), ...b])
const cat = (...parts: Array<Uint8Array | number[]>): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]))
const protectedMap = (kid: string): Uint8Array => cat([0xa2, 0x01, 0x27, 0x04], bstr(utf8(kid)))
function assemble(p: { prot?: Uint8Array; unprot?: number[]; payload: Uint8Array; sig?: Uint8Array; lead?: number[] }): Uint8Array {
  return cat(p.lead ?? [0xd2, 0x84], bstr(p.prot ?? protectedMap(alice.keyId)), p.unprot ?? [0xa0], bstr(p.payload), bstr(p.sig ?? new Uint8Array(64)))
}
/** The statement Sig_structure, written by hand: ["Signature1", protected, h'kos-mesh/trust/v1', payload]. */
const sigStructure = (prot: Uint8Array, payload: Uint8Array): Uint8Array =>
  cat([0x84], cbor(3, 10), utf8('Signature1'), bstr(prot), bstr(utf8(STATEMENT_AAD)), bstr(payload))
/** A statement signed by `signer` over hand-assembled parts. */
const handSigned = (payload: Uint8Array, prot = protectedMap(alice.keyId), sign: (d: Uint8Array) => Uint8Array = (d) => alice.sign(d)): Uint8Array =>
  assemble({ prot, payload, sig: sign(sigStructure(prot, payload)) })

const bodies: Array<[string, StatementBody]> = [
  ['trust attestation', attestation()],
  ['endorsement', attestation({ claim: 'endorse', level: 0, context: 'compute' })],
  ['capability attestation', attestation({ claim: 'capability', level: undefined, value: 'agent_hosting' })],
  ['role attestation', attestation({ claim: 'role', level: undefined, value: 'ValidatorNode' })],
  ['key attestation', attestation({ claim: 'key', level: undefined })],
  ['delta', delta()],
  ['empty delta, 1-minute window', delta({ counts: {}, window_ms: MIN, window: T0 - (T0 % MIN) })],
  ['revocation of attestations', revocation({ reason: 'no longer operated by us' })],
  ['revocation of one statement', revocation({ scope: 'statement', statement: someId })],
  ['self revocation of a key', revocation({ scope: 'key', subject: alice.did, reason: 'compromised 🔑' })],
]

describe('sign / decode / verify round trip', () => {
  it.each(bodies)('%s: verifies with a real did:key identity and decodes to the same body, id and kid', async (_label, body) => {
    const s = await signStatement(body, alice.signer)
    expect(Object.isFrozen(s)).toBe(true)
    expect(Object.isFrozen(s.body)).toBe(true)
    const expected = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined))
    expect(s.body).toEqual(expected)
    expect(Object.keys(s.body).sort()).toEqual(Object.keys(expected).sort()) // optional fields absent, not undefined
    expect(s.id).toBe(statementId(encodeStatementBody(body)))
    expect(s.id).toMatch(/^bafyrei[a-z2-7]{52}$/)
    expect(hex(s.bytes.subarray(0, 2))).toBe('d284')
    expect(s.bytes.length).toBeLessThanOrEqual(MAX_STATEMENT_BYTES)

    const v = await verifyStatement(s.bytes, verifier, { now: T0 })
    expect(v.id).toBe(s.id)
    expect(v.body).toEqual(s.body)
    expect(hex(v.bytes)).toBe(hex(s.bytes))
    expect(v.bytes).not.toBe(s.bytes) // a copy: the caller's buffer may be reused

    const d = decodeStatement(s.bytes)
    expect(d.kid).toBe(alice.keyId)
    expect(d.id).toBe(s.id)
    expect(d.signature.length).toBe(64)
    expect(await verifier.verifySignature(alice.keyId, d.signingInput, d.signature)).toBe(true)
  })

  it('verifies statements of freshly generated identities, with the default clock', async () => {
    for (let i = 0; i < 3; i++) {
      const a = generateIdentity()
      const b = generateIdentity()
      const now = Date.now()
      const s = await signStatement(attestation({ issuer: a.did, subject: b.did, issued_at: now, expires_at: now + DAY }), a.signer)
      expect((await verifyStatement(s.bytes, verifier)).body.issuer).toBe(a.did)
      expect(await errorOf(() => signStatement(attestation({ issuer: a.did, subject: b.did }), b.signer))).toBeInstanceOf(KosMeshError)
    }
  })

  it('accepts the bare DID as kid (the did:key document has one key)', async () => {
    const bare: Signer = { ...alice.signer, keyId: alice.did }
    const s = await signStatement(attestation(), bare)
    expect(decodeStatement(s.bytes).kid).toBe(alice.did)
    await verifyStatement(s.bytes, verifier, { now: T0 })
  })

  it('signs the same body to the same bytes and id (deterministic Ed25519); the id ignores the signature', async () => {
    const a = await signStatement(attestation(), alice.signer)
    const b = await signStatement(attestation(), alice.signer)
    expect(hex(a.bytes)).toBe(hex(b.bytes))
    const bare = await signStatement(attestation(), { ...alice.signer, keyId: alice.did })
    expect(hex(bare.bytes)).not.toBe(hex(a.bytes))
    expect(bare.id).toBe(a.id)
  })

  it('drops fields set to undefined (absent on the wire), keeps a body with them equal to one without', () => {
    const withUndefined = validateStatementBody({ ...attestation(), value: undefined })
    expect('value' in withUndefined).toBe(false)
    expect(hex(encodeStatementBody(attestation({ value: undefined })))).toBe(hex(encodeStatementBody(attestation())))
    expect(hex(encodeStatementBody(attestation()))).toBe(hex(dagCbor.encode(attestation())))
  })
})

describe('body rules: every bad field is an InvalidStatementError ("expected X, got Y")', () => {
  const long = (n: number): string => 'a'.repeat(n)
  const withOwnProto = (): unknown => { const o: Record<string, unknown> = { ...attestation() }; Object.defineProperty(o, '__proto__', { value: 1, enumerable: true }); return o }
  class Body { kind = 'attestation' }
  const cases: Array<[string, unknown]> = [
    ['null', null], ['an array', [attestation()]], ['a string', 'attestation'], ['bytes', new Uint8Array(4)],
    ['a Map', new Map(Object.entries(attestation()))], ['a class instance', Object.assign(new Body(), attestation())],
    ['no kind', { ...attestation(), kind: undefined }], ['unknown kind', attestation({ kind: 'endorsement' })],
    ['v 0', attestation({ v: 0 })], ['v 2', attestation({ v: 2 })], ['v "1"', attestation({ v: '1' })], ['no v', attestation({ v: undefined })],
    ['issuer not a DID', attestation({ issuer: 'alice' })], ['issuer with an upper-case method', attestation({ issuer: 'did:KEY:z6Mk' })],
    ['issuer without an id', attestation({ issuer: 'did:key:' })], ['issuer as a DID URL', attestation({ issuer: `${alice.did}#x` })],
    ['issuer of 257 chars', attestation({ issuer: `did:web:${long(249)}` })], ['issuer a number', attestation({ issuer: 7 })], ['no issuer', attestation({ issuer: undefined })],
    ['subject not a DID', attestation({ subject: 'did:key z6Mk' })], ['subject null', attestation({ subject: null })],
    ['issued_at negative', attestation({ issued_at: -1 })], ['issued_at fractional', attestation({ issued_at: T0 + 0.5 })],
    ['issued_at unsafe', attestation({ issued_at: 2 ** 53 })], ['issued_at a string', attestation({ issued_at: String(T0) })],
    ['issued_at a bigint', attestation({ issued_at: BigInt(T0) })], ['issued_at -0', attestation({ issued_at: -0 })], ['issued_at NaN', attestation({ issued_at: Number.NaN })],
    ['an unknown field', attestation({ note: 'hi' })], ['an own __proto__ field', withOwnProto()],
    // attestations
    ['self attestation', attestation({ subject: alice.did })], ['unknown claim', attestation({ claim: 'friend' })],
    ['trust without level', attestation({ level: undefined })], ['level 11', attestation({ level: 11 })], ['level -1', attestation({ level: -1 })],
    ['level 2.5', attestation({ level: 2.5 })], ['level null', attestation({ level: null })],
    ['level on a capability', attestation({ claim: 'capability', value: 'x', level: 3 })], ['level on a key claim', attestation({ claim: 'key', level: 3 })],
    ['capability without value', attestation({ claim: 'capability', level: undefined })], ['value on a trust claim', attestation({ value: 'x' })],
    ['empty value', attestation({ claim: 'role', level: undefined, value: '' })], ['value of 65 chars', attestation({ claim: 'role', level: undefined, value: long(65) })],
    ['value with a leading space', attestation({ claim: 'role', level: undefined, value: ' x' })], ['value with a tab', attestation({ claim: 'role', level: undefined, value: 'a\tb' })],
    ['value not ASCII', attestation({ claim: 'role', level: undefined, value: 'rôle' })], ['value null', attestation({ claim: 'role', level: undefined, value: null })],
    ['no context', attestation({ context: undefined })], ['empty context', attestation({ context: '' })], ['context of 65 chars', attestation({ context: long(65) })],
    ['context with a newline', attestation({ context: 'a\nb' })],
    ['no expires_at', attestation({ expires_at: undefined })], ['expires_at === issued_at', attestation({ expires_at: T0 })],
    ['expires_at before issued_at', attestation({ expires_at: T0 - 1 })], ['lifetime of 365 days + 1 ms', attestation({ expires_at: T0 + DEFAULT_MAX_LIFETIME_MS + 1 })],
    // deltas
    ['self delta', delta({ subject: alice.did })], ['window_ms 1 s', delta({ window_ms: 1000, window: 0 })], ['window_ms 2 h', delta({ window_ms: 7_200_000, window: 0 })],
    ['no window_ms', delta({ window_ms: undefined })], ['window not a multiple', delta({ window: T0 })], ['window not begun at issued_at', delta({ window: T0 - (T0 % 3_600_000) + 3_600_000 })], ['window negative', delta({ window: -3_600_000 })],
    ['counts with an unknown observation', delta({ counts: { task_ok: 1, liked: 1 } })], ['count 65536', delta({ counts: { task_ok: 65_536 } })],
    ['count -1', delta({ counts: { timeout: -1 } })], ['count 1.5', delta({ counts: { timeout: 1.5 } })], ['count a string', delta({ counts: { timeout: '1' } })],
    ['counts an array', delta({ counts: [1, 2] })], ['counts null', delta({ counts: null })], ['no counts', delta({ counts: undefined })],
    ['a claim in a delta', delta({ claim: 'trust' })], ['delta lifetime too long', delta({ expires_at: T0 + DEFAULT_MAX_LIFETIME_MS + 1 })],
    ['delta expires_at === issued_at', delta({ expires_at: T0 })],
    // revocations
    ['unknown scope', revocation({ scope: 'all' })], ['scope statement without statement', revocation({ scope: 'statement' })],
    ['statement with scope attestations', revocation({ statement: someId })], ['statement not a CID', revocation({ scope: 'statement', statement: 'bafynotacid' })],
    ['statement a CIDv0', revocation({ scope: 'statement', statement: 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG' })],
    ['statement a raw-codec CID', revocation({ scope: 'statement', statement: 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy' })],
    ['statement in base58btc', revocation({ scope: 'statement', statement: `z${'1'.repeat(40)}` })],
    ['statement in upper-case base32', revocation({ scope: 'statement', statement: someId.toUpperCase() })],
    ['reason of 257 chars', revocation({ reason: long(257) })], ['reason with a newline', revocation({ reason: 'a\nb' })],
    ['reason with a lone surrogate', revocation({ reason: 'a\ud800b' })], ['reason a number', revocation({ reason: 5 })], ['reason null', revocation({ reason: null })],
    ['self revocation of attestations', revocation({ subject: alice.did })], ['self revocation of a statement', revocation({ subject: alice.did, scope: 'statement', statement: someId })],
    ['expires_at in a revocation', revocation({ expires_at: T0 + DAY })],
  ]

  it.each(cases)('%s', async (_label, body) => {
    const err = await expectError(() => validateStatementBody(body), 'InvalidStatementError')
    expect(err.code).toBe('ERR_INVALID_STATEMENT')
    expect(err.message).toMatch(/^expected .+, got /s)
    await expectError(() => encodeStatementBody(body as StatementBody), 'InvalidStatementError')
    await expectError(() => signStatement(body as StatementBody, alice.signer), 'InvalidStatementError')
  })

  it('the same bodies, signed by hand and sent, are InvalidStatementError on decode', async () => {
    // in-memory forms whose DAG-CBOR is a valid body (a Map or class instance is written as a map, -0 as 0, a small bigint as an integer, a lone surrogate as U+FFFD)
    const validOnTheWire = new Set(['a Map', 'a class instance', 'issued_at -0', 'issued_at a bigint', 'reason with a lone surrogate'])
    for (const [label, body] of cases) {
      if (validOnTheWire.has(label)) continue
      let payload: Uint8Array
      try {
        payload = dagCbor.encode(body)
      } catch {
        continue // outside the data model (undefined, NaN, class instances...): cannot be sent
      }
      const err = await errorOf(() => verifyStatement(handSigned(payload), verifier, { now: T0 }))
      expect((err as Error | undefined)?.name, label).toBe('InvalidStatementError')
    }
  })

  it('accepts the edges of every range', () => {
    const ok: unknown[] = [
      attestation({ level: 0 }), attestation({ level: 10 }), attestation({ expires_at: T0 + DEFAULT_MAX_LIFETIME_MS }), attestation({ expires_at: T0 + 1 }),
      attestation({ claim: 'role', level: undefined, value: long(64) }), attestation({ claim: 'capability', level: undefined, value: 'a b~!' }),
      attestation({ context: long(64) }), attestation({ issuer: `did:web:${long(248)}` }), attestation({ issued_at: 0, expires_at: 1 }),
      delta({ counts: { task_ok: 65_535, task_failed: 0, invalid_message: 1, forged_message: 2, timeout: 3 } }), delta({ window: 0, window_ms: DAY }),
      revocation({ reason: '🔑'.repeat(256) }), revocation({ reason: '' }), revocation({ scope: 'key' }), revocation({ scope: 'key', subject: alice.did }),
      { ...attestation(), __proto__: null },
    ]
    for (const b of ok) expect(() => validateStatementBody(b)).not.toThrow()
  })

  it('applies custom limits, and refuses bad ones with InvalidParametersError', async () => {
    await expectError(() => validateStatementBody(attestation({ expires_at: T0 + DAY + 1 }), { maxLifetimeMs: DAY }), 'InvalidStatementError')
    expect(validateStatementBody(attestation({ expires_at: T0 + DAY }), { maxLifetimeMs: DAY }).kind).toBe('attestation')
    for (const limits of [{ maxLifetimeMs: 0 }, { maxStatementBytes: 1.5 }, { maxFutureSkewMs: -1 }, { maxStatementBytes: '1024' }]) {
      await expectError(() => validateStatementBody(attestation(), limits as never), 'InvalidParametersError')
    }
  })
})

describe('signStatement', () => {
  it('requires the signer to be a key of the issuer', async () => {
    await expectError(() => signStatement(attestation(), bob.signer), 'InvalidStatementError')
    await expectError(() => signStatement(attestation(), { ...alice.signer, keyId: `${alice.did}#other` }), 'InvalidStatementError') // not the did:key's key
    await expectError(() => signStatement(attestation(), { ...alice.signer, keyId: `${alice.did}#` }), 'InvalidStatementError')
    await expectError(() => signStatement(attestation(), { ...alice.signer, keyId: `${bob.did}#${alice.did.slice(8)}` }), 'InvalidStatementError')
  })

  it('refuses what is not a signer, a signer that returns no 64-byte signature, and an aborted signal', async () => {
    await expectError(() => signStatement(attestation(), null as never), 'InvalidParametersError')
    await expectError(() => signStatement(attestation(), { ...alice.signer, sign: () => new Uint8Array(63) }), 'InvalidStatementSignatureError')
    await expectError(() => signStatement(attestation(), alice.signer, { signal: AbortSignal.abort() }), 'AbortError')
  })

  it('refuses to sign a statement larger than the bound, before signing', async () => {
    let signed = 0
    const counting: Signer = { ...alice.signer, sign: (d) => { signed++; return alice.sign(d) } }
    const big = revocation({ reason: '😀'.repeat(256) }) // 1,024 bytes of reason alone
    await expectError(() => signStatement(big, counting), 'StatementTooLargeError')
    expect(signed).toBe(0)
    const s = await signStatement(big, counting, { limits: { maxStatementBytes: 2048 } })
    expect(s.bytes.length).toBeGreaterThan(MAX_STATEMENT_BYTES)
    await expectError(() => verifyStatement(s.bytes, verifier, { now: T0 }), 'StatementTooLargeError')
    expect((await verifyStatement(s.bytes, verifier, { now: T0, limits: { maxStatementBytes: 2048 } })).id).toBe(s.id)
  })
})

describe('strict decoding: every structural problem is an InvalidStatementError', () => {
  const payload = dagCbor.encode(attestation())
  const sig = new Uint8Array(64).fill(7)
  const good = handSigned(payload)
  const replace = (b: Uint8Array, from: number[], to: number[]): Uint8Array => {
    const h = hex(b)
    const i = h.indexOf(Buffer.from(from).toString('hex'))
    expect(i % 2).toBe(0)
    return new Uint8Array(Buffer.from(h.slice(0, i) + Buffer.from(to).toString('hex') + h.slice(i + from.length * 2), 'hex'))
  }
  const cases: Array<[string, unknown]> = [
    ['no bytes', new Uint8Array(0)], ['not bytes', 'd284'], ['an ArrayBuffer', good.buffer],
    ['untagged COSE_Sign1', good.subarray(1)], ['tag 17', cat([0xd1], good.subarray(1))], ['tag 18 in a 2-byte head', cat([0xd8, 0x12], good.subarray(1))],
    ['a COSE_Sign (tag 98)', cat([0xd8, 0x62], good.subarray(1))], ['an array of 3', cat([0xd2, 0x83], good.subarray(2))],
    ['an indefinite array', cat([0xd2, 0x9f], good.subarray(2), [0xff])],
    ['alg ES256 (-7)', assemble({ prot: cat([0xa2, 0x01, 0x26, 0x04], bstr(utf8(alice.keyId))), payload, sig })],
    ['labels out of order', assemble({ prot: cat([0xa2, 0x04], bstr(utf8(alice.keyId)), [0x01, 0x27]), payload, sig })],
    ['an extra header (content type)', assemble({ prot: cat([0xa3, 0x01, 0x27, 0x03, 0x00, 0x04], bstr(utf8(alice.keyId))), payload, sig })],
    ['kid in the unprotected header', assemble({ prot: Uint8Array.from([0xa1, 0x01, 0x27]), unprot: [...cat([0xa1, 0x04], bstr(utf8(alice.keyId)))], payload, sig })],
    ['kid as a text string', assemble({ prot: cat([0xa2, 0x01, 0x27, 0x04], cbor(3, utf8(alice.keyId).length), utf8(alice.keyId)), payload, sig })],
    ['kid of another DID than the issuer', assemble({ prot: protectedMap(bob.keyId), payload, sig })],
    ['kid of a key the did:key does not have', assemble({ prot: protectedMap(`${alice.did}#key-1`), payload, sig })],
    ['kid not UTF-8', assemble({ prot: cat([0xa2, 0x01, 0x27, 0x04], bstr(cat(utf8(alice.did), [0x23, 0xff]))), payload, sig })],
    ['kid with a trailing byte in the header', assemble({ prot: cat(protectedMap(alice.keyId), [0x00]), payload, sig })],
    ['an empty protected header', assemble({ prot: new Uint8Array(0), payload, sig })],
    ['a non-empty unprotected header', assemble({ unprot: [0xa1, 0x03, 0x00], payload, sig })],
    ['unprotected header not a map', assemble({ unprot: [0x80], payload, sig })],
    ['payload not a byte string', cat([0xd2, 0x84], bstr(protectedMap(alice.keyId)), [0xa0], payload, bstr(sig))],
    ['payload length in a long head', replace(good, [0x58, payload.length], [0x59, 0x00, payload.length])],
    ['payload with a trailing byte', assemble({ payload: cat(payload, [0x00]), sig })],
    ['payload with v as a float16', assemble({ payload: replace(payload, [0x61, 0x76, 0x01], [0x61, 0x76, 0xf9, 0x3c, 0x00]), sig })],
    ['payload an indefinite map', assemble({ payload: cat([0xbf], payload.subarray(1), [0xff]), sig })],
    ['payload with a tag', assemble({ payload: cat([0xd8, 0x2a], payload), sig })],
    ['payload not a map', assemble({ payload: dagCbor.encode([attestation()]), sig })],
    ['payload empty', assemble({ payload: new Uint8Array(0), sig })],
    ['signature of 63 bytes', assemble({ payload, sig: new Uint8Array(63) })],
    ['signature of 65 bytes', assemble({ payload, sig: new Uint8Array(65) })],
    ['signature as text', cat(good.subarray(0, good.length - 66), [0x78, 0x40], sig)],
    ['a trailing byte', cat(good, [0x00])], ['truncated by one byte', good.subarray(0, good.length - 1)], ['only the head', good.subarray(0, 2)],
  ]

  it('accepts the hand-assembled original', async () => {
    expect((await verifyStatement(good, verifier, { now: T0 })).body).toEqual(attestation())
  })

  it.each(cases)('%s', async (_label, bytes) => {
    await expectError(() => decodeStatement(bytes as Uint8Array), 'InvalidStatementError')
    await expectError(() => verifyStatement(bytes as Uint8Array, verifier, { now: T0 }), 'InvalidStatementError')
  })
})

describe('time', () => {
  it('an attestation or delta is valid from issued_at - skew until expires_at (excluded)', async () => {
    for (const body of [attestation(), delta()]) {
      const s = await signStatement(body, alice.signer)
      const exp = (body as AttestationBody).expires_at
      for (const now of [T0, T0 - 5 * MIN, exp - 1]) expect((await verifyStatement(s.bytes, verifier, { now })).id).toBe(s.id)
      for (const now of [exp, exp + 1, T0 + 10 * 365 * DAY]) await expectError(() => verifyStatement(s.bytes, verifier, { now }), 'StatementExpiredError')
      await expectError(() => verifyStatement(s.bytes, verifier, { now: T0 - 5 * MIN - 1 }), 'StatementExpiredError')
      await expectError(() => verifyStatement(s.bytes, verifier, { now: T0 - MIN - 1, limits: { maxFutureSkewMs: MIN } }), 'StatementExpiredError')
      expect((await verifyStatement(s.bytes, verifier, { now: T0 - MIN, limits: { maxFutureSkewMs: MIN } })).id).toBe(s.id)
    }
  })

  it('a revocation never expires, but cannot come from the future either', async () => {
    const s = await signStatement(revocation(), alice.signer)
    expect((await verifyStatement(s.bytes, verifier, { now: T0 + 100 * 365 * DAY })).id).toBe(s.id)
    await expectError(() => verifyStatement(s.bytes, verifier, { now: T0 - 5 * MIN - 1 }), 'StatementExpiredError')
  })

  it('checkStatementTime refuses a clock that is not a finite number', async () => {
    await expectError(() => checkStatementTime(attestation(), Number.NaN), 'InvalidParametersError')
    await expectError(() => verifyStatement(new Uint8Array(1), verifier, { now: Number.POSITIVE_INFINITY }), 'InvalidStatementError') // bytes first
  })
})

describe('size bound', () => {
  it('refuses input above maxStatementBytes before parsing it', async () => {
    for (const bytes of [new Uint8Array(MAX_STATEMENT_BYTES + 1), new Uint8Array(1 << 20).fill(0xff), cat((await signStatement(attestation(), alice.signer)).bytes, new Uint8Array(1024))]) {
      const err = await expectError(() => decodeStatement(bytes), 'StatementTooLargeError')
      expect(err.code).toBe('ERR_STATEMENT_TOO_LARGE')
      await expectError(() => verifyStatement(bytes, verifier, { now: T0 }), 'StatementTooLargeError')
    }
    // just at the bound: parsed (and found malformed)
    await expectError(() => decodeStatement(new Uint8Array(MAX_STATEMENT_BYTES)), 'InvalidStatementError')
  })

  it('applies a custom bound to a valid statement', async () => {
    const s = await signStatement(attestation(), alice.signer)
    await expectError(() => decodeStatement(s.bytes, { maxStatementBytes: s.bytes.length - 1 }), 'StatementTooLargeError')
    expect(decodeStatement(s.bytes, { maxStatementBytes: s.bytes.length }).id).toBe(s.id)
  })
})

describe('signatures', () => {
  it('refuses a signature by another key, a zero signature and a signature over another statement', async () => {
    const s = await signStatement(attestation(), alice.signer)
    const d = decodeStatement(s.bytes)
    const splice = (sig: Uint8Array): Uint8Array => cat(s.bytes.subarray(0, s.bytes.length - 64), sig)
    await expectError(() => verifyStatement(splice(bob.sign(d.signingInput)), verifier, { now: T0 }), 'InvalidStatementSignatureError')
    await expectError(() => verifyStatement(splice(new Uint8Array(64)), verifier, { now: T0 }), 'InvalidStatementSignatureError')
    const other = await signStatement(attestation({ level: 8 }), alice.signer)
    await expectError(() => verifyStatement(splice(other.bytes.subarray(other.bytes.length - 64)), verifier, { now: T0 }), 'InvalidStatementSignatureError')
  })

  it('refuses a statement whose signature was made for a KLP message (same key, same payload, message AAD), and the other way round', async () => {
    const s = await signStatement(delta(), alice.signer)
    const d = decodeStatement(s.bytes)
    const payload = dagCbor.encode(delta())
    // the message signing input differs from the statement's only in the external_aad item
    const messageInput = messageSigningInput(alice.keyId, payload)
    const aadItem = cat([0x51], utf8(STATEMENT_AAD))
    const at = 1 + 11 + bstr(protectedMap(alice.keyId)).length // 84, "Signature1", protected
    expect(messageInput[at]).toBe(0x40) // h''
    expect(hex(d.signingInput)).toBe(hex(cat(messageInput.subarray(0, at), aadItem, messageInput.subarray(at + 1))))
    const messageSig = alice.sign(messageInput)
    expect(await verifier.verifySignature(alice.keyId, messageInput, messageSig)).toBe(true) // a good message signature...
    const spliced = cat(s.bytes.subarray(0, s.bytes.length - 64), messageSig)
    await expectError(() => verifyStatement(spliced, verifier, { now: T0 }), 'InvalidStatementSignatureError') // ...is no statement signature
    expect(await verifier.verifySignature(alice.keyId, messageInput, d.signature)).toBe(false) // and a statement signature is no message signature
  })

  it('passes the verifier\'s own errors through (an unresolvable kid), and honours an aborted signal', async () => {
    const webSigner: Signer = { ...alice.signer, keyId: 'did:web:example.com#key-1' }
    const s = await signStatement(attestation({ issuer: 'did:web:example.com' }), webSigner)
    expect(decodeStatement(s.bytes).kid).toBe('did:web:example.com#key-1')
    const err = await errorOf(() => verifyStatement(s.bytes, verifier, { now: T0 }))
    expect(err).toBeInstanceOf(UnknownKeyError)
    const good = await signStatement(attestation(), alice.signer)
    await expectError(() => verifyStatement(good.bytes, verifier, { now: T0, signal: AbortSignal.abort() }), 'AbortError')
    await expectError(() => verifyStatement(good.bytes, {} as never, { now: T0 }), 'InvalidParametersError')
  })
})
