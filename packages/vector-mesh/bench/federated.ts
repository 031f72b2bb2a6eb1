/**
 * Federated search over 8 nodes (memory transport, real time, signed KLP requests): 8 shards,
 * replication factor 2, clustered 128-d vectors. Recall@10 against exact search, queries per
 * second from one node, next to the same queries run on the 8 shard indexes in-process (no
 * network): the federated overhead. And the time to replicate one shard of `n` vectors to a new
 * replica, by bulk snapshot and by chunked fetches, next to ingesting the same entries locally.
 */
import { KLPMessageType, systemClock } from '@kos-mesh/interface'
import { bulkTransfer } from '@kos-mesh/klp-router'
import { createTestnet } from '@kos-mesh/klp-router/testnet'
import type { Identity } from '@kos-mesh/did-security'
import { VectorStore, memoryKeyValueStore, placement, shardOf, resolveCollection, signEntry, vectorBytes, vectorMesh, type SignedEntry, type StorageNode } from '../src/index.js'
import { now } from './data.js'
import { recallAt } from './local.js'

export async function signAll(identity: Identity, collection: string, data: Float32Array[]): Promise<SignedEntry[]> {
  const out: SignedEntry[] = []
  const wall = systemClock.now()
  for (let i = 0; i < data.length; i++) {
    out.push(await signEntry({ v: 1, collection, id: `v${i}`, op: 'put', vector: vectorBytes(data[i]!), owner: identity.did, writer: identity.did, hlc: { wall, counter: 0 }, metadata: { i } }, identity.signer))
  }
  return out
}

export interface FederatedRow { nodes: number; vectors: number; recall: number; qps: number; localQps: number; overhead: number; complete: number; latencyMs: number; concurrentQps: number }

export async function benchFederated(data: Float32Array[], queries: Float32Array[], truth: bigint[][], nodes = 8): Promise<FederatedRow> {
  const net = await createTestnet(nodes, { router: { requestTimeoutMs: 10_000 } })
  try {
    for (const a of net.nodes) for (const b of net.nodes) if (a !== b) a.trust.set(b.did, { trust_score: 8, verification_level: 'basic' })
    const storage = (): StorageNode[] => net.nodes.map((x) => ({ did: x.did, authority: x.authority, trust: 8 }))
    const config = { name: 'bench', dimensions: data[0]!.length, metric: 'l2sq' as const, sharding: { shard_count: 8, replication_factor: 2 } }
    const services = net.nodes.map((node) => vectorMesh({ syncIntervalMs: 0, strategies: ['pull'] })({ router: node.router, signer: node.identity.signer, kv: memoryKeyValueStore(), trust: node.trust, storageNodes: storage }))
    for (const s of services) { await s.start(); await s.createCollection(config) }
    const entries = await signAll(net.nodes[0]!.identity, 'bench', data)
    const c = resolveCollection(config)
    const p = placement(c, storage())
    for (const e of entries) {
      const shard = shardOf(c, e.key, e.body)
      for (const h of p.get(shard)!) await services[net.nodes.findIndex((n) => n.did === h.did)]!.store.applyEntry(e, { collection: 'bench', shard })
    }
    const idOf = (id: string): bigint => BigInt(id.slice(1))
    // in-process: the same per-shard searches and merge, no network
    const local = async (q: Float32Array): Promise<bigint[]> => {
      const all = []
      for (const [shard, holders] of p) all.push(...(await services[net.nodes.findIndex((n) => n.did === holders[0]!.did)]!.store.searchShard('bench', shard, q, 10)))
      return all.sort((a, b) => a.distance - b.distance).slice(0, 10).map((h) => idOf(h.id))
    }
    for (const q of queries.slice(0, 20)) { await local(q); await services[0]!.search('bench', q, { k: 10 }) } // warm-up
    let t0 = now()
    for (const q of queries) await local(q)
    const localQps = queries.length / ((now() - t0) / 1000)
    const found: bigint[][] = []
    let complete = 0
    t0 = now()
    for (const q of queries) {
      const r = await services[0]!.search('bench', q, { k: 10 })
      if (r.complete) complete++
      found.push(r.hits.map((h) => idOf(h.id)))
    }
    const qps = queries.length / ((now() - t0) / 1000)
    // throughput: 16 queries in flight
    t0 = now()
    let next = 0
    await Promise.all(Array.from({ length: 16 }, async () => { while (next < queries.length) await services[0]!.search('bench', queries[next++]!, { k: 10 }) }))
    const concurrentQps = queries.length / ((now() - t0) / 1000)
    for (const s of services) await s.stop()
    return { nodes, vectors: data.length, recall: recallAt(found, truth, 10), qps, localQps, overhead: localQps / qps, complete: complete / queries.length, latencyMs: 1000 / qps, concurrentQps }
  } finally {
    await net.stop()
  }
}

export interface ReplicateRow { vectors: number; bulkSeconds: number; fetchSeconds: number; localIngestSeconds: number }

export async function benchReplicate(data: Float32Array[]): Promise<ReplicateRow> {
  const net = await createTestnet(3, { router: { requestTimeoutMs: 30_000 } })
  try {
    for (const a of net.nodes) for (const b of net.nodes) if (a !== b) a.trust.set(b.did, { trust_score: 8, verification_level: 'basic' })
    const config = { name: 'rep', dimensions: data[0]!.length, metric: 'l2sq' as const }
    const bulks = net.nodes.map((node) => bulkTransfer({ type: KLPMessageType.VECTOR_SYNC })({ router: node.router, clock: systemClock }))
    for (const b of bulks) await b.start()
    const services = net.nodes.map((node, i) => vectorMesh({ syncIntervalMs: 0, strategies: ['pull'], requestTimeoutMs: 60_000 })({ router: node.router, signer: node.identity.signer, kv: memoryKeyValueStore(), trust: node.trust, ...(i !== 2 ? { bulk: bulks[i]! } : {}) }))
    for (const s of services) { await s.start(); await s.createCollection(config) }
    const entries = await signAll(net.nodes[0]!.identity, 'rep', data)
    // the baseline: verify and ingest the same entries locally (no network)
    const base = new VectorStore({ kv: memoryKeyValueStore(), clock: systemClock, signer: net.nodes[0]!.identity.signer, did: net.nodes[0]!.did })
    await base.createCollection(config)
    let t0 = now()
    for (const e of entries) await base.applyBytes(e.bytes, { collection: 'rep', shard: 0 })
    const localIngestSeconds = (now() - t0) / 1000
    // the source replica (node 0) and node 2 hold the shard
    for (const e of entries) await services[0]!.store.applyEntry(e, { collection: 'rep', shard: 0 })
    // node 1 (with bulk) replicates by snapshot; node 2 (no bulk) by chunked fetches
    t0 = now()
    const r1 = await services[1]!.syncShardWith(net.nodes[0]!.authority, 'rep', 0)
    const bulkSeconds = (now() - t0) / 1000
    t0 = now()
    const r2 = await services[2]!.syncShardWith(net.nodes[0]!.authority, 'rep', 0)
    const fetchSeconds = (now() - t0) / 1000
    if (r1.fetched !== data.length || r2.fetched !== data.length) throw new Error(`expected ${data.length} fetched, got ${r1.fetched} and ${r2.fetched}`)
    for (const s of services) await s.stop()
    for (const b of bulks) await b.stop()
    return { vectors: data.length, bulkSeconds, fetchSeconds, localIngestSeconds }
  } finally {
    await net.stop()
  }
}
