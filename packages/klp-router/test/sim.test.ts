/**
 * Full routers in virtual time (issue 9): a mesh of routers on the memory transport's simulator,
 * a scenario of broadcasts and requests, and an event log hashed. The same seed gives the same
 * log, byte for byte; the simulation runs faster than real time (the ratio is printed). `pnpm sim`
 * runs the 1,000-router version with figures (bench/sim.ts); CI runs SIM_NODES routers (default 1,000).
 */
import { describe, expect, it } from 'vitest'
import { runScenario } from './sim-scenario.js'

const NODES = Number(process.env.SIM_NODES ?? 1000)

describe(`${NODES} full routers in virtual time`, () => {
  it('the same seed gives the same event log (hash), another seed another one; faster than real time', async () => {
    const a = await runScenario({ nodes: NODES, seed: 7 })
    const b = await runScenario({ nodes: NODES, seed: 7 })
    console.log(`[sim] ${NODES} routers: ${a.events} events, ${(a.simulatedMs / 1000).toFixed(1)} s simulated in ${(a.wallMs / 1000).toFixed(1)} s wall (x${(a.simulatedMs / a.wallMs).toFixed(1)}; mesh formation ${(a.formationSimMs / 1000).toFixed(0)} s in ${(a.formationWallMs / 1000).toFixed(1)} s, x${(a.formationSimMs / a.formationWallMs).toFixed(2)}); delivered ${a.delivered}/${a.expected} broadcasts, ${a.answered}/${a.requests} requests; hash ${a.hash.slice(0, 16)}`)
    expect(a.events).toBeGreaterThan(NODES)
    expect(b.hash).toBe(a.hash)
    expect(a.answered).toBe(a.requests)
    expect(a.delivered).toBe(a.expected)
    expect(a.simulatedMs).toBeGreaterThan(a.wallMs)
    const c = await runScenario({ nodes: Math.min(NODES, 100), seed: 8 })
    const d = await runScenario({ nodes: Math.min(NODES, 100), seed: 7 })
    expect(c.hash).not.toBe(d.hash)
  }, 600_000)
})
