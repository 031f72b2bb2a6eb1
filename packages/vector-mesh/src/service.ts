/**
 * The vector-mesh service: `vectorMesh(init)(components)` on the MessageRouter contract.
 * It answers VECTOR_SYNC requests at `/vectors` (reconcile, fetch, push, search, announce), keeps
 * the node's shards in step with their other holders by the configured strategies, and runs
 * federated searches. All time comes from the injected Clock.
 */
import { InvalidParametersError, KLPMessageType, KosMeshError, ProcessingStatus, every, systemClock, type Clock, type KeyValueStore, type KLPMessage, type Logger, type MessageContext, type MessageRouter, type ProcessingResult, type Signer, type Startable, type TrustEngine } from '@kos-mesh/interface'
import type { ResolvedCollection } from './collection.js'
import { federatedSearch, type SearchOptions, type SearchResult } from './search.js'
import type { BulkTransfer } from '@kos-mesh/klp-router'
import { offerSnapshot } from './snapshot.js'
import { serveRequest } from './serve.js'
import { placement, rankHolders, type StorageNode } from './sharding.js'
import { defaultTrustRequirements, syncShard, type ShardSyncResult, type SyncContext } from './sync.js'
import { ConsistencyModel, SyncStatus, SyncStrategy, type VectorMeshProtocol, type CollectionConfig, type PeerSyncResult, type SignedEntry, type SyncResult, type VectorSyncRequest } from './types.js'
import { VectorStore } from './vector-store.js'
import { VECTORS_PATH, VectorRejectReason, parseVectorRequest, type VectorRequest } from './wire.js'

/**
 * Options of the vector-mesh service (`vectorMesh(init)`): sync strategies, timers, trust
 * thresholds and limits. Every field is optional; the README's "Limits and defaults" lists them.
 */
export interface VectorMeshInit {
  /** Strategies in use. Default `['hybrid']` (push new writes, pull every `syncIntervalMs`). */
  strategies?: SyncStrategy[]
  /** Pull / gossip period, ms. Default 30,000. 0 = no timer (call `syncVectorData`). */
  syncIntervalMs?: number
  /** Minimum trust score (0..10) of a DID whose VECTOR_SYNC requests are served; also sent as the messages' `minimum_trust_score`. Default 6.0 (the spec's). */
  minSyncTrust?: number
  /** Per-request timeout, ms. Default 10,000. */
  requestTimeoutMs?: number
  /** Largest payload of entries per message, bytes. Default 512 KiB. */
  maxChunkBytes?: number
  /** Largest reconciliation message accepted, bytes. Default 768 KiB. */
  maxReconBytes?: number
  /** Reconciliation frame limit (both sides), bytes. Default 256 KiB (a message is at most ~5 KB more). */
  frameSizeLimit?: number
  /** Tombstones are forgotten after this long, and older entries refused. Default Infinity (kept). */
  tombstoneHorizonMs?: number
  /** Entries further ahead of this node's clock are refused until it catches up. Default 60,000. */
  maxClockSkewMs?: number
  /** Index checkpoint interval, applies. Default 1,000. */
  checkpointEvery?: number
  /** This node's region (geographic placement). */
  region?: string
  /** Concurrent request handlers (peers' syncs and searches) before `busy`. Default 32. */
  maxConcurrentRequests?: number
  /** Nodes below this trust (0..10, in `storageNodes`) never hold shards. Default 0. */
  minStorageTrust?: number
  /** A sync missing more entries than this fetches a bulk snapshot (when the `bulk` component is given). Default 4,096. */
  bulkThreshold?: number
}

/**
 * What the embedding node gives the service (`vectorMesh(init)(components)`). `router`, `signer`
 * and `kv` are required: without them the call throws `InvalidParametersError`.
 */
