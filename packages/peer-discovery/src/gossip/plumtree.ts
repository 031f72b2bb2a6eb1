/**
 * Plumtree broadcast (Leitão, Pereira, Rodrigues, SRDS 2007), sans-I/O, over the active view of
 * the membership layer. Each neighbour is eager (receives payloads) or lazy (receives IHAVE ids).
 * A new message is pushed to the eager peers and announced to the lazy ones; a duplicate PRUNEs
 * its sender to lazy; an IHAVE for a missing id starts a timer and, if the id is still missing
 * when it fires, a GRAFT asks an announcer for it (and makes that link eager). GRAFTs are retried
 * against the next announcer until the payload arrives, so lost messages are repaired.
 *
 * One deliberate difference from the paper's single spanning tree: a node PRUNEs duplicate senders
 * only while more than `minEager` neighbours push to it (and when one of those leaves, it GRAFTs a
 * pruned one back), so the eager links form a sparse mesh rather than a tree. Links are directed:
 * PRUNE from Y tells X "stop pushing to me", and only Y decides how many push to it, so pruning
 * never cascades. A tree of bounded degree over 1,000
 * nodes has paths of ~8 hops between random nodes (over 650 ms at 100 ms per hop), and with 5 %
 * loss per push a quarter of the nodes would sit below a lost edge and wait for a GRAFT; an eager
 * mesh of degree ~5 keeps paths near the overlay's shortest ones and survives most losses without
 * repair, while still sending fewer payloads than flooding the whole active view.
 *
 * The decision API, for a driver that sends the payload itself (the router's BroadcastStrategy):
 * `accept(id, payload, from, round)` returns whom to push to (IHAVEs and PRUNEs go out through
 * `send`); `receive(from, message)` does everything for a self-contained driver.
 */
import type { Clock, TimerHandle } from '@kos-mesh/interface'
import { InvalidGossipOptionError } from './errors.js'
import { checkInt, pick } from './random.js'
import type { BroadcastMessage, GossipMessage, NodeId, PlumtreeInit, PushPlan, SendFn } from './types.js'

/** The default Plumtree options (each documented on PlumtreeInit). */
export const PLUMTREE_DEFAULTS: Required<Omit<PlumtreeInit, 'sizeOf'>> = {
  minEager: 6,
  graftTimeoutMs: 200,
  graftRetryMs: 250,
  maxGraftAttempts: 8,
  maxAnnouncers: 8,
  maxMissing: 1024,
  ihaveDelayMs: 0,
  maxIdsPerMessage: 64,
  maxCacheEntries: 1024,
  maxCacheBytes: 8 * 1024 * 1024,
  cacheTtlMs: 60_000,
  maxSeen: 8192,
  maxIdLength: 256,
}

/** What Plumtree needs: this node's id, the clock, a send function, randomness and the delivery callback. */
export interface PlumtreeComponents<P> {
  self: NodeId
  clock: Clock
  send: SendFn<BroadcastMessage<P>>
  /** Uniform random numbers in [0, 1) (seed it for reproducible simulations). */
  random: () => number
  /** Called once per new broadcast id received from a peer (not for own broadcasts). */
  deliver?: (id: string, payload: P, from: NodeId, round: number) => void
}

/** Sizes and counters of Plumtree. */
export interface PlumtreeStats {
  /** Neighbours we push payloads to / send IHAVEs to. */
  eager: number
  lazy: number
  /** Neighbours pushing payloads to us (not pruned by us). */
  inbound: number
  cacheEntries: number
  cacheBytes: number
  seen: number
  missing: number
  delivered: number
  duplicates: number
  payloadsSent: number
  ihaveSent: number
  graftsSent: number
  prunesSent: number
  /** GRAFTs that asked only for an eager link (to get back to `minEager`). */
  linkGrafts: number
  /** Missing ids given up after maxGraftAttempts, or not tracked because maxMissing was reached. */
  givenUp: number
}

interface Cached<P> { payload: P; bytes: number; round: number; expires: number }
interface Missing { announcers: NodeId[]; attempts: number; timer: TimerHandle | undefined }
interface IHaveQueue { ids: Array<{ id: string; round: number }>; timer: TimerHandle | undefined }

