/**
 * The KeyValueStore compliance suite. Every kos-mesh KeyValueStore (memory, LevelDB, third-party)
 * runs it with its own `setup`:
 *
 * ```ts
 * import { storeCompliance } from '@kos-mesh/interface-compliance-tests'
 * storeCompliance('memory', async () => {
 *   const store = memoryStore()
 *   await store.start()
 *   return { store, teardown: () => store.stop() }
 * })
 * ```
 */
import { AbortError, InvalidParametersError, type KeyValueStore } from '@kos-mesh/interface'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { bytesEqual, expectError, withTimeout } from './util.js'

/** What a store under test provides to the suite. `setup` is called once per test. */
export interface StoreUnderTest {
  /** A fresh, empty store, ready for use (started, if it has a lifecycle). */
  store: KeyValueStore
  /**
   * Closes the store and opens the same data again, resolving with the reopened store (which the
   * suite uses from then on). Enables the persistence test; omit it for a volatile store.
   */
  reopen?(): Promise<KeyValueStore>
  /** Closes and removes whatever setup created (called after each test, even a failing one). */
  teardown?(): Promise<void>
}

/** Options of the KeyValueStore compliance suite: limits of the store under test, checked only when given. */
export interface StoreComplianceOptions {
  /**
   * Longest key the store accepts, in characters. When given: a key of this length is stored and
   * one character more is refused with InvalidParametersError. Default: not tested.
   */
  maxKeyLength?: number
  /**
   * Largest value the store accepts, in bytes. When given: one byte more is refused with
   * InvalidParametersError (the suite allocates a buffer of this size + 1). Default: not tested.
   */
  maxValueBytes?: number
  /** Keys written in the ordering test. Default 300. */
  keys?: number
  /**
   * The store keeps nothing across a reopen (an in-memory store): the persistence test is not run.
   * Default false: the setup must provide `reopen`, and the persistence test runs.
   */
  volatile?: boolean
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const dec = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b))

async function entries(it: AsyncIterable<{ key: string; value: Uint8Array }>): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = []
  for await (const { key, value } of it) out.push([key, dec(value) ?? ''])
  return out
}

async function keysOf(it: AsyncIterable<{ key: string; value: Uint8Array }>): Promise<string[]> {
  return (await entries(it)).map(([k]) => k)
}

/** Compares by code point (the UTF-8 byte order every store must sort keys in). */
function byCodePoint(a: string, b: string): number {
  const x = [...a]
  const y = [...b]
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = (x[i] as string).codePointAt(0)! - (y[i] as string).codePointAt(0)!
    if (d !== 0) return d
  }
  return x.length - y.length
}

