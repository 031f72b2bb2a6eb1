/**
 * @kos-mesh/agent-migration benchmark: a MOVE of an agent with 10 MB of state (memory snapshot)
 * between two nodes over loopback TCP (klp-router + transport-tcp, both routers in this process),
 * end to end (preflight, bundle, checksum, fingerprint probes in the sandbox, signed request, bulk
 * transfer, full verification and the fingerprint re-run on the target, prepare, commit), against
 * the bare bulk transfer of the same bundle bytes between the same routers, interleaved round by
 * round in the same run. Writes bench-results/agent-migration.json.
 * Run: npx tsx bench/index.ts [rounds]
 */
import { randomBytes } from 'node:crypto'
import { AgentRegistry } from '@kos-mesh/agents'
import { createSignatureVerifier, generateIdentity } from '@kos-mesh/did-security'
import { KLPMessageType } from '@kos-mesh/interface'
import { bulkTransfer, createRouter, memorySink, memorySource } from '@kos-mesh/klp-router'
import { tcp } from '@kos-mesh/transport-tcp'
import { report, row } from '../../../scripts/bench-util.js'
import { agentMigration, memoryKeyValueStore } from '../src/index.js'

const SIZE = 10 * 1024 * 1024
const ROUNDS = Number(process.argv[2] ?? 7)

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

async function node(authority: string) {
  const identity = generateIdentity()
  const router = await createRouter({ authority, identity, signatureVerifier: createSignatureVerifier(), transports: [tcp()({ identity })], listen: ['tcp://127.0.0.1:0'] })
  const bulk = bulkTransfer({ type: KLPMessageType.AGENT_MIGRATION, maxBytes: 256 * 1024 * 1024 })({ router })
  bulk.start()
  const rawBulk = bulkTransfer({ type: KLPMessageType.AGENT_MIGRATION, path: '/.bulk-bare', channel: 0x0b02, maxBytes: 256 * 1024 * 1024 })({ router })
  rawBulk.start()
  const registry = new AgentRegistry(authority, identity.did)
  const svc = agentMigration({ prepareTimeoutMs: 120_000, policy: { maxMemoryBytes: 64 * 1024 * 1024 } })({ router, identity, store: memoryKeyValueStore(), registry, bulk })
  await svc.start()
  return { identity, router, bulk, rawBulk, svc, authority }
}

const a = await node('bench-a.mesh.kai')
const b = await node('bench-b.mesh.kai')
await a.router.dial(b.router.addrs()[0]!, { remotePeer: b.identity.did })
const state = new Uint8Array(randomBytes(SIZE))
await a.svc.create({
  agent_id: 'bench-agent', name: 'bench', code: 'function handle(i, s) { return { output: host.memorySize("state"), state: { n: (s.n || 0) + 1 } } }',
  capabilities: ['bench'], memory: [{ key: 'state', value: state }], data: { n: 0 }, probes: [1],
  permissions: { capabilities: ['memory'], required: ['memory'], tools: [], agents: [], memory_bytes: 8 * 1024 * 1024, cpu_budget: 10_000 },
})
const bundleBytes = SIZE + 4096 // the bare transfer moves a payload of the bundle's size
const payload = new Uint8Array(randomBytes(bundleBytes))

async function bare(from: typeof a, to: typeof b): Promise<number> {
  const t0 = performance.now()
  const offer = await from.rawBulk.offer(memorySource(payload), { to: to.identity.did })
  const sink = memorySink()
  await to.rawBulk.receive(from.authority, offer.id, { sink })
  await offer.cancel().catch(() => {})
  return performance.now() - t0
}

async function move(from: typeof a, to: typeof b): Promise<number> {
  const t0 = performance.now()
  const r = await from.svc.migrate('bench-agent', { type: 'move', to: to.identity.did, authority: to.authority })
  const ms = performance.now() - t0
  if (r.status !== 'completed') throw new Error(`expected a completed MOVE, got ${r.status}`)
  const out = await to.svc.run('bench-agent', null)
  if (out !== SIZE) throw new Error(`expected the agent to see ${SIZE} bytes of state on the target, got ${String(out)}`)
  return ms
}

const moves: number[] = []
const bares: number[] = []
const ratios: number[] = []
await bare(a, b) // warm-up: connections, JIT
let here = a
let there = b
for (let i = 0; i < ROUNDS; i++) {
  const base = await bare(here, there)
  const m = await move(here, there)
  bares.push(base)
  moves.push(m)
  ratios.push(m / base)
  console.log(`round ${i + 1}: MOVE ${m.toFixed(1)} ms, bare bulk ${base.toFixed(1)} ms, ratio ${(m / base).toFixed(2)}`)
  ;[here, there] = [there, here]
}
await a.svc.stop(); await b.svc.stop()
a.bulk.stop(); b.bulk.stop(); a.rawBulk.stop(); b.rawBulk.stop()
await a.router.stop(); await b.router.stop()

const bareName = 'bare bulk transfer of the same bytes, same routers, interleaved'
report('agent-migration', [
  row('MOVE of an agent with 10 MB of state over loopback TCP, end to end (median of rounds)', 'ms', median(moves), { name: bareName, value: median(bares) }, { higherIsBetter: false, target: '< 1000 ms' }),
  row('MOVE, fastest round', 'ms', Math.min(...moves), { name: bareName + ' (fastest)', value: Math.min(...bares) }, { higherIsBetter: false }),
  row('MOVE / bare transfer, median of per-round ratios', 'x', median(ratios), undefined, { higherIsBetter: false }),
], { rounds: ROUNDS, size: SIZE })
