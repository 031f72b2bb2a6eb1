/**
 * One shard of one collection on this node: entries and versions in a KeyValueStore, the HNSW
 * index in files beside the node's data, the reconciliation set in memory.
 *
 * Crash safety. Records of a shard (prefix `vm/<collection>/<shard>/`):
 *   l/<seq>  the key changed at sequence number seq (the write-ahead log of changes)
 *   e/<key>  the entry's signed bytes (the truth)
 *   v/<key>  its version record (seq, HLC, writer, hash, op, id), derived from e/<key>
 * An apply writes l, then e, then v, then changes the in-memory index. A checkpoint saves the
 * index as `<dir>/<collection>/<shard>/<seq>.usearch` (temporary name, fsync, rename: the file is
 * whole or absent), then deletes older files and the log up to seq. On open, the newest index file
 * is loaded as it is (no rebuild) and every key named by a log record after its seq is re-read
 * from e/ and applied again (v/ rewritten, the index fixed), so a crash between any two writes
 * leaves the index and the records agreeing. No index file: the index is rebuilt from e/.
 */
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { KeyValueStore, KLPValue } from '@kos-mesh/interface'
import { decodeValue, encodeValue } from '@kos-mesh/klp-codec'
import type { ResolvedCollection } from './collection.js'
import { decodeStoredBody, decodeStoredEntry, labelOf, vectorOf } from './entry.js'
import { LabelCollisionError, VectorStoreCorruptError } from './errors.js'
import { compareVersions } from './hlc.js'
import { LocalIndex } from './local-index.js'
import { ReconStorage, compareItems, type ReconItem } from './recon-storage.js'
import type { EntryBody, Hlc, SignedEntry } from './types.js'

/**
 * The current version of one key in a shard (its `v/<key>` record), derived from the signed entry
 * and kept in memory: what reconciliation and the version order work on.
 */
export interface VersionRecord {
  /** The entry key (`entryKey(owner, id)`, 32 hex characters). */
  key: string
  /** The entry's id within its owner's entries. */
  id: string
  /** The shard's sequence number of the apply that wrote this version. */
  seq: number
  /** The version's hybrid logical clock timestamp. */
  hlc: Hlc
  /** The DID that signed the version. */
  writer: string
  /** SHA-256 of the entry's payload (32 bytes): the version's id in reconciliation and `fetch`. */
  hash: Uint8Array
  /** `put`, or `del` for a tombstone. */
  op: 'put' | 'del'
}

/**
 * What `ShardStore.apply` did with an entry: `applied` (it is now the current version of its key),
 * `stale` (the current version wins the version order: nothing changed), `duplicate` (this very
 * version is already current).
 */
export type ApplyOutcome = 'applied' | 'stale' | 'duplicate'

/** Where and how `ShardStore.open` keeps one shard. */
export interface ShardStoreInit {
  /** The records of the shard go under `vm/<collection>/<shard>/` in it. */
  kv: KeyValueStore
  /** Directory for index files; undefined = no files (the index is rebuilt from the records on open). */
  dir?: string
  /** The collection the shard belongs to. */
  collection: ResolvedCollection
  /** The shard number, 0..shard_count - 1. */
  shard: number
  /** Save the index after this many applies. Default 1,000. */
  checkpointEvery?: number
}

const SEQ_DIGITS = 16
const pad = (n: number): string => String(n).padStart(SEQ_DIGITS, '0')
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder()

function encodeVersion(v: VersionRecord): Uint8Array {
  return encodeValue({ id: v.id, seq: v.seq, wall: v.hlc.wall, counter: v.hlc.counter, writer: v.writer, hash: v.hash, op: v.op })
}

function decodeVersion(key: string, bytes: Uint8Array): VersionRecord {
  try {
    const r = decodeValue(bytes, { limits: { maxDepth: 2, maxItems: 16, maxStringLength: 1024, maxBytesLength: 64 } }) as Record<string, KLPValue>
    const { id, seq, wall, counter, writer, hash, op } = r
    if (typeof id !== 'string' || typeof seq !== 'number' || typeof wall !== 'number' || typeof counter !== 'number' || typeof writer !== 'string' || !(hash instanceof Uint8Array) || (op !== 'put' && op !== 'del')) throw new Error('bad fields')
    return { key, id, seq, hlc: { wall, counter }, writer, hash, op }
  } catch (err) {
    throw new VectorStoreCorruptError(`expected a version record at ${key}`, { cause: err })
  }
}

