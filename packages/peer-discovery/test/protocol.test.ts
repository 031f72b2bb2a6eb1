import { afterEach, describe, expect, it } from 'vitest'
import { KLPMessageType } from '@kos-mesh/interface'
import type { KLPValue, Signer } from '@kos-mesh/interface'
import { generateIdentity } from '@kos-mesh/did-security'
import { createMessage, encodeMessage, signMessage } from '@kos-mesh/klp-codec'
import { createNodeRecord, createRecordVerifier, discoveryPayloadValue, parseDiscoveryPayload, RECORD_TARGET } from '../src/index.js'
import type { DiscoveryPayload, PeerEntry } from '../src/index.js'
import { makeNode } from './helpers.js'
import { network, signatureVerifier, startNode, stopAll } from './testnet.js'
import type { TestNode } from './testnet.js'

// The PEER_DISCOVERY actions over a real router pair (memory transport, real codec and Ed25519).

let nodes: TestNode[] = []
afterEach(async () => {
  await stopAll(nodes)
  nodes = []
})

async function records(n: number, caps: (i: number) => Record<string, boolean> = () => ({})): Promise<Uint8Array[]> {
  return Promise.all(Array.from({ length: n }, async (_, i) => {
    const id = generateIdentity()
    return (await createNodeRecord(makeNode(id.did, { caps: caps(i), address: `x${i}` }), id.signer)).bytes
  }))
}

async function pair(init: Parameters<typeof startNode>[2] = {}): Promise<{ server: TestNode; client: TestNode; target: string }> {
  const net = network()
  const server = await startNode(net, 'server', { targetPeers: 0, ...init })
  const client = await startNode(net, 'client', { targetPeers: 0, autoDial: false })
  nodes.push(server, client)
  await client.router.dial('memory://server', { remotePeer: server.identity.did })
  return { server, client, target: 'klp://server.mesh/peer-discovery' }
}

function send(client: TestNode, target: string, payload: DiscoveryPayload) {
  return raw(client, target, discoveryPayloadValue(payload))
}

function raw(client: TestNode, target: string, data: KLPValue) {
  return client.router.request({ type: KLPMessageType.PEER_DISCOVERY, target, data }, { timeoutMs: 5000 })
}

/** One-way push (announce / peers): the server answers nothing. */
async function push(client: TestNode, target: string, payload: DiscoveryPayload): Promise<void> {
  await client.router.send({ type: KLPMessageType.PEER_DISCOVERY, target, data: discoveryPayloadValue(payload) })
}

