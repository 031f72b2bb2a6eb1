import { afterEach, describe, expect, it } from 'vitest'
import { KLPMessageType, ProcessingStatus } from '@kos-mesh/interface'
import type { KLPValue, MessageHandler, Signer } from '@kos-mesh/interface'
import { createMessage, decodeMessage, encodeMessage, signMessage } from '@kos-mesh/klp-codec'
import { generateIdentity } from '@kos-mesh/did-security'
import { createNodeRecord, RECORD_TARGET } from '../src/index.js'
import { kadIdOf } from '../src/kad/index.js'
import { createProviderRecord, dhtPayloadValue, DHT_PATH } from '../src/dht/index.js'
import type { DhtResponsePayload } from '../src/dht/index.js'
import { dhtMesh } from './dht-helpers.js'
import type { DhtMesh } from './dht-helpers.js'
import { makeNode } from './helpers.js'

// Forged and tampered records pushed at an honest node, in answers and in requests, by a liar
// that is a perfectly valid peer itself. Node 0: honest DHT; node 1: the liar (a raw /dht
// handler); node 2: the victim whose identity the liar abuses (it runs no DHT).

let mesh: DhtMesh | undefined
afterEach(async () => {
  await mesh?.stop()
  mesh = undefined
})

async function recordSignedBy(node: ReturnType<typeof makeNode>, signer: Signer, now: number): Promise<Uint8Array> {
  const msg = createMessage({ type: KLPMessageType.PEER_DISCOVERY, source: 'klp://node-2.mesh.kai/dht', target: RECORD_TARGET, data: { action: 'record', node: node as unknown as KLPValue }, ttl: 3600, timestamp: now })
  return encodeMessage(await signMessage(msg, signer))
}

function flipLast(b: Uint8Array): Uint8Array {
  const c = b.slice()
  c[c.length - 1]! ^= 1
  return c
}

