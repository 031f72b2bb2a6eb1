/**
 * Errors of @kos-mesh/did-security. One class per condition, each with a stable `name` and `code`.
 * They extend the shared classes of @kos-mesh/interface, so callers can also catch the general kind
 * (a `HandshakeTimeoutError` is a `TimeoutError`, a `RecordOutOfOrderError` is a `ReplayError`...).
 */
import {
  DecodeError,
  DecryptionError,
  InvalidParametersError,
  KosMeshError,
  LimitExceededError,
  ReplayError,
  TimeoutError,
  UnknownKeyError,
} from '@kos-mesh/interface'

/** A string is not a well-formed DID / did:key, or names an unsupported key type. */
export class InvalidDidError extends InvalidParametersError {
  static override readonly code: string = 'ERR_INVALID_DID'
  override name = 'InvalidDidError'
  override readonly code: string = 'ERR_INVALID_DID'
}

/**
 * A did:key names a key that is not a valid Ed25519 public key: not a point on the curve (its y has
 * no x), a non-canonical encoding, or a point of small order. The did:key method requires such a DID
 * to be rejected as an invalid public key (`invalidPublicKey`). An `InvalidDidError` too.
 */
export class InvalidPublicKeyError extends InvalidDidError {
  static override readonly code: string = 'ERR_INVALID_PUBLIC_KEY'
  override name = 'InvalidPublicKeyError'
  override readonly code: string = 'ERR_INVALID_PUBLIC_KEY'
}

/** No resolver is registered for the DID method. */
export class UnsupportedDidMethodError extends UnknownKeyError {
  static override readonly code: string = 'ERR_UNSUPPORTED_DID_METHOD'
  override name = 'UnsupportedDidMethodError'
  override readonly code: string = 'ERR_UNSUPPORTED_DID_METHOD'
}

/** A DID resolver returned an error or a document without the requested key. */
export class DidResolutionError extends UnknownKeyError {
  static override readonly code: string = 'ERR_DID_RESOLUTION'
  override name = 'DidResolutionError'
  override readonly code: string = 'ERR_DID_RESOLUTION'
}

/** A raw key has the wrong length or is not a valid point. */
export class InvalidKeyError extends InvalidParametersError {
  static override readonly code: string = 'ERR_INVALID_KEY'
  override name = 'InvalidKeyError'
  override readonly code: string = 'ERR_INVALID_KEY'
}

/** X25519 produced the all-zero shared secret (the peer sent a small-order point). */
export class ZeroSharedSecretError extends KosMeshError {
  static override readonly code: string = 'ERR_ZERO_SHARED_SECRET'
  override name = 'ZeroSharedSecretError'
  override readonly code: string = 'ERR_ZERO_SHARED_SECRET'
}

/** An AES-256-GCM nonce is not exactly 12 bytes (or a key is not 32 bytes). */
export class InvalidNonceError extends InvalidParametersError {
  static override readonly code: string = 'ERR_INVALID_NONCE'
  override name = 'InvalidNonceError'
  override readonly code: string = 'ERR_INVALID_NONCE'
}

/** The handshake failed: malformed message, bad signature, wrong protocol version. */
export class HandshakeError extends KosMeshError {
  static override readonly code: string = 'ERR_HANDSHAKE'
  override name = 'HandshakeError'
  override readonly code: string = 'ERR_HANDSHAKE'
}

/** The handshake did not complete within `timeoutMs`. */
export class HandshakeTimeoutError extends TimeoutError {
  static override readonly code: string = 'ERR_HANDSHAKE_TIMEOUT'
  override name = 'HandshakeTimeoutError'
  override readonly code: string = 'ERR_HANDSHAKE_TIMEOUT'
}

/** The session passed its lifetime (24 h by default) or used up its rekey budget; handshake again. */
export class SessionExpiredError extends KosMeshError {
  static override readonly code: string = 'ERR_SESSION_EXPIRED'
  override name = 'SessionExpiredError'
  override readonly code: string = 'ERR_SESSION_EXPIRED'
}

/** A record arrived ahead of the next expected one (a gap: a dropped or reordered record). */
export class RecordOutOfOrderError extends ReplayError {
  static override readonly code: string = 'ERR_RECORD_OUT_OF_ORDER'
  override name = 'RecordOutOfOrderError'
  override readonly code: string = 'ERR_RECORD_OUT_OF_ORDER'
}

/** A record or handshake message is shorter than its fixed header + tag. */
export class TruncatedRecordError extends DecodeError {
  static override readonly code: string = 'ERR_TRUNCATED_RECORD'
  override name = 'TruncatedRecordError'
  override readonly code: string = 'ERR_TRUNCATED_RECORD'
}

/** A record (or its plaintext) is larger than `maxRecordSize`. */
export class RecordTooLargeError extends LimitExceededError {
  static override readonly code: string = 'ERR_RECORD_TOO_LARGE'
  override name = 'RecordTooLargeError'
  override readonly code: string = 'ERR_RECORD_TOO_LARGE'
}

/** A sealed payload could not be opened (wrong recipient, wrong sender, tampered bytes). */
export class SealOpenError extends DecryptionError {
  static override readonly code: string = 'ERR_SEAL_OPEN'
  override name = 'SealOpenError'
  override readonly code: string = 'ERR_SEAL_OPEN'
}

/** The keystore file is not a keystore, has an unknown version, or its header is damaged. */
export class KeystoreFormatError extends DecodeError {
  static override readonly code: string = 'ERR_KEYSTORE_FORMAT'
  override name = 'KeystoreFormatError'
  override readonly code: string = 'ERR_KEYSTORE_FORMAT'
}

/** The keystore could not be decrypted: wrong passphrase, or damaged ciphertext (GCM cannot tell them apart). */
export class KeystorePassphraseError extends DecryptionError {
  static override readonly code: string = 'ERR_KEYSTORE_PASSPHRASE'
  override name = 'KeystorePassphraseError'
  override readonly code: string = 'ERR_KEYSTORE_PASSPHRASE'
}

/** The keystore file does not exist (ENOENT): e.g. first start, before an identity was saved. */
export class KeystoreNotFoundError extends KosMeshError {
  static override readonly code: string = 'ERR_KEYSTORE_NOT_FOUND'
  override name = 'KeystoreNotFoundError'
  override readonly code: string = 'ERR_KEYSTORE_NOT_FOUND'
}
