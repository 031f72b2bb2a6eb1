/**
 * The node's vector collections (`services.vectors`, off unless `init.vectors` is given):
 * @kos-mesh/vector-mesh's service over the node's router, its records and versions in the node's
 * store (`vm/...`, `vm-config/...`), its index files in `init.dataDir` (the CLI's node uses
 * `<data dir>/vectors`, so a restart loads them instead of rebuilding), the trust engine checking
 * who may sync, discovery's `vector_storage` nodes as the shards' holders, and klp-router's bulk
 * transfer on VECTOR_SYNC for large deltas. vector-mesh (and usearch, a native addon) is loaded
 * only when the service starts.
 *
 * Around it, what an operator asks about: collections with their shards, holders and entry
 * counts, syncs run with their progress and outcome, for the control API, the CLI and the
 * dashboard's `vectors` panel.
 */
import { InvalidParametersError, KLPMessageType, QueueFullError, type AbortOptions, type Startable } from '@kos-mesh/interface'
import { bulkTransfer, type BulkTransfer } from '@kos-mesh/klp-router'
import type { PeerDiscovery } from '@kos-mesh/peer-discovery'
import type { CollectionConfig, SearchResult, SyncResult, VectorMesh, VectorMeshInit } from '@kos-mesh/vector-mesh'
import { defineService, type NodeComponents, type NodeService } from './components.js'

/** The data channel of the vector snapshots' bulk transfers (agent migration's uses klp-router's default, 0x0b01). */
export const VECTOR_BULK_CHANNEL = 0x0b02
/** Most entries one `add` takes (the control API's bound; an import sends several batches). */
export const MAX_ADD_ENTRIES = 1024
/** Syncs run at once (one more is refused with QueueFullError, 429 on the control API). */
export const MAX_CONCURRENT_SYNCS = 4
/** Puts of one `add` run at once (below a peer's default 32 concurrent requests). */
export const ADD_CONCURRENCY = 8
/** The sync outcomes kept (the newest). */
export const MAX_RECENT_SYNCS = 16
/** `view()` recounts the shards after this long, ms. */
export const VECTORS_VIEW_MAX_AGE_MS = 2000

/** Options of the node's vector service: vector-mesh's, the collections it creates at start, where index files go. */
export interface VectorsNodeInit extends VectorMeshInit {
  /** Collections created at every start (the same config as before, or start fails with InvalidCollectionError). Default none. */
  collections?: CollectionConfig[]
  /** Directory of the index files. Default none (indexes rebuilt from the store at each start). */
  dataDir?: string
  /**
   * Place shards on the nodes discovery knows to advertise `vector_storage` (rendezvous hashing
   * with the collection's replication factor). `false`: every node holds every shard of its
   * collections and syncs with its connected peers. Default true (when the node runs discovery).
   */
  placement?: boolean
}

/** One entry to add: this node's own (it signs it). */
export interface VectorEntryInput {
  id: string
  vector: number[]
  metadata?: Record<string, string | number | boolean>
}

/** One shard of a collection as this node sees it. */
export interface ShardView {
  shard: number
  /** This node holds it (a replica). */
  held: boolean
  /** The DIDs holding it, best first (this node included when it holds it). */
  holders: string[]
  /** Live entries (held shards only). */
  entries: number
  /** Versions including tombstones (held shards only). */
  versions: number
  /** Vectors in the local index (held shards only). */
  indexed: number
  /** The index was loaded from its file when the shard opened (not rebuilt from the records). */
  index_file_loaded: boolean
}

/** How a sync ended (or stands, while it runs). */
export interface SyncView {
  sync_id: string
  /** The collections synced. */
  collections: string[]
  status: 'running' | 'completed' | 'partial' | 'failed'
  started_at: number
  ended_at?: number
  /** Shards done of the shards this node holds in those collections. */
  shards_done: number
  shards_total: number
  /** Entries fetched from peers so far. */
  vectors_synced: number
  /** One line per peer: `completed` or `failed` (with the error). */
  peers: Array<{ peer_id: string; status: string; vectors_synced: number; error?: string }>
}

/** A collection as `vectors status` and the dashboard show it. */
export interface CollectionView {
  name: string
  dimensions: number
  metric: string
  quantization: string
  sharding: { method: string; shard_count: number; replication_factor: number }
  /** Live entries in the shards held here. */
  entries: number
  shards: ShardView[]
  /** The last sync of this collection (or the one running). */
  last_sync: SyncView | null
}

