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
 */
import * as nodeCrypto from 'node:crypto'
import {
  describeValue,
  systemClock,
  InvalidParametersError,
  InvalidSignatureError,
  KLP_MESSAGE_TYPES,
  MessageExpiredError,
  MessagePriority,
  VerificationLevel,
  throwIfAborted,
} from '@kos-mesh/interface'
import type {
  AbortOptions,
  CompressionInfo,
  EncryptionInfo,
  KLPAddress,
  KLPMessage,
  KLPMessageType,
  KLPPayload,
  KLPValue,
  RoutingHint,
  SignatureVerifier,
  Signer,
  TrustRequirements,
  UnsignedKLPMessage,
} from '@kos-mesh/interface'
import { CID } from 'multiformats/cid'
import { MAX_ADDRESS_LENGTH, formatAddress, parseAddress } from './address.js'
import { allocBytes } from './alloc.js'
import { Reader, Writer, checkWriterItems, compareBytes, limitWriter, useWriter, withWriter, writeValue } from './cbor.js'
import {
  DuplicateKeyError,
  InvalidFieldError,
  MessageIdMismatchError,
  MessageTooLargeError,
  MissingFieldError,
  NonCanonicalCborError,
  TrailingBytesError,
  UnknownFieldError,
} from './errors.js'
import { DEFAULT_LIMITS, resolveLimits } from './limits.js'
import { FRAME_HEADER_LENGTH, reserveFrameHeader } from './frame.js'
import type { CodecLimits } from './limits.js'

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

const MAX_VERSION_LENGTH = 16
const MAX_SIGNER_LENGTH = 1024
const MAX_CONTENT_TYPE_LENGTH = 127
const MAX_CORRELATION_ID_LENGTH = 256
const MAX_KEY_ID_LENGTH = 1024
const MAX_EPHEMERAL_KEY_LENGTH = 256
const MAX_ROUTING_HINTS = 32
const MAX_HINT_KIND_LENGTH = 64
const MAX_HINT_VALUE_LENGTH = 1024
const MAX_U32 = 0xffff_ffff
const NONCE_LENGTH = 12

const VERSION_RE = /^[0-9]{1,4}(?:\.[0-9]{1,4}){0,3}$/
const CONTENT_TYPE_RE = /^[\x21-\x7e][\x20-\x7e]*$/
const PRIORITIES = new Set<number>(Object.values(MessagePriority))
const LEVELS = new Set<string>(Object.values(VerificationLevel))
const TYPES = new Set<string>(KLP_MESSAGE_TYPES)

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
const K = Object.freeze(Object.fromEntries(
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
const DISABLED = constant((w) => { w.head(5, 1); w.raw(K.enabled); w.bool(false) })

// ------------------------------------------------------------------ validation helpers

type Fail = (msg: string) => never
const failParam: Fail = (msg) => { throw new InvalidParametersError(msg) }
const failField: Fail = (msg) => { throw new InvalidFieldError(msg) }


/** The last string each pattern accepted: versions and content types repeat, so skip the regex. */
const lastMatch = new Map<RegExp, string>()

function checkString(v: unknown, name: string, min: number, max: number, fail: Fail, re?: RegExp): string {
  if (typeof v !== 'string') fail(`expected ${name} to be a string, got ${describeValue(v)}`)
  if (v.length < min || v.length > max) fail(`expected ${name} of ${min}..${max} chars, got ${v.length}`)
  if (re !== undefined && lastMatch.get(re) !== v) {
    if (!re.test(v)) fail(`expected ${name} to match ${String(re)}, got ${describeValue(v)}`)
    lastMatch.set(re, v)
  }
  return v
}

function checkUint(v: unknown, name: string, max: number, fail: Fail): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max || Object.is(v, -0)) {
    fail(`expected ${name} to be an integer in 0..${max}, got ${describeValue(v)}`)
  }
  return v
}

function checkBytes(v: unknown, name: string, min: number, max: number, fail: Fail): Uint8Array {
  if (!(v instanceof Uint8Array)) fail(`expected ${name} to be a Uint8Array, got ${describeValue(v)}`)
  if (v.length < min || v.length > max) {
    fail(min === max ? `expected ${name} of exactly ${min} bytes, got ${v.length}` : `expected ${name} of ${min}..${max} bytes, got ${v.length}`)
  }
  return v
}

function checkBool(v: unknown, name: string, fail: Fail): boolean {
  if (typeof v !== 'boolean') fail(`expected ${name} to be a boolean, got ${describeValue(v)}`)
  return v
}

function checkType(v: unknown, fail: Fail): KLPMessageType {
  if (typeof v !== 'string' || !TYPES.has(v)) fail(`expected type to be one of ${KLP_MESSAGE_TYPES.join(', ')}, got ${describeValue(v)}`)
  return v as KLPMessageType
}

function checkPriority(v: unknown, fail: Fail): MessagePriority {
  if (typeof v !== 'number' || !PRIORITIES.has(v)) fail(`expected priority to be one of 1, 5, 8, 10, got ${describeValue(v)}`)
  return v as MessagePriority
}

function checkLevel(v: unknown, fail: Fail): VerificationLevel {
  if (typeof v !== 'string' || !LEVELS.has(v)) fail(`expected verification_level to be one of ${[...LEVELS].join(', ')}, got ${describeValue(v)}`)
  return v as VerificationLevel
}

function checkScore(v: unknown, fail: Fail): number {
  if (typeof v !== 'number' || !(v >= 0 && v <= 10) || Object.is(v, -0)) fail(`expected minimum_trust_score in 0..10, got ${describeValue(v)}`)
  return v
}

// ------------------------------------------------------------------ createMessage

/**
 * What `createMessage` takes: the message's fields, with defaults for the optional ones; it fills in the
 * id, timestamp and version.
 */
export interface CreateMessageInit {
  type: KLPMessageType
  source: KLPAddress | string
  target: KLPAddress | string
  data: KLPValue
  /** Default `application/cbor`. */
  content_type?: string
  /** Default `MessagePriority.NORMAL` (5). */
  priority?: MessagePriority
  /** Seconds; default 300. */
  ttl?: number
  correlation_id?: string
  /** Default `[]`. */
  routing_hints?: RoutingHint[]
  /** Default `{ minimum_trust_score: 0, required_endorsements: 0, verification_level: 'none' }`. */
  trust_requirements?: TrustRequirements
  /** Milliseconds since the epoch; default `Date.now()`. */
  timestamp?: number
  /** Default `'1.0'`. */
  version?: string
  /** Default `{ enabled: false }`. */
  encryption?: EncryptionInfo
  /** Default `{ enabled: false }`. */
  compression?: CompressionInfo
}

/**
 * Builds a validated unsigned message with defaults filled in. Throws InvalidParametersError /
 * InvalidAddressError.
 *
 * The result is frozen, and so are the objects it is made of that createMessage created (addresses,
 * payload, metadata, routing hints, trust requirements, encryption / compression info). `payload.data`
 * is the caller's value, not a copy: its canonical bytes are taken once, here, and those bytes are
 * what signMessage signs (like `structuredClone` at this moment, but without the copy). Mutating
 * `data` (or a `Uint8Array` in it, or `encryption.nonce`) after createMessage does not change the
 * signed message's wire bytes, only the in-memory object: treat `data` as immutable from here on, or
 * build a new message. To derive a changed message, spread it (`{ ...msg, payload: newPayload }`):
 * such a copy is not frozen and signMessage validates and encodes it in full.
 */
export function createMessage(init: CreateMessageInit): UnsignedKLPMessage {
  if (init === null || typeof init !== 'object') failParam(`expected an init object, got ${describeValue(init)}`)
  const source = initAddress(init.source)
  const target = initAddress(init.target)
  const payload = Object.freeze({
    content_type: init.content_type ?? CONTENT_TYPES.CBOR,
    data: init.data,
    encryption: init.encryption === undefined ? DISABLED_INFO : copyInfo(init.encryption),
    compression: init.compression === undefined ? DISABLED_INFO : copyInfo(init.compression),
  })
  const priority = init.priority ?? MessagePriority.NORMAL
  const ttl = init.ttl ?? DEFAULT_TTL
  const hints = init.routing_hints === undefined ? NO_HINTS : copyHints(init.routing_hints)
  const t = init.trust_requirements
  const trust = t === undefined ? DEFAULT_TRUST : t !== null && typeof t === 'object'
    ? Object.freeze({ minimum_trust_score: t.minimum_trust_score, required_endorsements: t.required_endorsements, verification_level: t.verification_level })
    : t
  const metadata = Object.freeze(init.correlation_id === undefined
    ? { priority, ttl, routing_hints: hints, trust_requirements: trust }
    : { priority, ttl, routing_hints: hints, trust_requirements: trust, correlation_id: init.correlation_id })
  const msg: UnsignedKLPMessage = Object.freeze({
    version: init.version ?? KLP_VERSION,
    type: init.type,
    source,
    target,
    payload,
    metadata,
    timestamp: init.timestamp ?? systemClock.now(),
  })
  // Validate every field exactly as the wire does, and keep the canonical body for signMessage.
  const body = useWriter((w) => {
    writeCheckedBody(w, msg, DEFAULT_LIMITS)
    const out = allocBytes(w.pos)
    out.set(w.buf.subarray(0, w.pos))
    return out
  })
  created.set(msg, { body, id: undefined })
  return msg
}

