/**
 * The Kademlia simulation: N nodes join in waves over SimNet (virtual time, seeded), then
 * (a) node lookups, closest-node lookups and provider lookups without churn; (b) the same kinds of
 * node lookups while 20 % of nodes leave (setDown, no goodbye) and 20 % new nodes join; (c) node
 * and provider lookups with 20 % malicious nodes (half drop every request, half answer with the
 * colluders closest to the target and never the target). Every lookup runs with disjoint paths
 * (d = 4) and, over the same source/target pairs, as plain Kademlia (d = 1).
 *
 * Deterministic: the same init gives the same summary. `npx tsx sim/kad-sim.ts [nodes]` prints it.
 */
import type { KadInit } from '../src/kad/index.js'
import { idEquals, providerKeyOf } from '../src/kad/index.js'
import { KadNet, type SimPeer } from './kad-net.js'

export interface KadSimInit {
  seed?: number
  nodes: number
  /** Node lookups per scenario (each run with d paths and with 1). Default 500. */
  lookups?: number
  /** Full lookups of random keys, checked against the true closest live node. Default 100. */
  closestLookups?: number
  /** Provider keys, providers per key, provider lookups. Default 20, 3, 200. */
  providerKeys?: number
  providersPerKey?: number
  providerLookups?: number
  /** Fraction of nodes leaving, and of new nodes joining, in the churn phase. Default 0.2. */
  churn?: number
  /** Length of the churn phase (virtual ms). Default 600,000. */
  churnPhaseMs?: number
  /** Fraction of malicious nodes. Default 0.2. */
  malicious?: number
  /** Further malicious fractions to try after the first (more nodes turn), e.g. [0.4]. Default none. */
  maliciousStress?: readonly number[]
  /** Disjoint paths of the protected lookups. Default 4. */
  paths?: number
  /** Lookups run at once. Default 50. */
  concurrency?: number
  latencyMs?: number
  jitterMs?: number
  kad?: KadInit
  maxWave?: number
  /** Scenarios to run. Default all. */
  scenarios?: ReadonlyArray<'none' | 'churn' | 'malicious'>
  /** Progress lines (waves, scenarios). Default: none. */
  log?: (line: string) => void
  /** Called once the network is built, before any scenario (e.g. to measure memory). */
  onBuilt?: (net: KadNet) => void
}

export interface Dist { median: number; p95: number; max: number; mean: number }

export interface LookupStats {
  name: string
  paths: number
  lookups: number
  succeeded: number
  /** succeeded / lookups. */
  successRate: number
  /** Hops of the successful lookups. */
  hops: Dist
  /** Requests sent per lookup. */
  requests: Dist
  /** Requests + answers per lookup (mean). */
  messagesPerLookup: number
}

export interface KadSimSummary {
  seed: number
  nodes: number
  k: number
  alpha: number
  build: { virtualMs: number; messages: number; messagesPerJoin: number }
  table: { contactsMean: number; contactsMin: number; cachedMean: number }
  results: LookupStats[]
  churn?: { left: number; joined: number }
  malicious?: { drop: number; lie: number }
}

type Outcome = { ok: boolean; hops: number; requests: number; answered: number }

function dist(values: number[]): Dist {
  if (values.length === 0) return { median: 0, p95: 0, max: 0, mean: 0 }
  const v = [...values].sort((a, b) => a - b)
  const q = (p: number): number => v[Math.min(v.length - 1, Math.floor(p * v.length))] as number
  return { median: q(0.5), p95: q(0.95), max: v[v.length - 1] as number, mean: Math.round((v.reduce((a, b) => a + b, 0) / v.length) * 100) / 100 }
}

function stats(name: string, paths: number, outcomes: Outcome[]): LookupStats {
  const ok = outcomes.filter((o) => o.ok)
  return {
    name,
    paths,
    lookups: outcomes.length,
    succeeded: ok.length,
    successRate: outcomes.length === 0 ? 0 : ok.length / outcomes.length,
    hops: dist(ok.map((o) => o.hops)),
    requests: dist(outcomes.map((o) => o.requests)),
    messagesPerLookup: outcomes.length === 0 ? 0 : Math.round((outcomes.reduce((a, o) => a + o.requests + o.answered, 0) / outcomes.length) * 100) / 100,
  }
}

const FAIL: Outcome = { ok: false, hops: -1, requests: 0, answered: 0 }

async function nodeLookup(src: SimPeer, dst: SimPeer, paths: number): Promise<Outcome> {
  try {
    const r = await src.node.findNode(dst.contact.id, { paths })
    return { ok: r.found !== undefined && idEquals(r.found.id, dst.contact.id), hops: r.hops, requests: r.queried, answered: r.answered }
  } catch {
    return FAIL
  }
}

