/**
 * HyParView membership (Leitão, Pereira, Rodrigues, DSN 2007), sans-I/O: a small symmetric active
 * view (the overlay the broadcast runs on) and a larger passive view of backups, kept fresh by
 * periodic SHUFFLE random walks. Joins travel as FORWARD_JOIN random walks (ARWL / PRWL). A peer
 * the driver reports down (onPeerDown) is replaced from the passive view with NEIGHBOR requests
 * (high priority when the active view is empty: it must be accepted).
 *
 * Messages are one-way and may be lost, so: a join is retried until some peer accepts; a NEIGHBOR
 * request without answer times out and its candidate leaves the passive view; the active view is
 * refilled up to its size on every maintenance tick; a broadcast message from a peer that is not
 * an active neighbour is answered with DISCONNECT (the core calls `notNeighbor`), which repairs
 * half-open links left by lost replies.
 */
import type { Clock, TimerHandle } from '@kos-mesh/interface'
import { InvalidGossipOptionError } from './errors.js'
import { checkInt, pick, sample } from './random.js'
import type { HyParViewInit, MembershipMessage, NodeId, SendFn } from './types.js'

/** The default HyParView options (each documented on HyParViewInit). */
export const HYPARVIEW_DEFAULTS: Required<HyParViewInit> = {
  activeViewSize: 8,
  passiveViewSize: 30,
  arwl: 6,
  prwl: 3,
  shuffleActive: 3,
  shufflePassive: 4,
  shuffleIntervalMs: 10_000,
  maintenanceIntervalMs: 1_000,
  neighborTimeoutMs: 1_000,
  linkCheckIntervalMs: 2_500,
  rewireIntervalMs: 60_000,
}

/**
 * What HyParView needs: this node's id, the clock, a send function, randomness and the view-change
 * callbacks.
 */
export interface HyParViewComponents {
  self: NodeId
  clock: Clock
  send: SendFn<MembershipMessage>
  /** Uniform random numbers in [0, 1) (seed it for reproducible simulations). */
  random: () => number
  /** A peer entered the active view. */
  onNeighborUp?: (peer: NodeId) => void
  /** A peer left the active view (disconnect, eviction, failure). */
  onNeighborDown?: (peer: NodeId) => void
}

/** View sizes and counters of HyParView. */
export interface HyParViewStats {
  active: number
  passive: number
  pendingNeighbors: number
  shuffles: number
  joinsForwarded: number
  rewires: number
}

/**
 * HyParView membership (Leitão et al., 2007): a small symmetric active view (the overlay) and a larger
 * passive view of replacements, kept by joins, shuffles and repairs.
 */
export class HyParView {
  readonly options: Required<HyParViewInit>
  private readonly self: NodeId
  private readonly clock: Clock
  private readonly send: SendFn<MembershipMessage>
  private readonly random: () => number
  private readonly up: (peer: NodeId) => void
  private readonly down: (peer: NodeId) => void
  private readonly activeSet = new Set<NodeId>()
  private readonly passiveSet = new Set<NodeId>()
  /** Outstanding NEIGHBOR requests and their timeouts (at most activeViewSize). */
  private readonly pending = new Map<NodeId, TimerHandle>()
  private contact: NodeId | undefined
  /** Peers that sent DISCONNECT recently -> until when a late accept from them is ignored (bounded). */
  private readonly recentlyDisconnected = new Map<NodeId, number>()
  private probeIndex = 0
  private linkCheckTimer: TimerHandle | undefined
  private rewireTimer: TimerHandle | undefined
  /** Outstanding swap: asked `to`, will drop `drop` when it accepts. */
  private swapping: { to: NodeId; drop: NodeId } | undefined
  private lastShuffleSample: NodeId[] = []
  private shuffleTimer: TimerHandle | undefined
  private maintenanceTimer: TimerHandle | undefined
  private started = false
  private counters = { shuffles: 0, joinsForwarded: 0, rewires: 0 }

  constructor(init: HyParViewInit, components: HyParViewComponents) {
    const o = { ...HYPARVIEW_DEFAULTS, ...init }
    checkInt('activeViewSize', o.activeViewSize, 1, 64, InvalidGossipOptionError)
    checkInt('passiveViewSize', o.passiveViewSize, 0, 1024, InvalidGossipOptionError)
    checkInt('arwl', o.arwl, 0, 32, InvalidGossipOptionError)
    checkInt('prwl', o.prwl, 0, o.arwl, InvalidGossipOptionError)
    checkInt('shuffleActive', o.shuffleActive, 0, 32, InvalidGossipOptionError)
    checkInt('shufflePassive', o.shufflePassive, 0, 32, InvalidGossipOptionError)
    this.options = o
    this.self = components.self
    this.clock = components.clock
    this.send = components.send
    this.random = components.random
    this.up = components.onNeighborUp ?? (() => {})
    this.down = components.onNeighborDown ?? (() => {})
  }

