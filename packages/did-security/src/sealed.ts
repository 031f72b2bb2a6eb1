/**
 * Sealed payloads (ECIES-like): encrypt to a recipient DID's X25519 key agreement key with an
 * ephemeral X25519 key, HKDF-SHA256 and AES-256-GCM.
 *
 * - anonymous: ikm = X25519(e, R), salt = e_pub | R_pub, info = "KLP-SEAL-v1 anon"
 * - authenticated: ikm = X25519(e, R) | X25519(S, R), salt = e_pub | R_pub | S_pub,
 *   info = "KLP-SEAL-v1 auth" (the sender's static key is mixed in: only the holder of S, or the
 *   recipient, can produce a payload that opens; like Noise's K/X patterns, not a signature).
 *
 * The key is unique per payload (fresh ephemeral), so the random 12-byte nonce is belt and braces.
 * For the codec's encryption envelope use `sealKey` / `openKey`: they return the AES-256 key plus the
 * `ephemeral_key` and `key_id` values for `EncryptionInfo`.
 */
import { randomBytes } from 'node:crypto'
import type { AbortOptions, DidResolver } from '@kos-mesh/interface'
import { getBackend, type BackendName, type CryptoBackend } from './backend.js'
import { didKeyDocument } from './did-key.js'
import { checkedAgree, type Identity } from './identity.js'
import { concatBytes, utf8 } from './bytes.js'
import { SealOpenError, InvalidKeyError, InvalidDidError } from './errors.js'
import { InvalidParametersError } from '@kos-mesh/interface'

const INFO_ANON = utf8.encode('KLP-SEAL-v1 anon')
const INFO_AUTH = utf8.encode('KLP-SEAL-v1 auth')

/** A recipient: a did:key (or its key agreement key id), or an explicit X25519 key. */
export type SealRecipient = string | { x25519PublicKey: Uint8Array; keyId?: string }

/** Options of `seal`: the sender (authenticated variant) and additional authenticated data. */
export interface SealOptions {
  /** Sender identity for the authenticated variant. Omit for an anonymous payload. */
  sender?: Identity
  /** Additional authenticated data (e.g. the message header bytes). */
  aad?: Uint8Array
  /** Default: the sender's backend, else `'native'`. */
  backend?: BackendName
}

/** A fresh key for one sealed payload, and what the recipient needs to derive it again. */
export interface SealKeyMaterial {
  /** 32-byte AES-256-GCM key for this one payload. */
  key: Uint8Array
  /** `EncryptionInfo.ephemeral_key`. */
  ephemeralKey: Uint8Array
  /** `EncryptionInfo.key_id`: the recipient's key agreement key id (may be empty for raw keys). */
  keyId: string
  /** Authenticated variant: the sender's key agreement key id (`did:key:...#z6LS...`). */
  senderKeyId?: string
}

/** A payload sealed to one recipient's X25519 key: ciphertext, nonce, the ephemeral key and key ids. */
export interface SealedPayload {
  /** Ciphertext followed by the 16-byte GCM tag. */
  ciphertext: Uint8Array
  /** 12 bytes. */
  nonce: Uint8Array
  ephemeralKey: Uint8Array
  keyId: string
  senderKeyId?: string
}

/**
 * Options of `open` and `openKey`: the additional authenticated data, and the sender the payload must be
 * authenticated by.
 */
export interface OpenOptions {
  aad?: Uint8Array
  /** Refuse unless the payload is authenticated by this DID (or key agreement key id). */
  expectedSender?: string
  /** Sender's X25519 key when `senderKeyId` is not a did:key. */
  senderX25519PublicKey?: Uint8Array
  /** Default: the identity's backend. */
  backend?: BackendName
}

