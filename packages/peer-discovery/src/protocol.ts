/**
 * PEER_DISCOVERY payloads (the `data` of a KLP PEER_DISCOVERY message), as plain values:
 *
 * - `{ action: 'record', node }`: a node record (signed by the node itself; never sent alone,
 *   always carried as encoded bytes inside the actions below).
 * - `{ action: 'announce', record }`: push my record (bytes).
 * - `{ action: 'get_peers', record?, capabilities?, max?, known? }`: ask for a peer table,
 *   optionally announcing my record in the same round trip; `known` lists the last 8 bytes of
 *   records the asker already holds, which the answer leaves out.
 * - `{ action: 'peers', records }`: a peer table: other nodes' original signed record bytes.
 */
import type { KLPValue } from '@kos-mesh/interface'
import { InvalidDiscoveryMessageError, RecordLimitExceededError } from './errors.js'

/** Content type of discovery payloads. */
export const DISCOVERY_CONTENT_TYPE = 'application/cbor'

/**
 * The payload of a discovery message: an announce of a record, a peer table request, or the records that
 * answer it.
 */
export type DiscoveryPayload =
  | { action: 'announce'; record: Uint8Array }
  | { action: 'get_peers'; record?: Uint8Array; capabilities?: string[]; max?: number; known?: Uint8Array }
  | { action: 'peers'; records: Uint8Array[] }

/** Bounds of discovery messages, checked before their records are verified. */
export interface ProtocolLimits {
  /** Max records in one `peers` response (and the cap on `max`). Default 64. */
  maxRecordsPerMessage: number
  /** Max encoded size of one record. Default 8 KiB. */
  maxRecordBytes: number
  /** Max capability names in a `get_peers` filter. Default 16. */
  maxCapabilities: number
  /** Max total record bytes in one `peers` response. Default 512 KiB (under the router's 1 MiB frame). */
  maxResponseBytes: number
  /** Max entries of the `known` list of a `get_peers` (8 bytes each). Default 1024. */
  maxKnown: number
}

/** Bytes per entry of a `get_peers` `known` list: the last bytes of a record (its signature's end). */
export const KNOWN_KEY_BYTES = 8

/** The default bounds of discovery messages (each documented on ProtocolLimits). */
export const DEFAULT_PROTOCOL_LIMITS: Readonly<ProtocolLimits> = Object.freeze({
  maxRecordsPerMessage: 64,
  maxRecordBytes: 8 * 1024,
  maxCapabilities: 16,
  maxResponseBytes: 512 * 1024,
  maxKnown: 1024,
})

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)
}

function fail(what: string, got: unknown): never {
  const shown = got === null ? 'null' : Array.isArray(got) ? 'array' : got instanceof Uint8Array ? `bytes(${got.length})` : typeof got === 'string' ? JSON.stringify(got.slice(0, 40)) : typeof got
  throw new InvalidDiscoveryMessageError(`expected ${what}, got ${shown}`)
}

function onlyKeys(obj: Record<string, unknown>, keys: string[]): void {
  for (const k of Object.keys(obj)) if (!keys.includes(k)) fail(`only fields ${keys.join(', ')}`, `field ${k}`)
}

function recordBytes(v: unknown, limits: ProtocolLimits): Uint8Array {
  if (!(v instanceof Uint8Array)) fail('record bytes', v)
  if (v.length > limits.maxRecordBytes) throw new RecordLimitExceededError(`expected a record of at most ${limits.maxRecordBytes} bytes, got ${v.length}`)
  return v
}

/** Parses an untrusted payload `data` value. Throws InvalidDiscoveryMessageError / RecordLimitExceededError. */
export function parseDiscoveryPayload(data: unknown, limits: ProtocolLimits = DEFAULT_PROTOCOL_LIMITS): DiscoveryPayload {
  if (!isObj(data)) fail('a discovery payload object', data)
  switch (data.action) {
    case 'announce':
      onlyKeys(data, ['action', 'record'])
      return { action: 'announce', record: recordBytes(data.record, limits) }
    case 'get_peers': {
      onlyKeys(data, ['action', 'record', 'capabilities', 'max', 'known'])
      const out: { action: 'get_peers'; record?: Uint8Array; capabilities?: string[]; max?: number; known?: Uint8Array } = { action: 'get_peers' }
      if (data.known !== undefined) {
        const k = data.known
        if (!(k instanceof Uint8Array) || k.length % KNOWN_KEY_BYTES !== 0) fail(`known as bytes, a multiple of ${KNOWN_KEY_BYTES} long`, k)
        if (k.length / KNOWN_KEY_BYTES > limits.maxKnown) throw new RecordLimitExceededError(`expected at most ${limits.maxKnown} known entries, got ${k.length / KNOWN_KEY_BYTES}`)
        out.known = k
      }
      if (data.record !== undefined) out.record = recordBytes(data.record, limits)
      if (data.capabilities !== undefined) {
        const c = data.capabilities
        if (!Array.isArray(c)) fail('capabilities as an array of strings', c)
        if (c.length > limits.maxCapabilities) throw new RecordLimitExceededError(`expected at most ${limits.maxCapabilities} capabilities, got ${c.length}`)
        out.capabilities = c.map((x: unknown) => {
          if (typeof x !== 'string' || x.length > 64) fail('a capability name (string of at most 64 chars)', x)
          return x
        })
      }
      if (data.max !== undefined) {
        if (typeof data.max !== 'number' || !Number.isInteger(data.max) || data.max < 0) fail('max as an integer >= 0', data.max)
        out.max = Math.min(data.max, limits.maxRecordsPerMessage)
      }
      return out
    }
    case 'peers': {
      onlyKeys(data, ['action', 'records'])
      const r = data.records
      if (!Array.isArray(r)) fail('records as an array of bytes', r)
      if (r.length > limits.maxRecordsPerMessage) throw new RecordLimitExceededError(`expected at most ${limits.maxRecordsPerMessage} records, got ${r.length}`)
      return { action: 'peers', records: r.map((x: unknown) => recordBytes(x, limits)) }
    }
    default:
      return fail('action announce, get_peers or peers', data.action)
  }
}

/** The `known` key of record bytes: their last KNOWN_KEY_BYTES bytes, as a string. */
export function knownKeyOf(record: Uint8Array): string {
  let k = ''
  for (let i = Math.max(0, record.length - KNOWN_KEY_BYTES); i < record.length; i++) k += String.fromCharCode(record[i]!)
  return k
}

/** The set of keys in a `known` list. */
export function knownSet(known: Uint8Array): Set<string> {
  const out = new Set<string>()
  for (let i = 0; i + KNOWN_KEY_BYTES <= known.length; i += KNOWN_KEY_BYTES) out.add(knownKeyOf(known.subarray(i, i + KNOWN_KEY_BYTES)))
  return out
}

/** The payload value for a discovery message (omits absent optional fields). */
export function discoveryPayloadValue(p: DiscoveryPayload): KLPValue {
  switch (p.action) {
    case 'announce':
      return { action: 'announce', record: p.record }
    case 'get_peers': {
      const v: Record<string, KLPValue> = { action: 'get_peers' }
      if (p.record !== undefined) v.record = p.record
      if (p.capabilities !== undefined) v.capabilities = p.capabilities
      if (p.max !== undefined) v.max = p.max
      if (p.known !== undefined) v.known = p.known
      return v
    }
    case 'peers':
      return { action: 'peers', records: p.records }
  }
}
