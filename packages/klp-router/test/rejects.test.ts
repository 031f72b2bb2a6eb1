import { afterEach, describe, expect, it } from 'vitest'
import { KLPMessageType, ProcessingStatus, type KLPMessage } from '@kos-mesh/interface'
import { createTestnet, type Testnet } from '../src/testnet.js'
import { EnvelopeKind, encodeEnvelope } from '../src/envelope.js'
import { strictestTrust } from '@kos-mesh/trust'
import { errorOf } from '../src/router.js'
import { rawPeer, waitFor, type RawPeer } from './helpers.js'

let net: Testnet | undefined
let peer: RawPeer | undefined
afterEach(async () => {
  await peer?.close()
  await net?.stop()
  net = undefined
  peer = undefined
})

async function setup(router: Parameters<typeof createTestnet>[1] extends infer O ? (O extends { router?: infer R } ? R : never) : never = {}, n = 2) {
  net = await createTestnet(n, { router, topology: 'line' })
  const b = net.nodes[0]!
  const calls: KLPMessage[] = []
  b.router.handle(KLPMessageType.TASK_REQUEST, async (msg) => {
    calls.push(msg)
    return { status: ProcessingStatus.PROCESSED, response: await b.router.createResponse(msg, 'ok') }
  })
  peer = await rawPeer(net.network, b.address, b.did)
  await waitFor(() => b.router.routingTable.didOf(peer!.authority) !== undefined)
  return { b, calls, peer, target: `klp://${b.authority}/` }
}

const rejects = (n: Testnet['nodes'][number]) => n.router.metrics().rejects

