/**
 * Regression tests of the security review (each PoC of /tmp/secreview, scaled down). Every test
 * here fails against the router before the fixes and passes after them.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { generateIdentity, type Identity } from '@kos-mesh/did-security'
import { KLPMessageType, MessagePriority, ProcessingStatus, type Connection, type KLPMessage } from '@kos-mesh/interface'
import { createMessage, encodeMessage, signMessage } from '@kos-mesh/klp-codec'
import { memoryTransport, type MemoryTransport } from '@kos-mesh/transport-memory'
import { EnvelopeKind, encodeEnvelope } from '../src/envelope.js'
import { ReplayWindow } from '../src/replay-cache.js'
import { RoutingTable } from '../src/routing-table.js'
import { createTestnet, type Testnet } from '../src/testnet.js'
import { rawPeer, waitFor, type RawPeer } from './helpers.js'

let net: Testnet | undefined
const peers: RawPeer[] = []
const transports: MemoryTransport[] = []
afterEach(async () => {
  for (const p of peers.splice(0)) await p.close()
  for (const t of transports.splice(0)) await t.close()
  await net?.stop()
  net = undefined
})

const rejects = (n: Testnet['nodes'][number]) => n.router.metrics().rejects

async function peer(n: Testnet['nodes'][number], authority: string): Promise<RawPeer> {
  const p = await rawPeer(net!.network, n.address, n.did, authority)
  peers.push(p)
  return p
}

/** A raw connection to a node, for hand-made hellos. */
async function rawConn(n: Testnet['nodes'][number]): Promise<{ id: Identity; conn: Connection }> {
  const id = generateIdentity()
  const t = memoryTransport({ peerId: id.did, network: net!.network })
  transports.push(t)
  const conn = await t.dial(n.address, { remotePeer: n.did })
  void (async () => {
    for await (const _ of conn) { /* drain */ }
  })().catch(() => {})
  return { id, conn }
}

async function helloFrame(id: Identity, authority: string, routes: Array<{ authority: string; hops: number }>, timestamp = Date.now()): Promise<Uint8Array> {
  const m = await signMessage(createMessage({
    type: KLPMessageType.PEER_DISCOVERY,
    source: `klp://${authority}/.router/hello`,
    target: `klp://${authority}/.router/hello`,
    content_type: 'application/vnd.kos-mesh.router-hello+cbor',
    priority: MessagePriority.CRITICAL,
    timestamp,
    data: { authority, known: true, routes },
  }), id.signer)
  return encodeEnvelope(EnvelopeKind.HELLO, 0, 0, encodeMessage(m))
}

function echo(n: Testnet['nodes'][number], label: string): { calls: KLPMessage[] } {
  const calls: KLPMessage[] = []
  n.router.handle(KLPMessageType.TASK_REQUEST, async (m) => {
    calls.push(m)
    return { status: ProcessingStatus.PROCESSED, response: await n.router.createResponse(m, label) }
  })
  return { calls }
}

