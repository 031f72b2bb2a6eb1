/**
 * @kos-mesh/trust benchmarks. Each module in BENCHES returns rows; they are merged by name into
 * bench-results/trust.json (rows of other benches already in the file are kept), so another bench
 * can be added to the list (or run on its own) without wiping these figures.
 * Run: npx tsx bench/index.ts   (node --expose-gc gives steadier heap figures:
 *      node --expose-gc --import tsx bench/index.ts)
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { report, type BenchRow } from '../../../scripts/bench-util.js'
import * as recompute from './recompute.js'

interface BenchModule {
  run(): Promise<BenchRow[]>
}

/** The benchmarks, in order. */
const BENCHES: Array<[string, BenchModule]> = [['recompute', recompute]]

const resultsFile = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bench-results', 'trust.json')

function previousRows(): BenchRow[] {
  try {
    const prev = JSON.parse(readFileSync(resultsFile, 'utf8')) as { results?: BenchRow[] }
    return Array.isArray(prev.results) ? prev.results : []
  } catch {
    return []
  }
}

const only = process.argv.slice(2)
const fresh: BenchRow[] = []
for (const [name, mod] of BENCHES) {
  if (only.length > 0 && !only.includes(name)) continue
  console.log(`running ${name} ...`)
  fresh.push(...(await mod.run()))
}
// merge by name: fresh rows replace rows of the same name, others stay
const merged = new Map<string, BenchRow>()
for (const r of previousRows()) merged.set(r.name, r)
for (const r of fresh) merged.set(r.name, r)
report('trust', [...merged.values()], { gc: typeof (globalThis as { gc?: unknown }).gc === 'function' })
