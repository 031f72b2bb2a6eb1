import { KLPMessageType } from '@kos-mesh/interface'
import { bulkTransfer, type BulkTransfer } from '@kos-mesh/klp-router'
import { createTestnet, type Testnet } from '@kos-mesh/klp-router/testnet'
import { vectorMesh, type StorageNode, type VectorMesh, type VectorMeshInit } from '../src/index.js'
import { MemoryKv } from './helpers.js'

export interface Mesh {
  net: Testnet
  services: VectorMesh[]
  kvs: MemoryKv[]
  bulks: BulkTransfer[]
  drive<T>(p: Promise<T>): Promise<T>
}

/** n routers on a virtual-time testnet, each with a vector-mesh service; every node trusts every other at 8. */
export async function createMesh(n: number, init: VectorMeshInit = {}, options: { seed?: number; placement?: boolean; region?: (i: number) => string; bulk?: boolean; storage?: () => StorageNode[] } = {}): Promise<Mesh> {
  const net = await createTestnet(n, { time: 'virtual', seed: options.seed ?? 1, link: { latencyMs: 5 }, router: { requestTimeoutMs: 2000 } })
  for (const a of net.nodes) for (const b of net.nodes) if (a !== b) a.trust.set(b.did, { trust_score: 8, verification_level: 'basic' })
  const kvs = net.nodes.map(() => new MemoryKv())
  const storage = options.storage ?? ((): StorageNode[] => net.nodes.map((x) => ({ did: x.did, authority: x.authority, trust: 8 })))
  const bulks: BulkTransfer[] = options.bulk === true ? net.nodes.map((node) => bulkTransfer({ type: KLPMessageType.VECTOR_SYNC })({ router: node.router, clock: net.network.clock })) : []
  for (const b of bulks) await b.start()
  const services = net.nodes.map((node, i) => vectorMesh({ syncIntervalMs: 0, requestTimeoutMs: 2000, ...init, ...(options.region === undefined ? {} : { region: options.region(i) }) })({
    router: node.router, signer: node.identity.signer, kv: kvs[i]!, clock: net.network.clock, trust: node.trust,
    ...(options.placement === true ? { storageNodes: storage } : {}),
    ...(bulks[i] === undefined ? {} : { bulk: bulks[i] }),
  }))
  for (const s of services) await s.start()
  return { net, services, kvs, bulks, drive: (p) => net.drive(p, { timeoutMs: 600_000 }) }
}

/** Every node's current versions of a collection: key -> hash hex + op. */
export async function stateOf(s: VectorMesh, collection: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const c = s.store.collection(collection)
  for (let sh = 0; sh < c.sharding.shard_count; sh++) {
    if (!s.store.holds(collection, sh)) continue
    for (const v of (await s.store.shard(collection, sh)).allVersions()) out.set(v.key, `${Buffer.from(v.hash).toString('hex')}:${v.op}`)
  }
  return out
}
