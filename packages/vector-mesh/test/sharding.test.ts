import { describe, expect, it } from 'vitest'
import { entryKey, learnCentroids, rankHolders, placement, placementChanges, resolveCollection, shardOf, shardsForQuery, ShardingMethod, type StorageNode } from '../src/index.js'
import { rng } from './helpers.js'

const nodes: StorageNode[] = Array.from({ length: 10 }, (_, i) => ({ did: `did:key:n${i}`, trust: i < 2 ? 9 : 5, region: i % 2 === 0 ? 'eu' : 'us' }))

describe('sharding', () => {
  it('hash sharding spreads keys evenly', () => {
    const c = resolveCollection({ name: 'docs', dimensions: 4, sharding: { shard_count: 8 } })
    const counts = new Array(8).fill(0)
    for (let i = 0; i < 8000; i++) counts[shardOf(c, entryKey('did:key:a', `id${i}`), { id: `id${i}` })]++
    for (const n of counts) expect(n).toBeGreaterThan(800)
  })

  it('range sharding follows the boundaries', () => {
    const c = resolveCollection({ name: 'docs', dimensions: 4, sharding: { sharding_method: ShardingMethod.RANGE_BASED, shard_count: 3 }, rangeBoundaries: ['g', 'p'] })
    expect(['a', 'g', 'h', 'p', 'z'].map((id) => shardOf(c, 'k', { id }))).toEqual([0, 1, 1, 2, 2])
    expect(() => resolveCollection({ name: 'docs', dimensions: 4, sharding: { sharding_method: ShardingMethod.RANGE_BASED, shard_count: 3 }, rangeBoundaries: ['p', 'g'] })).toThrow(expect.objectContaining({ name: 'InvalidCollectionError' }))
  })

  it('semantic sharding: learned centroids separate clusters, and queries visit only the nearest shards', () => {
    const r = rng(3)
    const centres = [[10, 0], [0, 10], [-10, 0], [0, -10]]
    const sample = Array.from({ length: 400 }, (_, i) => centres[i % 4]!.map((x) => x + r() - 0.5))
    const centroids = learnCentroids(sample, 4, { seed: 1 })
    const c = resolveCollection({ name: 'docs', dimensions: 2, sharding: { sharding_method: ShardingMethod.SEMANTIC_BASED, shard_count: 4 }, centroids, probeShards: 1 })
    const shardOfCentre = centres.map((v) => shardOf(c, 'k', { id: 'x' }, v))
    expect(new Set(shardOfCentre).size).toBe(4)
    for (let i = 0; i < 400; i++) expect(shardOf(c, 'k', { id: 'x' }, sample[i]!)).toBe(shardOfCentre[i % 4])
    expect(shardsForQuery(c, [9, 1])).toEqual([shardOfCentre[0]])
  })

  it('geographic sharding: region names the shard; placement prefers the region', () => {
    const c = resolveCollection({ name: 'docs', dimensions: 2, sharding: { sharding_method: ShardingMethod.GEOGRAPHIC, replication_factor: 2, locality_hints: [{ region: 'eu' }, { region: 'us' }] } })
    expect(c.sharding.shard_count).toBe(2)
    expect(shardOf(c, 'k', { id: 'x', region: 'us' })).toBe(1)
    expect(shardsForQuery(c, [0, 0], { region: 'eu' })).toEqual([0])
    const p = placement(c, nodes)
    expect(p.get(0)!.every((n) => n.region === 'eu')).toBe(true)
    expect(p.get(1)!.every((n) => n.region === 'us')).toBe(true)
  })

  it('placement: replication factor, the same whatever the trust views, minimum trust, minimal moves when a holder leaves', () => {
    const c = resolveCollection({ name: 'docs', dimensions: 2, sharding: { shard_count: 64, replication_factor: 3 } })
    const p = placement(c, nodes)
    for (const holders of p.values()) expect(new Set(holders.map((h) => h.did)).size).toBe(3)
    // another node's trust view gives the same holders (unless weightByTrust, for a shared table)
    const otherView = placement(c, nodes.map((n, i) => ({ ...n, trust: 1 + i / 2 })))
    for (const [s, holders] of p) expect(otherView.get(s)!.map((h) => h.did)).toEqual(holders.map((h) => h.did))
    let trusted = 0
    for (const holders of placement(c, nodes, { weightByTrust: true }).values()) trusted += holders.filter((h) => h.trust === 9).length
    expect(trusted / (64 * 3)).toBeGreaterThan(2 / 10) // weighted: trusted nodes take more than their share
    expect(rankHolders([{ did: 'a', trust: 2 }, { did: 'b', trust: 7 }, { did: 'c', trust: 2 }]).map((h) => h.did)).toEqual(['b', 'a', 'c'])
    const strict = placement(c, nodes, { minTrust: 6 })
    for (const holders of strict.values()) expect(holders.every((h) => h.trust >= 6)).toBe(true)
    const gone = nodes[4]!.did
    const after = placement(c, nodes.filter((n) => n.did !== gone))
    const changes = placementChanges(p, after)
    for (const ch of changes) {
      expect(ch.drop.map((n) => n.did)).toEqual([gone])
      expect(ch.add.length).toBe(1)
      expect(ch.sources.length).toBe(2)
    }
    const held = [...p.values()].filter((h) => h.some((n) => n.did === gone)).length
    expect(changes.length).toBe(held)
  })
})
