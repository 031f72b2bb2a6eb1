/**
 * `relayBroadcast`: a broadcast this node accepted (or made) sent to one more neighbour later, the
 * same signed bytes with the hop count raised, for a gossip service's lazy repair. Virtual time.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { KLPMessageType, ProcessingStatus, type BroadcastContext, type KLPMessage } from '@kos-mesh/interface'
import { encodeMessage } from '@kos-mesh/klp-codec'
import { createTestnet, type Testnet, type TestnetOptions } from '../src/testnet.js'

let net: Testnet | undefined
afterEach(async () => {
  await net?.stop()
  net = undefined
})

type Node = Testnet['nodes'][number]

interface Seen {
  delivered: KLPMessage[]
  relayed: Array<{ msg: KLPMessage; ctx: BroadcastContext }>
  rejected: Array<{ reason: string; messageId?: string; fromPeer: string }>
}

/** Every node: a strategy that relays to nobody (the test relays by hand), a handler, reject log. */
async function line(n: number, options: TestnetOptions = {}): Promise<{ net: Testnet; seen: Seen[] }> {
  const t = await createTestnet(n, { time: 'virtual', seed: 3, topology: 'line', link: { latencyMs: 5 }, ...options })
  const seen = t.nodes.map((node) => {
    const s: Seen = { delivered: [], relayed: [], rejected: [] }
    node.router.setBroadcastStrategy({ relay: (msg, ctx) => { s.relayed.push({ msg, ctx }); return [] } })
    node.router.handle(KLPMessageType.BROADCAST_ANNOUNCE, (msg) => { s.delivered.push(msg); return { status: ProcessingStatus.PROCESSED } })
    node.router.addEventListener('message:rejected', (e) => s.rejected.push(e.detail))
    return s
  })
  return { net: t, seen }
}

const settle = (t: Testnet): Promise<void> => t.network.runFor(200, { stepMs: 5 }).then(() => undefined)