describe('1. authority pinning (PoC1: hello authority hijack)', () => {
  it('refuses a hello claiming an authority pinned to another DID: authority_conflict, connection closed, routes unchanged', async () => {
    net = await createTestnet(2, { topology: 'full' })
    const [a, b] = net.nodes as [Testnet['nodes'][number], Testnet['nodes'][number]]
    const { calls } = echo(b, 'genuine answer from B')
    const m = await peer(a, b.authority) // hello says authority = B's
    await waitFor(() => rejects(a).authority_conflict === 1)
    await m.conn.closed
    expect(m.conn.status).not.toBe('open')
    expect(a.router.routingTable.didOf(b.authority)).toBe(b.did)
    expect(a.router.routingTable.lookup(b.authority)).toMatchObject({ nextHop: b.did, kind: 'direct' })
    expect(a.router.routingTable.authorityOf(m.identity.did)).toBeUndefined()
    const res = await a.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${b.authority}/`, data: 1 }, { timeoutMs: 3000, retries: 0 })
    expect(res.payload.data).toBe('genuine answer from B')
    expect(calls).toHaveLength(1)
    expect(m.received.some((x) => x.type === KLPMessageType.TASK_REQUEST)).toBe(false)
  })

  it('refuses a hello claiming the router\'s own authority, and a DID claiming a second authority', async () => {
    net = await createTestnet(1)
    const a = net.nodes[0]!
    const m = await peer(a, a.authority)
    await waitFor(() => rejects(a).authority_conflict === 1)
    await m.conn.closed
    const ok = await peer(a, 'first.mesh.kai')
    await waitFor(() => a.router.routingTable.didOf('first.mesh.kai') === ok.identity.did)
    await ok.send(await helloFrame(ok.identity, 'second.mesh.kai', [], Date.now() + 1))
    await waitFor(() => rejects(a).authority_conflict === 2)
    expect(a.router.routingTable.didOf('second.mesh.kai')).toBeUndefined()
    expect(a.router.routingTable.didOf('first.mesh.kai')).toBe(ok.identity.did)
  })

  it('keeps pins for the router\'s lifetime (after the peer disconnects) and restores them from pinnedAuthorities', async () => {
    net = await createTestnet(1)
    const a = net.nodes[0]!
    const first = await peer(a, 'squat.mesh.kai')
    await waitFor(() => a.router.routingTable.didOf('squat.mesh.kai') === first.identity.did)
    await first.close()
    peers.splice(peers.indexOf(first), 1)
    await waitFor(() => a.router.peers().length === 0)
    const second = await peer(a, 'squat.mesh.kai')
    await waitFor(() => rejects(a).authority_conflict === 1)
    await second.conn.closed
    const pins = a.router.routingTable.pins()
    expect(pins['squat.mesh.kai']).toBe(first.identity.did)
    expect(a.router.metrics().pinnedAuthorities).toBe(1)

    // a new router restored with the pins refuses the other DID on first contact
    const { klpRouter } = await import('../src/router.js')
    const { createSignatureVerifier } = await import('@kos-mesh/did-security')
    const id = generateIdentity()
    const t = memoryTransport({ peerId: id.did, network: net.network })
    transports.push(t)
    const r = klpRouter({ authority: 'restored.mesh.kai', listen: ['memory://restored'], pinnedAuthorities: pins })({
      signer: id.signer, signatureVerifier: createSignatureVerifier(), transports: [t],
    })
    await r.start()
    try {
      expect(r.routingTable.didOf('squat.mesh.kai')).toBe(first.identity.did)
      const p = await rawPeer(net.network, 'memory://restored', id.did, 'squat.mesh.kai')
      peers.push(p)
      await waitFor(() => r.metrics().rejects.authority_conflict === 1)
      expect(r.routingTable.didOf('squat.mesh.kai')).toBe(first.identity.did)
    } finally {
      await r.stop()
    }
  })

  it('dial() rejects with AuthorityConflictError when the remote claims a pinned authority', async () => {
    net = await createTestnet(2, { topology: 'full' })
    const [a, b] = net.nodes as [Testnet['nodes'][number], Testnet['nodes'][number]]
    const { klpRouter } = await import('../src/router.js')
    const { createSignatureVerifier } = await import('@kos-mesh/did-security')
    const id = generateIdentity()
    const t = memoryTransport({ peerId: id.did, network: net.network })
    transports.push(t)
    // an impostor router that calls itself B
    const r = klpRouter({ authority: b.authority, listen: ['memory://impostor'] })({ signer: id.signer, signatureVerifier: createSignatureVerifier(), transports: [t] })
    await r.start()
    try {
      await expect(a.router.dial('memory://impostor', { remotePeer: id.did })).rejects.toMatchObject({ name: 'AuthorityConflictError', code: 'ERR_AUTHORITY_CONFLICT' })
      expect(a.router.routingTable.didOf(b.authority)).toBe(b.did)
    } finally {
      await r.stop()
    }
  })
})

describe('2. response binding and route advertisements (PoC1/PoC2: response forgery, route poisoning)', () => {
  it('refuses routes a neighbour advertises at 0 hops for another authority (invalid_route)', async () => {
    net = await createTestnet(3, { topology: 'line' })
    const [a, b, c] = net.nodes as [Testnet['nodes'][number], Testnet['nodes'][number], Testnet['nodes'][number]]
    const { id, conn } = await rawConn(a)
    await conn.send(await helloFrame(id, 'evil.mesh.kai', [{ authority: c.authority, hops: 0 }, { authority: 'evil.mesh.kai', hops: 0 }]))
    await waitFor(() => a.router.routingTable.didOf('evil.mesh.kai') === id.did)
    expect(rejects(a).invalid_route).toBe(1)
    expect(a.router.routingTable.lookup(c.authority)).toMatchObject({ nextHop: b.did, hops: 2 })
  })

  it('resolves a request only with a response from its target, of its type, signed by the expected DID; mismatches keep it pending', async () => {
    net = await createTestnet(1)
    const a = net.nodes[0]!
    const far = generateIdentity()
    // M is a neighbour on the path to far.mesh.kai (it advertises it at 1 hop): it sees the request
    const m = await peer(a, 'middle.mesh.kai')
    await waitFor(() => a.router.routingTable.didOf('middle.mesh.kai') === m.identity.did)
    await m.send(await helloFrame(m.identity, 'middle.mesh.kai', [{ authority: 'middle.mesh.kai', hops: 0 }, { authority: 'far.mesh.kai', hops: 1 }], Date.now() + 1))
    await waitFor(() => a.router.routingTable.lookup('far.mesh.kai') !== undefined)
    const p = a.router.request({ type: KLPMessageType.TASK_REQUEST, target: 'klp://far.mesh.kai/', data: 1 }, { timeoutMs: 5000, retries: 0, expectedSigner: far.did })
    await waitFor(() => m.received.some((x) => x.type === KLPMessageType.TASK_REQUEST))
    const req = m.received.find((x) => x.type === KLPMessageType.TASK_REQUEST)!
    const corr = req.metadata.message_id
    const target = `klp://${a.authority}/`
    // (a) from M's own authority (not the target)
    await m.send(m.frame(await m.sign({ type: KLPMessageType.TASK_RESPONSE, target, correlation_id: corr, data: 'forged 1' })))
    // (b) claiming the target authority, signed by M (not the expected signer)
    await m.send(m.frame(await m.sign({ type: KLPMessageType.TASK_RESPONSE, target, source: 'klp://far.mesh.kai/', correlation_id: corr, data: 'forged 2' })))
    // (c) right source and signer, wrong type
    await m.send(m.frame(await m.sign({ type: KLPMessageType.AGENT_MIGRATION, target, source: 'klp://far.mesh.kai/', correlation_id: corr, data: 'forged 3' }, far)))
    await waitFor(() => rejects(a).response_mismatch === 3)
    expect(a.router.metrics().pendingRequests).toBe(1)
    // the genuine response still resolves the request
    await m.send(m.frame(await m.sign({ type: KLPMessageType.TASK_RESPONSE, target, source: 'klp://far.mesh.kai/', correlation_id: corr, data: 'genuine' }, far)))
    const res = await p
    expect(res.payload.data).toBe('genuine')
    expect(a.router.metrics().responsesMatched).toBe(1)
  })

  // not a regression test (the source-binding check refused this forgery before the fix too): it
  // checks that the pinned-signer rule and the source binding agree, and the request stays pending
  it('expects the pinned DID of the target when no expectedSigner is given', async () => {
    net = await createTestnet(2, { topology: 'full' })
    const [a, b] = net.nodes as [Testnet['nodes'][number], Testnet['nodes'][number]]
    echo(b, 'genuine')
    // M sits on the path through a via hint; B is pinned at A
    const m = await peer(a, 'middle.mesh.kai')
    await waitFor(() => a.router.routingTable.didOf('middle.mesh.kai') === m.identity.did)
    const p = a.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${b.authority}/`, data: 1, routingHints: [{ kind: 'via', value: 'middle.mesh.kai' }] }, { timeoutMs: 5000, retries: 0 })
    await waitFor(() => m.received.some((x) => x.type === KLPMessageType.TASK_REQUEST))
    const req = m.received.find((x) => x.type === KLPMessageType.TASK_REQUEST)!
    await m.send(m.frame(await m.sign({ type: KLPMessageType.TASK_RESPONSE, target: `klp://${a.authority}/`, source: `klp://${b.authority}/`, correlation_id: req.metadata.message_id, data: 'forged' })))
    await waitFor(() => (rejects(a).source_mismatch ?? 0) + (rejects(a).response_mismatch ?? 0) === 1)
    expect(a.router.metrics().pendingRequests).toBe(1)
    // B's genuine response (as if M had forwarded the request) still resolves it
    await b.router.send(await b.router.createResponse(req, 'genuine'))
    expect((await p).payload.data).toBe('genuine')
  })
})

