import { afterEach, describe, expect, it } from 'vitest'
import { signEntry, vectorBytes, SyncStatus, type EntryBody } from '../src/index.js'
import { randomVector, rng } from './helpers.js'
import { createMesh, stateOf, type Mesh } from './mesh-helpers.js'

let mesh: Mesh | undefined
afterEach(async () => { await mesh?.net.stop(); mesh = undefined })

const req = (shard_ids: string[] = []) => ({ shard_ids, since_timestamp: new Date(0), max_vectors: 1_000_000, priority: 5 as const, start_time: new Date(0) })

async function syncAll(m: Mesh): Promise<void> {
  for (const s of m.services) {
    const r = await m.drive(s.syncVectorData(req()))
    for (const p of r.peer_results) expect(p.status, p.error).toBe(SyncStatus.COMPLETED)
  }
}

describe('vector-mesh service', () => {
  for (const seed of [11, 23, 37]) it(`converges after random partitions and heals; no deleted entry returns (seed ${seed})`, async () => {
    const m = (mesh = await createMesh(4, {}, { seed }))
    const r = rng(seed)
    for (const s of m.services) await s.createCollection({ name: 'docs', dimensions: 8, sharding: { shard_count: 2 } })
    const deleted = new Map<number, Set<string>>(m.services.map((_, i) => [i, new Set()]))
    for (let round = 0; round < 6; round++) {
      // a random partition, a few writes, updates and deletes on every side, then some syncs
      const dids = m.net.nodes.map((n) => n.did)
      const cut = dids.filter(() => r() < 0.5)
      m.net.network.partition(cut, dids.filter((d) => !cut.includes(d)))
      for (let op = 0; op < 12; op++) {
        const i = Math.floor(r() * 4)
        const s = m.services[i]!
        const id = `e${Math.floor(r() * 10)}`
        if (r() < 0.3) { await m.drive(s.delete('docs', id)); deleted.get(i)!.add(id) } else { await m.drive(s.put('docs', id, randomVector(r, 8), { metadata: { round } })); deleted.get(i)!.delete(id) }
      }
      const i = Math.floor(r() * 4)
      await m.drive(m.services[i]!.syncVectorData(req()))
      m.net.network.heal()
      await m.net.network.runFor(3000)
    }
    await syncAll(m)
    await syncAll(m)
    const states = await Promise.all(m.services.map((s) => stateOf(s, 'docs')))
    for (const st of states.slice(1)) expect(st).toEqual(states[0])
    // the last op of each writer decides: deleted ids are tombstones everywhere, not live
    for (const [i, ids] of deleted) {
      for (const id of ids) {
        for (const s of m.services) {
          const e = await s.store.get('docs', m.net.nodes[i]!.did, id)
          expect(e?.body.op).toBe('del')
          const hits = await m.drive(s.search('docs', randomVector(r, 8), { k: 50 }))
          expect(hits.hits.some((h) => h.id === id && h.owner === m.net.nodes[i]!.did)).toBe(false)
        }
      }
    }
  })

  it('rejects forged, foreign-owner and replayed entries', async () => {
    const m = (mesh = await createMesh(2))
    const [a, b] = m.services as [typeof m.services[0], typeof m.services[0]]
    const [na, nb] = m.net.nodes
    for (const s of m.services) await s.createCollection({ name: 'docs', dimensions: 4 })
    const v1 = await m.drive(a.put('docs', 'x', [1, 0, 0, 0]))
    const v2 = await m.drive(a.put('docs', 'x', [0, 1, 0, 0]))
    const del = await m.drive(a.delete('docs', 'x'))
    expect((await b.store.get('docs', na!.did, 'x'))?.body.op).toBe('del')
    // b (malicious) pushes to a: a replay of an older version, a forged copy, an entry claiming a's ownership
    const forged = v2.bytes.slice(); forged[forged.length - 1]! ^= 1
    const foreign: EntryBody = { ...v2.body, hlc: { wall: del.body.hlc.wall + 10, counter: 0 }, writer: na!.did }
    const foreignBytes = (await signEntry(foreign, { ...nb!.identity.signer, keyId: nb!.identity.keyId, sign: (d: Uint8Array) => nb!.identity.sign(d) })).bytes
    const ownerSwap = await signEntry({ ...foreign, writer: nb!.did, owner: nb!.did }, nb!.identity.signer)
    const res = await m.drive(nb!.router.request({ type: 'VECTOR_SYNC', target: `klp://${na!.authority}/vectors`, data: { op: 'push', collection: 'docs', shard: 0, entries: [v1.bytes, forged, foreignBytes] } }))
    expect(res.payload.data).toMatchObject({ op: 'ack', applied: 0, rejected: 2 }) // v1 is stale (not applied, not an error)
    expect((await a.store.get('docs', na!.did, 'x'))?.body.op).toBe('del')
    // b's own entry with the same id lives under b's key, never a's
    await m.drive(nb!.router.request({ type: 'VECTOR_SYNC', target: `klp://${na!.authority}/vectors`, data: { op: 'push', collection: 'docs', shard: 0, entries: [ownerSwap.bytes] } }))
    expect((await a.store.get('docs', na!.did, 'x'))?.body.op).toBe('del')
    expect((await a.store.get('docs', nb!.did, 'x'))?.body.op).toBe('put')
    expect(a.stats().entriesRefused).toBe(2)
    expect(a.protocol('docs')).toEqual({ protocol_version: '1.0', sync_strategies: ['hybrid'], sharding_config: { sharding_method: 'hash_based', shard_count: 1, replication_factor: 1, locality_hints: [] }, consistency_model: 'eventual' })
    expect(vectorBytes([1])).toBeInstanceOf(Uint8Array)
  })

  it('refuses sync to a requester below the minimum trust score (insufficient_trust)', async () => {
    const m = (mesh = await createMesh(2))
    const [na, nb] = m.net.nodes
    na!.trust.set(nb!.did, { trust_score: 3 })
    for (const s of m.services) await s.createCollection({ name: 'docs', dimensions: 4 })
    const r = await m.drive(m.services[1]!.syncVectorData(req()))
    expect(r.peer_results[0]!.status).toBe(SyncStatus.FAILED)
    expect(r.peer_results[0]!.error).toMatch(/insufficient_trust/)
    // refused by the router's check of the message's requirements or by the service's own policy
    expect(m.services[0]!.stats().requests).toBeLessThanOrEqual(1)
  })

  it('a replica killed during sync: the sync fails for that peer, what arrived is consistent, another replica completes it', async () => {
    const m = (mesh = await createMesh(3, { maxChunkBytes: 4096 }))
    const [a, b, c] = m.services as [typeof m.services[0], typeof m.services[0], typeof m.services[0]]
    for (const s of m.services) await s.createCollection({ name: 'docs', dimensions: 16 })
    const r = rng(9)
    // a writes 400 entries while b is cut off; c gets them by push
    m.net.network.isolate(m.net.nodes[1]!.did)
    for (let i = 0; i < 400; i++) await m.drive(a.put('docs', `e${i}`, randomVector(r, 16)))
    m.net.network.heal()
    await m.net.network.runFor(3000)
    const sync = b.syncShardWith(m.net.nodes[0]!.authority, 'docs', 0)
    sync.catch(() => {})
    await m.net.network.runFor(60) // some chunks arrive
    m.net.network.crash(m.net.nodes[0]!.did)
    await expect(m.drive(sync)).rejects.toBeDefined()
    const st = await b.store.shard('docs', 0)
    const partial = st.liveCount
    expect(partial).toBeLessThan(400)
    expect(st.indexSize).toBe(partial)
    const done = await m.drive(b.syncShardWith(m.net.nodes[2]!.authority, 'docs', 0))
    expect(done.fetched).toBe(400 - partial)
    expect(st.indexSize).toBe(400)
    expect(await stateOf(b, 'docs')).toEqual(await stateOf(c, 'docs'))
  })

  it('since_timestamp limits the comparison; a full sync does not depend on it', async () => {
    const m = (mesh = await createMesh(2, { strategies: ['pull'] }))
    const [a, b] = m.services as [typeof m.services[0], typeof m.services[0]]
    for (const s of m.services) await s.createCollection({ name: 'docs', dimensions: 4 })
    await m.drive(a.put('docs', 'old', [1, 0, 0, 0]))
    await m.net.network.runFor(10_000)
    const t = m.net.network.clock.now()
    await m.drive(a.put('docs', 'new', [0, 1, 0, 0]))
    const r1 = await m.drive(b.syncVectorData({ ...req(['docs/0']), since_timestamp: new Date(t) }))
    expect(r1.total_vectors_synced).toBe(1)
    const r2 = await m.drive(b.syncVectorData(req(['docs/0'])))
    expect(r2.total_vectors_synced).toBe(1)
    expect(await stateOf(b, 'docs')).toEqual(await stateOf(a, 'docs'))
  })

  it('gossip: an announced fingerprint that differs makes the receiver pull', async () => {
    const m = (mesh = await createMesh(3, { strategies: ['gossip'], syncIntervalMs: 1000 }))
    for (const s of m.services) await s.createCollection({ name: 'docs', dimensions: 4 })
    await m.drive(m.services[0]!.put('docs', 'g', [1, 2, 3, 4]))
    expect((await stateOf(m.services[2]!, 'docs')).size).toBe(0) // gossip does not push
    await m.net.network.runFor(5000)
    for (const s of m.services) expect((await stateOf(s, 'docs')).size).toBe(1)
  })

  it('pull: the periodic sync repairs what a partition kept from a replica', async () => {
    const m = (mesh = await createMesh(3, { strategies: ['pull'], syncIntervalMs: 1000 }))
    for (const s of m.services) await s.createCollection({ name: 'docs', dimensions: 4 })
    m.net.network.isolate(m.net.nodes[2]!.did)
    for (let i = 0; i < 5; i++) await m.drive(m.services[0]!.put('docs', `p${i}`, [i, 1, 1, 1]))
    await m.net.network.runFor(3000)
    expect((await stateOf(m.services[2]!, 'docs')).size).toBe(0)
    m.net.network.heal()
    await m.net.network.runFor(5000)
    for (const s of m.services) expect((await stateOf(s, 'docs')).size).toBe(5)
  })
})