/** The canonical body of a createMessage result (frozen, so it cannot go stale), and its id once computed. */
interface Created {
  readonly body: Uint8Array
  id: string | undefined
}
const created = new WeakMap<object, Created>()

/** The shared frozen `{ enabled: false }` of created, signed and decoded messages. */
const DISABLED_INFO: { enabled: false } = Object.freeze({ enabled: false })
const NO_HINTS: RoutingHint[] = Object.freeze([]) as unknown as RoutingHint[]
const DEFAULT_TRUST: TrustRequirements = Object.freeze({
  minimum_trust_score: 0, required_endorsements: 0, verification_level: VerificationLevel.NONE,
})

/** A frozen copy of an encryption / compression info object (anything else is left for validation to reject). */
function copyInfo<T extends EncryptionInfo | CompressionInfo>(info: T): T {
  if (info === null || typeof info !== 'object') return info
  return info.enabled === false && Object.keys(info).length === 1 ? DISABLED_INFO as T : Object.freeze({ ...info }) as unknown as T
}

/** Frozen copies of routing hints (a non-array or an over-long array is left for validation to reject). */
function copyHints(hints: RoutingHint[]): RoutingHint[] {
  if (!Array.isArray(hints) || hints.length > MAX_ROUTING_HINTS) return hints
  if (hints.length === 0) return NO_HINTS
  const out = new Array<RoutingHint>(hints.length)
  for (let i = 0; i < hints.length; i++) {
    const h = hints[i] as RoutingHint
    out[i] = h !== null && typeof h === 'object' ? Object.freeze({ kind: h.kind, value: h.value }) : h
  }
  return Object.freeze(out) as RoutingHint[]
}

// ------------------------------------------------------------------ body encoding

function writeEncryption(w: Writer, e: EncryptionInfo): void {
  if (e === null || typeof e !== 'object') failParam(`expected payload.encryption to be an object, got ${describeValue(e)}`)
  const enabled = checkBool(e.enabled, 'payload.encryption.enabled', failParam)
  if (!enabled) {
    if (e.algorithm !== undefined || e.nonce !== undefined || e.key_id !== undefined || e.ephemeral_key !== undefined) {
      failParam('expected no algorithm, nonce, key_id or ephemeral_key when encryption is disabled')
    }
    w.raw(DISABLED); w.items++ // the map entry DISABLED holds
    return
  }
  if (e.algorithm !== 'AES-256-GCM') failParam(`expected payload.encryption.algorithm "AES-256-GCM", got ${describeValue(e.algorithm)}`)
  checkBytes(e.nonce, 'payload.encryption.nonce', NONCE_LENGTH, NONCE_LENGTH, failParam)
  let n = 3
  if (e.key_id !== undefined) { checkString(e.key_id, 'payload.encryption.key_id', 1, MAX_KEY_ID_LENGTH, failParam); n++ }
  if (e.ephemeral_key !== undefined) { checkBytes(e.ephemeral_key, 'payload.encryption.ephemeral_key', 1, MAX_EPHEMERAL_KEY_LENGTH, failParam); n++ }
  w.head(5, n)
  w.raw(K.nonce); w.bytes(e.nonce as Uint8Array)
  if (e.key_id !== undefined) { w.raw(K.key_id); w.text(e.key_id) }
  w.raw(K.enabled); w.bool(true)
  w.raw(K.algorithm); w.text(e.algorithm)
  if (e.ephemeral_key !== undefined) { w.raw(K.ephemeral_key); w.bytes(e.ephemeral_key) }
}

function writeCompression(w: Writer, c: CompressionInfo): void {
  if (c === null || typeof c !== 'object') failParam(`expected payload.compression to be an object, got ${describeValue(c)}`)
  const enabled = checkBool(c.enabled, 'payload.compression.enabled', failParam)
  if (!enabled) {
    if (c.algorithm !== undefined) failParam('expected no algorithm when compression is disabled')
    w.raw(DISABLED); w.items++ // the map entry DISABLED holds
    return
  }
  if (c.algorithm !== 'gzip') failParam(`expected payload.compression.algorithm "gzip", got ${describeValue(c.algorithm)}`)
  w.head(5, 2)
  w.raw(K.enabled); w.bool(true)
  w.raw(K.algorithm); w.text('gzip')
}

function writePayload(w: Writer, p: KLPPayload, maxDepth: number): void {
  if (p === null || typeof p !== 'object') failParam(`expected payload to be an object, got ${describeValue(p)}`)
  const ct = checkString(p.content_type, 'payload.content_type', 1, MAX_CONTENT_TYPE_LENGTH, failParam, CONTENT_TYPE_RE)
  const transformed = p.encryption?.enabled === true || p.compression?.enabled === true
  if (transformed && !(p.data instanceof Uint8Array)) failParam(`expected payload.data to be a Uint8Array when compressed or encrypted, got ${describeValue(p.data)}`)
  w.head(5, 4)
  w.raw(K.data); writeValue(w, p.data, 2, maxDepth)
  w.raw(K.encryption); writeEncryption(w, p.encryption)
  w.raw(K.compression); writeCompression(w, p.compression)
  w.raw(K.content_type); w.text(ct)
}

function writeMetadata(w: Writer, m: UnsignedKLPMessage['metadata']): void {
  if (m === null || typeof m !== 'object') failParam(`expected metadata to be an object, got ${describeValue(m)}`)
  checkUint(m.ttl, 'metadata.ttl', MAX_U32, failParam)
  checkPriority(m.priority, failParam)
  const hints = m.routing_hints
  if (!Array.isArray(hints)) failParam(`expected metadata.routing_hints to be an array, got ${describeValue(hints)}`)
  if (hints.length > MAX_ROUTING_HINTS) failParam(`expected at most ${MAX_ROUTING_HINTS} routing hints, got ${hints.length}`)
  const t = m.trust_requirements
  if (t === null || typeof t !== 'object') failParam(`expected metadata.trust_requirements to be an object, got ${describeValue(t)}`)
  const hasCorr = m.correlation_id !== undefined
  if (hasCorr) checkString(m.correlation_id, 'metadata.correlation_id', 1, MAX_CORRELATION_ID_LENGTH, failParam)
  w.head(5, hasCorr ? 5 : 4)
  w.raw(K.ttl); w.head(0, m.ttl)
  w.raw(K.priority); w.head(0, m.priority)
  w.raw(K.routing_hints); w.head(4, hints.length)
  for (const h of hints) {
    if (h === null || typeof h !== 'object') failParam(`expected a routing hint object, got ${describeValue(h)}`)
    w.head(5, 2)
    w.raw(K.kind); w.text(checkString(h.kind, 'routing_hints[].kind', 1, MAX_HINT_KIND_LENGTH, failParam))
    w.raw(K.value); w.text(checkString(h.value, 'routing_hints[].value', 0, MAX_HINT_VALUE_LENGTH, failParam))
  }
  if (hasCorr) { w.raw(K.correlation_id); w.text(m.correlation_id as string) }
  w.raw(K.trust_requirements)
  w.head(5, 3)
  w.raw(K.verification_level); w.text(checkLevel(t.verification_level, failParam))
  w.raw(K.minimum_trust_score); writeValue(w, checkScore(t.minimum_trust_score, failParam), 0, 1)
  w.raw(K.required_endorsements); w.head(0, checkUint(t.required_endorsements, 'trust_requirements.required_endorsements', MAX_U32, failParam))
}

/**
 * Canonical strings of frozen addresses the codec created or parsed (createMessage, signMessage,
 * decodeMessage): a frozen address cannot change, so its string never goes stale.
 */
const canonical = new WeakMap<object, string>()