export async function runKadSim(init: KadSimInit): Promise<KadSimSummary> {
  const seed = init.seed ?? 1
  const n = init.nodes
  const lookups = init.lookups ?? 500
  const d = init.paths ?? 4
  const concurrency = init.concurrency ?? 50
  const scenarios = new Set(init.scenarios ?? ['none', 'churn', 'malicious'])
  const knet = new KadNet({ seed, latencyMs: init.latencyMs ?? 50, jitterMs: init.jitterMs ?? 20, kad: init.kad ?? {} })
  const rnd = knet.random
  const t0 = knet.clock.now()
  const log = init.log ?? (() => {})
  await knet.build(n, { maxWave: init.maxWave ?? 1_000, onWave: (joined) => log(`joined ${joined}/${n} (${knet.net.stats.sent} messages)`) })
  const buildMessages = knet.net.stats.sent
  init.onBuilt?.(knet)
  const summary: KadSimSummary = {
    seed,
    nodes: n,
    k: knet.peers[0]!.node.k,
    alpha: knet.peers[0]!.node.alpha,
    build: { virtualMs: knet.clock.now() - t0, messages: buildMessages, messagesPerJoin: Math.round((buildMessages / n) * 10) / 10 },
    table: tableStats(knet.peers),
    results: [],
  }
  const honest = (p: SimPeer): boolean => p.joined && !p.left && p.misbehaviour === undefined
  const pick = (ok: (p: SimPeer) => boolean): SimPeer => {
    for (;;) {
      const p = knet.peers[Math.floor(rnd() * knet.peers.length)]!
      if (ok(p)) return p
    }
  }
  /** Runs `jobs` (each a thunk) `concurrency` at a time in virtual time. */
  const runBatched = async <T>(jobs: Array<() => Promise<T>>): Promise<T[]> => {
    const out: T[] = new Array(jobs.length)
    for (let i = 0; i < jobs.length; i += concurrency) {
      let done = 0
      const batch = jobs.slice(i, i + concurrency)
      batch.forEach((job, j) => { void job().then((r) => { out[i + j] = r; done++ }) })
      await knet.net.runUntil(() => done === batch.length, 3_600_000, 100)
    }
    return out
  }
  const pairLookups = async (name: string): Promise<void> => {
    log(`${name}: node lookups`)
    const pairs = Array.from({ length: lookups }, () => { const s = pick(honest); return [s, pick((p) => honest(p) && p !== s)] as const })
    for (const paths of [d, 1]) {
      const res = await runBatched(pairs.map(([s, t]) => () => nodeLookup(s, t, paths)))
      summary.results.push(stats(`${name}: node lookup`, paths, res))
    }
  }
  // Providers: each key provided by a few nodes (announced with d paths).
  const keys = Array.from({ length: init.providerKeys ?? 20 }, (_, i) => providerKeyOf(`capability:sim-${seed}-${i}`))
  await runBatched(keys.flatMap((key) => Array.from({ length: init.providersPerKey ?? 3 }, () => { const p = pick(honest); return () => p.node.provide(key, { paths: d }).catch(() => 0) })))
  const providerLookups = async (name: string): Promise<void> => {
    const qs = Array.from({ length: init.providerLookups ?? 200 }, () => [pick(honest), keys[Math.floor(rnd() * keys.length)]!] as const)
    for (const paths of [d, 1]) {
      const res = await runBatched(qs.map(([s, key]) => async (): Promise<Outcome> => {
        try {
          const r = await s.node.findProviders(key, { paths, count: 1 })
          return { ok: r.providers.length > 0, hops: r.hops, requests: r.queried, answered: r.queried }
        } catch { return FAIL }
      }))
      summary.results.push(stats(`${name}: provider lookup`, paths, res))
    }
  }

  if (scenarios.has('none')) {
    await pairLookups('no churn')
    const targets = Array.from({ length: init.closestLookups ?? 100 }, () => [pick(honest), providerKeyOf(`random-${seed}-${rnd()}`)] as const)
    for (const paths of [d, 1]) {
      const res = await runBatched(targets.map(([s, key]) => async (): Promise<Outcome> => {
        try {
          const r = await s.node.lookup(key, { paths })
          const best = knet.trueClosest(key, s)
          const first = r.closest[0]
          const ok = best !== undefined && first !== undefined && idEquals(first.id, best.contact.id)
          if (!ok && process.env.KAD_SIM_DEBUG !== undefined) console.log('closest miss', { paths, src: s.index, best: best?.index, got: first === undefined ? undefined : knet.indexOf(first.did), answered: r.answered, failed: r.failed, knownBy: knet.peers.filter((p) => best !== undefined && p.node.table.has(best.contact.id)).length })
          return { ok, hops: r.hops, requests: r.queried, answered: r.answered }
        } catch { return FAIL }
      }))
      summary.results.push(stats('no churn: closest-node lookup', paths, res))
    }
    await providerLookups('no churn')
  }

  if (scenarios.has('churn')) {
    log('churn phase')
    const churn = init.churn ?? 0.2
    const phase = init.churnPhaseMs ?? 600_000
    const live = knet.peers.filter((p) => p.joined && !p.left)
    const leaving = new Set<SimPeer>()
    while (leaving.size < Math.round(churn * live.length)) leaving.add(live[Math.floor(rnd() * live.length)]!)
    const stable = (p: SimPeer): boolean => honest(p) && !leaving.has(p)
    const clock = knet.clock
    let pending = 0
    let joinedNew = 0
    for (const p of leaving) clock.setTimeout(() => knet.leave(p), rnd() * phase)
    const newcomers = Math.round(churn * live.length)
    for (let i = 0; i < newcomers; i++) {
      pending++
      clock.setTimeout(() => {
        const p = knet.addPeer()
        void knet.join(p, knet.randomJoined(3)).then(() => { joinedNew++ }, () => {}).finally(() => { pending-- })
      }, rnd() * phase)
    }
    const outcomes = new Map<number, Outcome[]>([[d, []], [1, []]])
    for (let i = 0; i < lookups; i++) {
      pending++
      clock.setTimeout(() => {
        const s = pick(stable)
        const t = pick((p) => stable(p) && p !== s)
        void Promise.all([nodeLookup(s, t, d), nodeLookup(s, t, 1)]).then(([a, b]) => {
          outcomes.get(d)!.push(a)
          outcomes.get(1)!.push(b)
          pending--
        })
      }, (i + 0.5) * (phase / lookups))
    }
    const start = clock.now()
    await knet.net.runUntil(() => pending === 0 && clock.now() - start >= phase, phase + 3_600_000, 100)
    summary.results.push(stats(`churn ${Math.round(churn * 100)} %: node lookup`, d, outcomes.get(d)!))
    summary.results.push(stats(`churn ${Math.round(churn * 100)} %: node lookup`, 1, outcomes.get(1)!))
    summary.churn = { left: leaving.size, joined: joinedNew }
  }

  if (scenarios.has('malicious')) {
    const fraction = init.malicious ?? 0.2
    const bad = new Set<SimPeer>()
    const list: Array<{ peer: SimPeer; misbehaviour: 'drop' | 'lie' }> = []
    for (const f of [fraction, ...(init.maliciousStress ?? [])]) {
      const live = knet.peers.filter((p) => p.joined && !p.left)
      while (bad.size < Math.round(f * live.length)) {
        const p = live[Math.floor(rnd() * live.length)]!
        if (bad.has(p)) continue
        bad.add(p)
        list.push({ peer: p, misbehaviour: list.length % 2 === 0 ? 'drop' : 'lie' })
      }
      knet.setMisbehaviour(list)
      if (f === fraction) summary.malicious = { drop: list.filter((x) => x.misbehaviour === 'drop').length, lie: list.filter((x) => x.misbehaviour === 'lie').length }
      await pairLookups(`malicious ${Math.round(f * 100)} %`)
      await providerLookups(`malicious ${Math.round(f * 100)} %`)
    }
  }
  return summary
}

