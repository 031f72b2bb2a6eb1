/**
 * KLP messages: construction, the DAG-CBOR body, content-addressed ids, the signed envelope (a
 * standard COSE_Sign1, RFC 9052), strict decoding, signature verification and expiry.
 *
 * Wire form of a signed message (see docs/PROTOCOL.md):
 *   message       = COSE_Sign1_Tagged = #6.18([ protected: bstr, unprotected: {}, payload: bstr, signature: bstr .size 64 ])
 *   protected     = bstr .cbor { 1 (alg): -8 (EdDSA), 4 (kid): bstr (UTF-8 of the signer key id) }
 *   payload       = body = DAG-CBOR map of the unsigned message, without message_id
 *   message_id    = CIDv1(dag-cbor, sha2-256 truncated to 128 bits of body), base32
 *   signing input = Sig_structure = [ "Signature1", protected, external_aad: h'', payload ]
 * The body travels as a byte string, so a verifier checks the signature over the bytes it
 * received, without re-encoding; any COSE library verifies it with the signer's Ed25519 key.
 *
 * This module holds the message schema the message modules share: protocol constants, field
 * limits and patterns, the pre-encoded body keys, the shared frozen defaults and the field
 * validators. The rest lives in message-create.ts (createMessage), message-body-encode.ts (the
 * canonical body), message-id.ts (message ids), message-sign.ts (signing input, signMessage),
 * message-envelope.ts (encodeMessage), message-body-decode.ts (body field readers and the
 * schema-directed fast path), message-decode.ts (decodeMessage) and message-verify.ts
 * (verifyMessage, expiry).
 */
import { describeValue, InvalidParametersError, KLP_MESSAGE_TYPES, MessagePriority, VerificationLevel } from '@kos-mesh/interface'
import type { KLPMessageType, RoutingHint, TrustRequirements } from '@kos-mesh/interface'
import { Writer } from './cbor-encode.js'
import { InvalidFieldError } from './errors.js'

/** Protocol version written by createMessage. */
export const KLP_VERSION = '1.0'
/** Default time to live, seconds. */
export const DEFAULT_TTL = 300
/** Default clock-skew window for checkExpiry, milliseconds. */
export const DEFAULT_CLOCK_SKEW_MS = 30_000
/** Context string of the signing input: the COSE Sig_structure of a COSE_Sign1 (RFC 9052 §4.4). */
export const SIGNING_CONTEXT = 'Signature1'
/** CBOR tag of a COSE_Sign1 (RFC 9052 §4.2): every signed message starts with its head, `d2`. */
export const COSE_SIGN1_TAG = 18
/** COSE algorithm of the signature: EdDSA (RFC 9053 §2.2), here always Ed25519. */
export const COSE_ALG_EDDSA = -8
/** COSE header labels used in the protected header (RFC 9052 §3.1). */
export const COSE_HEADER_ALG = 1
/** COSE header label of the key id (`kid`): the signer's key id. */
export const COSE_HEADER_KID = 4
/** Multicodec of the message id CID (dag-cbor: the body is valid DAG-CBOR). */
export const MESSAGE_ID_CODEC = 0x71
/** Multihash code of the message id digest (sha2-256, truncated to 16 bytes). */
export const MESSAGE_ID_HASH = 0x12
/** Bytes of digest kept in a message id (128 bits). */
export const MESSAGE_ID_DIGEST_LENGTH = 16
/** Ed25519 signature length. */
export const SIGNATURE_LENGTH = 64

/** Content types of message payloads the codec knows. */
export const CONTENT_TYPES = {
  CBOR: 'application/cbor',
  JSON: 'application/json',
  TEXT: 'text/plain',
  OCTET_STREAM: 'application/octet-stream',
} as const

export const MAX_VERSION_LENGTH = 16
export const MAX_SIGNER_LENGTH = 1024
export const MAX_CONTENT_TYPE_LENGTH = 127
export const MAX_CORRELATION_ID_LENGTH = 256
export const MAX_KEY_ID_LENGTH = 1024
export const MAX_EPHEMERAL_KEY_LENGTH = 256
export const MAX_ROUTING_HINTS = 32
export const MAX_HINT_KIND_LENGTH = 64
export const MAX_HINT_VALUE_LENGTH = 1024
export const MAX_U32 = 0xffff_ffff
export const NONCE_LENGTH = 12

export const VERSION_RE = /^[0-9]{1,4}(?:\.[0-9]{1,4}){0,3}$/
export const CONTENT_TYPE_RE = /^[\x21-\x7e][\x20-\x7e]*$/
export const PRIORITIES = new Set<number>(Object.values(MessagePriority))
export const LEVELS = new Set<string>(Object.values(VerificationLevel))
export const TYPES = new Set<string>(KLP_MESSAGE_TYPES)