describe('PEER_DISCOVERY protocol', () => {
  it('get_peers answers with original signed records, filtered by capability and bounded by max', async () => {
    const { server, client, target } = await pair()
    const recs = await records(10, (i) => ({ vector_storage: i % 2 === 0 }))
    const merged = await server.discovery.registry.merge(recs, { source: 'test', method: 'dht' })
    expect(merged.added).toBe(10)
    const res = await send(client, target, { action: 'get_peers', capabilities: ['vector_storage'], max: 3 })
    const payload = parseDiscoveryPayload(res.payload.data)
    expect(payload.action).toBe('peers')
    if (payload.action !== 'peers') return
    expect(payload.records).toHaveLength(3)
    const verify = createRecordVerifier({ signatureVerifier })
    for (const bytes of payload.records) {
      // Byte-identical to what the registry stored: receivers verify the node's own signature.
      expect(recs.some((r) => Buffer.compare(Buffer.from(r), Buffer.from(bytes)) === 0)).toBe(true)
      const rec = await verify(bytes)
      expect(rec.node.capabilities.vector_storage).toBe(true)
    }
    // Without a filter: the server's own record first, then the rest; never more than max.
    const all = await send(client, target, { action: 'get_peers', max: 1000 })
    const allPayload = parseDiscoveryPayload(all.payload.data)
    if (allPayload.action !== 'peers') throw new Error('expected peers')
    expect(allPayload.records).toHaveLength(11)
    expect((await verify(allPayload.records[0]!)).peerId).toBe(server.identity.did)
    const capped = await send(client, target, { action: 'get_peers', max: 0 })
    expect(parseDiscoveryPayload(capped.payload.data)).toEqual({ action: 'peers', records: [] })
  })

  it('get_peers leaves out the records the asker lists as known', async () => {
    const { server, client, target } = await pair()
    const recs = await records(6)
    await server.discovery.registry.merge(recs, { source: 'test', method: 'dht' })
    const own = server.discovery.localRecord()!.bytes
    const known = new Uint8Array(3 * 8)
    for (const [i, r] of [recs[0]!, recs[3]!, own].entries()) known.set(r.subarray(r.length - 8), i * 8)
    const res = await send(client, target, { action: 'get_peers', known })
    const p = parseDiscoveryPayload(res.payload.data)
    if (p.action !== 'peers') throw new Error('expected peers')
    const got = p.records.map((r) => Buffer.from(r).toString('hex')).sort()
    expect(got).toEqual([recs[1]!, recs[2]!, recs[4]!, recs[5]!].map((r) => Buffer.from(r).toString('hex')).sort())
    // A malformed known list is rejected.
    await expect(raw(client, target, { action: 'get_peers', known: new Uint8Array(7) })).rejects.toMatchObject({ reason: 'invalid_discovery_message' })
  })

  it('get_peers never returns more than maxRecordsPerMessage', async () => {
    const { server, client, target } = await pair({ limits: { maxRecordsPerMessage: 4 } })
    await server.discovery.registry.merge(await records(9), { source: 'test', method: 'dht' })
    const res = await send(client, target, { action: 'get_peers', max: 1000 })
    const p = parseDiscoveryPayload(res.payload.data)
    expect(p.action === 'peers' && p.records.length).toBe(4)
  })

  it('get_peers responses stay within maxResponseBytes', async () => {
    const { server, client, target } = await pair({ limits: { maxResponseBytes: 2500 } })
    const recs = await records(5)
    await server.discovery.registry.merge(recs, { source: 'test', method: 'dht' })
    const res = await send(client, target, { action: 'get_peers', max: 64 })
    const p = parseDiscoveryPayload(res.payload.data)
    if (p.action !== 'peers') throw new Error('expected peers')
    expect(p.records.length).toBeGreaterThan(0)
    expect(p.records.reduce((a, r) => a + r.length, 0)).toBeLessThanOrEqual(2500)
    expect(p.records.length).toBeLessThan(6)
  })

  it('announce adds the sender; a newer announce replaces the record', async () => {
    const { server, client, target } = await pair()
    const updates: string[] = []
    server.discovery.registry.addEventListener('peer:update', (e) => updates.push((e as CustomEvent<PeerEntry>).detail.peerId))
    const r1 = await createNodeRecord(makeNode(client.identity.did, { lastSeen: 1 }), client.identity.signer)
    await push(client, target, { action: 'announce', record: r1.bytes })
    await expect.poll(() => server.discovery.registry.get(client.identity.did)?.discoveryMethod, { timeout: 10_000 }).toBe('direct')
    const r2 = await createNodeRecord(makeNode(client.identity.did, { caps: { archive_services: true } }), client.identity.signer, { now: r1.timestamp + 1 })
    await push(client, target, { action: 'announce', record: r2.bytes })
    await expect.poll(() => server.discovery.registry.get(client.identity.did)?.record.node.capabilities.archive_services, { timeout: 10_000 }).toBe(true)
    expect(updates).toEqual([client.identity.did])
    // Replaying the older record changes nothing (a get_peers after it proves it was processed).
    await push(client, target, { action: 'announce', record: r1.bytes })
    await send(client, target, { action: 'get_peers', max: 0 })
    await expect.poll(() => server.discovery.stats().registry.unchanged, { timeout: 10_000 }).toBeGreaterThanOrEqual(1)
    expect(server.discovery.registry.get(client.identity.did)?.record.timestamp).toBe(r2.timestamp)
  })

  it('drops and counts forged and foreign-signed records pushed by a peer', async () => {
    const { server, client, target } = await pair()
    const victim = generateIdentity()
    const forger: Signer = { algorithm: 'Ed25519', keyId: victim.keyId, publicKey: victim.publicKey, sign: (d) => client.identity.sign(d) }
    const forged = encodeMessage(await signMessage(createMessage({ type: KLPMessageType.PEER_DISCOVERY, source: 'klp://client.mesh/', target: RECORD_TARGET, data: { action: 'record', node: makeNode(victim.did) as unknown as KLPValue }, ttl: 600 }), forger))
    const foreign = encodeMessage(await signMessage(createMessage({ type: KLPMessageType.PEER_DISCOVERY, source: 'klp://client.mesh/', target: RECORD_TARGET, data: { action: 'record', node: makeNode(victim.did) as unknown as KLPValue }, ttl: 600 }), client.identity.signer))
    await push(client, target, { action: 'announce', record: forged })
    await push(client, target, { action: 'peers', records: [foreign] })
    await expect.poll(() => server.discovery.stats().registry.rejected.signer_mismatch + server.discovery.stats().registry.rejected.forged, { timeout: 10_000 }).toBe(2)
    expect(server.discovery.registry.has(victim.did)).toBe(false)
    const rejected = server.discovery.stats().registry.rejected
    expect(rejected.forged).toBe(1)
    expect(rejected.signer_mismatch).toBe(1)
  })

  it('caps what a single peer can push into the registry', async () => {
    const { server, client, target } = await pair({ registry: { sourceBurst: 20, sourceRatePerSecond: 0.001 } })
    for (let i = 0; i < 3; i++) await push(client, target, { action: 'peers', records: await records(16) })
    await expect.poll(() => server.discovery.stats().registry.rejected.rate_limited, { timeout: 10_000 }).toBe(28)
    expect(server.discovery.registry.size).toBe(20)
    expect(server.discovery.stats().registry.rejected.rate_limited).toBe(28)
  })

  it('rejects malformed and oversized payloads with a stable reason', async () => {
    const { server, client, target } = await pair({ limits: { maxRecordsPerMessage: 8 } })
    const bad: KLPValue[] = [
      { action: 'dance' },
      { action: 'announce' },
      { action: 'get_peers', max: -1 },
      { action: 'get_peers', capabilities: 'all' },
      { action: 'peers', records: ['not bytes'] },
      { action: 'peers', records: Array.from({ length: 9 }, () => new Uint8Array(1)) },
      { action: 'announce', record: new Uint8Array(9000) },
      'hello',
    ]
    for (const data of bad) {
      await expect(raw(client, target, data)).rejects.toMatchObject({ name: 'RemoteRejectedError', reason: 'invalid_discovery_message' })
    }
    expect(server.discovery.stats().invalidMessages).toBe(bad.length)
  })

  it('exposes the local record, re-signed by announce', async () => {
    const { server, client } = await pair()
    const first = server.discovery.localRecord()
    expect(first?.peerId).toBe(server.identity.did)
    expect(first?.address?.authority).toBe('server.mesh')
    expect(await createRecordVerifier({ signatureVerifier })(first!.bytes)).toMatchObject({ peerId: server.identity.did })
    const sent = await client.discovery.announce()
    expect(sent).toBe(1)
    await expect.poll(() => server.discovery.registry.has(client.identity.did), { timeout: 10_000 }).toBe(true)
  })
})
