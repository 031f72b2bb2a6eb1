/**
 * DHT payloads: the `data` of KLP PEER_DISCOVERY messages on the `/dht` path. Every receiver
 * parses them strictly (exact fields, types, sizes and counts bounded before anything is kept).
 *
 * Requests (each may carry `sender`: the asker's own signed node record, so the answerer can add
 * it to its table):
 * - `{ action: 'dht_ping', sender? }` -> `dht_pong`
 * - `{ action: 'dht_find_node', target: bytes(32), sender? }` -> `dht_nodes`
 * - `{ action: 'dht_get_providers', key: bytes(32), sender? }` -> `dht_providers`
 * - `{ action: 'dht_add_provider', provider: ProviderEntry, sender? }` -> `dht_ok`
 *
 * Answers (each may carry `sender`: the answerer's own signed node record):
 * - `{ action: 'dht_pong', sender? }`
 * - `{ action: 'dht_nodes', closer: bytes[], sender? }`: closer contacts as the nodes' own signed records
 * - `{ action: 'dht_providers', providers: ProviderEntry[], closer: bytes[], sender? }`
 * - `{ action: 'dht_ok', sender? }`
 *
 * A ProviderEntry is `{ record: bytes, node?: bytes }`: a provider record signed by the provider
 * itself (see provider.ts) and, when known, the provider's signed node record. Nothing here is
 * trusted: the service verifies every record's own signature, whoever relayed it.
 */
import type { KLPValue } from '@kos-mesh/interface'
import { describeValue } from '@kos-mesh/interface'
import { RecordLimitExceededError } from '../errors.js'
import { KAD_ID_BYTES } from '../kad/types.js'
import { InvalidDhtMessageError } from './errors.js'

/** The path the DHT service owns under PEER_DISCOVERY: `klp://<authority>/dht`. */
export const DHT_PATH = '/dht'

/**
 * A provider record on the wire: the signed provider record and, when the sender knows it, the provider's
 * signed node record.
 */
export interface ProviderEntry {
  /** Signed provider record (signer = the provider). */
  record: Uint8Array
  /** The provider's signed node record, when the sender knows it. */
  node?: Uint8Array
}

/** A DHT request: ping, find a node, get or add providers. */
export type DhtRequestPayload =
  | { action: 'dht_ping'; sender?: Uint8Array }
  | { action: 'dht_find_node'; target: Uint8Array; sender?: Uint8Array }
  | { action: 'dht_get_providers'; key: Uint8Array; sender?: Uint8Array }
  | { action: 'dht_add_provider'; provider: ProviderEntry; sender?: Uint8Array }

/** A DHT answer: pong, closer nodes, providers (with closer nodes), or ok. */
export type DhtResponsePayload =
  | { action: 'dht_pong'; sender?: Uint8Array }
  | { action: 'dht_nodes'; closer: Uint8Array[]; sender?: Uint8Array }
  | { action: 'dht_providers'; providers: ProviderEntry[]; closer: Uint8Array[]; sender?: Uint8Array }
  | { action: 'dht_ok'; sender?: Uint8Array }

/** The payload of a DHT message (a PEER_DISCOVERY message with a `dht_*` action). */
export type DhtPayload = DhtRequestPayload | DhtResponsePayload

/** The `action` values of DHT requests. */
export const DHT_REQUEST_ACTIONS = ['dht_ping', 'dht_find_node', 'dht_get_providers', 'dht_add_provider'] as const
/** The `action` values of DHT answers. */
export const DHT_RESPONSE_ACTIONS = ['dht_pong', 'dht_nodes', 'dht_providers', 'dht_ok'] as const

/** Bounds of DHT messages, checked before their records are verified. */
export interface DhtWireLimits {
  /** Largest signed node record (bytes). Default 8 KiB. */
  maxRecordBytes: number
  /** Largest signed provider record (bytes). Default 2 KiB. */
  maxProviderRecordBytes: number
  /** Most contacts in one answer. Default 32. */
  maxContacts: number
  /** Most provider entries in one answer. Default 32. */
  maxProviders: number
  /** Most record bytes in one payload, all records together. Default 512 KiB (under the router's 1 MiB frame). */
  maxPayloadBytes: number
}

/** The default bounds of DHT messages (each documented on DhtWireLimits). */
export const DEFAULT_DHT_WIRE_LIMITS: Readonly<DhtWireLimits> = Object.freeze({
  maxRecordBytes: 8 * 1024,
  maxProviderRecordBytes: 2 * 1024,
  maxContacts: 32,
  maxProviders: 32,
  maxPayloadBytes: 512 * 1024,
})

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)
}

function fail(what: string, got: unknown): never {
  throw new InvalidDhtMessageError(`expected ${what}, got ${describeValue(got)}`)
}

function onlyKeys(obj: Record<string, unknown>, keys: readonly string[]): void {
  for (const k of Object.keys(obj)) if (!keys.includes(k)) fail(`only fields ${keys.join(', ')}`, `field ${k.slice(0, 40)}`)
}

/** Counts record bytes of one payload against `maxPayloadBytes`. */
class Budget {
  #used = 0
  constructor(readonly limit: number) {}
  take(n: number): void {
    this.#used += n
    if (this.#used > this.limit) throw new RecordLimitExceededError(`expected at most ${this.limit} record bytes in one DHT payload, got more than that`)
  }
}

function bytes(name: string, v: unknown, max: number, budget: Budget): Uint8Array {
  if (!(v instanceof Uint8Array)) fail(`${name} as bytes`, v)
  if (v.length === 0) fail(`${name} as non-empty bytes`, v)
  if (v.length > max) throw new RecordLimitExceededError(`${name}: expected at most ${max} bytes, got ${v.length}`)
  budget.take(v.length)
  return v
}

function kadId(name: string, v: unknown): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== KAD_ID_BYTES) fail(`${name} as ${KAD_ID_BYTES} bytes`, v)
  return v
}