/** A validated mutable address: its parts as they were when validated, and its canonical string. */
interface Formatted {
  readonly scheme: string
  readonly authority: string
  readonly path: string
  readonly query: string | undefined
  readonly fragment: string | undefined
  readonly s: string
}
const formatted = new WeakMap<object, Formatted>()

/**
 * formatAddress, cached per address object. For a mutable address the cache entry keeps the parts
 * that were validated and is used only while the object still holds exactly those (strings are
 * immutable, so equal parts are equally valid): a mutated address is validated again.
 */
function addressString(a: KLPAddress): string {
  if (a !== null && typeof a === 'object') {
    const c = canonical.get(a)
    if (c !== undefined) return c
    const hit = formatted.get(a)
    if (hit !== undefined && hit.authority === a.authority && hit.path === a.path && hit.query === a.query &&
      hit.fragment === a.fragment && hit.scheme === a.scheme) return hit.s
  }
  const s = formatAddress(a)
  formatted.set(a, { scheme: a.scheme, authority: a.authority, path: a.path, query: a.query, fragment: a.fragment, s })
  return s
}

/** Bounded cache of frozen, leniently parsed address strings (createMessage inputs repeat). */
const parsedCache = new Map<string, KLPAddress>()
const PARSED_CACHE_SIZE = 1024

/** A frozen address (its canonical string registered), shared between messages for repeated strings. */
function initAddress(a: KLPAddress | string): KLPAddress {
  if (typeof a !== 'string') {
    const s = formatAddress(a)
    const out = Object.freeze(parseAddress(s))
    canonical.set(out, s)
    return out
  }
  let p = parsedCache.get(a)
  if (p === undefined) {
    p = Object.freeze(parseAddress(a))
    // The canonical string, without re-running the validation parseAddress just did.
    const str = `klp://${p.authority}${p.path}${p.query === undefined ? '' : `?${p.query}`}${p.fragment === undefined ? '' : `#${p.fragment}`}`
    if (str.length <= MAX_ADDRESS_LENGTH) canonical.set(p, str) // else formatAddress rejects it on encode
    if (parsedCache.size >= PARSED_CACHE_SIZE) parsedCache.delete(parsedCache.keys().next().value as string)
    parsedCache.set(a, p)
  }
  return p
}

function writeBody(w: Writer, msg: UnsignedKLPMessage, maxDepth: number): void {
  if (msg === null || typeof msg !== 'object') failParam(`expected a message object, got ${describeValue(msg)}`)
  const version = checkString(msg.version, 'version', 1, MAX_VERSION_LENGTH, failParam, VERSION_RE)
  checkType(msg.type, failParam)
  checkUint(msg.timestamp, 'timestamp', Number.MAX_SAFE_INTEGER, failParam)
  w.head(5, 7)
  w.raw(K.type); w.text(msg.type)
  w.raw(K.source); w.text(addressString(msg.source))
  w.raw(K.target); w.text(addressString(msg.target))
  w.raw(K.payload); writePayload(w, msg.payload, maxDepth)
  w.raw(K.version); w.text(version)
  w.raw(K.metadata); writeMetadata(w, msg.metadata)
  w.raw(K.timestamp); w.head(0, msg.timestamp)
}

/**
 * The body of a message: the DAG-CBOR map of everything but `signature`,
 * `signer` and `metadata.message_id`. Validates every field (InvalidParametersError).
 */
export function encodeBody(msg: UnsignedKLPMessage | KLPMessage, options?: { limits?: Partial<CodecLimits> }): Uint8Array {
  const limits = resolveLimits(options?.limits)
  return withWriter((w) => { writeCheckedBody(w, msg, limits) })
}

/** Writes the canonical body into `w` (from w.pos) with every check encodeBody applies. */
function writeCheckedBody(w: Writer, msg: UnsignedKLPMessage | KLPMessage, limits: Readonly<CodecLimits>): void {
  const start = w.pos
  limitWriter(w, limits)
  writeBody(w, msg, limits.maxDepth)
  checkWriterItems(w, limits)
  const len = w.pos - start
  if (len > limits.maxMessageSize) throw new MessageTooLargeError(`expected a message body of at most ${limits.maxMessageSize} bytes, got ${len}`)
}

// ------------------------------------------------------------------ ids

type OneShotHash = (alg: string, data: Uint8Array, enc: 'latin1') => string
const oneShot = (nodeCrypto as unknown as { hash?: OneShotHash }).hash
/** SHA-256 as a 32-char latin1 string (one char per byte): no Buffer allocation for the digest. */
const sha256Latin1 = (data: Uint8Array): string =>
  oneShot !== undefined ? oneShot('sha256', data, 'latin1') : nodeCrypto.createHash('sha256').update(data).digest('binary')

const ID_PREFIX = Uint8Array.of(0x01, MESSAGE_ID_CODEC, MESSAGE_ID_HASH, MESSAGE_ID_DIGEST_LENGTH)
/** RFC 4648 base32, lower case, no padding: the multibase 'b' alphabet. */
const B32 = 'abcdefghijklmnopqrstuvwxyz234567'
const idBytes = new Uint8Array(4 + MESSAGE_ID_DIGEST_LENGTH)
idBytes.set(ID_PREFIX, 0)

/**
 * The message id of a canonical body: CIDv1 (dag-cbor, sha2-256 truncated to 128 bits), base32.
 * One node:crypto hash call, then the 20 CID bytes (exactly 32 base32 digits, 4 groups of 5
 * bytes) are written straight into the string: no CID object, no intermediate arrays.
 */
export function messageIdFromBody(body: Uint8Array): string {
  const digest = sha256Latin1(body)
  const b = idBytes
  for (let i = 0; i < MESSAGE_ID_DIGEST_LENGTH; i++) b[4 + i] = digest.charCodeAt(i)
  let out = 'b'
  for (let i = 0; i < 20; i += 5) {
    // 40 bits as a high byte and a low 32-bit word (no bigint): 8 digits of 5 bits.
    const hi = b[i] as number
    const lo = (((b[i + 1] as number) << 24) | ((b[i + 2] as number) << 16) | ((b[i + 3] as number) << 8) | (b[i + 4] as number)) >>> 0
    out += B32[hi >>> 3]! + B32[((hi & 7) << 2) | (lo >>> 30)]! + B32[(lo >>> 25) & 31]! + B32[(lo >>> 20) & 31]! +
      B32[(lo >>> 15) & 31]! + B32[(lo >>> 10) & 31]! + B32[(lo >>> 5) & 31]! + B32[lo & 31]!
  }
  return out
}

/** Computes the 128-bit content address of the canonical unsigned message. */
export function computeMessageId(msg: UnsignedKLPMessage): string {
  return messageIdFromBody(encodeBody(msg))
}

/** Parses a message id into a multiformats CID; throws InvalidParametersError if it is not a KLP message id. */
export function parseMessageId(id: string): CID {
  let cid: CID
  try {
    cid = CID.parse(id)
  } catch (err) {
    throw new InvalidParametersError(`expected a CID string, got ${describeValue(id)}`, { cause: err })
  }
  if (cid.version !== 1 || cid.code !== MESSAGE_ID_CODEC || cid.multihash.code !== MESSAGE_ID_HASH || cid.multihash.size !== MESSAGE_ID_DIGEST_LENGTH) {
    throw new InvalidParametersError(`expected a CIDv1 dag-cbor with a 16-byte sha2-256 digest, got ${id}`)
  }
  return cid
}

// ------------------------------------------------------------------ signing

/**
 * What signMessage / decodeMessage keep per message: views of the COSE_Sign1 parts the signature
 * covers, the protected header and the payload (each a byte string with its head), and the body
 * (the payload's content).
 * - signMessage keeps the Sig_structure it signed (`input`), in one buffer that holds the other
 *   views too; never handed out to callers (getSigningInput copies), so it cannot be mutated behind
 *   our back; the Signer sees it, as it always saw the bytes it signs.
 * - decodeMessage keeps views into the received bytes (no copy) and builds the Sig_structure only
 *   when verifyMessage / getSigningInput asks for it, so a decoded message that waits in a queue
 *   costs nothing beyond the received bytes.
 */
interface Signed {
  readonly signer: string
  /** The Sig_structure, kept by signMessage; undefined for decoded messages (built on demand). */
  readonly input: Uint8Array | undefined
  /** The protected header as it is signed and sent: `bstr .cbor {1: -8, 4: kid}`, head included. */
  readonly protectedBstr: Uint8Array
  /** The payload byte string, head included. */
  readonly payloadBstr: Uint8Array
  /** The body: the payload's content. */
  readonly body: Uint8Array
}
/** The Signed of signMessage: with the Sig_structure. */
type SignedInput = Signed & { readonly input: Uint8Array }
/** COSE parts of messages produced by signMessage or decodeMessage (never re-encoded). */
const bodies = new WeakMap<object, Signed>()