/** What `GET /v1/vectors` answers and the `vectors` panel draws. */
export interface VectorsView {
  collections: CollectionView[]
  /** Syncs running now. */
  syncs: SyncView[]
  /** The newest outcomes, newest first. */
  recent: SyncView[]
  stats: { requests: number; entriesReceived: number; entriesRefused: number; rejected: Record<string, number> }
}

/** The node's vector service as the control API uses it. */
export interface NodeVectors extends Startable {
  /** The vector-mesh service (while started). */
  readonly mesh: VectorMesh
  /**
   * Creates a collection here (the same config again is a no-op) and resolves with its view.
   * Throws InvalidCollectionError for a bad config or one that differs from the collection held,
   * InvalidParametersError while the service is stopped.
   */
  create(config: CollectionConfig): Promise<CollectionView>
  /**
   * Signs and stores 1..MAX_ADD_ENTRIES entries of this node in `collection`, ADD_CONCURRENCY
   * puts at a time, each pushed to its shard's other holders; a later entry with the same id
   * replaces an earlier one. Resolves with the number added; rejects with UnknownCollectionError,
   * InvalidCollectionError (wrong dimensions) or InvalidParametersError (too many entries), the
   * entries before the failure staying added.
   */
  add(collection: string, entries: VectorEntryInput[]): Promise<{ added: number }>
  /**
   * The `k` (1..1,000, default 10) nearest entries over the collection's shards, each
   * shard asked of a holder; a shard without an answer by `deadlineMs` (default 5,000 ms) makes the result
   * incomplete, not an error. Throws UnknownCollectionError, or InvalidParametersError for a bad
   * `k` or a vector of the wrong dimensions.
   */
  search(collection: string, vector: number[], options?: { k?: number; deadlineMs?: number; signal?: AbortSignal }): Promise<SearchResult>
  /** Syncs the shards held here of `collections` (default all) with their other holders, one shard at a time (progress in `view().syncs`). */
  sync(options?: { collections?: string[]; peers?: string[] } & AbortOptions): Promise<SyncView>
  /** The view now, counted. */
  status(): Promise<VectorsView>
  /** The last counted view (recounted in the background when older than VECTORS_VIEW_MAX_AGE_MS). */
  view(): VectorsView
  /** The counters of the node's Prometheus metrics (`kos_mesh_vector_*`) now. */
  metrics(): VectorMetrics
}

/** What `metricsText()` reports of the vector service. */
export interface VectorMetrics {
  /** Collections on this node. */
  collections: number
  /** Live entries in the shards held here, by collection, as last counted (at most VECTORS_VIEW_MAX_AGE_MS old, then recounted in the background). */
  entries: Record<string, number>
  /** Syncs ended since start, by outcome: completed (every peer), partial (some), failed (none, or an error). */
  syncs: { completed: number; partial: number; failed: number }
  /** Syncs running now (at most MAX_CONCURRENT_SYNCS). */
  syncsRunning: number
  /** VECTOR_SYNC and announce messages received. */
  requests: number
  /** Entries accepted from peers (their pushes, and fetched by syncs). */
  entriesReceived: number
  /** Entries refused on those paths (bad signature, foreign owner, too old, ...). */
  entriesRejected: number
  /** Requests refused, by reason code (VectorRejectReason). */
  rejected: Record<string, number>
}

class NodeVectorService implements NodeVectors {
  private service: VectorMesh | undefined
  private readonly bulk: BulkTransfer
  private readonly running = new Map<string, SyncView>()
  private readonly recent: SyncView[] = []
  private readonly lastOf = new Map<string, SyncView>()
  private cached: VectorsView = { collections: [], syncs: [], recent: [], stats: { requests: 0, entriesReceived: 0, entriesRefused: 0, rejected: {} } }
  private countedAt = -Infinity
  private counting: Promise<VectorsView> | undefined
  private syncSeq = 0
  private readonly syncOutcomes = { completed: 0, partial: 0, failed: 0 }

  constructor(private readonly init: VectorsNodeInit, private readonly c: NodeComponents) {
    this.bulk = bulkTransfer({ type: KLPMessageType.VECTOR_SYNC, channel: VECTOR_BULK_CHANNEL })({ router: c.router, clock: c.clock, logger: c.logger })
  }

  get mesh(): VectorMesh {
    if (this.service === undefined) throw new InvalidParametersError('expected a started vector service, got a stopped one')
    return this.service
  }

