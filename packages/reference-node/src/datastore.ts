/**
 * `datastoreKeyValueStore(datastore)`: the project's KeyValueStore contract as a thin adapter over
 * an interface-datastore Datastore (datastore-level on disk, datastore-core's MemoryDatastore in
 * memory), so the node's state can share one database with libp2p's peer store and DHT records.
 *
 * Key mapping: the KeyValueStore key `trust/did:key:z6Mk...` is the datastore Key
 * `/kos/trust/did:key:z6Mk...` (the namespace, `/`, the key verbatim: no escaping, no cleaning),
 * so libp2p's own keys (`/peers/...`, `/dht/...`, `/pkcs8/...`) never meet the node's.
 */
import { InvalidParametersError, type AbortOptions } from '@kos-mesh/interface'
import { MemoryDatastore } from 'datastore-core'
import { Key, type Datastore, type Pair, type Query } from 'interface-datastore'
import { aborted, checkKey, checkLimit, checkValue, compareKeys } from './storage/keys.js'
import type { NodeStore } from './storage/memory.js'

/** Options of `datastoreKeyValueStore()`: where its keys live in the Datastore and how it is read. */
export interface DatastoreKeyValueStoreInit {
  /** Datastore Key namespace of the store's keys, `/`-led, no trailing `/`. Default `/kos`. */
  prefix?: string
  /**
   * The datastore yields query results in key (UTF-8 byte) order, as LevelDB does. Default false:
   * the adapter asks the datastore to sort (`orders`), which buffers the matching entries.
   */
  ordered?: boolean
  /**
   * Keys under this KeyValueStore prefix are the owner's own: `get`/`put`/`delete`/`has` refuse
   * them with InvalidParametersError and `query` skips them. Default none.
   */
  reservedPrefix?: string
}

/** A KeyValueStore over a Datastore (no lifecycle: the Datastore's owner opens and closes it). */
export interface DatastoreKeyValueStore {
  /**
   * The value of `key` (a copy), or undefined when there is none. Keys are non-empty strings of at
   * most MAX_KEY_LENGTH characters outside the reserved prefix, else InvalidParametersError; an
   * aborted `options.signal` rejects with its AbortError.
   */
  get(key: string, options?: AbortOptions): Promise<Uint8Array | undefined>
  /** Stores a copy of `value` (at most MAX_VALUE_BYTES, else InvalidParametersError) under `key`, replacing any. */
  put(key: string, value: Uint8Array, options?: AbortOptions): Promise<void>
  /** Removes `key` (nothing happens when it is absent). */
  delete(key: string, options?: AbortOptions): Promise<void>
  /** Whether `key` holds a value. */
  has(key: string, options?: AbortOptions): Promise<boolean>
  /**
   * The entries whose keys start with `prefix` ("" for all), in UTF-8 byte order of the keys,
   * at most `options.limit` (a non-negative integer, else InvalidParametersError; default all);
   * keys under the reserved prefix are skipped.
   */
  query(prefix: string, options?: AbortOptions & { limit?: number }): AsyncIterable<{ key: string; value: Uint8Array }>
  /** The Datastore underneath. */
  readonly datastore: Datastore
  /** The datastore Key of a KeyValueStore key (no checks). */
  keyOf(key: string): Key
}

function isNotFound(err: unknown): boolean {
  return (err as { name?: string } | null)?.name === 'NotFoundError'
}

/**
 * The datastore query prefix for the Key string `full`: `full` shortened until its next character
 * is below U+00FF. datastore-level bounds a prefix query by `prefix + '\xFF'` (UTF-8 `C3 BF`),
 * which would drop keys continuing with a character at or above U+00FF; the adapter filters the
 * exact prefix itself. `floor` (the namespace) is never shortened (its next character is `/`).
 */
function safeQueryPrefix(full: string, floor: number): string {
  let end = full.length
  // walk back over the trailing characters at or above U+00FF, then drop one more below it
  while (end > floor) {
    const last = full.codePointAt(end - 1) ?? 0
    // a low surrogate: step over the pair
    const width = last >= 0xdc00 && last <= 0xdfff && end - 2 >= floor ? 2 : 1
    const cp = full.codePointAt(end - width) ?? 0
    end -= width
    if (cp < 0xff) break
  }
  return full.slice(0, end)
}

class Adapter implements DatastoreKeyValueStore {
  readonly datastore: Datastore
  private readonly ns: string
  private readonly ordered: boolean
  private readonly reserved: string | undefined

