/**
 * KadNode: the Kademlia core of one node. It answers KadRequests (synchronously, no I/O), learns
 * contacts from requests and answers (through the routing table's admission and diversity rules),
 * and runs lookups, provider searches, provide/republish, bootstrap and bucket refresh through an
 * injected KadRpc and Clock. The service around it moves the requests over KLP; the simulator
 * moves them over SimNet.
 */
import type { Clock } from '@kos-mesh/interface'
import { AbortError } from '@kos-mesh/interface'
import type { Contact, KadId, KadInit, KadRequest, KadResponse, KadRpc, ProviderRecord } from './types.js'
import { assertKadId, contactIdMatchesDid, idEquals, idKey, isKadId, randomIdInBucket } from './id.js'
import { RoutingTable } from './routing-table.js'
import { ProviderStore } from './providers.js'
import { Lookup, runLookup, type RunLookupResult } from './lookup.js'
import { InvalidProviderRecordError, KadNoContactsError, KadRequestTimeoutError } from './errors.js'

/**
 * Options of a KadNode: this node's contact, the clock, the RPC, randomness, liveness checks and the
 * Kademlia options.
 */
export interface KadNodeInit extends KadInit {
  /** The local node (its id must be sha256 of its DID). */
  self: Contact
  clock: Clock
  rpc: KadRpc
  /** Random source for refresh ids. Default Math.random (the simulator passes a seeded one). */
  random?: () => number
  /** A full bucket's head unseen for this long gets a liveness check. Default 60,000 ms. */
  staleAfterMs?: number
  /** Liveness checks in flight at most. Default 16. */
  maxPendingChecks?: number
  /** Drop contacts whose id is not sha256(did). Default true. */
  verifyIds?: boolean
  /** Re-provide keys this often. Default providerTtlMs / 2 (12 hours). */
  republishIntervalMs?: number
  /** Keys this node provides (and republishes) at most. Default 1,024. */
  maxProvidedKeys?: number
  /**
   * Disjoint paths of the table-upkeep lookups (bootstrap, refresh). Default 1: they only fill the
   * table, whose admission rules guard it; lookups whose answers matter use `disjointPaths`.
   */
  maintenancePaths?: number
}

/** The defaults of KadInit, as used. */
export const KAD_DEFAULTS = {
  k: 20,
  alpha: 3,
  disjointPaths: 4,
  replacementCacheSize: 20,
  refreshIntervalMs: 3_600_000,
  maxFailures: 2,
  requestTimeoutMs: 2_000,
  maxPerGroupPerBucket: 2,
  maxProviders: 65_536,
  maxProvidersPerKey: 64,
  providerTtlMs: 24 * 3_600_000,
} as const

/** Options of a node lookup. */
export interface LookupOptions {
  signal?: AbortSignal
  /** Disjoint paths for this lookup. Default: `disjointPaths`. */
  paths?: number
  /** Stop as soon as an answer names the target itself. Default false. */
  stopOnTarget?: boolean
}

/** The result of a node lookup. */
export interface KadLookupResult extends RunLookupResult {
  /** The target's contact, when an answer named it (or the table held it). */
  readonly found?: Contact
  /** Depth at which the target (else the closest result) was learned; 0 if held locally. */
  readonly hops: number
}

/** The result of a provider lookup: the records found, and where. */
export interface FindProvidersResult {
  readonly providers: ProviderRecord[]
  /** Depth of the first answer that held providers (its responder's depth + 1); -1 if none. */
  readonly hops: number
  readonly queried: number
}

/** Sizes of a KadNode. */
export interface KadNodeStats {
  contacts: number
  cached: number
  providers: number
  providedKeys: number
  pendingChecks: number
}

/**
 * A Kademlia node, sans-I/O: the routing table, the provider store, lookups and the answers to requests;
 * the service around it does the I/O.
 */
export class KadNode {
  readonly self: Contact
  readonly id: KadId
  readonly table: RoutingTable
  readonly providers: ProviderStore
  readonly k: number
  readonly alpha: number
  readonly disjointPaths: number
  private readonly clock: Clock
  private readonly rpc: KadRpc
  private readonly random: () => number
  private readonly timeoutMs: number
  private readonly refreshIntervalMs: number
  private readonly providerTtlMs: number
  private readonly republishIntervalMs: number
  private readonly maxPendingChecks: number
  private readonly maxProvidedKeys: number
  private readonly verifyIds: boolean
  private readonly maintenancePaths: number
  private readonly provided = new Map<string, { key: KadId; lastPublished: number }>()
  private pendingChecks = 0

