/**
 * The gossip service's control messages: the `data` of KLP PEER_DISCOVERY messages on the gossip
 * path (`klp://<neighbour>/gossip`), as plain values, parsed strictly (unknown actions and fields
 * rejected, every count, size, ttl and hop bound checked before anything is kept).
 *
 * Membership (HyParView):
 * - `{ action: 'join', record }`: a new node asks a contact to take it into its active view.
 * - `{ action: 'forward_join', record, ttl }`: the join's random walk (`ttl` steps left).
 * - `{ action: 'neighbor', record, priority }`: asks to enter the receiver's active view
 *   (`high`: the sender has an empty active view and must be taken).
 * - `{ action: 'neighbor_reply', accepted, record? }`: the answer to `neighbor` (and the
 *   confirmation of a join), with the sender's record so the joiner learns where it is.
 * - `{ action: 'disconnect' }`: the sender dropped the receiver from its active view.
 * - `{ action: 'shuffle', origin, ttl, records }`: a random walk exchanging samples of the views.
 * - `{ action: 'shuffle_reply', records }`: sent back to the shuffle's origin.
 *
 * Broadcast repair (Plumtree): `{ action: 'ihave', ids: [{ id, round }] }` (lazy push of message
 * ids and their hop counts), `{ action: 'graft', ids }` (send me these and keep me eager; no ids:
 * only the link), `{ action: 'prune' }` (keep me lazy). The broadcasts themselves are the router's
 * signed BROADCAST_ANNOUNCE messages, never wrapped.
 *
 * Peer lists: `{ action: 'peer_list_request', req_id, origin, hops, max }` walks at most `hops`
 * hops (`gossip_hops`); each node on the walk answers the origin with
 * `{ action: 'peer_list', req_id, records }`.
 *
 * Peers always travel as their own signed node record bytes (see record.ts): receivers verify each
 * one themselves before they dial or keep it.
 */
import type { KLPValue } from '@kos-mesh/interface'
import { GossipLimitExceededError, InvalidGossipMessageError } from './errors.js'

export type NeighborPriority = 'high' | 'low'

/**
 * A gossip control message on the wire (HyParView membership, Plumtree IHAVE/GRAFT/PRUNE, peer-list walks),
 * nodes named by their signed records.
 */
export type GossipWire =
  | { action: 'join'; record: Uint8Array }
  | { action: 'forward_join'; record: Uint8Array; ttl: number }
  | { action: 'neighbor'; record: Uint8Array; priority: NeighborPriority }
  | { action: 'neighbor_reply'; accepted: boolean; record?: Uint8Array }
  | { action: 'disconnect' }
  | { action: 'shuffle'; origin: Uint8Array; ttl: number; records: Uint8Array[] }
  | { action: 'shuffle_reply'; records: Uint8Array[] }
  | { action: 'ihave'; ids: Array<{ id: string; round: number }> }
  | { action: 'graft'; ids: string[] }
  | { action: 'prune' }
  | { action: 'peer_list_request'; req_id: string; origin: Uint8Array; hops: number; max: number }
  | { action: 'peer_list'; req_id: string; records: Uint8Array[] }

/** The `action` of a gossip control message. */
export type GossipAction = GossipWire['action']

/** Every gossip control action, in a stable order. */
export const GOSSIP_ACTIONS: readonly GossipAction[] = Object.freeze([
  'join', 'forward_join', 'neighbor', 'neighbor_reply', 'disconnect', 'shuffle', 'shuffle_reply', 'ihave', 'graft', 'prune', 'peer_list_request', 'peer_list',
])