export interface VectorMeshComponents {
  /** The KLP router (klp-router implements it): the service's handlers and requests go through it, and its DID owns this node's entries. */
  router: MessageRouter
  /** Signs this node's entries (its DID owns them). */
  signer: Signer
  /** Records, versions and collection configs. */
  kv: KeyValueStore
  /** Directory of index files, beside the node's data. Default: none (indexes rebuilt on open). */
  dataDir?: string
  /** Time of the hybrid logical clock, timers and deadlines. Default: the system clock. */
  clock?: Clock
  /** Receives debug logs of failed pushes and warnings of failed sync rounds. Default: none. */
  logger?: Logger
  /** Checks a requester's trust (minSyncTrust). Default: none (every signer is served). */
  trust?: TrustEngine
  /**
   * The nodes that advertise `vector_storage` (from discovery), with their trust; this node is
   * added itself. When given, shards are placed on them (rendezvous by trust, replication factor);
   * without it every node holds every shard of its collections and syncs with its peers.
   */
  storageNodes?: () => StorageNode[]
  /**
   * klp-router's bulk transfer service (started by the embedder, on the same router): large deltas
   * then travel as hash-tree verified snapshots instead of many fetch requests. Default: none.
   */
  bulk?: BulkTransfer
}

/** Options of `VectorMesh.put`. */
export interface PutOptions {
  /**
   * Stored with the entry and returned with its search hits: at most 32 keys of 1..64 characters,
   * values strings (at most 1,024 characters), finite numbers or booleans.
   */
  metadata?: Record<string, string | number | boolean>
  /** Geographic sharding: the entry's region (1..64 characters), which names its shard; unknown regions are hashed. */
  region?: string
}

/**
 * The vector-mesh service of one node (`vectorMesh(init)(components)`): collections, signed writes
 * and deletes, federated search and sync. `start()` loads the stored collections and registers the
 * VECTOR_SYNC handler (and the gossip `BROADCAST_ANNOUNCE` one) at `/vectors`, and starts the
 * sync timer; `stop()` ends them and checkpoints the indexes.
 */
export interface VectorMesh extends Startable {
  /** The local store: collections, shards, entries (reads such as `get` and `searchShard` work without the network). */
  readonly store: VectorStore
  /**
   * Creates a collection here and stores its config, or returns the existing one when the config
   * is the same. Every node taking part must create it with the same config (it is not negotiated
   * on the wire). Returns the config with its defaults filled in.
   *
   * @throws InvalidCollectionError for an invalid config (see `resolveCollection`) or a different
   * config under an existing name.
   */
  createCollection(config: CollectionConfig): Promise<ResolvedCollection>
  /** Writes (or replaces) this node's entry `id`; pushed to the shard's holders under push/hybrid. */
  put(collection: string, id: string, vector: ArrayLike<number>, options?: PutOptions): Promise<SignedEntry>
  /** Deletes this node's entry `id` with a signed tombstone. */
  delete(collection: string, id: string): Promise<SignedEntry>
  /**
   * Federated k-NN (see `federatedSearch`): the k nearest entries over the shards the query visits,
   * with the node that answered each shard; a shard without an answer by the deadline makes the
   * result incomplete, not an error.
   *
   * @throws UnknownCollectionError for a collection not created here; InvalidParametersError for
   * `k` outside 1..1,000 or a vector of the wrong dimensions.
   */
  search(collection: string, vector: ArrayLike<number>, options?: SearchOptions): Promise<SearchResult>
  /** Syncs the requested shards with their other holders; one result per peer. */
  syncVectorData(request: VectorSyncRequest, options?: { signal?: AbortSignal; peers?: string[] }): Promise<SyncResult>
  /** One shard with one peer. */
  syncShardWith(authority: string, collection: string, shard: number, options?: { since?: number; signal?: AbortSignal }): Promise<ShardSyncResult>
  /** Holders of a shard other than this node, best first. */
  holders(collection: string, shard: number): Array<{ did: string; authority: string }>
  /**
   * Counters since the service was made: `requests` VECTOR_SYNC and announce messages received,
   * `rejected` refusals by `VectorRejectReason` code, `entriesReceived` entries accepted from
   * peers' pushes and fetched by `syncVectorData`, `entriesRefused` entries refused on those paths
   * (bad signature, foreign owner, too old...).
   */
  stats(): { requests: number; rejected: Record<string, number>; entriesReceived: number; entriesRefused: number }
  /** The spec's `VectorMeshProtocol` of a collection on this node. */
  protocol(collection: string): VectorMeshProtocol
}

/** The protocol version this package speaks (`VectorMeshProtocol.protocol_version`). */
export const VECTOR_MESH_PROTOCOL_VERSION = '1.0'

/**
 * The vector-mesh service factory, in the components style of the other services: `init` holds
 * its options (defaults in `VectorMeshInit`), the returned function takes the node's components
 * and makes a service, not yet started. Throws `InvalidParametersError` (from the returned
 * function) without `router`, `signer` or `kv`, or for an unknown sync strategy.
 */