  constructor(init: KadNodeInit) {
    assertKadId(init.self.id, 'self.id')
    this.self = init.self
    this.id = init.self.id
    this.clock = init.clock
    this.rpc = init.rpc
    this.random = init.random ?? Math.random
    this.k = init.k ?? KAD_DEFAULTS.k
    this.alpha = init.alpha ?? KAD_DEFAULTS.alpha
    this.disjointPaths = init.disjointPaths ?? KAD_DEFAULTS.disjointPaths
    this.timeoutMs = init.requestTimeoutMs ?? KAD_DEFAULTS.requestTimeoutMs
    this.refreshIntervalMs = init.refreshIntervalMs ?? KAD_DEFAULTS.refreshIntervalMs
    this.providerTtlMs = init.providerTtlMs ?? KAD_DEFAULTS.providerTtlMs
    this.republishIntervalMs = init.republishIntervalMs ?? this.providerTtlMs / 2
    this.maxPendingChecks = init.maxPendingChecks ?? 16
    this.maxProvidedKeys = init.maxProvidedKeys ?? 1_024
    this.verifyIds = init.verifyIds ?? true
    this.maintenancePaths = init.maintenancePaths ?? 1
    this.table = new RoutingTable(this.id, {
      k: this.k,
      replacementCacheSize: init.replacementCacheSize ?? KAD_DEFAULTS.replacementCacheSize,
      maxFailures: init.maxFailures ?? KAD_DEFAULTS.maxFailures,
      maxPerGroupPerBucket: init.maxPerGroupPerBucket ?? KAD_DEFAULTS.maxPerGroupPerBucket,
      ...(init.groupOf === undefined ? {} : { groupOf: init.groupOf }),
      staleAfterMs: init.staleAfterMs ?? 60_000,
    })
    this.providers = new ProviderStore({
      maxProviders: init.maxProviders ?? KAD_DEFAULTS.maxProviders,
      maxProvidersPerKey: init.maxProvidersPerKey ?? KAD_DEFAULTS.maxProvidersPerKey,
      ttlMs: this.providerTtlMs,
    })
  }

  /** Answers a request from `from` (already authenticated by the transport) and learns `from`. */
  handle(from: Contact, request: KadRequest): KadResponse {
    this.learn(from)
    const notFrom = (c: Contact): boolean => idEquals(c.id, from.id)
    switch (request.type) {
      case 'ping':
        return { type: 'pong' }
      case 'find_node':
        assertKadId(request.target, 'target')
        return { type: 'nodes', closer: this.table.closest(request.target, this.k, notFrom) }
      case 'get_providers':
        assertKadId(request.key, 'key')
        return { type: 'providers', providers: this.providers.get(request.key, this.clock.now()), closer: this.table.closest(request.key, this.k, notFrom) }
      case 'add_provider': {
        const r = request.record
        if (!isKadId(r.key)) throw new InvalidProviderRecordError('expected a 32-byte provider key')
        if (!idEquals(r.provider.id, from.id)) throw new InvalidProviderRecordError('expected the sender as provider, got another node')
        this.providers.put(r, this.clock.now())
        return { type: 'ok' }
      }
    }
  }

  /** A contact was seen alive (it answered or sent a request): offers it to the routing table. */
  learn(contact: Contact): void {
    if (this.verifyIds && !contactIdMatchesDid(contact)) return
    const r = this.table.add(contact, this.clock.now(), this.pendingChecks < this.maxPendingChecks)
    if (r.check === undefined) return
    const head = r.check
    this.pendingChecks++
    this.request(head, { type: 'ping' }).then(
      () => this.table.markSeen(head.id, this.clock.now()),
      () => this.table.evict(head.id),
    ).finally(() => { this.pendingChecks-- })
  }

