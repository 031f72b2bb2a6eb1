import { ClassicLevel } from 'classic-level'
import { InvalidParametersError, type AbortOptions } from '@kos-mesh/interface'
import { StoreClosedError } from '../errors.js'
import { aborted, checkKey, checkLimit, checkValue } from './keys.js'
import type { NodeStore } from './memory.js'

export interface LevelStoreInit {
  /** Directory of the LevelDB database (created on `start()`). Required. */
  path: string
}

class LevelStore implements NodeStore {
  readonly kind = 'level'
  private readonly path: string
  private db: ClassicLevel<string, Uint8Array> | undefined

  constructor(init: LevelStoreInit) {
    if (typeof init.path !== 'string' || init.path.length === 0) {
      throw new InvalidParametersError(`expected a database path, got ${String(init.path)}`)
    }
    this.path = init.path
  }

  isStarted(): boolean {
    return this.db !== undefined
  }

  async start(): Promise<void> {
    if (this.db !== undefined) return
    const db = new ClassicLevel<string, Uint8Array>(this.path, { valueEncoding: 'view' })
    await db.open()
    this.db = db
  }

  async stop(): Promise<void> {
    const db = this.db
    this.db = undefined
    if (db !== undefined) await db.close()
  }

  private open(): ClassicLevel<string, Uint8Array> {
    if (this.db === undefined) throw new StoreClosedError(`expected an open store, got a closed one (${this.path})`)
    return this.db
  }

  async get(key: string, options?: AbortOptions): Promise<Uint8Array | undefined> {
    aborted(options)
    checkKey(key)
    const v = await this.open().get(key)
    return v === undefined ? undefined : new Uint8Array(v)
  }

  async put(key: string, value: Uint8Array, options?: AbortOptions): Promise<void> {
    aborted(options)
    checkKey(key)
    checkValue(value)
    await this.open().put(key, value)
  }

  async delete(key: string, options?: AbortOptions): Promise<void> {
    aborted(options)
    checkKey(key)
    await this.open().del(key)
  }

  async has(key: string, options?: AbortOptions): Promise<boolean> {
    aborted(options)
    checkKey(key)
    return (await this.open().get(key)) !== undefined
  }

  async *query(prefix: string, options?: AbortOptions & { limit?: number }): AsyncIterable<{ key: string; value: Uint8Array }> {
    checkKey(prefix, 'prefix')
    const limit = checkLimit(options?.limit)
    aborted(options)
    if (limit === 0) return
    const it = this.open().iterator({ gte: prefix })
    let n = 0
    try {
      for await (const [key, value] of it) {
        aborted(options)
        if (!key.startsWith(prefix)) break
        yield { key, value: new Uint8Array(value) }
        if (++n >= limit) break
      }
    } finally {
      await it.close()
    }
  }
}

/** A KeyValueStore on LevelDB (classic-level). No I/O until `start()`; `stop()` closes the database. */
export function levelStore(init: LevelStoreInit): NodeStore {
  return new LevelStore(init)
}
