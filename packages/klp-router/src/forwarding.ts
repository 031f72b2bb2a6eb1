/**
 * Forwarding and broadcast: unicast messages for other authorities go to the next hop (the `via`
 * routing hint first), with the hop count raised in the envelope only; broadcasts go where the
 * broadcast strategy says (flooding to every neighbour but the sender by default, or a gossip
 * service's choice). Frames are posted without waiting. While a strategy is installed, the
 * recent broadcasts are held so `relayTo` can send one to a further neighbour later. Broadcasts
 * that came by another path (`deliverExternal`, e.g. gossipsub) run through the same pipeline
 * stages but are never relayed. Internal.
 */
import {
  ConnectionClosedError,
  InvalidParametersError,
  KLPMessageType,
  TrustObservation,
  type BroadcastStrategy,
  type Connection,
  type KLPMessage,
} from '@kos-mesh/interface'
import { encodeMessage } from '@kos-mesh/klp-codec'
import { BroadcastCache } from './broadcast-cache.js'
import type { QueueItem, RouterCore } from './core.js'
import { ENVELOPE_HEADER_BYTES, EnvelopeKind, FLAG_VIA_REACHED, encodeEnvelope, rewrapEnvelope } from './envelope.js'
import { NoRouteError, UnknownBroadcastError } from './errors.js'
import { RejectReason } from './reasons.js'
import type { Responder } from './responder.js'
import { decodeFrame } from './stages/index.js'

/**
 * The `conn` of queue items that came by another path: not undefined, so the pipeline treats them
 * as a peer's messages (every check runs), and never in the routing table (nothing is sent on it).
 */
const OFF_ROUTER: Connection = Object.freeze({
  id: 'deliver-broadcast',
  remotePeer: '',
  remoteAddr: '',
  direction: 'inbound',
  status: 'closed',
  send: () => Promise.reject(new ConnectionClosedError('not a router connection')),
  close: async () => {},
  abort: () => {},
  closed: Promise.resolve(),
  async *[Symbol.asyncIterator]() {},
}) as Connection

/** Plain flooding: every neighbour but the one the broadcast came from. */
export const floodingStrategy: BroadcastStrategy = {
  relay: (_msg, ctx) => (ctx.fromPeer === undefined ? ctx.neighbours : ctx.neighbours.filter((d) => d !== ctx.fromPeer)),
}

export class Forwarding {
  private current: BroadcastStrategy = floodingStrategy
  /** Recent broadcasts for `relayTo` (held only while a strategy other than flooding is installed). */
  readonly held: BroadcastCache

  constructor(
    private readonly core: RouterCore,
    private readonly responder: Responder,
    cache: { maxEntries?: number | undefined; maxBytes?: number | undefined } = {},
  ) {
    this.held = new BroadcastCache(cache.maxEntries ?? 1024, cache.maxBytes ?? 16 * 1024 * 1024)
  }

  get strategy(): BroadcastStrategy {
    return this.current
  }

  set strategy(s: BroadcastStrategy) {
    this.current = s
    if (s === floodingStrategy) this.held.clear()
  }

  /** The `via` routing hint, unless the envelope says it was reached. */
  viaHint(msg: KLPMessage, flags: number): string | undefined {
    if ((flags & FLAG_VIA_REACHED) !== 0) return undefined
    for (const h of msg.metadata.routing_hints) if (h.kind === 'via') return h.value
    return undefined
  }

  /** Relays a verified unicast message toward its target (or answers hop_limit / no_route). */
  async forward(item: QueueItem): Promise<void> {
    const core = this.core
    const { msg, fromPeer } = item
    const hops = item.hops + 1
    if (hops > core.cfg.hopLimit) return this.responder.fail(msg, fromPeer, RejectReason.HOP_LIMIT, `expected at most ${core.cfg.hopLimit} hops`)
    let flags = item.flags
    const via = this.viaHint(msg, flags)
    if (via === core.authority) flags |= FLAG_VIA_REACHED
    const target = via !== undefined && via !== core.authority ? via : msg.target.authority
    const conn = core.nextHop(target, fromPeer) ?? core.nextHop(msg.target.authority, fromPeer)
    if (conn === undefined) return this.responder.fail(msg, fromPeer, RejectReason.NO_ROUTE, `expected a route to ${msg.target.authority}`)
    core.counters.forwarded++
    core.post(conn, rewrapEnvelope(item.frame, hops, flags))
  }

