/**
 * Hybrid logical clocks (Kulkarni et al.): a timestamp is (wall ms, counter). A node's clock never
 * goes back, follows the injected Clock when it moves forward, and jumps past every timestamp it
 * receives, so a version written after seeing another one always sorts after it, whatever the
 * wall clocks say. Versions order by (wall, counter); ties between writers break by writer DID,
 * then by entry hash (`compareVersions`), so every replica picks the same winner.
 */
import { InvalidParametersError, type Clock } from '@kos-mesh/interface'
import type { Hlc } from './types.js'

/** Largest wall time, ms (2^48: year 10889). */
export const MAX_HLC_WALL = 2 ** 48
/** Largest counter within one ms. */
export const MAX_HLC_COUNTER = 0xffff

/**
 * Whether `v` is a valid HLC timestamp: `wall` an integer in 0..2^48 - 1 (ms, `MAX_HLC_WALL`
 * excluded) and `counter` an integer in 0..65,535 (`MAX_HLC_COUNTER`). Extra fields are not checked
 * here (`validateEntryBody` refuses them in entries).
 */
export function isHlc(v: unknown): v is Hlc {
  if (v === null || typeof v !== 'object') return false
  const h = v as Hlc
  return Number.isSafeInteger(h.wall) && h.wall >= 0 && h.wall < MAX_HLC_WALL && Number.isSafeInteger(h.counter) && h.counter >= 0 && h.counter <= MAX_HLC_COUNTER
}

/**
 * The order of HLC timestamps: by wall time, then counter. Returns -1 when `a` is earlier, 0 when
 * equal, 1 when later. Equal timestamps of two writers are told apart by `compareVersions`.
 */
export function compareHlc(a: Hlc, b: Hlc): number {
  return a.wall !== b.wall ? (a.wall < b.wall ? -1 : 1) : a.counter !== b.counter ? (a.counter < b.counter ? -1 : 1) : 0
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return (a[i] as number) < (b[i] as number) ? -1 : 1
  return a.length - b.length
}

/** The total order of versions of one entry: HLC, then writer DID, then entry hash. Positive: `a` wins. */
export function compareVersions(a: { hlc: Hlc; writer: string; hash: Uint8Array }, b: { hlc: Hlc; writer: string; hash: Uint8Array }): number {
  const c = compareHlc(a.hlc, b.hlc)
  if (c !== 0) return c
  if (a.writer !== b.writer) return a.writer < b.writer ? -1 : 1
  return compareBytes(a.hash, b.hash)
}

/** A hybrid logical clock on an injected Clock. */
export class HybridClock {
  private last: Hlc

  constructor(private readonly clock: Clock, start: Hlc = { wall: 0, counter: 0 }) {
    if (!isHlc(start)) throw new InvalidParametersError('expected a valid HLC start')
    this.last = { ...start }
  }

  /** The latest timestamp issued or observed. */
  current(): Hlc {
    return { ...this.last }
  }

  /** A new timestamp for a local event, after every one issued or observed. */
  tick(): Hlc {
    const now = Math.floor(this.clock.now())
    if (now > this.last.wall) this.last = { wall: now, counter: 0 }
    else if (this.last.counter < MAX_HLC_COUNTER) this.last = { wall: this.last.wall, counter: this.last.counter + 1 }
    else this.last = { wall: this.last.wall + 1, counter: 0 }
    return { ...this.last }
  }

  /** Observes a received timestamp: later ticks sort after it. */
  observe(remote: Hlc): void {
    if (!isHlc(remote)) throw new InvalidParametersError('expected a valid HLC')
    if (compareHlc(remote, this.last) > 0) this.last = { ...remote }
  }
}
