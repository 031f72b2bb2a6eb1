import { mkdtempSync, readdirSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ShardStore, resolveCollection, signEntry, vectorBytes, labelOf, type EntryBody, type ResolvedCollection } from '../src/index.js'
import { MemoryKv, identity, randomVector, rng } from './helpers.js'

const alice = identity('alice')
const dirs: string[] = []
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }) })
function tmp(): string { const d = mkdtempSync(join(tmpdir(), 'vm-shard-')); dirs.push(d); return d }

const r = rng(7)
async function entry(id: string, wall: number, op: 'put' | 'del' = 'put', vec = randomVector(r, 8)) {
  const body: EntryBody = { v: 1, collection: 'docs', id, op, owner: alice.did, writer: alice.did, hlc: { wall, counter: 0 }, ...(op === 'put' ? { vector: vectorBytes(vec), metadata: { id } } : {}) }
  return signEntry(body, alice.signer)
}

/** The index and the records agree: every live key is in the index and nothing else is. */
function agree(s: ShardStore): void {
  const live = s.allVersions().filter((v) => v.op === 'put')
  expect(s.indexSize).toBe(live.length)
  for (const v of live) expect(s.search(new Float32Array(8).fill(0.1), 1000).some((h) => h.key === v.key)).toBe(true)
}

describe('ShardStore', () => {
  for (const quantization of ['f32', 'f16', 'i8'] as const) {
    it(`finds a vector's own entry first (${quantization})`, async () => {
      const c = resolveCollection({ name: 'docs', dimensions: 8, quantization })
      const s = await ShardStore.open({ kv: new MemoryKv(), collection: c, shard: 0 })
      const es = await Promise.all(Array.from({ length: 50 }, (_, i) => entry(`e${i}`, 1000 + i)))
      for (const e of es) expect(await s.apply(e)).toBe('applied')
      const target = es[17]!
      const hits = s.search(new Float32Array(target.body.vector!.buffer.slice(target.body.vector!.byteOffset, target.body.vector!.byteOffset + 32)), 3)
      expect(hits[0]!.key).toBe(target.key)
    })
  }

  it('last writer wins by HLC; stale and duplicate versions change nothing; tombstones remove', async () => {
    const c = resolveCollection({ name: 'docs', dimensions: 8 })
    const s = await ShardStore.open({ kv: new MemoryKv(), collection: c, shard: 0 })
    const v1 = await entry('a', 100)
    const v2 = await entry('a', 200)
    const del = await entry('a', 300, 'del')
    expect(await s.apply(v2)).toBe('applied')
    expect(await s.apply(v1)).toBe('stale')
    expect(await s.apply(v2)).toBe('duplicate')
    expect(s.indexSize).toBe(1)
    expect(await s.apply(del)).toBe('applied')
    expect(s.indexSize).toBe(0)
    expect(await s.apply(v2)).toBe('stale') // a deleted entry does not come back
    expect(s.reconSet().size).toBe(1) // the tombstone stays in the set
    expect(await s.gcTombstones(400)).toBe(1)
    expect(s.reconSet().size).toBe(0)
  })

  it('restart loads the index file without rebuilding', async () => {
    const kv = new MemoryKv()
    const dir = tmp()
    const c = resolveCollection({ name: 'docs', dimensions: 8 })
    const s = await ShardStore.open({ kv, dir, collection: c, shard: 2 })
    for (let i = 0; i < 40; i++) await s.apply(await entry(`e${i}`, 1000 + i))
    await s.close()
    const s2 = await ShardStore.open({ kv, dir, collection: c, shard: 2 })
    expect(s2.openStats).toEqual({ loadedIndexFile: true, replayed: 0, rebuilt: false })
    expect(s2.size).toBe(40)
    agree(s2)
    expect([...kv.map.keys()].some((k) => k.includes('/l/'))).toBe(false) // the log was pruned
  })

  it('after a crash (no checkpoint) the log tail is replayed onto the saved index', async () => {
    const kv = new MemoryKv()
    const dir = tmp()
    const c = resolveCollection({ name: 'docs', dimensions: 8 })
    const s = await ShardStore.open({ kv, dir, collection: c, shard: 0 })
    for (let i = 0; i < 20; i++) await s.apply(await entry(`e${i}`, 1000 + i))
    await s.checkpoint()
    for (let i = 20; i < 30; i++) await s.apply(await entry(`e${i}`, 1000 + i))
    await s.apply(await entry('e3', 5000, 'del'))
    // crash: s is dropped without close()
    const s2 = await ShardStore.open({ kv, dir, collection: c, shard: 0 })
    expect(s2.openStats.loadedIndexFile).toBe(true)
    expect(s2.openStats.replayed).toBe(11)
    expect(s2.liveCount).toBe(29)
    agree(s2)
  })

  for (const crashAt of [1, 2]) {
    it(`a crash between the record writes of an apply (after ${crashAt} of 3) leaves index and records agreeing`, async () => {
      const kv = new MemoryKv()
      const dir = tmp()
      const c = resolveCollection({ name: 'docs', dimensions: 8 })
      const s = await ShardStore.open({ kv, dir, collection: c, shard: 0 })
      for (let i = 0; i < 5; i++) await s.apply(await entry(`e${i}`, 1000 + i))
      await s.checkpoint()
      kv.crashAfterPuts = kv.puts + crashAt
      await expect(s.apply(await entry('new', 9000))).rejects.toThrow('crash')
      kv.crashAfterPuts = Infinity
      const s2 = await ShardStore.open({ kv, dir, collection: c, shard: 0 })
      // after l only: the entry never happened; after l and e: it did (e/ is the truth)
      expect(s2.liveCount).toBe(crashAt === 1 ? 5 : 6)
      agree(s2)
    })
  }

  it('a crash during a checkpoint (temporary file left, log not pruned) and a corrupt index file', async () => {
    const kv = new MemoryKv()
    const dir = tmp()
    const c = resolveCollection({ name: 'docs', dimensions: 8 })
    const s = await ShardStore.open({ kv, dir, collection: c, shard: 0 })
    for (let i = 0; i < 10; i++) await s.apply(await entry(`e${i}`, 1000 + i))
    await s.checkpoint()
    const sub = join(dir, 'docs', '0')
    writeFileSync(join(sub, `${String(99).padStart(16, '0')}.usearch.tmp`), 'partial')
    const s2 = await ShardStore.open({ kv, dir, collection: c, shard: 0 })
    expect(readdirSync(sub).some((n) => n.endsWith('.tmp'))).toBe(false)
    agree(s2)
    // an index file that does not load: rebuilt from the records
    const file = readdirSync(sub).find((n) => n.endsWith('.usearch'))!
    writeFileSync(join(sub, file), 'garbage')
    const s3 = await ShardStore.open({ kv, dir, collection: c, shard: 0 })
    expect(s3.openStats.rebuilt).toBe(true)
    agree(s3)
    // an index file ahead of the records is not trusted
    writeFileSync(join(sub, `${String(500).padStart(16, '0')}.usearch`), 'x')
    const s4 = await ShardStore.open({ kv, dir, collection: c, shard: 0 })
    expect(s4.openStats.rebuilt).toBe(true)
    agree(s4)
  })

  it('labels are the first 63 bits of the key', () => {
    expect(labelOf('ffffffffffffffff0000')).toBe(0x7fffffffffffffffn)
  })
})