  /** Active neighbours (the overlay), in insertion order. */
  active(): NodeId[] { return [...this.activeSet] }
  /** The passive view (known peers kept as replacements). */
  passive(): NodeId[] { return [...this.passiveSet] }
  /** Whether `peer` is in the active view. */
  isActive(peer: NodeId): boolean { return this.activeSet.has(peer) }

  /** View sizes, pending NEIGHBOR requests and the protocol's counters. */
  stats(): HyParViewStats {
    return { active: this.activeSet.size, passive: this.passiveSet.size, pendingNeighbors: this.pending.size, ...this.counters }
  }

  /** Starts the periodic shuffle and maintenance timers. */
  start(): void {
    if (this.started) return
    this.started = true
    this.scheduleShuffle()
    this.scheduleMaintenance()
    this.scheduleLinkCheck()
    this.scheduleRewire()
  }

  /** Stops every timer (views are kept). */
  stop(): void {
    this.started = false
    this.clock.clearTimeout(this.shuffleTimer)
    this.clock.clearTimeout(this.maintenanceTimer)
    this.clock.clearTimeout(this.linkCheckTimer)
    this.clock.clearTimeout(this.rewireTimer)
    for (const t of this.pending.values()) this.clock.clearTimeout(t)
    this.pending.clear()
  }

  /** Joins through `contact` (retried on each maintenance tick while the active view is empty). */
  join(contact: NodeId): void {
    if (contact === this.self) return
    this.contact = contact
    this.send(contact, { type: 'join' })
  }

  /** The driver found `peer` unreachable: it leaves both views; a passive peer replaces it. */
  peerDown(peer: NodeId): void {
    this.passiveSet.delete(peer)
    const t = this.pending.get(peer)
    if (t !== undefined) {
      this.clock.clearTimeout(t)
      this.pending.delete(peer)
    }
    if (this.activeSet.delete(peer)) {
      this.down(peer)
      this.fill()
    }
  }

  /** A broadcast message came from `peer`, which is not an active neighbour: tell it (half-open link). */
  notNeighbor(peer: NodeId): void {
    if (!this.activeSet.has(peer) && peer !== this.self) this.send(peer, { type: 'disconnect' })
  }

  /** Handles one membership message from `from`. */
  handle(from: NodeId, msg: MembershipMessage): void {
    if (from === this.self) return
    switch (msg.type) {
      case 'join': return this.onJoin(from)
      case 'forward_join': return this.onForwardJoin(from, msg.node, msg.ttl)
      case 'neighbor': return this.onNeighbor(from, msg.priority === 'high', msg.swap)
      case 'neighbor_reply': return this.onNeighborReply(from, msg.accepted)
      case 'disconnect':
        this.markDisconnected(from)
        if (this.activeSet.delete(from)) {
          this.down(from)
          this.addPassive(from)
          if (msg.link !== undefined && msg.link !== this.self && !this.activeSet.has(msg.link)) this.request(msg.link, 'high')
          this.fill()
        }
        return
      case 'shuffle': return this.onShuffle(from, msg.origin, msg.ttl, msg.nodes)
      case 'shuffle_reply': return this.integrate(msg.nodes, this.lastShuffleSample)
    }
  }

  /** A random sample of up to `n` known peers (active first, then passive), for peer-list answers. */
  sample(n: number, exclude?: NodeId): NodeId[] {
    const act = sample(this.activeSet, n, this.random).filter((p) => p !== exclude)
    if (act.length >= n) return act
    return [...act, ...sample([...this.passiveSet].filter((p) => p !== exclude), n - act.length, this.random)]
  }

  private onJoin(joiner: NodeId): void {
    if (this.activeSet.has(joiner)) {
      this.send(joiner, { type: 'neighbor_reply', accepted: true })
      return
    }
    this.addActive(joiner)
    this.send(joiner, { type: 'neighbor_reply', accepted: true })
    for (const n of this.activeSet) {
      if (n !== joiner) {
        this.send(n, { type: 'forward_join', node: joiner, ttl: this.options.arwl })
        this.counters.joinsForwarded++
      }
    }
  }

