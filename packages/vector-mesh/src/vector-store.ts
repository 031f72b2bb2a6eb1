/**
 * The local vector state of a node: its collections (configs in the KeyValueStore), one
 * `ShardStore` per shard it holds, local writes (signed with the node's signer on its hybrid
 * logical clock) and the checks every received entry passes before it is applied: signature and
 * ownership (verifyEntry), the collection and shard it claims, the tombstone horizon and the
 * clock-skew bound. No networking here: the sync service (service.ts) feeds it.
 */
import { InvalidParametersError, type Clock, type KeyValueStore, type Signer } from '@kos-mesh/interface'
import { collectionToJson, resolveCollection, type ResolvedCollection } from './collection.js'
import { entryKey, signEntry, vectorBytes, vectorOf, verifyEntry } from './entry.js'
import { EntryFromFutureError, EntryTooOldError, InvalidCollectionError, InvalidEntryError, UnknownCollectionError } from './errors.js'
import { HybridClock } from './hlc.js'
import { ShardStore, type ApplyOutcome } from './shard-store.js'
import { shardOf } from './sharding.js'
import { ShardingMethod as _SM } from './types.js'
import type { CollectionConfig, EntryBody, SignedEntry } from './types.js'

/** The settings of a `VectorStore` (`vectorMesh` builds them from its init and components). */
export interface VectorStoreInit {
  /** Collection configs (`vm-config/`), the shards' records (`vm/`) and the shards of this node's own entries under semantic sharding (`vm-own/`). */
  kv: KeyValueStore
  /** Directory of the index files; undefined = none (indexes are rebuilt from the records on open). */
  dataDir?: string
  /** Time of the hybrid logical clock, the clock-skew check and the tombstone horizon. */
  clock: Clock
  /** Signs this node's own writes. */
  signer: Signer
  /** The DID of the signer (owner of this node's entries). */
  did: string
  /** Tombstones older than this are forgotten, and entries older than this refused. Default Infinity (tombstones kept forever). */
  tombstoneHorizonMs?: number
  /** Entries whose HLC is further ahead of this node's clock are refused (for now). Default 60,000. */
  maxClockSkewMs?: number
  /** Index checkpoint interval (applies). Default 1,000. */
  checkpointEvery?: number
  /** Which shards of a collection this node holds. Default: all. */
  holds?: (collection: ResolvedCollection, shard: number) => boolean
}

/** One result of `VectorStore.searchShard`: a live entry of the shard near the query. */
export interface LocalHit {
  /** The entry key (`entryKey(owner, id)`). */
  key: string
  /** The entry's id. */
  id: string
  /** The DID that owns the entry. */
  owner: string
  /** Distance to the query under the collection's metric (see `IndexHit.distance`), smaller is nearer. */
  distance: number
  /** The shard searched. */
  shard: number
  /** The entry's metadata, when it has some. */
  metadata?: Record<string, string | number | boolean>
}

const CONFIG_PREFIX = 'vm-config/'
const OWN_PREFIX = 'vm-own/'
const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder()

/**
 * The local vector state of a node (`VectorMesh.store`): its collections (configs in the
 * KeyValueStore), one `ShardStore` per shard it holds, this node's writes signed with its signer on
 * its hybrid logical clock, and the checks every received entry passes before it is applied
 * (signature and ownership, collection and shard, tombstone horizon, clock skew). No networking:
 * the service feeds it. The constructor throws `InvalidParametersError` when `tombstoneHorizonMs`
 * is not above 0.
 */
export class VectorStore {
  /** This node's hybrid logical clock: stamps its writes and observes every applied entry's timestamp. */
  readonly hlc: HybridClock
  private readonly collections = new Map<string, ResolvedCollection>()
  private readonly shards = new Map<string, Promise<ShardStore>>()
  private readonly horizon: number
  private readonly maxSkew: number

  constructor(private readonly init: VectorStoreInit) {
    this.hlc = new HybridClock(init.clock)
    this.horizon = init.tombstoneHorizonMs ?? Infinity
    this.maxSkew = init.maxClockSkewMs ?? 60_000
    if (!(this.horizon > 0)) throw new InvalidParametersError(`expected tombstoneHorizonMs > 0, got ${this.horizon}`)
  }

  /** Loads the collection configs from the store. */
  async open(): Promise<void> {
    for await (const { value } of this.init.kv.query(CONFIG_PREFIX)) {
      const c = resolveCollection(JSON.parse(fromUtf8.decode(value)) as CollectionConfig)
      this.collections.set(c.name, c)
    }
  }

  /** Creates a collection (idempotent when the config is the same). */
  async createCollection(config: CollectionConfig): Promise<ResolvedCollection> {
    const c = resolveCollection(config)
    const json = JSON.stringify(collectionToJson(c))
    const old = this.collections.get(c.name)
    if (old !== undefined) {
      if (JSON.stringify(collectionToJson(old)) !== json) throw new InvalidCollectionError(`expected the same config for the existing collection ${c.name}`)
      return old
    }
    await this.init.kv.put(`${CONFIG_PREFIX}${c.name}`, utf8.encode(json))
    this.collections.set(c.name, c)
    return c
  }