describe('pin firmness (issue 8.4)', () => {
  it('an answered task request makes the target\'s pin firm; an answered peer-table request does not', async () => {
    net = await createTestnet(3, { topology: 'full' })
    const [a, b, c] = net.nodes as [Testnet['nodes'][number], Testnet['nodes'][number], Testnet['nodes'][number]]
    for (const n of [b, c]) {
      for (const t of [KLPMessageType.TASK_REQUEST, KLPMessageType.PEER_DISCOVERY]) {
        n.router.handle(t, async (m) => ({ status: ProcessingStatus.PROCESSED, response: await n.router.createResponse(m, 'ok') }))
      }
    }
    await waitFor(() => a.router.routingTable.pinEntries().length === 2)
    const firm = (authority: string): boolean | undefined => a.router.routingTable.pinEntries().find((p) => p.authority === authority)?.firm
    expect(firm(b.authority)).toBe(false)
    const changes: string[] = []
    a.router.addEventListener('pin:change', (e) => changes.push(`${e.detail.kind} ${e.detail.pin.authority}`))
    await a.router.request({ type: KLPMessageType.PEER_DISCOVERY, target: `klp://${c.authority}/peers`, data: null })
    expect(firm(c.authority)).toBe(false)
    await a.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${b.authority}/`, data: null })
    expect(firm(b.authority)).toBe(true)
    expect(changes).toEqual([`firm ${b.authority}`])
    // an explicit opt-in works for any type
    await a.router.request({ type: KLPMessageType.PEER_DISCOVERY, target: `klp://${c.authority}/peers`, data: null }, { reliesOnPin: true })
    expect(firm(c.authority)).toBe(true)
  })
})

