/**
 * KLP messages: construction, canonical body encoding, content-addressed ids, the signed
 * envelope, strict decoding, signature verification and expiry.
 *
 * Wire form of a signed message (see docs/PROTOCOL.md):
 *   envelope      = [ signer: tstr, body: bstr, signature: bstr .size 64 ]   ; CBOR array(3)
 *   body          = canonical CBOR map of the unsigned message, without message_id
 *   message_id    = CIDv1(dag-cbor, sha2-256 truncated to 128 bits of body), base32
 *   signing input = [ "KLP-Sign1", signer, body ]                         ; CBOR array(3)
 * The signed body travels as a byte string, so a verifier checks the signature over the bytes
 * it received, without re-encoding.
 */
import * as nodeCrypto from 'node:crypto'
import {
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
import { base32 } from 'multiformats/bases/base32'
import { CID } from 'multiformats/cid'
import { formatAddress, parseAddress, toAddress } from './address.js'
import { Reader, Writer, checkWriterItems, limitWriter, withWriter, writeValue } from './cbor.js'
import {
  InvalidFieldError,
  MalformedCborError,
  MessageIdMismatchError,
  MessageTooLargeError,
  MissingFieldError,
  TrailingBytesError,
  UnknownFieldError,
} from './errors.js'
import { resolveLimits } from './limits.js'
import type { CodecLimits } from './limits.js'

/** Protocol version written by createMessage. */
export const KLP_VERSION = '1.0'
/** Default time to live, seconds. */
export const DEFAULT_TTL = 300
/** Default clock-skew window for checkExpiry, milliseconds. */
export const DEFAULT_CLOCK_SKEW_MS = 30_000
/** Context string of the signing input. */
export const SIGNING_CONTEXT = 'KLP-Sign1'
/** Multicodec of the message id CID (dag-cbor: the body is valid DAG-CBOR). */
export const MESSAGE_ID_CODEC = 0x71
/** Multihash code of the message id digest (sha2-256, truncated to 16 bytes). */
export const MESSAGE_ID_HASH = 0x12
/** Bytes of digest kept in a message id (128 bits). */
export const MESSAGE_ID_DIGEST_LENGTH = 16
/** Ed25519 signature length. */
export const SIGNATURE_LENGTH = 64

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

// Pre-encoded map keys (text-string head + UTF-8), written in canonical order.
const K = Object.fromEntries(
  [
    'type', 'source', 'target', 'payload', 'version', 'metadata', 'timestamp',
    'data', 'encryption', 'compression', 'content_type',
    'nonce', 'key_id', 'enabled', 'algorithm', 'ephemeral_key',
    'ttl', 'priority', 'routing_hints', 'correlation_id', 'trust_requirements',
    'verification_level', 'minimum_trust_score', 'required_endorsements',
    'kind', 'value',
  ].map((k) => {
    const w = new Writer(32)
    w.text(k)
    return [k, w.finish()]
  }),
) as Record<string, Uint8Array>

function key(w: Writer, k: string): void {
  w.raw(K[k] as Uint8Array)
}

// ------------------------------------------------------------------ validation helpers

type Fail = (msg: string) => never
const failParam: Fail = (msg) => { throw new InvalidParametersError(msg) }
const failField: Fail = (msg) => { throw new InvalidFieldError(msg) }

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (v === undefined) return 'undefined'
  if (v instanceof Uint8Array) return `${v.length} bytes`
  if (Array.isArray(v)) return 'array'
  if (typeof v === 'string') return v.length > 40 ? `string(${v.length})` : JSON.stringify(v)
  if (typeof v === 'object') return 'object'
  return `${typeof v} ${String(v)}`
}

function checkString(v: unknown, name: string, min: number, max: number, fail: Fail, re?: RegExp): string {
  if (typeof v !== 'string') fail(`expected ${name} to be a string, got ${describe(v)}`)
  if (v.length < min || v.length > max) fail(`expected ${name} of ${min}..${max} chars, got ${v.length}`)
  if (re !== undefined && !re.test(v)) fail(`expected ${name} to match ${String(re)}, got ${describe(v)}`)
  return v
}

function checkUint(v: unknown, name: string, max: number, fail: Fail): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max || Object.is(v, -0)) {
    fail(`expected ${name} to be an integer in 0..${max}, got ${describe(v)}`)
  }
  return v
}

