import { describe, expect, it } from 'vitest'
import { createSignatureVerifier } from '@kos-mesh/did-security'
import type { FederatedNode } from '@kos-mesh/interface'
import { PeerRegistry, createNodeRecord, createRecordPeek, createRecordVerifier } from '@kos-mesh/peer-discovery'
import { placement, resolveCollection, storageNodesFromRegistry } from '../src/index.js'
import { identity, manualClock } from './helpers.js'

const T0 = 1_700_000_000_000
function node(did: string, vector_storage: boolean, trust: number): FederatedNode {
  return {
    node_id: did, node_type: 'PeerNode',
    capabilities: { agent_hosting: false, vector_storage, relay_services: false, validation_services: false, archive_services: false, bandwidth_mbps: 100, storage_gb: 10, compute_units: 4 },
    network_info: { addresses: [{ protocol: 'memory', address: did.slice(-6), port: 0, is_public: false, is_relay: false }], protocols_supported: ['klp/1'], nat_type: 'open', connectivity_status: 'connected', latency_ms: 0 },
    trust_profile: { trust_score: trust, endorsements: 0, verification_level: 'basic' },
    last_seen: T0,
  }
}

describe('storage nodes from discovery', () => {
  it('takes the peers whose signed records advertise vector_storage, and placement uses them', async () => {
    const clock = manualClock(T0)
    const registry = new PeerRegistry({ verifyRecord: createRecordVerifier({ signatureVerifier: createSignatureVerifier(), clock }), peekRecord: createRecordPeek(), clock })
    const ids = ['s1', 's2', 's3', 'plain'].map(identity)
    for (const [i, id] of ids.entries()) {
      const rec = await createNodeRecord(node(id.did, i < 3, 5 + i), id.signer, { now: T0, source: `klp://n${i}.mesh.kai/` })
      await registry.merge([rec.bytes], { source: 'test', method: 'direct' })
    }
    const nodes = storageNodesFromRegistry(registry)()
    expect(nodes.map((n) => n.did).sort()).toEqual(ids.slice(0, 3).map((x) => x.did).sort())
    expect(nodes.every((n) => n.authority?.endsWith('.mesh.kai'))).toBe(true)
    const p = placement(resolveCollection({ name: 'docs', dimensions: 2, sharding: { shard_count: 4, replication_factor: 2 } }), nodes)
    for (const holders of p.values()) expect(holders.every((h) => h.did !== ids[3]!.did)).toBe(true)
  })
})
