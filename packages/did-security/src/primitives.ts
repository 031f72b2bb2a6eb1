/** One-shot primitives with the protocol's rules enforced in front of either backend. */
import { getBackend, type BackendName } from './backend.js'
import { x25519Agree } from './identity.js'
import { InvalidNonceError } from './errors.js'
import { assertBytes } from './bytes.js'
import { InvalidParametersError } from '@kos-mesh/interface'

/** Options of the standalone primitives: which backend runs them. */
export interface PrimitiveOptions {
  /** Default: `'native'`. */
  backend?: BackendName
}

/** X25519; throws ZeroSharedSecretError for an all-zero result, InvalidKeyError for a bad length. */
export function x25519(secretKey: Uint8Array, publicKey: Uint8Array, options: PrimitiveOptions = {}): Uint8Array {
  return x25519Agree(getBackend(options.backend), secretKey, publicKey)
}

/** HKDF-SHA256 (RFC 5869). `length` must be 1..8160 (255 * 32). */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number, options: PrimitiveOptions = {}): Uint8Array {
  assertBytes(ikm, 'ikm'); assertBytes(salt, 'salt'); assertBytes(info, 'info')
  if (!Number.isInteger(length) || length < 1 || length > 255 * 32) {
    throw new InvalidParametersError(`expected an HKDF-SHA256 output length in 1..8160, got ${length}`)
  }
  return getBackend(options.backend).hkdfSha256(ikm, salt, info, length)
}

function checkKeyNonce(key: Uint8Array, nonce: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== 32) throw new InvalidNonceError(`expected a 32-byte AES-256 key, got ${key instanceof Uint8Array ? key.length : typeof key}`)
  if (!(nonce instanceof Uint8Array) || nonce.length !== 12) throw new InvalidNonceError(`expected a 12-byte AES-GCM nonce, got ${nonce instanceof Uint8Array ? nonce.length : typeof nonce}`)
}

/** AES-256-GCM, 12-byte nonce, returns ciphertext || 16-byte tag. */
export function aesGcmEncrypt(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array, options: PrimitiveOptions = {}): Uint8Array {
  checkKeyNonce(key, nonce)
  return getBackend(options.backend).aead(key).seal(nonce, plaintext, aad)
}

/** AES-256-GCM open; throws DecryptionError when the tag does not verify. */
export function aesGcmDecrypt(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad?: Uint8Array, options: PrimitiveOptions = {}): Uint8Array {
  checkKeyNonce(key, nonce)
  return getBackend(options.backend).aead(key).open(nonce, sealed, aad)
}