function recipientKey(recipient: SealRecipient): { pub: Uint8Array; keyId: string } {
  if (typeof recipient === 'string') {
    const doc = didKeyDocument(recipient)
    const k = doc.keyAgreementKeys[0]
    if (k === undefined) throw new InvalidDidError('expected a DID with a key agreement key')
    return { pub: k.publicKey, keyId: k.id }
  }
  if (!(recipient?.x25519PublicKey instanceof Uint8Array) || recipient.x25519PublicKey.length !== 32) {
    throw new InvalidKeyError('expected a recipient did:key or { x25519PublicKey: 32 bytes }')
  }
  return { pub: recipient.x25519PublicKey, keyId: recipient.keyId ?? '' }
}

function derive(crypto: CryptoBackend, dh: Uint8Array, ePub: Uint8Array, rPub: Uint8Array, sPub?: Uint8Array, dh2?: Uint8Array): Uint8Array {
  if (sPub === undefined || dh2 === undefined) return crypto.hkdfSha256(dh, concatBytes(ePub, rPub), INFO_ANON, 32)
  return crypto.hkdfSha256(concatBytes(dh, dh2), concatBytes(ePub, rPub, sPub), INFO_AUTH, 32)
}

/** Fresh key material for one payload to `recipient` (for the codec's envelope). */
export function sealKey(recipient: SealRecipient, options: Omit<SealOptions, 'aad'> = {}): SealKeyMaterial {
  const crypto = getBackend(options.backend ?? options.sender?.backend)
  const { pub, keyId } = recipientKey(recipient)
  const ePair = crypto.x25519KeyPair()
  const ePub = ePair.publicKey
  const dh = checkedAgree(ePair, pub)
  if (options.sender === undefined) return { key: derive(crypto, dh, ePub, pub), ephemeralKey: ePub, keyId }
  const dh2 = options.sender.agree(pub)
  return {
    key: derive(crypto, dh, ePub, pub, options.sender.x25519PublicKey, dh2),
    ephemeralKey: ePub,
    keyId,
    senderKeyId: options.sender.x25519KeyId,
  }
}

function senderKey(senderKeyId: string, options: OpenOptions): Uint8Array {
  if (options.expectedSender !== undefined) {
    const base = senderKeyId.split('#')[0]
    if (options.expectedSender !== senderKeyId && options.expectedSender !== base) {
      throw new SealOpenError(`expected a payload from ${options.expectedSender}, got one from ${base ?? ''}`)
    }
  }
  if (options.senderX25519PublicKey !== undefined) return options.senderX25519PublicKey
  try {
    const doc = didKeyDocument(senderKeyId)
    const k = doc.keyAgreementKeys[0] as { id: string; publicKey: Uint8Array }
    if (senderKeyId.includes('#') && k.id !== senderKeyId) throw new SealOpenError('expected the sender key id to name the did:key agreement key')
    return k.publicKey
  } catch (err) {
    if (err instanceof SealOpenError) throw err
    throw new SealOpenError('could not derive the sender key agreement key (not a did:key; pass senderX25519PublicKey)', { cause: err })
  }
}

/** Recomputes the payload key on the recipient side. Throws SealOpenError. */
export function openKey(identity: Identity, ephemeralKey: Uint8Array, options: OpenOptions & { senderKeyId?: string } = {}): Uint8Array {
  const crypto = getBackend(options.backend ?? identity.backend)
  if (options.senderKeyId !== undefined && typeof options.senderKeyId !== 'string') throw new SealOpenError(`expected a string senderKeyId, got ${typeof options.senderKeyId}`)
  if (!(ephemeralKey instanceof Uint8Array) || ephemeralKey.length !== 32) throw new SealOpenError(`expected a 32-byte ephemeral key, got ${ephemeralKey instanceof Uint8Array ? ephemeralKey.length : typeof ephemeralKey}`)
  let dh: Uint8Array
  try { dh = identity.agree(ephemeralKey) } catch (err) { throw new SealOpenError('invalid ephemeral key', { cause: err }) }
  if (options.senderKeyId === undefined) {
    if (options.expectedSender !== undefined) throw new SealOpenError(`expected a payload authenticated by ${options.expectedSender}, got an anonymous one`)
    return derive(crypto, dh, ephemeralKey, identity.x25519PublicKey)
  }
  const sPub = senderKey(options.senderKeyId, options)
  let dh2: Uint8Array
  try { dh2 = identity.agree(sPub) } catch (err) { throw new SealOpenError('invalid sender key', { cause: err }) }
  return derive(crypto, dh, ephemeralKey, identity.x25519PublicKey, sPub, dh2)
}

