import { afterEach, describe, expect, it } from 'vitest'
import { KLPMessageType, ProcessingStatus, type MessageRouter } from '@kos-mesh/interface'
import { network, startNode, stopAll, type TestNode } from './testnet.js'

let nodes: TestNode[] = []
afterEach(async () => {
  await stopAll(nodes)
  nodes = []
})

describe('discovery on the MessageRouter contract', () => {
  it('takes only /peer-discovery of PEER_DISCOVERY: another service can handle the same type at its own path', async () => {
    const net = network()
    const seed = await startNode(net, 'pseed', { targetPeers: 0 })
    const a = await startNode(net, 'pa', { targetPeers: 0 })
    nodes.push(seed, a)
    const router: MessageRouter = seed.router
    const seen: string[] = []
    router.handle(KLPMessageType.PEER_DISCOVERY, async (msg) => {
      seen.push(msg.target.path)
      return { status: ProcessingStatus.PROCESSED, response: await router.createResponse(msg, { other: true }) }
    }, { path: '/dht' })
    const r = await a.discovery.bootstrap([{ address: 'memory://pseed', did: seed.identity.did }])
    expect(r.seeds_reached).toBe(1)
    expect(seed.discovery.registry.has(a.identity.did)).toBe(true)
    const res = await a.router.request({ type: KLPMessageType.PEER_DISCOVERY, target: 'klp://pseed.mesh/dht/find', data: { q: 1 } })
    expect(res.payload.data).toEqual({ other: true })
    expect(seen).toEqual(['/dht/find'])
    // stopping discovery leaves the other service's handler in place
    await seed.discovery.stop()
    const again = await a.router.request({ type: KLPMessageType.PEER_DISCOVERY, target: 'klp://pseed.mesh/dht', data: { q: 2 } })
    expect(again.payload.data).toEqual({ other: true })
  })
})
