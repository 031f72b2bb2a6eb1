/**
 * Crypto backends. `native` uses node:crypto (OpenSSL) with KeyObjects cached per key; `noble` uses
 * @noble/ed25519, @noble/curves, @noble/ciphers and @noble/hashes (pure JS, portable). Both compute
 * the same functions; the rule-level checks (canonical encodings, small order, all-zero secrets,
 * 12-byte nonces) live in shared code in front of them.
 */
import * as nodeCrypto from 'node:crypto'
import * as ed from '@noble/ed25519'
import { ed25519 as nobleEd25519, x25519 as nobleX25519 } from '@noble/curves/ed25519.js'
import { gcm } from '@noble/ciphers/aes.js'
import { sha512, sha256 } from '@noble/hashes/sha2.js'
import { hkdf as nobleHkdf } from '@noble/hashes/hkdf.js'
import { DecryptionError } from '@kos-mesh/interface'
import { LruCache, concatBytes, toBase64Url } from './bytes.js'

ed.hashes.sha512 = sha512

/** Name of a crypto backend: `native` (node:crypto) or `noble` (@noble, portable). */
export type BackendName = 'native' | 'noble'

/** A cached AES-256-GCM key. Nonces are 12 bytes; output is ciphertext || 16-byte tag. */
export interface AeadKey {
  /**
   * Encrypts `plaintext` under the 12-byte `nonce` (never reused with this key), authenticating `aad`;
   * returns ciphertext || tag.
   */
  seal(nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Uint8Array
  /** Throws DecryptionError when the tag does not verify. */
  open(nonce: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Uint8Array
}

/** An X25519 key pair whose secret stays inside the backend (a KeyObject on node). */
export interface X25519KeyPair {
  readonly publicKey: Uint8Array
  /** Raw X25519 with a peer key; may return all zeros: callers must reject that. */
  agree(peerPublicKey: Uint8Array): Uint8Array
}

/**
 * The crypto primitives behind identities, signatures and channels. Two implementations give the same
 * answers: `native` (node:crypto) and `noble` (@noble, portable).
 */
export interface CryptoBackend {
  readonly name: BackendName
  /** Ed25519 public key of a 32-byte seed. */
  ed25519PublicKey(seed: Uint8Array): Uint8Array
  /** A signing function bound to one seed (keys prepared once). */
  ed25519Signer(seed: Uint8Array): (message: Uint8Array) => Uint8Array
  /** Rule step 5 only: the cofactorless equation. Callers must apply the rule checks first. */
  ed25519Equation(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean
  /** X25519 public key of a 32-byte private key. */
  x25519PublicKey(privateKey: Uint8Array): Uint8Array
  /** A key pair for X25519: random (ephemeral) when `secretKey` is omitted. Keys are prepared once. */
  x25519KeyPair(secretKey?: Uint8Array): X25519KeyPair
  /** Raw X25519 (RFC 7748); may return all zeros: callers must reject that. */
  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array
  /** HKDF with SHA-256 (RFC 5869): `length` bytes from the input key material, salt and info. */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array
  /** An AES-256-GCM key prepared once from 32 key bytes. */
  aead(key: Uint8Array): AeadKey
  /** SHA-256 of `data` (32 bytes). */
  sha256(data: Uint8Array): Uint8Array
}

const ED_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const X_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')

/*
 * Why ephemeral X25519 public keys are computed as X25519(secret, 9) and never exported:
 * on Node 20 (seen on 20.20.2), `generateKeyPairSync()` leaves a KeyGenJob behind whose destructor
 * (~KeyPairGenConfig, run from a GC weak callback) locks the generated key's mutex. That mutex is
 * shared with the returned KeyObject and with `createPublicKey(it)`, and `export({ format: 'jwk' })`
 * holds it while allocating JS strings. When that allocation triggers the GC that collects the job,
 * the main thread locks a mutex it already holds: a self-deadlock at 0 % CPU, forever.
 * `generateKeyPairSync('x25519')` + `createPublicKey(priv).export({ format: 'jwk' })` in a loop
 * deadlocks within ~15 k iterations. `diffieHellman()` takes no key mutex, so deriving the public
 * key with the base point is safe (and cheaper than DER-encoded keygen, whose OpenSSL encoders cost
 * ~85 µs). Keys imported with createPrivateKey (seeds, static keys) have no KeyGenJob; their export
 * cannot meet this deadlock.
 */
let x25519Base: nodeCrypto.KeyObject | undefined
function x25519BasePoint(): nodeCrypto.KeyObject {
  if (x25519Base === undefined) {
    const u = new Uint8Array(32)
    u[0] = 9
    x25519Base = nodeCrypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: toBase64Url(u) }, format: 'jwk' })
  }
  return x25519Base
}

