import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  DecodeError, InvalidAddressError, InvalidParametersError, InvalidSignatureError, KosMeshError,
  MessageExpiredError, UnknownKeyError,
} from '@kos-mesh/interface'
import type { KLPMessage, UnsignedKLPMessage } from '@kos-mesh/interface'
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import {
  checkExpiry, computeMessageId, createMessage, decodeFrame, decodeMessage, encodeBody, encodeFrame, encodeMessage, getSigningInput,
  messageIdFromBody, parseMessageId, signMessage, verifyMessage,
} from '../src/index.js'
import { messageInitArb } from './helpers/arbitraries.js'
import { ed25519Signer, ed25519Verifier } from './helpers/ed25519.js'
import { coseParts } from './helpers/cose.js'

const signer = ed25519Signer('did:key:z6MkTest#z6MkTest', new Uint8Array(32).fill(1))
const other = ed25519Signer('did:key:z6MkOther#z6MkOther', new Uint8Array(32).fill(2))
const verifier = ed25519Verifier({ [signer.keyId]: signer.publicKey, [other.keyId]: other.publicKey })

const base = () => createMessage({
  type: 'TASK_REQUEST', source: 'klp://a.kai/agents/x', target: 'klp://node.domain.kai/agents/genie?x=1#f',
  data: { task: 'summarize', n: 3 }, timestamp: 1_732_460_000_123, ttl: 60,
})

async function rejects(p: Promise<unknown>): Promise<KosMeshError> {
  try { await p } catch (err) { expect(err).toBeInstanceOf(KosMeshError); return err as KosMeshError }
  throw new Error('expected a rejection')
}
function throws(fn: () => unknown): KosMeshError {
  try { fn() } catch (err) { expect(err).toBeInstanceOf(KosMeshError); return err as KosMeshError }
  throw new Error('expected a throw')
}

describe('createMessage', () => {
  it('fills defaults and validates', () => {
    const m = base()
    expect(m.version).toBe('1.0')
    expect(m.payload).toEqual({ content_type: 'application/cbor', data: { task: 'summarize', n: 3 }, encryption: { enabled: false }, compression: { enabled: false } })
    expect(m.metadata).toEqual({ priority: 5, ttl: 60, routing_hints: [], trust_requirements: { minimum_trust_score: 0, required_endorsements: 0, verification_level: 'none' } })
    expect(m.source).toEqual({ scheme: 'klp', authority: 'a.kai', path: '/agents/x' })
    const ok = { type: 'TASK_REQUEST' as const, source: 'klp://a/', target: 'klp://b/', data: null }
    expect(throws(() => createMessage({ ...ok, source: 'nope' }))).toBeInstanceOf(InvalidAddressError)
    for (const bad of [
      { type: 'NOPE' }, { priority: 3 }, { ttl: -1 }, { ttl: 1.5 }, { timestamp: -5 }, { version: 'v1' }, { content_type: '' },
      { correlation_id: '' }, { data: undefined }, { data: NaN }, { trust_requirements: { minimum_trust_score: 11, required_endorsements: 0, verification_level: 'none' } },
      { routing_hints: [{ kind: '', value: 'x' }] }, { encryption: { enabled: true, algorithm: 'AES-256-GCM', nonce: new Uint8Array(11) }, data: new Uint8Array(1) },
      { compression: { enabled: true, algorithm: 'gzip' }, data: 'not bytes' }, { encryption: { enabled: false, key_id: 'x' } },
    ]) {
      expect(throws(() => createMessage({ ...ok, ...bad } as never))).toBeInstanceOf(InvalidParametersError)
    }
  })
})

