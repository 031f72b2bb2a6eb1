/**
 * DHT simulation at full size (10,000 nodes; DHT_SIM_NODES to change): Kademlia over SimNet in
 * virtual time (50 ms +- 20 ms links), joins in waves, then node/closest/provider lookups without
 * churn, node lookups with 20 % of nodes leaving and 20 % joining, and node/provider lookups with
 * 20 % malicious nodes (half drop, half lie). Each lookup kind runs with disjoint paths (d = 4) and,
 * over the same pairs, as plain Kademlia (d = 1): d = 1 is the same-run baseline of each row.
 *
 * Memory per node: the heap delta of the built network / N (process.memoryUsage after a forced gc;
 * the simulator shares one Contact object per node, so this undercounts a real node, which holds
 * its own copies), and an estimate: (table + cached contacts) x bytes per table entry, measured
 * on fresh contacts (own id bytes, DID string and address) in the same run.
 *
 * Writes its rows into bench-results/peer-discovery.json (merged by row name).
 * Run: `cd packages/peer-discovery && npx tsx bench/dht-sim.ts` (or `pnpm sim`).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { mulberry32 } from '@kos-mesh/interface'
import { row, type BenchRow } from '../../../scripts/bench-util.js'
import { formatSummary, runKadSim, type KadSimSummary, type LookupStats } from '../sim/kad-sim.js'
import { kadIdOf, randomIdInBucket, RoutingTable } from '../src/kad/index.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const heap = (): number => { gc(); gc(); return process.memoryUsage().heapUsed }

const NODES = Number(process.env.DHT_SIM_NODES ?? 10_000)
const LOOKUPS = Number(process.env.DHT_SIM_LOOKUPS ?? 1_000)
const SEED = Number(process.env.DHT_SIM_SEED ?? 1)

/** Bytes per routing-table entry holding a fresh contact (as a real node holds it). */
function bytesPerEntry(): number {
  const rnd = mulberry32(99)
  const tables: RoutingTable[] = []
  const before = heap()
  let entries = 0
  for (let t = 0; t < 50; t++) {
    const table = new RoutingTable(kadIdOf(`did:key:zBenchSelf${t}`), { k: 20 })
    for (let cpl = 0; cpl < 12; cpl++) {
      for (let i = 0; i < 20; i++) {
        const did = `did:key:z6Mk${Math.floor(rnd() * 2 ** 48).toString(36)}${Math.floor(rnd() * 2 ** 48).toString(36)}bench${t}x${cpl}x${i}`
        const id = randomIdInBucket(table.self, cpl, rnd)
        // a /24 of its own per contact, so the diversity limits keep every one of them
        if (table.add({ id: new Uint8Array(id), did: did.slice(), addrs: [`tcp://10.${t}.${cpl * 20 + i}.1:4001`] }, 0).status === 'added') entries++
      }
    }
    tables.push(table)
  }
  const bytes = (heap() - before) / entries
  if (entries !== 50 * 12 * 20) throw new Error(`expected ${50 * 12 * 20} entries, got ${entries}`)
  return tables.length > 0 ? bytes : 0
}

const wallStart = performance.now()
const perEntry = bytesPerEntry()
let heapPerNode = 0
const heapBefore = heap()
const summary: KadSimSummary = await runKadSim({
  seed: SEED,
  nodes: NODES,
  lookups: LOOKUPS,
  closestLookups: 200,
  providerKeys: 50,
  providerLookups: 500,
  maliciousStress: [0.4],
  log: (line) => console.error(`[${((performance.now() - wallStart) / 1000).toFixed(0)} s] ${line}`),
  onBuilt: () => { heapPerNode = (heap() - heapBefore) / NODES },
})
const wallSeconds = (performance.now() - wallStart) / 1000
console.log(formatSummary(summary))