/** `84 6a "Signature1"`: the head of the 4-item Sig_structure and its context string, 12 bytes. */
const SIGNING_PREFIX = (() => {
  const w = new Writer(16)
  w.head(4, 4)
  w.text(SIGNING_CONTEXT)
  return w.finish()
})()
const PREFIX_LENGTH = SIGNING_PREFIX.length
/** The empty external_aad of the Sig_structure (`h''`). */
const EMPTY_BSTR = 0x40
/** The empty unprotected header map (`{}`), at the same place in the COSE_Sign1 as external_aad in the Sig_structure. */
const EMPTY_MAP = 0xa0
/** `d2 84`: tag 18 and the head of the 4-item COSE_Sign1 array. */
const ENVELOPE_TAG = 0xc0 | COSE_SIGN1_TAG
const ENVELOPE_ARRAY = 0x84
/** Longest signer key id in UTF-8 bytes (1024 UTF-16 units, at most 3 bytes each). */
const MAX_SIGNER_BYTES = MAX_SIGNER_LENGTH * 3

/** Protected headers of recent signer key ids (signers sign many messages with one key id). */
const protectedCache = new Map<string, Uint8Array>()
const PROTECTED_CACHE_SIZE = 256

/**
 * The protected header of `keyId` as signed and sent: a byte string (head included) holding the
 * deterministic map `{1: -8, 4: h'<UTF-8 of keyId>'}` = `a2 01 27 04 <bstr kid>`.
 */
function protectedHeader(keyId: string): Uint8Array {
  let p = protectedCache.get(keyId)
  if (p !== undefined) return p
  const kid = new Writer(keyId.length * 3 + 9)
  kid.text(keyId) // UTF-8 with the well-formedness check (InvalidParametersError on a lone surrogate)
  const kidHeadLen = kid.pos - Buffer.byteLength(keyId, 'utf8')
  const kidBytes = kid.buf.subarray(kidHeadLen, kid.pos)
  const map = new Writer(kidBytes.length + 16)
  map.head(5, 2)
  map.head(0, COSE_HEADER_ALG); map.head(1, -1 - COSE_ALG_EDDSA)
  map.head(0, COSE_HEADER_KID); map.bytes(kidBytes)
  const w = new Writer(map.pos + 9)
  w.bytes(map.buf.subarray(0, map.pos))
  p = w.finish()
  if (protectedCache.size >= PROTECTED_CACHE_SIZE) protectedCache.delete(protectedCache.keys().next().value as string)
  protectedCache.set(keyId, p)
  return p
}

/** Writes a Sig_structure around a protected header and a payload byte string (heads included) into one fresh buffer. */
function sigStructure(protectedBstr: Uint8Array, payloadBstr: Uint8Array): Uint8Array {
  const p = protectedBstr.length
  const input = allocBytes(PREFIX_LENGTH + p + 1 + payloadBstr.length)
  input.set(SIGNING_PREFIX, 0)
  input.set(protectedBstr, PREFIX_LENGTH)
  input[PREFIX_LENGTH + p] = EMPTY_BSTR
  input.set(payloadBstr, PREFIX_LENGTH + p + 1)
  return input
}

/**
 * The exact bytes signed for `signer` and a body: the COSE Sig_structure
 * `["Signature1", protected, h'', body]` (RFC 9052 §4.4), where protected is
 * `bstr .cbor {1: -8, 4: h'<UTF-8 of signer>'}`.
 */
export function signingInput(signer: string, body: Uint8Array): Uint8Array {
  checkString(signer, 'signer', 1, MAX_SIGNER_LENGTH, failParam)
  if (!(body instanceof Uint8Array)) failParam(`expected the body to be a Uint8Array, got ${describeValue(body)}`)
  return signedFromBody(signer, body).input
}

/** Signing input of a message (a fresh copy): reuses the received/signed bytes when known, else re-encodes. */
export function getSigningInput(msg: KLPMessage): Uint8Array {
  const s = signedOf(msg)
  return s.input === undefined ? sigStructure(s.protectedBstr, s.payloadBstr).slice() : s.input.slice()
}

function signedOf(msg: KLPMessage): Signed {
  const cached = bodies.get(msg)
  if (cached !== undefined && cached.signer === msg.signer) return cached
  const body = encodeBody(msg)
  const id = messageIdFromBody(body)
  if (msg.metadata.message_id !== id) {
    throw new MessageIdMismatchError(`expected metadata.message_id ${id} (computed from the content), got ${describeValue(msg.metadata.message_id)}`)
  }
  return signedFromBody(msg.signer, body)
}

/** Largest bstr head (1 + 8 bytes). */
const MAX_HEAD = 9

/** The Signed views of a Sig_structure whose protected header is `p` bytes long. */
function signedOfInput(keyId: string, input: Uint8Array, p: number, bodyLen: number): SignedInput {
  return {
    signer: keyId,
    input,
    protectedBstr: input.subarray(PREFIX_LENGTH, PREFIX_LENGTH + p),
    payloadBstr: input.subarray(PREFIX_LENGTH + p + 1),
    body: input.subarray(input.length - bodyLen),
  }
}

/**
 * Encodes the body of `msg` and returns the Sig_structure for `keyId` in one exact-size buffer, the
 * body a view into it: prefix, protected header and external_aad are written first, a 9-byte gap
 * is left for the body's byte-string head, then the body; once the body length (so the head size)
 * is known the lead is moved up against the head and the whole run is copied out once.
 */
function buildSigned(keyId: string, msg: UnsignedKLPMessage, limits: Readonly<CodecLimits>): SignedInput {
  const prot = protectedHeader(keyId)
  return useWriter((w) => {
    w.raw(SIGNING_PREFIX)
    w.raw(prot)
    w.ensure(1)
    w.buf[w.pos++] = EMPTY_BSTR
    const lead = w.pos
    w.ensure(MAX_HEAD)
    w.pos += MAX_HEAD
    const bodyStart = w.pos
    writeCheckedBody(w, msg, limits)
    const bodyLen = w.pos - bodyStart
    const end = w.pos
    // Write the head into the gap, right-aligned against the body, then close up the gap.
    w.pos = bodyStart - MAX_HEAD
    w.head(2, bodyLen)
    const headLen = w.pos - (bodyStart - MAX_HEAD)
    const buf = w.buf
    buf.copyWithin(bodyStart - headLen, bodyStart - MAX_HEAD, w.pos)
    const start = MAX_HEAD - headLen
    buf.copyWithin(start, 0, lead)
    const input = allocBytes(end - start)
    input.set(buf.subarray(start, end))
    return signedOfInput(keyId, input, prot.length, bodyLen)
  })
}

/** The Sig_structure for `keyId` around an already encoded body, in one exact-size buffer. */
function signedFromBody(keyId: string, body: Uint8Array): SignedInput {
  const prot = protectedHeader(keyId)
  return useWriter((w) => {
    w.raw(SIGNING_PREFIX)
    w.raw(prot)
    w.ensure(1)
    w.buf[w.pos++] = EMPTY_BSTR
    w.head(2, body.length)
    const lead = w.pos
    const input = allocBytes(lead + body.length)
    input.set(w.buf.subarray(0, lead))
    input.set(body, lead)
    return signedOfInput(keyId, input, prot.length, body.length)
  })
}

function freezeAddress(a: KLPAddress): KLPAddress {
  const c = canonical.get(a)
  if (c !== undefined) return a // frozen already
  const out: KLPAddress = { scheme: a.scheme, authority: a.authority, path: a.path }
  if (a.query !== undefined) out.query = a.query
  if (a.fragment !== undefined) out.fragment = a.fragment
  Object.freeze(out)
  canonical.set(out, addressString(a)) // validated by the body encoding just before
  return out
}

/**
 * Signs a message: computes its id, signs `signingInput(signer.keyId, body)` and returns a new
 * frozen KLPMessage with `metadata.message_id`, `signer` and `signature` filled in.
 *
 * For a message straight from createMessage (frozen) the body encoded there is reused, and the
 * result shares its frozen parts; `payload.data` is the caller's value, signed as it was at
 * createMessage. Any other message (a spread copy, a hand-built object) is validated and encoded
 * here, and the fields are snapshotted before the signer runs. Either way, objects inside
 * `payload.data` are shared, not copied: do not mutate them.
 */