export function vectorMesh(init: VectorMeshInit = {}): (components: VectorMeshComponents) => VectorMesh {
  return (components) => new VectorMeshService(init, components)
}

class VectorMeshService implements VectorMesh {
  readonly store: VectorStore
  private readonly router: MessageRouter
  private readonly clock: Clock
  private readonly ctx: SyncContext
  private readonly strategies: Set<SyncStrategy>
  private readonly minSyncTrust: number
  private readonly syncIntervalMs: number
  private readonly maxConcurrent: number
  private readonly minStorageTrust: number
  private active = 0
  private started = false
  private stopTimer: (() => void) | undefined
  private controller = new AbortController()
  private syncCounter = 0
  private readonly counters = { requests: 0, rejected: {} as Record<string, number>, entriesReceived: 0, entriesRefused: 0 }

  constructor(private readonly init: VectorMeshInit, private readonly components: VectorMeshComponents) {
    if (components?.router === undefined || components.signer === undefined || components.kv === undefined) throw new InvalidParametersError('expected router, signer and kv components')
    this.router = components.router
    this.clock = components.clock ?? systemClock
    this.strategies = new Set(init.strategies ?? [SyncStrategy.HYBRID])
    for (const s of this.strategies) if (!Object.values(SyncStrategy).includes(s)) throw new InvalidParametersError(`expected a sync strategy, got ${String(s)}`)
    this.minSyncTrust = init.minSyncTrust ?? 6
    this.syncIntervalMs = init.syncIntervalMs ?? 30_000
    this.maxConcurrent = init.maxConcurrentRequests ?? 32
    this.minStorageTrust = init.minStorageTrust ?? 0
    const maxReconBytes = init.maxReconBytes ?? 768 * 1024
    this.store = new VectorStore({
      kv: components.kv, clock: this.clock, signer: components.signer, did: this.router.did,
      ...(components.dataDir === undefined ? {} : { dataDir: components.dataDir }),
      ...(init.tombstoneHorizonMs === undefined ? {} : { tombstoneHorizonMs: init.tombstoneHorizonMs }),
      ...(init.maxClockSkewMs === undefined ? {} : { maxClockSkewMs: init.maxClockSkewMs }),
      ...(init.checkpointEvery === undefined ? {} : { checkpointEvery: init.checkpointEvery }),
      holds: (c, shard) => this.holdsShard(c, shard),
    })
    this.ctx = {
      router: this.router, store: this.store, requestTimeoutMs: init.requestTimeoutMs ?? 10_000,
      trustRequirements: defaultTrustRequirements(this.minSyncTrust), maxChunkBytes: init.maxChunkBytes ?? 512 * 1024,
      frameSizeLimit: init.frameSizeLimit ?? 256 * 1024, maxReconBytes, priority: 5,
      bulkThreshold: init.bulkThreshold ?? 4096,
      ...(components.bulk === undefined ? {} : { bulk: components.bulk }),
    }
  }

  isStarted(): boolean { return this.started }

