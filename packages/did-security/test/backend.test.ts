import { generateKeyPairSync } from 'node:crypto'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { x25519 as nobleX25519 } from '@noble/curves/ed25519.js'
import { nativeBackend, nobleBackend } from '../src/backend.js'

afterEach(() => { vi.restoreAllMocks() })

describe('native backend: ephemeral X25519 key pairs', () => {
  // Node 20 can self-deadlock in KeyObject.export() on a key made by generateKeyPairSync (the
  // KeyGenJob's destructor locks the key mutex export holds, from a GC inside export). The
  // ephemeral path must therefore never export such a key.
  it('never calls KeyObject.export for an ephemeral pair', () => {
    const sample = generateKeyPairSync('x25519')
    // export is defined on the PublicKeyObject / PrivateKeyObject prototypes
    const spies = [sample.publicKey, sample.privateKey].map((k) => vi.spyOn(Object.getPrototypeOf(k) as { export(): unknown }, 'export'))
    sample.publicKey.export({ format: 'jwk' })
    expect(spies[0]).toHaveBeenCalledTimes(1) // the spy sees exports
    spies[0]!.mockClear()
    for (let i = 0; i < 20; i++) nativeBackend.x25519KeyPair()
    for (const spy of spies) expect(spy).not.toHaveBeenCalled()
  })

  it('publishes the public key of its secret: both sides agree with noble', () => {
    for (let i = 0; i < 20; i++) {
      const eph = nativeBackend.x25519KeyPair()
      expect(eph.publicKey).toBeInstanceOf(Uint8Array)
      expect(eph.publicKey.length).toBe(32)
      const bSecret = nobleX25519.utils.randomSecretKey()
      const bPublic = nobleX25519.getPublicKey(bSecret)
      const ours = eph.agree(bPublic)
      expect(Buffer.from(ours).toString('hex')).toBe(Buffer.from(nobleBackend.x25519(bSecret, eph.publicKey)).toString('hex'))
      expect(ours.some((v) => v !== 0)).toBe(true)
    }
  })

  it('gives a fresh key pair each call', () => {
    const seen = new Set<string>()
    for (let i = 0; i < 50; i++) seen.add(Buffer.from(nativeBackend.x25519KeyPair().publicKey).toString('hex'))
    expect(seen.size).toBe(50)
  })

  it('a pair from a given secret matches noble and the one-shot x25519PublicKey', () => {
    const secret = nobleX25519.utils.randomSecretKey()
    const pair = nativeBackend.x25519KeyPair(secret)
    expect(Buffer.from(pair.publicKey).toString('hex')).toBe(Buffer.from(nobleX25519.getPublicKey(secret)).toString('hex'))
    expect(Buffer.from(nativeBackend.x25519PublicKey(secret)).toString('hex')).toBe(Buffer.from(pair.publicKey).toString('hex'))
  })
})
