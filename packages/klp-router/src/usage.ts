/**
 * CPU accounting per peer: each peer's recent share of the event loop (a decayed average of the
 * measured time its pipeline steps took, as a fraction of one core), all strangers' together, and
 * the budget built on them. The slicer charges every step it lets through; the scheduler and the
 * slicer's gate serve the peer with the least recent usage first; a peer over its budget gets no
 * step through the gate and its connection is not read while it has messages queued (its bytes
 * then wait in the transport, undecrypted), until its share decays.
 *
 * A peer with at most one message in the node (queued or in the pipeline: `backlog`) is never held,
 * whatever its share: a peer that waits for each answer before it asks again paces itself, and
 * holding it would only stall it for the time its share takes to decay (tens of ms, for a peer
 * whose share was near the level when others made the level drop). Holding works on backlogs,
 * the flooder's tool; a flood of one-message peers is shared out by the scheduler's and the gate's
 * turns instead (strangers share one turn).
 *
 * Budget (only while more than one peer is active: alone, a peer may use the whole node):
 * - when the pipeline used more than `busyShare` of a core, peers above the max-min fair level of
 *   it (light peers keep what they use, the heavy ones split the rest) are over budget;
 * - when strangers together used more than `strangerShare` while a peer that slice protects is
 *   active (a known peer, or any peer with at most one message in the node: one waiting for its
 *   answers), strangers above the max-min fair level of `strangerShare` are over budget: fresh DIDs
 *   share one bounded slice, however many there are, and a stranger below that level is never held
 *   for what the others used. Strangers that all have backlogs share the node by the rule above.
 * Wall time (performance.now): this measures work on the event loop, not protocol time. Internal.
 */
import { InvalidParametersError } from '@kos-mesh/interface'

export interface CpuSharesInit {
  /** Time constant of the decayed averages, ms. Default 100. */
  tauMs?: number
  /** Share of a core above which the heaviest peers are paused. Default 0.5. */
  busyShare?: number
  /** Share of a core all strangers together may use while a peer it protects is active. Default 0.15. */
  strangerShare?: number
  /** Whether a peer is a stranger (untrusted); asked when a peer is first charged. */
  isStranger?: (peer: string) => boolean
  /** Time source (ms). Default performance.now. */
  now?: () => number
}

interface Acc {
  /** Decayed sum of charged ms, as of `at`. */
  sum: number
  at: number
  stranger: boolean
}

/** A peer counts as active while its share is above this (0.1 % of a core: a request a second or so). */
const ACTIVE = 0.001
/** The paused set is recomputed at most this often (ms). */
const EVAL_MS = 2

/**
 * The max-min fair level of a budget over demands (shares): the L with sum(min(share, L)) = budget,
 * so peers using less than L keep all of theirs and the rest are held to L. Infinity when the
 * demands fit. Sorts `shares`.
 */
export function fairLevel(shares: number[], budget: number): number {
  shares.sort((a, b) => a - b)
  let rest = budget
  for (let i = 0; i < shares.length; i++) {
    const even = rest / (shares.length - i)
    if (shares[i]! > even) return even
    rest -= shares[i]!
  }
  return Infinity
}

export class CpuShares {
  readonly tauMs: number
  readonly busyShare: number
  readonly strangerShare: number
  private readonly isStranger: (peer: string) => boolean
  private readonly now: () => number
  private readonly peers = new Map<string, Acc>()
  private readonly all: Acc = { sum: 0, at: 0, stranger: false }
  private readonly strangers: Acc = { sum: 0, at: 0, stranger: true }
  private paused = new Set<string>()
  /**
   * Messages a peer has in the node (queued and in the pipeline); a peer with at most one is never
   * held (see above). Set by the router; default: every peer counts as backlogged.
   */
  backlog: (peer: string) => number = () => Infinity
  private evalAt = -Infinity
  /** The fair levels of the last evaluation (Infinity: that rule holds nobody). */
  private busyLevel = Infinity
  private strangerLevel = Infinity

  constructor(init: CpuSharesInit = {}) {
    this.tauMs = init.tauMs ?? 100
    this.busyShare = init.busyShare ?? 0.5
    this.strangerShare = init.strangerShare ?? 0.15
    if (!(this.tauMs > 0) || !(this.busyShare > 0) || !(this.strangerShare > 0)) {
      throw new InvalidParametersError(`expected tauMs, busyShare and strangerShare > 0, got ${this.tauMs}, ${this.busyShare}, ${this.strangerShare}`)
    }
    this.isStranger = init.isStranger ?? (() => false)
    this.now = init.now ?? (() => performance.now()) // clock-exempt: measures work on the event loop
  }

  private decay(a: Acc, now: number): number {
    if (now > a.at) {
      a.sum *= Math.exp((a.at - now) / this.tauMs)
      a.at = now
    }
    return a.sum
  }

