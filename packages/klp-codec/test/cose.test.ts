/**
 * Interop with an independent COSE implementation (@auth0/cose, RFC 9052): project-signed messages
 * are COSE_Sign1 objects it decodes and verifies, and COSE_Sign1 objects it makes (over a body
 * encoded by @ipld/dag-cbor) are messages the project decodes and verifies.
 */
import { readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { Algorithms, Headers, ProtectedHeaders, Sign1 } from '@auth0/cose'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { InvalidSignatureError, KosMeshError } from '@kos-mesh/interface'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { COSE_ALG_EDDSA, createMessage, decodeMessage, encodeBody, encodeMessage, signMessage, verifyMessage } from '../src/index.js'
import { messageInitArb } from './helpers/arbitraries.js'
import { ed25519Signer, ed25519Verifier } from './helpers/ed25519.js'

const vectors = JSON.parse(readFileSync(new URL('./vectors/klp-vectors.json', import.meta.url), 'utf8'))
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)

const signer = ed25519Signer('did:key:z6MkCose#z6MkCose', new Uint8Array(32).fill(5))
const other = ed25519Signer('did:key:z6MkOther#z6MkOther', new Uint8Array(32).fill(6))
const verifier = ed25519Verifier({ [signer.keyId]: signer.publicKey })

async function libraryRejects(bytes: Uint8Array, key = signer.publicKeyObject): Promise<boolean> {
  try {
    await Sign1.decode(bytes).verify(key, { algorithms: [Algorithms.EdDSA] })
    return false
  } catch {
    return true
  }
}

/** A message body built as a plain value, independently of the codec's writers. */
function plainBody(data: unknown): Record<string, unknown> {
  return {
    type: 'TASK_REQUEST',
    source: 'klp://cose.kai/agents/a',
    target: 'klp://node.kai/agents/b?x=1',
    payload: { data, encryption: { enabled: false }, compression: { enabled: false }, content_type: 'application/cbor' },
    version: '1.0',
    metadata: {
      ttl: 60, priority: 5, routing_hints: [{ kind: 'via', value: 'n2' }], correlation_id: 'c-1',
      trust_requirements: { verification_level: 'basic', minimum_trust_score: 2.5, required_endorsements: 1 },
    },
    timestamp: 1_732_460_000_123,
  }
}

describe('project-signed messages, read by @auth0/cose', () => {
  it('verifies every committed vector message and finds alg EdDSA, the kid and the body', async () => {
    const pub = ed25519Signer(vectors.signer.keyId, unhex(vectors.signer.seed)).publicKeyObject
    expect(vectors.messages.length).toBe(3)
    for (const v of vectors.messages) {
      const s = Sign1.decode(unhex(v.message))
      await s.verify(pub, { algorithms: [Algorithms.EdDSA] })
      expect(s.alg).toBe(Algorithms.EdDSA)
      expect(s.alg).toBe(COSE_ALG_EDDSA)
      expect(Buffer.from(s.kid as Uint8Array).toString('utf8')).toBe(vectors.signer.keyId)
      expect(s.unprotectedHeaders.size).toBe(0)
      expect(Buffer.from(s.payload).toString('hex')).toBe(v.body)
      expect(await libraryRejects(unhex(v.message), other.publicKeyObject)).toBe(true)
    }
  })

  it('verifies arbitrary signed messages, as signed and after a decode / re-encode, and rejects tampered ones (property)', async () => {
    await fc.assert(fc.asyncProperty(messageInitArb, fc.nat(), async (init, at) => {
      const signed = await signMessage(createMessage(init), signer)
      const bytes = encodeMessage(signed)
      const s = Sign1.decode(bytes)
      await s.verify(signer.publicKeyObject, { algorithms: [Algorithms.EdDSA] })
      expect(Buffer.compare(s.payload, encodeBody(signed))).toBe(0)
      expect(Buffer.from(s.kid as Uint8Array).toString('utf8')).toBe(signer.keyId)
      const again = encodeMessage(decodeMessage(bytes))
      await Sign1.decode(again).verify(signer.publicKeyObject, { algorithms: [Algorithms.EdDSA] })
      // one flipped bit in the signed part (protected header or payload) breaks the library's verification
      const tampered = Uint8Array.from(bytes)
      const signedRegion = bytes.length - 66 - 3 // up to the end of the payload
      const i = 3 + (at % signedRegion)
      tampered[i] = (tampered[i] as number) ^ 0x01
      expect(await libraryRejects(tampered)).toBe(true)
    }), { numRuns: 60 })
  })
})

