/**
 * Errors of @kos-mesh/klp-codec. One class per condition, each with a stable `name` and `code`
 * (assert on those, never on message text). Every class extends a class of @kos-mesh/interface,
 * so callers can also catch by the broader kind (`DecodeError`, `LimitExceededError`, ...).
 *
 * Conditions that the interface package already names exactly are thrown with the interface
 * class itself: `InvalidAddressError` (parseAddress/formatAddress), `InvalidSignatureError`
 * (verifyMessage), `MessageExpiredError` (checkExpiry), `InvalidParametersError` (bad arguments).
 */
import { DecodeError, DecryptionError, InvalidParametersError, LimitExceededError } from '@kos-mesh/interface'

/** Bytes are not well-formed CBOR, or use CBOR features outside the KLP data model (tags, undefined, NaN...). */
export class MalformedCborError extends DecodeError {
  static override readonly code: string = 'ERR_MALFORMED_CBOR'
  override name = 'MalformedCborError'
  override readonly code: string = 'ERR_MALFORMED_CBOR'
}

/** Well-formed CBOR that is not in canonical form (non-minimal heads, indefinite lengths, unsorted keys, short floats). */
export class NonCanonicalCborError extends DecodeError {
  static override readonly code: string = 'ERR_NON_CANONICAL_CBOR'
  override name = 'NonCanonicalCborError'
  override readonly code: string = 'ERR_NON_CANONICAL_CBOR'
}

/** A CBOR map holds the same key twice. */
export class DuplicateKeyError extends DecodeError {
  static override readonly code: string = 'ERR_DUPLICATE_KEY'
  override name = 'DuplicateKeyError'
  override readonly code: string = 'ERR_DUPLICATE_KEY'
}

/** Bytes remain after the single item (or frame) that was expected. */
export class TrailingBytesError extends DecodeError {
  static override readonly code: string = 'ERR_TRAILING_BYTES'
  override name = 'TrailingBytesError'
  override readonly code: string = 'ERR_TRAILING_BYTES'
}

/** A message map holds a field the schema does not define. */
export class UnknownFieldError extends DecodeError {
  static override readonly code: string = 'ERR_UNKNOWN_FIELD'
  override name = 'UnknownFieldError'
  override readonly code: string = 'ERR_UNKNOWN_FIELD'
}

/** A required message field is absent. */
export class MissingFieldError extends DecodeError {
  static override readonly code: string = 'ERR_MISSING_FIELD'
  override name = 'MissingFieldError'
  override readonly code: string = 'ERR_MISSING_FIELD'
}

/** A message field has the wrong type or an out-of-range value ("expected X, got Y"). */
export class InvalidFieldError extends DecodeError {
  static override readonly code: string = 'ERR_INVALID_FIELD'
  override name = 'InvalidFieldError'
  override readonly code: string = 'ERR_INVALID_FIELD'
}

/** A frame header is invalid: bad magic, unsupported version, non-zero reserved flags. */
export class InvalidFrameError extends DecodeError {
  static override readonly code: string = 'ERR_INVALID_FRAME'
  override name = 'InvalidFrameError'
  override readonly code: string = 'ERR_INVALID_FRAME'
}

/** Input ended in the middle of a frame or CBOR item. */
export class TruncatedInputError extends DecodeError {
  static override readonly code: string = 'ERR_TRUNCATED_INPUT'
  override name = 'TruncatedInputError'
  override readonly code: string = 'ERR_TRUNCATED_INPUT'
}

/** A frame is larger than `maxFrameSize`. */
export class FrameTooLargeError extends LimitExceededError {
  static override readonly code: string = 'ERR_FRAME_TOO_LARGE'
  override name = 'FrameTooLargeError'
  override readonly code: string = 'ERR_FRAME_TOO_LARGE'
}

