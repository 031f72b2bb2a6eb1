/**
 * `deliverBroadcast`: a broadcast that came by another path (a libp2p gossipsub topic) passes the
 * same checks as one from a connection and reaches the handler once, and the router never spreads
 * it further. Virtual time.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { generateIdentity, type Identity } from '@kos-mesh/did-security'
import { KLPMessageType, ProcessingStatus, VerificationLevel, type BroadcastContext, type KLPMessage, type TrustEngine } from '@kos-mesh/interface'
import { createMessage, encodeMessage, signMessage } from '@kos-mesh/klp-codec'
import { staticTrustEngine } from '@kos-mesh/trust'
import { createTestnet, type Testnet } from '../src/testnet.js'

let net: Testnet<TrustEngine> | undefined
afterEach(async () => {
  await net?.stop()
  net = undefined
})

type Node = Testnet<TrustEngine>['nodes'][number]

interface Seen {
  delivered: KLPMessage[]
  relayed: Array<{ msg: KLPMessage; ctx: BroadcastContext }>
  rejected: Array<{ reason: string; messageId?: string; fromPeer: string }>
}

const revoked = new Set<string>()

/** A line a - b - c; every node floods (the default) and logs deliveries and rejects. */
async function line(): Promise<{ net: Testnet<TrustEngine>; seen: Seen[] }> {
  revoked.clear()
  const t = await createTestnet<TrustEngine>(3, {
    time: 'virtual',
    seed: 5,
    topology: 'line',
    link: { latencyMs: 5 },
    trustEngine: () => Object.assign(staticTrustEngine(), { isRevoked: (did: string) => revoked.has(did) }),
  })
  const seen = t.nodes.map((node) => {
    const s: Seen = { delivered: [], relayed: [], rejected: [] }
    node.router.handle(KLPMessageType.BROADCAST_ANNOUNCE, (msg) => { s.delivered.push(msg); return { status: ProcessingStatus.PROCESSED } })
    node.router.addEventListener('message:rejected', (e) => s.rejected.push(e.detail))
    return s
  })
  return { net: t, seen }
}

const settle = (t: Testnet<TrustEngine>): Promise<void> => t.network.runFor(300, { stepMs: 5 }).then(() => undefined)

/** A broadcast signed by a node that is not in the mesh (it came in over gossipsub). */
async function outsider(t: Testnet<TrustEngine>, who: Identity, init: { data?: unknown; timestamp?: number; ttl?: number; trust?: number } = {}): Promise<KLPMessage> {
  const m = createMessage({
    type: KLPMessageType.BROADCAST_ANNOUNCE,
    source: 'klp://far.mesh.kai/',
    target: 'klp://far.mesh.kai/broadcast',
    data: (init.data ?? { n: 1 }) as never,
    timestamp: init.timestamp ?? t.network.clock.now(),
    ...(init.ttl === undefined ? {} : { ttl: init.ttl }),
    ...(init.trust === undefined ? {} : { trust_requirements: { minimum_trust_score: init.trust, required_endorsements: 0, verification_level: VerificationLevel.NONE } }),
  })
  return signMessage(m, who.signer)
}

