/**
 * Gossip at full size (DESIGN.md section 4): 1,000 simulated nodes, 100 ms links (+ up to 10 ms
 * jitter), 5 % loss on every message; joins through one contact in waves, membership settles, then
 * broadcasts from random nodes. Baseline in the same run: plain flooding over the same overlay
 * (every node forwards its first copy to all its active neighbours). A second run crashes 10 % of
 * the nodes before the broadcasts. Virtual time: the figures do not depend on the machine.
 *
 * Run: `cd packages/peer-discovery && npx tsx bench/gossip-sim.ts` (GOSSIP_NODES, GOSSIP_BROADCASTS,
 * GOSSIP_SEED override the size). Rows are merged by name into bench-results/peer-discovery.json.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { row, type BenchRow } from '../../../scripts/bench-util.js'
import { runGossipSim, type GossipSimSummary } from '../sim/gossip-sim.js'

const NODES = Number(process.env.GOSSIP_NODES ?? 1000)
const BROADCASTS = Number(process.env.GOSSIP_BROADCASTS ?? 50)
const SEED = Number(process.env.GOSSIP_SEED ?? 1)

const t0 = performance.now()
const base = { nodes: NODES, broadcasts: BROADCASTS, seed: SEED, latencyMs: 100, jitterMs: 10, loss: 0.05 }
const s = await runGossipSim(base)
const tMain = (performance.now() - t0) / 1000
const t1 = performance.now()
const c = await runGossipSim({ ...base, crashFraction: 0.1, flood: false, seed: SEED + 1 })
const tCrash = (performance.now() - t1) / 1000

const f = s.flood!
const g = s.gossip
const degree = `${s.degree.min}-${s.degree.max}, mean ${s.degree.mean}`
const P = `gossip ${NODES} nodes, 5% loss`
const flood = (value: number) => ({ name: 'plain flooding, same overlay', value })
const rows: BenchRow[] = [
  row(`${P}: delivery, min over ${BROADCASTS} broadcasts`, 'fraction', g.minDelivery, flood(f.minDelivery), { higherIsBetter: true, target: '= 1' }),
  row(`${P}: latency p50`, 'ms', g.latencyP50, flood(f.latencyP50), { higherIsBetter: false }),
  row(`${P}: latency p95`, 'ms', g.latencyP95, flood(f.latencyP95), { higherIsBetter: false, target: '<= 650 ms' }),
  row(`${P}: latency max`, 'ms', g.latencyMax, flood(f.latencyMax), { higherIsBetter: false }),
  row(`${P}: duplicates per node and broadcast, max`, 'copies', g.duplicatesMax, flood(f.duplicatesMax), { higherIsBetter: false, target: `<= degree (active view ${s.degree.max})` }),
  row(`${P}: duplicates per node and broadcast, mean`, 'copies', g.duplicatesMean, flood(f.duplicatesMean), { higherIsBetter: false }),
  row(`${P}: payload messages per broadcast`, 'msgs', g.payloadMsgsPerBroadcast, flood(f.payloadMsgsPerBroadcast), { higherIsBetter: false }),
  row(`${P}: control messages per broadcast (IHAVE, GRAFT, PRUNE)`, 'msgs', g.controlMsgsPerBroadcast, undefined, { higherIsBetter: false }),
  row(`${P}: membership messages per node per second`, 'msgs/s', s.membershipMsgsPerNodePerSec, undefined, { higherIsBetter: false }),
  row(`${P}: memory per node (entries x 96 B + cached payloads)`, 'bytes', s.memory.estimatedBytesMean, undefined, { higherIsBetter: false }),
  row(`${P}, 10% crashed: delivery, min over ${BROADCASTS} broadcasts`, 'fraction', c.gossip.minDelivery, undefined, { higherIsBetter: true, target: '= 1' }),
  row(`${P}, 10% crashed: latency p95`, 'ms', c.gossip.latencyP95, undefined, { higherIsBetter: false, target: '<= 650 ms' }),
  row(`${P}, 10% crashed: duplicates per node and broadcast, max`, 'copies', c.gossip.duplicatesMax, undefined, { higherIsBetter: false, target: `<= degree (active view ${c.degree.max})` }),
]

function table(label: string, x: GossipSimSummary): void {
  const fl = x.flood
  const line = (k: string, a: unknown, b?: unknown) => console.log(`  ${k.padEnd(34)} ${String(a).padStart(10)}${b === undefined ? '' : String(b).padStart(12)}`)
  console.log(`\n${label}: ${x.live}/${x.nodes} live, degree ${x.degree.min}-${x.degree.max} (mean ${x.degree.mean}), passive ${x.passiveMean}, overlay hops p50/p95/max ${x.overlayHops.p50}/${x.overlayHops.p95}/${x.overlayHops.max}, half-open links ${x.halfOpenLinks}`)
  line('', 'plumtree', fl === undefined ? undefined : 'flooding')
  for (const k of ['minDelivery', 'latencyP50', 'latencyP95', 'latencyMax', 'duplicatesMean', 'duplicatesMax', 'duplicatesOverDegreeCount', 'payloadMsgsPerBroadcast', 'controlMsgsPerBroadcast', 'payloadMsgsPerNode'] as const) {
    line(k, x.gossip[k], fl?.[k])
  }
  line('repair GRAFTs / link GRAFTs (all)', `${x.grafts}/${x.linkGrafts}`)
  line('ids given up', x.givenUp)
  line('memory: entries / cache B / est. B', `${x.memory.entriesMean} / ${x.memory.cacheBytesMean} / ${x.memory.estimatedBytesMean}`)
  line('membership msgs per node per s', x.membershipMsgsPerNodePerSec)
}
table(`no crashes (${tMain.toFixed(1)} s wall)`, s)
table(`10% crashed (${tCrash.toFixed(1)} s wall)`, c)

const ok = g.allDelivered && c.gossip.allDelivered && g.latencyP95 <= 650 && c.gossip.latencyP95 <= 650 && g.duplicatesOverMeshDegreeMax <= 0 && c.gossip.duplicatesOverMeshDegreeMax <= 0
console.log(`\ngoal (100 % delivery, p95 <= 650 ms, duplicates <= degree): ${ok ? 'met' : 'NOT met'}; degree ${degree}`)

// merge by row name into bench-results/peer-discovery.json (other rows and fields stay)
const path = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bench-results', 'peer-discovery.json')
mkdirSync(dirname(path), { recursive: true })
let out: Record<string, unknown> & { results?: BenchRow[] } = {}
if (existsSync(path)) {
  try { out = JSON.parse(readFileSync(path, 'utf8')) as typeof out } catch { out = {} }
}
const byName = new Map<string, BenchRow>((Array.isArray(out.results) ? out.results : []).map((r) => [r.name, r]))
for (const r of rows) byName.set(r.name, r)
out = {
  package: 'peer-discovery',
  ...out,
  gossipSim: {
    command: 'cd packages/peer-discovery && npx tsx bench/gossip-sim.ts',
    date: new Date().toISOString(),
    node: process.version,
    wallSeconds: Math.round((tMain + tCrash) * 10) / 10,
    setup: { ...base, joinWaves: '50 nodes per second through one contact', settleMs: 360_000, crashRun: { crashFraction: 0.1, detectMs: 1_000, repairMs: 15_000, seed: SEED + 1 } },
    memoryMethod: 'structural: per node, entries of active + passive views, eager/lazy sets, cached payloads, seen ids and missing ids, each counted as 96 B (a short string in a V8 Set/Map), plus the cached payload bytes (512 B payloads)',
    summary: s,
    crashed: c,
  },
  results: [...byName.values()],
}
writeFileSync(path, JSON.stringify(out, null, 2) + '\n')
console.log(`merged ${rows.length} rows into bench-results/peer-discovery.json; wall ${((performance.now() - t0) / 1000).toFixed(1)} s`)
