/**
 * Time slices for the pipeline. Signature checks, handlers and signing all run as microtasks, so a
 * backlog would otherwise be worked off in one turn of the event loop while no socket is read. A
 * run of work gets `sliceMs` (wall time: this is about the event loop, not protocol time); then
 * the router yields, and a `setImmediate` (after the loop's I/O phase) ends the slice and resumes.
 *
 * Expensive steps (verify; handler and response) pass a gate one peer at a time: a step holds the
 * gate from its grant until it calls `done()` (or the slice ends, e.g. while a handler awaits I/O),
 * and the time it held it is charged to its peer (`CpuShares`); while nobody else waits, more steps
 * of the same peer ride along on the same grant, which ends when the last of them is done. The
 * next step let in is the waiting peer's with the least recent usage (strangers: all strangers'
 * usage together; ties go round robin), so a peer that sends little goes ahead of a flooding one, and a flood delays another peer's step by at most the one step that
 * is running. A peer over its CPU budget (while others are active) is not let in at all until its
 * share decays: the pipeline idles for the others rather than work off that peer's backlog.
 * Internal.
 */
import type { CpuShares } from './usage.js'

/** Resolves after the event loop's next I/O phase. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve)) // clock-exempt: yields to I/O, not protocol time
}

/** The grant of a step that went through the gate (`done(grant)` releases it); 0 = none. */
export type Grant = number

export class Slicer {
  /** Start of the current run of work (performance.now()), or -1 between runs. */
  private begin = -1
  /** Waiting steps by peer (resolvers in arrival order). */
  private readonly gate = new Map<string, Array<(g: Grant) => void>>()
  private waiting = 0
  /** The step holding the gate: its grant id (0 = none), peer and grant time. */
  private holder: Grant = 0
  private holderPeer = ''
  private holderAt = 0
  /** Steps sharing the holder's grant (its own and the riders of its peer) not done yet. */
  private members = 0
  private nextGrant = 1
  /** Called when a slice ends (the router resumes a pump that the slice cut short). */
  onSliceEnd: () => void = () => {}

  constructor(
    private readonly sliceMs: number,
    private readonly shares?: CpuShares,
  ) {}

  /** True when the current run of work has used its slice (starts a run when none is going on). */
  spent(): boolean {
    if (this.sliceMs === Infinity) return false // no slices (virtual-time simulations)
    const now = performance.now() // clock-exempt: measures work on the event loop
    if (this.begin < 0) {
      this.begin = now
      setImmediate(this.end) // clock-exempt: ends the run after the loop's I/O phase
      return false
    }
    return now - this.begin > this.sliceMs
  }

  private readonly end = (): void => {
    this.begin = -1
    // a step still holding the gate awaits something outside this run (I/O): it used the run up to
    // its end at most; the gate opens for the others
    if (this.holder !== 0) this.release(Math.min(performance.now() - this.holderAt, this.sliceMs)) // clock-exempt: measures work on the event loop
    this.drain()
    this.onSliceEnd()
  }

  private grant(peer: string): Grant {
    const g = this.nextGrant++
    this.holder = g
    this.members = 1
    this.holderPeer = peer
    this.holderAt = this.sliceMs === Infinity ? 0 : performance.now() // clock-exempt: measures work on the event loop
    return g
  }

  private release(ms: number): void {
    this.holder = 0
    if (this.sliceMs !== Infinity) this.shares?.charge(this.holderPeer, ms)
  }

  /**
   * Passes the gate for the next expensive step of `peer`'s message: a grant at once when nobody
   * holds or waits for the gate and the slice has time (no promise, no cost), else a promise of the
   * grant in a later turn. The step calls `done(grant)` once its work is over.
   */
  turn(peer: string): Grant | Promise<Grant> {
    if (this.waiting === 0 && !this.spent() && this.shares?.overBudget(peer) !== true) {
      if (this.holder === 0) return this.grant(peer)
      // another step of the holder's own peer rides along while nobody else waits (no wake-up, no
      // promise): the grant is released, and its time charged, when the last of them is done
      if (this.holderPeer === peer) {
        this.members++
        return this.holder
      }
    }
    return new Promise<Grant>((resolve) => {
      let q = this.gate.get(peer)
      if (q === undefined) {
        q = []
        this.gate.set(peer, q)
      }
      q.push(resolve)
      this.waiting++
      if (this.begin < 0) this.spent() // make sure a slice end is scheduled
      if (this.holder === 0) this.drain() // the gate is free: an over-budget peer's step waits for its share to decay
    })
  }

  /** The step of `grant` is over: charges its time to its peer and lets the next one in. */
  done(grant: Grant): void {
    if (grant === 0 || grant !== this.holder) return // released already (slice end, stop)
    if (--this.members > 0) return // riders of the same grant are still at work
    this.release(this.sliceMs === Infinity ? 0 : performance.now() - this.holderAt) // clock-exempt: measures work on the event loop
    this.drain()
  }

  /** Lets the waiting step of the peer with the least recent usage in, when the gate is free and the slice has time. */
  private drain(): void {
    if (this.waiting === 0 || this.holder !== 0) return
    const gate = this.gate
    let best = gate.keys().next().value as string
    const shares = this.shares
    if (shares !== undefined) {
      // the least-used waiting peer within its budget; if every one waiting is over its budget,
      // the pipeline pauses for them while others are active, and looks again when the first of
      // them should be down to its level
      let found: string | undefined
      let bestShare = Infinity
      const now = shares.time()
      for (const peer of gate.keys()) {
        const s = gate.size > 1 ? shares.gateUsage(peer, now) : 0
        if (s < bestShare && !shares.overBudget(peer)) {
          bestShare = s
          found = peer
        }
      }
      if (found === undefined) {
        let wait = Infinity
        for (const peer of gate.keys()) wait = Math.min(wait, shares.waitMs(peer))
        this.retry ??= setTimeout(this.retryDrain, wait) // clock-exempt: paces work on the event loop
        return
      }
      best = found
    }
    // checked after the budget: a gate that waits for a budget starts no run (no slice end to spin on)
    if (this.spent()) return
    const q = gate.get(best)!
    const next = q.shift()!
    this.waiting--
    if (q.length === 0) gate.delete(best)
    else if (gate.size > 1) {
      // the peer goes to the back of the arrival order (round robin among equals)
      gate.delete(best)
      gate.set(best, q)
    }
    next(this.grant(best))
  }

  private retry: ReturnType<typeof setTimeout> | undefined // clock-exempt: the retry timer above
  private readonly retryDrain = (): void => {
    this.retry = undefined
    this.drain()
  }

  /** Releases every waiting step (on stop: they see the new generation and end). */
  releaseAll(): void {
    if (this.retry !== undefined) clearTimeout(this.retry) // clock-exempt: paces work on the event loop
    this.retry = undefined
    for (const q of this.gate.values()) for (const r of q) r(0)
    this.gate.clear()
    this.waiting = 0
    this.holder = 0
    this.members = 0
  }
}
