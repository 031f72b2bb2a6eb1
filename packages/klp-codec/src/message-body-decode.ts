/**
 * Decoding a message body: the generic field readers that check a generically decoded body map
 * (and report the precise typed error), and the schema-directed fast path that reads a
 * well-formed body straight from the bytes.
 */
import { describeValue } from '@kos-mesh/interface'
import type {
  CompressionInfo, EncryptionInfo, KLPAddress, KLPMessage, KLPMessageType, KLPPayload, KLPValue, MessagePriority,
  RoutingHint, TrustRequirements, VerificationLevel,
} from '@kos-mesh/interface'
import { parseAddress } from './address.js'
import { Reader } from './cbor-decode.js'
import { InvalidFieldError, MissingFieldError, UnknownFieldError } from './errors.js'
import type { CodecLimits } from './limits.js'
import {
  CONTENT_TYPE_RE, DISABLED, DISABLED_INFO, K, LEVELS, MAX_CONTENT_TYPE_LENGTH, MAX_CORRELATION_ID_LENGTH,
  MAX_EPHEMERAL_KEY_LENGTH, MAX_HINT_KIND_LENGTH, MAX_HINT_VALUE_LENGTH, MAX_KEY_ID_LENGTH, MAX_ROUTING_HINTS,
  MAX_U32, MAX_VERSION_LENGTH, NONCE_LENGTH, NO_HINTS, PRIORITIES, TYPES, VERSION_RE, checkBool, checkBytes,
  checkLevel, checkPriority, checkScore, checkString, checkUint, failField,
} from './message-schema.js'
import type { Fail } from './message-schema.js'

type Obj = Record<string, unknown>

export function fields(v: unknown, name: string, allowed: ReadonlySet<string>, required: readonly string[]): Obj {
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
export const BODY_FIELDS = set('type', 'source', 'target', 'payload', 'version', 'metadata', 'timestamp')
export const BODY_REQUIRED = [...BODY_FIELDS]
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

export function wireAddress(v: unknown, name: string): KLPAddress {
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

export function readPayload(v: unknown): KLPPayload {
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

export function readMetadata(v: unknown, id: string): KLPMessage['metadata'] {
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

export function fastBody(bytes: Uint8Array, limits: Readonly<CodecLimits>, start: number, end: number): FastBody | undefined {
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