  private onForwardJoin(from: NodeId, node: NodeId, ttl: number): void {
    if (node === this.self) return
    if (this.activeSet.has(node)) return
    const next = pick([...this.activeSet].filter((p) => p !== from && p !== node), this.random)
    if (ttl === 0 || next === undefined) {
      this.addActive(node)
      this.send(node, { type: 'neighbor_reply', accepted: true })
      return
    }
    if (ttl === this.options.prwl) this.addPassive(node)
    this.send(next, { type: 'forward_join', node, ttl: ttl - 1 })
    this.counters.joinsForwarded++
  }

  private onNeighbor(from: NodeId, high: boolean, swap: NodeId | undefined): void {
    if (swap !== undefined && !this.activeSet.has(from) && swap !== this.self) {
      // rewiring: take `from`, hand one of ours over to `swap`
      if (this.activeSet.size >= this.options.activeViewSize) {
        const victim = pick([...this.activeSet].filter((p) => p !== swap), this.random)
        if (victim !== undefined) {
          this.activeSet.delete(victim)
          this.send(victim, this.activeSet.has(swap) ? { type: 'disconnect' } : { type: 'disconnect', link: swap })
          this.down(victim)
          this.addPassive(victim)
        }
      }
      this.addActive(from)
      this.send(from, { type: 'neighbor_reply', accepted: true })
      return
    }
    if (this.activeSet.has(from) || high || this.activeSet.size < this.options.activeViewSize) {
      this.addActive(from)
      this.send(from, { type: 'neighbor_reply', accepted: true })
    } else {
      this.send(from, { type: 'neighbor_reply', accepted: false })
    }
  }

  private onNeighborReply(from: NodeId, accepted: boolean): void {
    const t = this.pending.get(from)
    if (t !== undefined) {
      this.clock.clearTimeout(t)
      this.pending.delete(from)
    }
    if (accepted) {
      // an accept overtaken by the same peer's DISCONNECT (reordering) must not reopen the link
      const until = this.recentlyDisconnected.get(from)
      if (t === undefined && until !== undefined && until > this.clock.now()) return
      const sw = this.swapping
      if (sw !== undefined && sw.to === from) {
        this.swapping = undefined
        if (this.activeSet.delete(sw.drop)) {
          this.send(sw.drop, { type: 'disconnect' })
          this.down(sw.drop)
          this.addPassive(sw.drop)
        }
      }
      this.addActive(from)
    } else if (this.activeSet.delete(from)) {
      // a link check found a half-open link: the peer does not have us
      this.down(from)
      this.addPassive(from)
      this.fill()
    }
  }

  private markDisconnected(peer: NodeId): void {
    const now = this.clock.now()
    for (const [p, until] of this.recentlyDisconnected) {
      if (until > now && this.recentlyDisconnected.size < 2 * this.options.activeViewSize) break
      this.recentlyDisconnected.delete(p)
    }
    this.recentlyDisconnected.delete(peer)
    this.recentlyDisconnected.set(peer, now + this.options.neighborTimeoutMs)
  }

  /**
   * Link check: a low-priority NEIGHBOR to one active peer per period (round robin). A peer that
   * has us answers "accepted" and nothing changes; one that lost the link (a DISCONNECT or an accept
   * was lost) accepts if it has room or rejects, and the reject closes the half-open link here.
   */
  private checkLink(): void {
    const act = [...this.activeSet]
    if (act.length === 0) return
    const peer = act[this.probeIndex++ % act.length] as NodeId
    this.send(peer, { type: 'neighbor', priority: 'low' })
  }

  private scheduleLinkCheck(): void {
    if (this.options.linkCheckIntervalMs <= 0) return
    this.linkCheckTimer = this.clock.setTimeout(() => {
      if (!this.started) return
      this.checkLink()
      this.scheduleLinkCheck()
    }, this.options.linkCheckIntervalMs * (0.75 + 0.5 * this.random()))
  }

  private onShuffle(from: NodeId, origin: NodeId, ttl: number, nodes: NodeId[]): void {
    const next = ttl > 0 ? pick([...this.activeSet].filter((p) => p !== from && p !== origin), this.random) : undefined
    if (next !== undefined) {
      this.send(next, { type: 'shuffle', origin, ttl: ttl - 1, nodes })
      return
    }
    if (origin === this.self) return
    const reply = sample(this.passiveSet, nodes.length, this.random)
    this.send(origin, { type: 'shuffle_reply', nodes: reply })
    this.integrate(nodes, reply)
  }

  /** Adds `nodes` to the passive view, evicting first the peers just sent away (`sent`), then random ones. */
  private integrate(nodes: readonly NodeId[], sent: readonly NodeId[]): void {
    const evictable = sent.filter((p) => this.passiveSet.has(p))
    for (const n of nodes) {
      if (n === this.self || this.activeSet.has(n) || this.passiveSet.has(n)) continue
      if (this.options.passiveViewSize === 0) return
      if (this.passiveSet.size >= this.options.passiveViewSize) {
        const victim = evictable.pop() ?? pick([...this.passiveSet], this.random)
        if (victim !== undefined) this.passiveSet.delete(victim)
      }
      this.passiveSet.add(n)
    }
  }

