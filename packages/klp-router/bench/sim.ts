/**
 * `pnpm sim`: full routers in virtual time (test/sim-scenario.ts): SIM_NODES (default 1,000)
 * routers form a mesh over 20 ms links, broadcast, then run SIM_TRAFFIC_S (default 60) seconds of
 * request/response between seeded random pairs. Reports simulated against wall time for the whole
 * run and for the mesh formation alone, and checks the event-log hash of a second run with the
 * same seed. Writes bench-results/klp-router-sim.json.
 */
import { report, row } from '../../../scripts/bench-util.js'
import { runScenario } from '../test/sim-scenario.js'

const nodes = Number(process.env.SIM_NODES ?? 1000)
const traffic = Number(process.env.SIM_TRAFFIC_S ?? 60)
const a = await runScenario({ nodes, seed: 7, trafficSeconds: traffic })
const b = await runScenario({ nodes, seed: 7, trafficSeconds: traffic })
if (a.hash !== b.hash) throw new Error(`expected the same event log for the same seed, got ${a.hash} and ${b.hash}`)
const rows = [
  row(`${nodes} routers, whole scenario: simulated time per wall time`, 'x', a.simulatedMs / a.wallMs, undefined, { higherIsBetter: true, target: '> 1 (faster than real time)' }),
  row(`${nodes} routers, mesh formation only (every hello carries the route table)`, 'x', a.formationSimMs / a.formationWallMs, undefined, { higherIsBetter: true }),
  row(`${nodes} routers, steady traffic only (${a.requests} requests)`, 'x', (a.simulatedMs - a.formationSimMs) / Math.max(1, a.wallMs - a.formationWallMs), undefined, { higherIsBetter: true }),
  row('events logged', 'count', a.events),
  row('requests answered', 'count', a.answered, { name: 'requests', value: a.requests }, { higherIsBetter: true }),
  row('broadcast deliveries', 'count', a.delivered, { name: 'other nodes', value: a.expected }, { higherIsBetter: true }),
]
report('klp-router-sim', rows, { nodes, trafficSeconds: traffic, seed: 7, hash: a.hash, sameHashSecondRun: true, simulatedMs: a.simulatedMs, wallMs: Math.round(a.wallMs) })