  /** Charges `ms` of event-loop time to a peer. */
  charge(peer: string, ms: number): void {
    if (!(ms > 0)) return
    const now = this.now()
    let a = this.peers.get(peer)
    if (a === undefined) {
      a = { sum: 0, at: now, stranger: this.isStranger(peer) }
      this.peers.set(peer, a)
    }
    this.decay(a, now)
    a.sum += ms
    // the totals decay at most once per grant-sized step (their time constant is long)
    if (now - this.all.at > 0.05) this.decay(this.all, now)
    this.all.sum += ms
    if (a.stranger) {
      if (now - this.strangers.at > 0.05) this.decay(this.strangers, now)
      this.strangers.sum += ms
    }
  }

  /** A peer's recent share of a core (0 when it used nothing lately). */
  share(peer: string): number {
    const a = this.peers.get(peer)
    return a === undefined ? 0 : this.decay(a, this.now()) / this.tauMs
  }

  /**
   * The usage a peer's turn at the gate is ordered by: its own share, or for a stranger the share
   * of all strangers together (they are one peer at the gate as in the queue, so any number of
   * fresh DIDs, each light on its own, do not go ahead of a known peer that used less than all of
   * them together). A peer not charged yet counts as its class would.
   */
  gateUsage(peer: string, now = this.now()): number {
    const a = this.peers.get(peer)
    if (a === undefined ? this.isStranger(peer) : a.stranger) return this.decay(this.strangers, now) / this.tauMs
    return a === undefined ? 0 : this.decay(a, now) / this.tauMs
  }

  /** The time source's reading (one per comparison of several peers, so that ties stay ties). */
  time(): number {
    return this.now()
  }

  /** All strangers' recent share of a core together. */
  strangersShare(): number {
    return this.decay(this.strangers, this.now()) / this.tauMs
  }

  /** The pipeline's recent share of a core. */
  totalShare(): number {
    return this.decay(this.all, this.now()) / this.tauMs
  }

  /** Whether a peer is over its budget now (its connection is then not read). */
  overBudget(peer: string): boolean {
    const now = this.now()
    if (now - this.evalAt >= EVAL_MS) this.evaluate(now)
    return this.paused.has(peer) && this.backlog(peer) > 1
  }

  /** Whether any peer was over its budget at the last evaluation (no clock read). */
  get anyPaused(): boolean {
    return this.paused.size > 0
  }

  /** Whether a peer was over its budget at the last evaluation (no clock read, no re-evaluation). */
  wasPaused(peer: string): boolean {
    return this.paused.has(peer) && this.backlog(peer) > 1
  }

  /**
   * How long (ms) until a peer over its budget decays to its fair level if it used nothing more
   * (at least 1, at most `tauMs / 4`, so a level that rises because others left is seen soon).
   */
  waitMs(peer: string): number {
    const a = this.peers.get(peer)
    if (a === undefined) return 1
    const s = this.decay(a, this.now()) / this.tauMs
    const level = Math.min(this.busyLevel, a.stranger ? this.strangerLevel : Infinity)
    if (!(level < Infinity) || s <= level) return 1
    return Math.min(this.tauMs / 4, Math.max(1, this.tauMs * Math.log(s / level)))
  }

  /** Recomputes the paused set; forgets peers whose share decayed to nothing. */
  private evaluate(now: number): void {
    this.evalAt = now
    const paused = new Set<string>()
    const total = this.decay(this.all, now) / this.tauMs
    const strangers = this.decay(this.strangers, now) / this.tauMs
    const all: number[] = []
    const ofStrangers: number[] = []
    /** An active peer the strangers' slice protects: a known one, or one with at most one message in the node. */
    let guarded = false
    for (const [peer, a] of this.peers) {
      const s = this.decay(a, now) / this.tauMs
      if (s < ACTIVE / 100) this.peers.delete(peer)
      else if (s >= ACTIVE) {
        // trust changes while a peer is active (a stranger that became trusted leaves the pool)
        a.stranger = this.isStranger(peer)
        all.push(s)
        if (a.stranger) ofStrangers.push(s)
        if (!guarded && (!a.stranger || this.backlog(peer) <= 1)) guarded = true
      }
    }
    const busy = all.length >= 2 && total > this.busyShare ? fairLevel(all, this.busyShare) : Infinity
    // strangers are held to their one slice while someone else it protects is active (a known
    // peer, or any peer waiting for its answers); within it, max-min: a stranger below the fair
    // level keeps all it uses, only those above it are held. Strangers that all have backlogs
    // (bulk work, nobody waiting on an answer) share the node by the busy rule alone.
    const strange = all.length >= 2 && guarded && ofStrangers.length > 0 && strangers > this.strangerShare ? fairLevel(ofStrangers, this.strangerShare) : Infinity
    this.busyLevel = busy
    this.strangerLevel = strange
    if (busy < Infinity || strange < Infinity) {
      for (const [peer, a] of this.peers) {
        const s = a.sum / this.tauMs
        if (s > busy || (a.stranger && s > strange)) paused.add(peer)
      }
    }
    this.paused = paused
  }

  /** Peers tracked (for tests and metrics). */
  get size(): number {
    return this.peers.size
  }

  clear(): void {
    this.peers.clear()
    this.all.sum = this.strangers.sum = 0
    this.paused = new Set()
    this.evalAt = -Infinity
  }
}