  constructor(datastore: Datastore, init: DatastoreKeyValueStoreInit) {
    const ns = init.prefix ?? '/kos'
    if (typeof ns !== 'string' || !ns.startsWith('/') || ns.endsWith('/') || ns.length < 2) {
      throw new InvalidParametersError(`expected a datastore prefix like "/kos", got ${JSON.stringify(ns)}`)
    }
    this.datastore = datastore
    this.ns = ns
    this.ordered = init.ordered === true
    this.reserved = init.reservedPrefix
  }

  keyOf(key: string): Key {
    return new Key(`${this.ns}/${key}`, false)
  }

  private check(key: unknown, what = 'key'): asserts key is string {
    checkKey(key, what)
    if (what === 'key' && this.reserved !== undefined && key.startsWith(this.reserved)) {
      throw new InvalidParametersError(`expected a key outside the store's reserved prefix ${JSON.stringify(this.reserved)}, got ${JSON.stringify(key.slice(0, 40))}`)
    }
  }

  async get(key: string, options?: AbortOptions): Promise<Uint8Array | undefined> {
    aborted(options)
    this.check(key)
    try {
      const v = await this.datastore.get(this.keyOf(key), options)
      return new Uint8Array(v)
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }

  async put(key: string, value: Uint8Array, options?: AbortOptions): Promise<void> {
    aborted(options)
    this.check(key)
    checkValue(value)
    await this.datastore.put(this.keyOf(key), value.slice(), options)
  }

  async delete(key: string, options?: AbortOptions): Promise<void> {
    aborted(options)
    this.check(key)
    await this.datastore.delete(this.keyOf(key), options)
  }

  async has(key: string, options?: AbortOptions): Promise<boolean> {
    aborted(options)
    this.check(key)
    return await this.datastore.has(this.keyOf(key), options)
  }

  async *query(prefix: string, options?: AbortOptions & { limit?: number }): AsyncIterable<{ key: string; value: Uint8Array }> {
    this.check(prefix, 'prefix')
    const limit = checkLimit(options?.limit)
    aborted(options)
    if (limit === 0) return
    const full = `${this.ns}/${prefix}`
    const q: Query = { prefix: safeQueryPrefix(full, this.ns.length) }
    if (!this.ordered) q.orders = [(a: Pair, b: Pair) => compareKeys(a.key.toString(), b.key.toString()) as -1 | 0 | 1]
    const strip = this.ns.length + 1
    let n = 0
    for await (const { key, value } of this.datastore.query(q, options)) {
      aborted(options)
      const s = key.toString()
      if (!s.startsWith(full)) {
        // ordered: past the prefix range once a key sorts after it
        if (this.ordered && compareKeys(s, full) > 0) break
        continue
      }
      const k = s.slice(strip)
      if (this.reserved !== undefined && k.startsWith(this.reserved)) continue
      yield { key: k, value: new Uint8Array(value) }
      if (++n >= limit) break
    }
  }
}

/**
 * A KeyValueStore over any interface-datastore Datastore: KeyValueStore keys are datastore Keys
 * under `prefix` (`/kos/<key>`), queries return keys in UTF-8 byte order, AbortOptions are
 * honoured. The Datastore must return query keys verbatim (datastore-core's MemoryDatastore
 * cleans them, dropping a trailing `/`: `memoryStore()` uses a subclass that does not).
 */
export function datastoreKeyValueStore(datastore: Datastore, init: DatastoreKeyValueStoreInit = {}): DatastoreKeyValueStore {
  return new Adapter(datastore, init)
}

/** datastore-core's MemoryDatastore, yielding query keys as stored (not cleaned). */
export class VerbatimMemoryDatastore extends MemoryDatastore {
  /** The entries (MemoryDatastore's own map, declared private there). */
  get entries(): Map<string, Uint8Array> {
    return (this as unknown as { data: Map<string, Uint8Array> }).data
  }

  /** Every entry, its key as stored (the base class filters, orders and limits them for `query`); throws an AbortError when `options.signal` is aborted. */
  override *_all(_q: Query, options?: AbortOptions): Generator<Pair> {
    options?.signal?.throwIfAborted()
    for (const [key, value] of this.entries.entries()) yield { key: new Key(key, false), value }
  }
}

/** A NodeStore over a Datastore: the KeyValueStore adapter plus a lifecycle and the Datastore. */
export interface DatastoreNodeStore extends NodeStore {
  readonly datastore: Datastore
}
