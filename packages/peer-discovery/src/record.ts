/**
 * Signed node records: a FederatedNode published as a signed KLP PEER_DISCOVERY message
 * (`{ action: 'record', node }`) whose signer's DID must equal `node.node_id`. The encoded bytes
 * travel unchanged through peer tables, so every receiver verifies every record itself.
 */
import { KLPMessageType, MessagePriority, VerificationLevel, InvalidParametersError, isKosMeshError, systemClock, throwIfAborted } from '@kos-mesh/interface'
import type { AbortOptions, Clock, FederatedNode, KLPAddress, KLPMessage, KLPValue, SignatureVerifier, Signer } from '@kos-mesh/interface'
import { createMessage, decodeMessage, encodeMessage, parseAddress, signMessage, verifyMessage } from '@kos-mesh/klp-codec'
import {
  InvalidNodeRecordError,
  InvalidRecordSignatureError,
  RecordExpiredError,
  RecordFromFutureError,
  RecordLimitExceededError,
  RecordSignerMismatchError,
} from './errors.js'
import { DEFAULT_NODE_LIMITS, didOfKeyId, parseFederatedNode } from './validate.js'
import type { NodeLimits } from './validate.js'
import type { NodeRecord, RecordPeek, RecordVerifier } from './types.js'

/** Default lifetime of a node record: 1 hour. */
export const DEFAULT_RECORD_TTL_SECONDS = 3600
/** Default clock-skew window: 30 s. */
export const DEFAULT_CLOCK_SKEW_MS = 30_000
/** Default maximum encoded record size: 8 KiB. */
export const DEFAULT_MAX_RECORD_BYTES = 8 * 1024
/** Default longest accepted record TTL: 24 hours. */
export const DEFAULT_MAX_RECORD_TTL_SECONDS = 24 * 3600

/** The target address records are published to (a logical address; records are never routed). */
export const RECORD_TARGET = 'klp://mesh/peer-discovery/records'

/** Options of signing a node record. */
export interface CreateNodeRecordOptions {
  /** The node's own klp:// address, used as the record's `source`. Default `klp://mesh/peer-discovery/node`. */
  source?: KLPAddress | string
  /** Record lifetime in seconds. Default 3600. */
  ttlSeconds?: number
  /** Timestamp (ms). Default `systemClock.now()` (@kos-mesh/interface); the service passes its clock's time. */
  now?: number
}

function toAddr(a: KLPAddress | string): KLPAddress {
  return typeof a === 'string' ? parseAddress(a) : a
}

/**
 * Signs `node` as a record. `signer.keyId`'s DID must equal `node.node_id` (a record signed by
 * anyone else would be rejected by every receiver, so this refuses to make one).
 */
export async function createNodeRecord(node: FederatedNode, signer: Signer, options: CreateNodeRecordOptions = {}): Promise<NodeRecord> {
  const clean = parseFederatedNode(node)
  if (didOfKeyId(signer.keyId) !== clean.node_id) {
    throw new InvalidParametersError(`expected a signer for ${clean.node_id.slice(0, 80)}, got ${signer.keyId.slice(0, 80)}`)
  }
  const ttl = options.ttlSeconds ?? DEFAULT_RECORD_TTL_SECONDS
  if (!Number.isInteger(ttl) || ttl <= 0) throw new InvalidParametersError(`ttlSeconds: expected a positive integer, got ${ttl}`)
  const now = options.now ?? systemClock.now()
  const unsigned = createMessage({
    type: KLPMessageType.PEER_DISCOVERY,
    source: toAddr(options.source ?? 'klp://mesh/peer-discovery/node'),
    target: parseAddress(RECORD_TARGET),
    data: { action: 'record', node: clean as unknown as KLPValue },
    ttl,
    timestamp: now,
    priority: MessagePriority.LOW,
    trust_requirements: { minimum_trust_score: 0, required_endorsements: 0, verification_level: VerificationLevel.NONE },
  })
  const signed = await signMessage(unsigned, signer)
  const bytes = encodeMessage(signed)
  return { peerId: clean.node_id, node: clean, timestamp: signed.timestamp, expiresAt: signed.timestamp + ttl * 1000, messageId: signed.metadata.message_id, bytes, address: signed.source }
}

/**
 * Options of the node record verifier: the signature verifier, the time of its checks, and the bounds
 * records must fit.
 */
export interface RecordVerifierInit {
  signatureVerifier: SignatureVerifier
  /** Time source of the expiry and future checks (only `now()` is used). Default `systemClock` (@kos-mesh/interface). */
  clock?: Pick<Clock, 'now'>
  /** Allowed clock difference, both ways (ms). Default 30,000. */
  clockSkewMs?: number
  /** Largest encoded record accepted (bytes). Default 8 KiB. */
  maxRecordBytes?: number
  /** Longest record TTL accepted (s). Default 86,400. */
  maxTtlSeconds?: number
  /** Field bounds of the node inside. Default `DEFAULT_NODE_LIMITS`. */
  limits?: Partial<NodeLimits>
}