  /** Adds seed contacts, looks up the own id, then refreshes every bucket. */
  async bootstrap(seeds: readonly Contact[], options: { signal?: AbortSignal; paths?: number } = {}): Promise<void> {
    const now = this.clock.now()
    for (const s of seeds) if (!this.verifyIds || contactIdMatchesDid(s)) this.table.add(s, now, false)
    const paths = options.paths ?? this.maintenancePaths
    await this.lookup(this.id, { ...options, paths })
    await this.refresh({ ...options, paths, force: true })
  }

  /** Lookups of a random id in each bucket not refreshed for `refreshIntervalMs` (every bucket with `force`). */
  async refresh(options: { signal?: AbortSignal; paths?: number; force?: boolean } = {}): Promise<number> {
    const due = this.table.bucketsToRefresh(this.clock.now(), options.force === true ? 0 : this.refreshIntervalMs)
    const paths = options.paths ?? this.maintenancePaths
    const runs = due.map((cpl) => this.lookup(randomIdInBucket(this.id, cpl, this.random), { ...options, paths }).catch((err: unknown) => {
      if (err instanceof AbortError) throw err
    }))
    await Promise.all(runs)
    return due.length
  }

  /** An iterative lookup of `target` over `paths` disjoint paths. */
  async lookup(target: KadId, options: LookupOptions = {}): Promise<KadLookupResult> {
    assertKadId(target, 'target')
    const seeds = this.table.closest(target, this.k)
    if (seeds.length === 0) throw new KadNoContactsError('expected contacts in the routing table, got none (bootstrap first)')
    const lookup = new Lookup({ target, seeds, k: this.k, alpha: this.alpha, paths: options.paths ?? this.disjointPaths, self: this.id })
    let found: Contact | undefined
    const result = await runLookup(lookup, {
      rpc: this.rpc,
      clock: this.clock,
      request: { type: 'find_node', target },
      timeoutMs: this.timeoutMs,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(this.verifyIds ? { accept: contactIdMatchesDid } : {}),
      onResponse: (from, res) => {
        this.learn(from)
        if (found === undefined && res.type === 'nodes') found = res.closer.find((c) => idEquals(c.id, target) && (!this.verifyIds || contactIdMatchesDid(c)))
        return options.stopOnTarget === true && found !== undefined
      },
      onFailure: (to) => { this.table.recordFailure(to.id) },
    })
    this.table.markRefreshed(this.table.bucketIndexOf(target), this.clock.now())
    const best = found ?? result.closest[0]
    const hops = best === undefined ? -1 : lookup.depthOf(best.id) ?? 0
    return { ...result, ...(found === undefined ? {} : { found }), hops }
  }

  /** Finds a node by id: its contact from the table, else a lookup that stops when an answer names it. */
  async findNode(id: KadId, options: Omit<LookupOptions, 'stopOnTarget'> = {}): Promise<KadLookupResult> {
    const known = this.table.get(id)
    if (known !== undefined) return { target: id, closest: [known.contact], depthOf: new Map([[idKey(id), 0]]), queried: 0, answered: 0, failed: 0, paths: 0, stoppedEarly: true, found: known.contact, hops: 0 }
    return this.lookup(id, { ...options, stopOnTarget: true })
  }

  /** Providers of `key`: local ones, then a get_providers lookup until `count` are found. */
  async findProviders(key: KadId, options: { signal?: AbortSignal; paths?: number; count?: number } = {}): Promise<FindProvidersResult> {
    assertKadId(key, 'key')
    const count = options.count ?? this.k
    const now = this.clock.now()
    const found = new Map<string, ProviderRecord>()
    for (const r of this.providers.get(key, now, count)) found.set(idKey(r.provider.id), r)
    if (found.size >= count) return { providers: [...found.values()], hops: 0, queried: 0 }
    const seeds = this.table.closest(key, this.k)
    if (seeds.length === 0) throw new KadNoContactsError('expected contacts in the routing table, got none (bootstrap first)')
    const lookup = new Lookup({ target: key, seeds, k: this.k, alpha: this.alpha, paths: options.paths ?? this.disjointPaths, self: this.id })
    let hops = found.size > 0 ? 0 : -1
    const result = await runLookup(lookup, {
      rpc: this.rpc,
      clock: this.clock,
      request: { type: 'get_providers', key },
      timeoutMs: this.timeoutMs,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(this.verifyIds ? { accept: contactIdMatchesDid } : {}),
      onResponse: (from, res, q) => {
        this.learn(from)
        if (res.type !== 'providers') return false
        const t = this.clock.now()
        for (const r of res.providers.slice(0, count)) {
          if (found.size >= count) break
          if (!isKadId(r.key) || !idEquals(r.key, key) || r.expiresAt <= t) continue
          if (this.verifyIds && !contactIdMatchesDid(r.provider)) continue
          if (!found.has(idKey(r.provider.id))) {
            found.set(idKey(r.provider.id), r)
            if (hops < 0) hops = q.depth + 1
          }
        }
        return found.size >= count
      },
      onFailure: (to) => { this.table.recordFailure(to.id) },
    })
    return { providers: [...found.values()], hops, queried: result.queried }
  }