/**
 * Plumtree broadcast (Leitão et al., 2007) over the active view: payloads pushed along a spanning tree of
 * eager links, ids announced on lazy links, and lost branches repaired by GRAFT.
 */
export class Plumtree<P = Uint8Array> {
  readonly options: Required<Omit<PlumtreeInit<P>, 'sizeOf'>>
  private readonly sizeOf: (payload: P) => number
  private readonly self: NodeId
  private readonly clock: Clock
  private readonly send: SendFn<BroadcastMessage<P>>
  private readonly random: () => number
  private readonly deliverFn: (id: string, payload: P, from: NodeId, round: number) => void
  private readonly eager = new Set<NodeId>()
  private readonly lazy = new Set<NodeId>()
  /** Neighbours we PRUNEd: they push IHAVEs, not payloads, to us. */
  private readonly pruned = new Set<NodeId>()
  private readonly cache = new Map<string, Cached<P>>()
  private cacheBytes = 0
  /** Delivered ids -> when they may be forgotten (insertion order = time order). */
  private readonly seen = new Map<string, number>()
  private readonly missing = new Map<string, Missing>()
  private readonly ihaveQueues = new Map<NodeId, IHaveQueue>()
  private readonly counters = { delivered: 0, duplicates: 0, payloadsSent: 0, ihaveSent: 0, graftsSent: 0, prunesSent: 0, linkGrafts: 0, givenUp: 0 }

  constructor(init: PlumtreeInit<P>, components: PlumtreeComponents<P>) {
    const { sizeOf, ...rest } = init
    const o = { ...PLUMTREE_DEFAULTS, ...rest }
    checkInt('minEager', o.minEager, 1, 64, InvalidGossipOptionError)
    checkInt('maxAnnouncers', o.maxAnnouncers, 1, 64, InvalidGossipOptionError)
    checkInt('maxGraftAttempts', o.maxGraftAttempts, 1, 64, InvalidGossipOptionError)
    checkInt('maxIdsPerMessage', o.maxIdsPerMessage, 1, 4096, InvalidGossipOptionError)
    checkInt('maxMissing', o.maxMissing, 1, 1 << 20, InvalidGossipOptionError)
    checkInt('maxCacheEntries', o.maxCacheEntries, 0, 1 << 20, InvalidGossipOptionError)
    checkInt('maxSeen', o.maxSeen, 1, 1 << 22, InvalidGossipOptionError)
    this.options = o
    this.sizeOf = sizeOf ?? ((p: P) => (p instanceof Uint8Array ? p.byteLength : 0))
    this.self = components.self
    this.clock = components.clock
    this.send = components.send
    this.random = components.random
    this.deliverFn = components.deliver ?? (() => {})
  }

  /** Neighbours this node pushes payloads to. */
  eagerPeers(): NodeId[] { return [...this.eager] }
  /** Neighbours this node sends IHAVEs to instead. */
  lazyPeers(): NodeId[] { return [...this.lazy] }
  /** Whether `id` was delivered (or broadcast) here and is still remembered. */
  has(id: string): boolean { return this.seen.has(id) }

  /** Eager and lazy neighbours, the payload cache, seen and missing ids, and the protocol's counters. */
  stats(): PlumtreeStats {
    return { eager: this.eager.size, lazy: this.lazy.size, inbound: this.inbound(), cacheEntries: this.cache.size, cacheBytes: this.cacheBytes, seen: this.seen.size, missing: this.missing.size, ...this.counters }
  }

  /**
   * A neighbour joined the active view: we push to it; it pushes to us only while fewer than
   * `minEager` do (else it is PRUNEd at once, so a new link never raises the duplicates).
   */
  neighborUp(peer: NodeId): void {
    if (peer === this.self || this.eager.has(peer) || this.lazy.has(peer)) return
    this.eager.add(peer)
    this.pruned.delete(peer)
    if (this.inbound() > this.options.minEager) {
      this.pruned.add(peer)
      this.counters.prunesSent++
      this.send(peer, { type: 'prune' })
    }
  }

