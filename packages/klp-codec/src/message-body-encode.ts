/**
 * The canonical DAG-CBOR body of a message (everything but `signature`, `signer` and
 * `metadata.message_id`): the schema-directed writers that validate every field as they write it,
 * encodeBody, and the caches of canonical address strings.
 */
import { describeValue } from '@kos-mesh/interface'
import type { CompressionInfo, EncryptionInfo, KLPAddress, KLPMessage, KLPPayload, UnsignedKLPMessage } from '@kos-mesh/interface'
import { MAX_ADDRESS_LENGTH, formatAddress, parseAddress } from './address.js'
import { Writer, checkWriterItems, limitWriter, withWriter, writeValue } from './cbor-encode.js'
import { MessageTooLargeError } from './errors.js'
import { resolveLimits } from './limits.js'
import type { CodecLimits } from './limits.js'
import {
  CONTENT_TYPE_RE, DISABLED, K, MAX_CONTENT_TYPE_LENGTH, MAX_CORRELATION_ID_LENGTH, MAX_EPHEMERAL_KEY_LENGTH,
  MAX_HINT_KIND_LENGTH, MAX_HINT_VALUE_LENGTH, MAX_KEY_ID_LENGTH, MAX_ROUTING_HINTS, MAX_U32, MAX_VERSION_LENGTH,
  NONCE_LENGTH, VERSION_RE, checkBool, checkBytes, checkLevel, checkPriority, checkScore, checkString, checkType,
  checkUint, failParam,
} from './message-schema.js'

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
export const canonical = new WeakMap<object, string>()

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
export function addressString(a: KLPAddress): string {
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
export function initAddress(a: KLPAddress | string): KLPAddress {
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
export function writeCheckedBody(w: Writer, msg: UnsignedKLPMessage | KLPMessage, limits: Readonly<CodecLimits>): void {
  const start = w.pos
  limitWriter(w, limits)
  writeBody(w, msg, limits.maxDepth)
  checkWriterItems(w, limits)
  const len = w.pos - start
  if (len > limits.maxMessageSize) throw new MessageTooLargeError(`expected a message body of at most ${limits.maxMessageSize} bytes, got ${len}`)
}