  private addActive(peer: NodeId): void {
    if (peer === this.self || this.activeSet.has(peer)) return
    if (this.activeSet.size >= this.options.activeViewSize) {
      const victim = pick([...this.activeSet], this.random)
      if (victim !== undefined) {
        this.activeSet.delete(victim)
        this.send(victim, { type: 'disconnect' })
        this.down(victim)
        this.addPassive(victim)
      }
    }
    this.passiveSet.delete(peer)
    this.activeSet.add(peer)
    this.up(peer)
  }

  private addPassive(peer: NodeId): void {
    if (peer === this.self || this.activeSet.has(peer) || this.passiveSet.has(peer)) return
    if (this.options.passiveViewSize === 0) return
    if (this.passiveSet.size >= this.options.passiveViewSize) {
      const victim = pick([...this.passiveSet], this.random)
      if (victim !== undefined) this.passiveSet.delete(victim)
    }
    this.passiveSet.add(peer)
  }

  /** Sends NEIGHBOR requests to passive peers until active + pending reaches the active view size. */
  private fill(): void {
    const want = this.options.activeViewSize - this.activeSet.size - this.pending.size
    if (want <= 0) return
    const candidates = sample([...this.passiveSet].filter((p) => !this.pending.has(p)), want, this.random)
    const priority = this.activeSet.size === 0 ? 'high' : 'low'
    for (const c of candidates) this.request(c, priority)
  }

  /** Sends a NEIGHBOR request and remembers it until its answer or timeout (then `peer` leaves the passive view). */
  private request(peer: NodeId, priority: 'high' | 'low', swap?: NodeId): void {
    const old = this.pending.get(peer)
    if (old !== undefined) this.clock.clearTimeout(old)
    this.recentlyDisconnected.delete(peer)
    this.send(peer, swap === undefined ? { type: 'neighbor', priority } : { type: 'neighbor', priority, swap })
    this.pending.set(peer, this.clock.setTimeout(() => {
      this.pending.delete(peer)
      this.passiveSet.delete(peer)
      // if it accepted and only the answer was lost, this closes its half of the link
      if (!this.activeSet.has(peer)) this.send(peer, { type: 'disconnect' })
      if (this.swapping?.to === peer) this.swapping = undefined
    }, this.options.neighborTimeoutMs))
  }

  /** Rewiring step: offer a random passive peer to take the place of a random active one (edge swap). */
  rewire(): void {
    if (this.activeSet.size < this.options.activeViewSize || this.swapping !== undefined || this.pending.size > 0) return
    const to = pick([...this.passiveSet], this.random)
    const drop = pick([...this.activeSet], this.random)
    if (to === undefined || drop === undefined) return
    this.swapping = { to, drop }
    this.counters.rewires++
    this.request(to, 'low', drop)
  }

  private scheduleRewire(): void {
    if (this.options.rewireIntervalMs <= 0) return
    this.rewireTimer = this.clock.setTimeout(() => {
      if (!this.started) return
      this.rewire()
      this.scheduleRewire()
    }, this.options.rewireIntervalMs * (0.75 + 0.5 * this.random()))
  }

  private scheduleShuffle(): void {
    const ms = this.options.shuffleIntervalMs * (1 + 0.25 * this.random())
    this.shuffleTimer = this.clock.setTimeout(() => {
      if (!this.started) return
      this.shuffle()
      this.scheduleShuffle()
    }, ms)
  }

  private scheduleMaintenance(): void {
    this.maintenanceTimer = this.clock.setTimeout(() => {
      if (!this.started) return
      if (this.activeSet.size === 0 && this.contact !== undefined && this.passiveSet.size === 0) this.send(this.contact, { type: 'join' })
      this.fill()
      this.scheduleMaintenance()
    }, this.options.maintenanceIntervalMs)
  }

  /** Starts one SHUFFLE walk (also callable by the driver). */
  shuffle(): void {
    const target = pick([...this.activeSet], this.random)
    if (target === undefined) return
    const nodes = [
      this.self,
      ...sample([...this.activeSet].filter((p) => p !== target), this.options.shuffleActive, this.random),
      ...sample(this.passiveSet, this.options.shufflePassive, this.random),
    ]
    this.lastShuffleSample = nodes
    this.counters.shuffles++
    this.send(target, { type: 'shuffle', origin: this.self, ttl: this.options.arwl, nodes })
  }
}