describe('reject paths (one test each)', () => {
  it('tampered signature -> invalid_signature, handler not called', async () => {
    const { b, calls, peer, target } = await setup()
    const msg = await peer.sign({ type: KLPMessageType.TASK_REQUEST, target })
    const frame = peer.frame(msg)
    frame[frame.length - 1]! ^= 0x01
    await peer.send(frame)
    await waitFor(() => rejects(b).invalid_signature === 1)
    expect(calls).toHaveLength(0)
  })

  it('tampered body -> invalid_signature (the id is recomputed from the received body)', async () => {
    const { b, calls, peer, target } = await setup()
    const msg = await peer.sign({ type: KLPMessageType.TASK_REQUEST, target, data: 'aaaa' })
    const frame = peer.frame(msg)
    const i = frame.lastIndexOf(0x61)
    frame[i] = 0x62
    await peer.send(frame)
    await waitFor(() => (rejects(b).invalid_signature ?? 0) + (rejects(b).malformed ?? 0) === 1)
    expect(calls).toHaveLength(0)
  })

  it('expired -> expired', async () => {
    const { b, calls, peer, target } = await setup()
    const msg = await peer.sign({ type: KLPMessageType.TASK_REQUEST, target, ttl: 1, timestamp: Date.now() - 120_000 })
    await peer.send(peer.frame(msg))
    await waitFor(() => rejects(b).expired === 1)
    expect(calls).toHaveLength(0)
  })

  it('ttl beyond maxTtlSeconds -> ttl_too_long', async () => {
    const { b, peer, target } = await setup({ maxTtlSeconds: 60 })
    await peer.send(peer.frame(await peer.sign({ type: KLPMessageType.TASK_REQUEST, target, ttl: 3600 })))
    await waitFor(() => rejects(b).ttl_too_long === 1)
  })

  it('replay -> replay, processed once, the cached response is sent again', async () => {
    const { b, calls, peer, target } = await setup()
    const frame = peer.frame(await peer.sign({ type: KLPMessageType.TASK_REQUEST, target }))
    await peer.send(frame)
    await waitFor(() => peer.received.length === 1)
    await peer.send(frame)
    await waitFor(() => peer.received.length === 2)
    expect(calls).toHaveLength(1)
    expect(rejects(b).replay).toBe(1)
    expect(b.router.metrics().cachedResponses).toBe(1)
    expect(peer.received[1]!.signature).toEqual(peer.received[0]!.signature)
  })

  it('unknown key -> unknown_key', async () => {
    const { b, peer, target } = await setup()
    const msg = await peer.sign({ type: KLPMessageType.TASK_REQUEST, target })
    // same body, signer key id replaced by an unresolvable one: the codec keeps the received signer
    const forged = { ...msg, signer: 'did:web:unknown.example#k1' } as KLPMessage
    await peer.send(encodeEnvelope(EnvelopeKind.MESSAGE, 0, 0, (await import('@kos-mesh/klp-codec')).encodeMessage(forged)))
    await waitFor(() => (rejects(b).unknown_key ?? 0) + (rejects(b).invalid_signature ?? 0) === 1)
    expect(rejects(b).unknown_key).toBe(1)
  })

  it('source authority bound to another DID -> source_mismatch', async () => {
    const { b, calls, peer, target } = await setup({}, 2)
    const other = net!.nodes[1]!
    const msg = await peer.sign({ type: KLPMessageType.TASK_REQUEST, target, source: `klp://${other.authority}/` })
    await peer.send(peer.frame(msg))
    await waitFor(() => rejects(b).source_mismatch === 1)
    expect(calls).toHaveLength(0)
  })

  it('oversize frame -> frame_too_large', async () => {
    const { b, peer } = await setup({ maxFrameBytes: 1000 })
    await peer.send(new Uint8Array(2000))
    await waitFor(() => rejects(b).frame_too_large === 1)
  })

  it('malformed envelope or message -> malformed', async () => {
    const { b, peer } = await setup()
    await peer.send(new Uint8Array([1, 2, 3, 4, 5, 6, 7]))
    await peer.send(encodeEnvelope(EnvelopeKind.MESSAGE, 0, 0, new Uint8Array([0x83, 0x01, 0x02, 0x03])))
    await waitFor(() => rejects(b).malformed === 2)
  })

  it('unknown type -> unsupported_message_type with an error response', async () => {
    const { b, peer, target } = await setup()
    await peer.send(peer.frame(await peer.sign({ type: KLPMessageType.AGENT_MIGRATION, target })))
    await waitFor(() => peer.received.length === 1)
    expect(rejects(b).unsupported_message_type).toBe(1)
    expect(peer.received[0]!.type).toBe(KLPMessageType.AGENT_MIGRATION)
    expect(errorOf(peer.received[0]!)).toMatchObject({ code: 'unsupported_message_type' })
  })

  it('insufficient trust -> insufficient_trust with an error response', async () => {
    const { b, calls, peer, target } = await setup()
    const msg = await peer.sign({ type: KLPMessageType.TASK_REQUEST, target, trust_requirements: { minimum_trust_score: 9, required_endorsements: 0, verification_level: 'none' } })
    await peer.send(peer.frame(msg))
    await waitFor(() => peer.received.length === 1)
    expect(rejects(b).insufficient_trust).toBe(1)
    expect(calls).toHaveLength(0)
    expect(peer.received[0]!.metadata.correlation_id).toBe(msg.metadata.message_id)
  })

  it("the receiver's trust policy applies whatever trust_requirements the sender wrote", async () => {
    const policy = { TASK_REQUEST: { minimum_trust_score: 5, required_endorsements: 0, verification_level: 'none' as const } }
    const { b, calls, peer, target } = await setup({ trustPolicy: policy })
    // the sender asks for nothing; the receiver still insists on a score of 5 for tasks
    const msg = await peer.sign({ type: KLPMessageType.TASK_REQUEST, target })
    await peer.send(peer.frame(msg))
    await waitFor(() => peer.received.length === 1)
    expect(rejects(b).insufficient_trust).toBe(1)
    expect(calls).toHaveLength(0)
    expect(errorOf(peer.received[0]!)).toMatchObject({ code: 'insufficient_trust' })
    // other message types are not covered by this policy
    expect(strictestTrust({ minimum_trust_score: 2, required_endorsements: 3, verification_level: 'strong' }, policy.TASK_REQUEST))
      .toEqual({ minimum_trust_score: 5, required_endorsements: 3, verification_level: 'strong' })
  })

  it('rate limit -> rate_limited beyond the burst', async () => {
    const { b, calls, peer, target } = await setup({ rateLimit: { ratePerSec: 0.001, burst: 5 }, overload: 'reject' })
    for (let i = 0; i < 12; i++) await peer.send(peer.frame(await peer.sign({ type: KLPMessageType.TASK_REQUEST, target, data: i })))
    // the hello took one token: 4 messages pass, 8 are limited
    await waitFor(() => rejects(b).rate_limited === 8)
    await waitFor(() => calls.length === 4)
  })

  it('queue full -> queue_full', async () => {
    net = await createTestnet(1, { router: { maxQueuePerPeer: 3, concurrency: 1, overload: 'reject' } })
    const b = net.nodes[0]!
    let release!: () => void
    const gate = new Promise<void>((r) => { release = r })
    b.router.handle(KLPMessageType.TASK_REQUEST, async () => { await gate; return { status: ProcessingStatus.PROCESSED } })
    peer = await rawPeer(net.network, b.address, b.did)
    const target = `klp://${b.authority}/`
    for (let i = 0; i < 10; i++) await peer.send(peer.frame(await peer.sign({ type: KLPMessageType.TASK_REQUEST, target, data: i })))
    await waitFor(() => (rejects(b).queue_full ?? 0) >= 6)
    expect(b.router.metrics().queueDepth.total).toBe(3)
    release()
    await waitFor(() => b.router.metrics().processed === 4)
  })

  it('hop limit -> hop_limit with an error response', async () => {
    const { b, peer } = await setup({}, 2)
    const far = net!.nodes[1]!
    const msg = await peer.sign({ type: KLPMessageType.TASK_REQUEST, target: `klp://${far.authority}/` })
    await peer.send(peer.frame(msg, 8))
    await waitFor(() => peer.received.length === 1)
    expect(rejects(b).hop_limit).toBe(1)
    expect(errorOf(peer.received[0]!)?.code).toBe('hop_limit')
    // one hop less is forwarded (once the far node has a route back to the raw peer)
    await waitFor(() => far.router.routingTable.lookup(peer.authority) !== undefined)
    await peer.send(peer.frame(await peer.sign({ type: KLPMessageType.TASK_REQUEST, target: `klp://${far.authority}/` }), 7))
    // forwarded to the far node, whose error response (it has no handler) comes back through b
    await waitFor(() => peer.received.length === 2)
    expect(b.router.metrics().forwarded).toBe(2)
    expect(errorOf(peer.received[1]!)?.code).toBe('unsupported_message_type')
  })

  it('no route -> no_route with an error response', async () => {
    const { b, peer } = await setup()
    await peer.send(peer.frame(await peer.sign({ type: KLPMessageType.TASK_REQUEST, target: 'klp://nowhere.mesh.kai/' })))
    await waitFor(() => peer.received.length === 1)
    expect(rejects(b).no_route).toBe(1)
    expect(errorOf(peer.received[0]!)?.code).toBe('no_route')
  })

  it('a hello signed by another DID than the connection -> source_mismatch', async () => {
    const { b, peer } = await setup()
    const before = rejects(b).source_mismatch ?? 0
    const { generateIdentity } = await import('@kos-mesh/did-security')
    const other = generateIdentity()
    const hello = await peer.sign({ type: KLPMessageType.PEER_DISCOVERY, target: 'klp://evil.mesh.kai/', source: 'klp://evil.mesh.kai/', data: { authority: 'evil.mesh.kai', routes: [] } }, other)
    await peer.send(encodeEnvelope(EnvelopeKind.HELLO, 0, 0, (await import('@kos-mesh/klp-codec')).encodeMessage(hello)))
    await waitFor(() => rejects(b).source_mismatch === before + 1)
    expect(b.router.routingTable.didOf('evil.mesh.kai')).toBeUndefined()
  })
})

