/**
 * The link model of the network simulator: the conditions of every directed link (defaults and
 * per-link overrides), the state each link draws the fate of its frames from (a seeded PRNG, the
 * bandwidth budget), and the partitions and isolations that cut links.
 */
import { InvalidParametersError } from '@kos-mesh/interface'
import { seededRandom, type Random } from './prng.js'

/** How frames travel on one directed link. */
export interface LinkConditions {
  /** One-way base delay in ms. Default 0. */
  latencyMs: number
  /** Extra delay drawn uniformly in [0, jitterMs) per frame. Jitter never reorders frames (see `reorder`). Default 0. */
  jitterMs: number
  /** Serialization rate of the link, shared by all connections from one node to another. Default Infinity (no limit). */
  bandwidthBytesPerSec: number
  /** Probability (0..1) that a frame is lost. Default 0. */
  loss: number
  /** Probability (0..1) that a frame is delivered twice. Default 0. */
  duplicate: number
  /** Probability (0..1) that a frame is held back and overtaken by later frames. Default 0. */
  reorder: number
}

/**
 * The conditions of a link that nothing was set for: no latency, jitter, loss, duplication or reordering,
 * unlimited bandwidth.
 */
export const PERFECT_LINK: Readonly<LinkConditions> = Object.freeze({
  latencyMs: 0,
  jitterMs: 0,
  bandwidthBytesPerSec: Infinity,
  loss: 0,
  duplicate: 0,
  reorder: 0,
})

/** The state of one directed link: its PRNG, when its bandwidth is next free, and its override. */
export interface LinkState {
  random: Random
  busyUntil: number
  override: LinkConditions | undefined
}

function checkConditions(c: Partial<LinkConditions>): void {
  if (c === null || typeof c !== 'object') throw new InvalidParametersError(`expected link conditions object, got ${c === null ? 'null' : typeof c}`)
  const nonNeg = (k: keyof LinkConditions): void => {
    const v = c[k]
    if (v !== undefined && (typeof v !== 'number' || Number.isNaN(v) || v < 0)) throw new InvalidParametersError(`expected ${k} >= 0, got ${String(v)}`)
  }
  const prob = (k: keyof LinkConditions): void => {
    const v = c[k]
    if (v !== undefined && (typeof v !== 'number' || !(v >= 0 && v <= 1))) throw new InvalidParametersError(`expected ${k} in [0, 1], got ${String(v)}`)
  }
  nonNeg('latencyMs')
  nonNeg('jitterMs')
  prob('loss')
  prob('duplicate')
  prob('reorder')
  const bw = c.bandwidthBytesPerSec
  if (bw !== undefined && (typeof bw !== 'number' || !(bw > 0))) throw new InvalidParametersError(`expected bandwidthBytesPerSec > 0 (Infinity for no limit), got ${String(bw)}`)
  if (c.latencyMs !== undefined && !Number.isFinite(c.latencyMs)) throw new InvalidParametersError(`expected a finite latencyMs, got ${c.latencyMs}`)
  if (c.jitterMs !== undefined && !Number.isFinite(c.jitterMs)) throw new InvalidParametersError(`expected a finite jitterMs, got ${c.jitterMs}`)
}

const SEP = '\u0000'

/**
 * The links of one network (the `MemoryNetwork` methods of the same names): conditions, per-link
 * state and reachability.
 */
export class LinkTable {
  /** Conditions of every link without an override. */
  defaults: LinkConditions
  private readonly links = new Map<string, LinkState>()
  private readonly cuts: Array<{ a: Set<string>; b: Set<string> }> = []
  private readonly isolated = new Set<string>()

  constructor(private readonly seed: string, defaults: Partial<LinkConditions> | undefined) {
    checkConditions(defaults ?? {})
    this.defaults = { ...PERFECT_LINK, ...defaults }
  }

  setDefaults(conditions: Partial<LinkConditions>): void {
    checkConditions(conditions)
    this.defaults = { ...PERFECT_LINK, ...conditions }
  }

  /** The state of the directed link `from` -> `to`, created on first use. */
  link(from: string, to: string): LinkState {
    const key = from + SEP + to
    let state = this.links.get(key)
    if (state === undefined) {
      state = { random: seededRandom(`${this.seed}|${from}|${to}`), busyUntil: 0, override: undefined }
      this.links.set(key, state)
    }
    return state
  }

  setLink(from: string, to: string, conditions: Partial<LinkConditions>): void {
    checkConditions(conditions)
    this.link(from, to).override = { ...this.defaults, ...conditions }
  }

  clearLink(from: string, to: string): void {
    const state = this.links.get(from + SEP + to)
    if (state !== undefined) state.override = undefined
  }

  getLink(from: string, to: string): LinkConditions {
    return { ...(this.links.get(from + SEP + to)?.override ?? this.defaults) }
  }

  partition(groupA: Iterable<string>, groupB: Iterable<string>): void {
    this.cuts.push({ a: new Set(groupA), b: new Set(groupB) })
  }

  isolate(peer: string): void {
    this.isolated.add(peer)
  }

  heal(): void {
    this.cuts.length = 0
    this.isolated.clear()
  }

  isReachable(from: string, to: string): boolean {
    if (from === to) return true
    if (this.isolated.size > 0 && (this.isolated.has(from) || this.isolated.has(to))) return false
    for (const { a, b } of this.cuts) {
      if ((a.has(from) && b.has(to)) || (b.has(from) && a.has(to))) return false
    }
    return true
  }
}
