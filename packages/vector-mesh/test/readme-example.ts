import { createTestnet } from '@kos-mesh/klp-router/testnet'
import { memoryKeyValueStore, vectorMesh } from '@kos-mesh/vector-mesh'

// three routers on the memory transport, in virtual time; each trusts the others enough to sync
const net = await createTestnet(3, { time: 'virtual', seed: 1 })
for (const x of net.nodes) for (const y of net.nodes) if (x !== y) x.trust.set(y.did, { trust_score: 8, verification_level: 'basic' })
const clock = net.network.clock
const [a, b, c] = net.nodes.map((node) => vectorMesh({ syncIntervalMs: 0 })({ router: node.router, signer: node.identity.signer, kv: memoryKeyValueStore(), clock, trust: node.trust }))
for (const s of [a!, b!, c!]) {
  await s.start()
  await s.createCollection({ name: 'docs', dimensions: 4, metric: 'cos' })
}

// a writes two signed entries (pushed to the other replicas), then deletes one with a signed tombstone
await net.drive(a!.put('docs', 'apple', [1, 0, 0, 0], { metadata: { title: 'Apple' } }))
await net.drive(a!.put('docs', 'pear', [0.9, 0.1, 0, 0], { metadata: { title: 'Pear' } }))
await net.drive(a!.delete('docs', 'pear'))

// c searches: the deleted entry is gone everywhere
const found = await net.drive(c!.search('docs', [1, 0.05, 0, 0], { k: 2 }))
console.log(found.hits.map((h) => h.metadata?.title), found.complete)

// b reconciles its shard with the other replicas: nothing is missing, so nothing moves
const sync = await net.drive(b!.syncVectorData({ shard_ids: ['docs/0'], since_timestamp: new Date(0), max_vectors: 10_000, priority: 5, start_time: new Date(0) }))
console.log(sync.peer_results.map((r) => r.status), sync.total_vectors_synced)
await net.stop()
