import { afterEach, describe, expect, it } from 'vitest'
import { KLPMessageType, ProcessingStatus } from '@kos-mesh/interface'
import type { KLPValue, MessageHandler } from '@kos-mesh/interface'
import { generateIdentity } from '@kos-mesh/did-security'
import { kadIdOf } from '../src/kad/index.js'
import { DHT_PATH, dhtService } from '../src/dht/index.js'
import { dhtMesh, signatureVerifier } from './dht-helpers.js'
import type { DhtMesh } from './dht-helpers.js'

// The service's own rules: options, lifecycle, bounds, and answers that do not fit the request.

let mesh: DhtMesh | undefined
afterEach(async () => {
  await mesh?.stop()
  mesh = undefined
})

describe('DHT service', () => {
  it('validates its components and options', async () => {
    mesh = await dhtMesh(1, { withDht: () => false })
    const node = mesh.net.nodes[0]!
    const base = { router: node.router, signer: node.identity.signer, signatureVerifier }
    expect(() => dhtService()({ ...base, signer: generateIdentity().signer })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => dhtService()({ ...base, signer: undefined })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => dhtService()({ ...base, signatureVerifier: undefined as never })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => dhtService({ providerTtlSeconds: 600, republishIntervalMs: 600_000 })(base)).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => dhtService({ recordTtlSeconds: 0 })(base)).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => dhtService({ limits: { maxContacts: 0 } })(base)).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => dhtService({ requestTimeoutMs: 1.5 })(base)).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
  })

  it('is idle before start, idempotent to start and stop, and frees its path on stop', async () => {
    mesh = await dhtMesh(1, { withDht: () => false })
    const node = mesh.net.nodes[0]!
    const s = dhtService()({ router: node.router, signer: node.identity.signer, signatureVerifier, clock: mesh.net.network.clock })
    expect(s.isStarted()).toBe(false)
    expect(s.localRecord()).toBeUndefined()
    await expect(s.findNode(node.did)).rejects.toMatchObject({ name: 'DhtNotStartedError', code: 'ERR_DHT_NOT_STARTED' })
    await expect(s.provide('agent:x')).rejects.toMatchObject({ name: 'DhtNotStartedError' })
    await s.start()
    await s.start()
    expect(s.localRecord()?.peerId).toBe(node.did)
    expect(s.localRecord()?.address?.authority).toBe(node.authority)
    expect(await s.findNode(node.did)).toBe(s.localRecord())
    await s.stop()
    await s.stop()
    // the path is free again: another handler can take it
    node.router.handle(KLPMessageType.PEER_DISCOVERY, async () => ({ status: ProcessingStatus.PROCESSED }), { path: DHT_PATH })
    node.router.unhandle(KLPMessageType.PEER_DISCOVERY, { path: DHT_PATH })
  })

  it('bounds what callers ask for', async () => {
    mesh = await dhtMesh(2, { topology: 'full', init: () => ({ maxProvidedNames: 1 }) })
    const m = mesh
    const s = m.dht[1]!
    await m.net.drive(s.bootstrap([{ address: m.net.nodes[0]!.address, did: m.net.nodes[0]!.did }]))
    await expect(s.provide('not a name')).rejects.toMatchObject({ name: 'InvalidParametersError' })
    await expect(s.findProviders('x')).rejects.toMatchObject({ name: 'InvalidParametersError' })
    await expect(s.findNode('nope')).rejects.toMatchObject({ name: 'InvalidParametersError' })
    expect(await m.net.drive(s.provide('agent:a'))).toBe(1)
    await expect(m.net.drive(s.provide('agent:b'))).rejects.toMatchObject({ name: 'InvalidParametersError' })
    expect(await m.net.drive(s.provide('agent:a'))).toBe(1) // re-providing a name is not a new one
    const many = Array.from({ length: 17 }, (_, i) => `cap${i}`)
    const it = s.findPeers({ requiredCapabilities: many })[Symbol.asyncIterator]()
    await expect(it.next()).rejects.toMatchObject({ name: 'InvalidParametersError' })
    // no capability asked: the closest contacts' records
    const all: Uint8Array[] = []
    for await (const b of s.findPeers({})) all.push(b)
    expect(all).toHaveLength(1)
    expect(s.provided()).toEqual(['agent:a'])
    expect(s.unprovide('agent:a')).toBe(true)
    expect(s.unprovide('agent:a')).toBe(false)
  })

  it('rejects answers that do not fit the request', async () => {
    mesh = await dhtMesh(2, { topology: 'full', withDht: (i) => i === 0 })
    const m = mesh
    const odd = m.net.nodes[1]!
    let reply: KLPValue = { action: 'dht_ok' }
    const handler: MessageHandler = async (msg) => ({ status: ProcessingStatus.PROCESSED, response: await odd.router.createResponse(msg, reply) })
    odd.router.handle(KLPMessageType.PEER_DISCOVERY, handler, { path: DHT_PATH })
    const s = m.dht[0]!
    const contact = { id: kadIdOf(odd.did), did: odd.did, addrs: [odd.address] }
    const target = kadIdOf('x')
    await expect(m.net.drive(s.kad.request(contact, { type: 'find_node', target }))).rejects.toMatchObject({ name: 'UnexpectedResponseError' })
    reply = { action: 'dht_nodes', closer: 'not a list' }
    await expect(m.net.drive(s.kad.request(contact, { type: 'find_node', target }))).rejects.toMatchObject({ name: 'UnexpectedResponseError' })
    reply = { action: 'dht_providers', providers: [], closer: [] }
    await expect(m.net.drive(s.kad.request(contact, { type: 'ping' }))).rejects.toMatchObject({ name: 'UnexpectedResponseError' })
    expect(s.stats().invalidAnswers).toBe(3)
    // a contact with no authority and no address cannot be asked
    const ghost = generateIdentity().did
    await expect(m.net.drive(s.kad.request({ id: kadIdOf(ghost), did: ghost, addrs: [] }, { type: 'ping' }))).rejects.toMatchObject({ name: 'ContactUnreachableError' })
  })
})