/** Encrypts `plaintext` to `recipient` (anonymous, or authenticated when `sender` is given). */
export function seal(plaintext: Uint8Array, recipient: SealRecipient, options: SealOptions = {}): SealedPayload {
  if (!(plaintext instanceof Uint8Array)) throw new InvalidParametersError(`expected a Uint8Array plaintext, got ${typeof plaintext}`)
  const crypto = getBackend(options.backend ?? options.sender?.backend)
  const m = sealKey(recipient, options)
  const nonce = new Uint8Array(randomBytes(12))
  const ciphertext = crypto.aead(m.key).seal(nonce, plaintext, options.aad)
  m.key.fill(0)
  const out: SealedPayload = { ciphertext, nonce, ephemeralKey: m.ephemeralKey, keyId: m.keyId }
  if (m.senderKeyId !== undefined) out.senderKeyId = m.senderKeyId
  return out
}

/** Opens a sealed payload addressed to `identity`. Throws SealOpenError (a DecryptionError). */
export function open(identity: Identity, payload: SealedPayload, options: OpenOptions = {}): Uint8Array {
  const crypto = getBackend(options.backend ?? identity.backend)
  // the payload usually comes off the wire through a decoder: check every field's type here
  if (payload === null || typeof payload !== 'object') throw new SealOpenError(`expected a sealed payload object, got ${payload === null ? 'null' : typeof payload}`)
  if (typeof payload.keyId !== 'string') throw new SealOpenError(`expected a string keyId, got ${typeof payload.keyId}`)
  if (payload.senderKeyId !== undefined && typeof payload.senderKeyId !== 'string') throw new SealOpenError(`expected a string senderKeyId, got ${typeof payload.senderKeyId}`)
  if (!(payload.ciphertext instanceof Uint8Array)) throw new SealOpenError(`expected a Uint8Array ciphertext, got ${typeof payload.ciphertext}`)
  if (payload.keyId !== '' && payload.keyId !== identity.x25519KeyId) {
    throw new SealOpenError(`expected a payload for ${identity.x25519KeyId}, got one for ${String(payload.keyId).slice(0, 100)}`)
  }
  if (!(payload.nonce instanceof Uint8Array) || payload.nonce.length !== 12) throw new SealOpenError('expected a 12-byte nonce')
  const key = openKey(identity, payload.ephemeralKey, { ...options, ...(payload.senderKeyId === undefined ? {} : { senderKeyId: payload.senderKeyId }) })
  try {
    return crypto.aead(key).open(payload.nonce, payload.ciphertext, options.aad)
  } catch (err) {
    throw new SealOpenError('the sealed payload does not open with this identity (wrong recipient, sender or tampered bytes)', { cause: err })
  } finally {
    key.fill(0)
  }
}

/** Looks up a recipient's X25519 key agreement key through any DidResolver (for non-did:key DIDs). */
export async function resolveSealRecipient(did: string, resolver: DidResolver, options: AbortOptions = {}): Promise<{ x25519PublicKey: Uint8Array; keyId: string }> {
  const doc = await resolver.resolveDid(did, options)
  const k = doc.keyAgreementKeys[0]
  if (k === undefined) throw new InvalidDidError(`expected ${did.slice(0, 64)} to have a key agreement key, got none`)
  return { x25519PublicKey: k.publicKey, keyId: k.id }
}

