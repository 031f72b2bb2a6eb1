/**
 * vector-mesh benchmarks (`npx tsx bench/index.ts`; BENCH_N=20000 for a quick run). Prints tables
 * and writes bench-results/vector-mesh.json (rows: name, unit, value, baseline, ratio), every
 * baseline measured in the same run:
 * - reconciliation of 1,000,000 entries differing by 1, 100, 10,000: bytes and round trips, next
 *   to sending the full id list;
 * - the local index (usearch HNSW) on 100,000 clustered 128-d vectors: recall@10 and queries per
 *   second on one core, next to exact search;
 * - federated search over 8 nodes: recall@10, QPS, overhead against the same searches in-process;
 * - replicating a 100,000-vector shard (bulk snapshot, chunked fetches) against a local ingest.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { clustered } from './data.js'
import { benchFederated, benchReplicate } from './federated.js'
import { benchLocal, groundTruth } from './local.js'
import { benchRecon } from './recon.js'

interface Row { name: string; unit: string; value: number; baseline: number | null; baselineName: string | null; ratio: number | null; higherIsBetter: boolean }
const rows: Row[] = []
const row = (name: string, unit: string, value: number, baseline: number | null, baselineName: string | null = null, higherIsBetter = true): void => {
  rows.push({ name, unit, value: round(value), baseline: baseline === null ? null : round(baseline), baselineName, ratio: baseline === null || baseline === 0 ? null : round(value / baseline), higherIsBetter })
}
const round = (x: number): number => Math.round(x * 10000) / 10000

const n = Number(process.env.BENCH_N ?? 100_000)
const reconN = Number(process.env.BENCH_RECON_N ?? 1_000_000)
const only = process.env.BENCH_ONLY?.split(',')
const want = (s: string): boolean => only === undefined || only.includes(s)

if (want('recon')) {
  const r = benchRecon(reconN, [1, 100, 10_000], { frameSizeLimit: 60_000 })
  const r0 = benchRecon(reconN, [10_000])
  console.table(r.map((x) => ({ entries: reconN, ...x })).concat(r0.map((x) => ({ entries: reconN, ...x, note: 'no frame limit' } as never))))
  for (const x of r) {
    row(`reconciliation, ${reconN} entries differing by ${x.d} (frame limit 60 KB): bytes both ways`, 'bytes', x.bytes, x.fullListBytes, 'sending the full id list (32 B per id)', false)
    row(`reconciliation, ${reconN} entries differing by ${x.d} (frame limit 60 KB): round trips`, 'round trips', x.rounds, 1, 'sending the full id list: 1', false)
  }
  row(`reconciliation, ${reconN} entries differing by 10000, no frame limit: bytes both ways`, 'bytes', r0[0]!.bytes, r0[0]!.fullListBytes, 'sending the full id list (32 B per id)', false)
  row(`reconciliation, ${reconN} entries differing by 10000, no frame limit: round trips`, 'round trips', r0[0]!.rounds, 1, 'sending the full id list: 1', false)
}

const data = clustered(n, 128, 100, 1)
const queries = clustered(1000, 128, 100, 1).map((v, i) => v.map((x) => x + Math.sin(i + x) * 0.05))
const truth = groundTruth(data, queries, 10)

if (want('local')) {
  const l = benchLocal(data, queries, truth, [{ quantization: 'f32', ef: 64 }, { quantization: 'f32', ef: 128 }, { quantization: 'f16', ef: 64 }])
  console.table(l)
  for (const x of l) {
    row(`local HNSW index, ${n} clustered 128-d vectors, ${x.quantization}, ef=${x.ef}: recall@10`, 'recall', x.recall, 1, 'exact search')
    row(`local HNSW index, ${n} clustered 128-d vectors, ${x.quantization}, ef=${x.ef}: queries per CPU-second, one thread (k=10)`, 'queries/s', x.cpuQps, x.exactCpuQps, 'exact (brute-force) search, queries per CPU-second')
    row(`local HNSW index, ${n} clustered 128-d vectors, ${x.quantization}, ef=${x.ef}: queries/s wall clock, one thread (k=10)`, 'queries/s', x.qps, x.exactQps, 'exact (brute-force) search, wall clock')
  }
  row(`local HNSW index build, ${n} x 128-d f32 (M=16, ef_add=128, both cores)`, 's', l[0]!.buildSeconds, null, null, false)
}

if (want('federated')) {
  const f = await benchFederated(data, queries, truth.ids)
  console.table([f])
  row(`federated search, 8 nodes, 8 shards x 2 replicas, ${n} x 128-d: recall@10`, 'recall', f.recall, 1, 'exact search')
  row('federated search, 8 nodes (memory transport, signed requests): queries/s from one node', 'queries/s', f.qps, f.localQps, 'the same 8 shard searches and merge in-process, no network')
  row('federated search, 8 nodes: queries/s from one node with 16 queries in flight', 'queries/s', f.concurrentQps, f.localQps, 'the same 8 shard searches and merge in-process, one at a time')
  row('federated search, 8 nodes: mean latency of one query (one at a time)', 'ms', f.latencyMs, 1000 / f.localQps, 'the same searches in-process', false)
  row('federated search, 8 nodes: answers with every shard', 'fraction', f.complete, 1, 'all')
}

if (want('replicate')) {
  const r = await benchReplicate(data)
  console.table([r])
  row(`replicate a ${n}-vector 128-d shard to a new replica, bulk snapshot`, 's', r.bulkSeconds, r.localIngestSeconds, 'verifying and ingesting the same entries locally, no network', false)
  row(`replicate a ${n}-vector 128-d shard to a new replica, chunked fetches (512 KiB)`, 's', r.fetchSeconds, r.localIngestSeconds, 'verifying and ingesting the same entries locally, no network', false)
}

console.table(rows)
const out = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bench-results', 'vector-mesh.json')
if (process.env.BENCH_WRITE !== '0') {
  mkdirSync(dirname(out), { recursive: true })
  writeFileSync(out, `${JSON.stringify({ package: 'vector-mesh', date: new Date().toISOString(), node: process.version, platform: `${process.platform}-${process.arch}`, note: 'shared 2-core VM with other jobs running; every baseline measured in the same run', results: rows }, null, 2)}\n`)
  console.log(`wrote ${out}`)
}