  /**
   * A broadcast that came by another path (`MessageRouter.deliverBroadcast`): size, decode and type
   * checked here, then queued for the pipeline's stages (expiry, revoked, replay, signature, source,
   * trust, handler) like a peer's message; `broadcast()` then leaves it where it is. Its hop count is
   * set to the limit so no reverse-path route is learned from it (the path is not ours). False when
   * refused before the pipeline (counted as a reject).
   */
  deliverExternal(message: KLPMessage | Uint8Array, fromPeer: string, enqueue: (item: QueueItem) => boolean): boolean {
    const core = this.core
    if (typeof fromPeer !== 'string' || fromPeer.length === 0 || fromPeer.length > 1024) throw new InvalidParametersError(`expected fromPeer to be a DID, got ${typeof fromPeer === 'string' ? JSON.stringify(fromPeer.slice(0, 80)) : typeof fromPeer}`)
    if (core.isRevoked?.(fromPeer) === true) {
      core.reject(RejectReason.REVOKED, fromPeer)
      return false
    }
    let body: Uint8Array
    if (message instanceof Uint8Array) body = message
    else {
      try {
        body = encodeMessage(message)
      } catch {
        core.reject(RejectReason.MALFORMED, fromPeer)
        return false
      }
    }
    core.counters.messagesIn++
    core.counters.bytesIn += body.byteLength
    if (body.byteLength + ENVELOPE_HEADER_BYTES > core.cfg.maxFrameBytes) {
      core.reject(RejectReason.FRAME_TOO_LARGE, fromPeer)
      return false
    }
    const frame = encodeEnvelope(EnvelopeKind.MESSAGE, 0, 0, body)
    const msg = decodeFrame(core, frame)
    if ('reason' in msg && 'answer' in msg) {
      core.reject(msg.reason, fromPeer)
      core.observe(fromPeer, TrustObservation.INVALID_MESSAGE)
      return false
    }
    if (msg.type !== KLPMessageType.BROADCAST_ANNOUNCE) {
      core.reject(RejectReason.UNSUPPORTED_MESSAGE_TYPE, fromPeer, msg.metadata.message_id)
      return false
    }
    const item: QueueItem = { conn: OFF_ROUTER, fromPeer, hops: core.cfg.hopLimit, flags: 0, frame, msg, receivedAt: core.clock.now() }
    this.external.add(item)
    return enqueue(item)
  }

  /** Queue items of `deliverExternal`: delivered here, never relayed. */
  private readonly external = new WeakSet<QueueItem>()

  /** Spreads a broadcast this node accepted (or made: `item.conn` undefined) as the strategy says. */
  broadcast(item: QueueItem): void {
    const core = this.core
    if (this.external.has(item)) return
    const own = item.conn === undefined
    const hops = own ? 0 : item.hops + 1
    const flooding = this.current === floodingStrategy
    // under flooding nothing more happens at the hop limit; a strategy still hears of the broadcast
    if (!own && hops > core.cfg.hopLimit && flooding) return
    let targets: readonly string[]
    try {
      targets = this.current.relay(item.msg, { fromPeer: own ? undefined : item.fromPeer, hops: item.hops, neighbours: core.table.peers() })
    } catch (err) {
      core.log.warn('broadcast strategy failed', { err: err instanceof Error ? err.name : '' })
      return
    }
    if (!own && hops > core.cfg.hopLimit) return
    if (targets.length === 0 && flooding) return
    const frame = own ? item.frame : rewrapEnvelope(item.frame, hops, item.flags)
    if (!flooding) this.held.add(item.msg.metadata.message_id, { frame, signer: item.msg.signer, expiresAt: core.expiryOf(item.msg), own })
    for (const did of targets) {
      if (did === item.fromPeer && !own) continue
      const c = core.table.connection(did)
      if (c === undefined) continue
      if (!own) core.counters.forwarded++
      core.post(c, frame)
    }
  }

  /**
   * Sends a held broadcast (accepted or made here) to one directly connected neighbour: the frame
   * as this node relays it. Waits for the neighbour's connection to take it.
   */
  async relayTo(peer: string, msg: KLPMessage, signal?: AbortSignal): Promise<void> {
    const core = this.core
    if (msg?.type !== KLPMessageType.BROADCAST_ANNOUNCE) throw new InvalidParametersError(`expected a BROADCAST_ANNOUNCE message, got ${String(msg?.type)}`)
    const id = msg.metadata.message_id
    const held = this.held.get(id, core.clock.now())
    if (held === undefined || held.signer !== msg.signer) throw new UnknownBroadcastError(`expected a broadcast this router holds, got ${id} (not accepted here, evicted, expired or past the hop limit)`)
    const conn = core.table.connection(peer)
    if (conn === undefined) throw new NoRouteError(`expected a connected neighbour, got ${peer.slice(0, 80)}`)
    await core.outbound.deliver(conn, held.frame, signal)
    if (!held.own) core.counters.forwarded++
  }
}
