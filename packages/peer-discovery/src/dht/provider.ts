/**
 * Signed provider records: "`provider` offers `name` (a service type or capability) until
 * `expiresAt`", published as a signed KLP PEER_DISCOVERY message `{ action: 'dht_provider', key,
 * name }` whose signer is the provider itself. The key is sha256(name); the lifetime is the
 * message's own `timestamp + ttl`. The bytes travel unchanged through the DHT, so every node that
 * stores or receives one verifies its signature itself, whoever relayed it.
 */
import { KLPMessageType, MessagePriority, VerificationLevel, InvalidParametersError, describeValue, didOfKeyId, isKosMeshError, systemClock, throwIfAborted } from '@kos-mesh/interface'
import type { AbortOptions, Clock, KLPAddress, KLPMessage, SignatureVerifier, Signer } from '@kos-mesh/interface'
import { createMessage, decodeMessage, encodeMessage, parseAddress, signMessage, verifyMessage } from '@kos-mesh/klp-codec'
import { RecordLimitExceededError } from '../errors.js'
import { KAD_ID_BYTES } from '../kad/types.js'
import { kadIdOf } from '../kad/id.js'
import { MalformedProviderRecordError, InvalidProviderSignatureError, ProviderRecordExpiredError, ProviderRecordFromFutureError } from './errors.js'

/** The logical target of provider records (they are never routed). */
export const PROVIDER_TARGET = 'klp://mesh/peer-discovery/providers'
/** Default provider record lifetime: 24 hours (providers republish every 12). */
export const DEFAULT_PROVIDER_TTL_SECONDS = 24 * 3600
/** Default longest accepted provider record lifetime: 48 hours. */
export const DEFAULT_MAX_PROVIDER_TTL_SECONDS = 48 * 3600
/** Default largest encoded provider record: 2 KiB. */
export const DEFAULT_MAX_PROVIDER_RECORD_BYTES = 2 * 1024
/** Longest provider name (`capability:vector_storage`, `agent:<kind>`). */
export const MAX_PROVIDER_NAME_LENGTH = 256

const NAME_RE = /^[a-z][a-z0-9_-]{0,31}:[\x21-\x7e]{1,223}$/

/** A verified provider record. */
export interface SignedProviderRecord {
  /** The provider's DID (the signer). */
  readonly provider: string
  /** What is provided, e.g. `capability:vector_storage`. */
  readonly name: string
  /** sha256(name), the DHT key. */
  readonly key: Uint8Array
  /** ms since the epoch. */
  readonly timestamp: number
  /** `timestamp + ttl * 1000`. */
  readonly expiresAt: number
  readonly messageId: string
  /** The signed bytes, forwarded as-is. */
  readonly bytes: Uint8Array
}

/** Checks a provider name: `<type>:<value>`, printable ASCII, at most 256 characters. Throws InvalidParametersError. */
export function checkProviderName(name: unknown): string {
  if (typeof name !== 'string' || name.length > MAX_PROVIDER_NAME_LENGTH || !NAME_RE.test(name)) {
    throw new InvalidParametersError(`name: expected "<type>:<value>" (lowercase type, printable ASCII, at most ${MAX_PROVIDER_NAME_LENGTH} characters), got ${describeValue(name)}`)
  }
  return name
}

/** The DHT key of a provider name: sha256(name). */
export function providerKey(name: string): Uint8Array {
  return kadIdOf(checkProviderName(name))
}

/** Options of signing a provider record. */
export interface CreateProviderRecordOptions {
  /** Lifetime, seconds. Default 86,400. */
  ttlSeconds?: number
  /** Timestamp (ms). Default `systemClock.now()`; the service passes its clock's time. */
  now?: number
  /** The provider's klp:// address (the record's `source`). Default `klp://mesh/peer-discovery/provider`. */
  source?: KLPAddress | string
}

/** Signs "the signer's DID provides `name`". */
export async function createProviderRecord(name: string, signer: Signer, options: CreateProviderRecordOptions = {}): Promise<SignedProviderRecord> {
  const key = providerKey(name)
  const ttl = options.ttlSeconds ?? DEFAULT_PROVIDER_TTL_SECONDS
  if (!Number.isInteger(ttl) || ttl <= 0) throw new InvalidParametersError(`ttlSeconds: expected a positive integer, got ${ttl}`)
  const now = Math.floor(options.now ?? systemClock.now())
  const source = options.source ?? 'klp://mesh/peer-discovery/provider'
  const unsigned = createMessage({
    type: KLPMessageType.PEER_DISCOVERY,
    source: typeof source === 'string' ? parseAddress(source) : source,
    target: parseAddress(PROVIDER_TARGET),
    data: { action: 'dht_provider', key, name },
    ttl,
    timestamp: now,
    priority: MessagePriority.LOW,
    trust_requirements: { minimum_trust_score: 0, required_endorsements: 0, verification_level: VerificationLevel.NONE },
  })
  const signed = await signMessage(unsigned, signer)
  return { provider: didOfKeyId(signed.signer), name, key, timestamp: signed.timestamp, expiresAt: signed.timestamp + ttl * 1000, messageId: signed.metadata.message_id, bytes: encodeMessage(signed) }
}