describe('COSE_Sign1 made by @auth0/cose, read by the project', () => {
  const sign1 = async (body: Uint8Array, key = signer.privateKey, kid = signer.keyId): Promise<Uint8Array> => {
    const prot = new ProtectedHeaders([[Headers.Algorithm, Algorithms.EdDSA], [Headers.KeyID, utf8(kid)]])
    return new Uint8Array((await Sign1.sign(prot, new Map(), body, key)).encode())
  }

  it('decodes and verifies a library-signed message over a body from @ipld/dag-cbor, byte for byte', async () => {
    for (const data of [{ task: 'summarize', n: 3, f: 0.25, big: 2n ** 60n, bytes: new Uint8Array([1, 2, 3]) }, 'text', null, [1, -1, 1.5, [true]]]) {
      const body = dagCbor.encode(plainBody(data))
      const bytes = await sign1(body)
      const msg = decodeMessage(bytes)
      await verifyMessage(msg, verifier)
      expect(msg.signer).toBe(signer.keyId)
      expect(msg.payload.data).toEqual((dagCbor.decode(body) as { payload: { data: unknown } }).payload.data)
      expect(msg.metadata.correlation_id).toBe('c-1')
      expect(msg.source).toEqual({ scheme: 'klp', authority: 'cose.kai', path: '/agents/a' })
      // the message id is the CID (dag-cbor, sha2-256 truncated to 128 bits) of the library's payload
      const digest = createHash('sha256').update(body).digest().subarray(0, 16)
      expect(msg.metadata.message_id).toBe(CID.createV1(0x71, createDigest(0x12, digest)).toString())
      // the project writes back exactly the library's bytes, and signs exactly what the library signs
      expect(Buffer.compare(encodeMessage(msg), bytes)).toBe(0)
      const ours = encodeMessage(await signMessage(createMessage({
        type: 'TASK_REQUEST', source: 'klp://cose.kai/agents/a', target: 'klp://node.kai/agents/b?x=1', data: data as never, ttl: 60, priority: 5,
        routing_hints: [{ kind: 'via', value: 'n2' }], correlation_id: 'c-1', timestamp: 1_732_460_000_123,
        trust_requirements: { verification_level: 'basic', minimum_trust_score: 2.5, required_endorsements: 1 },
      }), signer))
      expect(Buffer.compare(ours, bytes)).toBe(0) // Ed25519 is deterministic: same key, same Sig_structure, same bytes
    }
  })

  it('rejects a library-signed message whose signature is by another key than its kid names', async () => {
    const bytes = await sign1(dagCbor.encode(plainBody({ a: 1 })), other.privateKey, signer.keyId)
    const msg = decodeMessage(bytes)
    const err = await verifyMessage(msg, verifier).then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(InvalidSignatureError)
    expect((err as KosMeshError).code).toBe('ERR_INVALID_SIGNATURE')
  })

  it('rejects the library\'s other valid forms the wire does not use, with typed errors (one encoding per message)', async () => {
    const codeOf = (b: Uint8Array): string | undefined => {
      try { decodeMessage(b) } catch (e) { expect(e).toBeInstanceOf(KosMeshError); return (e as KosMeshError).name }
      return undefined
    }
    const body = dagCbor.encode(plainBody({ a: 1 }))
    // kid in the unprotected header: valid COSE, but the signer would not be covered by the signature
    const unprotectedKid = new Uint8Array((await Sign1.sign(new ProtectedHeaders([[Headers.Algorithm, Algorithms.EdDSA]]),
      new Map([[Headers.KeyID, utf8(signer.keyId)]]) as never, body, signer.privateKey)).encode())
    expect(await libraryRejects(unprotectedKid)).toBe(false)
    expect(codeOf(unprotectedKid)).toBe('MissingFieldError')
    // a body whose map keys are in insertion order (cbor-x), not DAG-CBOR order: refused although the signature is valid
    const { Encoder } = await import('cbor-x')
    const { version, ...rest } = plainBody({ a: 1 })
    const unsorted = new Encoder({ useRecords: false, mapsAsObjects: true, variableMapSize: true } as ConstructorParameters<typeof Encoder>[0]).encode({ version, ...rest })
    const signedUnsorted = await sign1(new Uint8Array(unsorted))
    expect(await libraryRejects(signedUnsorted)).toBe(false)
    expect(codeOf(signedUnsorted)).toBe('NonCanonicalCborError')
  })
})
