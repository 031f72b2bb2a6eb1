/** A small Ed25519 Signer / SignatureVerifier on node:crypto, for tests and the benchmark only. */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { UnknownKeyError } from '@kos-mesh/interface'
import type { AbortOptions, SignatureVerifier, Signer } from '@kos-mesh/interface'

export interface TestSigner extends Signer {
  readonly privateKey: KeyObject
  readonly publicKeyObject: KeyObject
}

function b64url(b: Uint8Array): string {
  return Buffer.from(b).toString('base64url')
}

/** A signer from a fixed 32-byte seed (deterministic, for vectors) or a fresh key. */
export function ed25519Signer(keyId: string, seed?: Uint8Array): TestSigner {
  let privateKey: KeyObject
  let publicKeyObject: KeyObject
  if (seed !== undefined) {
    // PKCS#8 prefix for a raw Ed25519 seed.
    const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(seed)])
    privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
    publicKeyObject = createPublicKey(privateKey)
  } else {
    const kp = generateKeyPairSync('ed25519')
    privateKey = kp.privateKey
    publicKeyObject = kp.publicKey
  }
  const jwk = publicKeyObject.export({ format: 'jwk' })
  const publicKey = new Uint8Array(Buffer.from(jwk.x as string, 'base64url'))
  return {
    algorithm: 'Ed25519',
    keyId,
    publicKey,
    privateKey,
    publicKeyObject,
    sign: (data: Uint8Array) => new Uint8Array(sign(null, data, privateKey)),
  }
}

/** A SignatureVerifier over a fixed set of keys, KeyObjects cached; unknown ids throw UnknownKeyError. */
export function ed25519Verifier(keys: Record<string, Uint8Array>): SignatureVerifier & { calls: number } {
  const cache = new Map<string, KeyObject>()
  for (const [id, raw] of Object.entries(keys)) {
    cache.set(id, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(raw) }, format: 'jwk' }))
  }
  const v = {
    calls: 0,
    async verifySignature(keyId: string, data: Uint8Array, signature: Uint8Array, options?: AbortOptions): Promise<boolean> {
      options?.signal?.throwIfAborted()
      v.calls++
      const key = cache.get(keyId)
      if (key === undefined) throw new UnknownKeyError(`expected a known key id, got ${keyId}`)
      return verify(null, data, key, signature)
    },
  }
  return v
}
