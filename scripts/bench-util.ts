/**
 * Tiny benchmark harness shared by the packages' `bench/` scripts (not published).
 *
 * `measure` warms up, grows the batch until one batch takes >= 10 ms, then runs batches for
 * `seconds` and reports operations per second (median of batches). `report` prints a table and
 * writes `bench-results/<package>.json` at the repository root: one row per result with name,
 * unit, value, baseline, ratio (value / baseline, or null when there is no baseline).
 *
 * `measure` times one function on its own, so a number and its baseline measured one after the
 * other can differ just because the machine's load changed in between. To compare a path with its
 * baseline on a noisy machine use `paired` from `./bench-paired.ts` (interleaved A/B batches on
 * process CPU time, medians of per-pair ratios) and put its result into `row(..., { ratio })`.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface BenchRow {
  name: string
  unit: string
  value: number
  /** The same-run baseline this row is compared to. */
  baseline: number | null
  baselineName?: string
  /** value / baseline. For time-like units lower is better; the row says which. */
  ratio: number | null
  higherIsBetter?: boolean
  target?: string
}

export interface MeasureOptions {
  seconds?: number
  warmupSeconds?: number
}

/** Runs `fn` repeatedly (sync or async) and returns operations per second (median of batches). */
export async function measure(fn: () => unknown, options: MeasureOptions = {}): Promise<number> {
  const seconds = Number(process.env.BENCH_SECONDS ?? options.seconds ?? 1.5)
  const warmup = Math.min(options.warmupSeconds ?? 0.3, seconds)
  let batch = 1
  const deadlineWarm = performance.now() + warmup * 1000
  while (performance.now() < deadlineWarm) { const r = fn(); if (r instanceof Promise) await r }
  for (;;) {
    const t0 = performance.now()
    for (let i = 0; i < batch; i++) { const r = fn(); if (r instanceof Promise) await r }
    if (performance.now() - t0 >= 10 || batch >= 1 << 20) break
    batch *= 2
  }
  const rates: number[] = []
  const end = performance.now() + seconds * 1000
  while (performance.now() < end || rates.length < 3) {
    const t0 = performance.now()
    for (let i = 0; i < batch; i++) { const r = fn(); if (r instanceof Promise) await r }
    rates.push(batch / ((performance.now() - t0) / 1000))
  }
  rates.sort((a, b) => a - b)
  return rates[Math.floor(rates.length / 2)] ?? 0
}

export function row(name: string, unit: string, value: number, baseline?: { name: string; value: number }, extra: Partial<BenchRow> = {}): BenchRow {
  return {
    name,
    unit,
    value: round(value),
    baseline: baseline === undefined ? null : round(baseline.value),
    baselineName: baseline?.name,
    ratio: baseline === undefined || baseline.value === 0 ? null : round(value / baseline.value, 4),
    ...extra,
  }
}

function round(v: number, digits = 2): number {
  const f = 10 ** digits
  return Math.round(v * f) / f
}

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..')

/** Prints the rows as a table and writes bench-results/<pkg>.json. */
export function report(pkg: string, rows: BenchRow[], meta: Record<string, unknown> = {}): void {
  const header = ['name', 'value', 'unit', 'baseline', 'ratio', 'target']
  const lines = rows.map((r) => [r.name, fmt(r.value), r.unit, r.baseline === null ? '-' : `${fmt(r.baseline)} (${r.baselineName ?? ''})`, r.ratio === null ? '-' : r.ratio.toFixed(3), r.target ?? ''])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => String(l[i]).length)))
  const fmtLine = (l: string[]) => l.map((c, i) => String(c).padEnd(widths[i] ?? 0)).join('  ')
  console.log(`\n${pkg}`)
  console.log(fmtLine(header))
  console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  for (const l of lines) console.log(fmtLine(l))
  const dir = join(repoRoot, 'bench-results')
  mkdirSync(dir, { recursive: true })
  const out = {
    package: pkg,
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    ...meta,
    results: rows,
  }
  writeFileSync(join(dir, `${pkg}.json`), JSON.stringify(out, null, 2) + '\n')
  console.log(`\nwrote bench-results/${pkg}.json`)
}

function fmt(v: number): string {
  return v >= 100 ? Math.round(v).toLocaleString('en-US') : String(v)
}