describe('3. replay window (PoC4: flush by Sybils, restart)', () => {
  it('a flood of fresh identities cannot flush a captured request out of the window', async () => {
    net = await createTestnet(2, { topology: 'full', router: { replayCacheSize: 40, replayStrangerEntries: 40, replayQuotaPerStranger: 40 } })
    const [a, b] = net.nodes as [Testnet['nodes'][number], Testnet['nodes'][number]]
    let captured = 0
    b.router.handle(KLPMessageType.TASK_REQUEST, async (m) => {
      if (m.payload.data === 'transfer 100 credits') captured++
      return { status: ProcessingStatus.PROCESSED, response: await b.router.createResponse(m, 'done') }
    })
    const msg = await signMessage(createMessage({ type: KLPMessageType.TASK_REQUEST, source: `klp://${a.authority}/`, target: `klp://${b.authority}/`, data: 'transfer 100 credits', ttl: 3600 }), a.identity.signer)
    await a.router.send(msg)
    await waitFor(() => captured === 1)
    let flood = 0
    for (let s = 0; s < 12; s++) {
      const p = await peer(b, `sybil${s}.mesh.kai`)
      for (let i = 0; i < 4; i++) {
        await p.send(p.frame(await p.sign({ type: KLPMessageType.TASK_REQUEST, target: `klp://${b.authority}/`, data: `x${s}-${i}`, ttl: 86400 })))
        flood++
      }
    }
    // a sybil's own ids may count as replays once the pool pushed out one expiring in the same ms
    await waitFor(() => b.router.metrics().processed + (rejects(b).replay ?? 0) === 1 + flood)
    expect(b.router.metrics().replayEvictions).toBeGreaterThan(0)
    const replayer = await peer(b, 'replayer.mesh.kai')
    const before = rejects(b).replay ?? 0
    await replayer.send(replayer.frame(msg))
    await waitFor(() => (rejects(b).replay ?? 0) === before + 1)
    expect(captured).toBe(1)
  })

  it('replay-window poisoning (issue 8.2): day-long tasks from 11 throw-away DIDs make nobody else\'s fresh messages refused', async () => {
    // the attack run sent 101,200 tasks with ttl 86,400 s from 11 DIDs; scaled down with a small stranger pool
    net = await createTestnet(2, { topology: 'full', router: { replayCacheSize: 200, replayStrangerEntries: 300, replayQuotaPerStranger: 60, rateLimit: false } })
    const [a, b] = net.nodes as [Testnet['nodes'][number], Testnet['nodes'][number]]
    const { calls } = echo(b, 'ok')
    const sybils: RawPeer[] = []
    for (let s = 0; s < 11; s++) sybils.push(await peer(b, `sybil${s}.mesh.kai`))
    const t0 = Date.now()
    let sent = 0
    for (let i = 0; i < 120; i++) {
      for (const p of sybils) {
        await p.send(p.frame(await p.sign({ type: KLPMessageType.TASK_REQUEST, target: `klp://${b.authority}/`, data: i, ttl: 86_400, timestamp: t0 + i })))
        sent++
      }
    }
    await waitFor(() => calls.length + (rejects(b).replay ?? 0) >= sent, 20_000)
    expect(b.router.metrics().replayEvictions).toBeGreaterThan(0)
    expect(b.router.metrics().replayStrangerSize).toBeLessThanOrEqual(300)
    const before = calls.length
    const replaysBefore = rejects(b).replay ?? 0
    // fresh messages of others: an existing neighbour, and a brand-new DID, are all accepted
    for (let i = 0; i < 5; i++) await a.router.send({ type: KLPMessageType.TASK_REQUEST, target: `klp://${b.authority}/`, data: `a${i}` })
    const fresh = await peer(b, 'newcomer.mesh.kai')
    for (let i = 0; i < 5; i++) await fresh.send(fresh.frame(await fresh.sign({ type: KLPMessageType.TASK_REQUEST, target: `klp://${b.authority}/`, data: `n${i}` })))
    await waitFor(() => calls.length === before + 10).catch(() => {
      throw new Error(`expected 10 fresh messages processed, got ${calls.length - before}; rejects ${JSON.stringify(rejects(b))} (replays before ${replaysBefore}), sent ${sent}`)
    })
    expect(rejects(b).replay ?? 0).toBe(replaysBefore)
    // and a replay of an attacker's evicted task is still refused (fail closed, for the attacker only)
    const first = await sybils[0]!.sign({ type: KLPMessageType.TASK_REQUEST, target: `klp://${b.authority}/`, data: 0, ttl: 86_400, timestamp: t0 })
    await sybils[1]!.send(sybils[1]!.frame(first))
    await waitFor(() => (rejects(b).replay ?? 0) === replaysBefore + 1)
    expect(calls.length).toBe(before + 10)
  })

  it('one signer cannot fill the window beyond its quota', async () => {
    net = await createTestnet(2, { topology: 'full', router: { replayCacheSize: 40, replayQuotaPerSigner: 4, replayQuotaPerStranger: 4 } })
    const [a, b] = net.nodes as [Testnet['nodes'][number], Testnet['nodes'][number]]
    let captured = 0
    b.router.handle(KLPMessageType.TASK_REQUEST, async (m) => {
      if (m.payload.data === 'once') captured++
      return { status: ProcessingStatus.PROCESSED }
    })
    const msg = await signMessage(createMessage({ type: KLPMessageType.TASK_REQUEST, source: `klp://${a.authority}/`, target: `klp://${b.authority}/`, data: 'once', ttl: 600 }), a.identity.signer)
    await a.router.send(msg)
    await waitFor(() => captured === 1)
    const p = await peer(b, 'flooder.mesh.kai')
    const t0 = Date.now()
    for (let i = 0; i < 100; i++) await p.send(p.frame(await p.sign({ type: KLPMessageType.TASK_REQUEST, target: `klp://${b.authority}/`, data: i, ttl: 86400, timestamp: t0 + i })))
    // the flooder's messages only ever push out its own ids (some of its own may count as replays)
    await waitFor(() => b.router.metrics().processed + (rejects(b).replay ?? 0) === 101)
    expect(b.router.metrics().replayCacheSize).toBeLessThanOrEqual(4 + 1 + 2)
    const replays = rejects(b).replay ?? 0
    await a.router.send(msg)
    await waitFor(() => (rejects(b).replay ?? 0) === replays + 1)
    expect(captured).toBe(1)
  })

  it('rejects messages timestamped before the router started (minus the skew) unless acceptBeforeStart', async () => {
    net = await createTestnet(2, { topology: 'full' })
    const [a, b] = net.nodes as [Testnet['nodes'][number], Testnet['nodes'][number]]
    const { calls } = echo(b, 'ok')
    const old = await signMessage(createMessage({ type: KLPMessageType.TASK_REQUEST, source: `klp://${a.authority}/`, target: `klp://${b.authority}/`, data: 'old', ttl: 3600, timestamp: Date.now() - 120_000 }), a.identity.signer)
    await a.router.send(old)
    await waitFor(() => rejects(b).replay === 1)
    expect(calls).toHaveLength(0)
    await net.stop()
    net = await createTestnet(2, { topology: 'full', router: { acceptBeforeStart: true } })
    const [a2, b2] = net.nodes as [Testnet['nodes'][number], Testnet['nodes'][number]]
    const e2 = echo(b2, 'ok')
    await a2.router.send(await signMessage(createMessage({ type: KLPMessageType.TASK_REQUEST, source: `klp://${a2.authority}/`, target: `klp://${b2.authority}/`, data: 'old', ttl: 3600, timestamp: Date.now() - 120_000 }), a2.identity.signer))
    await waitFor(() => e2.calls.length === 1)
  })

  it('ReplayWindow: evicts the id expiring first, then refuses ids at or below the floor', () => {
    let now = 0
    const w = new ReplayWindow({ maxEntries: 3, maxPerOwner: 3, now: () => now })
    expect(w.checkAndRecord('late', 9000)).toBe(true)
    expect(w.checkAndRecord('early', 1000)).toBe(true)
    expect(w.checkAndRecord('mid', 5000)).toBe(true)
    expect(w.checkAndRecord('new', 8000)).toBe(true)
    expect(w.evictions).toBe(1)
    expect(w.has('early')).toBe(false)
    expect(w.has('late')).toBe(true)
    expect(w.evictedUntil).toBe(1000)
    // the evicted id comes back: refused as a possible replay
    expect(w.checkAndRecord('early', 1000)).toBe(false)
    expect(w.checkAndRecord('other', 999)).toBe(false)
    now = 100
    expect(w.checkAndRecord('fresh', 1001)).toBe(true)
  })

  it('ReplayWindow: an owner over its quota evicts only its own ids and raises only its own floor', () => {
    const now = 0
    const w = new ReplayWindow({ maxEntries: 100, maxPerOwner: 2, now: () => now })
    expect(w.checkAndRecord('v', 50, 'did:victim')).toBe(true)
    for (let i = 0; i < 10; i++) expect(w.checkAndRecord(`s${i}`, 1000 + i, 'did:sybil')).toBe(true)
    expect(w.size).toBe(3)
    expect(w.has('v')).toBe(true)
    expect(w.checkAndRecord('v', 50, 'did:victim')).toBe(false)
    expect(w.checkAndRecord('s0', 1000, 'did:sybil')).toBe(false) // below the sybil's floor
    expect(w.checkAndRecord('w', 60, 'did:victim')).toBe(true)
    expect(w.evictedUntil).toBe(-Infinity)
  })
})