describe('relayBroadcast', () => {
  it('sends a held broadcast to one neighbour: same signed bytes, hop count raised, relayed on from there', async () => {
    const r = await line(3)
    net = r.net
    const [a, b, c] = net.nodes as [Node, Node, Node]
    const msg = await net.drive(a.router.broadcast({ data: { n: 1 } }))
    await settle(net)
    // the strategy relays to nobody: nobody got it, but a's strategy heard of its own broadcast
    expect(r.seen[1]!.delivered).toHaveLength(0)
    expect(r.seen[0]!.relayed.map((x) => x.ctx.fromPeer)).toEqual([undefined])
    await net.drive(a.router.relayBroadcast(b.did, msg))
    await settle(net)
    expect(r.seen[1]!.delivered).toHaveLength(1)
    const atB = r.seen[1]!.delivered[0]!
    expect(encodeMessage(atB)).toEqual(encodeMessage(msg))
    expect(r.seen[1]!.relayed[0]!.ctx).toMatchObject({ fromPeer: a.did, hops: 0 })
    // b holds what it accepted and relays it on with the hop count raised
    await net.drive(b.router.relayBroadcast(c.did, atB))
    await settle(net)
    expect(r.seen[2]!.delivered.map((m) => m.metadata.message_id)).toEqual([msg.metadata.message_id])
    expect(r.seen[2]!.relayed[0]!.ctx).toMatchObject({ fromPeer: b.did, hops: 1 })
    expect(a.router.metrics().forwarded).toBe(0) // its own broadcast is no forward
    expect(b.router.metrics().forwarded).toBe(1)
    // a second copy is a duplicate: rejected as a replay, with its id and the neighbour it came from
    await net.drive(a.router.relayBroadcast(b.did, msg))
    await settle(net)
    expect(r.seen[1]!.delivered).toHaveLength(1)
    expect(r.seen[1]!.rejected).toEqual([{ reason: 'replay', messageId: msg.metadata.message_id, fromPeer: a.did }])
  })

  it('rejects with typed errors: not held, not a broadcast, not a neighbour, another signer', async () => {
    const r = await line(3)
    net = r.net
    const [a, b, c] = net.nodes as [Node, Node, Node]
    const msg = await net.drive(a.router.broadcast({ data: 'x' }))
    await expect(a.router.relayBroadcast(c.did, msg)).rejects.toMatchObject({ name: 'NoRouteError' })
    await expect(b.router.relayBroadcast(c.did, msg)).rejects.toMatchObject({ name: 'UnknownBroadcastError', code: 'ERR_UNKNOWN_BROADCAST' })
    const req = { ...msg, type: KLPMessageType.TASK_REQUEST } as KLPMessage
    await expect(a.router.relayBroadcast(b.did, req)).rejects.toMatchObject({ name: 'InvalidParametersError' })
    const forged = { ...msg, signer: b.identity.signer.keyId } as KLPMessage
    await expect(a.router.relayBroadcast(b.did, forged)).rejects.toMatchObject({ name: 'UnknownBroadcastError' })
  })

  it('holds nothing under flooding (the default, or after the strategy is removed)', async () => {
    const r = await line(2)
    net = r.net
    const [a, b] = net.nodes as [Node, Node]
    const held = await net.drive(a.router.broadcast({ data: 1 }))
    a.router.setBroadcastStrategy(undefined)
    await expect(a.router.relayBroadcast(b.did, held)).rejects.toMatchObject({ name: 'UnknownBroadcastError' })
    const flooded = await net.drive(a.router.broadcast({ data: 2 }))
    await settle(net)
    expect(r.seen[1]!.delivered).toHaveLength(1) // flooding again
    await expect(a.router.relayBroadcast(b.did, flooded)).rejects.toMatchObject({ name: 'UnknownBroadcastError' })
  })

  it('is bounded: the oldest held broadcast is evicted, and an expired one is dropped', async () => {
    const r = await line(2, { router: { broadcastCacheSize: 2, clockSkewMs: 0 } })
    net = r.net
    const [a, b] = net.nodes as [Node, Node]
    const m1 = await net.drive(a.router.broadcast({ data: 1 }))
    const m2 = await net.drive(a.router.broadcast({ data: 2, ttl: 1 }))
    const m3 = await net.drive(a.router.broadcast({ data: 3 }))
    await expect(a.router.relayBroadcast(b.did, m1)).rejects.toMatchObject({ name: 'UnknownBroadcastError' })
    await net.network.runFor(1_100, { stepMs: 50 })
    await expect(a.router.relayBroadcast(b.did, m2)).rejects.toMatchObject({ name: 'UnknownBroadcastError' })
    await net.drive(a.router.relayBroadcast(b.did, m3))
    await settle(net)
    expect(r.seen[1]!.delivered.map((m) => m.payload.data)).toEqual([3])
  })

  it('past the hop limit: the strategy still hears of the broadcast, but it is neither relayed nor held', async () => {
    const r = await line(3, { router: { hopLimit: 1 }, waitForRoutes: false })
    net = r.net
    const [a, b, c] = net.nodes as [Node, Node, Node]
    // a relays to b (hop 0), b to c (hop 1 = the limit); c could only relay at hop 2
    for (const [i, next] of [[0, b.did], [1, c.did], [2, b.did]] as const) {
      net.nodes[i]!.router.setBroadcastStrategy({ relay: (msg, ctx) => { r.seen[i]!.relayed.push({ msg, ctx }); return [next] } })
    }
    const msg = await net.drive(a.router.broadcast({ data: 'far' }))
    await settle(net)
    expect(r.seen[2]!.delivered).toHaveLength(1)
    expect(r.seen[2]!.relayed.map((x) => x.ctx.hops)).toEqual([1])
    expect(c.router.metrics().forwarded).toBe(0)
    expect(r.seen[1]!.rejected).toEqual([])
    await expect(c.router.relayBroadcast(b.did, msg)).rejects.toMatchObject({ name: 'UnknownBroadcastError' })
  })
})
