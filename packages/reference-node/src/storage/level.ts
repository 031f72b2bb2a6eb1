import { randomBytes } from 'node:crypto'
import { open as fsOpen, readFile, rename, stat, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { InvalidParametersError, systemClock, type AbortOptions, type Clock } from '@kos-mesh/interface'
import { StoreClosedError, StoreIntegrityError } from '../errors.js'
import { aborted, checkKey, checkLimit, checkValue } from './keys.js'
import type { NodeStore } from './memory.js'

export interface LevelStoreInit {
  /** Directory of the LevelDB database (created on `start()`). Required. */
  path: string
  /**
   * Keep an integrity record in the database and a marker file beside it (`<path>.integrity.json`),
   * both written at every start with a growing generation. `start()` then refuses a database
   * that lost its records since the marker was written (an empty or replaced database, a
   * truncated log: no record, another store id, or an older generation) with
   * StoreIntegrityError. Default true.
   */
  integrity?: boolean
  /**
   * Accept the database as it is at this start, even when the integrity check would refuse it,
   * and write a fresh integrity record and marker (a new store id). The escape hatch after a
   * known loss (CLI `kos-mesh start --reset-store`). Default false.
   */
  resetStore?: boolean
  /** Time of the integrity record's `created` field. Default `systemClock`. */
  clock?: Clock
}

/** What the integrity record (in the database) and the marker (beside it) hold. */
export interface StoreIntegrityRecord {
  format: typeof INTEGRITY_FORMAT
  version: 1
  /** Random id of this store, fixed when it is first initialised (or reset). */
  store_id: string
  /** Incremented at every start. */
  generation: number
  /** When the store was first initialised (or reset), ms since epoch. */
  created: number
}

export const INTEGRITY_FORMAT = 'kos-mesh-store-integrity'
/**
 * Keys under this prefix are the store's own (the integrity record): `get`/`put`/`delete`/`has`
 * refuse them and `query` skips them.
 */
export const RESERVED_KEY_PREFIX = '\u0000kos-mesh/'
const INTEGRITY_KEY = `${RESERVED_KEY_PREFIX}integrity`
const MAX_MARKER_BYTES = 4096

/** The marker file of a LevelDB store at `path`. */
export function integrityMarkerPath(path: string): string {
  return join(dirname(path), `${basename(path)}.integrity.json`)
}

function parseIntegrity(bytes: Uint8Array | string | undefined): StoreIntegrityRecord | undefined {
  if (bytes === undefined) return undefined
  try {
    const v = JSON.parse(typeof bytes === 'string' ? bytes : new TextDecoder().decode(bytes)) as Partial<StoreIntegrityRecord>
    if (
      v.format === INTEGRITY_FORMAT &&
      v.version === 1 &&
      typeof v.store_id === 'string' &&
      /^[0-9a-f]{32}$/.test(v.store_id) &&
      Number.isSafeInteger(v.generation) &&
      (v.generation as number) >= 1 &&
      Number.isSafeInteger(v.created)
    ) {
      return { format: INTEGRITY_FORMAT, version: 1, store_id: v.store_id, generation: v.generation as number, created: v.created as number }
    }
  } catch {
    // not JSON: reported as unreadable below
  }
  return undefined
}

/** Writes `data` to `path` through a temporary file, fsynced, renamed, directory fsynced. */
async function writeFileDurably(path: string, data: string): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`
  const fh = await fsOpen(tmp, 'wx', 0o600)
  try {
    await fh.writeFile(data)
    await fh.sync()
    await fh.close()
    await rename(tmp, path)
  } catch (err) {
    await fh.close().catch(() => {})
    await unlink(tmp).catch(() => {})
    throw err
  }
  try {
    const dh = await fsOpen(dirname(path), 'r')
    try {
      await dh.sync()
    } finally {
      await dh.close()
    }
  } catch {
    // directory fsync is not supported everywhere
  }
}

function checkUserKey(key: unknown, what = 'key'): asserts key is string {
  checkKey(key, what)
  if (what === 'key' && key.startsWith(RESERVED_KEY_PREFIX)) throw new InvalidParametersError(`expected a key outside the store's reserved prefix "\\u0000kos-mesh/", got ${JSON.stringify(key.slice(0, 40))}`)
}

/** The LevelDB store: a NodeStore that reports its integrity record. */
export interface LevelNodeStore extends NodeStore {
  isStarted(): boolean
  /** The integrity record written at the last start (undefined before, or with `integrity: false`). */
  integrityRecord(): StoreIntegrityRecord | undefined
}

class LevelStore implements LevelNodeStore {
  readonly kind = 'level'
  private readonly path: string
  private readonly integrity: boolean
  private readonly resetStore: boolean
  private readonly clock: Clock
  private db: ClassicLevel<string, Uint8Array> | undefined
  private record: StoreIntegrityRecord | undefined

