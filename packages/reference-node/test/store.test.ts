import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { levelStore } from '../src/storage/level.js'
import { memoryStore } from '../src/storage/memory.js'
import { storeSuite } from './store-suite.js'

storeSuite('memoryStore', async () => ({ store: memoryStore() }))

storeSuite('levelStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kos-level-'))
  return { store: levelStore({ path: join(dir, 'db') }), cleanup: () => rm(dir, { recursive: true, force: true }) }
})

describe('levelStore specifics', () => {
  it('does no I/O before start and fails typed when closed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-level-'))
    try {
      const store = levelStore({ path: join(dir, 'db') })
      await expect(store.get('k')).rejects.toMatchObject({ name: 'StoreClosedError' })
      await store.start()
      await store.put('k', new Uint8Array([1, 2, 3]))
      await store.stop()
      await expect(store.put('k', new Uint8Array([1]))).rejects.toMatchObject({ name: 'StoreClosedError' })
      // persists across reopen
      const again = levelStore({ path: join(dir, 'db') })
      await again.start()
      expect(await again.get('k')).toEqual(new Uint8Array([1, 2, 3]))
      await again.stop()
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
