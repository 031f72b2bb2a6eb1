/**
 * @kos-mesh/klp-codec: the Kind Link Protocol wire format. klp:// addresses, DAG-CBOR bodies,
 * content-addressed message ids, signed messages as standard COSE_Sign1 (RFC 9052), payload
 * compression/encryption envelopes and framing. Pure functions; no I/O, no transports.
 *
 * @packageDocumentation
 */
export { parseAddress, formatAddress, isValidAddress, toAddress, MAX_ADDRESS_LENGTH, MAX_AUTHORITY_LENGTH } from './address.js'
export { encodeValue } from './cbor-encode.js'
export { decodeValue } from './cbor-decode.js'
export { createMessage } from './message-create.js'
export type { CreateMessageInit } from './message-create.js'
export { computeMessageId, messageIdFromBody, parseMessageId } from './message-id.js'
export { encodeBody } from './message-body-encode.js'
export { signingInput, getSigningInput, signMessage } from './message-sign.js'
export { encodeMessage } from './message-envelope.js'
export { decodeMessage } from './message-decode.js'
export { verifyMessage, checkExpiry, expiresAt } from './message-verify.js'
export type { ExpiryOptions } from './message-verify.js'
export {
  KLP_VERSION,
  DEFAULT_TTL,
  DEFAULT_CLOCK_SKEW_MS,
  SIGNING_CONTEXT,
  SIGNATURE_LENGTH,
  COSE_SIGN1_TAG,
  COSE_ALG_EDDSA,
  COSE_HEADER_ALG,
  COSE_HEADER_KID,
  MESSAGE_ID_CODEC,
  MESSAGE_ID_HASH,
  MESSAGE_ID_DIGEST_LENGTH,
  CONTENT_TYPES,
} from './message-schema.js'
export {
  encodeCoseSign1,
  decodeCoseSign1,
  signCoseSign1,
  coseSign1SigningInput,
  coseSign1Protected,
  InvalidCoseSign1Error,
  CoseSign1TooLargeError,
  CoseSign1SignerError,
} from './cose-sign1.js'
export type { CoseSign1Parts, SignCoseSign1Options, DecodeCoseSign1Options, DecodedCoseSign1 } from './cose-sign1.js'
export { encodeFrame, decodeFrame, FrameDecoder, FrameKind, FRAME_MAGIC, FRAME_VERSION, FRAME_HEADER_LENGTH } from './frame.js'
export type { Frame, FrameOptions } from './frame.js'
export { DEFAULT_LIMITS, MAX_DEPTH_CEILING, resolveLimits } from './limits.js'
export type { CodecLimits } from './limits.js'
export * from './errors.js'
export {
  encodePayloadData,
  decodePayloadData,
  compressPayload,
  decompressPayload,
  encryptPayload,
  decryptPayload,
  sealPayload,
  openPayload,
  gunzipBounded,
  mediaType,
  NONCE_LENGTH,
  KEY_LENGTH,
  TAG_LENGTH,
  PAYLOAD_AAD_CONTEXT,
} from './payload.js'
export type { CompressOptions, DecompressOptions, EncryptOptions } from './payload.js'
