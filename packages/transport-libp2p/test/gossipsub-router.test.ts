/**
 * gossipsub connected to the router's inbound side: 4 real libp2p hosts, each running KLP over the
 * libp2p transport with a klp-router and a gossipsub bridge attached to it. A and B share a KLP link
 * (and gossipsub); C and D are reached by gossipsub only (B - C - D). Every node's handler gets each
 * broadcast exactly once whichever path it came by; forged, replayed, expired and revoked ones are
 * refused and counted among the router's rejects.
 */
// the package entry first: it installs the Promise.withResolvers polyfill the libp2p code below needs
import { KOS_BROADCAST_TOPIC, gossipsubBroadcast, libp2pTransport, type GossipsubBroadcast, type Libp2pTransportApi } from '../src/index.js'
import { createSignatureVerifier, generateIdentity, type Identity } from '@kos-mesh/did-security'
import { KLPMessageType, ProcessingStatus, type KLPMessage, type TrustEngine } from '@kos-mesh/interface'
import { createMessage, encodeMessage, signMessage } from '@kos-mesh/klp-codec'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRouter, type Router } from '@kos-mesh/klp-router'

const signatureVerifier = createSignatureVerifier()
const revoked = new Set<string>()
const trustEngine: TrustEngine = {
  check: () => ({ passed: true, score: 0, endorsements: 0 }),
  isRevoked: (did) => revoked.has(did),
}

interface Node {
  name: string
  identity: Identity
  transport: Libp2pTransportApi
  router: Router
  bridge: GossipsubBroadcast
  detach: () => void
  delivered: KLPMessage[]
  rejects: string[]
}

async function node(name: string): Promise<Node> {
  const identity = generateIdentity()
  const transport = libp2pTransport({ libp2pOptions: { services: { identify: identify(), ping: ping(), pubsub: gossipsub() } } })({ identity })
  const router = await createRouter({ identity, signatureVerifier, transports: [transport], trustEngine, authority: `${name}.mesh.kai`, listen: ['libp2p:///ip4/127.0.0.1/tcp/0'] })
  const bridge = gossipsubBroadcast()({ libp2p: transport.libp2p!, signatureVerifier, isRevoked: (did) => revoked.has(did) })
  bridge.start()
  const detach = bridge.attach(router)
  const n: Node = { name, identity, transport, router, bridge, detach, delivered: [], rejects: [] }
  router.handle(KLPMessageType.BROADCAST_ANNOUNCE, (msg) => { n.delivered.push(msg); return { status: ProcessingStatus.PROCESSED } })
  router.addEventListener('message:rejected', (e) => { n.rejects.push(e.detail.reason) })
  return n
}

async function until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

const pubsub = (n: Node): GossipSub => (n.transport.libp2p!.services as { pubsub: GossipSub }).pubsub
const ids = (n: Node): string[] => n.delivered.map((m) => m.metadata.message_id)
const count = (n: Node, reason: string): number => n.rejects.filter((r) => r === reason).length

async function signed(by: Identity, source: string, data: unknown, timestamp = Date.now(), ttl = 300): Promise<KLPMessage> {
  return signMessage(createMessage({ type: KLPMessageType.BROADCAST_ANNOUNCE, source: `klp://${source}/`, target: `klp://${source}/broadcast`, data: data as never, timestamp, ttl }), by.signer)
}