  /** The config of collection `name`. Throws `UnknownCollectionError` when it is not created (or loaded) here. */
  collection(name: string): ResolvedCollection {
    const c = this.collections.get(name)
    if (c === undefined) throw new UnknownCollectionError(`expected a collection named ${name.slice(0, 64)}, got none`)
    return c
  }

  /** Whether collection `name` is created (or loaded) here. */
  hasCollection(name: string): boolean { return this.collections.has(name) }
  /** Every collection here, in the order they were loaded or created. */
  listCollections(): ResolvedCollection[] { return [...this.collections.values()] }

  /**
   * Whether this node holds shard `shard` of `collection`: a shard number in 0..shard_count - 1
   * that the `holds` setting places here (by default every shard). Throws `UnknownCollectionError`.
   */
  holds(collection: string, shard: number): boolean {
    const c = this.collection(collection)
    return shard >= 0 && shard < c.sharding.shard_count && (this.init.holds?.(c, shard) ?? true)
  }

  /** The shard store (opened on first use). */
  shard(collection: string, shard: number): Promise<ShardStore> {
    const c = this.collection(collection)
    if (!Number.isInteger(shard) || shard < 0 || shard >= c.sharding.shard_count) throw new InvalidParametersError(`expected a shard in 0..${c.sharding.shard_count - 1}, got ${shard}`)
    const id = `${collection}/${shard}`
    let p = this.shards.get(id)
    if (p === undefined) {
      p = ShardStore.open({ kv: this.init.kv, ...(this.init.dataDir === undefined ? {} : { dir: this.init.dataDir }), collection: c, shard, ...(this.init.checkpointEvery === undefined ? {} : { checkpointEvery: this.init.checkpointEvery }) })
      this.shards.set(id, p)
      p.catch(() => this.shards.delete(id))
    }
    return p
  }

  /** The shard an entry belongs to (for a semantic tombstone: the shard of the version it deletes, when held here). */
  async shardOfEntry(c: ResolvedCollection, e: SignedEntry): Promise<number> {
    if (e.body.op === 'del' && c.sharding.sharding_method === _SM.SEMANTIC_BASED) {
      for (let s = 0; s < c.sharding.shard_count; s++) {
        if (!this.holds(c.name, s)) continue
        if ((await this.shard(c.name, s)).version(e.key) !== undefined) return s
      }
    }
    return shardOf(c, e.key, e.body, e.body.vector === undefined ? undefined : vectorOf(e.body.vector))
  }

  /** Signs a put of this node's entry `id`. Does not apply it (see `applyLocal`). */
  async signPut(collection: string, id: string, vector: ArrayLike<number>, metadata?: Record<string, string | number | boolean>, region?: string): Promise<SignedEntry> {
    const c = this.collection(collection)
    if (vector.length !== c.dimensions) throw new InvalidCollectionError(`expected a vector of ${c.dimensions} dimensions, got ${vector.length}`)
    const body: EntryBody = { v: 1, collection, id, op: 'put', vector: vectorBytes(vector), owner: this.init.did, writer: this.init.did, hlc: this.hlc.tick(), ...(metadata === undefined ? {} : { metadata }), ...(region === undefined ? {} : { region }) }
    return signEntry(body, this.init.signer)
  }

  /** Signs a tombstone of this node's entry `id`. */
  async signDelete(collection: string, id: string): Promise<SignedEntry> {
    this.collection(collection)
    return signEntry({ v: 1, collection, id, op: 'del', owner: this.init.did, writer: this.init.did, hlc: this.hlc.tick() }, this.init.signer)
  }

  /**
   * Checks a received entry's bytes and applies it to `shard` (when given, the entry must belong
   * to it). Throws the entry's typed error (InvalidEntryError, InvalidEntrySignatureError,
   * ForeignOwnerError, EntryTooOldError, EntryFromFutureError, UnknownCollectionError).
   */
  async applyBytes(bytes: Uint8Array, expect?: { collection: string; shard: number }): Promise<{ outcome: ApplyOutcome; entry: SignedEntry; shard: number }> {
    const e = verifyEntry(bytes)
    return this.applyEntry(e, expect)
  }

