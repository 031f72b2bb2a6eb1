/**
 * Reputation deltas: the value of one delta, and this node's own live observations (the deltas it
 * has not signed yet, and the ones it has, which keep counting as its own evidence).
 *
 *   value(d) = clamp(sum over observations of weight * count, -5, +1) * decay_d
 *   decay_d  = 2^(-max(0, now - (window + window_ms)) / deltaHalfLifeMs)
 */
import { STATEMENT_VERSION, type DeltaBody, type Observation } from '../types.js'
import { DELTA_MAX, DELTA_MIN, MAX_DELTA_COUNT, clamp, decay, type EngineConfig } from './config.js'

export type Counts = Partial<Record<Observation, number>>

/** The undecayed value of a delta's counts: clamp(sum weight * count, -5, +1). */
export function rawValue(counts: Counts, weights: Readonly<Record<Observation, number>>): number {
  let v = 0
  for (const k in counts) {
    const c = counts[k as Observation]
    const w = weights[k as Observation]
    if (c !== undefined && w !== undefined && c > 0) v += w * c
  }
  return clamp(v, DELTA_MIN, DELTA_MAX)
}

export function deltaDecay(window: number, windowMs: number, now: number, halfLifeMs: number): number {
  return decay(now - (window + windowMs), halfLifeMs)
}

/** value(d) at `now`. */
export function deltaValue(counts: Counts, window: number, windowMs: number, now: number, cfg: EngineConfig): number {
  const raw = rawValue(counts, cfg.deltaWeights)
  return raw === 0 ? 0 : raw * deltaDecay(window, windowMs, now, cfg.deltaHalfLifeMs)
}

interface LiveWindow {
  counts: Record<string, number>
  /** New counts since the last take. */
  dirty: boolean
  /** issued_at of the last body taken for this window. */
  lastIssued: number
}

interface Subject {
  windows: Map<number, LiveWindow>
  /** Windows folded into one decayed value (exact: they had all ended when folded). */
  fold?: { value: number; at: number; minWindow: number; maxWindow: number }
}

/** Live windows kept per DID before the oldest is folded (unpublished counts then stay local). */
const MAX_LIVE_WINDOWS = 8

/**
 * This node's own observations, per DID and window. Bounded: `maxObservedSubjects` DIDs (the least
 * recently observed is dropped whole and counted), MAX_LIVE_WINDOWS windows per DID (older ones,
 * once taken, are folded into one decayed number).
 */
export class OwnObservations {
  private readonly subjects = new Map<string, Subject>()
  private readonly pending = new Set<string>()
  dropped = 0

  constructor(
    private readonly cfg: EngineConfig,
    /** Counts of an already held own delta for (subject, window), to continue from after a restart. */
    private readonly held: (subject: string, window: number) => Counts | undefined,
  ) {}

  get size(): number {
    return this.subjects.size
  }

  dids(): IterableIterator<string> {
    return this.subjects.keys()
  }

  /** Counts one observation; returns false when nothing was counted. */
  observe(did: string, outcome: Observation, now: number): boolean {
    const cfg = this.cfg
    const window = Math.floor(now / cfg.deltaWindowMs) * cfg.deltaWindowMs
    let s = this.subjects.get(did)
    if (s === undefined) {
      if (this.subjects.size >= cfg.maxObservedSubjects) {
        const oldest = this.subjects.keys().next().value
        if (oldest !== undefined) {
          this.subjects.delete(oldest)
          this.pending.delete(oldest)
          this.dropped++
        }
      }
      s = { windows: new Map() }
    } else {
      this.subjects.delete(did) // re-inserted below: most recently observed last
    }
    this.subjects.set(did, s)
    let w = s.windows.get(window)
    if (w === undefined) {
      const seed = this.held(did, window)
      w = { counts: {}, dirty: false, lastIssued: -Infinity }
      for (const k in seed ?? {}) {
        const c = seed![k as Observation]
        if (typeof c === 'number' && c > 0) w.counts[k] = Math.min(MAX_DELTA_COUNT, c)
      }
      s.windows.set(window, w)
      this.fold(s, now, window)
    }
    const c = w.counts[outcome] ?? 0
    if (c < MAX_DELTA_COUNT) w.counts[outcome] = c + 1
    w.dirty = true
    this.pending.add(did)
    return true
  }