/** An encoded message is larger than `maxMessageSize`. */
export class MessageTooLargeError extends LimitExceededError {
  static override readonly code: string = 'ERR_MESSAGE_TOO_LARGE'
  override name = 'MessageTooLargeError'
  override readonly code: string = 'ERR_MESSAGE_TOO_LARGE'
}

/** Arrays/maps are nested deeper than `maxDepth`. */
export class NestingTooDeepError extends LimitExceededError {
  static override readonly code: string = 'ERR_NESTING_TOO_DEEP'
  override name = 'NestingTooDeepError'
  override readonly code: string = 'ERR_NESTING_TOO_DEEP'
}

/** More array elements + map entries than `maxItems`. */
export class TooManyItemsError extends LimitExceededError {
  static override readonly code: string = 'ERR_TOO_MANY_ITEMS'
  override name = 'TooManyItemsError'
  override readonly code: string = 'ERR_TOO_MANY_ITEMS'
}

/** A text string longer than `maxStringLength` bytes, or a byte string longer than `maxBytesLength`. */
export class StringTooLongError extends LimitExceededError {
  static override readonly code: string = 'ERR_STRING_TOO_LONG'
  override name = 'StringTooLongError'
  override readonly code: string = 'ERR_STRING_TOO_LONG'
}

/** Decompressed payload would exceed `maxDecompressedSize` (zip-bomb guard). */
export class DecompressedTooLargeError extends LimitExceededError {
  static override readonly code: string = 'ERR_DECOMPRESSED_TOO_LARGE'
  override name = 'DecompressedTooLargeError'
  override readonly code: string = 'ERR_DECOMPRESSED_TOO_LARGE'
}

/** Compressed payload bytes are not valid gzip. */
export class DecompressionError extends DecodeError {
  static override readonly code: string = 'ERR_DECOMPRESSION'
  override name = 'DecompressionError'
  override readonly code: string = 'ERR_DECOMPRESSION'
}

/** A payload's content type is not one the codec knows how to (de)serialize. */
export class UnsupportedContentTypeError extends DecodeError {
  static override readonly code: string = 'ERR_UNSUPPORTED_CONTENT_TYPE'
  override name = 'UnsupportedContentTypeError'
  override readonly code: string = 'ERR_UNSUPPORTED_CONTENT_TYPE'
}

/** An encryption envelope carries a nonce that is not exactly 12 bytes, or an unknown algorithm. */
export class InvalidEnvelopeError extends DecryptionError {
  static override readonly code: string = 'ERR_INVALID_ENVELOPE'
  override name = 'InvalidEnvelopeError'
  override readonly code: string = 'ERR_INVALID_ENVELOPE'
}

/** AES-256-GCM authentication failed: wrong key, tampered ciphertext, tag or associated data. */
export class AuthenticationFailedError extends DecryptionError {
  static override readonly code: string = 'ERR_AUTHENTICATION_FAILED'
  override name = 'AuthenticationFailedError'
  override readonly code: string = 'ERR_AUTHENTICATION_FAILED'
}

/** A key passed to encryptPayload/decryptPayload is not 32 bytes. */
export class InvalidKeyError extends InvalidParametersError {
  static override readonly code: string = 'ERR_INVALID_KEY'
  override name = 'InvalidKeyError'
  override readonly code: string = 'ERR_INVALID_KEY'
}

/** The computed message id differs from the one carried by an in-memory message. */
export class MessageIdMismatchError extends DecodeError {
  static override readonly code: string = 'ERR_MESSAGE_ID_MISMATCH'
  override name = 'MessageIdMismatchError'
  override readonly code: string = 'ERR_MESSAGE_ID_MISMATCH'
}

/** Payload bytes do not deserialize under their content type (bad UTF-8, bad JSON, wrong shape). */
export class InvalidPayloadError extends DecodeError {
  static override readonly code: string = 'ERR_INVALID_PAYLOAD'
  override name = 'InvalidPayloadError'
  override readonly code: string = 'ERR_INVALID_PAYLOAD'
}
