import { createNode, memory, textStatsAgent, mathAgent, defineService } from '../src/index.js' // in your code: '@kos-mesh/reference-node'
import { createMemoryNetwork } from '@kos-mesh/transport-memory'

const network = createMemoryNetwork() // in-process; use tcp() from @kos-mesh/transport-tcp for sockets

// a service declares what it needs; a missing component fails at createNode(), not later
const greeter = defineService(['router', 'logger'], ({ router, logger }) => ({
  start: () => logger.info('greeter up', { authority: router.authority }),
  stop: () => {},
}))

const worker = createNode({
  authority: 'worker.mesh.kai',
  transports: [memory({ network })],
  listen: ['memory://worker'],
  agents: [textStatsAgent(), mathAgent()],
  services: { greeter },
})
await worker.start() // identity, storage, router, discovery, tasks: no I/O before this

const client = createNode({
  authority: 'client.mesh.kai',
  transports: [memory({ network })],
  listen: ['memory://client'],
  seeds: worker.addrs(), // 'memory://worker/did:key:z6Mk...'
})
await client.start() // bootstraps from the seed: peer table, signed node records

const answer = await client.task('klp://worker.mesh.kai/agents/math', { capability: 'math', input: '6 * 7' })
console.log(answer.result) // { expression: '6 * 7', value: 42 } (keys in canonical CBOR order)

try {
  await client.task('klp://worker.mesh.kai', { capability: 'translate', input: 'hola' })
} catch (err) {
  console.log((err as { reason?: string }).reason) // 'no_eligible_agents'
}

console.log(client.peers().map((p) => p.authority)) // [ 'worker.mesh.kai' ]
await client.stop()
await worker.stop()