/** Registers the KeyValueStore compliance tests (vitest `describe`/`it`) under `name`. */
export function storeCompliance(name: string, setup: () => Promise<StoreUnderTest>, options: StoreComplianceOptions = {}): void {
  const KEYS = options.keys ?? 300

  describe(`${name}: KeyValueStore compliance`, () => {
    let made: StoreUnderTest | undefined
    let store: KeyValueStore

    beforeEach(async () => {
      made = await withTimeout(setup(), 'store setup')
      store = made.store
    })

    afterEach(async () => {
      await made?.teardown?.()
      made = undefined
    })

    it('puts, gets, overwrites and deletes; deleting a missing key is not an error', async () => {
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
      await store.delete('a/b')
      await store.delete('never/written')
    })

    it('stores binary values exactly, including empty ones', async () => {
      const bytes = new Uint8Array(256).map((_, i) => i)
      await store.put('bin', bytes)
      await store.put('empty', new Uint8Array(0))
      expect(bytesEqual(await store.get('bin'), bytes)).toBe(true)
      const empty = await store.get('empty')
      expect(empty).toBeInstanceOf(Uint8Array)
      expect(empty?.byteLength).toBe(0)
      expect(await store.has('empty')).toBe(true)
      // a view into a larger buffer stores only its own bytes
      const backing = new Uint8Array([9, 9, 1, 2, 3, 9, 9])
      await store.put('view', backing.subarray(2, 5))
      expect(bytesEqual(await store.get('view'), new Uint8Array([1, 2, 3]))).toBe(true)
    })

    it('does not alias the caller buffers, on put or on get', async () => {
      const v = enc('abc')
      await store.put('k', v)
      v[0] = 0x7a
      const got = await store.get('k')
      expect(dec(got)).toBe('abc')
      if (got !== undefined) got[0] = 0x7a
      expect(dec(await store.get('k'))).toBe('abc')
      for await (const { value } of store.query('k')) value[0] = 0x7a
      expect(dec(await store.get('k'))).toBe('abc')
    })

    it('queries by prefix in UTF-8 byte order and honours limit', async () => {
      const keys = ['trust/b', 'trust/a', 'trust/c', 'trusted', 'tru', 'peer/x', 'trust/\u00e9', 'trust/\u{1F600}', 'trust/\uffff']
      for (const k of keys) await store.put(k, enc(k))
      const all = await entries(store.query('trust/'))
      // UTF-16 order would put U+1F600 (a surrogate pair) before U+FFFF; UTF-8 byte order after
      expect(all.map(([k]) => k)).toEqual(['trust/a', 'trust/b', 'trust/c', 'trust/\u00e9', 'trust/\uffff', 'trust/\u{1F600}'])
      expect(all.every(([k, v]) => k === v)).toBe(true)
      expect(await keysOf(store.query('trust/', { limit: 2 }))).toEqual(['trust/a', 'trust/b'])
      expect(await keysOf(store.query('trust/', { limit: 0 }))).toEqual([])
      expect(await keysOf(store.query('nothing/'))).toEqual([])
      expect(await keysOf(store.query('trust/b'))).toEqual(['trust/b'])
      expect((await keysOf(store.query(''))).sort(byCodePoint)).toEqual([...keys].sort(byCodePoint))
    })

    it(`keeps ${KEYS} keys sorted, whatever the insertion order`, async () => {
      const width = String(KEYS).length
      const ks = Array.from({ length: KEYS }, (_, i) => `n/${String((i * 7919) % KEYS).padStart(width, '0')}`)
      for (const k of ks) await store.put(k, enc(k))
      expect(await keysOf(store.query('n/'))).toEqual([...new Set(ks)].sort())
    })

    it('a query survives writes during the iteration, yielding each earlier key once', async () => {
      for (let i = 0; i < 20; i++) await store.put(`w/${String(i).padStart(2, '0')}`, enc(String(i)))
      const seen: string[] = []
      for await (const { key } of store.query('w/')) {
        seen.push(key)
        await store.put(`w/${key.slice(2)}x`, enc('new'))
        if (seen.length > 100) break
      }
      const original = Array.from({ length: 20 }, (_, i) => `w/${String(i).padStart(2, '0')}`)
      expect(new Set(seen).size).toBe(seen.length)
      for (const k of original) expect(seen).toContain(k)
    })

    it('rejects bad keys, values and limits with InvalidParametersError', async () => {
      await expectError(store.put('', enc('x')), InvalidParametersError)
      await expectError(store.put(42 as unknown as string, enc('x')), InvalidParametersError)
      await expectError(store.put('k', 'text' as unknown as Uint8Array), InvalidParametersError)
      await expectError(store.put('k', null as unknown as Uint8Array), InvalidParametersError)
      await expectError(store.get(42 as unknown as string), InvalidParametersError)
      await expectError(store.has(undefined as unknown as string), InvalidParametersError)
      await expectError(store.delete({} as unknown as string), InvalidParametersError)
      await expectError(entries(store.query('p', { limit: -1 })), InvalidParametersError)
      await expectError(entries(store.query('p', { limit: 1.5 })), InvalidParametersError)
      await expectError(entries(store.query(7 as unknown as string)), InvalidParametersError)
      expect(await store.has('k')).toBe(false)
    })

    if (options.maxKeyLength !== undefined) {
      const max = options.maxKeyLength
      it(`accepts keys up to ${max} characters and refuses longer ones`, async () => {
        await store.put('k'.repeat(max), enc('edge'))
        expect(dec(await store.get('k'.repeat(max)))).toBe('edge')
        await expectError(store.put('k'.repeat(max + 1), enc('x')), InvalidParametersError)
        await expectError(store.get('k'.repeat(max + 1)), InvalidParametersError)
      })
    }

    if (options.maxValueBytes !== undefined) {
      const max = options.maxValueBytes
      it(`refuses values over ${max} bytes`, async () => {
        await expectError(store.put('big', new Uint8Array(max + 1)), InvalidParametersError)
        expect(await store.has('big')).toBe(false)
      })
    }

    it('honours an aborted signal without writing', async () => {
      const signal = AbortSignal.abort()
      await expectError(store.put('k', enc('v'), { signal }), AbortError)
      await expectError(store.get('k', { signal }), AbortError)
      await expectError(store.has('k', { signal }), AbortError)
      await expectError(store.delete('k', { signal }), AbortError)
      await expectError(entries(store.query('', { signal })), AbortError)
      expect(await store.has('k')).toBe(false)
    })

    if (options.volatile !== true) it('persists across a reopen', async () => {
      if (made?.reopen === undefined) throw new Error('expected the setup to provide reopen() (or the volatile option), got none')
      await store.put('p/1', enc('one'))
      await store.put('p/2', new Uint8Array([0, 255]))
      await store.put('p/3', enc('gone'))
      await store.delete('p/3')
      store = await withTimeout(made.reopen(), 'store reopen')
      expect(dec(await store.get('p/1'))).toBe('one')
      expect(bytesEqual(await store.get('p/2'), new Uint8Array([0, 255]))).toBe(true)
      expect(await store.has('p/3')).toBe(false)
      expect(await keysOf(store.query('p/'))).toEqual(['p/1', 'p/2'])
    })
  })
}