describe('message ids', () => {
  it('is a 128-bit CIDv1 (dag-cbor, truncated sha2-256) of the canonical unsigned body', () => {
    const m = base()
    const id = computeMessageId(m)
    const cid = CID.parse(id)
    expect(cid.version).toBe(1)
    expect(cid.code).toBe(0x71)
    expect(cid.multihash.code).toBe(0x12)
    expect(cid.multihash.digest.length).toBe(16)
    expect(parseMessageId(id).equals(cid)).toBe(true)
    expect(computeMessageId(base())).toBe(id) // deterministic
    expect(computeMessageId({ ...m, timestamp: m.timestamp + 1 })).not.toBe(id)
    // Key insertion order of the data does not matter.
    expect(computeMessageId({ ...m, payload: { ...m.payload, data: { n: 3, task: 'summarize' } } })).toBe(id)
    expect(() => parseMessageId('bafkqaaa')).toThrow(InvalidParametersError)
    expect(() => parseMessageId('nope')).toThrow(InvalidParametersError)
  })
})

describe('fast paths agree with the slow, obvious ones', () => {
  it('messageIdFromBody equals the multiformats CID of the truncated sha2-256 (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (body) => {
      const digest = createHash('sha256').update(body).digest().subarray(0, 16)
      expect(messageIdFromBody(body)).toBe(CID.createV1(0x71, createDigest(0x12, digest)).toString())
    }), { numRuns: 300 })
  })

  it('re-validates a mutable copy of a created message (no stale cached validation)', async () => {
    const c = base()
    const m: UnsignedKLPMessage = {
      ...c, source: { ...c.source }, payload: { ...c.payload, data: { task: 'summarize', n: 3 } }, metadata: { ...c.metadata, routing_hints: [] },
    }
    m.source.path = '/not a valid path'
    expect(throws(() => encodeBody(m))).toBeInstanceOf(InvalidAddressError)
    expect(await rejects(signMessage(m, signer))).toBeInstanceOf(InvalidAddressError)
    m.source.path = '/agents/y'
    m.metadata.routing_hints.push({ kind: 'via', value: 'n2' })
    ;(m.payload.data as { n: number }).n = 4
    const signed = await signMessage(m, signer)
    expect(signed.source.path).toBe('/agents/y')
    const decoded = decodeMessage(encodeMessage(signed))
    expect(decoded.source.path).toBe('/agents/y')
    expect(decoded.metadata.routing_hints).toEqual([{ kind: 'via', value: 'n2' }])
    expect(decoded.payload.data).toEqual({ task: 'summarize', n: 4 })
    expect(decoded.metadata.message_id).toBe(computeMessageId(m))
    m.payload.content_type = 'bad\u0000type'
    expect(throws(() => encodeBody(m))).toBeInstanceOf(InvalidParametersError)
  })

  it('createMessage returns a frozen message and signMessage signs the body encoded there (snapshot of data)', async () => {
    const hints = [{ kind: 'via', value: 'n1' }]
    const trust = { minimum_trust_score: 2, required_endorsements: 1, verification_level: 'basic' as const }
    const data = { task: 'summarize', n: 3, list: [1, 2] }
    const m = createMessage({ type: 'TASK_REQUEST', source: 'klp://a.kai/x', target: { scheme: 'klp', authority: 'b.kai', path: '/y' }, data, routing_hints: hints, trust_requirements: trust, timestamp: 1 })
    for (const o of [m, m.source, m.target, m.payload, m.payload.encryption, m.payload.compression, m.metadata, m.metadata.routing_hints, m.metadata.routing_hints[0], m.metadata.trust_requirements]) {
      expect(Object.isFrozen(o)).toBe(true)
    }
    // The caller's own objects are copied, not frozen.
    expect(Object.isFrozen(hints) || Object.isFrozen(hints[0]) || Object.isFrozen(trust) || Object.isFrozen(data)).toBe(false)
    expect(() => { (m.metadata as { ttl: number }).ttl = 1 }).toThrow(TypeError)
    const id = computeMessageId(m)
    // Snapshot semantics: data mutated after createMessage is not what gets signed.
    data.n = 4
    data.list.push(3)
    const signed = await signMessage(m, signer)
    expect(signed.payload.data).toBe(data) // the caller's object, not a copy
    expect(signed.metadata.message_id).toBe(id)
    await verifyMessage(signed, verifier)
    const decoded = decodeMessage(encodeMessage(signed))
    expect(decoded.payload.data).toEqual({ task: 'summarize', n: 3, list: [1, 2] })
    expect(decoded.metadata.message_id).toBe(id)
    await verifyMessage(decoded, verifier)
    // The same created message signed by another key: same id, each signature over its own input.
    const byOther = await signMessage(m, other)
    expect(byOther.metadata.message_id).toBe(id)
    await verifyMessage(decodeMessage(encodeMessage(byOther)), verifier)
    expect(Buffer.from(getSigningInput(byOther)).includes(Buffer.from(other.keyId))).toBe(true)
  })

  it('a spread copy of a created message is encoded from its own fields, not the cached body', async () => {
    const m = base()
    const copy = { ...m, payload: { ...m.payload, data: { changed: true } }, metadata: { ...m.metadata, ttl: 5 } }
    const signed = await signMessage(copy, signer)
    expect(signed.metadata.message_id).toBe(computeMessageId(copy))
    expect(signed.metadata.message_id).not.toBe(computeMessageId(m))
    const decoded = decodeMessage(encodeMessage(signed))
    expect(decoded.payload.data).toEqual({ changed: true })
    expect(decoded.metadata.ttl).toBe(5)
    await verifyMessage(decoded, verifier)
    const invalid = { ...m, metadata: { ...m.metadata, ttl: -1 } }
    expect(await rejects(signMessage(invalid, signer))).toBeInstanceOf(InvalidParametersError)
  })

  it('getSigningInput hands out a copy, so mutating it cannot break verification', async () => {
    const signed = await signMessage(base(), signer)
    const decoded = decodeMessage(encodeMessage(signed))
    for (const msg of [signed, decoded]) {
      const input = getSigningInput(msg)
      input.fill(0)
      await verifyMessage(msg, verifier)
      expect(getSigningInput(msg)).not.toEqual(input)
    }
  })

  it('frames the latest encodeMessage output in place without ever rewriting an earlier frame', async () => {
    const a = await signMessage(base(), signer)
    const b = await signMessage(createMessage({ type: 'TASK_RESPONSE', source: 'klp://b/', target: 'klp://a/', data: 1, timestamp: 1 }), signer)
    const bytesA = encodeMessage(a)
    const copyA = Uint8Array.from(bytesA)
    const f1 = encodeFrame(bytesA)
    const f2 = encodeFrame(bytesA, { kind: 0x80 }) // second framing of the same bytes: a copy
    const f3 = encodeFrame(encodeMessage(b))
    const f4 = encodeFrame(encodeMessage(a), { kind: 0x81 })
    expect(f1[2]).toBe(1)
    expect(f2[2]).toBe(0x80)
    expect(f4[2]).toBe(0x81)
    expect(bytesA).toEqual(copyA)
    expect(decodeFrame(f1).body).toEqual(copyA)
    expect(decodeFrame(f2).body).toEqual(copyA)
    expect(decodeFrame(f4).body).toEqual(copyA)
    expect(decodeMessage(decodeFrame(f3).body)).toEqual(b)
  })
})