describe('deliverBroadcast', () => {
  it('hands a gossiped broadcast to the handler once and never relays it', async () => {
    const r = await line()
    net = r.net
    const [a, b, c] = net.nodes as [Node, Node, Node]
    const far = generateIdentity()
    const msg = await outsider(net, far)
    // b gets it from a gossip neighbour (a): delivered at b only; flooding would have sent it to a and c
    expect(await net.drive(b.router.deliverBroadcast!(encodeMessage(msg), { fromPeer: a.did }))).toBe(true)
    await settle(net)
    expect(r.seen[1]!.delivered.map((m) => m.metadata.message_id)).toEqual([msg.metadata.message_id])
    expect(r.seen[0]!.delivered).toHaveLength(0)
    expect(r.seen[2]!.delivered).toHaveLength(0)
    expect(b.router.metrics().forwarded).toBe(0)
    // the same broadcast again (as bytes or as a message) is a replay
    expect(await net.drive(b.router.deliverBroadcast!(msg, { fromPeer: c.did }))).toBe(true)
    await settle(net)
    expect(r.seen[1]!.delivered).toHaveLength(1)
    expect(r.seen[1]!.rejected).toEqual([{ reason: 'replay', messageId: msg.metadata.message_id, fromPeer: c.did }])
  })

  it('shares the replay window with the connections: whichever path comes first is delivered, the other is a replay', async () => {
    const r = await line()
    net = r.net
    const [a, b] = net.nodes as [Node, Node, Node]
    const sent = await net.drive(a.router.broadcast({ data: { hello: 'mesh' } }))
    await settle(net)
    expect(r.seen[1]!.delivered).toHaveLength(1)
    expect(r.seen[2]!.delivered).toHaveLength(1)
    // the gossipsub copy arrives later at b: refused as a replay, not delivered twice
    await net.drive(b.router.deliverBroadcast!(encodeMessage(sent), { fromPeer: a.did }))
    await settle(net)
    expect(r.seen[1]!.delivered).toHaveLength(1)
    expect(r.seen[1]!.rejected.map((x) => x.reason)).toEqual(['replay'])
    // a's own broadcast handed back to a: its own messages are never handled as a peer's
    await net.drive(a.router.deliverBroadcast!(encodeMessage(sent), { fromPeer: b.did }))
    await settle(net)
    expect(r.seen[0]!.delivered).toHaveLength(0)
  })

  it('refuses forged, expired, too long-lived, revoked, untrusted, malformed and non-broadcast messages as counted rejects', async () => {
    const r = await line()
    net = r.net
    const [a, b] = net.nodes as [Node, Node, Node]
    const far = generateIdentity()
    const now = net.network.clock.now()
    const deliver = (m: KLPMessage | Uint8Array): Promise<boolean> => net!.drive(b.router.deliverBroadcast!(m, { fromPeer: a.did }))

    const good = await outsider(net, far, { data: { v: 'genuine' } })
    // signed by another key in far's name
    const mallory = generateIdentity()
    const forger = { algorithm: far.signer.algorithm, keyId: far.signer.keyId, publicKey: far.signer.publicKey, sign: (d: Uint8Array) => mallory.signer.sign(d) }
    const forged = await signMessage(createMessage({ type: KLPMessageType.BROADCAST_ANNOUNCE, source: 'klp://far.mesh.kai/', target: 'klp://far.mesh.kai/broadcast', data: { v: 'forged' }, timestamp: now }), forger)
    expect(await deliver(forged)).toBe(true)
    const expired = await outsider(net, far, { data: { v: 'old' }, timestamp: now - 3_600_000, ttl: 60 })
    expect(await deliver(expired)).toBe(true)
    const tooLong = await outsider(net, far, { data: { v: 'ttl' }, ttl: 10 * 365 * 86_400 })
    expect(await deliver(tooLong)).toBe(true)
    const untrusted = await outsider(net, far, { data: { v: 'asks trust' }, trust: 0.9 })
    expect(await deliver(untrusted)).toBe(true)
    const bad = generateIdentity()
    revoked.add(bad.did)
    expect(await deliver(await outsider(net, bad, { data: { v: 'revoked signer' } }))).toBe(true)
    // refused before the pipeline: garbage, a non-broadcast, a revoked neighbour
    expect(await deliver(new Uint8Array([1, 2, 3]))).toBe(false)
    const req = await signMessage(createMessage({ type: KLPMessageType.TASK_REQUEST, source: 'klp://far.mesh.kai/', target: `klp://${b.authority}/x`, data: 1, timestamp: now }), far.signer)
    expect(await deliver(req)).toBe(false)
    revoked.add(a.did)
    expect(await deliver(await outsider(net, far, { data: { v: 'via revoked' } }))).toBe(false)
    revoked.delete(a.did)
    await settle(net)

    expect(r.seen[1]!.delivered).toHaveLength(0)
    const reasons = r.seen[1]!.rejected.map((x) => x.reason).sort()
    expect(reasons).toEqual(['expired', 'insufficient_trust', 'invalid_signature', 'malformed', 'revoked', 'revoked', 'ttl_too_long', 'unsupported_message_type'].sort())
    expect(r.seen[1]!.rejected.every((x) => x.fromPeer === a.did)).toBe(true)
    const rejects = b.router.metrics().rejects as Record<string, number>
    expect(rejects.invalid_signature).toBe(1)
    expect(rejects.revoked).toBe(2)
    // the genuine message still passes afterwards (a forgery took no room in the replay window)
    expect(await deliver(good)).toBe(true)
    await settle(net)
    expect(r.seen[1]!.delivered.map((m) => (m.payload.data as { v: string }).v)).toEqual(['genuine'])
    // nothing of it reached a or c through b
    expect(r.seen[0]!.delivered).toHaveLength(0)
    expect(r.seen[2]!.delivered).toHaveLength(0)
  })

  it('with a broadcast strategy installed: the strategy is not asked and the broadcast is not held for relayBroadcast', async () => {
    const r = await line()
    net = r.net
    const [a, b, c] = net.nodes as [Node, Node, Node]
    const asked: Array<string | undefined> = []
    b.router.setBroadcastStrategy({ relay: (_m, ctx) => { asked.push(ctx.fromPeer); return ctx.neighbours } })
    const msg = await outsider(net, generateIdentity())
    await net.drive(b.router.deliverBroadcast!(encodeMessage(msg), { fromPeer: a.did }))
    await settle(net)
    expect(r.seen[1]!.delivered).toHaveLength(1)
    expect(asked).toEqual([])
    await expect(b.router.relayBroadcast!(c.did, msg)).rejects.toMatchObject({ name: 'UnknownBroadcastError' })
    // a broadcast from a KLP neighbour still goes to the strategy
    await net.drive(a.router.broadcast({ data: 'by klp' }))
    await settle(net)
    expect(asked).toEqual([a.did])
  })

  it('takes a fromPeer and a started router', async () => {
    const r = await line()
    net = r.net
    const [, b] = net.nodes as [Node, Node, Node]
    const msg = await outsider(net, generateIdentity())
    await expect(b.router.deliverBroadcast!(msg, { fromPeer: '' })).rejects.toMatchObject({ name: 'InvalidParametersError' })
    await b.router.stop()
    await expect(b.router.deliverBroadcast!(msg, { fromPeer: 'did:key:z6Mkx' })).rejects.toMatchObject({ name: 'RouterNotStartedError' })
  })
})