/** Bounds of gossip control messages, checked before their records are verified. */
export interface GossipWireLimits {
  /** Largest signed node record, bytes. Default 8 KiB. */
  maxRecordBytes: number
  /** Records in one `shuffle`, `shuffle_reply` or `peer_list`. Default 64. */
  maxRecords: number
  /** Record bytes in one message together. Default 512 KiB (under the router's 1 MiB frame). */
  maxRecordsBytes: number
  /** Message ids in one `ihave` or `graft`. Default 256. */
  maxIds: number
  /** Largest `ttl` of a `forward_join` or `shuffle` walk. Default 16. */
  maxTtl: number
  /** Largest `round` (hops so far) of an `ihave` entry. Default 255 (the envelope's hop byte). */
  maxRound: number
  /** Largest `hops` of a `peer_list_request`. Default 16. */
  maxHops: number
}

/** The default bounds of gossip control messages (each documented on GossipWireLimits). */
export const DEFAULT_GOSSIP_WIRE_LIMITS: Readonly<GossipWireLimits> = Object.freeze({
  maxRecordBytes: 8 * 1024,
  maxRecords: 64,
  maxRecordsBytes: 512 * 1024,
  maxIds: 256,
  maxTtl: 16,
  maxRound: 255,
  maxHops: 16,
})

/** A KLP message id: CIDv1 in multibase base32 (`b` and 32 digits). */
const MESSAGE_ID = /^b[a-z2-7]{32}$/
/** A peer-list request id: 1..64 characters of base64url or dots (the core's ids are `<n>.<r>` in base 36). */
const REQ_ID = /^[A-Za-z0-9._-]{1,64}$/

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)
}

function shown(got: unknown): string {
  if (got === null) return 'null'
  if (Array.isArray(got)) return `array(${got.length})`
  if (got instanceof Uint8Array) return `bytes(${got.length})`
  if (typeof got === 'string') return JSON.stringify(got.slice(0, 40))
  if (typeof got === 'number' || typeof got === 'boolean') return String(got)
  return typeof got
}

function fail(what: string, got: unknown): never {
  throw new InvalidGossipMessageError(`expected ${what}, got ${shown(got)}`)
}

function tooMany(what: string, max: number, got: number): never {
  throw new GossipLimitExceededError(`expected at most ${max} ${what}, got ${got}`)
}

function onlyKeys(obj: Record<string, unknown>, keys: readonly string[]): void {
  for (const k of Object.keys(obj)) if (!keys.includes(k)) fail(`only fields ${keys.join(', ')}`, `field ${k}`)
}

function record(v: unknown, l: GossipWireLimits, what = 'record'): Uint8Array {
  if (!(v instanceof Uint8Array)) fail(`${what} as bytes`, v)
  if (v.length === 0) fail(`${what} as non-empty bytes`, v)
  if (v.length > l.maxRecordBytes) tooMany(`bytes in ${what}`, l.maxRecordBytes, v.length)
  return v
}

function records(v: unknown, l: GossipWireLimits): Uint8Array[] {
  if (!Array.isArray(v)) fail('records as an array of bytes', v)
  if (v.length > l.maxRecords) tooMany('records', l.maxRecords, v.length)
  let bytes = 0
  const out = v.map((x: unknown) => {
    const r = record(x, l)
    bytes += r.length
    return r
  })
  if (bytes > l.maxRecordsBytes) tooMany('record bytes in one message', l.maxRecordsBytes, bytes)
  return out
}

function int(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) fail(`${what} as an integer >= ${min}`, v)
  if (v > max) tooMany(what, max, v)
  return v
}

function messageId(x: unknown): string {
  if (typeof x !== 'string' || !MESSAGE_ID.test(x)) fail('a KLP message id (b + 32 base32 digits)', x)
  return x
}

function list(v: unknown, l: GossipWireLimits, min: number): unknown[] {
  if (!Array.isArray(v)) fail('ids as an array', v)
  if (v.length < min) fail(`at least ${min} id(s)`, v)
  if (v.length > l.maxIds) tooMany('ids', l.maxIds, v.length)
  return v
}

