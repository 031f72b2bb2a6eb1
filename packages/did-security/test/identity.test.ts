import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import * as ed from '@noble/ed25519'
import { pointCheckCount } from '../src/did-key.js'
import { base58btc } from 'multiformats/bases/base58'
import {
  createDidResolver, createSignatureVerifier, createVerifier, didKeyDocument, didKeyFromPublicKey, ed25519Verify, generateIdentity, identityFromSeed,
  InvalidDidError, isValidEd25519PublicKey, publicKeyFromDidKey, SMALL_ORDER_ENCODINGS,
} from '../src/index.js'
import { ManualClock } from './helpers.js'

const id = generateIdentity()

describe('identity', () => {
  it('is a did:key z6Mk with a keyId whose fragment is the fingerprint', () => {
    expect(id.did).toMatch(/^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+$/)
    expect(id.keyId).toBe(`${id.did}#${id.did.slice(8)}`)
    expect(id.x25519KeyId).toMatch(/#z6LS/)
    expect(id.signer.keyId).toBe(id.keyId)
    expect(JSON.stringify(id)).not.toContain(Buffer.from(id.exportSeed()).toString('base64'))
  })
  it('signs identically on both backends (Ed25519 is deterministic)', () => {
    const seed = id.exportSeed()
    const a = identityFromSeed(seed, { backend: 'native' })
    const b = identityFromSeed(seed, { backend: 'noble' })
    const msg = new TextEncoder().encode('same')
    expect(Buffer.from(a.sign(msg)).equals(Buffer.from(b.sign(msg)))).toBe(true)
    expect(Buffer.from(a.agree(generateIdentity().x25519PublicKey)).length).toBe(32)
  })
  it('rejects seeds of the wrong size', () => {
    expect(() => identityFromSeed(new Uint8Array(31))).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
  })
})

describe('did:key', () => {
  it('round-trips and refuses malformed DIDs with InvalidDidError', () => {
    expect(didKeyFromPublicKey(publicKeyFromDidKey(id.did))).toBe(id.did)
    expect(publicKeyFromDidKey(id.keyId)).toEqual(id.publicKey)
    for (const bad of ['did:web:example.com', 'did:key:abc', 'did:key:z6LSeu9HkTHSfLLeUs2nnzUSNedgDUevfNQgQjQC23ZCit6F', 'did:key:z0OIl', `${id.did}#wrong`, 'x'.repeat(600)]) {
      expect(() => publicKeyFromDidKey(bad), bad).toThrow(expect.objectContaining({ name: 'InvalidDidError' }))
    }
  })
  it('refuses a key off the curve with a fragment as InvalidPublicKeyError (regression: noble threw a plain Error)', () => {
    // y = 2 is canonical and not small order, but (y^2 - 1) / (d y^2 + 1) has no square root: no point
    const key = new Uint8Array(32); key[0] = 2
    const did = `did:key:${base58btc.encode(Uint8Array.of(0xed, 0x01, ...key))}`
    expect(() => ed.Point.fromBytes(key)).toThrow()
    const err = (() => { try { publicKeyFromDidKey(`${did}#z6LSbysY2xFMRpGMhb7tFTLMpeuPRaqaWM1yECx2AtzE3KCc`) } catch (e) { return e } return undefined })()
    expect(err).toMatchObject({ name: 'InvalidPublicKeyError', code: 'ERR_INVALID_PUBLIC_KEY' })
    expect(err).toBeInstanceOf(InvalidDidError) // still an invalid DID for callers that catch the broader class
  })
  it('rejects a did:key whose 32 bytes are not a point on the curve, wherever it is parsed (did:key spec: invalidPublicKey)', async () => {
    // the key is 02 00..00: canonical, not small order, but y = 2 has no x on Ed25519
    const bad = 'did:key:z6Mkeb4rtEhc8DUtvt5ehaVjdx3TLbQPpnTArkXhqfb1Mq75'
    const key = base58btc.decode(bad.slice(8)).subarray(2)
    expect(Buffer.from(key).toString('hex')).toBe(`02${'00'.repeat(31)}`)
    const invalid = { name: 'InvalidPublicKeyError', code: 'ERR_INVALID_PUBLIC_KEY' }
    for (const s of [bad, `${bad}#${bad.slice(8)}`, `${bad}#z6LSbysY2xFMRpGMhb7tFTLMpeuPRaqaWM1yECx2AtzE3KCc`]) {
      expect(() => publicKeyFromDidKey(s), s).toThrow(expect.objectContaining(invalid))
      expect(() => publicKeyFromDidKey(s), s).toThrow(expect.objectContaining(invalid)) // the cached rejection too
    }
    expect(() => didKeyDocument(bad)).toThrow(expect.objectContaining(invalid))
    expect(() => didKeyFromPublicKey(key)).toThrow(expect.objectContaining({ name: 'InvalidKeyError' }))
    expect(isValidEd25519PublicKey(key)).toBe(false)
    expect(isValidEd25519PublicKey(id.publicKey)).toBe(true)
    const r = createDidResolver()
    await expect(r.resolveDid(bad)).rejects.toMatchObject(invalid)
    await expect(r.resolveKey(`${bad}#${bad.slice(8)}`)).rejects.toMatchObject(invalid)
    // the codec's SignatureVerifier: a key id that resolves to no key is an unknown key, with the reason as cause
    const v = createSignatureVerifier()
    const err = await v.verifySignature(`${bad}#${bad.slice(8)}`, new Uint8Array(1), new Uint8Array(64)).then(() => undefined, (e: unknown) => e)
    expect(err).toMatchObject({ name: 'UnknownKeyError', cause: expect.objectContaining(invalid) })
  })
  it('rejects small-order and non-canonical did:key keys as InvalidPublicKeyError', () => {
    const nonCanonical = new Uint8Array(32).fill(0xff); nonCanonical[31] = 0x7f // y = 2^255 - 1 >= p
    for (const key of [...SMALL_ORDER_ENCODINGS, nonCanonical]) {
      const did = `did:key:${base58btc.encode(Uint8Array.of(0xed, 0x01, ...key))}`
      expect(() => publicKeyFromDidKey(did)).toThrow(expect.objectContaining({ name: 'InvalidPublicKeyError' }))
    }
  })
  it('checks each did:key point once: later parses of the same DID come from the cache', () => {
    const fresh = generateIdentity()
    const start = pointCheckCount()
    expect(publicKeyFromDidKey(fresh.did)).toEqual(fresh.publicKey)
    expect(pointCheckCount()).toBe(start + 1)
    for (let i = 0; i < 50; i++) {
      expect(publicKeyFromDidKey(fresh.did)).toEqual(fresh.publicKey)
      expect(publicKeyFromDidKey(fresh.keyId)).toEqual(fresh.publicKey)
    }
    expect(pointCheckCount()).toBe(start + 1)
    // a rejected DID is remembered too
    const bad = 'did:key:z6Mkeb4rtEhc8DUtvt5ehaVjdx3TLbQPpnTArkXhqfb1Mq75'
    try { publicKeyFromDidKey(bad) } catch { /* expected */ }
    const afterBad = pointCheckCount()
    for (let i = 0; i < 20; i++) expect(() => publicKeyFromDidKey(bad)).toThrow(expect.objectContaining({ name: 'InvalidPublicKeyError' }))
    expect(pointCheckCount()).toBe(afterBad)
    // the returned key is a copy: mutating it does not poison the cache
    publicKeyFromDidKey(fresh.did).fill(0)
    expect(publicKeyFromDidKey(fresh.did)).toEqual(fresh.publicKey)
  })
  it('refuses small-order keys', () => {
    for (const s of SMALL_ORDER_ENCODINGS) expect(() => didKeyFromPublicKey(s)).toThrow(expect.objectContaining({ name: 'InvalidKeyError' }))
  })
})

describe('verification rule', () => {
  const msg = new TextEncoder().encode('klp message')
  const sig = id.sign(msg)
  it('accepts a valid signature on both backends and via the Verifier contract', async () => {
    expect(ed25519Verify(id.publicKey, msg, sig)).toBe(true)
    expect(ed25519Verify(id.publicKey, msg, sig, { backend: 'noble' })).toBe(true)
    expect(await createVerifier({ backend: 'noble' }).verify(id.publicKey, msg, sig)).toBe(true)
  })
  it('rejects S + L (malleated) on both backends', () => {
    const s = BigInt(`0x${Buffer.from(sig.subarray(32)).reverse().toString('hex')}`) + (2n ** 252n + 27742317777372353535851937790883648493n)
    const mal = sig.slice()
    mal.set(Buffer.from(s.toString(16).padStart(64, '0'), 'hex').reverse(), 32)
    expect(ed25519Verify(id.publicKey, msg, mal)).toBe(false)
    expect(ed25519Verify(id.publicKey, msg, mal, { backend: 'noble' })).toBe(false)
  })
  it('backends agree on random corruptions (property)', () => {
    fc.assert(fc.property(fc.nat(63), fc.integer({ min: 1, max: 255 }), fc.boolean(), (pos, bit, onKey) => {
      const s = sig.slice(); const k = id.publicKey.slice()
      if (onKey) k[pos % 32] = (k[pos % 32] as number) ^ bit; else s[pos] = (s[pos] as number) ^ bit
      const n = ed25519Verify(k, msg, s, { backend: 'native' })
      expect(ed25519Verify(k, msg, s, { backend: 'noble' })).toBe(n)
      expect(n).toBe(false)
    }), { numRuns: 60 })
  })
  it('never throws on garbage input', () => {
    expect(ed25519Verify(new Uint8Array(3), msg, sig)).toBe(false)
    expect(ed25519Verify(id.publicKey, msg, new Uint8Array(63))).toBe(false)
    expect(ed25519Verify(undefined as unknown as Uint8Array, msg, sig)).toBe(false)
  })
})

describe('resolver and SignatureVerifier', () => {
  it('resolves did:key documents and key ids, and caches them', async () => {
    let t = 0
    const r = createDidResolver({ now: () => t, cache: { ttlMs: 10 } })
    const view = await r.resolveDid(id.did)
    expect(view.verificationKeys[0]?.publicKey).toEqual(id.publicKey)
    expect(view.keyAgreementKeys[0]?.publicKey).toEqual(id.x25519PublicKey)
    expect(view.keyAgreementKeys[0]?.id).toBe(id.x25519KeyId)
    expect(await r.resolveDid(id.did)).toBe(view)
    t = 11
    expect(await r.resolveDid(id.did)).not.toBe(view)
    expect(await r.resolveKey(id.keyId)).toEqual(id.publicKey)
    expect(await r.resolveKey(id.did)).toEqual(id.publicKey)
  })
  it('takes the cache TTL from an injected Clock', async () => {
    const clock = new ManualClock(1_000)
    const r = createDidResolver({ clock, cache: { ttlMs: 10 } })
    const view = await r.resolveDid(id.did)
    clock.advance(9)
    expect(await r.resolveDid(id.did)).toBe(view)
    clock.advance(1)
    expect(await r.resolveDid(id.did)).not.toBe(view)
  })
  it('reports unknown methods, bad DIDs, missing keys and aborts with typed errors', async () => {
    const r = createDidResolver()
    await expect(r.resolveDid('did:example:123')).rejects.toMatchObject({ name: 'UnsupportedDidMethodError' })
    await expect(r.resolveDid('not a did')).rejects.toMatchObject({ name: 'InvalidDidError' })
    await expect(r.resolveDid('did:key:zzzz')).rejects.toMatchObject({ name: 'DidResolutionError' })
    await expect(r.resolveKey(`${id.did}#nope`)).rejects.toMatchObject({ name: 'DidResolutionError' })
    const ac = new AbortController(); ac.abort()
    await expect(r.resolveDid(id.did, { signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' })
  })
  it('supports other methods through a did-resolver registry', async () => {
    const other = generateIdentity()
    const r = createDidResolver({
      methods: {
        example: async (did) => ({
          didResolutionMetadata: {},
          didDocumentMetadata: {},
          didDocument: {
            id: did,
            verificationMethod: [{ id: '#k1', type: 'Ed25519VerificationKey2020', controller: did, publicKeyMultibase: other.did.slice(8) }],
          },
        }),
      },
    })
    expect(await r.resolveKey('did:example:abc#k1')).toEqual(other.publicKey)
  })
  for (const backend of ['native', 'noble'] as const) {
    it(`verifySignature resolves the key id and applies the rule (${backend})`, async () => {
      const v = createSignatureVerifier({ backend })
      const msg = new TextEncoder().encode('m')
      const sig = id.sign(msg)
      expect(await v.verifySignature(id.keyId, msg, sig)).toBe(true)
      expect(await v.verifySignature(generateIdentity().keyId, msg, sig)).toBe(false)
      await expect(v.verifySignature('did:nope:x', msg, sig)).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_/) })
    })
  }
})
