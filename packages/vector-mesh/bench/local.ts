/**
 * The local index: recall@10 of usearch HNSW against exact search on clustered 128-d vectors, and
 * queries per second on one core (threads = 1), next to exact (brute-force) search in the same run.
 */
import { Index, MetricKind, ScalarKind, exactSearch } from 'usearch'
import { flatten, now } from './data.js'

export interface LocalRow { quantization: string; ef: number; recall: number; qps: number; cpuQps: number; exactQps: number; exactCpuQps: number; buildSeconds: number }

/** CPU seconds (user + system) of this process since `from`. */
function cpuSince(from: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(from)
  return (u.user + u.system) / 1e6
}

export function groundTruth(data: Float32Array[], queries: Float32Array[], k: number): { ids: bigint[][]; qps: number; cpuQps: number } {
  const dims = data[0]!.length
  const flat = flatten(data)
  const ids: bigint[][] = []
  const t0 = now()
  const c0 = process.cpuUsage()
  for (const q of queries) {
    const m = exactSearch(flat, q, dims, k, MetricKind.L2sq, 1) as { keys: BigUint64Array }
    ids.push(Array.from(m.keys))
  }
  return { ids, qps: queries.length / ((now() - t0) / 1000), cpuQps: queries.length / cpuSince(c0) }
}

export function recallAt(found: bigint[][], truth: bigint[][], k: number): number {
  let hit = 0
  for (let i = 0; i < truth.length; i++) {
    const t = new Set(truth[i]!.slice(0, k))
    for (const x of found[i]!.slice(0, k)) if (t.has(x)) hit++
  }
  return hit / (truth.length * k)
}

export function benchLocal(data: Float32Array[], queries: Float32Array[], truth: { ids: bigint[][]; qps: number; cpuQps: number }, settings: Array<{ quantization: 'f32' | 'f16' | 'i8'; ef: number }>): LocalRow[] {
  const dims = data[0]!.length
  const rows: LocalRow[] = []
  const built = new Map<string, { index: Index; seconds: number }>()
  for (const s of settings) {
    let b = built.get(s.quantization)
    if (b === undefined) {
      const scalar = { f32: ScalarKind.F32, f16: ScalarKind.F16, i8: ScalarKind.I8 }[s.quantization]
      const index = new Index(dims, MetricKind.L2sq, scalar, 16, 128, s.ef, false)
      const t0 = now()
      const keys = new BigUint64Array(data.length)
      for (let i = 0; i < data.length; i++) keys[i] = BigInt(i)
      index.add(keys, data, 0) // all cores for the build (not measured as a target)
      b = { index, seconds: (now() - t0) / 1000 }
      built.set(s.quantization, b)
    }
    const index = b.index
    // the expansion is fixed at construction in the JS binding: rebuild a view with another ef
    const ix = s.ef === 0 ? index : (() => { const path = `/tmp/vm-bench-${process.pid}-${s.quantization}.usearch`; index.save(path); const scalar = { f32: ScalarKind.F32, f16: ScalarKind.F16, i8: ScalarKind.I8 }[s.quantization]; const v = new Index(dims, MetricKind.L2sq, scalar, 16, 128, s.ef, false); v.load(path); return v })()
    const found: bigint[][] = []
    for (const q of queries.slice(0, 50)) ix.search(q, 10, 1) // warm-up
    const t0 = now()
    const c0 = process.cpuUsage()
    for (const q of queries) found.push(Array.from(ix.search(q, 10, 1).keys))
    const cpuQps = queries.length / cpuSince(c0)
    const qps = queries.length / ((now() - t0) / 1000)
    rows.push({ quantization: s.quantization, ef: s.ef, recall: recallAt(found, truth.ids, 10), qps, cpuQps, exactQps: truth.qps, exactCpuQps: truth.cpuQps, buildSeconds: b.seconds })
  }
  return rows
}
