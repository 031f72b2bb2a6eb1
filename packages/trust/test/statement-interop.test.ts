/**
 * Interop: statements are standard COSE_Sign1 objects that an independent COSE library
 * (@auth0/cose) verifies with the issuer's Ed25519 key and the statement AAD; their payload is
 * exactly what @ipld/dag-cbor writes for the body; their id is the CID multiformats computes; and a
 * statement built with those libraries alone is byte for byte the one signStatement writes.
 */
import { createPublicKey } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { Algorithms, Headers, ProtectedHeaders, Sign1 } from '@auth0/cose'
import * as dagCbor from '@ipld/dag-cbor'
import { createSignatureVerifier, identityFromSeed } from '@kos-mesh/did-security'
import type { Identity } from '@kos-mesh/did-security'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { describe, expect, it } from 'vitest'
import { STATEMENT_AAD, decodeStatement, signStatement, verifyStatement } from '../src/index.js'
import type { StatementBody } from '../src/index.js'

const T0 = 1_732_460_000_000
const DAY = 86_400_000
const alice = identityFromSeed(new Uint8Array(32).fill(11))
const bob = identityFromSeed(new Uint8Array(32).fill(12))
const verifier = createSignatureVerifier()
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
const aad = utf8(STATEMENT_AAD)
const keyObject = (id: Identity): KeyObject =>
  createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(id.publicKey).toString('base64url') }, format: 'jwk' })

async function libraryVerifies(bytes: Uint8Array, key: KeyObject, externalAAD?: Uint8Array): Promise<boolean> {
  try {
    await Sign1.decode(bytes).verify(key, externalAAD === undefined ? { algorithms: [Algorithms.EdDSA] } : { algorithms: [Algorithms.EdDSA], externalAAD })
    return true
  } catch {
    return false
  }
}

const bodies: StatementBody[] = [
  { kind: 'attestation', v: 1, issuer: alice.did, subject: bob.did, issued_at: T0, claim: 'trust', level: 9, context: '*', expires_at: T0 + 30 * DAY },
  { kind: 'attestation', v: 1, issuer: alice.did, subject: bob.did, issued_at: T0, claim: 'capability', value: 'vector_search', context: 'lab', expires_at: T0 + DAY },
  { kind: 'delta', v: 1, issuer: alice.did, subject: bob.did, issued_at: T0, window: T0 - (T0 % 600_000), window_ms: 600_000, counts: { task_ok: 300, forged_message: 1 }, expires_at: T0 + DAY },
  { kind: 'revocation', v: 1, issuer: alice.did, subject: alice.did, issued_at: T0, scope: 'key', reason: 'key leaked' },
]

