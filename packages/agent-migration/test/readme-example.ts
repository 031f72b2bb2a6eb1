import { agentMigration } from '@kos-mesh/agent-migration'
import { AgentRegistry } from '@kos-mesh/agents'
import { KLPMessageType } from '@kos-mesh/interface'
import { bulkTransfer } from '@kos-mesh/klp-router'
import { createTestnet } from '@kos-mesh/klp-router/testnet'

// two connected nodes on the in-process memory transport
const net = await createTestnet(2)
const nodes = []
for (const n of net.nodes) {
  // live agents are registered here, so the node's task service can pick them
  const registry = new AgentRegistry(n.authority, n.did)
  // large bundles travel by bulk transfer, on the AGENT_MIGRATION message type
  const bulk = bulkTransfer({ type: KLPMessageType.AGENT_MIGRATION })({ router: n.router })
  bulk.start()
  const migration = agentMigration()({ router: n.router, identity: n.identity, registry, bulk })
  await migration.start()
  nodes.push({ did: n.did, registry, bulk, migration })
}
const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]]

// an agent is code (run in the QuickJS sandbox) plus state; this node owns it
await a.migration.create({
  agent_id: 'counter-1',
  name: 'counter',
  capabilities: ['count'],
  code: 'function handle(input, state) { const n = (state.n || 0) + 1; return { output: n, state: { n } } }',
  probes: [0],
  permissions: { capabilities: [], required: [], tools: [], agents: [], memory_bytes: 1 << 20, cpu_budget: 10_000 },
})
console.log(await a.migration.run('counter-1', null))

// MOVE: two-phase, exactly one live instance afterwards, the source fenced
const result = await a.migration.migrate('counter-1', { type: 'move', to: b.did })
console.log(result.status)
console.log(await b.migration.run('counter-1', null), b.registry.get('counter')?.id)
try {
  await a.migration.run('counter-1', null)
} catch (err) {
  console.log((err as Error).name)
}

for (const n of nodes) {
  await n.migration.stop()
  n.bulk.stop()
}
await net.stop()