  constructor(init: LevelStoreInit) {
    if (typeof init.path !== 'string' || init.path.length === 0) {
      throw new InvalidParametersError(`expected a database path, got ${String(init.path)}`)
    }
    this.path = init.path
    this.integrity = init.integrity !== false
    this.resetStore = init.resetStore === true
    this.clock = init.clock ?? systemClock
  }

  isStarted(): boolean {
    return this.db !== undefined
  }

  /** The integrity record written at the last start (undefined before, or with `integrity: false`). */
  integrityRecord(): StoreIntegrityRecord | undefined {
    return this.record === undefined ? undefined : { ...this.record }
  }

  async start(): Promise<void> {
    if (this.db !== undefined) return
    const db = new ClassicLevel<string, Uint8Array>(this.path, { valueEncoding: 'view' })
    await db.open()
    if (this.integrity) {
      try {
        this.record = await this.checkIntegrity(db)
      } catch (err) {
        await db.close().catch(() => {})
        throw err
      }
    }
    this.db = db
  }

  /**
   * Compares the integrity record in the database with the marker beside it, refuses a database
   * that lost records, then writes the next generation: the record first (synced), the marker
   * second, so a crash between the two leaves a record ahead of the marker, which is accepted.
   */
  private async checkIntegrity(db: ClassicLevel<string, Uint8Array>): Promise<StoreIntegrityRecord> {
    const markerPath = integrityMarkerPath(this.path)
    let markerText: string | undefined
    try {
      const s = await stat(markerPath)
      if (!s.isFile() || s.size > MAX_MARKER_BYTES) markerText = ''
      else markerText = await readFile(markerPath, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    const marker = parseIntegrity(markerText)
    const rawRecord = await db.get(INTEGRITY_KEY)
    const record = parseIntegrity(rawRecord)
    if (!this.resetStore) {
      if (markerText !== undefined && marker === undefined) {
        throw new StoreIntegrityError(this.path, `a readable integrity marker at ${markerPath}`, 'a damaged one')
      }
      if (marker !== undefined) {
        const expected = `the integrity record of store ${marker.store_id} at generation >= ${marker.generation}`
        if (record === undefined) {
          let got = 'an unreadable integrity record'
          if (rawRecord === undefined) {
            let any = false
            for await (const _ of db.keys({ limit: 1 })) any = true
            got = any ? 'records but no integrity record' : 'an empty database'
          }
          throw new StoreIntegrityError(this.path, expected, got)
        }
        if (record.store_id !== marker.store_id) throw new StoreIntegrityError(this.path, expected, `the record of another store, ${record.store_id}`)
        if (record.generation < marker.generation) throw new StoreIntegrityError(this.path, expected, `generation ${record.generation} (older writes are missing)`)
      }
      // no marker: a new store, a store of an older version (adopted as it is), or a database
      // copied without its marker (the record is kept and the marker recreated)
    }
    const keep = this.resetStore ? undefined : record
    const next: StoreIntegrityRecord = {
      format: INTEGRITY_FORMAT,
      version: 1,
      store_id: keep?.store_id ?? randomBytes(16).toString('hex'),
      generation: Math.max(record?.generation ?? 0, marker?.generation ?? 0) + 1,
      created: keep?.created ?? this.clock.now(),
    }
    const text = JSON.stringify(next)
    await db.put(INTEGRITY_KEY, new TextEncoder().encode(text), { sync: true })
    await writeFileDurably(markerPath, text + '\n')
    return next
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
    checkUserKey(key)
    const v = await this.open().get(key)
    return v === undefined ? undefined : new Uint8Array(v)
  }

  async put(key: string, value: Uint8Array, options?: AbortOptions): Promise<void> {
    aborted(options)
    checkUserKey(key)
    checkValue(value)
    await this.open().put(key, value)
  }

  async delete(key: string, options?: AbortOptions): Promise<void> {
    aborted(options)
    checkUserKey(key)
    await this.open().del(key)
  }

  async has(key: string, options?: AbortOptions): Promise<boolean> {
    aborted(options)
    checkUserKey(key)
    return (await this.open().get(key)) !== undefined
  }

  async *query(prefix: string, options?: AbortOptions & { limit?: number }): AsyncIterable<{ key: string; value: Uint8Array }> {
    checkUserKey(prefix, 'prefix')
    const limit = checkLimit(options?.limit)
    aborted(options)
    if (limit === 0) return
    const it = this.open().iterator({ gte: prefix })
    let n = 0
    try {
      for await (const [key, value] of it) {
        aborted(options)
        if (!key.startsWith(prefix)) break
        if (key.startsWith(RESERVED_KEY_PREFIX)) continue
        yield { key, value: new Uint8Array(value) }
        if (++n >= limit) break
      }
    } finally {
      await it.close()
    }
  }
}

/**
 * A KeyValueStore on LevelDB (classic-level). No I/O until `start()`; `stop()` closes the
 * database. With `integrity` (the default) `start()` refuses a database that lost its records
 * (StoreIntegrityError); see LevelStoreInit.
 */
export function levelStore(init: LevelStoreInit): LevelNodeStore {
  return new LevelStore(init)
}