describe('4. re-signed copies (PoC3: censorship by re-signing)', () => {
  it('a re-signed copy of another\'s body does not get the genuine message dropped as a replay', async () => {
    net = await createTestnet(2, { topology: 'full' })
    const [a, b] = net.nodes as [Testnet['nodes'][number], Testnet['nodes'][number]]
    let calls = 0
    b.router.handle(KLPMessageType.BROADCAST_ANNOUNCE, () => {
      calls++
      return { status: ProcessingStatus.PROCESSED }
    })
    const m = await peer(b, 'evil.mesh.kai')
    await waitFor(() => b.router.routingTable.didOf('evil.mesh.kai') !== undefined)
    const genuine = await signMessage(createMessage({ type: KLPMessageType.BROADCAST_ANNOUNCE, source: `klp://${a.authority}/`, target: `klp://${a.authority}/broadcast`, data: 'important announcement', ttl: 60 }), a.identity.signer)
    const body = { ...genuine, metadata: { ...genuine.metadata } } as Record<string, unknown> & { metadata: Record<string, unknown> }
    delete body.metadata.message_id
    delete body.signature
    delete body.signer
    const resigned = await signMessage(body as never, m.identity.signer)
    expect(resigned.metadata.message_id).toBe(genuine.metadata.message_id)
    await m.send(m.frame(resigned))
    await waitFor(() => rejects(b).source_mismatch === 1)
    await a.router.send(genuine)
    await waitFor(() => calls === 1)
    expect(rejects(b).replay ?? 0).toBe(0)
  })
})