describe('sign / encode / decode / verify', () => {
  it('round-trips and verifies over the received bytes without re-encoding', async () => {
    const signed = await signMessage(base(), signer)
    expect(signed.signer).toBe(signer.keyId)
    expect(signed.signature.length).toBe(64)
    expect(signed.metadata.message_id).toBe(computeMessageId(base()))
    expect(Object.isFrozen(signed)).toBe(true)
    const bytes = encodeMessage(signed)
    const decoded = decodeMessage(bytes)
    expect(decoded).toEqual(signed)
    expect(Object.isFrozen(decoded.payload.data)).toBe(true)
    expect(Buffer.compare(encodeMessage(decoded), bytes)).toBe(0)
    await verifyMessage(decoded, verifier)
    await verifyMessage(signed, verifier)
    // A structurally identical, non-decoded copy is verified by re-encoding.
    const copy = structuredClone({ ...decoded }) as KLPMessage
    await verifyMessage(copy, verifier)
    expect(Buffer.compare(getSigningInput(copy), getSigningInput(decoded))).toBe(0)
  })

  it('rejects tampering, wrong keys, unknown keys and aborted calls', async () => {
    const signed = await signMessage(base(), signer)
    const badSig = { ...signed, signature: signed.signature.map((b, i) => (i === 0 ? b ^ 1 : b)) }
    expect((await rejects(verifyMessage(badSig, verifier))).name).toBe('InvalidSignatureError')
    const swapped = { ...signed, signer: other.keyId }
    expect(await rejects(verifyMessage(swapped, verifier))).toBeInstanceOf(InvalidSignatureError)
    const unknown = { ...signed, signer: 'did:key:zUnknown' }
    expect(await rejects(verifyMessage(unknown, verifier))).toBeInstanceOf(UnknownKeyError)
    const edited = { ...signed, timestamp: signed.timestamp + 1 }
    expect((await rejects(verifyMessage(edited, verifier))).name).toBe('MessageIdMismatchError')
    expect(throws(() => encodeMessage(edited)).name).toBe('MessageIdMismatchError')
    const short = { ...signed, signature: signed.signature.subarray(0, 63) }
    expect(await rejects(verifyMessage(short, verifier))).toBeInstanceOf(InvalidSignatureError)
    const ac = new AbortController()
    ac.abort()
    expect((await rejects(verifyMessage(signed, verifier, { signal: ac.signal }))).name).toBe('AbortError')
    expect((await rejects(signMessage(base(), signer, { signal: ac.signal }))).name).toBe('AbortError')
  })

  it('rejects a signer returning a bad signature', async () => {
    const bad = { ...signer, sign: () => new Uint8Array(10) }
    expect(await rejects(signMessage(base(), bad))).toBeInstanceOf(InvalidSignatureError)
  })

  it('decodes strictly: envelope shape, unknown/missing fields, wrong types, trailing bytes', async () => {
    const signed = await signMessage(base(), signer)
    const bytes = encodeMessage(signed)
    const { decodeValue, encodeValue } = await import('../src/index.js')
    const { protectedBytes } = coseParts(bytes)
    const cat = (...parts: Array<number[] | Uint8Array>): Uint8Array => new Uint8Array(Buffer.concat(parts.map((p) => Buffer.from(p))))
    // COSE_Sign1 d2 84 [protected, {}, body, signature] with a replaced body.
    const envelope = (body: Uint8Array): Uint8Array =>
      cat([0xd2, 0x84], encodeValue(protectedBytes), [0xa0], encodeValue(body), encodeValue(signed.signature))
    const body = encodeBody(signed)
    const raw = decodeValue(body) as Record<string, any>
    const mutate = (f: (o: Record<string, any>) => void): Uint8Array => {
      const o = structuredClone(raw)
      f(o)
      return envelope(encodeValue(o))
    }
    expect(decodeMessage(envelope(body))).toEqual(signed)
    const cases: Array<[string, Uint8Array]> = [
      ['UnknownFieldError', mutate((o) => { o.extra = 1 })],
      ['UnknownFieldError', mutate((o) => { o.metadata.message_id = 'x' })],
      ['UnknownFieldError', mutate((o) => { o.payload.encryption.foo = true })],
      ['MissingFieldError', mutate((o) => { delete o.timestamp })],
      ['MissingFieldError', mutate((o) => { delete o.metadata.trust_requirements.verification_level })],
      ['InvalidFieldError', mutate((o) => { o.timestamp = 'now' })],
      ['InvalidFieldError', mutate((o) => { o.timestamp = -1 })],
      ['InvalidFieldError', mutate((o) => { o.type = 'NOPE' })],
      ['InvalidFieldError', mutate((o) => { o.metadata.priority = 4 })],
      ['InvalidFieldError', mutate((o) => { o.source = 'klp://a.kai' })], // non-canonical address (no path)
      ['InvalidFieldError', mutate((o) => { o.target = 'klp://A.kai/' })],
      ['InvalidFieldError', mutate((o) => { o.payload.encryption = { enabled: true, algorithm: 'AES-256-GCM', nonce: new Uint8Array(16) } })],
      ['InvalidFieldError', mutate((o) => { o.payload.compression = { enabled: true, algorithm: 'gzip' } })], // data not bytes
      ['InvalidFieldError', mutate((o) => { o.metadata.routing_hints = {} })],
    ]
    for (const [name, b] of cases) expect(throws(() => decodeMessage(b)).name).toBe(name)
    const trailing = new Uint8Array([...bytes, 0])
    expect(throws(() => decodeMessage(trailing)).name).toBe('TrailingBytesError')
    expect(throws(() => decodeMessage(bytes.subarray(0, bytes.length - 1))).name).toBe('TruncatedInputError')
    expect(throws(() => decodeMessage(bytes, { limits: { maxMessageSize: bytes.length - 1 } })).name).toBe('MessageTooLargeError')
    expect(throws(() => decodeMessage(new Uint8Array([0x82, 0x60, 0x40])))).toBeInstanceOf(DecodeError)
  })

  it('accepts only the one COSE_Sign1 form: tag 18, protected {1: -8, 4: kid}, empty unprotected, attached payload', async () => {
    const signed = await signMessage(base(), signer)
    const bytes = encodeMessage(signed)
    const { encodeValue } = await import('../src/index.js')
    const { protectedBytes, payload, signature } = coseParts(bytes)
    const kid = new TextEncoder().encode(signed.signer)
    const cat = (...parts: Array<number[] | Uint8Array>): Uint8Array => new Uint8Array(Buffer.concat(parts.map((p) => Buffer.from(p))))
    const bstr = (b: Uint8Array): Uint8Array => encodeValue(b)
    const sign1 = (prot: Uint8Array, unprot: number[] | Uint8Array = [0xa0], pay: number[] | Uint8Array = bstr(payload), tag: number[] = [0xd2]): Uint8Array =>
      cat(tag, [0x84], bstr(prot), unprot, pay, bstr(signature))
    // the reference form decodes to the same message
    expect(Buffer.compare(sign1(protectedBytes), bytes)).toBe(0)
    expect(Buffer.from(protectedBytes).subarray(0, 4).toString('hex')).toBe('a2012704') // {1: -8, 4: h'...'}
    const cases: Array<[string, Uint8Array]> = [
      ['InvalidFieldError', bytes.subarray(1)], // untagged COSE_Sign1
      ['InvalidFieldError', cat([0xd1], bytes.subarray(1))], // COSE_Mac0 tag
      ['NonCanonicalCborError', cat([0xd8, 0x12], bytes.subarray(1))], // tag 18 in a non-minimal head
      ['InvalidFieldError', sign1(protectedBytes, [0xa0], [0xf6])], // detached payload (nil)
      ['UnknownFieldError', sign1(protectedBytes, cat([0xa1, 0x04], bstr(kid)))], // kid in the unprotected header too
      ['InvalidFieldError', sign1(protectedBytes, [0x80])], // unprotected not a map
      ['InvalidFieldError', sign1(cat([0xa2, 0x01, 0x26, 0x04], bstr(kid)))], // alg -7 (ES256)
      ['InvalidFieldError', sign1(cat([0xa2, 0x01, 0x64, 0x45, 0x64, 0x44, 0x53, 0x41, 0x04], bstr(kid)))], // alg as text "EdDSA"
      ['MissingFieldError', sign1(cat([0xa1, 0x04], bstr(kid)))], // no alg
      ['MissingFieldError', sign1(new Uint8Array([0xa1, 0x01, 0x27]))], // no kid
      ['UnknownFieldError', sign1(cat([0xa3, 0x01, 0x27, 0x03, 0x00, 0x04], bstr(kid)))], // content type (3) too
      ['UnknownFieldError', sign1(cat([0xa3, 0x01, 0x27, 0x04], bstr(kid), [0x61, 0x78, 0x00]))], // a text label
      ['NonCanonicalCborError', sign1(cat([0xa2, 0x04], bstr(kid), [0x01, 0x27]))], // labels out of order
      ['DuplicateKeyError', sign1(cat([0xa3, 0x01, 0x27, 0x01, 0x27, 0x04], bstr(kid)))], // alg twice
      ['InvalidFieldError', sign1(cat([0xa2, 0x01, 0x27, 0x04], encodeValue(signed.signer)))], // kid as a text string
      ['InvalidFieldError', sign1(cat([0xa2, 0x01, 0x27, 0x04], bstr(new Uint8Array([0x64, 0x69, 0x64, 0xff]))))], // kid not UTF-8
      ['InvalidFieldError', sign1(new Uint8Array([0xa2, 0x01, 0x27, 0x04, 0x40]))], // empty kid
      ['InvalidFieldError', sign1(new Uint8Array([0x80]))], // protected header not a map
      ['TrailingBytesError', sign1(cat(protectedBytes, [0x00]))], // bytes after the protected header map
      ['NonCanonicalCborError', cat([0xd2, 0x84, 0x59, 0x00, protectedBytes.length], protectedBytes, [0xa0], bstr(payload), bstr(signature))], // non-minimal bstr head
    ]
    for (const [name, b] of cases) expect(throws(() => decodeMessage(b)).name, Buffer.from(b.subarray(0, 12)).toString('hex')).toBe(name)
    // a short kid (under 24 bytes, 1-byte head) takes the generic path and is accepted when it is the encoder's form
    const short = ed25519Signer('did:key:z6Mk#k', new Uint8Array(32).fill(3))
    const m = await signMessage(base(), short)
    const d = decodeMessage(encodeMessage(m))
    expect(d.signer).toBe('did:key:z6Mk#k')
    await verifyMessage(d, ed25519Verifier({ [short.keyId]: short.publicKey }))
    // a non-ASCII kid round-trips as UTF-8
    const uni = ed25519Signer('did:example:ünï#ķey', new Uint8Array(32).fill(4))
    const mu = decodeMessage(encodeMessage(await signMessage(base(), uni)))
    expect(mu.signer).toBe('did:example:ünï#ķey')
    await verifyMessage(mu, ed25519Verifier({ [uni.keyId]: uni.publicKey }))
    expect(await rejects(signMessage(base(), { ...uni, keyId: 'did:x:\uD800' }))).toBeInstanceOf(InvalidParametersError)
  })

  it('flipping any single bit of a signed message is always rejected (by decode or verify)', async () => {
    const signed = await signMessage(createMessage({
      type: 'VECTOR_SYNC', source: 'klp://a.kai/x', target: 'klp://b.kai/y?q#f', data: { v: [1.5, -2, 'x', new Uint8Array([9, 9])], big: 2n ** 60n },
      correlation_id: 'c-1', routing_hints: [{ kind: 'via', value: 'n2' }], timestamp: 1_700_000_000_000,
      trust_requirements: { minimum_trust_score: 7.5, required_endorsements: 2, verification_level: 'strong' },
    }), signer)
    const bytes = encodeMessage(signed)
    let decodeRejects = 0
    let verifyRejects = 0
    for (let i = 0; i < bytes.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const m = Uint8Array.from(bytes)
        m[i] = (m[i] as number) ^ (1 << bit)
        let decoded: KLPMessage
        try {
          decoded = decodeMessage(m)
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError)
          decodeRejects++
          continue
        }
        const err = await rejects(verifyMessage(decoded, verifier))
        expect(['InvalidSignatureError', 'UnknownKeyError']).toContain(err.name)
        verifyRejects++
      }
    }
    expect(decodeRejects + verifyRejects).toBe(bytes.length * 8)
    expect(verifyRejects).toBeGreaterThan(0)
  })

  it('round-trips arbitrary messages (property)', async () => {
    await fc.assert(fc.asyncProperty(messageInitArb, async (init) => {
      const m = createMessage(init)
      const signed = await signMessage(m, signer)
      const bytes = encodeMessage(signed)
      const decoded = decodeMessage(bytes)
      expect(decoded).toEqual(signed)
      expect(Buffer.compare(encodeMessage(decoded), bytes)).toBe(0)
      expect(Buffer.compare(encodeBody({ ...decoded }), encodeBody(m))).toBe(0) // from the decoded fields, not the kept bytes
      expect(decoded.metadata.message_id).toBe(computeMessageId(m))
      await verifyMessage(decoded, verifier)
    }), { numRuns: 300 })
  })
})

