import { mkdtempSync, rmSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createSignatureVerifier, generateIdentity, type Identity } from '@kos-mesh/did-security'
import { createRouter, type Router } from '@kos-mesh/klp-router'
import { tcp } from '@kos-mesh/transport-tcp'
import { staticTrustEngine, type StaticTrustEngine } from '@kos-mesh/trust'
import { memoryKeyValueStore, vectorMesh, SyncStatus } from '../src/index.js'
import { randomVector, rng } from './helpers.js'

const cleanup: Array<() => Promise<void> | void> = []
afterEach(async () => { for (const f of cleanup.splice(0).reverse()) await f() })

async function start(name: string): Promise<{ router: Router; identity: Identity; trust: StaticTrustEngine }> {
  const identity = generateIdentity()
  const trust = staticTrustEngine()
  const router = await createRouter({ authority: `${name}.mesh.kai`, identity, signatureVerifier: createSignatureVerifier(), transports: [tcp()({ identity })], listen: ['tcp://127.0.0.1:0'], trustEngine: trust })
  cleanup.push(() => router.stop())
  return { router, identity, trust }
}

describe('over TCP, with index files', () => {
  it('syncs over real sockets, then a restarted replica reloads its index files and answers searches', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vm-tcp-'))
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
    const a = await start('alice')
    const b = await start('bob')
    a.trust.set(b.identity.did, { trust_score: 8, verification_level: 'basic' })
    b.trust.set(a.identity.did, { trust_score: 8, verification_level: 'basic' })
    const kvB = memoryKeyValueStore()
    const config = { name: 'docs', dimensions: 16, quantization: 'f16' as const }
    const sa = vectorMesh({ syncIntervalMs: 0, strategies: ['pull'] })({ router: a.router, signer: a.identity.signer, kv: memoryKeyValueStore(), trust: a.trust })
    let sb = vectorMesh({ syncIntervalMs: 0, strategies: ['pull'] })({ router: b.router, signer: b.identity.signer, kv: kvB, trust: b.trust, dataDir: dir })
    await sa.start()
    await sb.start()
    await sa.createCollection(config)
    await sb.createCollection(config)
    const r = rng(3)
    const vectors = Array.from({ length: 120 }, () => randomVector(r, 16))
    for (let i = 0; i < vectors.length; i++) await sa.put('docs', `v${i}`, vectors[i]!, { metadata: { i } })
    await sa.delete('docs', 'v7')
    await b.router.dial(a.router.addrs()[0]!, { remotePeer: a.identity.did })
    for (let i = 0; i < 200 && b.router.peers().every((p) => p.authority === undefined); i++) await new Promise((res) => setImmediate(res))
    const sync = await sb.syncVectorData({ shard_ids: [], since_timestamp: new Date(0), max_vectors: 1000, priority: 5, start_time: new Date(0) })
    expect(sync.peer_results.map((p) => p.status)).toEqual([SyncStatus.COMPLETED])
    expect(sync.total_vectors_synced).toBe(120) // 119 puts and 1 tombstone
    await sb.stop() // checkpoints the index file
    expect(readdirSync(join(dir, 'docs', '0')).some((n) => n.endsWith('.usearch'))).toBe(true)
    sb = vectorMesh({ syncIntervalMs: 0 })({ router: b.router, signer: b.identity.signer, kv: kvB, trust: b.trust, dataDir: dir })
    await sb.start()
    cleanup.push(() => sb.stop())
    cleanup.push(() => sa.stop())
    const shard = await sb.store.shard('docs', 0)
    expect(shard.openStats).toEqual({ loadedIndexFile: true, replayed: 0, rebuilt: false })
    const res = await sb.search('docs', vectors[42]!, { k: 3 })
    expect(res.hits[0]!.id).toBe('v42')
    expect(res.hits[0]!.metadata).toEqual({ i: 42 })
    expect((await sb.search('docs', vectors[7]!, { k: 3 })).hits.some((h) => h.id === 'v7')).toBe(false)
  })
})
