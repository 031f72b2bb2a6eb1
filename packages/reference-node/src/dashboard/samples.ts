/**
 * The dashboard's traffic history: a bounded ring of samples of the router's counters, taken on
 * the injected clock, each turned into rates (per second) and rejects by reason over its interval.
 */
import type { RouterMetrics } from '@kos-mesh/klp-router'

/** Most reject reasons kept per sample (the router's reasons are a short fixed list; the rest are summed as `other`). */
export const MAX_REASONS_PER_SAMPLE = 32

/** One interval of traffic: rates per second and the rejects counted during it. */
export interface TrafficSample {
  /** End of the interval, clock ms. */
  t: number
  /** Length of the interval, ms. */
  dt: number
  /** Messages received and sent per second. */
  inPerSec: number
  outPerSec: number
  /** Frame bytes received and sent per second. */
  bytesInPerSec: number
  bytesOutPerSec: number
  /** Messages relayed per second. */
  forwardedPerSec: number
  /** Rejects during the interval, by reason. */
  rejects: Record<string, number>
}

/** The counters a sample is taken from (a subset of the router's metrics). */
export type TrafficCounters = Pick<RouterMetrics, 'messagesIn' | 'messagesOut' | 'bytesIn' | 'bytesOut' | 'forwarded' | 'rejects'>

function rate(delta: number, dtMs: number): number {
  return dtMs <= 0 ? 0 : Math.round((Math.max(0, delta) * 1000 * 100) / dtMs) / 100
}

/** A ring of at most `capacity` samples; `add` computes one from the counters' change since the last call. */
export class TrafficRing {
  private readonly ring: TrafficSample[] = []
  private last: { t: number; c: TrafficCounters } | undefined
  /** Reject totals since the first sample, by reason (bounded like a sample). */
  private readonly totals: Record<string, number> = {}

  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 2) throw new RangeError(`expected a sample capacity >= 2, got ${capacity}`)
  }

  /** Records the counters at `now`; the first call only sets the baseline. Returns the new sample, if any. */
  add(now: number, c: TrafficCounters): TrafficSample | undefined {
    const prev = this.last
    this.last = { t: now, c: { ...c, rejects: { ...c.rejects } } }
    if (prev === undefined) return undefined
    const dt = now - prev.t
    if (dt <= 0) return undefined
    const rejects: Record<string, number> = {}
    let kept = 0
    for (const [reason, n] of Object.entries(c.rejects)) {
      const d = n - (prev.c.rejects[reason] ?? 0)
      if (d <= 0) continue
      const key = kept < MAX_REASONS_PER_SAMPLE || reason in rejects ? reason : 'other'
      if (!(key in rejects)) kept++
      rejects[key] = (rejects[key] ?? 0) + d
    }
    for (const [reason, d] of Object.entries(rejects)) {
      if (reason in this.totals || Object.keys(this.totals).length < MAX_REASONS_PER_SAMPLE) this.totals[reason] = (this.totals[reason] ?? 0) + d
      else this.totals.other = (this.totals.other ?? 0) + d
    }
    const sample: TrafficSample = {
      t: now,
      dt,
      inPerSec: rate(c.messagesIn - prev.c.messagesIn, dt),
      outPerSec: rate(c.messagesOut - prev.c.messagesOut, dt),
      bytesInPerSec: rate(c.bytesIn - prev.c.bytesIn, dt),
      bytesOutPerSec: rate(c.bytesOut - prev.c.bytesOut, dt),
      forwardedPerSec: rate(c.forwarded - prev.c.forwarded, dt),
      rejects,
    }
    this.ring.push(sample)
    if (this.ring.length > this.capacity) this.ring.shift()
    return sample
  }

  /** The samples, oldest first (a copy). */
  samples(): TrafficSample[] {
    return [...this.ring]
  }

  /** Rejects counted over all samples taken, by reason. */
  rejectTotals(): Record<string, number> {
    return { ...this.totals }
  }

  get size(): number {
    return this.ring.length
  }
}