function checkBytes(v: unknown, name: string, min: number, max: number, fail: Fail): Uint8Array {
  if (!(v instanceof Uint8Array)) fail(`expected ${name} to be a Uint8Array, got ${describe(v)}`)
  if (v.length < min || v.length > max) {
    fail(min === max ? `expected ${name} of exactly ${min} bytes, got ${v.length}` : `expected ${name} of ${min}..${max} bytes, got ${v.length}`)
  }
  return v
}

function checkBool(v: unknown, name: string, fail: Fail): boolean {
  if (typeof v !== 'boolean') fail(`expected ${name} to be a boolean, got ${describe(v)}`)
  return v
}

function checkType(v: unknown, fail: Fail): KLPMessageType {
  if (typeof v !== 'string' || !TYPES.has(v)) fail(`expected type to be one of ${KLP_MESSAGE_TYPES.join(', ')}, got ${describe(v)}`)
  return v as KLPMessageType
}

function checkPriority(v: unknown, fail: Fail): MessagePriority {
  if (typeof v !== 'number' || !PRIORITIES.has(v)) fail(`expected priority to be one of 1, 5, 8, 10, got ${describe(v)}`)
  return v as MessagePriority
}

function checkLevel(v: unknown, fail: Fail): VerificationLevel {
  if (typeof v !== 'string' || !LEVELS.has(v)) fail(`expected verification_level to be one of ${[...LEVELS].join(', ')}, got ${describe(v)}`)
  return v as VerificationLevel
}

function checkScore(v: unknown, fail: Fail): number {
  if (typeof v !== 'number' || !(v >= 0 && v <= 10) || Object.is(v, -0)) fail(`expected minimum_trust_score in 0..10, got ${describe(v)}`)
  return v
}

// ------------------------------------------------------------------ createMessage

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

/** Builds a validated unsigned message with defaults filled in. Throws InvalidParametersError / InvalidAddressError. */
export function createMessage(init: CreateMessageInit): UnsignedKLPMessage {
  if (init === null || typeof init !== 'object') failParam(`expected an init object, got ${describe(init)}`)
  const msg: UnsignedKLPMessage = {
    version: init.version ?? KLP_VERSION,
    type: init.type,
    source: toAddress(init.source),
    target: toAddress(init.target),
    payload: {
      content_type: init.content_type ?? CONTENT_TYPES.CBOR,
      data: init.data,
      encryption: init.encryption ?? { enabled: false },
      compression: init.compression ?? { enabled: false },
    },
    metadata: {
      priority: init.priority ?? MessagePriority.NORMAL,
      ttl: init.ttl ?? DEFAULT_TTL,
      routing_hints: init.routing_hints ?? [],
      trust_requirements: init.trust_requirements ?? { minimum_trust_score: 0, required_endorsements: 0, verification_level: VerificationLevel.NONE },
    },
    timestamp: init.timestamp ?? Date.now(),
  }
  if (init.correlation_id !== undefined) msg.metadata.correlation_id = init.correlation_id
  encodeBody(msg) // validates every field exactly as the wire does
  return msg
}

// ------------------------------------------------------------------ body encoding

function writeEncryption(w: Writer, e: EncryptionInfo): void {
  if (e === null || typeof e !== 'object') failParam(`expected payload.encryption to be an object, got ${describe(e)}`)
  const enabled = checkBool(e.enabled, 'payload.encryption.enabled', failParam)
  if (!enabled) {
    if (e.algorithm !== undefined || e.nonce !== undefined || e.key_id !== undefined || e.ephemeral_key !== undefined) {
      failParam('expected no algorithm, nonce, key_id or ephemeral_key when encryption is disabled')
    }
    w.head(5, 1)
    key(w, 'enabled')
    w.bool(false)
    return
  }
  if (e.algorithm !== 'AES-256-GCM') failParam(`expected payload.encryption.algorithm "AES-256-GCM", got ${describe(e.algorithm)}`)
  checkBytes(e.nonce, 'payload.encryption.nonce', NONCE_LENGTH, NONCE_LENGTH, failParam)
  let n = 3
  if (e.key_id !== undefined) { checkString(e.key_id, 'payload.encryption.key_id', 1, MAX_KEY_ID_LENGTH, failParam); n++ }
  if (e.ephemeral_key !== undefined) { checkBytes(e.ephemeral_key, 'payload.encryption.ephemeral_key', 1, MAX_EPHEMERAL_KEY_LENGTH, failParam); n++ }
  w.head(5, n)
  key(w, 'nonce'); w.bytes(e.nonce as Uint8Array)
  if (e.key_id !== undefined) { key(w, 'key_id'); w.text(e.key_id) }
  key(w, 'enabled'); w.bool(true)
  key(w, 'algorithm'); w.text(e.algorithm)
  if (e.ephemeral_key !== undefined) { key(w, 'ephemeral_key'); w.bytes(e.ephemeral_key) }
}

