/**
 * Paired, interleaved measurement for a noisy shared 2-core machine (same idea as
 * klp-codec/bench/interleave.ts).
 *
 * Short batches (~4 ms) of A and B alternate, each pair in a random order, and each pair gives
 * its own ratio tA / tB (time per op). We report the median of those per-pair ratios (and its
 * interquartile range): a burst of load from a neighbour hits both halves of a pair about equally,
 * so it moves the pair's rates but hardly its ratio.
 *
 * Clock: the process CPU time (`process.cpuUsage()`, user + system, all threads: GC helper threads
 * count, which is fair to the side that allocates), not wall time. Under a load of 4-8 on 2 cores
 * wall time mostly measures the neighbours. BENCH_CLOCK=wall switches to wall time.
 */

/** One side of a pair: `run()` does `ops` operations (sync or async). */
export interface Side {
  run: () => unknown
  /** Operations per `run()` call. Default 1. */
  ops?: number
}

export interface PairedResult {
  /** Median time per op of A / of B, microseconds. */
  aUs: number
  bUs: number
  /** Median over pairs of tA / tB (= rate of B / rate of A). */
  ratio: number
  /** Interquartile range of the per-pair ratios. */
  ratioQ1: number
  ratioQ3: number
  /** Median over pairs of tB - tA, microseconds per op. */
  diffUs: number
  pairs: number
}

const cpuMs = (): number => {
  const c = process.cpuUsage()
  return (c.user + c.system) / 1000
}
const wallMs = (): number => performance.now()
const now = process.env.BENCH_CLOCK === 'wall' ? wallMs : cpuMs
export const clockName = now === wallMs ? 'wall' : 'cpu'

async function runBatch(side: Side, calls: number): Promise<number> {
  const t0 = now()
  for (let i = 0; i < calls; i++) {
    const r = side.run()
    if (r instanceof Promise) await r
  }
  return (now() - t0) / (calls * (side.ops ?? 1))
}

/** Doubles the calls per batch until one batch takes `ms` on the measuring clock (CPU time by default). */
async function calibrate(side: Side, ms: number): Promise<number> {
  let n = 1
  for (;;) {
    const t0 = now()
    await runBatch(side, n)
    if (now() - t0 >= ms || n >= 1 << 20) return n
    n *= 2
  }
}

export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((x, y) => x - y)
  const pos = (s.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo)
}

export interface PairedOptions {
  /** Time for the measured pairs, seconds. */
  seconds: number
  /** Warm-up per side, seconds. Default 0.3. */
  warmupSeconds?: number
  /** Target duration of one batch, ms. Default 4. */
  batchMs?: number
  /** Fewest pairs. Default 15. */
  minPairs?: number
}

/** Measures A against B in interleaved batches (random order within each pair). */
export async function paired(a: Side, b: Side, options: PairedOptions): Promise<PairedResult> {
  const warm = options.warmupSeconds ?? 0.3
  const batchMs = options.batchMs ?? 4
  for (const side of [a, b]) {
    const until = performance.now() + warm * 1000
    while (performance.now() < until) await runBatch(side, 1)
  }
  const na = await calibrate(a, batchMs)
  const nb = await calibrate(b, batchMs)
  const ta: number[] = []
  const tb: number[] = []
  const ratios: number[] = []
  const diffs: number[] = []
  const end = performance.now() + options.seconds * 1000
  while (performance.now() < end || ratios.length < (options.minPairs ?? 15)) {
    let x: number
    let y: number
    if (Math.random() < 0.5) {
      x = await runBatch(a, na)
      y = await runBatch(b, nb)
    } else {
      y = await runBatch(b, nb)
      x = await runBatch(a, na)
    }
    if (!(x > 0) || !(y > 0)) continue // a batch shorter than the clock's resolution
    ta.push(x)
    tb.push(y)
    ratios.push(x / y)
    diffs.push((y - x) * 1000)
  }
  return {
    aUs: quantile(ta, 0.5) * 1000,
    bUs: quantile(tb, 0.5) * 1000,
    ratio: quantile(ratios, 0.5),
    ratioQ1: quantile(ratios, 0.25),
    ratioQ3: quantile(ratios, 0.75),
    diffUs: quantile(diffs, 0.5),
    pairs: ratios.length,
  }
}