  /**
   * Announces that this node provides `key`: stores it locally, looks up the k closest nodes to
   * the key and sends each an add_provider. Returns how many accepted. The key is republished by
   * `republish()` / `maintain()`.
   */
  async provide(key: KadId, options: { signal?: AbortSignal; paths?: number; signed?: Uint8Array } = {}): Promise<number> {
    assertKadId(key, 'key')
    const now = this.clock.now()
    const record: ProviderRecord = { key, provider: this.self, expiresAt: now + this.providerTtlMs, ...(options.signed === undefined ? {} : { signed: options.signed }) }
    this.providers.put(record, now)
    const k = idKey(key)
    if (!this.provided.has(k) && this.provided.size >= this.maxProvidedKeys) {
      const oldest = this.provided.keys().next().value
      if (oldest !== undefined) this.provided.delete(oldest)
    }
    this.provided.set(k, { key, lastPublished: now })
    const res = await this.lookup(key, options)
    const acks = await Promise.allSettled(res.closest.map((c) => this.request(c, { type: 'add_provider', record }, options.signal)))
    return acks.filter((a) => a.status === 'fulfilled' && a.value.type === 'ok').length
  }

  /** Re-provides keys last published `republishIntervalMs` ago or more. Returns how many. */
  async republish(options: { signal?: AbortSignal } = {}): Promise<number> {
    const now = this.clock.now()
    const due = [...this.provided.values()].filter((p) => now - p.lastPublished >= this.republishIntervalMs)
    await Promise.allSettled(due.map((p) => this.provide(p.key, options)))
    return due.length
  }

  /** Periodic work: drops expired provider records, refreshes stale buckets, republishes. */
  async maintain(options: { signal?: AbortSignal } = {}): Promise<void> {
    this.providers.prune(this.clock.now())
    await this.refresh(options)
    await this.republish(options)
  }

  /** Sizes of the table, the replacement cache and the provider store, and pending liveness checks. */
  stats(): KadNodeStats {
    return { contacts: this.table.size, cached: this.table.cachedCount, providers: this.providers.size, providedKeys: this.provided.size, pendingChecks: this.pendingChecks }
  }

  /** One request with the node's timeout (on the injected clock) and an optional outer signal. */
  request(to: Contact, request: KadRequest, signal?: AbortSignal): Promise<KadResponse> {
    return new Promise<KadResponse>((resolve, reject) => {
      const ac = new AbortController()
      const onAbort = (): void => { done(); ac.abort(signal?.reason); reject(new AbortError(undefined, { cause: signal?.reason })) }
      let settled = false
      const done = (): boolean => {
        if (settled) return false
        settled = true
        this.clock.clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        return true
      }
      const timer = this.clock.setTimeout(() => {
        if (!done()) return
        const err = new KadRequestTimeoutError(`expected an answer within ${this.timeoutMs} ms, got none`)
        ac.abort(err)
        reject(err)
      }, this.timeoutMs)
      if (signal?.aborted === true) { onAbort(); return }
      signal?.addEventListener('abort', onAbort, { once: true })
      let p: Promise<KadResponse>
      try { p = this.rpc(to, request, { signal: ac.signal }) } catch (err) { p = Promise.reject(err) }
      p.then((r) => { if (done()) resolve(r) }, (err: unknown) => { if (done()) reject(err) })
    })
  }
}