/** Checks everything about a decoded record message except its signature. */
function checkRecordMessage(msg: KLPMessage, limits: NodeLimits): FederatedNode {
  if (msg.type !== KLPMessageType.PEER_DISCOVERY) throw new InvalidNodeRecordError(`expected a PEER_DISCOVERY message, got ${String(msg.type)}`)
  const p = msg.payload
  if (p.encryption.enabled || p.compression.enabled) throw new InvalidNodeRecordError('expected a plain (unencrypted, uncompressed) record payload, got a transformed one')
  const data = p.data
  if (typeof data !== 'object' || data === null || Array.isArray(data) || data instanceof Uint8Array) {
    throw new InvalidNodeRecordError(`expected a record payload object, got ${data === null ? 'null' : typeof data}`)
  }
  const obj = data as Record<string, unknown>
  if (obj.action !== 'record') throw new InvalidNodeRecordError(`expected action "record", got ${JSON.stringify(String(obj.action).slice(0, 40))}`)
  const keys = Object.keys(obj)
  if (keys.length !== 2 || !('node' in obj)) throw new InvalidNodeRecordError(`expected fields action and node, got ${keys.slice(0, 8).join(', ')}`)
  return parseFederatedNode(obj.node, limits)
}

function decodeRecord(bytes: Uint8Array, maxBytes: number): KLPMessage {
  if (!(bytes instanceof Uint8Array)) throw new InvalidNodeRecordError(`expected record bytes, got ${typeof bytes}`)
  if (bytes.length > maxBytes) throw new RecordLimitExceededError(`expected a record of at most ${maxBytes} bytes, got ${bytes.length}`)
  return decodeMessage(bytes)
}

/**
 * A RecordVerifier: size bound, strict decode, record shape, signer DID = node_id, timestamp not in
 * the future beyond the skew, not expired, TTL bounded, then the signature (the costly part last).
 */
export function createRecordVerifier(init: RecordVerifierInit): RecordVerifier {
  if (typeof init?.signatureVerifier?.verifySignature !== 'function') {
    throw new InvalidParametersError('signatureVerifier: expected a SignatureVerifier, got none')
  }
  const sv = init.signatureVerifier
  const clock = init.clock ?? systemClock
  const skew = init.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS
  const maxBytes = init.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES
  const maxTtl = init.maxTtlSeconds ?? DEFAULT_MAX_RECORD_TTL_SECONDS
  const limits = { ...DEFAULT_NODE_LIMITS, ...init.limits }
  return async (bytes: Uint8Array, options: AbortOptions = {}): Promise<NodeRecord> => {
    throwIfAborted(options.signal)
    const msg = decodeRecord(bytes, maxBytes)
    const node = checkRecordMessage(msg, limits)
    const signerDid = didOfKeyId(msg.signer)
    if (signerDid !== node.node_id) {
      throw new RecordSignerMismatchError(`expected a record signed by ${node.node_id.slice(0, 80)}, got signer ${msg.signer.slice(0, 80)}`)
    }
    const now = clock.now()
    if (msg.timestamp > now + skew) {
      throw new RecordFromFutureError(`expected a record timestamp <= ${now + skew}, got ${msg.timestamp}`)
    }
    const ttl = msg.metadata.ttl
    if (ttl > maxTtl) throw new InvalidNodeRecordError(`expected a record ttl <= ${maxTtl} s, got ${ttl}`)
    const expiresAt = msg.timestamp + ttl * 1000
    if (now > expiresAt + skew) {
      throw new RecordExpiredError(`expected a record valid until after ${now - skew}, got one that expired at ${expiresAt}`)
    }
    try {
      await verifyMessage(msg, sv, { signal: options.signal })
    } catch (err) {
      throwIfAborted(options.signal)
      if (isKosMeshError(err) && (err.code === 'ERR_UNKNOWN_KEY' || err.code === 'ERR_INVALID_SIGNATURE')) {
        throw new InvalidRecordSignatureError(`record of ${node.node_id.slice(0, 80)} does not verify: ${err.code}`, { cause: err })
      }
      throw err
    }
    return { peerId: node.node_id, node, timestamp: msg.timestamp, expiresAt, messageId: msg.metadata.message_id, bytes, address: msg.source }
  }
}

/**
 * A RecordPeek: decodes (no signature check) to learn the claimed node id and timestamp, so the
 * registry can skip verifying records that could not replace what it holds.
 */
export function createRecordPeek(maxRecordBytes = DEFAULT_MAX_RECORD_BYTES): RecordPeek {
  return (bytes) => {
    try {
      const msg = decodeRecord(bytes, maxRecordBytes)
      const data = msg.payload.data as Record<string, unknown> | null
      const node = data?.node as Record<string, unknown> | undefined
      const id = node?.node_id
      if (typeof id !== 'string') return undefined
      return { peerId: id, timestamp: msg.timestamp }
    } catch {
      return undefined
    }
  }
}