function versionOf(e: SignedEntry, seq: number): VersionRecord {
  return { key: e.key, id: e.body.id, seq, hlc: e.body.hlc, writer: e.body.writer, hash: e.hash, op: e.body.op }
}

/**
 * One shard of one collection on this node: the signed entries and their version records in a
 * KeyValueStore, the HNSW index (`LocalIndex`) in files under `dir`, the reconciliation set in
 * memory. Writes (`apply`, `gcTombstones`, `checkpoint`) run one at a time; a crash between any
 * two writes is repaired on the next `open` (docs/VECTOR-MESH.md, section 2). Take it from
 * `VectorStore.shard` rather than opening it yourself: two open stores on the same records would
 * disagree.
 */
export class ShardStore {
  readonly collection: ResolvedCollection
  readonly shard: number
  private readonly kv: KeyValueStore
  private readonly prefix: string
  private readonly dir: string | undefined
  private readonly checkpointEvery: number
  private readonly index: LocalIndex
  private readonly versions = new Map<string, VersionRecord>()
  private readonly byHash = new Map<string, string>()
  private readonly byLabel = new Map<bigint, string>()
  private items: ReconItem[] = []
  private snapshot: ReconStorage | undefined
  private seq = 0
  private indexSeq = 0
  private sinceCheckpoint = 0
  private queue: Promise<unknown> = Promise.resolve()
  /** What open() did: whether it loaded an index file and how many keys it replayed. */
  readonly openStats = { loadedIndexFile: false, replayed: 0, rebuilt: false }

  private constructor(init: ShardStoreInit) {
    this.kv = init.kv
    this.collection = init.collection
    this.shard = init.shard
    this.prefix = `vm/${init.collection.name}/${init.shard}/`
    this.dir = init.dir === undefined ? undefined : join(init.dir, init.collection.name, String(init.shard))
    this.checkpointEvery = init.checkpointEvery ?? 1000
    this.index = new LocalIndex(init.collection)
  }

  /**
   * Opens (or creates) a shard: loads the newest whole index file as it is, the version records,
   * and re-applies every key the write-ahead log names after that file; without a usable index
   * file (none, unreadable, or ahead of the records) it rebuilds the index from the entries.
   * `openStats` tells which. Throws `VectorStoreCorruptError` for an unreadable version record or
   * an entry stored under another key, `InvalidEntryError` for undecodable entry bytes, and the
   * KeyValueStore's and file system's errors.
   */
  static async open(init: ShardStoreInit): Promise<ShardStore> {
    const s = new ShardStore(init)
    await s.load()
    return s
  }

  /** Keys with a current version, tombstones included: the size of the reconciliation set. */
  get size(): number { return this.versions.size }
  /** Keys whose current version is a put (live entries); counts them, O(size). */
  get liveCount(): number { let n = 0; for (const v of this.versions.values()) if (v.op === 'put') n++; return n }
  /** Vectors in the HNSW index: `liveCount` once open and writes have settled. */
  get indexSize(): number { return this.index.size }
  /** The sequence number of the shard's last write (apply or tombstone GC), 0 before any; index files are named by it. */
  get sequence(): number { return this.seq }

  private async load(): Promise<void> {
    // 1. the newest whole index file
    let fileSeq = -1
    if (this.dir !== undefined) {
      await mkdir(this.dir, { recursive: true })
      for (const name of await readdir(this.dir)) {
        if (name.endsWith('.tmp')) { await rm(join(this.dir, name), { force: true }); continue }
        const m = /^(\d{16})\.usearch$/.exec(name)
        if (m !== null) fileSeq = Math.max(fileSeq, Number(m[1]))
      }
    }
    // 2. version records, log tail
    let maxSeq = 0
    for await (const { key, value } of this.kv.query(`${this.prefix}v/`)) {
      const v = decodeVersion(key.slice(this.prefix.length + 2), value)
      this.versions.set(v.key, v)
      maxSeq = Math.max(maxSeq, v.seq)
    }
    const tail = new Set<string>()
    for await (const { key, value } of this.kv.query(`${this.prefix}l/`)) {
      const seq = Number(key.slice(this.prefix.length + 2))
      maxSeq = Math.max(maxSeq, seq)
      if (seq > fileSeq) tail.add(fromUtf8.decode(value))
    }
    if (fileSeq > maxSeq) fileSeq = -1 // a file ahead of the records: do not trust it
    if (fileSeq >= 0 && this.dir !== undefined) {
      try {
        this.index.load(join(this.dir, `${pad(fileSeq)}.usearch`))
        this.openStats.loadedIndexFile = true
      } catch {
        fileSeq = -1
        this.index.clear()
      }
    }
    this.seq = Math.max(maxSeq, fileSeq)
    this.indexSeq = Math.max(fileSeq, 0)
    // 3. repair: keys of the log tail (or every entry when there is no index file) from e/
    if (fileSeq < 0) {
      this.openStats.rebuilt = true
      tail.clear()
      for await (const { key } of this.kv.query(`${this.prefix}e/`)) tail.add(key.slice(this.prefix.length + 2))
      for (const k of this.versions.keys()) tail.add(k)
    }
    for (const key of tail) await this.repair(key)
    this.openStats.replayed = tail.size
    for (const v of this.versions.values()) {
      this.byHash.set(hex(v.hash), v.key)
      this.byLabel.set(labelOf(v.key), v.key)
      this.items.push({ ts: v.hlc.wall, id: v.hash })
    }
    this.items.sort(compareItems)
  }

