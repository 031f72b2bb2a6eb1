import { afterEach, describe, expect, it } from 'vitest'
import { KLPMessageType, MessagePriority, PeerRefusedError, ProcessingStatus, VerificationLevel, type KLPMessage } from '@kos-mesh/interface'
import { createTestnet, type Testnet } from '../src/testnet.js'
import { errorOf } from '../src/router.js'
import { rawPeer, waitFor } from './helpers.js'

let net: Testnet | undefined
afterEach(async () => {
  await net?.stop()
  net = undefined
})

function echo(node: Testnet['nodes'][number]): { calls: KLPMessage[] } {
  const calls: KLPMessage[] = []
  node.router.handle(KLPMessageType.TASK_REQUEST, async (msg, ctx) => {
    calls.push(msg)
    expect(ctx.signerDid.startsWith('did:key:')).toBe(true)
    return { status: ProcessingStatus.PROCESSED, response: await node.router.createResponse(msg, { echo: msg.payload.data }) }
  })
  return { calls }
}

describe('request/response', () => {
  it('completes between two nodes and matches by correlation id', async () => {
    net = await createTestnet(2)
    const [a, b] = net.nodes as [Testnet['nodes'][number], Testnet['nodes'][number]]
    const { calls } = echo(b)
    const res = await a.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${b.authority}/agents/echo`, data: { n: 1 } })
    expect(res.type).toBe(KLPMessageType.TASK_RESPONSE)
    expect(res.payload.data).toEqual({ echo: { n: 1 } })
    expect(res.metadata.correlation_id).toBe(calls[0]!.metadata.message_id)
    expect(calls[0]!.source.authority).toBe(a.authority)
    const mb = b.router.metrics()
    expect(mb.processed).toBe(1)
    expect(mb.messagesIn).toBeGreaterThan(0)
    expect(mb.bytesIn).toBeGreaterThan(mb.messagesIn)
    expect(a.router.metrics().responsesMatched).toBe(1)
    expect(a.router.peers()).toEqual([expect.objectContaining({ did: b.did, authority: b.authority })])
    expect(a.router.routingTable.didOf(b.authority)).toBe(b.did)
  })

  it('delivers to itself through the same pipeline', async () => {
    net = await createTestnet(1)
    const a = net.nodes[0]!
    echo(a)
    const res = await a.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${a.authority}/x`, data: 7 })
    expect(res.payload.data).toEqual({ echo: 7 })
  })

  it('crosses several hops on a line without touching the signed bytes', async () => {
    net = await createTestnet(4, { topology: 'line' })
    const [a, , , d] = net.nodes
    const { calls } = echo(d!)
    const res = await a!.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${d!.authority}/`, data: 'hi' })
    expect(res.payload.data).toEqual({ echo: 'hi' })
    expect(calls).toHaveLength(1)
    expect(net.nodes[1]!.router.metrics().forwarded).toBeGreaterThanOrEqual(2)
    expect(net.nodes[2]!.router.metrics().forwarded).toBeGreaterThanOrEqual(2)
    expect(a!.router.routingTable.lookup(d!.authority)).toMatchObject({ hops: 3, nextHop: net.nodes[1]!.did })
  })

  it('follows a via routing hint', async () => {
    net = await createTestnet(3)
    const [a, b, c] = net.nodes
    echo(c!)
    await a!.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${c!.authority}/`, data: 1 })
    expect(b!.router.metrics().forwarded).toBe(0)
    await a!.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${c!.authority}/`, data: 2, routingHints: [{ kind: 'via', value: b!.authority }] })
    expect(b!.router.metrics().forwarded).toBe(1)
  })

  it('honours retry_after of a deferred result and retries with a new request', async () => {
    net = await createTestnet(2)
    const [a, b] = net.nodes
    let n = 0
    b!.router.handle(KLPMessageType.TASK_REQUEST, async (msg) => {
      n++
      if (n === 1) return { status: ProcessingStatus.DEFERRED, reason: 'busy', retry_after: 0.05 }
      return { status: ProcessingStatus.PROCESSED, response: await b!.router.createResponse(msg, 'ok') }
    })
    const res = await a!.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${b!.authority}/`, data: null })
    expect(res.payload.data).toBe('ok')
    expect(n).toBe(2)
    expect(b!.router.metrics().deferred).toBe(1)
  })

  it('fails with RequestDeferredError when retry_after does not fit the deadline', async () => {
    net = await createTestnet(2)
    const [a, b] = net.nodes
    b!.router.handle(KLPMessageType.TASK_REQUEST, () => ({ status: ProcessingStatus.DEFERRED, reason: 'busy', retry_after: 3600 }))
    await expect(a!.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${b!.authority}/`, data: null }, { timeoutMs: 2000 }))
      .rejects.toMatchObject({ name: 'RequestDeferredError', reason: 'busy', retryAfter: 3600 })
  })

  it('rejects through an AbortSignal and when the router stops', async () => {
    net = await createTestnet(2)
    const [a, b] = net.nodes
    b!.router.handle(KLPMessageType.TASK_REQUEST, () => new Promise(() => {}))
    const ac = new AbortController()
    const p = a!.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${b!.authority}/`, data: null }, { signal: ac.signal })
    setTimeout(() => ac.abort(), 20)
    await expect(p).rejects.toMatchObject({ name: 'AbortError' })
    const q = a!.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${b!.authority}/`, data: null })
    await new Promise((r) => setTimeout(r, 20))
    await a!.router.stop()
    await expect(q).rejects.toMatchObject({ name: 'RouterNotStartedError' })
    await expect(a!.router.send({ type: KLPMessageType.TASK_REQUEST, target: `klp://${b!.authority}/`, data: null })).rejects.toMatchObject({ name: 'RouterNotStartedError' })
  })

  it('refuses a second handler for one type', async () => {
    net = await createTestnet(1)
    const r = net.nodes[0]!.router
    r.handle(KLPMessageType.VECTOR_SYNC, () => ({ status: ProcessingStatus.PROCESSED }))
    expect(() => r.handle(KLPMessageType.VECTOR_SYNC, () => ({ status: ProcessingStatus.PROCESSED }))).toThrow(expect.objectContaining({ name: 'DuplicateHandlerError' }))
    r.unhandle(KLPMessageType.VECTOR_SYNC)
    r.handle(KLPMessageType.VECTOR_SYNC, () => ({ status: ProcessingStatus.PROCESSED }))
  })
})

