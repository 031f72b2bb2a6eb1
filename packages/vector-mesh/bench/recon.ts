/**
 * Reconciliation benchmark: 1,000,000 entries on each side differing by d (half missing on each
 * side), bytes and round trips, next to the baseline of sending the full id list.
 */
import { createHash } from 'node:crypto'
import { ReconStorage, reconcileLocal, type ReconItem } from '../src/index.js'

export interface ReconRow { d: number; bytes: number; rounds: number; fullListBytes: number; ms: number }

export function makeItems(n: number, seed = 1): ReconItem[] {
  const out: ReconItem[] = []
  const base = 1_700_000_000_000
  for (let i = 0; i < n; i++) {
    const id = new Uint8Array(createHash('sha256').update(`${seed}:${i}`).digest())
    out.push({ ts: base + Math.floor(i * 2.6), id })
  }
  return out
}

export function benchRecon(n: number, diffs: number[], options?: { branching?: number; frameSizeLimit?: number }): ReconRow[] {
  const items = makeItems(n + Math.max(...diffs))
  const rows: ReconRow[] = []
  for (const d of diffs) {
    // a holds items[0..n), b holds the same with d/2 removed and d - d/2 extra ones added
    const half = Math.floor(d / 2)
    const a = items.slice(0, n)
    const removed = new Set<number>()
    for (let k = 0; k < half; k++) removed.add(Math.floor(((k + 0.5) * n) / half))
    const b = a.filter((_, i) => !removed.has(i)).concat(items.slice(n, n + (d - half)))
    const sa = ReconStorage.from(a)
    const sb = ReconStorage.from(b)
    const t0 = process.hrtime.bigint() // clock-exempt: benchmark timing
    const r = reconcileLocal(sa, sb, { maxMessageBytes: 64 * 1024 * 1024, ...options })
    const ms = Number(process.hrtime.bigint() - t0) / 1e6 // clock-exempt: benchmark timing
    if (r.have.length + r.need.length !== d) throw new Error(`expected a difference of ${d}, got ${r.have.length + r.need.length}`)
    rows.push({ d, bytes: r.bytes, rounds: r.rounds, fullListBytes: b.length * 32, ms })
  }
  return rows
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const n = Number(process.env.N ?? 1_000_000)
  for (const br of [16]) console.table(benchRecon(n, [1, 100, 10_000], { branching: br, frameSizeLimit: 60_000 }).map((r) => ({ branching: br, ...r })))
}