function writeCompression(w: Writer, c: CompressionInfo): void {
  if (c === null || typeof c !== 'object') failParam(`expected payload.compression to be an object, got ${describe(c)}`)
  const enabled = checkBool(c.enabled, 'payload.compression.enabled', failParam)
  if (!enabled) {
    if (c.algorithm !== undefined) failParam('expected no algorithm when compression is disabled')
    w.head(5, 1)
    key(w, 'enabled')
    w.bool(false)
    return
  }
  if (c.algorithm !== 'gzip') failParam(`expected payload.compression.algorithm "gzip", got ${describe(c.algorithm)}`)
  w.head(5, 2)
  key(w, 'enabled'); w.bool(true)
  key(w, 'algorithm'); w.text('gzip')
}

function writePayload(w: Writer, p: KLPPayload, maxDepth: number): void {
  if (p === null || typeof p !== 'object') failParam(`expected payload to be an object, got ${describe(p)}`)
  const ct = checkString(p.content_type, 'payload.content_type', 1, MAX_CONTENT_TYPE_LENGTH, failParam, CONTENT_TYPE_RE)
  const transformed = p.encryption?.enabled === true || p.compression?.enabled === true
  if (transformed && !(p.data instanceof Uint8Array)) failParam(`expected payload.data to be a Uint8Array when compressed or encrypted, got ${describe(p.data)}`)
  w.head(5, 4)
  key(w, 'data'); writeValue(w, p.data, 2, maxDepth)
  key(w, 'encryption'); writeEncryption(w, p.encryption)
  key(w, 'compression'); writeCompression(w, p.compression)
  key(w, 'content_type'); w.text(ct)
}

function writeMetadata(w: Writer, m: UnsignedKLPMessage['metadata']): void {
  if (m === null || typeof m !== 'object') failParam(`expected metadata to be an object, got ${describe(m)}`)
  checkUint(m.ttl, 'metadata.ttl', MAX_U32, failParam)
  checkPriority(m.priority, failParam)
  const hints = m.routing_hints
  if (!Array.isArray(hints)) failParam(`expected metadata.routing_hints to be an array, got ${describe(hints)}`)
  if (hints.length > MAX_ROUTING_HINTS) failParam(`expected at most ${MAX_ROUTING_HINTS} routing hints, got ${hints.length}`)
  const t = m.trust_requirements
  if (t === null || typeof t !== 'object') failParam(`expected metadata.trust_requirements to be an object, got ${describe(t)}`)
  const hasCorr = m.correlation_id !== undefined
  if (hasCorr) checkString(m.correlation_id, 'metadata.correlation_id', 1, MAX_CORRELATION_ID_LENGTH, failParam)
  w.head(5, hasCorr ? 5 : 4)
  key(w, 'ttl'); w.head(0, m.ttl)
  key(w, 'priority'); w.head(0, m.priority)
  key(w, 'routing_hints'); w.head(4, hints.length)
  for (const h of hints) {
    if (h === null || typeof h !== 'object') failParam(`expected a routing hint object, got ${describe(h)}`)
    w.head(5, 2)
    key(w, 'kind'); w.text(checkString(h.kind, 'routing_hints[].kind', 1, MAX_HINT_KIND_LENGTH, failParam))
    key(w, 'value'); w.text(checkString(h.value, 'routing_hints[].value', 0, MAX_HINT_VALUE_LENGTH, failParam))
  }
  if (hasCorr) { key(w, 'correlation_id'); w.text(m.correlation_id as string) }
  key(w, 'trust_requirements')
  w.head(5, 3)
  key(w, 'verification_level'); w.text(checkLevel(t.verification_level, failParam))
  key(w, 'minimum_trust_score'); writeValue(w, checkScore(t.minimum_trust_score, failParam), 0, 1)
  key(w, 'required_endorsements'); w.head(0, checkUint(t.required_endorsements, 'trust_requirements.required_endorsements', MAX_U32, failParam))
}