export async function signMessage(msg: UnsignedKLPMessage, signer: Signer, options?: AbortOptions): Promise<KLPMessage> {
  throwIfAborted(options?.signal)
  if (signer === null || typeof signer !== 'object' || typeof signer.sign !== 'function') failParam(`expected a Signer, got ${describeValue(signer)}`)
  const keyId = checkString(signer.keyId, 'signer.keyId', 1, MAX_SIGNER_LENGTH, failParam)
  const c = msg !== null && typeof msg === 'object' ? created.get(msg) : undefined
  let signed: SignedInput
  let out: Omit<KLPMessage, 'signature' | 'signer'>
  if (c !== undefined) {
    signed = signedFromBody(keyId, c.body)
    const id = c.id ?? (c.id = messageIdFromBody(c.body))
    const m = msg.metadata // frozen: exactly what the body holds
    out = {
      version: msg.version,
      type: msg.type,
      source: msg.source,
      target: msg.target,
      payload: msg.payload,
      metadata: Object.freeze(m.correlation_id === undefined
        ? { message_id: id, priority: m.priority, ttl: m.ttl, routing_hints: m.routing_hints, trust_requirements: m.trust_requirements }
        : { message_id: id, priority: m.priority, ttl: m.ttl, routing_hints: m.routing_hints, trust_requirements: m.trust_requirements, correlation_id: m.correlation_id }),
      timestamp: msg.timestamp,
    }
  } else {
    signed = buildSigned(keyId, msg, DEFAULT_LIMITS) // validates every field
    const id = messageIdFromBody(signed.body)
    if (msg.metadata.message_id !== undefined && msg.metadata.message_id !== id) {
      throw new MessageIdMismatchError(`expected metadata.message_id ${id} (computed from the content), got ${describeValue(msg.metadata.message_id)}`)
    }
    // Snapshot the (just validated) fields before the signer runs, so the result matches the body.
    const m = msg.metadata
    const metadata: KLPMessage['metadata'] = {
      message_id: id,
      priority: m.priority,
      ttl: m.ttl,
      routing_hints: copyHints(m.routing_hints),
      trust_requirements: Object.freeze({
        minimum_trust_score: m.trust_requirements.minimum_trust_score,
        required_endorsements: m.trust_requirements.required_endorsements,
        verification_level: m.trust_requirements.verification_level,
      }),
    }
    if (m.correlation_id !== undefined) metadata.correlation_id = m.correlation_id
    const p = msg.payload
    out = {
      version: msg.version,
      type: msg.type,
      source: freezeAddress(msg.source),
      target: freezeAddress(msg.target),
      payload: Object.freeze({
        content_type: p.content_type,
        data: p.data,
        encryption: p.encryption.enabled ? Object.freeze({ ...p.encryption }) : DISABLED_INFO,
        compression: p.compression.enabled ? Object.freeze({ ...p.compression }) : DISABLED_INFO,
      }),
      metadata: Object.freeze(metadata),
      timestamp: msg.timestamp,
    }
  }
  const sig = await signer.sign(signed.input)
  throwIfAborted(options?.signal)
  if (!(sig instanceof Uint8Array) || sig.length !== SIGNATURE_LENGTH) {
    throw new InvalidSignatureError(`expected the signer to return ${SIGNATURE_LENGTH} bytes, got ${describeValue(sig)}`)
  }
  const result: KLPMessage = {
    version: out.version,
    type: out.type,
    source: out.source,
    target: out.target,
    payload: out.payload,
    metadata: out.metadata,
    signature: Uint8Array.from(sig),
    signer: keyId,
    timestamp: out.timestamp,
  }
  Object.freeze(result)
  bodies.set(result, signed)
  return result
}

// ------------------------------------------------------------------ envelope

/** `58 40`: the byte-string head of a 64-byte signature. */
const SIG_HEAD_0 = 0x58
const SIG_HEAD_1 = SIGNATURE_LENGTH

/**
 * The bytes of a signed message: a tagged COSE_Sign1 (RFC 9052 §4.2),
 * `d2 84 <protected bstr> a0 <payload bstr> 58 40 <signature>`. For a message from signMessage /
 * decodeMessage this is one allocation and one copy of the kept parts (the Sig_structure signMessage
 * kept, or the received bytes), plus the signature; nothing is re-encoded. The result is a fresh
 * buffer (with 8 bytes of headroom before it, which encodeFrame uses to frame it without another copy).
 */
export function encodeMessage(msg: KLPMessage, options?: { limits?: Partial<CodecLimits> }): Uint8Array {
  if (msg === null || typeof msg !== 'object') failParam(`expected a KLPMessage, got ${describeValue(msg)}`)
  const limits = resolveLimits(options?.limits)
  checkString(msg.signer, 'signer', 1, MAX_SIGNER_LENGTH, failParam)
  const sig = checkBytes(msg.signature, 'signature', SIGNATURE_LENGTH, SIGNATURE_LENGTH, failParam)
  const s = signedOf(msg) // s.signer === msg.signer
  const prot = s.protectedBstr
  const payload = s.payloadBstr
  const len = 2 + prot.length + 1 + payload.length + 2 + SIGNATURE_LENGTH
  if (len > limits.maxMessageSize) throw new MessageTooLargeError(`expected an encoded message of at most ${limits.maxMessageSize} bytes, got ${len}`)
  const buf = new Uint8Array(FRAME_HEADER_LENGTH + len)
  const o = FRAME_HEADER_LENGTH
  buf[o] = ENVELOPE_TAG
  buf[o + 1] = ENVELOPE_ARRAY
  let p = o + 2
  if (s.input !== undefined) {
    // protected, external_aad and payload are contiguous in the Sig_structure: one copy, then
    // the external_aad byte (h'') becomes the unprotected header ({}), which sits at that place.
    buf.set(s.input.subarray(PREFIX_LENGTH), p)
    p += prot.length
    buf[p] = EMPTY_MAP
    p += 1 + payload.length
  } else {
    buf.set(prot, p)
    p += prot.length
    buf[p++] = EMPTY_MAP
    buf.set(payload, p)
    p += payload.length
  }
  buf[p++] = SIG_HEAD_0
  buf[p++] = SIG_HEAD_1
  for (let i = 0; i < SIGNATURE_LENGTH; i++) buf[p++] = sig[i] as number
  return reserveFrameHeader(buf.subarray(o))
}

// ------------------------------------------------------------------ decoding

type Obj = Record<string, unknown>

function fields(v: unknown, name: string, allowed: ReadonlySet<string>, required: readonly string[]): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) {
    throw new InvalidFieldError(`expected ${name} to be a map, got ${describeValue(v)}`)
  }
  for (const k of Object.keys(v)) {
    if (!allowed.has(k)) throw new UnknownFieldError(`expected only fields ${[...allowed].join(', ')} in ${name}, got ${JSON.stringify(k)}`)
  }
  for (const k of required) {
    if (!(k in v)) throw new MissingFieldError(`expected field ${JSON.stringify(k)} in ${name}, got none`)
  }
  return v as Obj
}

const set = (...k: string[]): ReadonlySet<string> => new Set(k)
const BODY_FIELDS = set('type', 'source', 'target', 'payload', 'version', 'metadata', 'timestamp')
const BODY_REQUIRED = [...BODY_FIELDS]
const PAYLOAD_FIELDS = set('data', 'encryption', 'compression', 'content_type')
const ENC_FIELDS = set('nonce', 'key_id', 'enabled', 'algorithm', 'ephemeral_key')
const COMP_FIELDS = set('enabled', 'algorithm')
const META_FIELDS = set('ttl', 'priority', 'routing_hints', 'correlation_id', 'trust_requirements')
const TRUST_FIELDS = set('verification_level', 'minimum_trust_score', 'required_endorsements')
const TRUST_REQUIRED = [...TRUST_FIELDS]
const HINT_FIELDS = set('kind', 'value')

/** Bounded cache of frozen parsed wire addresses (routers see few distinct addresses). */
const addressCache = new Map<string, KLPAddress>()
const ADDRESS_CACHE_SIZE = 1024

function wireAddress(v: unknown, name: string): KLPAddress {
  const s = checkString(v, name, 1, Number.MAX_SAFE_INTEGER, failField)
  const hit = addressCache.get(s)
  if (hit !== undefined) return hit
  try {
    const a = Object.freeze(parseAddress(s, { strict: true }))
    if (addressCache.size >= ADDRESS_CACHE_SIZE) addressCache.delete(addressCache.keys().next().value as string)
    addressCache.set(s, a)
    return a
  } catch (err) {
    throw new InvalidFieldError(`expected ${name} to be a canonical klp:// address, got ${describeValue(s)}`, { cause: err })
  }
}