  /** A neighbour left the active view. */
  neighborDown(peer: NodeId): void {
    this.eager.delete(peer)
    this.lazy.delete(peer)
    this.pruned.delete(peer)
    const q = this.ihaveQueues.get(peer)
    if (q !== undefined) this.clock.clearTimeout(q.timer)
    this.ihaveQueues.delete(peer)
    this.topUp()
  }

  /** Broadcasts this node's own message `id`: returns the plan it carried out (false plan if `id` is known). */
  broadcast(id: string, payload: P): PushPlan | undefined {
    const plan = this.accept(id, payload, undefined, 0)
    if (plan !== undefined) for (const p of plan.eager) this.push(p, id, 0, payload)
    return plan
  }

  /**
   * Decision API. A payload `id` arrived from `from` (undefined: this node's own), `round` hops
   * from its origin. New: it is remembered and cached, `from` becomes eager, IHAVEs go to the lazy
   * peers, and the peers to push the payload to are returned (not `from`). Known: a duplicate;
   * `from` may be PRUNEd; returns undefined.
   */
  accept(id: string, payload: P, from: NodeId | undefined, round: number): PushPlan | undefined {
    if (id.length === 0 || id.length > this.options.maxIdLength) return undefined
    if (this.seen.has(id)) {
      if (from !== undefined) this.duplicate(from)
      return undefined
    }
    this.remember(id, payload, round)
    const m = this.missing.get(id)
    if (m !== undefined) {
      this.clock.clearTimeout(m.timer)
      this.missing.delete(id)
    }
    const eager = [...this.eager].filter((p) => p !== from)
    const lazy = [...this.lazy].filter((p) => p !== from)
    for (const p of lazy) this.announce(p, id, round)
    return { eager, lazy }
  }

  /** Handles one broadcast-layer message from `from`. */
  receive(from: NodeId, msg: BroadcastMessage<P>): void {
    if (from === this.self) return
    switch (msg.type) {
      case 'gossip': return this.onGossip(from, msg)
      case 'ihave': return this.onIHave(from, msg.ids)
      case 'graft': return this.onGraft(from, msg.ids)
      case 'prune': return this.onPrune(from)
    }
  }

  /** Stops every timer (pending grafts, IHAVE batches); state is kept. */
  stop(): void {
    for (const m of this.missing.values()) this.clock.clearTimeout(m.timer)
    this.missing.clear()
    for (const q of this.ihaveQueues.values()) this.clock.clearTimeout(q.timer)
    this.ihaveQueues.clear()
  }

  private onGossip(from: NodeId, msg: GossipMessage<P>): void {
    const plan = this.accept(msg.id, msg.payload, from, msg.round)
    if (plan === undefined) return
    this.counters.delivered++
    this.deliverFn(msg.id, msg.payload, from, msg.round)
    for (const p of plan.eager) this.push(p, msg.id, msg.round + 1, msg.payload)
  }

  /**
   * A copy of a known id from `from`: PRUNE it (it stops pushing to us) unless that would leave
   * fewer than `minEager` neighbours pushing to us. A pruned peer that still pushes (its PRUNE was
   * lost) is pruned again.
   */
  private duplicate(from: NodeId): void {
    this.counters.duplicates++
    if (!this.eager.has(from) && !this.lazy.has(from)) return
    if (!this.pruned.has(from)) {
      if (this.inbound() <= this.options.minEager) return
      this.pruned.add(from)
    }
    this.counters.prunesSent++
    this.send(from, { type: 'prune' })
  }

  /** Neighbours pushing to us (not pruned by us). */
  private inbound(): number {
    return this.eager.size + this.lazy.size - this.pruned.size
  }

  private onPrune(from: NodeId): void {
    if (this.eager.delete(from)) this.lazy.add(from)
  }

  /** Fewer than `minEager` neighbours push to us (one left): un-prune a random one with a GRAFT without ids. */
  private topUp(): void {
    if (this.inbound() >= this.options.minEager) return
    const q = pick([...this.pruned], this.random)
    if (q === undefined) return
    this.pruned.delete(q)
    this.counters.linkGrafts++
    this.counters.graftsSent++
    this.send(q, { type: 'graft', ids: [] })
  }

