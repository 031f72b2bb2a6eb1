/**
 * createMessage: a validated, frozen unsigned message with defaults filled in, and the canonical
 * body it keeps for signMessage (the `created` map); also the frozen copies of caller-supplied
 * encryption / compression info and routing hints.
 */
import { describeValue, MessagePriority, systemClock } from '@kos-mesh/interface'
import type { CompressionInfo, EncryptionInfo, KLPAddress, KLPMessageType, KLPValue, RoutingHint, TrustRequirements, UnsignedKLPMessage } from '@kos-mesh/interface'
import { allocBytes } from './alloc.js'
import { useWriter } from './cbor-encode.js'
import { DEFAULT_LIMITS } from './limits.js'
import { initAddress, writeCheckedBody } from './message-body-encode.js'
import { CONTENT_TYPES, DEFAULT_TRUST, DEFAULT_TTL, DISABLED_INFO, KLP_VERSION, MAX_ROUTING_HINTS, NO_HINTS, failParam } from './message-schema.js'

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
  /** Milliseconds since the epoch; default `systemClock.now()` (the wall clock). */
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
export const created = new WeakMap<object, Created>()

/** A frozen copy of an encryption / compression info object (anything else is left for validation to reject). */
function copyInfo<T extends EncryptionInfo | CompressionInfo>(info: T): T {
  if (info === null || typeof info !== 'object') return info
  return info.enabled === false && Object.keys(info).length === 1 ? DISABLED_INFO as T : Object.freeze({ ...info }) as unknown as T
}

/** Frozen copies of routing hints (a non-array or an over-long array is left for validation to reject). */
export function copyHints(hints: RoutingHint[]): RoutingHint[] {
  if (!Array.isArray(hints) || hints.length > MAX_ROUTING_HINTS) return hints
  if (hints.length === 0) return NO_HINTS
  const out = new Array<RoutingHint>(hints.length)
  for (let i = 0; i < hints.length; i++) {
    const h = hints[i] as RoutingHint
    out[i] = h !== null && typeof h === 'object' ? Object.freeze({ kind: h.kind, value: h.value }) : h
  }
  return Object.freeze(out) as RoutingHint[]
}
