/**
 * Shape and bound checks of incoming gossip messages, before the core touches them: the type is
 * known, every field has its type, lists and strings are within bounds. The payload of a `gossip`
 * message is opaque here (the driver checks it: a KLP message is verified by the router).
 */
import { InvalidGossipMessageError } from './errors.js'
import type { GossipWireMessage } from './types.js'

/** Bounds of the gossip core's messages, checked before they are handled. */
export interface GossipLimits {
  /** Longest node id or broadcast id. Default 256. */
  maxIdLength: number
  /** Most node ids in a list (shuffle samples, peer lists). Default 64. */
  maxNodes: number
  /** Most ids in an IHAVE or GRAFT. Default 64. */
  maxIds: number
  /** Largest ttl / hops / round. Default 255. */
  maxTtl: number
}

/** The default bounds of gossip messages (each documented on GossipLimits). */
export const DEFAULT_GOSSIP_LIMITS: GossipLimits = { maxIdLength: 256, maxNodes: 64, maxIds: 64, maxTtl: 255 }

function fail(what: string, got: unknown): never {
  const shown = typeof got === 'string' ? `"${got.slice(0, 40)}"` : Array.isArray(got) ? `array(${got.length})` : typeof got
  throw new InvalidGossipMessageError(`expected ${what}, got ${shown}`)
}

function str(v: unknown, what: string, limits: GossipLimits): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > limits.maxIdLength) fail(`${what} (string of 1..${limits.maxIdLength})`, v)
  return v
}

function int(v: unknown, what: string, limits: GossipLimits): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > limits.maxTtl) fail(`${what} (integer 0..${limits.maxTtl})`, v)
  return v
}

function strList(v: unknown, what: string, max: number, limits: GossipLimits): string[] {
  if (!Array.isArray(v) || v.length > max) fail(`${what} (array of at most ${max})`, v)
  return v.map((x) => str(x, `${what} entry`, limits))
}

/**
 * Returns `value` as a gossip message (a fresh object with only the known fields) or throws
 * InvalidGossipMessageError. `payload` is passed through unchecked.
 */
export function validateGossipMessage<P = unknown>(value: unknown, limits: GossipLimits = DEFAULT_GOSSIP_LIMITS): GossipWireMessage<P> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('a message object', value)
  const m = value as Record<string, unknown>
  switch (m.type) {
    case 'join': return { type: 'join' }
    case 'disconnect': return m.link === undefined ? { type: 'disconnect' } : { type: 'disconnect', link: str(m.link, 'link', limits) }
    case 'prune': return { type: 'prune' }
    case 'forward_join': return { type: 'forward_join', node: str(m.node, 'node', limits), ttl: int(m.ttl, 'ttl', limits) }
    case 'neighbor':
      if (m.priority !== 'high' && m.priority !== 'low') fail('priority "high" or "low"', m.priority)
      return m.swap === undefined ? { type: 'neighbor', priority: m.priority } : { type: 'neighbor', priority: m.priority, swap: str(m.swap, 'swap', limits) }
    case 'neighbor_reply':
      if (typeof m.accepted !== 'boolean') fail('accepted (boolean)', m.accepted)
      return { type: 'neighbor_reply', accepted: m.accepted }
    case 'shuffle':
      return { type: 'shuffle', origin: str(m.origin, 'origin', limits), ttl: int(m.ttl, 'ttl', limits), nodes: strList(m.nodes, 'nodes', limits.maxNodes, limits) }
    case 'shuffle_reply': return { type: 'shuffle_reply', nodes: strList(m.nodes, 'nodes', limits.maxNodes, limits) }
    case 'gossip':
      if (!('payload' in m)) fail('a payload', undefined)
      return { type: 'gossip', id: str(m.id, 'id', limits), round: int(m.round, 'round', limits), payload: m.payload as P }
    case 'ihave': {
      if (!Array.isArray(m.ids) || m.ids.length === 0 || m.ids.length > limits.maxIds) fail(`ids (array of 1..${limits.maxIds})`, m.ids)
      const ids = (m.ids as unknown[]).map((e) => {
        if (typeof e !== 'object' || e === null) fail('an { id, round } entry', e)
        const r = e as Record<string, unknown>
        return { id: str(r.id, 'id', limits), round: int(r.round, 'round', limits) }
      })
      return { type: 'ihave', ids }
    }
    case 'graft': return { type: 'graft', ids: strList(m.ids, 'ids', limits.maxIds, limits) }
    case 'peer_list_request':
      return { type: 'peer_list_request', reqId: str(m.reqId, 'reqId', limits), origin: str(m.origin, 'origin', limits), hops: int(m.hops, 'hops', limits), max: int(m.max, 'max', limits) }
    case 'peer_list':
      return { type: 'peer_list', reqId: str(m.reqId, 'reqId', limits), peers: strList(m.peers, 'peers', limits.maxNodes, limits) }
    default:
      return fail('a known gossip message type', m.type)
  }
}