function readEncryption(v: unknown): EncryptionInfo {
  const o = fields(v, 'payload.encryption', ENC_FIELDS, ['enabled'])
  if (!checkBool(o.enabled, 'payload.encryption.enabled', failField)) {
    if (Object.keys(o).length !== 1) failField('expected no algorithm, nonce, key_id or ephemeral_key when encryption is disabled')
    return Object.freeze({ enabled: false })
  }
  if (o.algorithm !== 'AES-256-GCM') failField(`expected payload.encryption.algorithm "AES-256-GCM", got ${describeValue(o.algorithm)}`)
  const out: EncryptionInfo = { enabled: true, algorithm: 'AES-256-GCM', nonce: checkBytes(o.nonce, 'payload.encryption.nonce', NONCE_LENGTH, NONCE_LENGTH, failField) }
  if (o.key_id !== undefined) out.key_id = checkString(o.key_id, 'payload.encryption.key_id', 1, MAX_KEY_ID_LENGTH, failField)
  if (o.ephemeral_key !== undefined) out.ephemeral_key = checkBytes(o.ephemeral_key, 'payload.encryption.ephemeral_key', 1, MAX_EPHEMERAL_KEY_LENGTH, failField)
  return Object.freeze(out)
}

function readCompression(v: unknown): CompressionInfo {
  const o = fields(v, 'payload.compression', COMP_FIELDS, ['enabled'])
  if (!checkBool(o.enabled, 'payload.compression.enabled', failField)) {
    if (o.algorithm !== undefined) failField('expected no algorithm when compression is disabled')
    return Object.freeze({ enabled: false })
  }
  if (o.algorithm !== 'gzip') failField(`expected payload.compression.algorithm "gzip", got ${describeValue(o.algorithm)}`)
  return Object.freeze({ enabled: true, algorithm: 'gzip' })
}

function readPayload(v: unknown): KLPPayload {
  const o = fields(v, 'payload', PAYLOAD_FIELDS, ['data', 'encryption', 'compression', 'content_type'])
  const encryption = readEncryption(o.encryption)
  const compression = readCompression(o.compression)
  if ((encryption.enabled || compression.enabled) && !(o.data instanceof Uint8Array)) {
    failField(`expected payload.data to be a byte string when compressed or encrypted, got ${describeValue(o.data)}`)
  }
  return Object.freeze({
    content_type: checkString(o.content_type, 'payload.content_type', 1, MAX_CONTENT_TYPE_LENGTH, failField, CONTENT_TYPE_RE),
    data: o.data as KLPValue,
    encryption,
    compression,
  })
}

function readMetadata(v: unknown, id: string): KLPMessage['metadata'] {
  const o = fields(v, 'metadata', META_FIELDS, ['ttl', 'priority', 'routing_hints', 'trust_requirements'])
  const hints = o.routing_hints
  if (!Array.isArray(hints)) failField(`expected metadata.routing_hints to be an array, got ${describeValue(hints)}`)
  if (hints.length > MAX_ROUTING_HINTS) failField(`expected at most ${MAX_ROUTING_HINTS} routing hints, got ${hints.length}`)
  for (const h of hints) {
    const ho = fields(h, 'routing hint', HINT_FIELDS, ['kind', 'value'])
    checkString(ho.kind, 'routing_hints[].kind', 1, MAX_HINT_KIND_LENGTH, failField)
    checkString(ho.value, 'routing_hints[].value', 0, MAX_HINT_VALUE_LENGTH, failField)
  }
  const t = fields(o.trust_requirements, 'metadata.trust_requirements', TRUST_FIELDS, TRUST_REQUIRED)
  checkLevel(t.verification_level, failField)
  checkScore(t.minimum_trust_score, failField)
  checkUint(t.required_endorsements, 'trust_requirements.required_endorsements', MAX_U32, failField)
  const out: KLPMessage['metadata'] = {
    message_id: id,
    priority: checkPriority(o.priority, failField),
    ttl: checkUint(o.ttl, 'metadata.ttl', MAX_U32, failField),
    routing_hints: hints as RoutingHint[],
    trust_requirements: t as unknown as TrustRequirements,
  }
  if (o.correlation_id !== undefined) out.correlation_id = checkString(o.correlation_id, 'metadata.correlation_id', 1, MAX_CORRELATION_ID_LENGTH, failField)
  return Object.freeze(out)
}

// ------------------------------------------------------------------ schema-directed body decoding

/**
 * Thrown inside fastBody when the body is not in the exact expected shape; fastBody then returns
 * undefined and decodeMessage decodes the body generically, which accepts or rejects it (with the
 * precise typed error) exactly as before. fastBody accepts a subset of what the generic path
 * accepts and builds the same values, so it changes speed, never results or errors.
 */
const BAIL = new Error('klp-codec: fast path bail-out (internal)')

interface FastBody {
  version: string
  type: KLPMessageType
  source: KLPAddress
  target: KLPAddress
  payload: KLPPayload
  metadata: Omit<KLPMessage['metadata'], 'message_id'>
  timestamp: number
}

/** Consumes the pre-encoded key `k` at the reader's position, or bails. */
function fKey(r: Reader, k: Uint8Array): void {
  const b = r.buf
  const p = r.pos
  const n = k.length
  if (n > r.end - p) throw BAIL
  for (let i = 0; i < n; i++) if (b[p + i] !== k[i]) throw BAIL
  r.pos = p + n
}

/** True (and consumed, items and depth accounted) when the next bytes are `{ "enabled": false }`. */
function fDisabled(r: Reader, depth: number): boolean {
  const b = r.buf
  const p = r.pos
  const n = DISABLED.length
  if (n > r.end - p) return false
  for (let i = 0; i < n; i++) if (b[p + i] !== DISABLED[i]) return false
  if (depth >= r.limits.maxDepth) throw BAIL
  r.takeItems(1, 2, 'a map')
  r.pos = p + n
  return true
}

/** A map head at `depth` with exactly `min`..`max` entries, accounted like the generic decoder does. */
function fMap(r: Reader, depth: number, min: number, max: number): number {
  const n = r.head()
  if (r.type() !== 5 || typeof n !== 'number' || n < min || n > max || depth >= r.limits.maxDepth) throw BAIL
  return r.takeItems(n, 2, 'a map')
}

function fText(r: Reader): string {
  const n = r.head()
  if (r.type() !== 3) throw BAIL
  return r.textBody(n)
}

function fUint(r: Reader, max: number): number {
  const n = r.head()
  if (r.type() !== 0 || typeof n !== 'number' || n > max) throw BAIL
  return n
}

const bail: Fail = () => { throw BAIL }

