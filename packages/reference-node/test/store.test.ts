import { cp, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { storeCompliance } from '@kos-mesh/interface-compliance-tests'
import { MAX_KEY_LENGTH, MAX_VALUE_BYTES } from '../src/storage/keys.js'
import { integrityMarkerPath, levelStore } from '../src/storage/level.js'
import { memoryStore } from '../src/storage/memory.js'

const limits = { maxKeyLength: MAX_KEY_LENGTH, maxValueBytes: MAX_VALUE_BYTES }

storeCompliance(
  'memoryStore',
  async () => {
    const store = memoryStore()
    await store.start()
    return { store, teardown: async () => store.stop() }
  },
  { ...limits, volatile: true },
)

storeCompliance(
  'levelStore',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-level-'))
    let store = levelStore({ path: join(dir, 'db') })
    await store.start()
    return {
      store,
      reopen: async () => {
        await store.stop()
        store = levelStore({ path: join(dir, 'db') })
        await store.start()
        return store
      },
      teardown: async () => {
        await store.stop()
        await rm(dir, { recursive: true, force: true })
      },
    }
  },
  limits,
)

/** Truncates every LevelDB log file (`*.log`, not the info `LOG`) of the database at `db` to 0 bytes. */
async function truncateLogs(db: string): Promise<number> {
  const logs = (await readdir(db)).filter((f) => f.endsWith('.log'))
  for (const f of logs) await truncate(join(db, f), 0)
  return logs.length
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

describe('levelStore specifics', () => {
  it('does no I/O before start and fails typed when closed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-level-'))
    try {
      const store = levelStore({ path: join(dir, 'db') })
      await expect(store.get('k')).rejects.toMatchObject({ name: 'StoreClosedError' })
      expect(await readdir(dir)).toEqual([])
      await store.start()
      await store.put('k', new Uint8Array([1, 2, 3]))
      await store.stop()
      await expect(store.put('k', new Uint8Array([1]))).rejects.toMatchObject({ name: 'StoreClosedError' })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('memoryStore enforces maxEntries', async () => {
    const s = memoryStore({ maxEntries: 2 })
    await s.put('a', new Uint8Array(1))
    await s.put('b', new Uint8Array(1))
    await s.put('a', new Uint8Array(2)) // overwrite is fine
    await expect(s.put('c', new Uint8Array(1))).rejects.toMatchObject({ name: 'QueueFullError' })
  })
})

describe('levelStore integrity (a database that lost its records is refused)', () => {
  it('writes an integrity record and a marker at every start, with a growing generation, hidden from the key space', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-level-'))
    try {
      const path = join(dir, 'db')
      const s1 = levelStore({ path })
      await s1.start()
      const first = s1.integrityRecord()
      expect(first).toMatchObject({ format: 'kos-mesh-store-integrity', version: 1, generation: 1 })
      expect(JSON.parse(await readFile(integrityMarkerPath(path), 'utf8'))).toEqual(first)
      // the record is the store's own: not listed, not addressable
      expect(await collectKeys(s1.query(''))).toEqual([])
      await expect(s1.get('\u0000kos-mesh/integrity')).rejects.toMatchObject({ name: 'InvalidParametersError' })
      await expect(s1.put('\u0000kos-mesh/integrity', bytes('x'))).rejects.toMatchObject({ name: 'InvalidParametersError' })
      await s1.stop()
      const s2 = levelStore({ path })
      await s2.start()
      expect(s2.integrityRecord()).toMatchObject({ store_id: first?.store_id, generation: 2 })
      await s2.stop()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('refuses to open after the LevelDB log was truncated to 0 bytes; resetStore accepts it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-level-'))
    try {
      const path = join(dir, 'db')
      const s1 = levelStore({ path })
      await s1.start()
      await s1.put('trust/did:key:z6Mk', bytes('7'))
      await s1.stop()
      expect(await truncateLogs(path)).toBeGreaterThan(0)
      const s2 = levelStore({ path })
      await expect(s2.start()).rejects.toMatchObject({ name: 'StoreIntegrityError', code: 'ERR_STORE_INTEGRITY', path, got: 'an empty database' })
      expect(s2.isStarted()).toBe(false)
      // refused again: the refusal does not "heal" the store
      await expect(levelStore({ path }).start()).rejects.toMatchObject({ name: 'StoreIntegrityError' })
      // the escape hatch: accept what is there, with a new store id
      const s3 = levelStore({ path, resetStore: true })
      await s3.start()
      expect(await s3.get('trust/did:key:z6Mk')).toBeUndefined()
      const reset = s3.integrityRecord()
      await s3.stop()
      const s4 = levelStore({ path })
      await s4.start()
      expect(s4.integrityRecord()).toMatchObject({ store_id: reset?.store_id })
      await s4.stop()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('refuses an older generation (lost recent writes), a deleted database, another store and a damaged marker', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-level-'))
    try {
      const path = join(dir, 'db')
      for (let i = 0; i < 2; i++) {
        const s = levelStore({ path })
        await s.start()
        await s.put(`k/${i}`, bytes('v'))
        await s.stop()
      }
      // the second start's record (and writes) live in the log; the first one's in a table file
      await truncateLogs(path)
      await expect(levelStore({ path }).start()).rejects.toMatchObject({ name: 'StoreIntegrityError', got: expect.stringContaining('generation 1') })
      // the whole database deleted: LevelDB would create an empty one
      await rm(path, { recursive: true, force: true })
      await expect(levelStore({ path }).start()).rejects.toMatchObject({ name: 'StoreIntegrityError', got: 'an empty database' })
      // another store's database in its place
      const other = join(dir, 'other')
      const o = levelStore({ path: other })
      await o.start()
      await o.stop()
      await rm(path, { recursive: true, force: true })
      await cp(other, path, { recursive: true })
      await expect(levelStore({ path }).start()).rejects.toMatchObject({ name: 'StoreIntegrityError', got: expect.stringContaining('another store') })
      await writeFile(integrityMarkerPath(path), '{"format":')
      await expect(levelStore({ path }).start()).rejects.toMatchObject({ name: 'StoreIntegrityError', got: 'a damaged one' })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('adopts a database without a marker (new, or written by an older version), keeping its data', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-level-'))
    try {
      const path = join(dir, 'db')
      const old = levelStore({ path, integrity: false })
      await old.start()
      await old.put('trust/x', bytes('1'))
      await old.stop()
      await expect(readFile(integrityMarkerPath(path))).rejects.toMatchObject({ code: 'ENOENT' })
      const s = levelStore({ path })
      await s.start()
      expect(await s.get('trust/x')).toEqual(bytes('1'))
      expect(s.integrityRecord()?.generation).toBe(1)
      await s.stop()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

async function collectKeys(it: AsyncIterable<{ key: string }>): Promise<string[]> {
  const out: string[] = []
  for await (const { key } of it) out.push(key)
  return out
}
