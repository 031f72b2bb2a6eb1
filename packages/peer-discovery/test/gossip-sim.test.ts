import { describe, expect, it } from 'vitest'
import { runGossipSim, type GossipSimSummary } from '../sim/gossip-sim.js'

// The gossip goal (DESIGN.md section 4) at CI size: 5 % loss on every message, 100 ms links.
// Virtual time only: the assertions are about delivery, virtual latency and counts, never wall time.

const CI = { nodes: 500, broadcasts: 20, seed: 7, latencyMs: 100, jitterMs: 10, loss: 0.05 }

function checkGoal(s: GossipSimSummary): void {
  expect(s.isolated).toBe(0)
  expect(s.connected).toBe(s.live)
  expect(s.gossip.allDelivered).toBe(true)
  expect(s.gossip.minDelivery).toBe(1)
  expect(s.gossip.latencyP95).toBeLessThanOrEqual(650)
  // duplicates per node bounded by the mesh degree (the active view size)
  expect(s.gossip.duplicatesOverMeshDegreeMax).toBeLessThanOrEqual(0)
  expect(s.givenUp).toBe(0)
}

describe('gossip simulation (CI size)', () => {
  it('500 nodes, 5 % loss: every broadcast reaches every node, p95 <= 650 ms, duplicates <= degree, fewer payloads than flooding; deterministic', async () => {
    const a = await runGossipSim(CI)
    checkGoal(a)
    expect(a.flood).toBeDefined()
    expect(a.flood!.allDelivered).toBe(true)
    expect(a.gossip.payloadMsgsPerBroadcast).toBeLessThan(0.9 * a.flood!.payloadMsgsPerBroadcast)
    expect(a.gossip.duplicatesMean).toBeLessThan(a.flood!.duplicatesMean)
    // memory stays bounded: views + cache + seen ids
    expect(a.memory.entriesMean).toBeLessThan(200)
    const b = await runGossipSim(CI)
    expect(b).toEqual(a)
  })

  it('10 % of the nodes crash before the broadcasts: the views repair and delivery stays complete', async () => {
    const s = await runGossipSim({ ...CI, crashFraction: 0.1, flood: false, seed: 11 })
    expect(s.live).toBe(450)
    checkGoal(s)
    expect(s.degree.min).toBeGreaterThanOrEqual(3)
  })
})