  /** Makes v/<key> and the index agree with e/<key>. */
  private async repair(key: string): Promise<void> {
    const bytes = await this.kv.get(`${this.prefix}e/${key}`)
    const label = labelOf(key)
    if (bytes === undefined) {
      this.versions.delete(key)
      await this.kv.delete(`${this.prefix}v/${key}`)
      this.index.remove(label)
      return
    }
    const e = decodeStoredEntry(bytes)
    if (e.key !== key) throw new VectorStoreCorruptError(`expected the entry at ${key}, got ${e.key}`)
    const old = this.versions.get(key)
    const v = versionOf(e, old !== undefined && Buffer.compare(old.hash, e.hash) === 0 ? old.seq : this.seq)
    this.versions.set(key, v)
    await this.kv.put(`${this.prefix}v/${key}`, encodeVersion(v))
    if (e.body.op === 'put') this.index.upsert(label, vectorOf(e.body.vector as Uint8Array))
    else this.index.remove(label)
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn)
    this.queue = p.catch(() => {})
    return p
  }

  /** The current version of a key. */
  version(key: string): VersionRecord | undefined { return this.versions.get(key) }

  /** Keys of a label (search results). */
  keyOfLabel(label: bigint): string | undefined { return this.byLabel.get(label) }

  /** The signed entry of a key (current version), or undefined. */
  async get(key: string): Promise<SignedEntry | undefined> {
    const bytes = await this.kv.get(`${this.prefix}e/${key}`)
    return bytes === undefined ? undefined : decodeStoredEntry(bytes)
  }

  /** The body of the current version of a key (no signature check, no hash: the query path). */
  async getBody(key: string): Promise<EntryBody | undefined> {
    const bytes = await this.kv.get(`${this.prefix}e/${key}`)
    return bytes === undefined ? undefined : decodeStoredBody(bytes)
  }

  /** The entry bytes whose version hash is `hash`, if it is still the current version. */
  async getByHash(hash: Uint8Array): Promise<Uint8Array | undefined> {
    const key = this.byHash.get(hex(hash))
    if (key === undefined) return undefined
    const bytes = await this.kv.get(`${this.prefix}e/${key}`)
    return bytes
  }

  /** Whether the version with this hash (SHA-256 of its payload, 32 bytes) is the current version of its key here. */
  hasHash(hash: Uint8Array): boolean { return this.byHash.has(hex(hash)) }

  /**
   * Applies a verified entry: last writer wins by (HLC, writer, hash), the same on every replica.
   * The caller has verified it (verifyEntry) and checked it belongs to this shard.
   */
  apply(e: SignedEntry): Promise<ApplyOutcome> {
    return this.serial(async () => {
      const cur = this.versions.get(e.key)
      if (cur !== undefined && Buffer.compare(cur.hash, e.hash) === 0) return 'duplicate'
      if (cur !== undefined && compareVersions({ hlc: e.body.hlc, writer: e.body.writer, hash: e.hash }, cur) <= 0) return 'stale'
      const label = labelOf(e.key)
      const owner = this.byLabel.get(label)
      if (owner !== undefined && owner !== e.key) throw new LabelCollisionError(`expected a free label for ${e.key}, got one of ${owner}`)
      const seq = this.seq + 1
      await this.kv.put(`${this.prefix}l/${pad(seq)}`, utf8.encode(e.key))
      this.seq = seq
      await this.kv.put(`${this.prefix}e/${e.key}`, e.bytes)
      const v = versionOf(e, seq)
      await this.kv.put(`${this.prefix}v/${e.key}`, encodeVersion(v))
      if (e.body.op === 'put') this.index.upsert(label, vectorOf(e.body.vector as Uint8Array))
      else this.index.remove(label)
      this.versions.set(e.key, v)
      this.byLabel.set(label, e.key)
      if (cur !== undefined) { this.byHash.delete(hex(cur.hash)); this.removeItem({ ts: cur.hlc.wall, id: cur.hash }) }
      this.byHash.set(hex(e.hash), e.key)
      this.insertItem({ ts: e.body.hlc.wall, id: e.hash })
      if (++this.sinceCheckpoint >= this.checkpointEvery) await this.checkpointNow()
      return 'applied'
    })
  }

  /** Forgets tombstones written before `before` (HLC wall ms). Returns how many. */
  gcTombstones(before: number): Promise<number> {
    return this.serial(async () => {
      let n = 0
      for (const v of [...this.versions.values()]) {
        if (v.op !== 'del' || v.hlc.wall >= before) continue
        const seq = this.seq + 1
        await this.kv.put(`${this.prefix}l/${pad(seq)}`, utf8.encode(v.key))
        this.seq = seq
        await this.kv.delete(`${this.prefix}e/${v.key}`)
        await this.kv.delete(`${this.prefix}v/${v.key}`)
        this.versions.delete(v.key)
        this.byHash.delete(hex(v.hash))
        this.byLabel.delete(labelOf(v.key))
        this.removeItem({ ts: v.hlc.wall, id: v.hash })
        n++
      }
      return n
    })
  }

  private find(item: ReconItem): number {
    let lo = 0
    let hi = this.items.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (compareItems(this.items[mid] as ReconItem, item) < 0) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  private insertItem(item: ReconItem): void {
    this.items.splice(this.find(item), 0, item)
    this.snapshot = undefined
  }

  private removeItem(item: ReconItem): void {
    const i = this.find(item)
    if (i < this.items.length && compareItems(this.items[i] as ReconItem, item) === 0) this.items.splice(i, 1)
    this.snapshot = undefined
  }

  /** The reconciliation set: (HLC wall, version hash) of every current version (`since`: only ts >= since). */
  reconSet(since = 0): ReconStorage {
    if (since > 0) return ReconStorage.fromSorted(this.items.slice(this.find({ ts: since, id: new Uint8Array(32) })))
    this.snapshot ??= ReconStorage.fromSorted(this.items)
    return this.snapshot
  }

  /** k nearest live entries: keys and distances. */
  search(vector: Float32Array, k: number, threads = 1): Array<{ key: string; distance: number }> {
    const out: Array<{ key: string; distance: number }> = []
    for (const h of this.index.search(vector, k, threads)) {
      const key = this.byLabel.get(h.label)
      if (key !== undefined) out.push({ key, distance: h.distance })
    }
    return out
  }

  /** Saves the index now (and prunes the log it covers). */
  checkpoint(): Promise<void> {
    return this.serial(() => this.checkpointNow())
  }

  private async checkpointNow(): Promise<void> {
    this.sinceCheckpoint = 0
    if (this.dir === undefined || this.seq === this.indexSeq) return
    const seq = this.seq
    const tmp = join(this.dir, `${pad(seq)}.usearch.tmp`)
    this.index.save(tmp)
    const fh = await open(tmp, 'r+')
    try { await fh.sync() } finally { await fh.close() }
    await rename(tmp, join(this.dir, `${pad(seq)}.usearch`))
    const dh = await open(this.dir, 'r')
    try { await dh.sync() } finally { await dh.close() }
    this.indexSeq = seq
    for (const name of await readdir(this.dir)) {
      const m = /^(\d{16})\.usearch$/.exec(name)
      if (m !== null && Number(m[1]) < seq) await rm(join(this.dir, name), { force: true })
    }
    const old: string[] = []
    for await (const { key } of this.kv.query(`${this.prefix}l/`)) if (Number(key.slice(this.prefix.length + 2)) <= seq) old.push(key)
    for (const k of old) await this.kv.delete(k)
  }

  /** Checkpoints and waits for pending work. */
  async close(): Promise<void> {
    await this.checkpoint()
  }

  /** Every current version (for status and tests). */
  allVersions(): VersionRecord[] { return [...this.versions.values()] }
}