export type { ResolvedCollection }

describe('convergence of the version order', () => {
  it('replicas applying the same entries in any order hold the same versions (puts, tombstones, two writers by delegation)', async () => {
    const { signDelegation } = await import('../src/index.js')
    const bob = identity('bob')
    const delegation = await signDelegation({ owner: alice.did, delegate: bob.did, collection: 'docs', expires_at: 10_000 }, alice.signer)
    const c = resolveCollection({ name: 'docs', dimensions: 8 })
    const rr = rng(11)
    const pool = []
    for (let i = 0; i < 40; i++) {
      const id = `k${i % 5}`
      const wall = 100 + Math.floor(rr() * 20) // many equal HLCs: ties broken by writer, then hash
      const byBob = rr() < 0.4
      const op = rr() < 0.3 ? 'del' : 'put'
      const body: EntryBody = { v: 1, collection: 'docs', id, op, owner: alice.did, writer: byBob ? bob.did : alice.did, hlc: { wall, counter: 0 }, ...(byBob ? { delegation } : {}), ...(op === 'put' ? { vector: vectorBytes(randomVector(rr, 8)) } : {}) }
      pool.push(await signEntry(body, byBob ? bob.signer : alice.signer))
    }
    const states: string[] = []
    for (let run = 0; run < 6; run++) {
      const order = [...pool].sort(() => rr() - 0.5)
      const s = await ShardStore.open({ kv: new MemoryKv(), collection: c, shard: 0 })
      for (const e of order) await s.apply(e)
      states.push(JSON.stringify(s.allVersions().map((v) => [v.key, Buffer.from(v.hash).toString('hex')]).sort()))
      agree(s)
    }
    expect(new Set(states).size).toBe(1)
  })
})