const get = (name: string, paths: number): LookupStats => {
  const r = summary.results.find((x) => x.name === name && x.paths === paths)
  if (r === undefined) throw new Error(`missing ${name} d=${paths}`)
  return r
}
const N = `${NODES.toLocaleString('en-US')} nodes`
const rows: BenchRow[] = []
const pct = (x: number): number => Math.round(x * 10_000) / 100
for (const name of ['no churn: node lookup', 'no churn: closest-node lookup', 'no churn: provider lookup', 'churn 20 %: node lookup', 'malicious 20 %: node lookup', 'malicious 20 %: provider lookup']) {
  const d4 = get(name, 4)
  const d1 = get(name, 1)
  const target = name.startsWith('churn') ? '>= 99 %' : name.startsWith('malicious') ? '>= 99 % (d=4)' : '100 %'
  rows.push(row(`DHT sim ${N}, ${name}: success (d=4)`, '%', pct(d4.successRate), { name: 'plain Kademlia d=1, same pairs', value: pct(d1.successRate) }, { higherIsBetter: true, target }))
  rows.push(row(`DHT sim ${N}, ${name}: hops median (d=4)`, 'hops', d4.hops.median, { name: 'plain Kademlia d=1, same pairs', value: d1.hops.median }, { higherIsBetter: false, ...(name.includes('node lookup') ? { target: '<= 4' } : {}) }))
  rows.push(row(`DHT sim ${N}, ${name}: hops p95 (d=4)`, 'hops', d4.hops.p95, { name: 'plain Kademlia d=1, same pairs', value: d1.hops.p95 }, { higherIsBetter: false }))
  rows.push(row(`DHT sim ${N}, ${name}: messages per lookup (d=4)`, 'messages', d4.messagesPerLookup, { name: 'plain Kademlia d=1, same pairs', value: d1.messagesPerLookup }, { higherIsBetter: false }))
}
for (const name of ['malicious 40 %: node lookup', 'malicious 40 %: provider lookup']) {
  const d4 = get(name, 4)
  const d1 = get(name, 1)
  rows.push(row(`DHT sim ${N}, ${name} (stress): success (d=4)`, '%', pct(d4.successRate), { name: 'plain Kademlia d=1, same pairs', value: pct(d1.successRate) }, { higherIsBetter: true }))
  rows.push(row(`DHT sim ${N}, ${name} (stress): messages per lookup (d=4)`, 'messages', d4.messagesPerLookup, { name: 'plain Kademlia d=1, same pairs', value: d1.messagesPerLookup }, { higherIsBetter: false }))
}
const plain = get('no churn: node lookup', 4)
rows.push(row(`DHT sim ${N}, node lookup hops median vs log2(N)`, 'hops', plain.hops.median, { name: 'log2(N) (Kademlia bound, b = 1)', value: Math.log2(NODES) }, { higherIsBetter: false }))
rows.push(row(`DHT sim ${N}: contacts per node (table + cache)`, 'contacts', summary.table.contactsMean + summary.table.cachedMean, undefined, {}))
rows.push(row(`DHT sim ${N}: memory per node, estimate (contacts x bytes per entry)`, 'bytes', (summary.table.contactsMean + summary.table.cachedMean) * perEntry, undefined, { higherIsBetter: false }))
rows.push(row(`DHT sim ${N}: memory per node, simulator heap delta / N`, 'bytes', heapPerNode, undefined, { higherIsBetter: false }))
rows.push(row(`DHT sim ${N}: messages per join (bootstrap + refresh)`, 'messages', summary.build.messagesPerJoin, undefined, { higherIsBetter: false }))
rows.push(row(`DHT sim ${N}: wall time of the full run`, 's', wallSeconds, undefined, { higherIsBetter: false }))

// print like scripts/bench-util.ts report(), but merge into the package's results by row name
const header = ['name', 'value', 'unit', 'baseline', 'ratio', 'target']
const fmt = (v: number): string => (Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : String(v))
const lines = rows.map((r) => [r.name, fmt(r.value), r.unit, r.baseline === null ? '-' : `${fmt(r.baseline)} (${r.baselineName ?? ''})`, r.ratio === null ? '-' : r.ratio.toFixed(3), r.target ?? ''])
const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => String(l[i]).length)))
const fmtLine = (l: string[]): string => l.map((c, i) => String(c).padEnd(widths[i] ?? 0)).join('  ')
console.log(`\npeer-discovery (DHT simulation)\n${fmtLine(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`)
for (const l of lines) console.log(fmtLine(l))

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bench-results')
const file = join(dir, 'peer-discovery.json')
mkdirSync(dir, { recursive: true })
const existing = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { results?: BenchRow[] } & Record<string, unknown>) : { package: 'peer-discovery' }
const byName = new Map((existing.results ?? []).map((r) => [r.name, r]))
for (const r of rows) byName.set(r.name, r)
const out = { ...existing, package: 'peer-discovery', dhtSim: { date: new Date().toISOString(), node: process.version, nodes: NODES, lookups: LOOKUPS, seed: SEED, bytesPerTableEntry: Math.round(perEntry), wallSeconds: Math.round(wallSeconds * 10) / 10, summary }, results: [...byName.values()] }
writeFileSync(file, JSON.stringify(out, null, 2) + '\n')
console.log(`\nwrote bench-results/peer-discovery.json (${rows.length} DHT rows merged); wall ${wallSeconds.toFixed(1)} s`)