  /**
   * Applies an entry whose signature and ownership are already verified (`verifyEntry`; for
   * received bytes use `applyBytes`), to `expect.shard` when given, else to the shard it belongs
   * to, and moves this node's HLC past the entry's. Returns the outcome and the shard.
   *
   * @throws UnknownCollectionError for a collection not created here; InvalidEntryError when the
   * entry is not of `expect`'s collection or shard; EntryFromFutureError when its HLC is more than
   * `maxClockSkewMs` ahead of this node's clock; EntryTooOldError when it is older than the
   * tombstone horizon; LabelCollisionError when another key of the shard has its index label.
   */
  async applyEntry(e: SignedEntry, expect?: { collection: string; shard: number }): Promise<{ outcome: ApplyOutcome; entry: SignedEntry; shard: number }> {
    const c = this.collection(e.body.collection)
    if (expect !== undefined && expect.collection !== c.name) throw new InvalidEntryError(`expected an entry of ${expect.collection}, got one of ${c.name}`)
    const now = this.init.clock.now()
    if (e.body.hlc.wall > now + this.maxSkew) throw new EntryFromFutureError(`expected an HLC at most ${this.maxSkew} ms ahead, got ${e.body.hlc.wall - now} ms`)
    if (e.body.hlc.wall < now - this.horizon) throw new EntryTooOldError(`expected an entry newer than the tombstone horizon (${this.horizon} ms), got one ${now - e.body.hlc.wall} ms old`)
    const shard = await this.shardOfEntry(c, e)
    if (expect !== undefined && !(e.body.op === 'del' && c.sharding.sharding_method === _SM.SEMANTIC_BASED) && shard !== expect.shard) throw new InvalidEntryError(`expected an entry of shard ${expect.shard}, got one of shard ${shard}`)
    const target = expect?.shard ?? shard
    this.hlc.observe(e.body.hlc)
    const outcome = await (await this.shard(c.name, target)).apply(e)
    return { outcome, entry: e, shard: target }
  }

  /**
   * Applies this node's own new entry to the shards it holds here and returns what to publish:
   * the entry with its shard, and under semantic sharding, when the entry's vector moved it to
   * another shard, a tombstone for the shard of its previous version (this node remembers the
   * shard of each entry it wrote, in `vm-own/`; a delete goes to that shard too).
   */
  async applyLocal(e: SignedEntry): Promise<Array<{ entry: SignedEntry; shard: number }>> {
    const c = this.collection(e.body.collection)
    const out: Array<{ entry: SignedEntry; shard: number }> = []
    let shard = await this.shardOfEntry(c, e)
    if (c.sharding.sharding_method === _SM.SEMANTIC_BASED) {
      const ownKey = `${OWN_PREFIX}${c.name}/${e.key}`
      const prev = await this.init.kv.get(ownKey)
      const prevShard = prev === undefined ? undefined : Number(fromUtf8.decode(prev))
      if (e.body.op === 'del') {
        if (prevShard !== undefined) shard = prevShard
      } else {
        if (prevShard !== undefined && prevShard !== shard) {
          const t = await this.signDelete(c.name, e.body.id)
          if (this.holds(c.name, prevShard)) await (await this.shard(c.name, prevShard)).apply(t)
          out.push({ entry: t, shard: prevShard })
          // the put must sort after its own tombstone
          e = await signEntry({ ...e.body, hlc: this.hlc.tick() }, this.init.signer)
        }
        await this.init.kv.put(ownKey, utf8.encode(String(shard)))
      }
    }
    if (this.holds(c.name, shard)) await (await this.shard(c.name, shard)).apply(e)
    out.unshift({ entry: e, shard })
    return out
  }

  /** Local k-NN on one shard, with ids and metadata. */
  async searchShard(collection: string, shard: number, vector: ArrayLike<number>, k: number): Promise<LocalHit[]> {
    const c = this.collection(collection)
    if (vector.length !== c.dimensions) throw new InvalidCollectionError(`expected a query of ${c.dimensions} dimensions, got ${vector.length}`)
    const st = await this.shard(collection, shard)
    const out: LocalHit[] = []
    for (const h of st.search(Float32Array.from(vector), k)) {
      const b = await st.getBody(h.key)
      if (b === undefined || b.op !== 'put') continue
      out.push({ key: h.key, id: b.id, owner: b.owner, distance: h.distance, shard, ...(b.metadata === undefined ? {} : { metadata: b.metadata }) })
    }
    return out
  }

  /** The current version of (owner, id), if held here. */
  async get(collection: string, owner: string, id: string): Promise<SignedEntry | undefined> {
    const c = this.collection(collection)
    const key = entryKey(owner, id)
    for (let s = 0; s < c.sharding.shard_count; s++) {
      if (!this.holds(collection, s)) continue
      const e = await (await this.shard(collection, s)).get(key)
      if (e !== undefined) return e
    }
    return undefined
  }

  /** Forgets tombstones older than the horizon (no-op when it is Infinity). */
  async gc(): Promise<number> {
    if (this.horizon === Infinity) return 0
    let n = 0
    for (const p of this.shards.values()) n += await (await p).gcTombstones(this.init.clock.now() - this.horizon)
    return n
  }

  /** Opened shard stores. */
  async openShards(): Promise<ShardStore[]> { return Promise.all(this.shards.values()) }

  /** Checkpoints every opened shard (index files saved, logs pruned); a shard that fails does not stop the others. */
  async close(): Promise<void> {
    for (const p of this.shards.values()) await (await p).close().catch(() => {})
  }
}
