import { agents, echoAgent, mathAgent, taskService } from '../src/index.js' // in your code: '@kos-mesh/agents'
import { createTestnet } from '@kos-mesh/klp-router/testnet'

const net = await createTestnet(2) // two started routers on the in-process memory transport
const worker = net.nodes[0]!
const client = net.nodes[1]!

// the worker hosts agents; its task service answers TASK_REQUEST with the best one
const registry = agents({ agents: [mathAgent(), echoAgent()] })({ nodeInfo: worker })
const serving = taskService({ taskTimeoutMs: 5_000 })({ router: worker.router, agents: registry })
serving.start()

// the client hosts none; it only sends tasks
const asking = taskService()({ router: client.router, agents: agents()() })
const answer = await asking.send(`klp://${worker.authority}/agents/math`, { capability: 'math', input: '6 * 7' })
console.log(answer.result) // { expression: '6 * 7', value: 42 }

try {
  // by DID: the answer must be signed by that DID
  await asking.send(worker.did, { capability: 'translate', input: 'hola' })
} catch (err) {
  console.log((err as { reason?: string }).reason) // 'no_eligible_agents'
}

serving.stop()
await net.stop()