function u8(b: Buffer | ArrayBuffer): Uint8Array {
  return b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
}

// ------------------------------------------------------------------ native

class NativeAead implements AeadKey {
  private readonly key: nodeCrypto.KeyObject
  constructor(key: Uint8Array) { this.key = nodeCrypto.createSecretKey(key) }
  seal(nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Uint8Array {
    const c = nodeCrypto.createCipheriv('aes-256-gcm', this.key, nonce)
    if (aad !== undefined) c.setAAD(aad)
    const out = new Uint8Array(plaintext.length + 16)
    const body = c.update(plaintext)
    out.set(body, 0)
    const fin = c.final()
    if (fin.length > 0) out.set(fin, body.length)
    out.set(c.getAuthTag(), plaintext.length)
    return out
  }
  open(nonce: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Uint8Array {
    if (sealed.length < 16) throw new DecryptionError(`expected at least 16 bytes of ciphertext and tag, got ${sealed.length}`)
    const n = sealed.length - 16
    const d = nodeCrypto.createDecipheriv('aes-256-gcm', this.key, nonce, { authTagLength: 16 })
    if (aad !== undefined) d.setAAD(aad)
    d.setAuthTag(sealed.subarray(n))
    const out = new Uint8Array(n)
    const body = d.update(sealed.subarray(0, n))
    out.set(body, 0)
    try {
      const fin = d.final()
      if (fin.length > 0) out.set(fin, body.length)
    } catch (err) {
      throw new DecryptionError('AES-256-GCM authentication failed', { cause: err })
    }
    return out
  }
}

class NativeBackend implements CryptoBackend {
  readonly name = 'native' as const
  private readonly edKeys = new LruCache<string, nodeCrypto.KeyObject>(4096)

  private edPublicKeyObject(publicKey: Uint8Array): nodeCrypto.KeyObject {
    const x = toBase64Url(publicKey)
    let k = this.edKeys.get(x)
    if (k === undefined) {
      k = nodeCrypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' })
      this.edKeys.set(x, k)
    }
    return k
  }

  ed25519PublicKey(seed: Uint8Array): Uint8Array {
    const priv = nodeCrypto.createPrivateKey({ key: Buffer.concat([ED_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' })
    const jwk = nodeCrypto.createPublicKey(priv).export({ format: 'jwk' })
    return u8(Buffer.from(jwk.x as string, 'base64url'))
  }

  ed25519Signer(seed: Uint8Array): (message: Uint8Array) => Uint8Array {
    const priv = nodeCrypto.createPrivateKey({ key: Buffer.concat([ED_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' })
    return (message) => u8(nodeCrypto.sign(null, message, priv))
  }

  ed25519Equation(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    let key: nodeCrypto.KeyObject
    try { key = this.edPublicKeyObject(publicKey) } catch { return false }
    return nodeCrypto.verify(null, message, key, signature)
  }

  x25519PublicKey(privateKey: Uint8Array): Uint8Array {
    const priv = nodeCrypto.createPrivateKey({ key: Buffer.concat([X_PKCS8_PREFIX, privateKey]), format: 'der', type: 'pkcs8' })
    return u8(Buffer.from(nodeCrypto.createPublicKey(priv).export({ format: 'jwk' }).x as string, 'base64url'))
  }

  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
    return this.x25519KeyPair(privateKey).agree(publicKey)
  }

  x25519KeyPair(secretKey?: Uint8Array): X25519KeyPair {
    // PKCS#8 import costs ~0.3-0.6 ms on OpenSSL 3.0; generating a pair costs ~0.03 ms
    let priv: nodeCrypto.KeyObject
    let publicKey: Uint8Array
    if (secretKey === undefined) {
      // never export a key generateKeyPairSync made (see x25519BasePoint): public = X25519(secret, 9)
      priv = nodeCrypto.generateKeyPairSync('x25519').privateKey
      publicKey = u8(nodeCrypto.diffieHellman({ privateKey: priv, publicKey: x25519BasePoint() }))
    } else {
      priv = nodeCrypto.createPrivateKey({ key: Buffer.concat([X_PKCS8_PREFIX, secretKey]), format: 'der', type: 'pkcs8' })
      publicKey = u8(Buffer.from(nodeCrypto.createPublicKey(priv).export({ format: 'jwk' }).x as string, 'base64url'))
    }
    return {
      publicKey,
      agree(peerPublicKey: Uint8Array): Uint8Array {
        let pub: nodeCrypto.KeyObject
        try {
          pub = nodeCrypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: toBase64Url(peerPublicKey) }, format: 'jwk' })
        } catch {
          return new Uint8Array(32)
        }
        try {
          return u8(nodeCrypto.diffieHellman({ privateKey: priv, publicKey: pub }))
        } catch {
          // OpenSSL refuses an all-zero result itself; report it the same way as noble does
          return new Uint8Array(32)
        }
      },
    }
  }

  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    return u8(nodeCrypto.hkdfSync('sha256', ikm, salt, info, length))
  }

  aead(key: Uint8Array): AeadKey { return new NativeAead(key) }

  sha256(data: Uint8Array): Uint8Array { return u8(nodeCrypto.createHash('sha256').update(data).digest()) }
}

// ------------------------------------------------------------------ noble

const G = ed.Point.BASE
const L = ed.Point.CURVE().n

function leToBigInt(b: Uint8Array): bigint {
  let r = 0n
  for (let i = b.length - 1; i >= 0; i--) r = (r << 8n) | BigInt(b[i] as number)
  return r
}

class NobleAead implements AeadKey {
  constructor(private readonly key: Uint8Array) {}
  seal(nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Uint8Array {
    return gcm(this.key, nonce, aad).encrypt(plaintext)
  }
  open(nonce: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Uint8Array {
    try {
      return gcm(this.key, nonce, aad).decrypt(sealed)
    } catch (err) {
      throw new DecryptionError('AES-256-GCM authentication failed', { cause: err })
    }
  }
}

class NobleBackend implements CryptoBackend {
  readonly name = 'noble' as const
  private readonly points = new LruCache<string, ed.Point>(4096)

  ed25519PublicKey(seed: Uint8Array): Uint8Array { return ed.getPublicKey(seed) }

  ed25519Signer(seed: Uint8Array): (message: Uint8Array) => Uint8Array {
    const s = seed.slice()
    return (message) => ed.sign(message, s)
  }

  ed25519Equation(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    try {
      const hex = Buffer.from(publicKey).toString('hex')
      let A = this.points.get(hex)
      if (A === undefined) {
        A = ed.Point.fromBytes(publicKey, false)
        this.points.set(hex, A)
      }
      const rBytes = signature.subarray(0, 32)
      const R = ed.Point.fromBytes(rBytes, false)
      const S = leToBigInt(signature.subarray(32, 64))
      if (S >= L) return false
      const k = leToBigInt(sha512(concatBytes(rBytes, publicKey, message))) % L
      const SB = G.multiply(S, false)
      return SB.equals(R.add(A.multiply(k, false)))
    } catch {
      return false
    }
  }

  x25519PublicKey(privateKey: Uint8Array): Uint8Array { return nobleX25519.getPublicKey(privateKey) }

  x25519KeyPair(secretKey?: Uint8Array): X25519KeyPair {
    const secret = secretKey === undefined ? nobleX25519.utils.randomSecretKey() : secretKey.slice()
    const publicKey = nobleX25519.getPublicKey(secret)
    return { publicKey, agree: (peer: Uint8Array) => this.x25519(secret, peer) }
  }

  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
    try {
      return nobleX25519.getSharedSecret(privateKey, publicKey)
    } catch {
      // noble throws on an all-zero result; report it as zeros so the shared check sees it
      return new Uint8Array(32)
    }
  }

  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    return nobleHkdf(sha256, ikm, salt, info, length)
  }

  aead(key: Uint8Array): AeadKey { return new NobleAead(key.slice()) }

  sha256(data: Uint8Array): Uint8Array { return sha256(data) }
}

/** The backend on node:crypto (fast; Ed25519 keys cached as KeyObjects). */
export const nativeBackend: CryptoBackend = new NativeBackend()
/** The backend on @noble/curves, @noble/hashes and @noble/ciphers (portable, slower). */
export const nobleBackend: CryptoBackend = new NobleBackend()

/** The default backend: native (node:crypto). */
export function getBackend(name: BackendName = 'native'): CryptoBackend {
  return name === 'noble' ? nobleBackend : nativeBackend
}

/** X25519 secret key of an Ed25519 seed (clamped SHA-512 prefix, as did:key and libsodium derive it). */
export function x25519SecretFromEd25519Seed(seed: Uint8Array): Uint8Array {
  return nobleEd25519.utils.toMontgomerySecret(seed)
}

/** X25519 public key of an Ed25519 public key (birational map u = (1 + y) / (1 - y)). */
export function x25519PublicFromEd25519Public(publicKey: Uint8Array): Uint8Array {
  return nobleEd25519.utils.toMontgomery(publicKey)
}
