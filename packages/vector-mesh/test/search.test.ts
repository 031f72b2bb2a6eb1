import { afterEach, describe, expect, it } from 'vitest'
import { placement, resolveCollection, squaredDistance } from '../src/index.js'
import { randomVector, rng } from './helpers.js'
import { createMesh, type Mesh } from './mesh-helpers.js'

let mesh: Mesh | undefined
afterEach(async () => { await mesh?.net.stop(); mesh = undefined })

describe('federated search', () => {
  it('scatters to shard holders, merges the top k, and replaces a dead replica with another', async () => {
    const m = (mesh = await createMesh(5, { strategies: ['push'] }, { placement: true, seed: 4 }))
    const config = { name: 'docs', dimensions: 8, metric: 'l2sq' as const, sharding: { shard_count: 4, replication_factor: 2 } }
    for (const s of m.services) await s.createCollection(config)
    const c = resolveCollection(config)
    const p = placement(c, m.net.nodes.map((n) => ({ did: n.did, authority: n.authority, trust: 8 })))
    // every node holds only its placed shards
    for (const [shard, holders] of p) {
      expect(holders.length).toBe(2)
      for (const [i, s] of m.services.entries()) expect(s.store.holds('docs', shard)).toBe(holders.some((h) => h.did === m.net.nodes[i]!.did))
    }
    const r = rng(1)
    const vectors = Array.from({ length: 200 }, () => randomVector(r, 8))
    // node 0 writes everything: each entry is pushed to its shard's two holders
    for (let i = 0; i < vectors.length; i++) await m.drive(m.services[0]!.put('docs', `v${i}`, vectors[i]!))
    const q = randomVector(r, 8)
    const exact = vectors.map((v, i) => ({ id: `v${i}`, d: squaredDistance(v, q) })).sort((a, b) => a.d - b.d).slice(0, 10).map((x) => x.id)
    // search from a node; compare with exact search
    const searcher = m.services[4]!
    const res = await m.drive(searcher.search('docs', q, { k: 10 }))
    expect(res.complete).toBe(true)
    expect(res.shards.map((s) => s.shard).sort()).toEqual([0, 1, 2, 3])
    expect(res.hits.map((h) => h.id)).toEqual(exact)
    // kill one holder of a shard the searcher does not hold: the other replica answers
    const remote = [...p].find(([shard, holders]) => !searcher.store.holds('docs', shard) && holders.every((h) => h.did !== m.net.nodes[4]!.did))!
    const victim = remote[1][0]!.did
    m.net.network.crash(victim)
    const res2 = await m.drive(searcher.search('docs', q, { k: 10, deadlineMs: 10_000 }))
    expect(res2.complete).toBe(true)
    expect(res2.hits.map((h) => h.id)).toEqual(exact)
    const answer = res2.shards.find((s) => s.shard === remote[0])!
    expect(answer.answeredBy).toBe(remote[1][1]!.did)
    expect(answer.failures.map((f) => f.did)).toEqual([victim])
  })

  it('reports shards with no answer by the deadline instead of failing', async () => {
    const m = (mesh = await createMesh(3, { strategies: ['push'] }, { placement: true, seed: 2 }))
    const config = { name: 'docs', dimensions: 4, sharding: { shard_count: 3, replication_factor: 1 } }
    for (const s of m.services) await s.createCollection(config)
    for (let i = 0; i < 30; i++) await m.drive(m.services[0]!.put('docs', `v${i}`, [i, 1, 2, 3]))
    m.net.network.isolate(m.net.nodes[2]!.did)
    const res = await m.drive(m.services[0]!.search('docs', [1, 1, 2, 3], { k: 5, deadlineMs: 1000 }))
    const missing = res.shards.filter((s) => s.answeredBy === undefined)
    const held = [0, 1, 2].filter((s) => m.services[2]!.store.holds('docs', s) && !m.services[0]!.store.holds('docs', s))
    expect(missing.map((s) => s.shard).sort()).toEqual(held)
    expect(res.complete).toBe(held.length === 0)
    expect(res.hits.length).toBeGreaterThan(0)
  })
})

describe('semantic and geographic sharding through the service', () => {
  it('semantic: entries land on their centroid\'s shard and a query visits only the nearest shards', async () => {
    const m = (mesh = await createMesh(3, { strategies: ['push'] }, { placement: true, seed: 6 }))
    const centres = [[10, 0, 0, 0], [0, 10, 0, 0], [0, 0, 10, 0], [0, 0, 0, 10]]
    const r = rng(4)
    const sample = Array.from({ length: 200 }, (_, i) => centres[i % 4]!.map((x) => x + r() - 0.5))
    const { learnCentroids } = await import('../src/index.js')
    const config = { name: 'sem', dimensions: 4, metric: 'l2sq' as const, sharding: { sharding_method: 'semantic_based' as const, shard_count: 4, replication_factor: 2 }, centroids: learnCentroids(sample, 4, { seed: 2 }), probeShards: 1 }
    for (const s of m.services) await s.createCollection(config)
    for (let i = 0; i < 40; i++) await m.drive(m.services[0]!.put('sem', `p${i}`, sample[i]!))
    const res = await m.drive(m.services[1]!.search('sem', [9.8, 0.1, 0, 0], { k: 5 }))
    expect(res.shards.length).toBe(1)
    expect(res.complete).toBe(true)
    expect(res.hits.length).toBe(5)
    for (const h of res.hits) expect(Number(h.id.slice(1)) % 4).toBe(0) // all from the first cluster
    // moving an entry to another cluster deletes it from its old shard
    await m.drive(m.services[0]!.put('sem', 'p0', [0, 0, 0, 10]))
    const again = await m.drive(m.services[1]!.search('sem', [9.8, 0.1, 0, 0], { k: 20 }))
    expect(again.hits.some((h) => h.id === 'p0')).toBe(false)
  })

  it('geographic: an entry\'s region names its shard, placed on nodes of that region', async () => {
    const regions = ['eu', 'us', 'eu', 'us']
    const storage = () => mesh!.net.nodes.map((x, i) => ({ did: x.did, authority: x.authority, trust: 8, region: regions[i]! }))
    const m = (mesh = await createMesh(4, { strategies: ['push'] }, { placement: true, seed: 8, storage, region: (i) => regions[i]! }))
    const config = { name: 'geo', dimensions: 2, sharding: { sharding_method: 'geographic' as const, replication_factor: 2, locality_hints: [{ region: 'eu' }, { region: 'us' }] } }
    for (const s of m.services) await s.createCollection(config)
    await m.drive(m.services[1]!.put('geo', 'paris', [1, 0], { region: 'eu' }))
    await m.drive(m.services[1]!.put('geo', 'nyc', [0, 1], { region: 'us' }))
    for (const [i, s] of m.services.entries()) {
      expect(s.store.holds('geo', 0)).toBe(regions[i] === 'eu')
      const st = await s.store.shard('geo', regions[i] === 'eu' ? 0 : 1)
      expect(st.allVersions().map((v) => v.id)).toEqual([regions[i] === 'eu' ? 'paris' : 'nyc'])
    }
    const res = await m.drive(m.services[0]!.search('geo', [0, 1], { k: 1, region: 'us' }))
    expect(res.shards.map((s) => s.shard)).toEqual([1])
    expect(res.hits[0]!.id).toBe('nyc')
  })
})
