import { randomBytes } from 'node:crypto'
import { open as fsOpen, readFile, rename, stat, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { BaseDatastore } from 'datastore-core'
import { LevelDatastore } from 'datastore-level'
import type { Batch, Datastore, Key, KeyQuery, Pair, Query } from 'interface-datastore'
import { InvalidParametersError, systemClock, type AbortOptions, type Clock } from '@kos-mesh/interface'
import { datastoreKeyValueStore, type DatastoreKeyValueStore } from '../datastore.js'
import { StoreClosedError, StoreIntegrityError } from '../errors.js'
import type { NodeStore } from './memory.js'

/** The raw LevelDB of a LevelDatastore (utf8 keys, Uint8Array values). */
type RawLevel = LevelDatastore['db']

/** Options of `levelStore()`: a LevelDB store on disk, with an integrity check at every start. */
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
/** Datastore Key namespace of the node's keys (`/kos/<key>`); libp2p's keys live beside it. */
export const KOS_DATASTORE_PREFIX = '/kos'
/**
 * On-disk layouts. Before `datastore/1` (kos-mesh <= this change) the database held the node's
 * keys verbatim (`trust/...`, `\u0000kos-mesh/integrity`); from `datastore/1` it is a
 * datastore-level LevelDatastore: the node's keys under `/kos/`, libp2p's beside them, and this
 * marker (reserved, under `/kos/`) records the layout. A database without the marker is migrated
 * once, at `start()`, in one atomic batch.
 */
export const LAYOUT_FORMAT = 'datastore/1'
const LAYOUT_KEY = `${KOS_DATASTORE_PREFIX}/${RESERVED_KEY_PREFIX}layout`
const RAW_INTEGRITY_KEY = `${KOS_DATASTORE_PREFIX}/${INTEGRITY_KEY}`
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

/**
 * Moves a database of the pre-datastore layout (keys verbatim) under `/kos/` and writes the
 * layout marker, in one synced batch. Returns the number of keys moved (0: already migrated, or
 * a new database).
 */
export async function migrateLevelLayout(db: RawLevel): Promise<number> {
  const layout = await db.get(LAYOUT_KEY)
  if (layout !== undefined) {
    const text = new TextDecoder().decode(layout)
    if (text !== LAYOUT_FORMAT) throw new StoreIntegrityError(db.location, `a database of layout ${LAYOUT_FORMAT}`, `layout ${JSON.stringify(text.slice(0, 40))}`)
    return 0
  }
  const ops: Array<{ type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string }> = []
  let moved = 0
  for await (const [key, value] of db.iterator()) {
    ops.push({ type: 'put', key: `${KOS_DATASTORE_PREFIX}/${key}`, value }, { type: 'del', key })
    moved++
  }
  ops.push({ type: 'put', key: LAYOUT_KEY, value: new TextEncoder().encode(LAYOUT_FORMAT) })
  await db.batch(ops, { sync: true })
  return moved
}

/** The LevelDB store: a NodeStore that reports its integrity record. */
export interface LevelNodeStore extends NodeStore {
  /** True between a `start()` that opened the database and the next `stop()`. */
  isStarted(): boolean
  /** The integrity record written at the last start (undefined before, or with `integrity: false`). */
  integrityRecord(): StoreIntegrityRecord | undefined
  /**
   * The datastore-level LevelDatastore of the store (opened by `start()`, closed by `stop()`):
   * the node's keys are under `/kos/`; hand it to libp2p (`libp2p({ datastore })`) so the peer
   * store and DHT records live in the same LevelDB.
   */
  readonly datastore: LevelStoreDatastore
  /** Keys moved from the pre-datastore layout at the last start (0 when there was nothing to move). */
  migratedKeys(): number
}

/**
 * The store's Datastore as handed out before `start()` (libp2p is configured before the node
 * starts): it delegates to the LevelDatastore opened by `start()` and fails with StoreClosedError
 * while the store is stopped. (A LevelDatastore cannot be made up front: its Level instance opens
 * itself, creating the directory, as soon as it is constructed.)
 */
export class LevelStoreDatastore extends BaseDatastore implements Datastore {
  /** @internal */
  current: LevelDatastore | undefined

  constructor(private readonly path: string) {
    super()
  }

  private ds(): LevelDatastore {
    if (this.current === undefined) throw new StoreClosedError(`expected an open store, got a closed one (${this.path})`)
    return this.current
  }

  override async put(key: Key, value: Uint8Array, options?: AbortOptions): Promise<Key> {
    return await this.ds().put(key, value, options)
  }

  override async get(key: Key, options?: AbortOptions): Promise<Uint8Array> {
    return await this.ds().get(key, options)
  }

  override async has(key: Key, options?: AbortOptions): Promise<boolean> {
    return await this.ds().has(key, options)
  }

  override async delete(key: Key, options?: AbortOptions): Promise<void> {
    return await this.ds().delete(key, options)
  }

  override batch(): Batch {
    return this.ds().batch()
  }

  override query(q: Query, options?: AbortOptions): AsyncGenerator<Pair> | Generator<Pair> {
    return this.ds().query(q, options)
  }

  override queryKeys(q: KeyQuery, options?: AbortOptions): AsyncGenerator<Key> | Generator<Key> {
    return this.ds().queryKeys(q, options)
  }
}

class LevelStore implements LevelNodeStore {
  readonly kind = 'level'
  readonly datastore: LevelStoreDatastore
  private readonly path: string
  private readonly integrity: boolean
  private readonly resetStore: boolean
  private readonly clock: Clock
  private readonly kv: DatastoreKeyValueStore
  private started = false
  private record: StoreIntegrityRecord | undefined
  private moved = 0

  constructor(init: LevelStoreInit) {
    if (typeof init.path !== 'string' || init.path.length === 0) {
      throw new InvalidParametersError(`expected a database path, got ${String(init.path)}`)
    }
    this.path = init.path
    this.integrity = init.integrity !== false
    this.resetStore = init.resetStore === true
    this.clock = init.clock ?? systemClock
    // no I/O until start(), which opens the LevelDatastore underneath
    this.datastore = new LevelStoreDatastore(this.path)
    this.kv = datastoreKeyValueStore(this.datastore, { prefix: KOS_DATASTORE_PREFIX, ordered: true, reservedPrefix: RESERVED_KEY_PREFIX })
  }

  isStarted(): boolean {
    return this.started
  }

  /** The integrity record written at the last start (undefined before, or with `integrity: false`). */
  integrityRecord(): StoreIntegrityRecord | undefined {
    return this.record === undefined ? undefined : { ...this.record }
  }

  migratedKeys(): number {
    return this.moved
  }

  async start(): Promise<void> {
    if (this.started) return
    const ds = new LevelDatastore(this.path)
    await ds.open()
    const db = ds.db
    try {
      // the integrity check reads the database as it is (either layout) before migrating it
      const next = this.integrity ? await this.checkIntegrity(db) : undefined
      this.moved = await migrateLevelLayout(db)
      if (next !== undefined) await this.writeIntegrity(db, next)
      this.record = next
    } catch (err) {
      await db.close().catch(() => {})
      throw err
    }
    this.datastore.current = ds
    this.started = true
  }

  /**
   * Compares the integrity record in the database with the marker beside it, refuses a database
   * that lost records, and returns the next generation's record (written by `writeIntegrity`).
   */
  private async checkIntegrity(db: RawLevel): Promise<StoreIntegrityRecord> {
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
    const migrated = (await db.get(LAYOUT_KEY)) !== undefined
    const rawRecord = await db.get(migrated ? RAW_INTEGRITY_KEY : INTEGRITY_KEY)
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
            for await (const key of db.keys({ limit: 2 })) if (key !== LAYOUT_KEY) any = true
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
    return {
      format: INTEGRITY_FORMAT,
      version: 1,
      store_id: keep?.store_id ?? randomBytes(16).toString('hex'),
      generation: Math.max(record?.generation ?? 0, marker?.generation ?? 0) + 1,
      created: keep?.created ?? this.clock.now(),
    }
  }

  /** Writes the record first (synced), the marker second: a crash between leaves the record ahead, which is accepted. */
  private async writeIntegrity(db: RawLevel, next: StoreIntegrityRecord): Promise<void> {
    const text = JSON.stringify(next)
    await db.put(RAW_INTEGRITY_KEY, new TextEncoder().encode(text), { sync: true })
    await writeFileDurably(integrityMarkerPath(this.path), text + '\n')
  }

  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    const ds = this.datastore.current
    this.datastore.current = undefined
    await ds?.close()
  }

  private open(): DatastoreKeyValueStore {
    if (!this.started) throw new StoreClosedError(`expected an open store, got a closed one (${this.path})`)
    return this.kv
  }

  async get(key: string, options?: AbortOptions): Promise<Uint8Array | undefined> {
    return await this.open().get(key, options)
  }

  async put(key: string, value: Uint8Array, options?: AbortOptions): Promise<void> {
    await this.open().put(key, value, options)
  }

  async delete(key: string, options?: AbortOptions): Promise<void> {
    await this.open().delete(key, options)
  }

  async has(key: string, options?: AbortOptions): Promise<boolean> {
    return await this.open().has(key, options)
  }

  query(prefix: string, options?: AbortOptions & { limit?: number }): AsyncIterable<{ key: string; value: Uint8Array }> {
    return this.open().query(prefix, options)
  }
}

/**
 * A KeyValueStore on LevelDB: a datastore-level LevelDatastore under the Datastore adapter
 * (`datastoreKeyValueStore`, keys under `/kos/`), whose Datastore (`.datastore`) libp2p can share.
 * A database of the earlier layout (classic-level, keys verbatim) is migrated at the first
 * `start()`. No I/O until `start()`; `stop()` closes the database. With `integrity` (the default)
 * `start()` refuses a database that lost its records (StoreIntegrityError); see LevelStoreInit.
 */
export function levelStore(init: LevelStoreInit): LevelNodeStore {
  return new LevelStore(init)
}