const formatted = new WeakMap<KLPAddress, string>()
/** formatAddress, cached for frozen address objects (which cannot change). */
function addressString(a: KLPAddress): string {
  if (a !== null && typeof a === 'object') {
    const hit = formatted.get(a)
    if (hit !== undefined) return hit
  }
  const s = formatAddress(a)
  if (Object.isFrozen(a)) formatted.set(a, s)
  return s
}

function writeBody(w: Writer, msg: UnsignedKLPMessage, maxDepth: number): void {
  if (msg === null || typeof msg !== 'object') failParam(`expected a message object, got ${describe(msg)}`)
  const version = checkString(msg.version, 'version', 1, MAX_VERSION_LENGTH, failParam, VERSION_RE)
  checkType(msg.type, failParam)
  checkUint(msg.timestamp, 'timestamp', Number.MAX_SAFE_INTEGER, failParam)
  w.head(5, 7)
  key(w, 'type'); w.text(msg.type)
  key(w, 'source'); w.text(addressString(msg.source))
  key(w, 'target'); w.text(addressString(msg.target))
  key(w, 'payload'); writePayload(w, msg.payload, maxDepth)
  key(w, 'version'); w.text(version)
  key(w, 'metadata'); writeMetadata(w, msg.metadata)
  key(w, 'timestamp'); w.head(0, msg.timestamp)
}

/**
 * The canonical body of a message: the canonical CBOR map of everything but `signature`,
 * `signer` and `metadata.message_id`. Validates every field (InvalidParametersError).
 */
export function encodeBody(msg: UnsignedKLPMessage | KLPMessage, options?: { limits?: Partial<CodecLimits> }): Uint8Array {
  const limits = resolveLimits(options?.limits)
  return withWriter((w) => {
    limitWriter(w, limits)
    writeBody(w, msg, limits.maxDepth)
    checkWriterItems(w, limits)
    if (w.pos > limits.maxMessageSize) throw new MessageTooLargeError(`expected a message body of at most ${limits.maxMessageSize} bytes, got ${w.pos}`)
  })
}

// ------------------------------------------------------------------ ids

type OneShotHash = (alg: string, data: Uint8Array, enc: 'buffer') => Buffer
const oneShot = (nodeCrypto as unknown as { hash?: OneShotHash }).hash
const sha256 = (data: Uint8Array): Uint8Array =>
  oneShot !== undefined ? oneShot('sha256', data, 'buffer') : nodeCrypto.createHash('sha256').update(data).digest()

const ID_PREFIX = Uint8Array.of(0x01, MESSAGE_ID_CODEC, MESSAGE_ID_HASH, MESSAGE_ID_DIGEST_LENGTH)

/** The message id of a canonical body: CIDv1 (dag-cbor, sha2-256 truncated to 128 bits), base32. */
export function messageIdFromBody(body: Uint8Array): string {
  const digest = sha256(body)
  const cid = new Uint8Array(4 + MESSAGE_ID_DIGEST_LENGTH)
  cid.set(ID_PREFIX, 0)
  cid.set(digest.subarray(0, MESSAGE_ID_DIGEST_LENGTH), 4)
  return base32.encode(cid)
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
    throw new InvalidParametersError(`expected a CID string, got ${describe(id)}`, { cause: err })
  }
  if (cid.version !== 1 || cid.code !== MESSAGE_ID_CODEC || cid.multihash.code !== MESSAGE_ID_HASH || cid.multihash.size !== MESSAGE_ID_DIGEST_LENGTH) {
    throw new InvalidParametersError(`expected a CIDv1 dag-cbor with a 16-byte sha2-256 digest, got ${id}`)
  }
  return cid
}

// ------------------------------------------------------------------ signing

interface Signed {
  signer: string
  body: Uint8Array
}
/** Canonical body bytes of messages produced by signMessage or decodeMessage (never re-encoded). */
const bodies = new WeakMap<object, Signed>()

const SIGNING_PREFIX = (() => {
  const w = new Writer(16)
  w.head(4, 3)
  w.text(SIGNING_CONTEXT)
  return w.finish()
})()