  async start(): Promise<void> {
    if (this.started) return
    await this.store.open()
    this.router.handle(KLPMessageType.VECTOR_SYNC, this.onRequest, { path: VECTORS_PATH })
    try {
      // gossip announcements ride on broadcasts, which the router sends as BROADCAST_ANNOUNCE
      this.router.handle(KLPMessageType.BROADCAST_ANNOUNCE, this.onRequest, { path: VECTORS_PATH })
    } catch (err) {
      this.router.unhandle(KLPMessageType.VECTOR_SYNC, { path: VECTORS_PATH })
      throw err
    }
    this.controller = new AbortController()
    this.started = true
    const periodic = this.strategies.has(SyncStrategy.PULL) || this.strategies.has(SyncStrategy.HYBRID) || this.strategies.has(SyncStrategy.GOSSIP)
    if (periodic && this.syncIntervalMs > 0) this.stopTimer = every(this.clock, this.syncIntervalMs, () => { void this.tick() }, { unref: true })
  }

  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    this.stopTimer?.()
    this.stopTimer = undefined
    this.controller.abort()
    this.router.unhandle(KLPMessageType.VECTOR_SYNC, { path: VECTORS_PATH })
    this.router.unhandle(KLPMessageType.BROADCAST_ANNOUNCE, { path: VECTORS_PATH })
    await this.store.close()
  }

  protocol(collection: string): VectorMeshProtocol {
    const c = this.store.collection(collection)
    return { protocol_version: VECTOR_MESH_PROTOCOL_VERSION, sync_strategies: [...this.strategies], sharding_config: { ...c.sharding, locality_hints: c.sharding.locality_hints.map((h) => ({ ...h })) }, consistency_model: ConsistencyModel.EVENTUAL }
  }

  stats(): ReturnType<VectorMesh['stats']> {
    return { ...this.counters, rejected: { ...this.counters.rejected } }
  }

  // ---------------------------------------------------------------- placement

  private nodes(): StorageNode[] | undefined {
    const list = this.components.storageNodes?.()
    if (list === undefined) return undefined
    if (list.some((n) => n.did === this.router.did)) return list
    const self: StorageNode = { did: this.router.did, authority: this.router.authority, trust: 10, ...(this.init.region === undefined ? {} : { region: this.init.region }) }
    return [self, ...list]
  }

  private readonly placementCache = new Map<string, { key: string; map: Map<number, StorageNode[]> }>()

  /** The collection's placement over the current storage nodes (cached while they do not change). */
  private placed(c: ResolvedCollection, nodes: StorageNode[]): Map<number, StorageNode[]> {
    const key = `${c.name}\n${nodes.map((n) => `${n.did} ${n.trust >= this.minStorageTrust ? 1 : 0} ${n.region ?? ''} ${n.authority ?? ''}`).join('\n')}`
    let hit = this.placementCache.get(c.name)
    if (hit?.key !== key) {
      hit = { key, map: placement(c, nodes, { minTrust: this.minStorageTrust }) }
      this.placementCache.set(c.name, hit)
    }
    return hit.map
  }

  private holdsShard(c: ResolvedCollection, shard: number): boolean {
    const nodes = this.nodes()
    if (nodes === undefined) return true
    return (this.placed(c, nodes).get(shard) ?? []).some((n) => n.did === this.router.did)
  }

  holders(collection: string, shard: number): Array<{ did: string; authority: string }> {
    const c = this.store.collection(collection)
    const nodes = this.nodes()
    const connected = new Map(this.router.peers().filter((p) => p.authority !== undefined).map((p) => [p.did, p.authority as string]))
    // without placement every peer holds every shard; with it, the shard's replicas in rank order
    const ranked = nodes === undefined ? [...connected].map(([did, authority]) => ({ did, authority })) : rankHolders(this.placed(c, nodes).get(shard) ?? [])
    const out: Array<{ did: string; authority: string }> = []
    for (const n of ranked) {
      if (n.did === this.router.did) continue
      const authority = n.authority ?? connected.get(n.did) ?? this.router.authorityOf(n.did)
      if (authority !== undefined) out.push({ did: n.did, authority })
    }
    return out
  }

  private syncPartners(collection: string, shard: number): Array<{ did: string; authority: string }> {
    return this.holders(collection, shard)
  }

  // ---------------------------------------------------------------- local writes

  async createCollection(config: CollectionConfig): Promise<ResolvedCollection> {
    return this.store.createCollection(config)
  }

  async put(collection: string, id: string, vector: ArrayLike<number>, options: PutOptions = {}): Promise<SignedEntry> {
    return this.publish(await this.store.signPut(collection, id, vector, options.metadata, options.region))
  }

  async delete(collection: string, id: string): Promise<SignedEntry> {
    return this.publish(await this.store.signDelete(collection, id))
  }

  private async publish(e: SignedEntry): Promise<SignedEntry> {
    const applied = await this.store.applyLocal(e)
    if (!this.started || !(this.strategies.has(SyncStrategy.PUSH) || this.strategies.has(SyncStrategy.HYBRID))) return applied[0]!.entry
    await Promise.all(applied.flatMap(({ entry, shard }) => this.syncPartners(entry.body.collection, shard).map(async (p) => {
      try {
        await this.router.request(
          { type: KLPMessageType.VECTOR_SYNC, target: `klp://${p.authority}${VECTORS_PATH}`, data: { op: 'push', collection: entry.body.collection, shard, entries: [entry.bytes] }, trustRequirements: this.ctx.trustRequirements },
          { timeoutMs: this.ctx.requestTimeoutMs, signal: this.controller.signal },
        )
      } catch (err) {
        this.components.logger?.debug('vector push failed', { peer: p.did, error: (err as Error)?.name })
      }
    })))
    return applied[0]!.entry
  }

  search(collection: string, vector: ArrayLike<number>, options?: SearchOptions): Promise<SearchResult> {
    return federatedSearch({ ...this.ctx, clock: this.clock, selfDid: this.router.did, holders: (c, s) => this.holders(c, s) }, this.store, collection, vector, options)
  }

  // ---------------------------------------------------------------- sync

  syncShardWith(authority: string, collection: string, shard: number, options: { since?: number; signal?: AbortSignal } = {}): Promise<ShardSyncResult> {
    return syncShard(this.ctx, authority, collection, shard, options)
  }

  async syncVectorData(request: VectorSyncRequest, options: { signal?: AbortSignal; peers?: string[] } = {}): Promise<SyncResult> {
    const shardIds = request.shard_ids.length > 0 ? request.shard_ids : this.store.listCollections().flatMap((c) => Array.from({ length: c.sharding.shard_count }, (_, s) => `${c.name}/${s}`))
    const byPeer = new Map<string, { did: string; shards: Array<[string, number]> }>()
    for (const sid of shardIds) {
      const at = sid.lastIndexOf('/')
      const collection = sid.slice(0, at)
      const shard = Number(sid.slice(at + 1))
      if (at <= 0 || !Number.isInteger(shard) || !this.store.hasCollection(collection)) throw new InvalidParametersError(`expected shard ids <collection>/<shard> of known collections, got ${sid.slice(0, 80)}`)
      if (!this.store.holds(collection, shard)) continue
      for (const p of this.syncPartners(collection, shard)) {
        if (options.peers !== undefined && !options.peers.includes(p.authority) && !options.peers.includes(p.did)) continue
        const entry = byPeer.get(p.authority) ?? { did: p.did, shards: [] }
        entry.shards.push([collection, shard])
        byPeer.set(p.authority, entry)
      }
    }
    const since = request.since_timestamp.getTime()
    const signal = AbortSignal.any([this.controller.signal, ...(options.signal === undefined ? [] : [options.signal])])
    const peerResults: PeerSyncResult[] = await Promise.all([...byPeer].map(async ([authority, { did, shards }]): Promise<PeerSyncResult> => {
      const t0 = this.clock.now()
      let synced = 0
      try {
        for (const [collection, shard] of shards) {
          const r = await syncShard({ ...this.ctx, priority: request.priority }, authority, collection, shard, { since: Number.isFinite(since) && since > 0 ? since : 0, maxVectors: Math.max(0, request.max_vectors - synced), signal })
          synced += r.fetched
          this.counters.entriesReceived += r.fetched
          for (const n of Object.values(r.refused)) this.counters.entriesRefused += n
        }
        return { peer_id: did, status: SyncStatus.COMPLETED, vectors_synced: synced, sync_duration_ms: this.clock.now() - t0 }
      } catch (err) {
        return { peer_id: did, status: SyncStatus.FAILED, vectors_synced: synced, sync_duration_ms: this.clock.now() - t0, error: err instanceof KosMeshError ? `${err.name}: ${err.message}` : 'sync failed' }
      }
    }))
    return {
      sync_id: `sync-${this.router.authority}-${++this.syncCounter}-${this.clock.now()}`,
      request,
      peer_results: peerResults,
      total_vectors_synced: peerResults.reduce((s, r) => s + r.vectors_synced, 0),
      sync_timestamp: new Date(this.clock.now()),
    }
  }

  private ticking = false
  private readonly pulling = new Set<string>()

  private async tick(): Promise<void> {
    if (!this.started || this.ticking) return // one round at a time, however long it takes
    this.ticking = true
    try {
      await this.store.gc()
      if (this.strategies.has(SyncStrategy.PULL) || this.strategies.has(SyncStrategy.HYBRID)) {
        await this.syncVectorData({ shard_ids: [], since_timestamp: new Date(0), max_vectors: Number.MAX_SAFE_INTEGER, priority: 5, start_time: new Date(this.clock.now()) })
      }
      if (this.strategies.has(SyncStrategy.GOSSIP)) await this.announce()
    } catch (err) {
      this.components.logger?.warn('vector sync tick failed', { error: (err as Error)?.name })
    } finally {
      this.ticking = false
    }
  }

  /** Gossip: broadcast each held shard's fingerprint; a receiver that differs pulls from us. */
  async announce(): Promise<void> {
    for (const c of this.store.listCollections()) {
      for (let s = 0; s < c.sharding.shard_count; s++) {
        if (!this.store.holds(c.name, s)) continue
        const set = (await this.store.shard(c.name, s)).reconSet()
        await this.router.broadcast({ target: `klp://${this.router.authority}${VECTORS_PATH}`, data: { op: 'announce', collection: c.name, shard: s, fp: set.fingerprint(0, set.size), count: set.size } }, { signal: this.controller.signal }).catch(() => {})
      }
    }
  }

  // ---------------------------------------------------------------- serving

  private readonly onRequest = async (message: KLPMessage, context: MessageContext): Promise<ProcessingResult> => {
    this.counters.requests++
    const isBroadcast = message.type === KLPMessageType.BROADCAST_ANNOUNCE
    if (isBroadcast !== ((message.payload.data as { op?: unknown } | null)?.op === 'announce')) return this.refuse(message, VectorRejectReason.INVALID_REQUEST, 'announce only as a broadcast', isBroadcast)
    if (this.components.trust !== undefined) {
      const check = await this.components.trust.check(context.signerDid, defaultTrustRequirements(this.minSyncTrust))
      if (!check.passed || check.score < this.minSyncTrust) return this.refuse(message, VectorRejectReason.INSUFFICIENT_TRUST, `expected trust >= ${this.minSyncTrust}`, isBroadcast)
    }
    let req: VectorRequest
    try {
      req = parseVectorRequest(message.payload.data, this.ctx.maxReconBytes)
    } catch (err) {
      if (!(err instanceof KosMeshError)) throw err
      return this.refuse(message, VectorRejectReason.INVALID_REQUEST, err.message, isBroadcast)
    }
    if (!this.store.hasCollection(req.collection)) return this.refuse(message, VectorRejectReason.UNKNOWN_COLLECTION, 'unknown collection', isBroadcast)
    if (!this.store.holds(req.collection, req.shard)) return this.refuse(message, VectorRejectReason.NOT_HOLDER, 'this node does not hold the shard', isBroadcast)
    if (req.op === 'announce') {
      const set = (await this.store.shard(req.collection, req.shard)).reconSet()
      const authority = this.router.authorityOf(context.signerDid)
      const id = `${authority} ${req.collection}/${req.shard}`
      // at most 4 pulls started by announcements at a time, one per (peer, shard)
      if (authority !== undefined && this.pulling.size < 4 && !this.pulling.has(id) && (set.size !== req.count || Buffer.compare(set.fingerprint(0, set.size), req.fp) !== 0)) {
        this.pulling.add(id)
        void syncShard(this.ctx, authority, req.collection, req.shard, { signal: this.controller.signal }).catch(() => {}).finally(() => this.pulling.delete(id))
      }
      return { status: ProcessingStatus.PROCESSED }
    }
    if (this.active >= this.maxConcurrent) return this.refuse(message, VectorRejectReason.BUSY, 'too many requests', false)
    this.active++
    try {
      if (req.op === 'snapshot') {
        if (this.components.bulk === undefined) return this.refuse(message, VectorRejectReason.INVALID_REQUEST, 'no bulk transfer here', false)
        const o = await offerSnapshot(this.components.bulk, await this.store.shard(req.collection, req.shard), req.since, context.signerDid)
        return { status: ProcessingStatus.PROCESSED, response: await this.router.createResponse(message, { op: 'snapshot', ...o }) }
      }
      return { status: ProcessingStatus.PROCESSED, response: await this.router.createResponse(message, await serveRequest(this.store, req, this.ctx, this.counters)) }
    } finally {
      this.active--
    }
  }

  private async refuse(request: KLPMessage, code: string, message: string, noAnswer: boolean): Promise<ProcessingResult> {
    this.counters.rejected[code] = (this.counters.rejected[code] ?? 0) + 1
    if (noAnswer) return { status: ProcessingStatus.REJECTED, reason: code }
    return { status: ProcessingStatus.REJECTED, reason: code, response: await this.router.createResponse(request, { status: 'rejected', error: { code, message: message.slice(0, 200) } }) }
  }
}
