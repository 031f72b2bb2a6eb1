/**
 * Sealed KLP payloads: the codec's encryption envelope (AES-256-GCM, caller key) keyed by a
 * sealed-box key agreement to the recipient's DID.
 *
 * `sealPayloadTo` derives a fresh payload key with `sealKey` (ephemeral X25519 to the recipient's
 * key agreement key, plus the sender's static key in the authenticated variant) and encrypts with
 * klp-codec's `encryptPayload`, recording `key_id` (the recipient's key agreement key id) and
 * `ephemeral_key` in `EncryptionInfo`; both are bound into the AEAD's associated data.
 *
 * The authenticated variant does not carry the sender on the wire: the recipient names who it
 * expects (normally the DID that signed the enclosing KLP message), so a payload can only open as
 * authenticated by the identity the message signature already proved.
 */
import type { KLPPayload } from '@kos-mesh/interface'
import { compressPayload, decompressPayload, decryptPayload, encryptPayload } from '@kos-mesh/klp-codec'
import type { CodecLimits } from '@kos-mesh/klp-codec'
import type { BackendName } from './backend.js'
import { keyIdFromDid } from './did-key.js'
import { SealOpenError } from './errors.js'
import type { Identity } from './identity.js'
import { didKeyDocument } from './did-key.js'
import { openKey, sealKey, type SealRecipient } from './sealed.js'

/** Options of `sealPayloadTo`. */
export interface SealPayloadOptions {
  /** Sender identity for the authenticated variant. Omit for an anonymous payload. */
  sender?: Identity
  /** gzip the serialized data before encryption. Default false. */
  compress?: boolean
  backend?: BackendName
  limits?: Partial<CodecLimits>
}

/** Options of `openSealedPayload`. */
export interface OpenSealedPayloadOptions {
  /**
   * The DID (or key id) that must have sealed the payload (authenticated variant), normally the
   * signer of the enclosing message. Omit to open an anonymous payload.
   */
  sender?: string
  /** Cap on the decompressed size, bytes (codec default when omitted). */
  maxDecompressedBytes?: number
  backend?: BackendName
  limits?: Partial<CodecLimits>
}

/** Encrypts a plain KLP payload to `recipient` (a did:key, or an explicit X25519 key). */
export function sealPayloadTo(payload: KLPPayload, recipient: SealRecipient, options: SealPayloadOptions = {}): KLPPayload {
  const material = sealKey(recipient, { sender: options.sender, backend: options.backend })
  try {
    const plain = options.compress === true ? compressPayload(payload) : payload
    return encryptPayload(plain, material.key, {
      ...(material.keyId !== '' ? { keyId: material.keyId } : {}),
      ephemeralKey: material.ephemeralKey,
      ...(options.limits !== undefined ? { limits: options.limits } : {}),
    })
  } finally {
    material.key.fill(0)
  }
}

/** Opens a payload sealed to `identity`; returns the plain (decompressed, deserialized) payload. */
export function openSealedPayload(identity: Identity, payload: KLPPayload, options: OpenSealedPayloadOptions = {}): KLPPayload {
  const e = payload?.encryption
  if (e?.enabled !== true || !(e.ephemeral_key instanceof Uint8Array)) {
    throw new SealOpenError('expected a sealed payload (encryption enabled with an ephemeral_key)')
  }
  if (e.key_id !== undefined && e.key_id !== identity.x25519KeyId) {
    throw new SealOpenError(`expected a payload sealed to ${identity.x25519KeyId}, got one for ${e.key_id}`)
  }
  let senderKeyId: string | undefined
  if (options.sender !== undefined) {
    const did = options.sender.split('#')[0] ?? options.sender
    const agreement = didKeyDocument(did).keyAgreementKeys[0]
    senderKeyId = agreement?.id ?? keyIdFromDid(did)
  }
  const key = openKey(identity, e.ephemeral_key, {
    ...(senderKeyId !== undefined ? { senderKeyId, expectedSender: senderKeyId } : {}),
    ...(options.backend !== undefined ? { backend: options.backend } : {}),
  })
  try {
    const opened = decryptPayload(payload, key, options.limits !== undefined ? { limits: options.limits } : undefined)
    if (opened.compression.enabled) {
      return decompressPayload(opened, options.maxDecompressedBytes !== undefined ? { maxDecompressedSize: options.maxDecompressedBytes } : undefined)
    }
    return opened
  } catch (err) {
    if (!(err instanceof Error) || err.name !== 'AuthenticationFailedError') throw err
    throw new SealOpenError('could not open the sealed payload (wrong recipient, wrong sender or tampered data)', { cause: err })
  } finally {
    key.fill(0)
  }
}
