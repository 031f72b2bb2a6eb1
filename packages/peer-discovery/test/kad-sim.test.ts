/**
 * The Kademlia simulation at CI size (the full 10,000-node run is `pnpm sim` / bench/dht-sim.ts).
 * Asserts the DHT goals that hold at this size: every lookup succeeds without churn with a median
 * of at most 4 hops, >= 99 % succeed with 20 % churn, and >= 99 % with 20 % malicious nodes over
 * disjoint paths. And the same seed gives the same numbers.
 */
import { describe, expect, it } from 'vitest'
import { formatSummary, runKadSim, type KadSimSummary, type LookupStats } from '../sim/kad-sim.js'

const NODES = Number(process.env.KAD_SIM_NODES ?? 1_000)

function find(s: KadSimSummary, name: string, paths: number): LookupStats {
  const r = s.results.find((x) => x.name === name && x.paths === paths)
  if (r === undefined) throw new Error(`no result ${name} d=${paths}`)
  return r
}

describe(`Kademlia simulation (${NODES} nodes)`, () => {
  it('meets the lookup goals without churn, with 20 % churn and with 20 % malicious nodes', async () => {
    const s = await runKadSim({ seed: 42, nodes: NODES, lookups: 300, closestLookups: 50, providerLookups: 100 })
    console.log(formatSummary(s))
    const plain = find(s, 'no churn: node lookup', 4)
    expect(plain.successRate).toBe(1)
    expect(plain.hops.median).toBeLessThanOrEqual(4)
    expect(find(s, 'no churn: node lookup', 1).successRate).toBe(1)
    expect(find(s, 'no churn: closest-node lookup', 4).successRate).toBe(1)
    expect(find(s, 'no churn: provider lookup', 4).successRate).toBe(1)
    const churn = find(s, 'churn 20 %: node lookup', 4)
    expect(churn.lookups).toBe(300)
    expect(churn.successRate).toBeGreaterThanOrEqual(0.99)
    expect(s.churn).toEqual({ left: Math.round(NODES * 0.2), joined: Math.round(NODES * 0.2) })
    const bad = find(s, 'malicious 20 %: node lookup', 4)
    expect(bad.successRate).toBeGreaterThanOrEqual(0.99)
    expect(find(s, 'malicious 20 %: provider lookup', 4).successRate).toBeGreaterThanOrEqual(0.99)
    expect(s.malicious!.drop + s.malicious!.lie).toBe(Math.round(NODES * 0.2))
    // bounded: no table beyond its buckets, lookups bounded by the per-path cap
    expect(s.table.contactsMean).toBeLessThanOrEqual(20 * 256)
    expect(bad.requests.max).toBeLessThanOrEqual(4 * 10 * 20)
  }, 300_000)

  it('is deterministic: the same seed gives the same summary', async () => {
    const init = { seed: 7, nodes: 150, lookups: 40, closestLookups: 10, providerKeys: 4, providerLookups: 20, churnPhaseMs: 60_000 }
    const a = await runKadSim(init)
    const b = await runKadSim(init)
    expect(b).toEqual(a)
    const c = await runKadSim({ ...init, seed: 8, scenarios: ['none'] })
    expect(c.build.messages).not.toBe(a.build.messages)
  }, 120_000)
})