describe('gossipsub broadcasts through the router (4 libp2p hosts)', () => {
  const nodes: Node[] = []
  let a: Node, b: Node, c: Node, d: Node

  beforeAll(async () => {
    for (const name of ['a', 'b', 'c', 'd']) nodes.push(await node(name))
    ;[a, b, c, d] = nodes as [Node, Node, Node, Node]
    // a - b: a KLP link (the libp2p connection carries gossipsub too); b - c - d: libp2p only
    await a.router.dial(b.router.addrs()[0]!, { remotePeer: b.identity.did })
    await c.transport.libp2p!.dial(b.transport.libp2p!.getMultiaddrs())
    await d.transport.libp2p!.dial(c.transport.libp2p!.getMultiaddrs())
    const meshOf = (n: Node): number => (pubsub(n) as unknown as { getMeshPeers(t: string): unknown[] }).getMeshPeers(KOS_BROADCAST_TOPIC).length
    await until(() => meshOf(a) === 1 && meshOf(b) === 2 && meshOf(c) === 2 && meshOf(d) === 1, 'gossipsub meshes')
  }, 60_000)

  afterAll(async () => {
    for (const n of nodes) {
      n.bridge.stop()
      await n.router.stop()
      await n.transport.close()
    }
  })

  it('delivers each broadcast exactly once at every node, by KLP and/or gossipsub', async () => {
    const fromA = await a.router.broadcast({ data: { hello: 'from a' } })
    await until(() => [b, c, d].every((n) => ids(n).includes(fromA.metadata.message_id)), 'a broadcast everywhere')
    const fromD = await d.router.broadcast({ data: { hello: 'from d' } })
    await until(() => [a, b, c].every((n) => ids(n).includes(fromD.metadata.message_id)), 'd broadcast everywhere')
    // b got a's broadcast by both paths: the later copy is a replay; give it time to arrive
    await until(() => count(b, 'replay') >= 1, 'the second copy at b')
    await new Promise((r) => setTimeout(r, 300))
    for (const n of [b, c, d]) expect(ids(n).filter((x) => x === fromA.metadata.message_id)).toHaveLength(1)
    for (const n of [a, b, c]) expect(ids(n).filter((x) => x === fromD.metadata.message_id)).toHaveLength(1)
    expect(a.delivered.map((m) => m.metadata.message_id)).toEqual([fromD.metadata.message_id])
    // c and d have no KLP link: it came by gossipsub; neither router relayed anything itself
    expect(c.router.peers()).toHaveLength(0)
    expect(c.router.metrics().forwarded).toBe(0)
    expect(b.router.metrics().forwarded).toBe(0)
    // b took d's broadcast from gossipsub and did not flood it to a over KLP: a got it by gossipsub only
    expect(count(a, 'replay')).toBe(0)
  })

  it('refuses forged, replayed, expired and revoked broadcasts and counts them', async () => {
    const before = nodes.map((n) => n.delivered.length)
    const outsider = generateIdentity()
    const mallory = generateIdentity()
    // forged: signed by mallory in the outsider's name, published raw on the topic by c
    const forger = { algorithm: outsider.signer.algorithm, keyId: outsider.signer.keyId, publicKey: outsider.signer.publicKey, sign: (x: Uint8Array) => mallory.signer.sign(x) }
    const forged = await signMessage(createMessage({ type: KLPMessageType.BROADCAST_ANNOUNCE, source: 'klp://far.mesh.kai/', target: 'klp://far.mesh.kai/broadcast', data: 'forged', timestamp: Date.now() }), forger)
    await pubsub(c).publish(KOS_BROADCAST_TOPIC, encodeMessage(forged))
    // expired: an hour old with a minute of ttl
    const expired = await signed(outsider, 'far.mesh.kai', 'old', Date.now() - 3_600_000, 60)
    await pubsub(c).publish(KOS_BROADCAST_TOPIC, encodeMessage(expired))
    await until(() => count(b, 'invalid_signature') === 1 && count(d, 'invalid_signature') === 1 && count(b, 'expired') === 1 && count(d, 'expired') === 1, 'forged and expired refused at c\'s neighbours')
    // replayed: a's first broadcast published again by d (a new gossipsub message, the same KLP message)
    const first = b.delivered[0]!
    const replays = nodes.map((n) => count(n, 'replay'))
    await pubsub(d).publish(KOS_BROADCAST_TOPIC, encodeMessage(first))
    await until(() => count(c, 'replay') > replays[2]! && count(b, 'replay') > replays[1]!, 'the replay refused')
    // revoked: the signer is revoked at every node
    const rogue = generateIdentity()
    revoked.add(rogue.did)
    await pubsub(d).publish(KOS_BROADCAST_TOPIC, encodeMessage(await signed(rogue, 'rogue.mesh.kai', 'revoked')))
    // refused by c's topic validator (isRevoked), counted by c's router, and not forwarded to b
    await until(() => count(c, 'revoked') >= 1, 'the revoked signer refused')
    expect(c.bridge.stats.rejected.RevokedSignerError).toBe(1)
    await new Promise((r) => setTimeout(r, 300))
    expect(count(b, 'revoked')).toBe(0)
    expect(nodes.map((n) => n.delivered.length)).toEqual(before)
    expect((b.router.metrics().rejects as Record<string, number>).invalid_signature).toBe(1)
    expect(b.bridge.stats.rejected.InvalidSignatureError).toBe(1)
    // the forgery was refused by gossipsub's validator at b: not forwarded to a
    expect(count(a, 'invalid_signature')).toBe(0)
  })

  it('wraps a strategy installed after attach (a gossip service starting later); detach unwraps it', async () => {
    const heard: Array<string | undefined> = []
    // e.g. peer-discovery's gossip service: relays over KLP to nobody, but hears of every broadcast
    a.router.setBroadcastStrategy({ relay: (_m, ctx) => { heard.push(ctx.fromPeer); return [] } })
    const m = await a.router.broadcast({ data: 'wrapped' })
    // b's KLP copy is gone (the strategy relays to nobody): every node got it by gossipsub
    await until(() => [b, c, d].every((n) => ids(n).includes(m.metadata.message_id)), 'the broadcast by gossipsub only')
    expect(heard).toEqual([undefined])
    a.detach()
    expect(() => a.bridge.attach({ setBroadcastStrategy: () => {} } as never)).toThrow(/deliverBroadcast/)
    const published = a.bridge.stats.published
    const m2 = await a.router.broadcast({ data: 'detached' })
    await new Promise((r) => setTimeout(r, 300))
    // detached: the inner strategy again, unwrapped; nothing published to gossipsub, nobody got it
    expect(heard).toEqual([undefined, undefined])
    expect(a.bridge.stats.published).toBe(published)
    expect([b, c, d].some((n) => ids(n).includes(m2.metadata.message_id))).toBe(false)
  })
})