/** The exact bytes signed: CBOR array `["KLP-Sign1", signer, body]`. */
export function signingInput(signer: string, body: Uint8Array): Uint8Array {
  const w = new Writer(SIGNING_PREFIX.length + signer.length * 3 + body.length + 18)
  w.raw(SIGNING_PREFIX)
  w.text(signer)
  w.bytes(body)
  return w.buf.length === w.pos ? w.buf : w.buf.subarray(0, w.pos)
}

/** Signing input of a message: reuses the received/signed body when known, else re-encodes. */
export function getSigningInput(msg: KLPMessage): Uint8Array {
  return signingInput(msg.signer, bodyOf(msg))
}

function bodyOf(msg: KLPMessage): Uint8Array {
  const cached = bodies.get(msg)
  if (cached !== undefined && cached.signer === msg.signer) return cached.body
  const body = encodeBody(msg)
  const id = messageIdFromBody(body)
  if (msg.metadata.message_id !== id) {
    throw new MessageIdMismatchError(`expected metadata.message_id ${id} (computed from the content), got ${describe(msg.metadata.message_id)}`)
  }
  return body
}

function freezeAddress(a: KLPAddress): KLPAddress {
  return Object.freeze({ ...a })
}

/**
 * Signs a message: computes its id, signs `signingInput(signer.keyId, body)` and returns a new
 * frozen KLPMessage with `metadata.message_id`, `signer` and `signature` filled in. (Objects
 * inside `payload.data` are shared with the input, not copied: do not mutate them afterwards.)
 */
export async function signMessage(msg: UnsignedKLPMessage, signer: Signer, options?: AbortOptions): Promise<KLPMessage> {
  throwIfAborted(options?.signal)
  if (signer === null || typeof signer !== 'object' || typeof signer.sign !== 'function') failParam(`expected a Signer, got ${describe(signer)}`)
  const keyId = checkString(signer.keyId, 'signer.keyId', 1, MAX_SIGNER_LENGTH, failParam)
  const body = encodeBody(msg)
  const id = messageIdFromBody(body)
  if (msg.metadata.message_id !== undefined && msg.metadata.message_id !== id) {
    throw new MessageIdMismatchError(`expected metadata.message_id ${id} (computed from the content), got ${describe(msg.metadata.message_id)}`)
  }
  const sig = await signer.sign(signingInput(keyId, body))
  throwIfAborted(options?.signal)
  if (!(sig instanceof Uint8Array) || sig.length !== SIGNATURE_LENGTH) {
    throw new InvalidSignatureError(`expected the signer to return ${SIGNATURE_LENGTH} bytes, got ${describe(sig)}`)
  }
  const m = msg.metadata
  const metadata: KLPMessage['metadata'] = {
    message_id: id,
    priority: m.priority,
    ttl: m.ttl,
    routing_hints: Object.freeze(m.routing_hints.map((h) => Object.freeze({ kind: h.kind, value: h.value }))) as RoutingHint[],
    trust_requirements: Object.freeze({ ...m.trust_requirements }),
  }
  if (m.correlation_id !== undefined) metadata.correlation_id = m.correlation_id
  const p = msg.payload
  const out: KLPMessage = {
    version: msg.version,
    type: msg.type,
    source: freezeAddress(msg.source),
    target: freezeAddress(msg.target),
    payload: Object.freeze({
      content_type: p.content_type,
      data: p.data,
      encryption: Object.freeze({ ...p.encryption }),
      compression: Object.freeze({ ...p.compression }),
    }),
    metadata: Object.freeze(metadata),
    signature: Uint8Array.from(sig),
    signer: keyId,
    timestamp: msg.timestamp,
  }
  Object.freeze(out)
  bodies.set(out, { signer: keyId, body })
  return out
}

// ------------------------------------------------------------------ envelope