describe('error responses', () => {
  it('answers unsupported types, insufficient trust, handler rejects and handler errors with typed remote errors', async () => {
    net = await createTestnet(2)
    const [a, b] = net.nodes
    const target = `klp://${b!.authority}/`
    await expect(a!.router.request({ type: KLPMessageType.AGENT_MIGRATION, target, data: null }))
      .rejects.toMatchObject({ name: 'RemoteRejectedError', reason: 'unsupported_message_type' })

    b!.router.handle(KLPMessageType.TASK_REQUEST, async (msg) => ({ status: ProcessingStatus.PROCESSED, response: await b!.router.createResponse(msg, 'ok') }))
    const trustReq = { minimum_trust_score: 5, required_endorsements: 1, verification_level: VerificationLevel.BASIC }
    const err = await a!.router.request({ type: KLPMessageType.TASK_REQUEST, target, data: null, trustRequirements: trustReq }).catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'RemoteRejectedError', code: 'ERR_REMOTE_REJECTED', reason: 'insufficient_trust' })
    expect(err).toBeInstanceOf(PeerRefusedError) // any refusal can be caught as one
    const resp = (err as { response: KLPMessage }).response
    expect(resp.type).toBe(KLPMessageType.TASK_RESPONSE)
    expect(errorOf(resp)).toMatchObject({ code: 'insufficient_trust', status: 'rejected' })
    b!.trust.set(a!.did, { trust_score: 5, endorsements: 1, verification_level: VerificationLevel.STRONG })
    const ok = await a!.router.request({ type: KLPMessageType.TASK_REQUEST, target, data: null, trustRequirements: trustReq })
    expect(ok.payload.data).toBe('ok')

    b!.router.handle(KLPMessageType.VECTOR_SYNC, () => ({ status: ProcessingStatus.REJECTED, reason: 'no_eligible_agents' }))
    await expect(a!.router.request({ type: KLPMessageType.VECTOR_SYNC, target, data: null }))
      .rejects.toMatchObject({ name: 'RemoteRejectedError', reason: 'no_eligible_agents' })

    b!.router.handle(KLPMessageType.REPUTATION_DELTA, () => { throw new Error('boom') })
    await expect(a!.router.request({ type: KLPMessageType.REPUTATION_DELTA, target, data: null }))
      .rejects.toMatchObject({ name: 'RemoteRejectedError', reason: 'handler_error' })
    const rejects = b!.router.metrics().rejects
    expect(rejects).toMatchObject({ unsupported_message_type: 1, insufficient_trust: 1, no_eligible_agents: 1, handler_error: 1 })
  })

  it('reports no_route from a forwarder, and NoRouteError locally', async () => {
    net = await createTestnet(2)
    const [a] = net.nodes
    await expect(a!.router.request({ type: KLPMessageType.TASK_REQUEST, target: 'klp://nowhere.mesh.kai/', data: null }, { timeoutMs: 300 }))
      .rejects.toMatchObject({ name: 'NoRouteError', code: 'ERR_NO_ROUTE' })
    await expect(a!.router.send({ type: KLPMessageType.TASK_REQUEST, target: 'klp://nowhere.mesh.kai/', data: null }))
      .rejects.toMatchObject({ name: 'NoRouteError' })
    // a forwarder without a route answers no_route (the via hint makes node-1 the first hop)
    const b = net.nodes[1]!
    await expect(a!.router.request({ type: KLPMessageType.TASK_REQUEST, target: 'klp://nowhere.mesh.kai/', data: null, routingHints: [{ kind: 'via', value: b.authority }] }))
      .rejects.toMatchObject({ name: 'RemoteRejectedError', reason: 'no_route' })
    expect(b.router.metrics().rejects.no_route).toBe(1)
  })
})

