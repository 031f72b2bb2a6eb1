/**
 * The gossip core: HyParView membership + Plumtree broadcast over its active view + the bounded
 * peer-list walk, behind one `handle(from, message)` entry point. Sans-I/O: it sends through the
 * injected `send`, takes its time and timers from the injected Clock, and learns that a peer is
 * unreachable from the driver (`peerDown`).
 *
 * Module shape: `gossipCore(init)(components)`.
 */
import { pick } from './random.js'
import { HyParView, type HyParViewStats } from './hyparview.js'
import { PeerListWalker, type PeerListRequestOptions } from './peer-list.js'
import { Plumtree, type PlumtreeStats } from './plumtree.js'
import type { GossipCoreComponents, GossipCoreInit, GossipWireMessage, NodeId, PushPlan } from './types.js'
import { DEFAULT_GOSSIP_LIMITS, validateGossipMessage, type GossipLimits } from './validate.js'

/** Counters of the gossip core. */
export interface GossipCoreStats {
  membership: HyParViewStats
  broadcast: PlumtreeStats
  peerListPending: number
}

/**
 * The sans-I/O gossip core: HyParView membership, Plumtree broadcast and peer-list walks, fed with messages
 * and time by its driver.
 */
export interface GossipCore<P = Uint8Array> {
  readonly self: NodeId
  readonly membership: HyParView
  readonly broadcaster: Plumtree<P>
  readonly peerList: PeerListWalker
  /** Starts the shuffle and maintenance timers. */
  start(): void
  /** Stops every timer and resolves pending peer-list requests. */
  stop(): void
  /** Joins the overlay through `contact`. */
  join(contact: NodeId): void
  /** The driver found `peer` unreachable. */
  peerDown(peer: NodeId): void
  /** Broadcasts this node's message `id` (the driver's id, e.g. the KLP message id). */
  broadcast(id: string, payload: P): PushPlan | undefined
  /** Decision API for a driver that pushes payloads itself: see Plumtree.accept. */
  accept(id: string, payload: P, from: NodeId | undefined, round: number): PushPlan | undefined
  /** Handles a message already validated (or built by trusted code). */
  receive(from: NodeId, message: GossipWireMessage<P>): void
  /** Validates `raw` (throws InvalidGossipMessageError) and handles it. */
  handle(from: NodeId, raw: unknown): void
  /** Random walk of at most `hops` hops collecting peer samples (`gossip_hops`). */
  requestPeerList(options: PeerListRequestOptions): Promise<NodeId[]>
  /** Active neighbours (the overlay). */
  neighbors(): NodeId[]
  /** The membership's and the broadcast's counters. */
  stats(): GossipCoreStats
}

class DefaultGossipCore<P> implements GossipCore<P> {
  readonly self: NodeId
  readonly membership: HyParView
  readonly broadcaster: Plumtree<P>
  readonly peerList: PeerListWalker
  private readonly limits: GossipLimits

  constructor(init: GossipCoreInit<P>, c: GossipCoreComponents<P>) {
    this.self = c.self
    const random = c.random ?? Math.random
    this.broadcaster = new Plumtree<P>(init.broadcast ?? {}, { self: c.self, clock: c.clock, send: c.send, random, deliver: c.deliver })
    this.membership = new HyParView(init.membership ?? {}, {
      self: c.self,
      clock: c.clock,
      send: c.send,
      random,
      onNeighborUp: (p) => this.broadcaster.neighborUp(p),
      onNeighborDown: (p) => this.broadcaster.neighborDown(p),
    })
    this.peerList = new PeerListWalker(init.peerList ?? {}, {
      self: c.self,
      clock: c.clock,
      send: c.send,
      random,
      sample: (n, exclude) => this.membership.sample(n, exclude),
      next: (exclude) => pick(this.membership.active().filter((p) => !exclude.includes(p)), random),
    })
    const ids = this.broadcaster.options.maxIdsPerMessage
    this.limits = { ...DEFAULT_GOSSIP_LIMITS, maxIdLength: this.broadcaster.options.maxIdLength, maxIds: ids }
  }

  start(): void { this.membership.start() }

  stop(): void {
    this.membership.stop()
    this.broadcaster.stop()
    this.peerList.stop()
  }

  join(contact: NodeId): void { this.membership.join(contact) }
  peerDown(peer: NodeId): void { this.membership.peerDown(peer) }
  broadcast(id: string, payload: P): PushPlan | undefined { return this.broadcaster.broadcast(id, payload) }
  accept(id: string, payload: P, from: NodeId | undefined, round: number): PushPlan | undefined { return this.broadcaster.accept(id, payload, from, round) }
  requestPeerList(options: PeerListRequestOptions): Promise<NodeId[]> { return this.peerList.request(options) }
  neighbors(): NodeId[] { return this.membership.active() }

  receive(from: NodeId, m: GossipWireMessage<P>): void {
    switch (m.type) {
      case 'gossip':
      case 'ihave':
        if (!this.membership.isActive(from)) this.membership.notNeighbor(from)
        return this.broadcaster.receive(from, m)
      case 'graft':
      case 'prune':
        return this.broadcaster.receive(from, m)
      case 'peer_list_request':
      case 'peer_list':
        return this.peerList.handle(from, m)
      default:
        return this.membership.handle(from, m)
    }
  }

  handle(from: NodeId, raw: unknown): void {
    this.receive(from, validateGossipMessage<P>(raw, this.limits))
  }

  stats(): GossipCoreStats {
    return { membership: this.membership.stats(), broadcast: this.broadcaster.stats(), peerListPending: this.peerList.pendingCount() }
  }
}

/** Creates a gossip core: `gossipCore(init)(components)`. Every init field documents its default in types.ts. */
export function gossipCore<P = Uint8Array>(init: GossipCoreInit<P> = {}): (components: GossipCoreComponents<P>) => GossipCore<P> {
  return (components) => new DefaultGossipCore<P>(init, components)
}