// Pre-encoded map keys (text-string head + UTF-8). The body's maps have a fixed key set, so their
// canonical order is fixed too: the writers below emit these in that order, no runtime sorting.
const KEY_NAMES = [
  'type', 'source', 'target', 'payload', 'version', 'metadata', 'timestamp',
  'data', 'encryption', 'compression', 'content_type',
  'nonce', 'key_id', 'enabled', 'algorithm', 'ephemeral_key',
  'ttl', 'priority', 'routing_hints', 'correlation_id', 'trust_requirements',
  'verification_level', 'minimum_trust_score', 'required_endorsements',
  'kind', 'value',
] as const
export const K = Object.freeze(Object.fromEntries(
  KEY_NAMES.map((k) => {
    const w = new Writer(32)
    w.text(k)
    return [k, w.finish()]
  }),
)) as { readonly [P in (typeof KEY_NAMES)[number]]: Uint8Array }

const constant = (fn: (w: Writer) => void): Uint8Array => {
  const w = new Writer(64)
  fn(w)
  return w.finish()
}
/** `{enabled: false}`, the common encryption / compression map. */
export const DISABLED = constant((w) => { w.head(5, 1); w.raw(K.enabled); w.bool(false) })

/** The shared frozen `{ enabled: false }` of created, signed and decoded messages. */
export const DISABLED_INFO: { enabled: false } = Object.freeze({ enabled: false })
export const NO_HINTS: RoutingHint[] = Object.freeze([]) as unknown as RoutingHint[]
export const DEFAULT_TRUST: TrustRequirements = Object.freeze({
  minimum_trust_score: 0, required_endorsements: 0, verification_level: VerificationLevel.NONE,
})

// ------------------------------------------------------------------ validation helpers

export type Fail = (msg: string) => never
export const failParam: Fail = (msg) => { throw new InvalidParametersError(msg) }
export const failField: Fail = (msg) => { throw new InvalidFieldError(msg) }


/** The last string each pattern accepted: versions and content types repeat, so skip the regex. */
const lastMatch = new Map<RegExp, string>()

export function checkString(v: unknown, name: string, min: number, max: number, fail: Fail, re?: RegExp): string {
  if (typeof v !== 'string') fail(`expected ${name} to be a string, got ${describeValue(v)}`)
  if (v.length < min || v.length > max) fail(`expected ${name} of ${min}..${max} chars, got ${v.length}`)
  if (re !== undefined && lastMatch.get(re) !== v) {
    if (!re.test(v)) fail(`expected ${name} to match ${String(re)}, got ${describeValue(v)}`)
    lastMatch.set(re, v)
  }
  return v
}

export function checkUint(v: unknown, name: string, max: number, fail: Fail): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max || Object.is(v, -0)) {
    fail(`expected ${name} to be an integer in 0..${max}, got ${describeValue(v)}`)
  }
  return v
}

export function checkBytes(v: unknown, name: string, min: number, max: number, fail: Fail): Uint8Array {
  if (!(v instanceof Uint8Array)) fail(`expected ${name} to be a Uint8Array, got ${describeValue(v)}`)
  if (v.length < min || v.length > max) {
    fail(min === max ? `expected ${name} of exactly ${min} bytes, got ${v.length}` : `expected ${name} of ${min}..${max} bytes, got ${v.length}`)
  }
  return v
}

export function checkBool(v: unknown, name: string, fail: Fail): boolean {
  if (typeof v !== 'boolean') fail(`expected ${name} to be a boolean, got ${describeValue(v)}`)
  return v
}

export function checkType(v: unknown, fail: Fail): KLPMessageType {
  if (typeof v !== 'string' || !TYPES.has(v)) fail(`expected type to be one of ${KLP_MESSAGE_TYPES.join(', ')}, got ${describeValue(v)}`)
  return v as KLPMessageType
}

export function checkPriority(v: unknown, fail: Fail): MessagePriority {
  if (typeof v !== 'number' || !PRIORITIES.has(v)) fail(`expected priority to be one of 1, 5, 8, 10, got ${describeValue(v)}`)
  return v as MessagePriority
}

export function checkLevel(v: unknown, fail: Fail): VerificationLevel {
  if (typeof v !== 'string' || !LEVELS.has(v)) fail(`expected verification_level to be one of ${[...LEVELS].join(', ')}, got ${describeValue(v)}`)
  return v as VerificationLevel
}

export function checkScore(v: unknown, fail: Fail): number {
  if (typeof v !== 'number' || !(v >= 0 && v <= 10) || Object.is(v, -0)) fail(`expected minimum_trust_score in 0..10, got ${describeValue(v)}`)
  return v
}