function fastBody(bytes: Uint8Array, limits: Readonly<CodecLimits>, start: number, end: number): FastBody | undefined {
  const r = new Reader(bytes, limits, start, end)
  r.freeze = true
  try {
    fMap(r, 0, 7, 7)
    fKey(r, K.type)
    const type = fText(r)
    if (!TYPES.has(type)) throw BAIL
    fKey(r, K.source)
    const source = wireAddress(fText(r), 'source')
    fKey(r, K.target)
    const target = wireAddress(fText(r), 'target')

    fKey(r, K.payload)
    fMap(r, 1, 4, 4)
    fKey(r, K.data)
    const data = r.value(2)
    fKey(r, K.encryption)
    const encryption = fDisabled(r, 2) ? DISABLED_INFO : readEncryption(r.value(2))
    fKey(r, K.compression)
    const compression = fDisabled(r, 2) ? DISABLED_INFO : readCompression(r.value(2))
    fKey(r, K.content_type)
    const contentType = checkString(fText(r), '', 1, MAX_CONTENT_TYPE_LENGTH, bail, CONTENT_TYPE_RE)
    if ((encryption.enabled || compression.enabled) && !(data instanceof Uint8Array)) throw BAIL
    const payload: KLPPayload = Object.freeze({ content_type: contentType, data, encryption, compression })

    fKey(r, K.version)
    const version = checkString(fText(r), '', 1, MAX_VERSION_LENGTH, bail, VERSION_RE)

    fKey(r, K.metadata)
    const entries = fMap(r, 1, 4, 5)
    fKey(r, K.ttl)
    const ttl = fUint(r, MAX_U32)
    fKey(r, K.priority)
    const priority = fUint(r, 10)
    if (!PRIORITIES.has(priority)) throw BAIL
    fKey(r, K.routing_hints)
    const hn = r.head()
    if (r.type() !== 4 || typeof hn !== 'number' || hn > MAX_ROUTING_HINTS || 2 >= limits.maxDepth) throw BAIL
    r.takeItems(hn, 1, 'an array')
    let hints = NO_HINTS
    if (hn > 0) {
      hints = new Array<RoutingHint>(hn)
      for (let i = 0; i < hn; i++) {
        fMap(r, 3, 2, 2)
        fKey(r, K.kind)
        const kind = checkString(fText(r), '', 1, MAX_HINT_KIND_LENGTH, bail)
        fKey(r, K.value)
        const value = checkString(fText(r), '', 0, MAX_HINT_VALUE_LENGTH, bail)
        hints[i] = Object.freeze({ kind, value })
      }
      Object.freeze(hints)
    }
    let correlationId: string | undefined
    if (entries === 5) {
      fKey(r, K.correlation_id)
      correlationId = checkString(fText(r), '', 1, MAX_CORRELATION_ID_LENGTH, bail)
    }
    fKey(r, K.trust_requirements)
    fMap(r, 2, 3, 3)
    fKey(r, K.verification_level)
    const level = fText(r)
    if (!LEVELS.has(level)) throw BAIL
    fKey(r, K.minimum_trust_score)
    const score = r.value(3)
    if (typeof score !== 'number' || !(score >= 0 && score <= 10) || Object.is(score, -0)) throw BAIL
    fKey(r, K.required_endorsements)
    const endorsements = fUint(r, MAX_U32)
    const trust: TrustRequirements = Object.freeze({
      verification_level: level as VerificationLevel, minimum_trust_score: score, required_endorsements: endorsements,
    })

    fKey(r, K.timestamp)
    const timestamp = fUint(r, Number.MAX_SAFE_INTEGER)
    if (r.pos !== end) throw BAIL
    const metadata: FastBody['metadata'] = correlationId === undefined
      ? { priority: priority as MessagePriority, ttl, routing_hints: hints, trust_requirements: trust }
      : { priority: priority as MessagePriority, ttl, routing_hints: hints, trust_requirements: trust, correlation_id: correlationId }
    return { version, type: type as KLPMessageType, source, target, payload, metadata, timestamp }
  } catch {
    return undefined
  }
}

