import { gzipSync } from 'node:zlib'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DecryptionError, InvalidParametersError, KosMeshError, LimitExceededError } from '@kos-mesh/interface'
import type { KLPPayload, KLPValue } from '@kos-mesh/interface'
import {
  compressPayload, createMessage, decodeMessage, decompressPayload, decryptPayload, encodeMessage, encryptPayload, openPayload,
  sealPayload, signMessage,
} from '../src/index.js'
import { valueArb } from './helpers/arbitraries.js'
import { ed25519Signer } from './helpers/ed25519.js'

const key = new Uint8Array(32).fill(5)
const plain = (data: KLPValue, content_type = 'application/cbor'): KLPPayload => ({ content_type, data, encryption: { enabled: false }, compression: { enabled: false } })
function throws(fn: () => unknown): KosMeshError {
  try { fn() } catch (err) { expect(err).toBeInstanceOf(KosMeshError); return err as KosMeshError }
  throw new Error('expected a throw')
}

describe('payload envelopes', () => {
  it('compresses and decompresses every content type', () => {
    const cases: Array<[KLPValue, string]> = [
      [{ a: [1, 2n ** 60n, new Uint8Array([1])] }, 'application/cbor'], [{ a: [1, 'x', null] }, 'application/json'],
      ['héllo '.repeat(100), 'text/plain'], ['x', 'text/plain; charset=utf-8'], [new Uint8Array(500).fill(7), 'application/octet-stream'],
    ]
    for (const [data, ct] of cases) {
      const c = compressPayload(plain(data, ct))
      expect(c.compression).toEqual({ enabled: true, algorithm: 'gzip' })
      expect(c.data).toBeInstanceOf(Uint8Array)
      expect(decompressPayload(c)).toEqual(plain(data, ct))
    }
    expect(throws(() => compressPayload(plain(5, 'text/plain')))).toBeInstanceOf(InvalidParametersError)
    expect(throws(() => compressPayload(plain(1n, 'application/json')))).toBeInstanceOf(InvalidParametersError)
    expect(throws(() => compressPayload(plain({ a: 1 }, 'application/x-unknown'))).name).toBe('UnsupportedContentTypeError')
  })

  it('caps decompressed size (zip bomb) and rejects bad gzip', () => {
    const bomb: KLPPayload = { content_type: 'application/octet-stream', data: new Uint8Array(gzipSync(new Uint8Array(10 * 1024 * 1024))), encryption: { enabled: false }, compression: { enabled: true, algorithm: 'gzip' } }
    expect((bomb.data as Uint8Array).length).toBeLessThan(20_000)
    const e = throws(() => decompressPayload(bomb))
    expect(e.name).toBe('DecompressedTooLargeError')
    expect(e).toBeInstanceOf(LimitExceededError)
    expect(((decompressPayload(bomb, { maxDecompressedSize: 11 * 1024 * 1024 }).data) as Uint8Array).length).toBe(10 * 1024 * 1024)
    expect(throws(() => decompressPayload({ ...bomb, data: new Uint8Array([1, 2, 3]) })).name).toBe('DecompressionError')
    expect(throws(() => decompressPayload({ ...bomb, data: (bomb.data as Uint8Array).subarray(0, 50) })).name).toBe('DecompressionError')
    const badJson = compressPayload(plain(new Uint8Array([0x7b]), 'application/octet-stream'))
    expect(throws(() => decompressPayload({ ...badJson, content_type: 'application/json' })).name).toBe('InvalidPayloadError')
  })

  it('encrypts with AES-256-GCM and a 12-byte nonce; authenticates content type and key id', () => {
    const nonce = new Uint8Array(12).fill(3)
    const e = encryptPayload(plain({ secret: 'x' }), key, { nonce, keyId: 'k1' })
    expect(e.encryption).toEqual({ enabled: true, algorithm: 'AES-256-GCM', nonce, key_id: 'k1' })
    expect(decryptPayload(e, key)).toEqual(plain({ secret: 'x' }))
    const wrongKey = throws(() => decryptPayload(e, new Uint8Array(32).fill(6)))
    expect(wrongKey.name).toBe('AuthenticationFailedError')
    expect(wrongKey).toBeInstanceOf(DecryptionError)
    const flipped = Uint8Array.from(e.data as Uint8Array)
    flipped[0] = (flipped[0] as number) ^ 1
    expect(throws(() => decryptPayload({ ...e, data: flipped }, key)).name).toBe('AuthenticationFailedError')
    expect(throws(() => decryptPayload({ ...e, content_type: 'application/json' }, key)).name).toBe('AuthenticationFailedError')
    expect(throws(() => decryptPayload({ ...e, encryption: { ...e.encryption, key_id: 'k2' } }, key)).name).toBe('AuthenticationFailedError')
    for (const n of [0, 8, 11, 13, 16]) {
      expect(throws(() => decryptPayload({ ...e, encryption: { ...e.encryption, nonce: new Uint8Array(n) } }, key)).name).toBe('InvalidEnvelopeError')
      expect(throws(() => encryptPayload(plain(1), key, { nonce: new Uint8Array(n) }))).toBeInstanceOf(InvalidParametersError)
    }
    expect(throws(() => decryptPayload({ ...e, data: new Uint8Array(15) }, key)).name).toBe('InvalidEnvelopeError')
    expect(throws(() => encryptPayload(plain(1), new Uint8Array(16))).name).toBe('InvalidKeyError')
    // Random nonces differ.
    const a = encryptPayload(plain(1), key)
    const b = encryptPayload(plain(1), key)
    expect(Buffer.compare(a.encryption.nonce as Uint8Array, b.encryption.nonce as Uint8Array)).not.toBe(0)
  })

  it('seals (compress then encrypt) inside a signed message and opens after decode (property)', async () => {
    const signer = ed25519Signer('did:key:z6MkP#z6MkP', new Uint8Array(32).fill(4))
    await fc.assert(fc.asyncProperty(valueArb, fc.boolean(), fc.boolean(), async (data, compress, encrypt) => {
      const sealed = sealPayload(plain(data), { compress, ...(encrypt ? { key, keyId: 'k' } : {}) })
      const msg = await signMessage(createMessage({ type: 'TASK_REQUEST', source: 'klp://a/', target: 'klp://b/', data: sealed.data, content_type: sealed.content_type, encryption: sealed.encryption, compression: sealed.compression, timestamp: 1 }), signer)
      const decoded = decodeMessage(encodeMessage(msg))
      expect(openPayload(decoded.payload, { key })).toEqual(plain(data))
    }), { numRuns: 200 })
  })
})
