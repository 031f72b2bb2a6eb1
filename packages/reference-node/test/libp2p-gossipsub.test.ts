/**
 * `libp2p.gossipsub` on nodes: the `libp2pGossipsub()` service connects the host's gossipsub to the
 * router. Three nodes: a - b over KLP, b - c over libp2p only (no KLP link): c gets a's broadcast by
 * gossipsub, every node handles it exactly once, and a forged one published on the topic is refused
 * and counted by the router.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { generateIdentity } from '@kos-mesh/did-security'
import { KLPMessageType } from '@kos-mesh/interface'
import { createMessage, encodeMessage, signMessage } from '@kos-mesh/klp-codec'
import { KOS_BROADCAST_TOPIC, type Libp2pTransportApi } from '@kos-mesh/transport-libp2p'
import { createNode, libp2p, type KosMeshNode } from '../src/index.js'
import { libp2pInit } from '../src/config.js'
import { libp2pGossipsub, type Libp2pGossipsubNodeService } from '../src/libp2p-services.js'

const nodes: KosMeshNode[] = []
afterEach(async () => {
  await Promise.allSettled(nodes.splice(0).map((n) => n.stop()))
})

async function until(what: string, cond: () => boolean): Promise<void> {
  // bounded by the test timeout; polls, no timing assertion
  while (!cond()) await new Promise((r) => setTimeout(r, 25))
  expect(cond(), what).toBe(true)
}

async function gossipNode(name: string): Promise<{ node: KosMeshNode; transport: () => Libp2pTransportApi }> {
  let t: Libp2pTransportApi | undefined
  const factory = libp2p(libp2pInit({ listen: [], gossipsub: true, autonat: false, dcutr: false, relay: { client: false } }))
  const node = createNode({
    authority: `${name}.mesh.kai`,
    transports: [(c) => (t = factory(c) as Libp2pTransportApi)],
    listen: ['libp2p:///ip4/127.0.0.1/tcp/0'],
    services: { libp2pGossipsub: libp2pGossipsub() },
  })
  nodes.push(node)
  await node.start()
  return { node, transport: () => t! }
}

const pubsubOf = (t: Libp2pTransportApi): { publish(topic: string, data: Uint8Array): Promise<unknown>; getSubscribers(topic: string): unknown[] } =>
  (t.libp2p!.services as unknown as Record<string, { publish(topic: string, data: Uint8Array): Promise<unknown>; getSubscribers(topic: string): unknown[] }>).pubsub!

describe('libp2p.gossipsub on nodes', () => {
  it('a broadcast reaches a node that has no KLP link, and every node handles it once', async () => {
    const a = await gossipNode('a')
    const b = await gossipNode('b')
    const c = await gossipNode('c')
    await a.node.connect(b.node.addrs()[0]!)
    // b - c: a libp2p connection (gossipsub runs on it), no KLP link
    await c.transport().libp2p!.dial(b.transport().libp2p!.getMultiaddrs())
    await until('gossipsub subscriptions', () => pubsubOf(b.transport()).getSubscribers(KOS_BROADCAST_TOPIC).length === 2)
    expect(c.node.router.peers()).toHaveLength(0)

    const sent = await a.node.mesh.broadcast({ hello: 'over gossipsub' })
    const got = (n: KosMeshNode): number => n.mesh.broadcasts().filter((x) => x.message_id === sent.message_id).length
    await until('b and c received it', () => got(b.node) === 1 && got(c.node) === 1)
    expect(c.node.mesh.broadcasts().find((x) => x.message_id === sent.message_id)).toMatchObject({ data: { hello: 'over gossipsub' }, from: a.node.did })
    // b had it by KLP and by gossipsub: once
    await until('b refused the second copy as a replay', () => ((b.node.router.metrics().rejects as Record<string, number>).replay ?? 0) >= 1)
    expect(got(b.node)).toBe(1)
    const svc = (b.node.service('libp2pGossipsub') as Libp2pGossipsubNodeService)
    expect(svc.bridge.stats.delivered).toBeGreaterThanOrEqual(1)

    // a forgery published raw on the topic by c: refused by b (validator and router), never handled
    const far = generateIdentity()
    const mallory = generateIdentity()
    const forger = { algorithm: far.signer.algorithm, keyId: far.signer.keyId, publicKey: far.signer.publicKey, sign: (x: Uint8Array) => mallory.signer.sign(x) }
    const forged = await signMessage(createMessage({ type: KLPMessageType.BROADCAST_ANNOUNCE, source: 'klp://far.mesh.kai/', target: 'klp://far.mesh.kai/broadcast', data: 'forged' }), forger)
    await pubsubOf(c.transport()).publish(KOS_BROADCAST_TOPIC, encodeMessage(forged))
    await until('b counted the forgery', () => (b.node.router.metrics().rejects as Record<string, number>).invalid_signature === 1)
    expect(b.node.mesh.broadcasts().some((x) => x.message_id === forged.metadata.message_id)).toBe(false)
  })
})
