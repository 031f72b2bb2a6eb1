/**
 * Forwarding and broadcast: unicast messages for other authorities go to the next hop (the `via`
 * routing hint first), with the hop count raised in the envelope only; broadcasts go where the
 * broadcast strategy says (flooding to every neighbour but the sender by default, or a gossip
 * service's choice). Frames are posted without waiting. While a strategy is installed, the
 * recent broadcasts are held so `relayTo` can send one to a further neighbour later. Internal.
 */
import { InvalidParametersError, KLPMessageType, type BroadcastStrategy, type KLPMessage } from '@kos-mesh/interface'
import { BroadcastCache } from './broadcast-cache.js'
import type { QueueItem, RouterCore } from './core.js'
import { FLAG_VIA_REACHED, rewrapEnvelope } from './envelope.js'
import { NoRouteError, UnknownBroadcastError } from './errors.js'
import { RejectReason } from './reasons.js'
import type { Responder } from './responder.js'

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

  /** Spreads a broadcast this node accepted (or made: `item.conn` undefined) as the strategy says. */
  broadcast(item: QueueItem): void {
    const core = this.core
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