  async start(): Promise<void> {
    const vm = await import('@kos-mesh/vector-mesh')
    const { collections = [], dataDir, placement, ...meshInit } = this.init
    const discovery = (): PeerDiscovery | undefined => this.c.discovery as PeerDiscovery | undefined
    const nodes = placement === false || this.c.discovery === undefined ? undefined : () => {
      const registry = discovery()?.registry
      return registry === undefined ? [] : vm.storageNodesFromRegistry(registry)()
    }
    this.bulk.start()
    const service = vm.vectorMesh(meshInit)({
      router: this.c.router,
      signer: this.c.signer,
      kv: this.c.storage,
      clock: this.c.clock,
      logger: this.c.logger,
      trust: this.c.trustEngine,
      bulk: this.bulk,
      ...(dataDir === undefined ? {} : { dataDir }),
      ...(nodes === undefined ? {} : { storageNodes: nodes }),
    })
    try {
      await service.start()
      for (const config of collections) await service.createCollection(config)
    } catch (err) {
      await Promise.resolve(service.stop()).catch(() => {})
      this.bulk.stop()
      throw err
    }
    this.service = service
  }

  async stop(): Promise<void> {
    const s = this.service
    this.service = undefined
    await s?.stop()
    this.bulk.stop()
  }

  async create(config: CollectionConfig): Promise<CollectionView> {
    const c = await this.mesh.createCollection(config)
    this.recount()
    return await this.collectionView(c.name)
  }

  async add(collection: string, entries: VectorEntryInput[]): Promise<{ added: number }> {
    const mesh = this.mesh
    if (!Array.isArray(entries) || entries.length > MAX_ADD_ENTRIES) throw new InvalidParametersError(`expected at most ${MAX_ADD_ENTRIES} entries, got ${Array.isArray(entries) ? entries.length : typeof entries}`)
    mesh.store.collection(collection)
    let added = 0
    try {
      // a few puts at a time (each waits for its pushes to the shard's holders); every put takes
      // its HLC version when called, so a later line with the same id still wins
      for (let i = 0; i < entries.length; i += ADD_CONCURRENCY) {
        await Promise.all(entries.slice(i, i + ADD_CONCURRENCY).map(async (e) => {
          await mesh.put(collection, e.id, e.vector, e.metadata === undefined ? {} : { metadata: e.metadata })
          added++
        }))
      }
    } finally {
      this.recount()
    }
    return { added }
  }

  search(collection: string, vector: number[], options: { k?: number; deadlineMs?: number; signal?: AbortSignal } = {}): Promise<SearchResult> {
    return this.mesh.search(collection, vector, options)
  }

  async sync(options: { collections?: string[]; peers?: string[] } & AbortOptions = {}): Promise<SyncView> {
    const mesh = this.mesh
    if (this.running.size >= MAX_CONCURRENT_SYNCS) throw new QueueFullError(`expected at most ${MAX_CONCURRENT_SYNCS} syncs at once, got one more`)
    const names = options.collections ?? mesh.store.listCollections().map((c) => c.name)
    const shardIds: string[] = []
    for (const name of names) {
      const c = mesh.store.collection(name)
      for (let s = 0; s < c.sharding.shard_count; s++) if (mesh.store.holds(name, s)) shardIds.push(`${name}/${s}`)
    }
    const view: SyncView = { sync_id: `sync-${++this.syncSeq}-${this.c.clock.now()}`, collections: [...names], status: 'running', started_at: this.c.clock.now(), shards_done: 0, shards_total: shardIds.length, vectors_synced: 0, peers: [] }
    this.running.set(view.sync_id, view)
    for (const n of names) this.lastOf.set(n, view)
    const peers = new Map<string, SyncView['peers'][number]>()
    try {
      for (const sid of shardIds) {
        const r: SyncResult = await mesh.syncVectorData(
          { shard_ids: [sid], since_timestamp: new Date(0), max_vectors: Number.MAX_SAFE_INTEGER, priority: 5, start_time: new Date(this.c.clock.now()) },
          { ...(options.signal === undefined ? {} : { signal: options.signal }), ...(options.peers === undefined ? {} : { peers: options.peers }) },
        )
        for (const p of r.peer_results) {
          const cur = peers.get(p.peer_id) ?? { peer_id: p.peer_id, status: 'completed', vectors_synced: 0 }
          cur.vectors_synced += p.vectors_synced
          if (p.status !== 'completed') {
            cur.status = 'failed'
            if (p.error !== undefined) cur.error = p.error.slice(0, 300)
          }
          peers.set(p.peer_id, cur)
        }
        view.vectors_synced += r.total_vectors_synced
        view.shards_done++
        view.peers = [...peers.values()]
      }
      const failed = view.peers.filter((p) => p.status !== 'completed').length
      view.status = failed === 0 ? 'completed' : failed === view.peers.length ? 'failed' : 'partial'
    } catch (err) {
      view.status = 'failed'
      throw err
    } finally {
      view.ended_at = this.c.clock.now()
      this.syncOutcomes[view.status === 'running' ? 'failed' : view.status]++
      this.running.delete(view.sync_id)
      this.recent.unshift(view)
      this.recent.length = Math.min(this.recent.length, MAX_RECENT_SYNCS)
      this.recount()
    }
    return view
  }

