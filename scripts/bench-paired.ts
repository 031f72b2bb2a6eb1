/**
 * Paired, interleaved A/B measurement for a noisy shared machine (not published; used by the
 * packages' `bench/` scripts next to `bench-util.ts`).
 *
 * Why: `measure` (bench-util.ts) times A for a while and then B, so a load change between the two
 * (another engineer's test run, say) shows up as a difference between A and B. `paired` instead
 * alternates short batches (default ~2 ms) of A and B, each pair in a random order, and every pair
 * yields its own ratio tA / tB and difference tA - tB (time per operation). It reports medians
 * (and quartiles) of those per-pair values: a burst of load hits both halves of a pair about
 * equally, so it moves the pair's rates but hardly its ratio.
 *
 * Clock: by default the process CPU time (`process.cpuUsage()`, user + system, all threads: GC
 * helper threads count, which is fair to the side that allocates), not wall time. On a 2-core VM
 * under a load of 4-8 the scheduler preempts us every few ms; wall time then mostly measures the
 * neighbours, and with a fixed A/B order it can even resonate with the scheduler period (two
 * identical functions were seen to differ 2x in wall time). CPU time of an identical A and B agrees
 * to < 1 %. `BENCH_CLOCK=wall` (or `useClock('wall')`) switches to wall time (`performance.now()`).
 *
 * Usage:
 *
 *   import { clockName, paired } from '../../../scripts/bench-paired.js'
 *   const r = await paired(codecPath, bareSign)              // sides: plain functions ...
 *   const p = await paired(bareVerify, { run: () => pipeline.step(), ops: 64 }, { batchMs: 4 }) // ... or Side objects
 *   console.log(`overhead ${((r.ratio - 1) * 100).toFixed(1)} % (${clockName()} time, ${r.pairs} pairs)`)
 *
 * Conventions: "A" and "B" are just the first and second argument; `ratio` is tA / tB (time per
 * op, i.e. rate of B / rate of A) and `diffUs` is tA - tB, so with `paired(measured, baseline)` the
 * overhead is `ratio - 1` and the extra cost per op is `diffUs`.
 */

/** Something to measure: one call is `ops` operations (sync or async). */
export type BenchFn = () => unknown

/** One side of a pair. A plain function is the same as `{ run: fn }`. */
export interface Side {
  /** Does `ops` operations per call; may return a promise, which is awaited (and timed). */
  run: BenchFn
  /** Operations per `run()` call, for sides whose `run` is itself a batch. Default 1. */
  ops?: number
  /**
   * Untimed preparation before every batch of this side (warm-up, calibration and measured
   * batches), e.g. to reset state or refill a queue. Its cost is excluded from the side's time
   * (it runs before the batch's clock starts). Default none.
   */
  setup?: () => unknown
}

export interface PairedOptions {
  /** Time for the measured pairs (both sides together), seconds. Default `BENCH_SECONDS` or 3. */
  seconds?: number
  /** Warm-up per side before calibration, seconds. Default 0.3 (at most `seconds`). */
  warmupSeconds?: number
  /** Target duration of one batch on the measuring clock, ms. Default 2. */
  batchMs?: number
  /** Fewest pairs, measured even when `seconds` has run out. Default 15. */
  minPairs?: number
}

export interface PairedResult {
  /** Median time per op of A / of B over all their batches, microseconds. */
  aUs: number
  bUs: number
  /** Median ops/s of A / of B (= 1e6 / aUs, 1e6 / bUs). */
  aRate: number
  bRate: number
  /** Median over pairs of tA / tB (time per op), i.e. rate of B / rate of A. */
  ratio: number
  /** First and third quartile of the per-pair ratios tA / tB. */
  ratioQ1: number
  ratioQ3: number
  /** Median over pairs of tA - tB, microseconds per op. */
  diffUs: number
  /** Number of measured pairs. */
  pairs: number
  /** The clock the batches were timed on. */
  clock: ClockName
}

export type ClockName = 'cpu' | 'wall'

/** Milliseconds on each clock. */
const clocks: Record<ClockName, () => number> = {
  cpu: () => {
    const c = process.cpuUsage()
    return (c.user + c.system) / 1000
  },
  wall: () => performance.now(),
}

function clockFromEnv(): ClockName {
  const v = process.env.BENCH_CLOCK
  if (v === undefined || v === '' || v === 'cpu') return 'cpu'
  if (v === 'wall') return 'wall'
  throw new Error(`BENCH_CLOCK: expected 'cpu' or 'wall', got '${v}'`)
}

