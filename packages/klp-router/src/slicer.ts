/**
 * Time slices for the pipeline. Signature checks, handlers and signing all run as microtasks, so a
 * backlog would otherwise be worked off in one turn of the event loop while no socket is read. A
 * run of work gets `sliceMs` (wall time: this is about the event loop, not protocol time); then
 * the router yields, and a `setImmediate` (after the loop's I/O phase) ends the slice and resumes.
 * Expensive steps wait at a gate where peers take turns, so a peer with many messages in flight
 * delays another's step by at most one of its own per round. Internal.
 */

/** Resolves after the event loop's next I/O phase. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve)) // clock-exempt: yields to I/O, not protocol time
}

export class Slicer {
  /** Start of the current run of work (performance.now()), or -1 between runs. */
  private begin = -1
  private readonly gate = new Map<string, Array<() => void>>()
  private readonly ring: string[] = []
  private head = 0
  private waiting = 0
  /** Called when a slice ends (the router resumes a pump that the slice cut short). */
  onSliceEnd: () => void = () => {}

  constructor(private readonly sliceMs: number) {}

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
    this.drain()
    this.onSliceEnd()
  }

  /**
   * Time for the next expensive step of `peer`'s message: undefined when the slice has time and
   * nobody waits (no promise, no cost), else a promise that resolves in a later slice, peers in
   * round robin. The step calls `drain()` once it resumed, to let the next one in.
   */
  turn(peer: string): Promise<void> | undefined {
    if (this.waiting === 0 && !this.spent()) return undefined
    return new Promise<void>((resolve) => {
      let q = this.gate.get(peer)
      if (q === undefined) {
        q = []
        this.gate.set(peer, q)
        this.ring.push(peer)
      }
      q.push(resolve)
      this.waiting++
      if (this.begin < 0) this.spent() // make sure a slice end is scheduled
    })
  }

  /** Lets the next waiting step in when the slice has time. */
  drain(): void {
    if (this.waiting === 0 || this.spent()) return
    const ring = this.ring
    const peer = ring[this.head]!
    const q = this.gate.get(peer)!
    const next = q.shift()!
    this.waiting--
    if (q.length === 0) {
      this.gate.delete(peer)
      ring.splice(this.head, 1)
      if (this.head >= ring.length) this.head = 0
    } else {
      this.head = (this.head + 1) % ring.length
    }
    next()
  }

  /** Releases every waiting step (on stop: they see the new generation and end). */
  releaseAll(): void {
    for (const q of this.gate.values()) for (const r of q) r()
    this.gate.clear()
    this.ring.length = 0
    this.head = 0
    this.waiting = 0
  }
}
