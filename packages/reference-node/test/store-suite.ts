/** One KeyValueStore suite, run against every implementation (memory, LevelDB). */
import { describe, expect, it, beforeEach, afterEach } from 'vitest'
import type { NodeStore } from '../src/storage/memory.js'

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const dec = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b))

async function collect(it: AsyncIterable<{ key: string; value: Uint8Array }>): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = []
  for await (const { key, value } of it) out.push([key, dec(value) ?? ''])
  return out
}

export function storeSuite(name: string, make: () => Promise<{ store: NodeStore; cleanup?: () => Promise<void> }>): void {
  describe(`KeyValueStore compliance: ${name}`, () => {
    let store: NodeStore
    let cleanup: (() => Promise<void>) | undefined

    beforeEach(async () => {
      const made = await make()
      store = made.store
      cleanup = made.cleanup
      await store.start()
    })
    afterEach(async () => {
      await store.stop()
      await cleanup?.()
    })

    it('puts, gets, overwrites and deletes', async () => {
      expect(await store.get('a/b')).toBeUndefined()
      expect(await store.has('a/b')).toBe(false)
      await store.put('a/b', enc('one'))
      expect(dec(await store.get('a/b'))).toBe('one')
      expect(await store.has('a/b')).toBe(true)
      await store.put('a/b', enc('two'))
      expect(dec(await store.get('a/b'))).toBe('two')
      await store.delete('a/b')
      expect(await store.get('a/b')).toBeUndefined()
      expect(await store.has('a/b')).toBe(false)
      await store.delete('a/b') // deleting a missing key is not an error
    })

    it('stores binary values exactly, including empty ones', async () => {
      const bytes = new Uint8Array(256).map((_, i) => i)
      await store.put('bin', bytes)
      await store.put('empty', new Uint8Array(0))
      expect(await store.get('bin')).toEqual(bytes)
      expect((await store.get('empty'))?.byteLength).toBe(0)
      expect(await store.has('empty')).toBe(true)
    })

    it('does not alias the caller buffers', async () => {
      const v = enc('abc')
      await store.put('k', v)
      v[0] = 0x7a
      const got = await store.get('k')
      expect(dec(got)).toBe('abc')
      if (got !== undefined) got[0] = 0x7a
      expect(dec(await store.get('k'))).toBe('abc')
    })

    it('queries by prefix in key order (UTF-8 byte order) and honours limit', async () => {
      const keys = ['trust/b', 'trust/a', 'trust/c', 'trusted', 'tru', 'peer/x', 'trust/\u00e9', 'trust/\u{1F600}', 'trust/\uffff']
      for (const k of keys) await store.put(k, enc(k))
      const all = await collect(store.query('trust/'))
      expect(all.map(([k]) => k)).toEqual(['trust/a', 'trust/b', 'trust/c', 'trust/\u00e9', 'trust/\uffff', 'trust/\u{1F600}'])
      expect(all.every(([k, v]) => k === v)).toBe(true)
      expect((await collect(store.query('trust/', { limit: 2 }))).map(([k]) => k)).toEqual(['trust/a', 'trust/b'])
      expect(await collect(store.query('trust/', { limit: 0 }))).toEqual([])
      expect(await collect(store.query('nothing/'))).toEqual([])
      expect((await collect(store.query(''))).length).toBe(keys.length)
    })

    it('rejects bad keys, values and limits with typed errors', async () => {
      await expect(store.put('', enc('x'))).rejects.toMatchObject({ name: 'InvalidParametersError' })
      await expect(store.put('x'.repeat(2000), enc('x'))).rejects.toMatchObject({ name: 'InvalidParametersError' })
      await expect(store.put('k', 'text' as unknown as Uint8Array)).rejects.toMatchObject({ name: 'InvalidParametersError' })
      await expect(store.get(42 as unknown as string)).rejects.toMatchObject({ name: 'InvalidParametersError' })
      await expect(collect(store.query('p', { limit: -1 }))).rejects.toMatchObject({ name: 'InvalidParametersError' })
    })

    it('honours an aborted signal', async () => {
      const signal = AbortSignal.abort()
      await expect(store.put('k', enc('v'), { signal })).rejects.toMatchObject({ name: 'AbortError' })
      await expect(store.get('k', { signal })).rejects.toMatchObject({ name: 'AbortError' })
      await expect(collect(store.query('', { signal }))).rejects.toMatchObject({ name: 'AbortError' })
      expect(await store.has('k')).toBe(false)
    })

    it('keeps many keys sorted', async () => {
      const ks = Array.from({ length: 300 }, (_, i) => `n/${String((i * 7919) % 300).padStart(3, '0')}`)
      for (const k of ks) await store.put(k, enc(k))
      const got = (await collect(store.query('n/'))).map(([k]) => k)
      expect(got).toEqual([...new Set(ks)].sort())
    })
  })
}