  private onGraft(from: NodeId, ids: readonly string[]): void {
    if (this.lazy.delete(from)) this.eager.add(from)
    const now = this.clock.now()
    for (const id of ids.slice(0, this.options.maxIdsPerMessage)) {
      const c = this.cache.get(id)
      if (c !== undefined && c.expires > now) this.push(from, id, c.round + 1, c.payload)
    }
  }

  private onIHave(from: NodeId, ids: ReadonlyArray<{ id: string; round: number }>): void {
    for (const { id } of ids.slice(0, this.options.maxIdsPerMessage)) {
      if (this.seen.has(id) || id.length === 0 || id.length > this.options.maxIdLength) continue
      const m = this.missing.get(id)
      if (m !== undefined) {
        if (m.announcers.length < this.options.maxAnnouncers && !m.announcers.includes(from)) m.announcers.push(from)
        continue
      }
      if (this.missing.size >= this.options.maxMissing) {
        this.counters.givenUp++
        continue
      }
      const entry: Missing = { announcers: [from], attempts: 0, timer: undefined }
      this.missing.set(id, entry)
      entry.timer = this.clock.setTimeout(() => this.graftTimer(id), this.options.graftTimeoutMs)
    }
  }

  /** Still missing: GRAFT the next announcer (round-robin) and wait again, up to maxGraftAttempts. */
  private graftTimer(id: string): void {
    const m = this.missing.get(id)
    if (m === undefined) return
    if (this.seen.has(id) || m.attempts >= this.options.maxGraftAttempts) {
      if (!this.seen.has(id)) this.counters.givenUp++
      this.missing.delete(id)
      return
    }
    const peer = m.announcers[m.attempts % m.announcers.length] as NodeId
    m.attempts++
    this.pruned.delete(peer)
    this.counters.graftsSent++
    this.send(peer, { type: 'graft', ids: [id] })
    m.timer = this.clock.setTimeout(() => this.graftTimer(id), this.options.graftRetryMs)
  }

  private push(to: NodeId, id: string, round: number, payload: P): void {
    this.counters.payloadsSent++
    this.send(to, { type: 'gossip', id, round, payload })
  }

  private announce(to: NodeId, id: string, round: number): void {
    if (this.options.ihaveDelayMs <= 0) {
      this.counters.ihaveSent++
      this.send(to, { type: 'ihave', ids: [{ id, round }] })
      return
    }
    let q = this.ihaveQueues.get(to)
    if (q === undefined) {
      q = { ids: [], timer: undefined }
      this.ihaveQueues.set(to, q)
    }
    q.ids.push({ id, round })
    if (q.ids.length >= this.options.maxIdsPerMessage) this.flush(to)
    else if (q.timer === undefined) q.timer = this.clock.setTimeout(() => this.flush(to), this.options.ihaveDelayMs)
  }

  private flush(to: NodeId): void {
    const q = this.ihaveQueues.get(to)
    if (q === undefined) return
    this.clock.clearTimeout(q.timer)
    this.ihaveQueues.delete(to)
    if (q.ids.length === 0 || !(this.lazy.has(to) || this.eager.has(to))) return
    this.counters.ihaveSent++
    this.send(to, { type: 'ihave', ids: q.ids })
  }

  /** Marks `id` delivered and caches its payload, evicting expired and excess entries. */
  private remember(id: string, payload: P, round: number): void {
    const now = this.clock.now()
    for (const [k, exp] of this.seen) {
      if (exp > now && this.seen.size < this.options.maxSeen) break
      this.seen.delete(k)
    }
    this.seen.set(id, now + 2 * this.options.cacheTtlMs)
    for (const [k, c] of this.cache) {
      if (c.expires > now) break
      this.evict(k, c)
    }
    const bytes = this.sizeOf(payload)
    if (this.options.maxCacheEntries === 0 || bytes > this.options.maxCacheBytes) return
    for (const [k, c] of this.cache) {
      if (this.cache.size < this.options.maxCacheEntries && this.cacheBytes + bytes <= this.options.maxCacheBytes) break
      this.evict(k, c)
    }
    this.cache.set(id, { payload, bytes, round, expires: now + this.options.cacheTtlMs })
    this.cacheBytes += bytes
  }

  private evict(id: string, c: Cached<P>): void {
    this.cache.delete(id)
    this.cacheBytes -= c.bytes
  }
}