function ihaveIds(v: unknown, l: GossipWireLimits): Array<{ id: string; round: number }> {
  return list(v, l, 1).map((e) => {
    if (!isObj(e)) fail('an { id, round } entry', e)
    onlyKeys(e, ['id', 'round'])
    return { id: messageId(e.id), round: int(e.round, 'round', 0, l.maxRound) }
  })
}

function reqId(v: unknown): string {
  if (typeof v !== 'string' || !REQ_ID.test(v)) fail('req_id as 1..64 characters of A-Z a-z 0-9 . _ -', v)
  return v
}

/** Parses an untrusted payload. Throws InvalidGossipMessageError (shape) or GossipLimitExceededError (bounds). */
export function parseGossipPayload(data: unknown, limits: GossipWireLimits = DEFAULT_GOSSIP_WIRE_LIMITS): GossipWire {
  if (!isObj(data)) fail('a gossip payload object', data)
  const l = limits
  switch (data.action) {
    case 'join':
      onlyKeys(data, ['action', 'record'])
      return { action: 'join', record: record(data.record, l) }
    case 'forward_join':
      onlyKeys(data, ['action', 'record', 'ttl'])
      return { action: 'forward_join', record: record(data.record, l), ttl: int(data.ttl, 'ttl', 0, l.maxTtl) }
    case 'neighbor': {
      onlyKeys(data, ['action', 'record', 'priority'])
      const p = data.priority
      if (p !== 'high' && p !== 'low') fail('priority high or low', p)
      return { action: 'neighbor', record: record(data.record, l), priority: p }
    }
    case 'neighbor_reply': {
      onlyKeys(data, ['action', 'accepted', 'record'])
      if (typeof data.accepted !== 'boolean') fail('accepted as a boolean', data.accepted)
      const out: GossipWire = { action: 'neighbor_reply', accepted: data.accepted }
      if (data.record !== undefined) out.record = record(data.record, l)
      return out
    }
    case 'disconnect':
      onlyKeys(data, ['action'])
      return { action: 'disconnect' }
    case 'shuffle':
      onlyKeys(data, ['action', 'origin', 'ttl', 'records'])
      return { action: 'shuffle', origin: record(data.origin, l, 'origin'), ttl: int(data.ttl, 'ttl', 0, l.maxTtl), records: records(data.records, l) }
    case 'shuffle_reply':
      onlyKeys(data, ['action', 'records'])
      return { action: 'shuffle_reply', records: records(data.records, l) }
    case 'ihave':
      onlyKeys(data, ['action', 'ids'])
      return { action: 'ihave', ids: ihaveIds(data.ids, l) }
    case 'graft':
      onlyKeys(data, ['action', 'ids'])
      return { action: 'graft', ids: list(data.ids, l, 0).map(messageId) }
    case 'prune':
      onlyKeys(data, ['action'])
      return { action: 'prune' }
    case 'peer_list_request':
      onlyKeys(data, ['action', 'req_id', 'origin', 'hops', 'max'])
      return { action: 'peer_list_request', req_id: reqId(data.req_id), origin: record(data.origin, l, 'origin'), hops: int(data.hops, 'hops', 0, l.maxHops), max: int(data.max, 'max', 0, l.maxRecords) }
    case 'peer_list':
      onlyKeys(data, ['action', 'req_id', 'records'])
      return { action: 'peer_list', req_id: reqId(data.req_id), records: records(data.records, l) }
    default:
      return fail(`action ${GOSSIP_ACTIONS.join(', ')}`, data.action)
  }
}

/**
 * The payload value of a control message (optional fields left out). Checks it against the same
 * limits first, so this node never sends what a peer would refuse.
 */
export function gossipPayloadValue(p: GossipWire, limits: GossipWireLimits = DEFAULT_GOSSIP_WIRE_LIMITS): KLPValue {
  const v: Record<string, KLPValue> = {}
  for (const [k, x] of Object.entries(p)) if (x !== undefined) v[k] = x as KLPValue
  parseGossipPayload(v, limits)
  return v
}
