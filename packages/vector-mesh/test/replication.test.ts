import { afterEach, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { VectorStore, placement, resolveCollection, unpackShard, type StorageNode } from '../src/index.js'
import { MemoryKv, identity, manualClock, randomVector, rng } from './helpers.js'
import { createMesh, stateOf, type Mesh } from './mesh-helpers.js'

let mesh: Mesh | undefined
afterEach(async () => { await mesh?.net.stop(); mesh = undefined })
const req = () => ({ shard_ids: [], since_timestamp: new Date(0), max_vectors: Number.MAX_SAFE_INTEGER, priority: 5 as const, start_time: new Date(0) })

describe('replication', () => {
  it('a large delta travels as a bulk snapshot, verified entry by entry', async () => {
    const m = (mesh = await createMesh(2, { bulkThreshold: 100 }, { bulk: true }))
    const [a, b] = m.services as [typeof m.services[0], typeof m.services[0]]
    for (const s of m.services) await s.createCollection({ name: 'docs', dimensions: 8 })
    m.net.network.isolate(m.net.nodes[1]!.did)
    const r = rng(2)
    for (let i = 0; i < 300; i++) await m.drive(a.put('docs', `e${i}`, randomVector(r, 8)))
    m.net.network.heal()
    await m.net.network.runFor(3000)
    const res = await m.drive(b.syncShardWith(m.net.nodes[0]!.authority, 'docs', 0))
    expect(res.fetched).toBe(300)
    expect(m.bulks[1]!.stats().bytesReceived).toBeGreaterThan(300 * 100) // by bulk transfer, not fetches
    expect(await stateOf(b, 'docs')).toEqual(await stateOf(a, 'docs'))
  })

  it('a snapshot with a forged entry: that entry is refused, the others applied', async () => {
    const m = (mesh = await createMesh(2, { bulkThreshold: 10, strategies: ['pull'] }, { bulk: true }))
    const [a, b] = m.services as [typeof m.services[0], typeof m.services[0]]
    for (const s of m.services) await s.createCollection({ name: 'docs', dimensions: 4 })
    for (let i = 0; i < 30; i++) await m.drive(a.put('docs', `e${i}`, [i, 1, 2, 3]))
    // a's stored copy of one entry is tampered with (a dishonest or corrupted replica)
    const key = [...m.kvs[0]!.map.keys()].find((k) => k.startsWith('vm/docs/0/e/'))!
    const bytes = m.kvs[0]!.map.get(key)!
    bytes[bytes.length - 1]! ^= 1
    const res = await m.drive(b.syncShardWith(m.net.nodes[0]!.authority, 'docs', 0))
    expect(res.fetched).toBe(29)
    expect(res.refused).toEqual({ InvalidEntrySignatureError: 1 })
    expect((await b.store.shard('docs', 0)).indexSize).toBe(29)
  })

  it('re-replicates a shard when a holder leaves', async () => {
    let gone: string | undefined
    const holderList = (): StorageNode[] => mesh!.net.nodes.filter((n) => n.did !== gone).map((x) => ({ did: x.did, authority: x.authority, trust: 8 }))
    const m = (mesh = await createMesh(4, { strategies: ['push'] }, { placement: true, seed: 3, storage: holderList }))
    const config = { name: 'docs', dimensions: 4, sharding: { shard_count: 2, replication_factor: 2 } }
    for (const s of m.services) await s.createCollection(config)
    const c = resolveCollection(config)
    const all = holderList()
    const before = placement(c, all)
    for (let i = 0; i < 40; i++) await m.drive(m.services[0]!.put('docs', `e${i}`, [i, 1, 0, 0]))
    // the first holder of shard 0 leaves
    gone = before.get(0)![0]!.did
    m.net.network.crash(gone)
    const after = placement(c, holderList())
    const newcomer = after.get(0)!.find((n) => !before.get(0)!.some((x) => x.did === n.did))!
    const ni = m.net.nodes.findIndex((n) => n.did === newcomer.did)
    const sync = await m.drive(m.services[ni]!.syncVectorData(req()))
    expect(sync.peer_results.every((p) => p.status === 'completed')).toBe(true)
    // every live holder of every shard has the same entries again
    for (const [shard, holders] of after) {
      const states = await Promise.all(holders.map(async (h) => {
        const s = m.services[m.net.nodes.findIndex((n) => n.did === h.did)]!
        return (await s.store.shard('docs', shard)).allVersions().map((v) => v.key).sort()
      }))
      expect(states[0]!.length).toBeGreaterThan(0)
      for (const st of states) expect(st).toEqual(states[0])
    }
  })

  it('tombstones: forgotten after the horizon, and older entries refused so nothing comes back', async () => {
    const clock = manualClock(1_000_000)
    const alice = identity('alice')
    const store = new VectorStore({ kv: new MemoryKv(), clock, signer: alice.signer, did: alice.did, tombstoneHorizonMs: 10_000 })
    await store.open()
    await store.createCollection({ name: 'docs', dimensions: 2 })
    const put = await store.signPut('docs', 'x', [1, 2])
    await store.applyLocal(put)
    await store.applyLocal(await store.signDelete('docs', 'x'))
    clock.set(1_000_000 + 5_000)
    expect(await store.gc()).toBe(0)
    clock.set(1_000_000 + 20_000)
    expect(await store.gc()).toBe(1)
    await expect(store.applyBytes(put.bytes)).rejects.toMatchObject({ name: 'EntryTooOldError' })
    expect(await store.get('docs', alice.did, 'x')).toBeUndefined()
    // and from the future
    const future = new VectorStore({ kv: new MemoryKv(), clock: manualClock(0), signer: alice.signer, did: alice.did })
    await future.open()
    await future.createCollection({ name: 'docs', dimensions: 2 })
    await expect(future.applyBytes(put.bytes)).rejects.toMatchObject({ name: 'EntryFromFutureError' })
  })

  it('snapshot records are bounded', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
      try { unpackShard(b) } catch (err) { expect((err as Error).name).toBe('InvalidVectorMessageError') }
    }))
    expect(() => unpackShard(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 1))).toThrow(expect.objectContaining({ name: 'InvalidVectorMessageError' }))
  })
})
