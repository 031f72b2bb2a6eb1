import { QueueFullError, type AbortOptions, type KeyValueStore, type Startable } from '@kos-mesh/interface'
import type { Datastore } from 'interface-datastore'
import { datastoreKeyValueStore, VerbatimMemoryDatastore, type DatastoreKeyValueStore } from '../datastore.js'
import { aborted, checkKey } from './keys.js'

/** A KeyValueStore that also has a lifecycle (the node starts and stops it). */
export interface NodeStore extends KeyValueStore, Startable {
  /** Short name for logs: `memory`, `level`. */
  readonly kind: string
  /**
   * The interface-datastore Datastore holding the store's keys (under `/kos`), when there is one:
   * the node can hand it to libp2p (peer store, DHT records) so both share one database.
   */
  readonly datastore?: Datastore
}

/** Options of `memoryStore()`: an in-process store whose records are gone when the process ends. */
export interface MemoryStoreInit {
  /** Largest number of keys kept; `put` of a new key beyond it throws QueueFullError. Default 1,000,000. */
  maxEntries?: number
}

class MemoryStore implements NodeStore {
  readonly kind = 'memory'
  readonly datastore: VerbatimMemoryDatastore
  private readonly kv: DatastoreKeyValueStore
  private readonly maxEntries: number

  constructor(init: MemoryStoreInit) {
    this.maxEntries = init.maxEntries ?? 1_000_000
    this.datastore = new VerbatimMemoryDatastore()
    this.kv = datastoreKeyValueStore(this.datastore)
  }

  start(): void {}
  stop(): void {}

  get(key: string, options?: AbortOptions): Promise<Uint8Array | undefined> {
    return this.kv.get(key, options)
  }

  async put(key: string, value: Uint8Array, options?: AbortOptions): Promise<void> {
    aborted(options)
    checkKey(key)
    if (this.datastore.entries.size >= this.maxEntries && !(await this.kv.has(key))) {
      throw new QueueFullError(`expected at most ${this.maxEntries} entries, got one more`)
    }
    await this.kv.put(key, value, options)
  }

  delete(key: string, options?: AbortOptions): Promise<void> {
    return this.kv.delete(key, options)
  }

  has(key: string, options?: AbortOptions): Promise<boolean> {
    return this.kv.has(key, options)
  }

  query(prefix: string, options?: AbortOptions & { limit?: number }): AsyncIterable<{ key: string; value: Uint8Array }> {
    return this.kv.query(prefix, options)
  }
}

/**
 * An in-memory KeyValueStore (the node's default): datastore-core's MemoryDatastore under the
 * Datastore adapter (`datastoreKeyValueStore`). Values are copied in and out.
 */
export function memoryStore(init: MemoryStoreInit = {}): NodeStore {
  return new MemoryStore(init)
}
