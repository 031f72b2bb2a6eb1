import { describe, expect, it } from 'vitest'
import { generateIdentity, open, openKey, seal, sealKey, aesGcmDecrypt } from '../src/index.js'

const bob = generateIdentity()
const alice = generateIdentity()
const eve = generateIdentity()
const msg = new TextEncoder().encode('sealed KLP payload')

describe('sealed payloads', () => {
  for (const [sb, ob] of [['native', 'noble'], ['noble', 'native']] as const) {
    it(`anonymous: ${sb} seals, ${ob} opens`, () => {
      const s = seal(msg, bob.did, { backend: sb })
      expect(s.keyId).toBe(bob.x25519KeyId)
      expect(s.ephemeralKey.length).toBe(32)
      expect(s.nonce.length).toBe(12)
      expect(s.senderKeyId).toBeUndefined()
      expect(open(bob, s, { backend: ob })).toEqual(msg)
    })
  }
  it('authenticated: binds the sender; a wrong expected sender or a forged sender id fails', () => {
    const s = seal(msg, bob.did, { sender: alice, aad: Uint8Array.of(1, 2) })
    expect(s.senderKeyId).toBe(alice.x25519KeyId)
    expect(open(bob, s, { aad: Uint8Array.of(1, 2), expectedSender: alice.did })).toEqual(msg)
    expect(() => open(bob, s, { aad: Uint8Array.of(1, 2), expectedSender: eve.did })).toThrow(expect.objectContaining({ name: 'SealOpenError' }))
    expect(() => open(bob, { ...s, senderKeyId: eve.x25519KeyId }, { aad: Uint8Array.of(1, 2) })).toThrow(expect.objectContaining({ name: 'SealOpenError' }))
    // stripping the sender (claiming anonymity) does not open either
    const { senderKeyId: _drop, ...anon } = s
    expect(() => open(bob, anon, { aad: Uint8Array.of(1, 2) })).toThrow(expect.objectContaining({ name: 'SealOpenError' }))
    expect(() => open(bob, seal(msg, bob.did), { expectedSender: alice.did })).toThrow(expect.objectContaining({ name: 'SealOpenError' }))
  })
  it('fails for the wrong recipient, wrong aad and tampered bytes', () => {
    const s = seal(msg, bob.did, { aad: Uint8Array.of(9) })
    expect(() => open(eve, s, { aad: Uint8Array.of(9) })).toThrow(expect.objectContaining({ name: 'SealOpenError' }))
    expect(() => open(eve, { ...s, keyId: eve.x25519KeyId }, { aad: Uint8Array.of(9) })).toThrow(expect.objectContaining({ code: 'ERR_SEAL_OPEN' }))
    expect(() => open(bob, s, { aad: Uint8Array.of(8) })).toThrow(expect.objectContaining({ name: 'SealOpenError' }))
    const ct = s.ciphertext.slice(); ct[0] = (ct[0] as number) ^ 1
    expect(() => open(bob, { ...s, ciphertext: ct }, { aad: Uint8Array.of(9) })).toThrow(expect.objectContaining({ name: 'SealOpenError' }))
    expect(() => open(bob, { ...s, ephemeralKey: new Uint8Array(32) }, { aad: Uint8Array.of(9) })).toThrow(expect.objectContaining({ name: 'SealOpenError' }))
  })
  it('sealKey/openKey give the codec envelope the same key on both sides (fresh per payload)', () => {
    const m = sealKey(bob.did, { sender: alice })
    const k = openKey(bob, m.ephemeralKey, m.senderKeyId === undefined ? {} : { senderKeyId: m.senderKeyId })
    expect(k).toEqual(m.key)
    expect(sealKey(bob.did).key).not.toEqual(sealKey(bob.did).key)
    const raw = sealKey({ x25519PublicKey: bob.x25519PublicKey })
    expect(raw.keyId).toBe('')
    expect(openKey(bob, raw.ephemeralKey)).toEqual(raw.key)
    expect(() => aesGcmDecrypt(raw.key, new Uint8Array(16), new Uint8Array(16))).toThrow(expect.objectContaining({ name: 'InvalidNonceError' }))
  })
  it('refuses a recipient that is not a did:key or a 32-byte key', () => {
    expect(() => seal(msg, 'did:web:example.com')).toThrow(expect.objectContaining({ name: 'InvalidDidError' }))
    expect(() => seal(msg, { x25519PublicKey: new Uint8Array(31) })).toThrow(expect.objectContaining({ name: 'InvalidKeyError' }))
    expect(() => seal(msg, { x25519PublicKey: new Uint8Array(32) })).toThrow(expect.objectContaining({ name: 'ZeroSharedSecretError' }))
  })
})