describe('5. route flapping (PoC5)', () => {
  it('damps a neighbour whose route set flaps (route_damped) and caps routes in total', async () => {
    net = await createTestnet(3, { topology: 'full', router: { maxRouteChangesPerMinute: 5, maxRoutes: 300, maxTotalRoutes: 400 } })
    const a = net.nodes[0]!
    const { id, conn } = await rawConn(a)
    // every changing hello either changes the routes (at most 5), is damped, or lost a race to a newer one (replay)
    let refused = 0
    a.router.addEventListener('message:rejected', (e) => {
      if ((e.detail.reason === 'route_damped' || e.detail.reason === 'replay') && e.detail.fromPeer === id.did) refused++
    })
    const t0 = Date.now()
    for (let k = 0; k < 20; k++) {
      const routes = Array.from({ length: 300 }, (_, i) => ({ authority: `r${i}-${k}.kai`, hops: 1 }))
      await conn.send(await helloFrame(id, 'evil.mesh.kai', [{ authority: 'evil.mesh.kai', hops: 0 }, ...routes], t0 + k))
    }
    await waitFor(() => refused === 15)
    expect(rejects(a).route_damped).toBeGreaterThan(0)
    // the other nodes saw at most the 5 accepted changes (plus their own convergence)
    expect(a.router.routingTable.routes().length).toBeLessThanOrEqual(400 + 3)
    const table = new RoutingTable({ now: () => 0, maxHops: 8, maxRoutes: 300, maxTotalRoutes: 400 })
    const c1 = { id: 'c1', remotePeer: 'did:1', status: 'open' } as unknown as Connection
    const c2 = { id: 'c2', remotePeer: 'did:2', status: 'open' } as unknown as Connection
    table.addConnection(c1)
    table.addConnection(c2)
    table.setAdvertised('did:1', Array.from({ length: 300 }, (_, i) => ({ authority: `a${i}`, hops: 1 })))
    table.setAdvertised('did:2', Array.from({ length: 300 }, (_, i) => ({ authority: `b${i}`, hops: 1 })))
    expect(table.advertisedCount).toBe(400)
  })

  it('never learns a detour around a pinned direct neighbour', () => {
    const t = new RoutingTable({ now: () => 0, maxHops: 8 })
    const c1 = { id: 'c1', remotePeer: 'did:1', status: 'open' } as unknown as Connection
    const c2 = { id: 'c2', remotePeer: 'did:2', status: 'open' } as unknown as Connection
    t.addConnection(c1)
    t.addConnection(c2)
    expect(t.bind('one.kai', 'did:1')).toBeUndefined()
    expect(t.bind('two.kai', 'did:2')).toBeUndefined()
    t.setAdvertised('did:2', [{ authority: 'two.kai', hops: 0 }, { authority: 'one.kai', hops: 0 }])
    t.learn('one.kai', 'did:2', 1)
    expect(t.lookup('one.kai')).toMatchObject({ nextHop: 'did:1', kind: 'direct' })
    expect(t.lookup('one.kai', 'did:1')).toBeUndefined()
  })
})

describe('6. deferrals (retry_after 0)', () => {
  it('counts at most `retries` deferrals, then fails with RequestDeferredError', async () => {
    net = await createTestnet(2, { topology: 'full' })
    const [a, b] = net.nodes as [Testnet['nodes'][number], Testnet['nodes'][number]]
    let calls = 0
    b.router.handle(KLPMessageType.TASK_REQUEST, () => {
      calls++
      return { status: ProcessingStatus.DEFERRED, reason: 'busy', retry_after: 0 }
    })
    await expect(a.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${b.authority}/`, data: null }, { timeoutMs: 5000, retries: 2 }))
      .rejects.toMatchObject({ name: 'RequestDeferredError', reason: 'busy' })
    expect(calls).toBe(3)
  })
})