/** Canonical bytes of a signed message: CBOR array `[signer, body, signature]`. */
export function encodeMessage(msg: KLPMessage, options?: { limits?: Partial<CodecLimits> }): Uint8Array {
  if (msg === null || typeof msg !== 'object') failParam(`expected a KLPMessage, got ${describe(msg)}`)
  const limits = resolveLimits(options?.limits)
  const signer = checkString(msg.signer, 'signer', 1, MAX_SIGNER_LENGTH, failParam)
  const sig = checkBytes(msg.signature, 'signature', SIGNATURE_LENGTH, SIGNATURE_LENGTH, failParam)
  const body = bodyOf(msg)
  const w = new Writer(body.length + signer.length * 3 + 90)
  w.head(4, 3)
  w.text(signer)
  w.bytes(body)
  w.bytes(sig)
  if (w.pos > limits.maxMessageSize) throw new MessageTooLargeError(`expected an encoded message of at most ${limits.maxMessageSize} bytes, got ${w.pos}`)
  return w.buf.length === w.pos ? w.buf : w.buf.slice(0, w.pos)
}

// ------------------------------------------------------------------ decoding

type Obj = Record<string, unknown>

function fields(v: unknown, name: string, allowed: ReadonlySet<string>, required: readonly string[]): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) {
    throw new InvalidFieldError(`expected ${name} to be a map, got ${describe(v)}`)
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
const PAYLOAD_FIELDS = set('data', 'encryption', 'compression', 'content_type')
const ENC_FIELDS = set('nonce', 'key_id', 'enabled', 'algorithm', 'ephemeral_key')
const COMP_FIELDS = set('enabled', 'algorithm')
const META_FIELDS = set('ttl', 'priority', 'routing_hints', 'correlation_id', 'trust_requirements')
const TRUST_FIELDS = set('verification_level', 'minimum_trust_score', 'required_endorsements')
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
    throw new InvalidFieldError(`expected ${name} to be a canonical klp:// address, got ${describe(s)}`, { cause: err })
  }
}

function readEncryption(v: unknown): EncryptionInfo {
  const o = fields(v, 'payload.encryption', ENC_FIELDS, ['enabled'])
  if (!checkBool(o.enabled, 'payload.encryption.enabled', failField)) {
    if (Object.keys(o).length !== 1) failField('expected no algorithm, nonce, key_id or ephemeral_key when encryption is disabled')
    return Object.freeze({ enabled: false })
  }
  if (o.algorithm !== 'AES-256-GCM') failField(`expected payload.encryption.algorithm "AES-256-GCM", got ${describe(o.algorithm)}`)
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
  if (o.algorithm !== 'gzip') failField(`expected payload.compression.algorithm "gzip", got ${describe(o.algorithm)}`)
  return Object.freeze({ enabled: true, algorithm: 'gzip' })
}

