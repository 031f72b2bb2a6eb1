/**
 * Paired, interleaved measurement for a noisy shared machine.
 *
 * `measure` (scripts/bench-util.ts) times A for 1.5 s and then B for 1.5 s, so a load change
 * between the two (another engineer's test run, say) shows up as a difference between A and B.
 * Here short batches (~2 ms) of A and B alternate, each pair in a random order, and every pair
 * yields its own ratio tA / tB and difference tA - tB per operation. The medians of those
 * per-pair values are what we report: a burst of load hits both halves of a pair about equally,
 * so it moves the pair's rates but hardly its ratio.
 *
 * Clock: by default the process CPU time (`process.cpuUsage()`, user + system, all threads), not
 * wall time. On this 2-core VM under a load of 6-8 the scheduler preempts us every few ms; wall
 * time then measures the neighbours, and with a fixed A/B order it can even resonate with the
 * scheduler period (we saw two identical functions differ 2x in wall time). CPU time of an
 * identical A and B agrees to < 1 %. BENCH_CLOCK=wall switches back to wall time.
 */

export interface PairedResult {
  /** Median ops/s of A over all A batches. */
  a: number
  /** Median ops/s of B over all B batches. */
  b: number
  /** Median over pairs of tA / tB (time per op), i.e. rateB / rateA. */
  timeRatio: number
  /** Median over pairs of tA - tB, microseconds per op. */
  diffUs: number
  /** Median time per op of A and of B, microseconds. */
  aUs: number
  bUs: number
  pairs: number
}

type Fn = () => unknown

/** Milliseconds on the chosen clock. */
const cpuMs = (): number => {
  const c = process.cpuUsage()
  return (c.user + c.system) / 1000
}
const wallMs = (): number => performance.now()
let now = process.env.BENCH_CLOCK === 'wall' ? wallMs : cpuMs

/** The clock `paired` uses: 'cpu' (default) or 'wall' (BENCH_CLOCK=wall). */
export const clockName = (): string => (now === wallMs ? 'wall' : 'cpu')
export function useClock(name: 'cpu' | 'wall'): void {
  now = name === 'wall' ? wallMs : cpuMs
}

/** Runs `fn` n times; returns ms per op on the chosen clock. */
async function runBatch(fn: Fn, n: number): Promise<number> {
  const t0 = now()
  for (let i = 0; i < n; i++) {
    const r = fn()
    if (r instanceof Promise) await r
  }
  return (now() - t0) / n
}

/** Doubles the batch until one batch takes at least `ms`. */
async function calibrate(fn: Fn, ms: number): Promise<number> {
  let n = 1
  for (;;) {
    const per = await runBatch(fn, n)
    if (per * n >= ms || n >= 1 << 20) return n
    n *= 2
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y)
  const m = s.length >> 1
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

export interface PairedOptions {
  /** Total time for the measured pairs (both sides), seconds. Default BENCH_SECONDS or 3. */
  seconds?: number
  /** Warm-up per side, seconds. Default 0.3 (at most `seconds`). */
  warmupSeconds?: number
  /** Target duration of one batch, ms. Default 2. */
  batchMs?: number
}

/** Measures A against B in interleaved batches; see the module comment. */
export async function paired(a: Fn, b: Fn, options: PairedOptions = {}): Promise<PairedResult> {
  const seconds = Number(process.env.BENCH_SECONDS ?? options.seconds ?? 3)
  const warm = Math.min(options.warmupSeconds ?? 0.3, seconds)
  const batchMs = options.batchMs ?? 2
  for (const fn of [a, b]) {
    const until = performance.now() + warm * 1000
    while (performance.now() < until) await runBatch(fn, 16)
  }
  const na = await calibrate(a, batchMs)
  const nb = await calibrate(b, batchMs)
  const ta: number[] = []
  const tb: number[] = []
  const ratios: number[] = []
  const diffs: number[] = []
  const end = performance.now() + seconds * 1000
  while (performance.now() < end || ratios.length < 15) {
    let x: number
    let y: number
    if (Math.random() < 0.5) { y = await runBatch(b, nb); x = await runBatch(a, na) } else { x = await runBatch(a, na); y = await runBatch(b, nb) }
    ta.push(x)
    tb.push(y)
    ratios.push(x / y)
    diffs.push((x - y) * 1000)
  }
  const aMs = median(ta)
  const bMs = median(tb)
  return { a: 1000 / aMs, b: 1000 / bMs, timeRatio: median(ratios), diffUs: median(diffs), aUs: aMs * 1000, bUs: bMs * 1000, pairs: ratios.length }
}
