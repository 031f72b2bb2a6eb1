/** Node identities: an Ed25519 key pair as did:key, with the X25519 key agreement key derived from it. */
import { randomBytes } from 'node:crypto'
import type { Signer } from '@kos-mesh/interface'
import { getBackend, x25519SecretFromEd25519Seed, type BackendName, type CryptoBackend, type X25519KeyPair } from './backend.js'
import { didKeyFromPublicKey, keyIdFromDid, x25519KeyFingerprint } from './did-key.js'
import { assertBytes, isAllZero } from './bytes.js'
import { ZeroSharedSecretError, InvalidKeyError } from './errors.js'

/** Options of creating or importing an identity. */
export interface IdentityOptions {
  /** Crypto backend for signing and key agreement. Default: `'native'`. */
  backend?: BackendName
}

/** A node or agent identity: an Ed25519 key as a did:key, with its X25519 key agreement key, able to sign. */
export interface Identity {
  /** `did:key:z6Mk...` */
  readonly did: string
  /** `did:key:z6Mk...#z6Mk...`: the Ed25519 verification method id (`KLPMessage.signer`). */
  readonly keyId: string
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array
  /** Raw 32-byte X25519 public key (did:key key agreement key). */
  readonly x25519PublicKey: Uint8Array
  /** `did:key:z6Mk...#z6LS...`: the X25519 key agreement method id. */
  readonly x25519KeyId: string
  /** Signer for klp-codec. */
  readonly signer: Signer
  readonly backend: BackendName
  /** Ed25519 signature (64 bytes) over `data`. */
  sign(data: Uint8Array): Uint8Array
  /** X25519 with this identity's static key. Throws ZeroSharedSecretError for small-order peers. */
  agree(peerX25519PublicKey: Uint8Array): Uint8Array
  /** The 32-byte Ed25519 seed (the secret). Handle with care: for keystores only. */
  exportSeed(): Uint8Array
}

class IdentityImpl implements Identity {
  readonly did: string
  readonly keyId: string
  readonly publicKey: Uint8Array
  readonly x25519PublicKey: Uint8Array
  readonly x25519KeyId: string
  readonly signer: Signer
  readonly backend: BackendName
  readonly #seed: Uint8Array
  readonly #xPair: X25519KeyPair
  readonly #sign: (m: Uint8Array) => Uint8Array

  constructor(seed: Uint8Array, crypto: CryptoBackend) {
    this.#seed = seed.slice()
    this.backend = crypto.name
    this.publicKey = crypto.ed25519PublicKey(this.#seed)
    this.did = didKeyFromPublicKey(this.publicKey)
    this.keyId = keyIdFromDid(this.did)
    const xSecret = x25519SecretFromEd25519Seed(this.#seed)
    this.#xPair = crypto.x25519KeyPair(xSecret)
    xSecret.fill(0)
    this.x25519PublicKey = this.#xPair.publicKey
    this.x25519KeyId = `${this.did}#${x25519KeyFingerprint(this.x25519PublicKey)}`
    this.#sign = crypto.ed25519Signer(this.#seed)
    const sign = this.#sign
    const keyId = this.keyId
    const publicKey = this.publicKey
    this.signer = { algorithm: 'Ed25519', keyId, publicKey, sign: (data: Uint8Array) => sign(data) }
  }

  sign(data: Uint8Array): Uint8Array { return this.#sign(data) }

  agree(peerX25519PublicKey: Uint8Array): Uint8Array {
    return checkedAgree(this.#xPair, peerX25519PublicKey)
  }

  exportSeed(): Uint8Array { return this.#seed.slice() }

  toJSON(): { did: string } { return { did: this.did } }
}

/** Rejects wrong peer key sizes and the all-zero shared secret. */
export function checkedAgree(pair: X25519KeyPair, peerPublicKey: Uint8Array): Uint8Array {
  if (!(peerPublicKey instanceof Uint8Array) || peerPublicKey.length !== 32) {
    throw new InvalidKeyError(`expected a 32-byte X25519 public key, got ${peerPublicKey instanceof Uint8Array ? `${peerPublicKey.length} bytes` : typeof peerPublicKey}`)
  }
  const shared = pair.agree(peerPublicKey)
  if (isAllZero(shared)) throw new ZeroSharedSecretError('X25519 produced the all-zero shared secret (small-order public key)')
  return shared
}

/** X25519 that rejects the all-zero shared secret (and wrong key sizes), on either backend. */
export function x25519Agree(crypto: CryptoBackend, secretKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array {
  assertBytes(secretKey, 'an X25519 secret key', 32)
  if (!(peerPublicKey instanceof Uint8Array) || peerPublicKey.length !== 32) {
    throw new InvalidKeyError(`expected a 32-byte X25519 public key, got ${peerPublicKey instanceof Uint8Array ? `${peerPublicKey.length} bytes` : typeof peerPublicKey}`)
  }
  const shared = crypto.x25519(secretKey, peerPublicKey)
  if (isAllZero(shared)) throw new ZeroSharedSecretError('X25519 produced the all-zero shared secret (small-order public key)')
  return shared
}

/** A new random identity. */
export function generateIdentity(options: IdentityOptions = {}): Identity {
  const seed = new Uint8Array(randomBytes(32))
  const id = new IdentityImpl(seed, getBackend(options.backend))
  seed.fill(0)
  return id
}

/** The identity of a 32-byte Ed25519 seed (RFC 8032 private key). */
export function identityFromSeed(seed: Uint8Array, options: IdentityOptions = {}): Identity {
  assertBytes(seed, 'an Ed25519 seed', 32)
  return new IdentityImpl(seed, getBackend(options.backend))
}