describe('DHT service against forged records', () => {
  it('drops forged and tampered contacts and provider records in answers; refuses forged requests', async () => {
    mesh = await dhtMesh(3, { topology: 'full', withDht: (i) => i === 0 })
    const m = mesh
    const clock = m.net.network.clock
    const now = Math.floor(clock.now())
    const [honest, liar, victim] = m.net.nodes as [typeof m.net.nodes[0], typeof m.net.nodes[0], typeof m.net.nodes[0]]
    const bystander = generateIdentity()

    const liarRecord = (await createNodeRecord(makeNode(liar.did, { address: 'node-1', lastSeen: now }), liar.identity.signer, { now, source: `klp://${liar.authority}${DHT_PATH}` })).bytes
    const victimRecord = (await createNodeRecord(makeNode(victim.did, { address: 'node-2', lastSeen: now }), victim.identity.signer, { now, source: `klp://${victim.authority}${DHT_PATH}` })).bytes
    const bystanderRecord = (await createNodeRecord(makeNode(bystander.did, { address: 'nowhere', lastSeen: now }), bystander.signer, { now })).bytes
    // contacts: the victim's record tampered, and a record of the victim signed by the liar
    const tampered = flipLast(victimRecord)
    const mismatched = await recordSignedBy(makeNode(victim.did, { address: 'node-1', lastSeen: now }), liar.identity.signer, now)
    // providers: the victim's provider record under the liar's signature; the liar's own (valid)
    // one with someone else's node record; a valid one of another key
    const victimProv = await createProviderRecord('capability:vector_storage', victim.identity.signer, { now })
    const liarProv = await createProviderRecord('capability:vector_storage', liar.identity.signer, { now })
    const forgedProv = encodeMessage({ ...decodeMessage(victimProv.bytes), signature: decodeMessage(liarProv.bytes).signature })
    const otherKey = await createProviderRecord('agent:other', liar.identity.signer, { now })

    const answer = (data: unknown): DhtResponsePayload => {
      const action = (data as { action: string }).action
      if (action === 'dht_ping') return { action: 'dht_pong', sender: liarRecord }
      if (action === 'dht_get_providers') {
        return { action: 'dht_providers', providers: [{ record: forgedProv }, { record: liarProv.bytes, node: bystanderRecord }, { record: otherKey.bytes }], closer: [tampered, mismatched], sender: liarRecord }
      }
      if (action === 'dht_add_provider') return { action: 'dht_ok', sender: liarRecord }
      return { action: 'dht_nodes', closer: [tampered, mismatched], sender: liarRecord }
    }
    const liarHandler: MessageHandler = async (msg) => ({ status: ProcessingStatus.PROCESSED, response: await liar.router.createResponse(msg, dhtPayloadValue(answer(msg.payload.data))) })
    liar.router.handle(KLPMessageType.PEER_DISCOVERY, liarHandler, { path: DHT_PATH })

    const dht = m.dht[0]!
    const r = await m.net.drive(dht.bootstrap([{ address: liar.address, did: liar.did }]))
    expect(r.seedsReached).toBe(1)
    expect(dht.contacts().map((c) => c.did)).toEqual([liar.did])

    const providers = await m.net.drive(dht.findProviders('capability:vector_storage'))
    // only the liar's own, validly signed provider record; never the victim; never a foreign node record
    expect(providers.map((p) => p.provider)).toEqual([liar.did])
    expect(providers[0]!.record?.peerId).toBe(liar.did)
    expect(dht.kad.table.has(kadIdOf(victim.did))).toBe(false)
    await expect(m.net.drive(dht.findNode(victim.did))).rejects.toMatchObject({ name: 'NodeNotFoundError', code: 'ERR_NODE_NOT_FOUND' })

    const rejected = dht.stats().rejectedRecords
    expect(rejected.InvalidRecordSignatureError).toBeGreaterThanOrEqual(1)
    expect(rejected.RecordSignerMismatchError).toBeGreaterThanOrEqual(1)
    expect(rejected.InvalidProviderSignatureError).toBeGreaterThanOrEqual(1)
    // a foreign node record on a provider entry, and a provider record of another key
    expect(rejected.DhtRecordMismatchError).toBeGreaterThanOrEqual(2)

    // requests: the liar pushes forged things at the honest node
    const ask = (data: KLPValue) => m.net.drive(liar.router.request({ type: KLPMessageType.PEER_DISCOVERY, target: `klp://${honest.authority}${DHT_PATH}`, sourcePath: DHT_PATH, data }, { timeoutMs: 4000 }))
    // a sender record that is not the signer's: not learned as the asker
    const nodes = await ask(dhtPayloadValue({ action: 'dht_find_node', target: kadIdOf(victim.did), sender: tampered }))
    expect((nodes.payload.data as { action: string }).action).toBe('dht_nodes')
    await ask(dhtPayloadValue({ action: 'dht_ping', sender: bystanderRecord }))
    expect(dht.kad.table.has(kadIdOf(bystander.did))).toBe(false)
    expect(dht.kad.table.has(kadIdOf(victim.did))).toBe(false)
    expect(dht.stats().rejectedRecords.DhtRecordMismatchError).toBeGreaterThanOrEqual(3)
    // a forged provider record, a valid one of another node (providers announce themselves), garbage
    await expect(ask(dhtPayloadValue({ action: 'dht_add_provider', provider: { record: forgedProv } }))).rejects.toMatchObject({ name: 'RemoteRejectedError', reason: 'invalid_provider_record' })
    await expect(ask(dhtPayloadValue({ action: 'dht_add_provider', provider: { record: victimProv.bytes } }))).rejects.toMatchObject({ name: 'RemoteRejectedError', reason: 'provider_not_sender' })
    await expect(ask({ action: 'dht_find_node', target: new Uint8Array(5) })).rejects.toMatchObject({ name: 'RemoteRejectedError', reason: 'invalid_dht_message' })
    await expect(ask({ action: 'dht_nodes', closer: [] })).rejects.toMatchObject({ name: 'RemoteRejectedError', reason: 'invalid_dht_message' })
    // nothing of the victim was stored as a provider
    const local = await m.net.drive(dht.findProviders('capability:vector_storage'))
    expect(local.map((p) => p.provider)).toEqual([liar.did])
    expect(dht.stats().refused).toBe(4)
  })
})