/** Direct-mapped cache of recently decoded ASCII key ids (routers see the same signers again and again). */
const KID_CACHE_SIZE = 256
const KID_CACHE_MAX_LENGTH = 512
const kidCache: Array<string | undefined> = new Array<string | undefined>(KID_CACHE_SIZE).fill(undefined)
const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** The signer key id in `b[start..start+len)` (the kid's UTF-8), validated like any signer. */
function kidString(b: Uint8Array, start: number, len: number): string {
  if (len < 1 || len > MAX_SIGNER_BYTES) failField(`expected a kid (signer key id) of 1..${MAX_SIGNER_BYTES} bytes, got ${len}`)
  let s: string | undefined
  if (len <= KID_CACHE_MAX_LENGTH) {
    let h = len
    let ascii = true
    for (let i = start; i < start + len; i++) {
      const c = b[i] as number
      if (c > 0x7f) { ascii = false; break }
      h = (Math.imul(h, 31) + c) | 0
    }
    if (ascii) {
      const slot = (h ^ (h >>> 15)) & (KID_CACHE_SIZE - 1)
      const hit = kidCache[slot]
      if (hit !== undefined && hit.length === len) {
        let i = 0
        while (i < len && hit.charCodeAt(i) === b[start + i]) i++
        if (i === len) return hit
      }
      s = String.fromCharCode.apply(null, b.subarray(start, start + len) as unknown as number[])
      kidCache[slot] = checkString(s, 'signer', 1, MAX_SIGNER_LENGTH, failField)
      return s
    }
  }
  try {
    s = fatalUtf8.decode(b.subarray(start, start + len))
  } catch (err) {
    throw new InvalidFieldError('expected the kid (signer key id) to be UTF-8', { cause: err })
  }
  return checkString(s, 'signer', 1, MAX_SIGNER_LENGTH, failField)
}

/**
 * Reads the protected header map in `bytes[start..end)`: exactly `{1: -8, 4: kid}` in deterministic
 * order; returns the signer key id (the kid as UTF-8).
 */
function readProtected(bytes: Uint8Array, limits: Readonly<CodecLimits>, start: number, end: number): string {
  const b = bytes
  // The form every encoder here writes: a2 01 27 04 <bstr kid> (kid <= 23 bytes is too short for a DID URL: 58 / 59 heads).
  if (end - start > 6 && b[start] === 0xa2 && b[start + 1] === 0x01 && b[start + 2] === 0x27 && b[start + 3] === 0x04) {
    const h = b[start + 4] as number
    const kidLen = h === 0x58 ? (b[start + 5] as number) : h === 0x59 && end - start > 7 ? ((b[start + 5] as number) << 8) | (b[start + 6] as number) : -1
    const kidStart = start + (h === 0x58 ? 6 : 7)
    if ((h === 0x58 ? kidLen >= 24 : kidLen >= 0x100) && kidStart + kidLen === end) return kidString(b, kidStart, kidLen)
  }
  // Anything else: parsed generically, for the precise error (or a short kid).
  const pr = new Reader(bytes, limits, start, end)
  const n = pr.head()
  if (pr.type() !== 5) throw new InvalidFieldError(`expected the protected header to be a map, got major type ${pr.type()}`)
  const count = pr.takeItems(n, 2, 'a map')
  let alg = false
  let kid: string | undefined
  let prevStart = -1
  let prevEnd = -1
  for (let i = 0; i < count; i++) {
    const keyStart = pr.pos
    const label = pr.head()
    const t = pr.type()
    const keyEnd = pr.pos
    if (t !== 0 && t !== 1) throw new UnknownFieldError(`expected only the integer header labels 1 (alg) and 4 (kid) in the protected header, got a label of major type ${t}`)
    if (prevStart >= 0) {
      const c = compareBytes(b, prevStart, prevEnd, keyStart, keyEnd)
      if (c === 0) throw new DuplicateKeyError(`expected unique header labels, got ${String(label)} twice in the protected header`)
      if (c > 0) throw new NonCanonicalCborError('expected the protected header labels in deterministic order (1, then 4)')
    }
    prevStart = keyStart
    prevEnd = keyEnd
    if (t === 0 && label === COSE_HEADER_ALG) {
      const v = pr.head()
      if (pr.type() !== 1 || v !== -1 - COSE_ALG_EDDSA) {
        throw new InvalidFieldError(`expected alg ${COSE_ALG_EDDSA} (EdDSA), got ${pr.type() === 1 && typeof v === 'number' ? -1 - v : pr.type() === 0 ? String(v) : `major type ${pr.type()}`}`)
      }
      alg = true
    } else if (t === 0 && label === COSE_HEADER_KID) {
      const kn = pr.head()
      if (pr.type() !== 2) throw new InvalidFieldError(`expected the kid (signer key id) as a byte string, got major type ${pr.type()}`)
      const len = pr.length(kn, 'the kid')
      kid = kidString(b, pr.pos, len)
      pr.pos += len
    } else {
      throw new UnknownFieldError(`expected only the header parameters 1 (alg) and 4 (kid) in the protected header, got label ${t === 0 ? String(label) : String(-1 - Number(label))}`)
    }
  }
  if (pr.pos !== end) throw new TrailingBytesError(`expected one map in the protected header, got ${end - pr.pos} trailing byte(s)`)
  if (!alg) throw new MissingFieldError(`expected the header parameter 1 (alg) in the protected header, got none`)
  if (kid === undefined) throw new MissingFieldError(`expected the header parameter 4 (kid) in the protected header, got none`)
  return kid
}

/**
 * Strictly decodes a signed message (encodeMessage's output): a tagged COSE_Sign1 with the
 * protected header `{1: -8, 4: kid}`, an empty unprotected header, the DAG-CBOR body as payload
 * and a 64-byte signature. Rejects malformed or non-canonical CBOR, other COSE headers, unknown or
 * missing fields and wrong types with typed errors, bounded by `limits`. The result is frozen.
 *
 * The result references `bytes` (no copy): byte strings in it (`payload.data` when it is one, an
 * encryption nonce, `signature`...) are views into the input, and the message keeps views of the
 * received protected header and body, so verifyMessage checks the signature over the received
 * bytes without re-encoding and encodeMessage copies them. Do not modify `bytes` afterwards (a
 * change would show in the message and in what verifyMessage checks), and `.slice()` a byte string
 * you keep beyond the message if the input is large (a view keeps the whole input buffer alive).
 */
export function decodeMessage(bytes: Uint8Array, options?: { limits?: Partial<CodecLimits> }): KLPMessage {
  if (!(bytes instanceof Uint8Array)) throw new InvalidParametersError(`expected a Uint8Array, got ${describeValue(bytes)}`)
  const limits = resolveLimits(options?.limits)
  if (bytes.length > limits.maxMessageSize) {
    throw new MessageTooLargeError(`expected a message of at most ${limits.maxMessageSize} bytes, got ${bytes.length}`)
  }
  const r = new Reader(bytes, limits)
  r.freeze = true
  const tag = r.head()
  if (r.type() !== 6 || tag !== COSE_SIGN1_TAG) {
    throw new InvalidFieldError(`expected a COSE_Sign1 (CBOR tag ${COSE_SIGN1_TAG}), got major type ${r.type()} with argument ${String(tag)}`)
  }
  const n = r.head()
  if (r.type() !== 4 || n !== 4) throw new InvalidFieldError(`expected the COSE_Sign1 array of 4 items, got major type ${r.type()} with argument ${String(n)}`)
  // protected: bstr .cbor header map
  const pn = r.head()
  if (r.type() !== 2) throw new InvalidFieldError(`expected the protected header as a byte string, got major type ${r.type()}`)
  const protStart = r.headStart
  const pLen = r.length(pn, 'the protected header')
  const pStart = r.pos
  const pEnd = pStart + pLen
  const signer = readProtected(bytes, limits, pStart, pEnd)
  r.pos = pEnd
  // unprotected: an empty map
  const un = r.head()
  if (r.type() !== 5) throw new InvalidFieldError(`expected the unprotected header as a map, got major type ${r.type()}`)
  if (un !== 0) throw new UnknownFieldError(`expected an empty unprotected header, got ${String(un)} parameter(s)`)
  // payload: the body, attached
  const payloadStart = r.pos
  const bn = r.head()
  if (r.type() !== 2) throw new InvalidFieldError(`expected the payload (body) as a byte string, got major type ${r.type()}`)
  const bodyLen = r.length(bn, 'the body')
  const bodyStart = r.pos
  const bodyEnd = bodyStart + bodyLen
  // Decode the body in place, bounded to its byte string: the schema-directed fast path for a
  // well-formed body, else the generic decoder plus field checks (which report the error).
  const fast = fastBody(bytes, limits, bodyStart, bodyEnd)
  let raw: unknown
  if (fast === undefined) {
    const br = new Reader(bytes, limits, bodyStart, bodyEnd)
    br.freeze = true
    raw = br.value(0)
    if (br.pos !== bodyEnd) throw new TrailingBytesError(`expected one CBOR item in the body, got ${bodyEnd - br.pos} trailing byte(s)`)
  }
  r.pos = bodyEnd
  const sigN = r.head()
  if (r.type() !== 2) throw new InvalidFieldError(`expected the signature as a byte string, got major type ${r.type()}`)
  if (sigN !== SIGNATURE_LENGTH) throw new InvalidFieldError(`expected a signature of exactly ${SIGNATURE_LENGTH} bytes, got ${String(sigN)}`)
  const signature = r.bytesBody(sigN)
  if (r.pos !== r.end) throw new TrailingBytesError(`expected one message, got ${r.end - r.pos} trailing byte(s) at offset ${r.pos}`)

  // Views of what the signature covers, in the received bytes: no copy (see Signed).
  const body = bytes.subarray(bodyStart, bodyEnd)
  const signed: Signed = {
    signer,
    input: undefined,
    protectedBstr: bytes.subarray(protStart, pEnd),
    payloadBstr: bytes.subarray(payloadStart, bodyEnd),
    body,
  }
  if (fast !== undefined) {
    const m = fast.metadata
    const msg: KLPMessage = Object.freeze({
      version: fast.version,
      type: fast.type,
      source: fast.source,
      target: fast.target,
      payload: fast.payload,
      metadata: Object.freeze(m.correlation_id === undefined
        ? { message_id: messageIdFromBody(body), priority: m.priority, ttl: m.ttl, routing_hints: m.routing_hints, trust_requirements: m.trust_requirements }
        : { message_id: messageIdFromBody(body), priority: m.priority, ttl: m.ttl, routing_hints: m.routing_hints, trust_requirements: m.trust_requirements, correlation_id: m.correlation_id }),
      signature,
      signer,
      timestamp: fast.timestamp,
    })
    bodies.set(msg, signed)
    return msg
  }
  const o = fields(raw, 'message body', BODY_FIELDS, BODY_REQUIRED)
  const msg: KLPMessage = {
    version: checkString(o.version, 'version', 1, MAX_VERSION_LENGTH, failField, VERSION_RE),
    type: checkType(o.type, failField),
    source: wireAddress(o.source, 'source'),
    target: wireAddress(o.target, 'target'),
    payload: readPayload(o.payload),
    metadata: readMetadata(o.metadata, messageIdFromBody(body)),
    signature,
    signer,
    timestamp: checkUint(o.timestamp, 'timestamp', Number.MAX_SAFE_INTEGER, failField),
  }
  Object.freeze(msg)
  bodies.set(msg, signed)
  return msg
}

// ------------------------------------------------------------------ verify / expiry

/**
 * Verifies the signature of a message through a SignatureVerifier, over the COSE Sig_structure
 * `["Signature1", protected, h'', body]`. On a message from decodeMessage or signMessage the exact
 * signed / received bytes are used; otherwise the body is re-encoded and its id checked. Throws InvalidSignatureError (and whatever the verifier throws,
 * e.g. UnknownKeyError).
 */
export async function verifyMessage(msg: KLPMessage, verifier: SignatureVerifier, options?: AbortOptions): Promise<void> {
  throwIfAborted(options?.signal)
  if (msg === null || typeof msg !== 'object') failParam(`expected a KLPMessage, got ${describeValue(msg)}`)
  if (typeof msg.signer !== 'string' || msg.signer.length === 0) throw new InvalidSignatureError(`expected a signer key id, got ${describeValue(msg.signer)}`)
  if (!(msg.signature instanceof Uint8Array) || msg.signature.length !== SIGNATURE_LENGTH) {
    throw new InvalidSignatureError(`expected a signature of exactly ${SIGNATURE_LENGTH} bytes, got ${describeValue(msg.signature)}`)
  }
  const s = signedOf(msg)
  // internal: not handed to callers, only to the verifier; built from the received bytes when decoded
  const input = s.input ?? sigStructure(s.protectedBstr, s.payloadBstr)
  const ok = await verifier.verifySignature(msg.signer, input, msg.signature, options?.signal === undefined ? undefined : { signal: options.signal })
  throwIfAborted(options?.signal)
  if (ok !== true) throw new InvalidSignatureError(`expected a valid signature by ${msg.signer} on message ${msg.metadata.message_id}, got an invalid one`)
}

/** Options of `checkExpiry`. */
export interface ExpiryOptions {
  /** Current time, ms since the epoch. Default `Date.now()`. */
  now?: number
  /** Tolerated clock difference in ms, both directions. Default 30,000. */
  clockSkewMs?: number
}

/** The instant (ms) after which a message is expired, without skew: `timestamp + ttl * 1000`. */
export function expiresAt(msg: Pick<KLPMessage, 'timestamp' | 'metadata'>): number {
  return msg.timestamp + msg.metadata.ttl * 1000
}

/**
 * Throws MessageExpiredError when `now > timestamp + ttl*1000 + clockSkewMs`, or when the message
 * claims a time more than `clockSkewMs` in the future.
 */
export function checkExpiry(msg: Pick<KLPMessage, 'timestamp' | 'metadata'>, options?: ExpiryOptions): void {
  const now = options?.now ?? systemClock.now()
  const skew = options?.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS
  if (!Number.isFinite(now)) failParam(`expected now to be a finite number, got ${describeValue(now)}`)
  if (!Number.isFinite(skew) || skew < 0) failParam(`expected clockSkewMs >= 0, got ${describeValue(skew)}`)
  const exp = expiresAt(msg)
  if (now > exp + skew) {
    throw new MessageExpiredError(`expected a message valid until ${exp} (+${skew} ms skew), got now ${now}`)
  }
  if (msg.timestamp > now + skew) {
    throw new MessageExpiredError(`expected a timestamp at most ${skew} ms in the future, got ${msg.timestamp - now} ms ahead`)
  }
}