  /** Folds the windows that ended and were taken; beyond MAX_LIVE_WINDOWS the oldest anyway. */
  private fold(s: Subject, now: number, current: number): void {
    const windowMs = this.cfg.deltaWindowMs
    for (const [window, w] of s.windows) {
      const tooMany = s.windows.size > MAX_LIVE_WINDOWS
      if (window >= current || (w.dirty && !tooMany)) continue
      const v = deltaValue(w.counts, window, windowMs, now, this.cfg)
      const f = s.fold
      if (f === undefined) s.fold = { value: v, at: now, minWindow: window, maxWindow: window }
      else {
        f.value = f.value * decay(now - f.at, this.cfg.deltaHalfLifeMs) + v
        f.at = now
        f.minWindow = Math.min(f.minWindow, window)
        f.maxWindow = Math.max(f.maxWindow, window)
      }
      s.windows.delete(window)
    }
  }

  /** The own-delta bodies with new counts since the last take; marks them taken. */
  take(self: string, now: number): DeltaBody[] {
    const cfg = this.cfg
    const out: DeltaBody[] = []
    const current = Math.floor(now / cfg.deltaWindowMs) * cfg.deltaWindowMs
    for (const did of this.pending) {
      const s = this.subjects.get(did)
      if (s === undefined) continue
      for (const [window, w] of s.windows) {
        if (!w.dirty) continue
        const counts: Counts = {}
        for (const k in w.counts) if (w.counts[k]! > 0) counts[k as Observation] = w.counts[k]!
        const issued = Math.max(now, w.lastIssued + 1)
        w.lastIssued = issued
        w.dirty = false
        out.push({
          v: STATEMENT_VERSION,
          kind: 'delta',
          issuer: self,
          subject: did,
          issued_at: issued,
          window,
          window_ms: cfg.deltaWindowMs,
          counts,
          expires_at: window + cfg.deltaWindowMs + 4 * cfg.deltaHalfLifeMs,
        })
      }
      this.fold(s, now, current)
    }
    this.pending.clear()
    return out
  }

  /** True when a held own delta for (did, window) is already counted here (live or folded). */
  covers(did: string, window: number): boolean {
    const s = this.subjects.get(did)
    if (s === undefined) return false
    if (s.windows.has(window)) return true
    return s.fold !== undefined && window >= s.fold.minWindow && window <= s.fold.maxWindow
  }

  /**
   * Sum of the values of the DID's live and folded own windows at `now`, with one entry per
   * window for `explain` when `evidence` is given. Windows past their expiry count nothing.
   */
  value(did: string, now: number, evidence?: Array<{ window: number; counts: Counts; effect: number; decay: number }>): number {
    const s = this.subjects.get(did)
    if (s === undefined) return 0
    const cfg = this.cfg
    const ttl = cfg.deltaWindowMs + 4 * cfg.deltaHalfLifeMs
    let sum = 0
    for (const [window, w] of s.windows) {
      if (now >= window + ttl) continue
      const d = deltaDecay(window, cfg.deltaWindowMs, now, cfg.deltaHalfLifeMs)
      const v = rawValue(w.counts as Counts, cfg.deltaWeights) * d
      sum += v
      evidence?.push({ window, counts: { ...(w.counts as Counts) }, effect: v, decay: d })
    }
    const f = s.fold
    if (f !== undefined && now < f.maxWindow + ttl) {
      const d = decay(now - f.at, cfg.deltaHalfLifeMs)
      sum += f.value * d
      evidence?.push({ window: f.minWindow, counts: {}, effect: f.value * d, decay: d })
    }
    return sum
  }
}