  private async collectionView(name: string): Promise<CollectionView> {
    const mesh = this.mesh
    const c = mesh.store.collection(name)
    const shards: ShardView[] = []
    for (let s = 0; s < c.sharding.shard_count; s++) {
      const held = mesh.store.holds(name, s)
      const others = mesh.holders(name, s).map((h) => h.did)
      const holders = held ? [this.c.router.did, ...others] : others
      if (!held) {
        shards.push({ shard: s, held, holders, entries: 0, versions: 0, indexed: 0, index_file_loaded: false })
        continue
      }
      const st = await mesh.store.shard(name, s)
      shards.push({ shard: s, held, holders, entries: st.liveCount, versions: st.size, indexed: st.indexSize, index_file_loaded: st.openStats.loadedIndexFile })
    }
    const last = this.lastOf.get(name)
    return {
      name,
      dimensions: c.dimensions,
      metric: c.metric,
      quantization: c.quantization,
      sharding: { method: c.sharding.sharding_method, shard_count: c.sharding.shard_count, replication_factor: c.sharding.replication_factor },
      entries: shards.reduce((n, s) => n + s.entries, 0),
      shards,
      last_sync: last === undefined ? null : { ...last, peers: [...last.peers] },
    }
  }

  async status(): Promise<VectorsView> {
    const mesh = this.mesh
    const collections: CollectionView[] = []
    for (const c of mesh.store.listCollections()) collections.push(await this.collectionView(c.name))
    const { requests, entriesReceived, entriesRefused, rejected } = mesh.stats()
    this.cached = {
      collections,
      syncs: [...this.running.values()].map((v) => ({ ...v, peers: [...v.peers] })),
      recent: this.recent.map((v) => ({ ...v, peers: [...v.peers] })),
      stats: { requests, entriesReceived, entriesRefused, rejected },
    }
    this.countedAt = this.c.clock.now()
    return this.cached
  }

  /** Marks the view stale and recounts it in the background now, so that status and metrics soon show the change. */
  private recount(): void {
    this.countedAt = -Infinity
    this.view()
  }

  view(): VectorsView {
    if (this.service !== undefined && this.counting === undefined && this.c.clock.now() - this.countedAt >= VECTORS_VIEW_MAX_AGE_MS) {
      this.counting = this.status().catch((err: unknown) => {
        this.c.logger.debug('vector status failed', { err: String(err) })
        return this.cached
      }).finally(() => {
        this.counting = undefined
      })
    }
    return { ...this.cached, syncs: [...this.running.values()].map((v) => ({ ...v, peers: [...v.peers] })) }
  }

  metrics(): VectorMetrics {
    const view = this.view()
    const stats = this.service?.stats() ?? view.stats
    return {
      collections: this.service?.store.listCollections().length ?? view.collections.length,
      entries: Object.fromEntries(view.collections.map((c) => [c.name, c.entries])),
      syncs: { ...this.syncOutcomes },
      syncsRunning: this.running.size,
      requests: stats.requests,
      entriesReceived: stats.entriesReceived,
      entriesRejected: stats.entriesRefused,
      rejected: { ...stats.rejected },
    }
  }
}

/**
 * The vector service factory (`services.vectors`): needs the router, signer, store, clock,
 * logger and trust engine; uses discovery (when the node runs it) for placement.
 */
export function vectorsService(init: VectorsNodeInit = {}): NodeService<NodeVectors> {
  return defineService(['router', 'signer', 'storage', 'clock', 'logger', 'trustEngine'], (c) => new NodeVectorService(init, c))
}