describe('statements read by @auth0/cose, @ipld/dag-cbor and multiformats', () => {
  it.each(bodies.map((b) => [`${b.kind}${b.kind === 'attestation' ? ` ${b.claim}` : ''}`, b] as const))('%s', async (_label, body) => {
    const s = await signStatement(body, alice.signer)
    const cose = Sign1.decode(s.bytes)
    // a standard COSE_Sign1: EdDSA, the issuer's key id, nothing unprotected, verified with the statement AAD
    expect(cose.alg).toBe(Algorithms.EdDSA)
    expect(Buffer.from(cose.kid as Uint8Array).toString('utf8')).toBe(alice.keyId)
    expect(cose.unprotectedHeaders.size).toBe(0)
    expect(cose.signature.length).toBe(64)
    expect(await libraryVerifies(s.bytes, keyObject(alice), aad)).toBe(true)
    // domain separation, as a COSE library sees it: without the AAD (a KLP message's h'') or with another key it fails
    expect(await libraryVerifies(s.bytes, keyObject(alice))).toBe(false)
    expect(await libraryVerifies(s.bytes, keyObject(alice), utf8('kos-mesh/trust/v2'))).toBe(false)
    expect(await libraryVerifies(s.bytes, keyObject(bob), aad)).toBe(false)
    // the payload is @ipld/dag-cbor's encoding of the body, byte for byte, and decodes back to it
    expect(Buffer.compare(cose.payload, dagCbor.encode(body))).toBe(0)
    expect(dagCbor.decode(cose.payload)).toEqual(body)
    // the id is the CIDv1 (dag-cbor, sha2-256) of the payload, computed independently
    const cid = CID.create(1, dagCbor.code, await sha256.digest(dagCbor.encode(body)))
    expect(s.id).toBe(cid.toString())
    expect(dagCbor.code).toBe(0x71)
    expect(CID.parse(s.id).multihash.size).toBe(32)
  })

  it('a statement built only with @auth0/cose, @ipld/dag-cbor and an Ed25519 signature is the one signStatement writes', async () => {
    for (const body of bodies) {
      const payload = dagCbor.encode(body)
      const unsigned = new Sign1(new Map<number, unknown>([[Headers.Algorithm, Algorithms.EdDSA], [Headers.KeyID, utf8(alice.keyId)]]), new Map(), payload, new Uint8Array(64))
      // the library's encoding of the protected header map (a getter TypeScript marks protected)
      const prot = (unsigned as unknown as { encodedProtectedHeaders: Uint8Array }).encodedProtectedHeaders
      // RFC 9052 §4.4 Sig_structure, written by @ipld/dag-cbor (canonical CBOR for text and bytes)
      const toBeSigned = dagCbor.encode(['Signature1', prot, aad, payload])
      const signed = new Sign1(prot, new Map(), payload, alice.sign(toBeSigned))
      const theirs = new Uint8Array(signed.encode())
      const ours = await signStatement(body, alice.signer)
      expect(Buffer.compare(theirs, ours.bytes)).toBe(0)
      expect(Buffer.compare(decodeStatement(theirs).signingInput, toBeSigned)).toBe(0)
      expect((await verifyStatement(theirs, verifier, { now: T0 })).id).toBe(ours.id)
    }
  })

  it('a COSE_Sign1 the library signs without the statement AAD (a message-style signature) is refused as forged', async () => {
    const payload = dagCbor.encode(bodies[0])
    const prot = new ProtectedHeaders([[Headers.Algorithm, Algorithms.EdDSA], [Headers.KeyID, utf8(alice.keyId)]])
    const priv = (await import('node:crypto')).createPrivateKey({
      key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(alice.exportSeed())]), format: 'der', type: 'pkcs8',
    })
    const bytes = new Uint8Array((await Sign1.sign(prot, new Map(), payload, priv)).encode())
    expect(await libraryVerifies(bytes, keyObject(alice))).toBe(true)
    const err = await verifyStatement(bytes, verifier, { now: T0 }).then(() => undefined, (e: unknown) => e)
    expect((err as Error).name).toBe('InvalidStatementSignatureError')
  })

  it('arbitrary valid bodies verify with the library and match @ipld/dag-cbor (property)', async () => {
    const did = fc.constantFrom(bob.did, 'did:web:example.com', 'did:example:123456789abcdefghi', 'did:web:node.kos:users:a%20b')
    const name = fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,62}[\x21-\x7e])?$/)
    const times = fc.tuple(fc.nat({ max: 2 ** 45 }), fc.integer({ min: 1, max: 365 * DAY })).map(([t, life]) => ({ issued_at: t, expires_at: t + life }))
    const attestation = fc.record({ subject: did, claim: fc.constantFrom('trust', 'endorse', 'capability', 'role', 'key'), level: fc.integer({ min: 0, max: 10 }), value: name, context: fc.oneof(fc.constant('*'), name), t: times })
      .map(({ subject, claim, level, value, context, t }) => ({
        kind: 'attestation', v: 1, issuer: alice.did, subject, ...t, claim, context,
        ...(claim === 'trust' || claim === 'endorse' ? { level } : {}), ...(claim === 'capability' || claim === 'role' ? { value } : {}),
      }) as StatementBody)
    const delta = fc.record({
      subject: did, w: fc.constantFrom(60_000, 600_000, 3_600_000, 86_400_000), t: times,
      counts: fc.dictionary(fc.constantFrom('task_ok', 'task_failed', 'invalid_message', 'forged_message', 'timeout'), fc.integer({ min: 0, max: 65_535 })),
    }).map(({ subject, w, t, counts }) => ({ kind: 'delta', v: 1, issuer: alice.did, subject, ...t, window: t.issued_at - (t.issued_at % w), window_ms: w, counts }) as StatementBody)
    const revocation = fc.record({ subject: did, t: fc.nat({ max: 2 ** 45 }), reason: fc.option(fc.string({ maxLength: 40, unit: 'grapheme' }).filter((r) => !/[\p{Cc}\p{Cs}]/u.test(r)), { nil: undefined }) })
      .map(({ subject, t, reason }) => ({ kind: 'revocation', v: 1, issuer: alice.did, subject, issued_at: t, scope: 'attestations', ...(reason === undefined ? {} : { reason }) }) as StatementBody)
    await fc.assert(fc.asyncProperty(fc.oneof(attestation, delta, revocation), async (body) => {
      const s = await signStatement(body, alice.signer)
      expect(await libraryVerifies(s.bytes, keyObject(alice), aad)).toBe(true)
      expect(Buffer.compare(Sign1.decode(s.bytes).payload, dagCbor.encode(body))).toBe(0)
      expect(s.id).toBe(CID.create(1, 0x71, await sha256.digest(dagCbor.encode(body))).toString())
      expect((await verifyStatement(s.bytes, verifier, { now: body.issued_at })).body).toEqual(body)
    }), { numRuns: 150 })
  })
})