function list<T>(name: string, v: unknown, max: number, each: (x: unknown, i: number) => T): T[] {
  if (!Array.isArray(v)) fail(`${name} as an array`, v)
  if (v.length > max) throw new RecordLimitExceededError(`${name}: expected at most ${max} entries, got ${v.length}`)
  return v.map(each)
}

function providerEntry(v: unknown, limits: DhtWireLimits, budget: Budget): ProviderEntry {
  if (!isObj(v)) fail('a provider entry object', v)
  onlyKeys(v, ['record', 'node'])
  const out: ProviderEntry = { record: bytes('provider.record', v.record, limits.maxProviderRecordBytes, budget) }
  if (v.node !== undefined) out.node = bytes('provider.node', v.node, limits.maxRecordBytes, budget)
  return out
}

function withSender<T extends object>(out: T, v: Record<string, unknown>, limits: DhtWireLimits, budget: Budget): T & { sender?: Uint8Array } {
  if (v.sender === undefined) return out
  return { ...out, sender: bytes('sender', v.sender, limits.maxRecordBytes, budget) }
}

function resolve(limits?: Partial<DhtWireLimits>): DhtWireLimits {
  return limits === undefined ? DEFAULT_DHT_WIRE_LIMITS : { ...DEFAULT_DHT_WIRE_LIMITS, ...limits }
}

/**
 * Parses an untrusted DHT payload (a request or an answer). Throws InvalidDhtMessageError for a
 * wrong shape and RecordLimitExceededError for a size or count over `limits`.
 */
export function parseDhtPayload(data: unknown, limits?: Partial<DhtWireLimits>): DhtPayload {
  const l = resolve(limits)
  if (!isObj(data)) fail('a DHT payload object', data)
  const budget = new Budget(l.maxPayloadBytes)
  const closer = (v: unknown): Uint8Array[] => list('closer', v, l.maxContacts, (x) => bytes('closer[]', x, l.maxRecordBytes, budget))
  switch (data.action) {
    case 'dht_ping':
    case 'dht_pong':
    case 'dht_ok':
      onlyKeys(data, ['action', 'sender'])
      return withSender({ action: data.action }, data, l, budget)
    case 'dht_find_node':
      onlyKeys(data, ['action', 'target', 'sender'])
      return withSender({ action: 'dht_find_node' as const, target: kadId('target', data.target) }, data, l, budget)
    case 'dht_get_providers':
      onlyKeys(data, ['action', 'key', 'sender'])
      return withSender({ action: 'dht_get_providers' as const, key: kadId('key', data.key) }, data, l, budget)
    case 'dht_add_provider':
      onlyKeys(data, ['action', 'provider', 'sender'])
      return withSender({ action: 'dht_add_provider' as const, provider: providerEntry(data.provider, l, budget) }, data, l, budget)
    case 'dht_nodes':
      onlyKeys(data, ['action', 'closer', 'sender'])
      return withSender({ action: 'dht_nodes' as const, closer: closer(data.closer) }, data, l, budget)
    case 'dht_providers':
      onlyKeys(data, ['action', 'providers', 'closer', 'sender'])
      return withSender(
        { action: 'dht_providers' as const, providers: list('providers', data.providers, l.maxProviders, (x) => providerEntry(x, l, budget)), closer: closer(data.closer) },
        data,
        l,
        budget,
      )
    default:
      return fail(`action one of ${[...DHT_REQUEST_ACTIONS, ...DHT_RESPONSE_ACTIONS].join(', ')}`, data.action)
  }
}

/** Parses an untrusted DHT request (a request action only). */
export function parseDhtRequest(data: unknown, limits?: Partial<DhtWireLimits>): DhtRequestPayload {
  const p = parseDhtPayload(data, limits)
  if (!(DHT_REQUEST_ACTIONS as readonly string[]).includes(p.action)) fail('a DHT request action', p.action)
  return p as DhtRequestPayload
}

/** Parses an untrusted DHT answer (an answer action only). */
export function parseDhtResponse(data: unknown, limits?: Partial<DhtWireLimits>): DhtResponsePayload {
  const p = parseDhtPayload(data, limits)
  if (!(DHT_RESPONSE_ACTIONS as readonly string[]).includes(p.action)) fail('a DHT answer action', p.action)
  return p as DhtResponsePayload
}

function entryValue(e: ProviderEntry): KLPValue {
  return e.node === undefined ? { record: e.record } : { record: e.record, node: e.node }
}

/** The payload value of a DHT message (absent optional fields left out). */
export function dhtPayloadValue(p: DhtPayload): KLPValue {
  const v: Record<string, KLPValue> = { action: p.action }
  switch (p.action) {
    case 'dht_find_node':
      v.target = p.target
      break
    case 'dht_get_providers':
      v.key = p.key
      break
    case 'dht_add_provider':
      v.provider = entryValue(p.provider)
      break
    case 'dht_nodes':
      v.closer = p.closer
      break
    case 'dht_providers':
      v.providers = p.providers.map(entryValue)
      v.closer = p.closer
      break
    default:
      break
  }
  if (p.sender !== undefined) v.sender = p.sender
  return v
}