let clock: ClockName = clockFromEnv()
let now = clocks[clock]

/** The clock `paired` measures on: 'cpu' (default) or 'wall' (`BENCH_CLOCK=wall` or `useClock`). */
export function clockName(): ClockName {
  return clock
}

/** Switches the clock for subsequent `paired` calls (overrides `BENCH_CLOCK`). */
export function useClock(name: ClockName): void {
  if (!(name in clocks)) throw new Error(`useClock: expected 'cpu' or 'wall', got '${String(name)}'`)
  clock = name
  now = clocks[name]
}

/**
 * The q-quantile (0 <= q <= 1) of `xs` with linear interpolation between closest ranks
 * (`quantile(xs, 0.5)` is the median; for an even count, the mean of the two middle values).
 * Does not modify `xs`.
 */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) throw new Error('quantile: expected at least one value, got none')
  if (!(q >= 0 && q <= 1)) throw new Error(`quantile: expected 0 <= q <= 1, got ${q}`)
  const s = [...xs].sort((x, y) => x - y)
  const pos = (s.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo)
}

const toSide = (s: BenchFn | Side): Side => (typeof s === 'function' ? { run: s } : s)

/** Runs `calls` calls of the side (after its untimed setup); returns the batch's elapsed ms. */
async function runBatch(side: Side, calls: number): Promise<number> {
  if (side.setup !== undefined) {
    const r = side.setup()
    if (r instanceof Promise) await r
  }
  const run = side.run
  const t0 = now()
  for (let i = 0; i < calls; i++) {
    const r = run()
    if (r instanceof Promise) await r
  }
  return now() - t0
}

/** Doubles the calls per batch until one batch takes at least `ms` on the measuring clock. */
async function calibrate(side: Side, ms: number): Promise<number> {
  let n = 1
  for (;;) {
    if ((await runBatch(side, n)) >= ms || n >= 1 << 20) return n
    n *= 2
  }
}

/**
 * Measures A against B in interleaved batches, each pair in a random order (see the module
 * comment). Both sides are warmed up and calibrated separately, so each batch of either side takes
 * about `batchMs`.
 */
export async function paired(a: BenchFn | Side, b: BenchFn | Side, options: PairedOptions = {}): Promise<PairedResult> {
  const sa = toSide(a)
  const sb = toSide(b)
  const seconds = options.seconds ?? Number(process.env.BENCH_SECONDS ?? 3)
  if (!(seconds >= 0)) throw new Error(`paired: expected seconds >= 0, got ${seconds}`)
  const warm = Math.min(options.warmupSeconds ?? 0.3, seconds)
  const batchMs = options.batchMs ?? 2
  const minPairs = options.minPairs ?? 15
  for (const side of [sa, sb]) {
    const until = performance.now() + warm * 1000
    while (performance.now() < until) await runBatch(side, 1)
  }
  const na = await calibrate(sa, batchMs)
  const nb = await calibrate(sb, batchMs)
  const opsA = na * (sa.ops ?? 1)
  const opsB = nb * (sb.ops ?? 1)
  const ta: number[] = []
  const tb: number[] = []
  const ratios: number[] = []
  const diffs: number[] = []
  let skipped = 0
  const end = performance.now() + seconds * 1000
  while (performance.now() < end || ratios.length < minPairs) {
    let x: number
    let y: number
    if (Math.random() < 0.5) {
      x = await runBatch(sa, na)
      y = await runBatch(sb, nb)
    } else {
      y = await runBatch(sb, nb)
      x = await runBatch(sa, na)
    }
    if (!(x > 0) || !(y > 0)) {
      // a batch shorter than the clock's resolution: no usable ratio
      if (++skipped > 1000 + 10 * ratios.length) throw new Error(`paired: ${skipped} batches read 0 ms on the ${clock} clock; raise batchMs`)
      continue
    }
    x /= opsA
    y /= opsB
    ta.push(x)
    tb.push(y)
    ratios.push(x / y)
    diffs.push((x - y) * 1000)
  }
  const aUs = quantile(ta, 0.5) * 1000
  const bUs = quantile(tb, 0.5) * 1000
  return {
    aUs,
    bUs,
    aRate: 1e6 / aUs,
    bRate: 1e6 / bUs,
    ratio: quantile(ratios, 0.5),
    ratioQ1: quantile(ratios, 0.25),
    ratioQ3: quantile(ratios, 0.75),
    diffUs: quantile(diffs, 0.5),
    pairs: ratios.length,
    clock,
  }
}