describe('broadcast', () => {
  it('floods a ring once per node, with duplicates suppressed', async () => {
    net = await createTestnet(6, { topology: 'ring' })
    const got = new Map<string, number>()
    for (const n of net.nodes) {
      n.router.handle(KLPMessageType.BROADCAST_ANNOUNCE, () => {
        got.set(n.authority, (got.get(n.authority) ?? 0) + 1)
        return { status: ProcessingStatus.PROCESSED }
      })
    }
    await net.nodes[0]!.router.broadcast({ data: { hello: 'mesh' }, priority: MessagePriority.HIGH })
    await waitFor(() => got.size === 5)
    await new Promise((r) => setTimeout(r, 50))
    expect(got.has(net.nodes[0]!.authority)).toBe(false)
    expect([...got.values()]).toEqual([1, 1, 1, 1, 1])
    const replays = net.nodes.reduce((s, n) => s + (n.router.metrics().rejects.replay ?? 0), 0)
    expect(replays).toBeGreaterThanOrEqual(1)
  })
})

describe('events', () => {
  it('emits peer:connect, peer:identify and peer:disconnect', async () => {
    net = await createTestnet(2)
    const [a, b] = net.nodes
    const seen: string[] = []
    a!.router.addEventListener('peer:disconnect', (e) => seen.push(`disconnect:${e.detail.did === b!.did}`))
    await b!.router.stop()
    await waitFor(() => seen.length === 1)
    expect(seen).toEqual(['disconnect:true'])
    expect(a!.router.peers()).toEqual([])
    expect(a!.router.routingTable.lookup(b!.authority)).toBeUndefined()
  })
})

describe('peer:identify on every new connection', () => {
  it('fires for a peer whose authority is already bound (a restarted node with restored pins, a second connection)', async () => {
    net = await createTestnet(2)
    const [a, b] = net.nodes
    const identified: string[] = []
    a!.router.addEventListener('peer:identify', (e) => identified.push(e.detail.did))
    expect(a!.router.authorityOf(b!.did)).toBe(b!.authority) // bound already
    await b!.router.dial(a!.address)
    await waitFor(() => identified.length > 0)
    expect(identified).toEqual([b!.did])
  })
})

describe('message identity', () => {
  it('makes identical messages built in the same millisecond unique (nonce hint), so none is taken for a replay', async () => {
    net = await createTestnet(2)
    const [a, b] = net.nodes
    const { calls } = echo(b!)
    const init = { type: KLPMessageType.TASK_REQUEST, target: `klp://${b!.authority}/`, data: 'same' } as const
    const results = await Promise.all(Array.from({ length: 20 }, () => a!.router.request(init)))
    expect(results).toHaveLength(20)
    expect(new Set(calls.map((m) => m.metadata.message_id)).size).toBe(20)
    expect(b!.router.metrics().rejects.replay ?? 0).toBe(0)
  })
})