function readPayload(v: unknown): KLPPayload {
  const o = fields(v, 'payload', PAYLOAD_FIELDS, ['data', 'encryption', 'compression', 'content_type'])
  const encryption = readEncryption(o.encryption)
  const compression = readCompression(o.compression)
  if ((encryption.enabled || compression.enabled) && !(o.data instanceof Uint8Array)) {
    failField(`expected payload.data to be a byte string when compressed or encrypted, got ${describe(o.data)}`)
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
  if (!Array.isArray(hints)) failField(`expected metadata.routing_hints to be an array, got ${describe(hints)}`)
  if (hints.length > MAX_ROUTING_HINTS) failField(`expected at most ${MAX_ROUTING_HINTS} routing hints, got ${hints.length}`)
  for (const h of hints) {
    const ho = fields(h, 'routing hint', HINT_FIELDS, ['kind', 'value'])
    checkString(ho.kind, 'routing_hints[].kind', 1, MAX_HINT_KIND_LENGTH, failField)
    checkString(ho.value, 'routing_hints[].value', 0, MAX_HINT_VALUE_LENGTH, failField)
  }
  const t = fields(o.trust_requirements, 'metadata.trust_requirements', TRUST_FIELDS, [...TRUST_FIELDS])
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

/**
 * Strictly decodes the canonical bytes of a signed message (encodeMessage's output). Rejects
 * malformed or non-canonical CBOR, unknown or missing fields and wrong types with typed errors,
 * bounded by `limits`. The result is frozen; it keeps the received body so verifyMessage checks
 * the signature over the received bytes without re-encoding.
 */
export function decodeMessage(bytes: Uint8Array, options?: { limits?: Partial<CodecLimits> }): KLPMessage {
  if (!(bytes instanceof Uint8Array)) throw new InvalidParametersError(`expected a Uint8Array, got ${describe(bytes)}`)
  const limits = resolveLimits(options?.limits)
  if (bytes.length > limits.maxMessageSize) {
    throw new MessageTooLargeError(`expected a message of at most ${limits.maxMessageSize} bytes, got ${bytes.length}`)
  }
  const r = new Reader(bytes, limits)
  r.freeze = true
  const n = r.head()
  if (r.type() !== 4 || n !== 3) throw new InvalidFieldError(`expected the envelope to be a CBOR array of 3 items, got major type ${r.type()} with argument ${String(n)}`)
  const sn = r.head()
  if (r.type() !== 3) throw new InvalidFieldError(`expected the signer as a text string, got major type ${r.type()}`)
  const signer = r.textBody(sn)
  checkString(signer, 'signer', 1, MAX_SIGNER_LENGTH, failField)
  const bn = r.head()
  if (r.type() !== 2) throw new InvalidFieldError(`expected the body as a byte string, got major type ${r.type()}`)
  const bodyLen = r.length(bn, 'the body')
  const bodyStart = r.pos
  const bodyEnd = bodyStart + bodyLen
  // Decode the body in place, bounded to its byte string.
  const br = new Reader(bytes, limits, bodyStart, bodyEnd)
  br.freeze = true
  const raw = br.value(0)
  if (br.pos !== bodyEnd) throw new TrailingBytesError(`expected one CBOR item in the body, got ${bodyEnd - br.pos} trailing byte(s)`)
  r.pos = bodyEnd
  const sigN = r.head()
  if (r.type() !== 2) throw new InvalidFieldError(`expected the signature as a byte string, got major type ${r.type()}`)
  if (sigN !== SIGNATURE_LENGTH) throw new InvalidFieldError(`expected a signature of exactly ${SIGNATURE_LENGTH} bytes, got ${String(sigN)}`)
  const signature = r.bytesBody(sigN)
  if (r.pos !== r.end) throw new TrailingBytesError(`expected one message, got ${r.end - r.pos} trailing byte(s) at offset ${r.pos}`)

  const body = bytes.slice(bodyStart, bodyEnd)
  const o = fields(raw, 'message body', BODY_FIELDS, [...BODY_FIELDS])
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
  bodies.set(msg, { signer, body })
  return msg
}

// ------------------------------------------------------------------ verify / expiry

/**
 * Verifies the signature of a message through a SignatureVerifier. On a message from
 * decodeMessage or signMessage the exact signed bytes are reused; otherwise the body is
 * re-encoded and its id checked. Throws InvalidSignatureError (and whatever the verifier throws,
 * e.g. UnknownKeyError).
 */
export async function verifyMessage(msg: KLPMessage, verifier: SignatureVerifier, options?: AbortOptions): Promise<void> {
  throwIfAborted(options?.signal)
  if (msg === null || typeof msg !== 'object') failParam(`expected a KLPMessage, got ${describe(msg)}`)
  if (typeof msg.signer !== 'string' || msg.signer.length === 0) throw new InvalidSignatureError(`expected a signer key id, got ${describe(msg.signer)}`)
  if (!(msg.signature instanceof Uint8Array) || msg.signature.length !== SIGNATURE_LENGTH) {
    throw new InvalidSignatureError(`expected a signature of exactly ${SIGNATURE_LENGTH} bytes, got ${describe(msg.signature)}`)
  }
  const input = getSigningInput(msg)
  const ok = await verifier.verifySignature(msg.signer, input, msg.signature, options?.signal === undefined ? undefined : { signal: options.signal })
  throwIfAborted(options?.signal)
  if (ok !== true) throw new InvalidSignatureError(`expected a valid signature by ${msg.signer} on message ${msg.metadata.message_id}, got an invalid one`)
}

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
  const now = options?.now ?? Date.now()
  const skew = options?.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS
  if (!Number.isFinite(now)) failParam(`expected now to be a finite number, got ${describe(now)}`)
  if (!Number.isFinite(skew) || skew < 0) failParam(`expected clockSkewMs >= 0, got ${describe(skew)}`)
  const exp = expiresAt(msg)
  if (now > exp + skew) {
    throw new MessageExpiredError(`expected a message valid until ${exp} (+${skew} ms skew), got now ${now}`)
  }
  if (msg.timestamp > now + skew) {
    throw new MessageExpiredError(`expected a timestamp at most ${skew} ms in the future, got ${msg.timestamp - now} ms ahead`)
  }
}