describe('priority scheduling through the pipeline', () => {
  it('dispatches queued CRITICAL before HIGH before NORMAL before LOW', async () => {
    net = await createTestnet(1, { router: { concurrency: 1 } })
    const b = net.nodes[0]!
    let release!: () => void
    const gate = new Promise<void>((r) => { release = r })
    const order: number[] = []
    b.router.handle(KLPMessageType.TASK_REQUEST, async (msg) => {
      if (msg.payload.data === 'gate') await gate
      else order.push(msg.metadata.priority)
      return { status: ProcessingStatus.PROCESSED }
    })
    peer = await rawPeer(net.network, b.address, b.did)
    const target = `klp://${b.authority}/`
    await peer.send(peer.frame(await peer.sign({ type: KLPMessageType.TASK_REQUEST, target, data: 'gate' })))
    await waitFor(() => b.router.metrics().queueDepth.total === 0)
    for (const [i, p] of ([1, 5, 8, 10, 1, 5, 8, 10] as const).entries()) {
      await peer.send(peer.frame(await peer.sign({ type: KLPMessageType.TASK_REQUEST, target, data: i, priority: p })))
    }
    await waitFor(() => b.router.metrics().queueDepth.total === 8)
    expect(b.router.metrics().queueDepth).toMatchObject({ critical: 2, high: 2, normal: 2, low: 2 })
    release()
    await waitFor(() => order.length === 8)
    expect(order).toEqual([10, 10, 8, 8, 5, 5, 1, 1])
  })
})
