/**
 * Between the gossip core's messages (peers as DIDs) and the wire's control messages (peers as
 * their signed node records). Outbound, a peer whose record this node does not hold is left out
 * (a walk that needs it is dropped, like a lost message). Inbound, every record is verified; the
 * sender's own record must be the signer's, and an invalid entry of a list is skipped.
 */
import type { KLPMessage } from '@kos-mesh/interface'
import type { GossipWireMessage, NodeId } from '../gossip/index.js'
import type { RecordBook } from './records.js'
import type { GossipWire } from './wire.js'

type CoreMessage = GossipWireMessage<KLPMessage>

function recordsOf(book: RecordBook, nodes: readonly NodeId[], max: number): Uint8Array[] {
  const out: Uint8Array[] = []
  for (const n of nodes) {
    const b = book.bytesOf(n)
    if (b !== undefined && out.length < max) out.push(b)
  }
  return out
}

/** The wire form of a core message (not `gossip`: the router relays those), or undefined when it cannot be sent. */
export function toWire(m: CoreMessage, book: RecordBook, maxRecords: number): GossipWire | undefined {
  const own = book.own?.bytes
  switch (m.type) {
    case 'join':
      return own === undefined ? undefined : { action: 'join', record: own }
    case 'forward_join': {
      const record = book.bytesOf(m.node)
      return record === undefined ? undefined : { action: 'forward_join', record, ttl: m.ttl }
    }
    case 'neighbor':
      return own === undefined ? undefined : { action: 'neighbor', record: own, priority: m.priority }
    case 'neighbor_reply':
      return own === undefined ? { action: 'neighbor_reply', accepted: m.accepted } : { action: 'neighbor_reply', accepted: m.accepted, record: own }
    case 'disconnect':
      return { action: 'disconnect' }
    case 'shuffle': {
      const origin = book.bytesOf(m.origin)
      return origin === undefined ? undefined : { action: 'shuffle', origin, ttl: m.ttl, records: recordsOf(book, m.nodes, maxRecords) }
    }
    case 'shuffle_reply':
      return { action: 'shuffle_reply', records: recordsOf(book, m.nodes, maxRecords) }
    case 'ihave':
      return { action: 'ihave', ids: m.ids.map(({ id, round }) => ({ id, round: Math.min(round, 255) })) }
    case 'graft':
      return { action: 'graft', ids: [...m.ids] }
    case 'prune':
      return { action: 'prune' }
    case 'peer_list_request': {
      const origin = book.bytesOf(m.origin)
      return origin === undefined ? undefined : { action: 'peer_list_request', req_id: m.reqId, origin, hops: m.hops, max: Math.min(m.max, maxRecords) }
    }
    case 'peer_list':
      return { action: 'peer_list', req_id: m.reqId, records: recordsOf(book, m.peers, maxRecords) }
    case 'gossip':
      return undefined
  }
}

async function peersOf(book: RecordBook, records: readonly Uint8Array[], signal?: AbortSignal): Promise<NodeId[]> {
  const out: NodeId[] = []
  for (const r of records) {
    const rec = await book.accept(r, undefined, signal)
    if (rec !== undefined && !out.includes(rec.peerId)) out.push(rec.peerId)
  }
  return out
}

/**
 * The core message of a wire message from `from` (the verified signer), or undefined when a
 * record it cannot do without is invalid (the sender's own, a join's, a walk's origin).
 */
export async function fromWire(w: GossipWire, from: NodeId, book: RecordBook, signal?: AbortSignal): Promise<CoreMessage | undefined> {
  switch (w.action) {
    case 'join':
      return (await book.accept(w.record, from, signal)) === undefined ? undefined : { type: 'join' }
    case 'forward_join': {
      const r = await book.accept(w.record, undefined, signal)
      return r === undefined ? undefined : { type: 'forward_join', node: r.peerId, ttl: w.ttl }
    }
    case 'neighbor':
      return (await book.accept(w.record, from, signal)) === undefined ? undefined : { type: 'neighbor', priority: w.priority }
    case 'neighbor_reply':
      if (w.record !== undefined) await book.accept(w.record, from, signal)
      return { type: 'neighbor_reply', accepted: w.accepted }
    case 'disconnect':
      return { type: 'disconnect' }
    case 'shuffle': {
      const origin = await book.accept(w.origin, undefined, signal)
      if (origin === undefined) return undefined
      return { type: 'shuffle', origin: origin.peerId, ttl: w.ttl, nodes: await peersOf(book, w.records, signal) }
    }
    case 'shuffle_reply':
      return { type: 'shuffle_reply', nodes: await peersOf(book, w.records, signal) }
    case 'ihave':
      return { type: 'ihave', ids: w.ids.map(({ id, round }) => ({ id, round })) }
    case 'graft':
      return { type: 'graft', ids: [...w.ids] }
    case 'prune':
      return { type: 'prune' }
    case 'peer_list_request': {
      const origin = await book.accept(w.origin, undefined, signal)
      return origin === undefined ? undefined : { type: 'peer_list_request', reqId: w.req_id, origin: origin.peerId, hops: w.hops, max: w.max }
    }
    case 'peer_list':
      return { type: 'peer_list', reqId: w.req_id, peers: await peersOf(book, w.records, signal) }
  }
}

/** Actions a node accepts only from a direct neighbour (the signer is the neighbour it came from). */
export const DIRECT_ONLY: ReadonlySet<GossipWire['action']> = new Set(['join', 'forward_join', 'neighbor', 'disconnect', 'shuffle', 'ihave', 'graft', 'prune', 'peer_list_request'])