describe('checkExpiry', () => {
  const m = { timestamp: 1_000_000, metadata: { ttl: 60 } } as KLPMessage
  it('accepts within ttl + skew and rejects outside it', () => {
    checkExpiry(m, { now: 1_000_000 })
    checkExpiry(m, { now: 1_060_000 + 30_000 })
    expect(throws(() => checkExpiry(m, { now: 1_060_000 + 30_001 }))).toBeInstanceOf(MessageExpiredError)
    expect(throws(() => checkExpiry(m, { now: 1_060_001, clockSkewMs: 0 }))).toBeInstanceOf(MessageExpiredError)
    checkExpiry(m, { now: 1_000_000 - 30_000 })
    expect(throws(() => checkExpiry(m, { now: 1_000_000 - 30_001 })).name).toBe('MessageExpiredError')
    expect(throws(() => checkExpiry(m, { now: 1_000_000, clockSkewMs: -1 }))).toBeInstanceOf(InvalidParametersError)
  })
})

describe('decoding without copies', () => {
  it('a 512 KiB byte string decodes as a view into the input: no second copy', async () => {
    const big = new Uint8Array(512 * 1024).map((_, i) => i & 0xff)
    const signed = await signMessage(createMessage({
      type: 'VECTOR_SYNC', source: 'klp://a.kai/x', target: 'klp://b.kai/y', data: { blob: big }, timestamp: 1_700_000_000_000,
    }), signer)
    const input = Uint8Array.from(encodeMessage(signed)) // a buffer of its own, as a transport hands it over
    const before = process.memoryUsage().arrayBuffers
    const decoded = decodeMessage(input)
    const grown = process.memoryUsage().arrayBuffers - before
    const blob = (decoded.payload.data as { blob: Uint8Array }).blob
    expect(blob.length).toBe(big.length)
    expect(blob.buffer).toBe(input.buffer) // the decoded bytes' buffer is the input's
    expect(blob.byteOffset).toBeGreaterThan(0)
    expect(blob.byteOffset + blob.length).toBeLessThan(input.length)
    expect(decoded.signature.buffer).toBe(input.buffer)
    expect(grown).toBeLessThan(big.length / 2) // a copy would add 512 KiB of ArrayBuffer memory
    expect(Buffer.compare(blob, big)).toBe(0)
    // verification and re-encoding work from the received bytes (the Sig_structure is built on demand)
    await verifyMessage(decoded, verifier)
    expect(Buffer.compare(encodeMessage(decoded), input)).toBe(0)
    expect(Buffer.compare(getSigningInput(decoded), getSigningInput(signed))).toBe(0)
  })

  it('frame bodies from FrameDecoder decode as views into the pushed chunk', async () => {
    const signed = await signMessage(createMessage({ type: 'TASK_REQUEST', source: 'klp://a/', target: 'klp://b/', data: new Uint8Array(1000).fill(1), timestamp: 1 }), signer)
    const chunk = Uint8Array.from(encodeFrame(encodeMessage(signed)))
    const { FrameDecoder } = await import('../src/index.js')
    const [frame] = new FrameDecoder().push(chunk)
    const decoded = decodeMessage(frame!.body)
    expect((decoded.payload.data as Uint8Array).buffer).toBe(chunk.buffer)
    await verifyMessage(decoded, verifier)
  })
})