/** Options of the provider record verifier: the signature verifier and the time of its checks. */
export interface ProviderVerifierInit {
  signatureVerifier: SignatureVerifier
  /** Time of the expiry and future checks. Default `systemClock`. */
  clock?: Pick<Clock, 'now'>
  /** Allowed clock difference, both ways (ms). Default 30,000. */
  clockSkewMs?: number
  /** Largest encoded record (bytes). Default 2 KiB. */
  maxRecordBytes?: number
  /** Longest lifetime accepted (s). Default 172,800. */
  maxTtlSeconds?: number
}

/** Decodes and fully verifies provider record bytes; throws a typed error for anything invalid. */
export type ProviderVerifier = (bytes: Uint8Array, options?: AbortOptions) => Promise<SignedProviderRecord>

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let d = 0
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!
  return d === 0
}

function checkShape(msg: KLPMessage): { key: Uint8Array; name: string } {
  if (msg.type !== KLPMessageType.PEER_DISCOVERY) throw new MalformedProviderRecordError(`expected a PEER_DISCOVERY message, got ${String(msg.type).slice(0, 40)}`)
  const p = msg.payload
  if (p.encryption.enabled || p.compression.enabled) throw new MalformedProviderRecordError('expected a plain provider payload, got an encrypted or compressed one')
  const d = p.data
  if (typeof d !== 'object' || d === null || Array.isArray(d) || d instanceof Uint8Array) throw new MalformedProviderRecordError(`expected a provider payload object, got ${describeValue(d)}`)
  const o = d as Record<string, unknown>
  if (o.action !== 'dht_provider') throw new MalformedProviderRecordError(`expected action "dht_provider", got ${describeValue(o.action)}`)
  const keys = Object.keys(o)
  if (keys.length !== 3 || !('key' in o) || !('name' in o)) throw new MalformedProviderRecordError(`expected fields action, key and name, got ${keys.slice(0, 8).join(', ')}`)
  if (!(o.key instanceof Uint8Array) || o.key.length !== KAD_ID_BYTES) throw new MalformedProviderRecordError(`key: expected ${KAD_ID_BYTES} bytes, got ${describeValue(o.key)}`)
  let name: string
  try {
    name = checkProviderName(o.name)
  } catch (err) {
    throw new MalformedProviderRecordError(`name: expected a provider name, got ${describeValue(o.name)}`, { cause: err })
  }
  if (!equal(o.key, kadIdOf(name))) throw new MalformedProviderRecordError('key: expected sha256(name), got another value')
  return { key: o.key, name }
}

/**
 * A ProviderVerifier: size bound, strict decode, shape (key = sha256(name)), timestamp not in the
 * future beyond the skew, not expired, TTL bounded, then the signature (the costly part last).
 * The provider is the signer: nobody can publish a provider record for someone else.
 */
export function createProviderVerifier(init: ProviderVerifierInit): ProviderVerifier {
  if (typeof init?.signatureVerifier?.verifySignature !== 'function') throw new InvalidParametersError('signatureVerifier: expected a SignatureVerifier, got none')
  const sv = init.signatureVerifier
  const clock = init.clock ?? systemClock
  const skew = init.clockSkewMs ?? 30_000
  const maxBytes = init.maxRecordBytes ?? DEFAULT_MAX_PROVIDER_RECORD_BYTES
  const maxTtl = init.maxTtlSeconds ?? DEFAULT_MAX_PROVIDER_TTL_SECONDS
  return async (bytes, options = {}) => {
    throwIfAborted(options.signal)
    if (!(bytes instanceof Uint8Array)) throw new MalformedProviderRecordError(`expected provider record bytes, got ${describeValue(bytes)}`)
    if (bytes.length > maxBytes) throw new RecordLimitExceededError(`expected a provider record of at most ${maxBytes} bytes, got ${bytes.length}`)
    let msg: KLPMessage
    try {
      msg = decodeMessage(bytes)
    } catch (err) {
      throw new MalformedProviderRecordError(`expected a signed KLP message, got undecodable bytes (${err instanceof Error ? err.name : typeof err})`, { cause: err })
    }
    const { key, name } = checkShape(msg)
    const now = clock.now()
    if (msg.timestamp > now + skew) throw new ProviderRecordFromFutureError(`expected a timestamp <= ${now + skew}, got ${msg.timestamp}`)
    const ttl = msg.metadata.ttl
    if (ttl === 0 || ttl > maxTtl) throw new MalformedProviderRecordError(`expected a ttl in [1, ${maxTtl}] s, got ${ttl}`)
    const expiresAt = msg.timestamp + ttl * 1000
    if (now > expiresAt + skew) throw new ProviderRecordExpiredError(`expected a record valid until after ${now - skew}, got one that expired at ${expiresAt}`)
    try {
      await verifyMessage(msg, sv, { signal: options.signal })
    } catch (err) {
      throwIfAborted(options.signal)
      if (isKosMeshError(err) && (err.code === 'ERR_UNKNOWN_KEY' || err.code === 'ERR_INVALID_SIGNATURE')) {
        throw new InvalidProviderSignatureError(`provider record of ${didOfKeyId(msg.signer).slice(0, 80)} does not verify: ${err.code}`, { cause: err })
      }
      throw err
    }
    return { provider: didOfKeyId(msg.signer), name, key, timestamp: msg.timestamp, expiresAt, messageId: msg.metadata.message_id, bytes }
  }
}