function tableStats(peers: readonly SimPeer[]): KadSimSummary['table'] {
  let sum = 0
  let min = Infinity
  let cached = 0
  for (const p of peers) {
    const s = p.node.table.size
    sum += s
    min = Math.min(min, s)
    cached += p.node.table.cachedCount
  }
  return { contactsMean: Math.round((sum / peers.length) * 10) / 10, contactsMin: min, cachedMean: Math.round((cached / peers.length) * 10) / 10 }
}

/** One line per result, for the console. */
export function formatSummary(s: KadSimSummary): string {
  const lines = [`kad sim: ${s.nodes} nodes, k=${s.k}, alpha=${s.alpha}, seed ${s.seed}; build ${s.build.messages} messages (${s.build.messagesPerJoin}/join), ${Math.round(s.build.virtualMs / 1000)} s virtual; table ${s.table.contactsMean} contacts (min ${s.table.contactsMin}) + ${s.table.cachedMean} cached`]
  for (const r of s.results) {
    lines.push(`${r.name.padEnd(36)} d=${r.paths}  success ${(r.successRate * 100).toFixed(2).padStart(6)} % (${r.succeeded}/${r.lookups})  hops median ${r.hops.median} p95 ${r.hops.p95} max ${r.hops.max}  requests mean ${r.requests.mean} p95 ${r.requests.p95}  messages ${r.messagesPerLookup}`)
  }
  return lines.join('\n')
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const nodes = Number(process.argv[2] ?? 1_000)
  const t = performance.now()
  const s = await runKadSim({ nodes })
  console.log(formatSummary(s))
  console.log(`wall ${((performance.now() - t) / 1000).toFixed(1)} s`)
}
