/**
 * PeerRegistry: the sans-I/O core of peer discovery. It merges signed node records from any
 * source, verifies each one, de-duplicates by peer id (DID), keeps the newest record, ranks peers
 * by trust, measured latency and capabilities, tracks liveness, and stays bounded.
 *
 * No sockets, no timers: time comes from the injected clock and `prune()` is called by the owner.
 */
import { createHash } from 'node:crypto'
import { DiscoveryMethod, equalBytes, isKosMeshError, systemClock, throwIfAborted } from '@kos-mesh/interface'
import type { AbortOptions, Clock, DiscoveredPeer } from '@kos-mesh/interface'
import { InvalidParametersError, InvalidSignatureError, LimitExceededError, MessageExpiredError, UnknownKeyError } from '@kos-mesh/interface'
import { CAPABILITY_FLAGS, hasCapabilities } from './validate.js'
import type { DiscoverySource, NodeRecord, PeerQuery, RecordPeek, RecordVerifier } from './types.js'

/** Weights of the rank score's parts (they need not sum to 1). */
export interface RankingWeights {
  /** Weight of the trust score (0..10 mapped to 0..1). Default 0.5. */
  trust: number
  /** Weight of measured latency (`ref / (ref + latency)`, 0.5 when never measured). Default 0.3. */
  latency: number
  /** Weight of capability richness (share of `preferredCapabilities` the peer has). Default 0.2. */
  capabilities: number
  /**
   * Weight of the node role: 1 when the peer's `node_type` is one of the query's `preferredRoles`
   * (e.g. `ValidatorNode`, `ArchiveNode`), else 0. Default 0 (roles do not rank unless asked).
   */
  role: number
}

/** The default ranking weights: trust 0.5, latency 0.3, capabilities 0.2, role 0. */
export const DEFAULT_RANKING_WEIGHTS: Readonly<RankingWeights> = Object.freeze({ trust: 0.5, latency: 0.3, capabilities: 0.2, role: 0 })

/** Options of the registry. */
export interface PeerRegistryInit {
  /** Decodes and verifies record bytes (see `createRecordVerifier`). Required. */
  verifyRecord: RecordVerifier
  /** Optional cheap peek used to skip verifying records that cannot replace the stored one. */
  peekRecord?: RecordPeek
  /** The local node's DID: its own record is never stored. */
  localPeerId?: string
  /** Time source (only `now()` is used: the registry sets no timers). Default `systemClock` (@kos-mesh/interface). */
  clock?: Pick<Clock, 'now'>
  /** Max peers kept; at the bound the worst-ranked peer is evicted for a better one. Default 1000. */
  maxPeers?: number
  /** A peer not heard of (no newer record, no `touch`) for this long is marked stale. Default 5 min. */
  staleAfterMs?: number
  /** A peer not heard of for this long is removed. Default 30 min. */
  removeAfterMs?: number
  /** Ranking weights. Default `DEFAULT_RANKING_WEIGHTS`. */
  weights?: Partial<RankingWeights>
  /** Latency (ms) that scores 0.5. Default 100. */
  latencyReferenceMs?: number
  /** Capabilities that count for the capability score. Default: every boolean capability. */
  preferredCapabilities?: readonly string[]
  /**
   * Trust a peer gets from its own (self-asserted) record is capped at this (0..10). A trust engine
   * sets real scores through `setTrust`. Default 5.
   */
  maxSelfAssertedTrust?: number
  /**
   * The trust engine's score of a DID (0..10), e.g. `(did) => engine.peerScore(did)` of
   * @kos-mesh/trust: it ranks before anything else (`setTrust`, then the capped self-asserted one).
   */
  trustScoreOf?: (did: string) => number | undefined
  /** Per-source budget of records considered: burst size. Default 256. */
  sourceBurst?: number
  /** Per-source budget refill, records per second. Default 64. */
  sourceRatePerSecond?: number
  /**
   * Max peers in the table introduced by one source (anti-Sybil: one peer cannot fill the table
   * with identities it made up). Default `max(64, floor(maxPeers / 4))`.
   */
  maxPeersPerSource?: number
  /** Max sources whose budgets are tracked (least recently used are forgotten). Default 1024. */
  maxTrackedSources?: number
  /** Rejected record byte strings remembered, so repeats are dropped without verifying. Default 1024. */
  maxRememberedRejects?: number
}

/** A peer in the registry: its verified record and what this node measured of it. */
export interface PeerEntry {
  readonly peerId: string
  /**
   * Tie-breaker among equal scores: a hash of (local id, peer id), so different nodes prefer
   * different peers among equals instead of all dialling the same ones.
   */
  readonly tieKey: number
  record: NodeRecord
  discoveryMethod: DiscoveryMethod
  /** Local time the peer was first added. */
  discoveredAt: number
  /** Local time of the last sign of life (newer record or `touch`). */
  lastSeen: number
  stale: boolean
  /** Measured round-trip latency (ms, smoothed), if any. */
  latencyMs?: number
  /** Trust score from a trust engine (0..10), if any; overrides the self-asserted one. */
  trustOverride?: number
  /** Who introduced this peer (counts against that source's `maxPeersPerSource`). */
  readonly source: string
}

export interface RankQuery extends PeerQuery {
  /** Peer ids left out (e.g. the requester, connected peers). */
  exclude?: ReadonlySet<string>
  /** Weights for this call only (missing ones keep the registry's). */
  weights?: Partial<RankingWeights>
  /** Node roles (`NodeType` values) that score for the `role` weight. Default none. */
  preferredRoles?: readonly string[]
}

/** A peer with its rank score and its trust score. */
export interface RankedPeer {
  entry: PeerEntry
  score: number
  trustScore: number
}

/** Why a record was not merged. */
export type RejectReason =
  | 'invalid'
  | 'limit'
  | 'forged'
  | 'signer_mismatch'
  | 'expired'
  | 'future'
  | 'rate_limited'
  | 'table_full'
  | 'source_full'
  | 'self'

/** What merging a batch of records did. */
export interface MergeResult {
  added: number
  updated: number
  /** Records that were valid but not newer than the stored one (or peeked as such). */
  unchanged: number
  rejected: number
  /** Rejections by reason. */
  reasons: Partial<Record<RejectReason, number>>
}

/** Options of merging records into the registry: who sent them, and how they were discovered. */
export interface MergeOptions extends AbortOptions {
  /** Who sent the records (a peer DID or a source name): budgets are per source. */
  source: string
  method: DiscoveryMethod
}

/** Why a peer left the registry. */
export type RemoveReason = 'expired' | 'timeout' | 'evicted' | 'manual'

/** Events of the registry: a peer added, updated, gone stale, removed. */
export interface PeerRegistryEvents {
  'peer:add': CustomEvent<PeerEntry>
  'peer:update': CustomEvent<PeerEntry>
  'peer:stale': CustomEvent<PeerEntry>
  'peer:remove': CustomEvent<{ entry: PeerEntry; reason: RemoveReason }>
}

/** Counters of the registry. */
export interface RegistryStats {
  peers: number
  added: number
  updated: number
  unchanged: number
  removed: number
  rejected: Record<RejectReason, number>
}

interface Bucket {
  tokens: number
  at: number
}

/** Key of record bytes: their last 32 bytes (in a KLP message, the end of its Ed25519 signature). */
function tailKey(bytes: Uint8Array): string {
  const start = Math.max(0, bytes.length - 32)
  let k = String(bytes.length) + ':'
  for (let i = start; i < bytes.length; i++) k += String.fromCharCode(bytes[i]!)
  return k
}

function digestKey(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('base64')
}


/** FNV-1a (32-bit) of `local` + NUL + `peer`. */
function tieKey(local: string, peer: string): number {
  let h = 0x811c9dc5
  const s = `${local}\u0000${peer}`
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

/** Order of equal-score peers: by tie key, then peer id. */
function compareTie(a: PeerEntry, b: PeerEntry): number {
  return a.tieKey - b.tieKey || (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)
}

function errorReason(err: unknown): RejectReason {
  if (!isKosMeshError(err)) return 'invalid'
  if (err.code === 'ERR_RECORD_SIGNER_MISMATCH') return 'signer_mismatch'
  if (err.code === 'ERR_RECORD_FROM_FUTURE') return 'future'
  if (err instanceof MessageExpiredError || err.code === 'ERR_RECORD_EXPIRED') return 'expired'
  if (err instanceof InvalidSignatureError || err instanceof UnknownKeyError) return 'forged'
  if (err instanceof LimitExceededError) return 'limit'
  return 'invalid'
}

function positive(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new InvalidParametersError(`${name}: expected a positive number, got ${String(v)}`)
  }
  return v
}

/**
 * The peers this node knows, from verified signed records: bounded (the worst-ranked are evicted), rate
 * limited and capped per source, ranked by trust, latency, capabilities and role.
 */
export class PeerRegistry extends EventTarget {
  readonly #verify: RecordVerifier
  readonly #peek?: RecordPeek
  readonly #local?: string
  readonly #clock: Pick<Clock, 'now'>
  readonly #maxPeers: number
  readonly #staleAfter: number
  readonly #removeAfter: number
  readonly #weights: RankingWeights
  readonly #latencyRef: number
  readonly #preferred: readonly string[]
  readonly #maxSelfTrust: number
  readonly #burst: number
  readonly #rate: number
  readonly #maxSources: number
  readonly #peers = new Map<string, PeerEntry>()
  readonly #buckets = new Map<string, Bucket>()
  /** Stored records by the tail of their bytes (the signature): exact repeats skip all work. */
  readonly #byTail = new Map<string, PeerEntry>()
  /** SHA-256 of recently rejected record bytes (LRU): a repeated bad record is not verified again. */
  readonly #rejectedTails = new Map<string, RejectReason>()
  readonly #maxRejectedTails: number
  /** Peers in the table per introducing source. */
  readonly #introduced = new Map<string, number>()
  readonly #maxPerSource: number
  readonly #stats: RegistryStats = {
    peers: 0,
    added: 0,
    updated: 0,
    unchanged: 0,
    removed: 0,
    rejected: { invalid: 0, limit: 0, forged: 0, signer_mismatch: 0, expired: 0, future: 0, rate_limited: 0, table_full: 0, source_full: 0, self: 0 },
  }

  readonly #trustScoreOf: ((did: string) => number | undefined) | undefined

  /** The engine's score, clamped to 0..10; undefined when there is no engine, it knows nothing, or it failed. */
  #engineScore(did: string): number | undefined {
    if (this.#trustScoreOf === undefined) return undefined
    try {
      const s = this.#trustScoreOf(did)
      return typeof s === 'number' && Number.isFinite(s) ? Math.min(10, Math.max(0, s)) : undefined
    } catch {
      return undefined
    }
  }

  constructor(init: PeerRegistryInit) {
    super()
    if (typeof init?.verifyRecord !== 'function') throw new InvalidParametersError(`verifyRecord: expected a function, got ${typeof init?.verifyRecord}`)
    this.#verify = init.verifyRecord
    this.#peek = init.peekRecord
    this.#local = init.localPeerId
    this.#trustScoreOf = init.trustScoreOf
    this.#clock = init.clock ?? systemClock
    this.#maxPeers = Math.floor(positive('maxPeers', init.maxPeers, 1000))
    this.#staleAfter = positive('staleAfterMs', init.staleAfterMs, 5 * 60_000)
    this.#removeAfter = positive('removeAfterMs', init.removeAfterMs, 30 * 60_000)
    if (this.#removeAfter < this.#staleAfter) {
      throw new InvalidParametersError(`removeAfterMs: expected >= staleAfterMs (${this.#staleAfter}), got ${this.#removeAfter}`)
    }
    this.#weights = { ...DEFAULT_RANKING_WEIGHTS, ...init.weights }
    for (const [k, w] of Object.entries(this.#weights)) {
      if (typeof w !== 'number' || !Number.isFinite(w) || w < 0) throw new InvalidParametersError(`weights.${k}: expected a number >= 0, got ${String(w)}`)
    }
    this.#latencyRef = positive('latencyReferenceMs', init.latencyReferenceMs, 100)
    this.#preferred = init.preferredCapabilities ?? CAPABILITY_FLAGS
    this.#maxSelfTrust = init.maxSelfAssertedTrust ?? 5
    this.#burst = positive('sourceBurst', init.sourceBurst, 256)
    this.#rate = positive('sourceRatePerSecond', init.sourceRatePerSecond, 64)
    this.#maxSources = Math.floor(positive('maxTrackedSources', init.maxTrackedSources, 1024))
    this.#maxPerSource = Math.floor(positive('maxPeersPerSource', init.maxPeersPerSource, Math.max(64, Math.floor(this.#maxPeers / 4))))
    this.#maxRejectedTails = Math.floor(positive('maxRememberedRejects', init.maxRememberedRejects, 1024))
  }

  /** Peers held. */
  get size(): number {
    return this.#peers.size
  }

  /** Most peers the registry holds. */
  get maxPeers(): number {
    return this.#maxPeers
  }

  /** Counters (a copy). */
  stats(): RegistryStats {
    return { ...this.#stats, peers: this.#peers.size, rejected: { ...this.#stats.rejected } }
  }

  /** The entry of `peerId`, if any. */
  get(peerId: string): PeerEntry | undefined {
    return this.#peers.get(peerId)
  }

  /** Whether `peerId` is in the registry. */
  has(peerId: string): boolean {
    return this.#peers.has(peerId)
  }

  /** Every peer entry. */
  entries(): IterableIterator<PeerEntry> {
    return this.#peers.values()
  }

  /**
   * Verifies and merges encoded records. Never throws for bad records: each is dropped and
   * counted by reason. Records over the source's budget are dropped before verification.
   */
  async merge(records: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, options: MergeOptions): Promise<MergeResult> {
    const result: MergeResult = { added: 0, updated: 0, unchanged: 0, rejected: 0, reasons: {} }
    const reject = (reason: RejectReason, counted = false): void => {
      result.rejected++
      result.reasons[reason] = (result.reasons[reason] ?? 0) + 1
      if (!counted) this.#stats.rejected[reason]++
    }
    for await (const bytes of records) {
      throwIfAborted(options.signal)
      if (!(bytes instanceof Uint8Array)) {
        reject('invalid')
        continue
      }
      const tail = tailKey(bytes)
      const same = this.#byTail.get(tail)
      if (same !== undefined && equalBytes(same.record.bytes, bytes)) {
        result.unchanged++
        this.#stats.unchanged++
        continue
      }
      // Keyed by a hash of the whole bytes, so a look-alike cannot get a genuine record pre-rejected.
      const digest = this.#rejectedTails.size === 0 ? '' : digestKey(bytes)
      const known = digest === '' ? undefined : this.#rejectedTails.get(digest)
      if (known !== undefined) {
        reject(known)
        continue
      }
      const peeked = this.#peek?.(bytes)
      if (peeked !== undefined) {
        if (peeked.peerId === this.#local) {
          reject('self')
          continue
        }
        const have = this.#peers.get(peeked.peerId)
        if (have !== undefined && have.record.timestamp >= peeked.timestamp) {
          result.unchanged++
          this.#stats.unchanged++
          continue
        }
        if (have === undefined && (this.#introduced.get(options.source) ?? 0) >= this.#maxPerSource) {
          reject('source_full')
          continue
        }
      }
      if (!this.#take(options.source)) {
        reject('rate_limited')
        continue
      }
      let record: NodeRecord
      try {
        record = await this.#verify(bytes, { signal: options.signal })
      } catch (err) {
        throwIfAborted(options.signal)
        const reason = errorReason(err)
        // Remember bytes that can never become valid (not time-dependent rejections).
        if (reason !== 'expired' && reason !== 'future') this.#rememberRejected(digest === '' ? digestKey(bytes) : digest, reason)
        reject(reason)
        continue
      }
      const outcome = this.upsert(record, options)
      if (outcome === 'added') result.added++
      else if (outcome === 'updated') result.updated++
      else if (outcome === 'unchanged') result.unchanged++
      else reject(outcome, true) // upsert counted it
    }
    return result
  }

  /** Merges everything one discovery source yields for `query`. */
  async mergeFrom(source: DiscoverySource, query: PeerQuery = {}, options: AbortOptions = {}): Promise<MergeResult> {
    const records = await source.findPeers(query, options)
    return this.merge(records, { source: source.name, method: source.method, signal: options.signal })
  }

  /**
   * Inserts an ALREADY VERIFIED record (from a RecordVerifier); `merge` is the entry point for bytes. Returns what happened; 'table_full' when the table is at
   * its bound and the record ranks no better than the worst stored peer.
   */
  upsert(record: NodeRecord, options: { source: string; method: DiscoveryMethod }): 'added' | 'updated' | 'unchanged' | 'table_full' | 'source_full' | 'self' | 'expired' {
    if (record.peerId === this.#local) {
      this.#stats.rejected.self++
      return 'self'
    }
    const now = this.#clock.now()
    if (record.expiresAt <= now) {
      this.#stats.rejected.expired++
      return 'expired'
    }
    const have = this.#peers.get(record.peerId)
    if (have !== undefined) {
      if (have.record.timestamp >= record.timestamp) {
        this.#stats.unchanged++
        return 'unchanged'
      }
      this.#byTail.delete(tailKey(have.record.bytes))
      have.record = record
      this.#byTail.set(tailKey(record.bytes), have)
      have.lastSeen = Math.max(have.lastSeen, now)
      have.stale = false
      this.#stats.updated++
      this.dispatchEvent(new CustomEvent('peer:update', { detail: have }))
      return 'updated'
    }
    const entry: PeerEntry = {
      peerId: record.peerId,
      tieKey: tieKey(this.#local ?? '', record.peerId),
      record,
      discoveryMethod: options.method,
      discoveredAt: now,
      lastSeen: now,
      stale: false,
      source: options.source,
    }
    if ((this.#introduced.get(options.source) ?? 0) >= this.#maxPerSource) {
      this.#stats.rejected.source_full++
      return 'source_full'
    }
    if (this.#peers.size >= this.#maxPeers) {
      const worst = this.#worst()
      if (worst === undefined || this.#score(worst, now) >= this.#score(entry, now)) {
        this.#stats.rejected.table_full++
        return 'table_full'
      }
      this.#remove(worst, 'evicted')
    }
    this.#peers.set(entry.peerId, entry)
    this.#byTail.set(tailKey(record.bytes), entry)
    this.#introduced.set(entry.source, (this.#introduced.get(entry.source) ?? 0) + 1)
    this.#stats.added++
    this.dispatchEvent(new CustomEvent('peer:add', { detail: entry }))
    return 'added'
  }

  /** Records a sign of life from a peer (a message or a connection). */
  touch(peerId: string): void {
    const e = this.#peers.get(peerId)
    if (e === undefined) return
    e.lastSeen = Math.max(e.lastSeen, this.#clock.now())
    e.stale = false
  }

  /** Records a measured round-trip latency (ms), smoothed (EWMA, alpha 0.3) with earlier samples. */
  setLatency(peerId: string, latencyMs: number): void {
    if (!Number.isFinite(latencyMs) || latencyMs < 0) throw new InvalidParametersError(`latencyMs: expected a number >= 0, got ${latencyMs}`)
    const e = this.#peers.get(peerId)
    if (e !== undefined) e.latencyMs = e.latencyMs === undefined ? latencyMs : 0.7 * e.latencyMs + 0.3 * latencyMs
  }

  /** Sets a trust score (0..10) from a trust engine; `undefined` clears it. */
  setTrust(peerId: string, score: number | undefined): void {
    if (score !== undefined && (!Number.isFinite(score) || score < 0 || score > 10)) {
      throw new InvalidParametersError(`score: expected a number in [0, 10], got ${score}`)
    }
    const e = this.#peers.get(peerId)
    if (e !== undefined) e.trustOverride = score
  }

  /** Removes `peerId` (event `peer:remove`, reason `manual`); returns whether it was there. */
  remove(peerId: string): boolean {
    const e = this.#peers.get(peerId)
    if (e === undefined) return false
    this.#remove(e, 'manual')
    return true
  }

  /**
   * Applies time: removes expired records and peers silent for `removeAfterMs`, marks peers
   * silent for `staleAfterMs` as stale. Returns how many were marked and removed.
   */
  prune(): { stale: number; removed: number } {
    const now = this.#clock.now()
    let stale = 0
    let removed = 0
    for (const e of [...this.#peers.values()]) {
      if (e.record.expiresAt <= now) {
        this.#remove(e, 'expired')
        removed++
      } else if (now - e.lastSeen >= this.#removeAfter) {
        this.#remove(e, 'timeout')
        removed++
      } else if (!e.stale && now - e.lastSeen >= this.#staleAfter) {
        e.stale = true
        stale++
        this.dispatchEvent(new CustomEvent('peer:stale', { detail: e }))
      }
    }
    return { stale, removed }
  }

  /** The trust score used for ranking (0..10). */
  trustOf(entry: PeerEntry): number {
    const engine = this.#engineScore(entry.record.peerId)
    if (engine !== undefined) return engine
    return entry.trustOverride ?? Math.min(entry.record.node.trust_profile.trust_score, this.#maxSelfTrust)
  }

  /**
   * Peers that have every required capability, best first (ties broken by a per-node hash), at most
   * `maxPeers`. Stale peers rank at half their score.
   */
  rank(query: RankQuery = {}): RankedPeer[] {
    const now = this.#clock.now()
    const weights = query.weights === undefined ? this.#weights : { ...this.#weights, ...query.weights }
    const required = query.requiredCapabilities ?? []
    const out: RankedPeer[] = []
    for (const e of this.#peers.values()) {
      if (e.record.expiresAt <= now) continue
      if (query.exclude?.has(e.peerId) === true) continue
      if (!hasCapabilities(e.record.node.capabilities, required)) continue
      out.push({ entry: e, score: this.#score(e, now, weights, query.preferredRoles), trustScore: this.trustOf(e) })
    }
    out.sort((a, b) => b.score - a.score || compareTie(a.entry, b.entry))
    const max = query.maxPeers
    return max === undefined ? out : out.slice(0, Math.max(0, max))
  }

  /** `rank()` as the spec's DiscoveredPeer records. */
  discoveredPeers(query: RankQuery = {}): DiscoveredPeer[] {
    return this.rank(query).map((r) => toDiscoveredPeer(r.entry, r.trustScore))
  }

  /** Original signed bytes of the best peers matching `query` (for a `peers` response). */
  recordBytes(query: RankQuery = {}): Uint8Array[] {
    return this.rank(query).map((r) => r.entry.record.bytes)
  }

  /**
   * The last `keyBytes` bytes of up to `max` stored records, concatenated (best-ranked first): the
   * `known` list of a `get_peers`, so the answer skips what this node already holds.
   */
  knownKeys(max: number, keyBytes = 8): Uint8Array {
    const ranked = this.rank({ maxPeers: max })
    const out = new Uint8Array(ranked.length * keyBytes)
    let o = 0
    for (const r of ranked) {
      const b = r.entry.record.bytes
      if (b.length < keyBytes) continue
      out.set(b.subarray(b.length - keyBytes), o)
      o += keyBytes
    }
    return o === out.length ? out : out.subarray(0, o)
  }

  #score(e: PeerEntry, now: number, w: RankingWeights = this.#weights, roles?: readonly string[]): number {
    const trust = this.trustOf(e) / 10
    const latency = e.latencyMs === undefined ? 0.5 : this.#latencyRef / (this.#latencyRef + e.latencyMs)
    let caps = 1
    if (this.#preferred.length > 0) {
      let have = 0
      const c = e.record.node.capabilities as unknown as Record<string, unknown>
      for (const name of this.#preferred) if (c[name] === true) have++
      caps = have / this.#preferred.length
    }
    const role = roles !== undefined && roles.includes(e.record.node.node_type) ? 1 : 0
    const score = w.trust * trust + w.latency * latency + w.capabilities * caps + w.role * role
    const stale = e.stale || now - e.lastSeen >= this.#staleAfter
    return stale ? score / 2 : score
  }

  #worst(): PeerEntry | undefined {
    const now = this.#clock.now()
    let worst: PeerEntry | undefined
    let worstScore = Infinity
    for (const e of this.#peers.values()) {
      const s = this.#score(e, now)
      if (s < worstScore || (s === worstScore && worst !== undefined && compareTie(e, worst) > 0)) {
        worst = e
        worstScore = s
      }
    }
    return worst
  }

  #remove(e: PeerEntry, reason: RemoveReason): void {
    this.#peers.delete(e.peerId)
    this.#byTail.delete(tailKey(e.record.bytes))
    const n = (this.#introduced.get(e.source) ?? 1) - 1
    if (n <= 0) this.#introduced.delete(e.source)
    else this.#introduced.set(e.source, n)
    this.#stats.removed++
    this.dispatchEvent(new CustomEvent('peer:remove', { detail: { entry: e, reason } }))
  }

  #rememberRejected(digest: string, reason: RejectReason): void {
    if (this.#rejectedTails.size >= this.#maxRejectedTails) {
      const first = this.#rejectedTails.keys().next()
      if (first.done !== true) this.#rejectedTails.delete(first.value)
    }
    this.#rejectedTails.set(digest, reason)
  }

  /** Token bucket per source; LRU-bounded map. */
  #take(source: string): boolean {
    const now = this.#clock.now()
    let b = this.#buckets.get(source)
    if (b === undefined) {
      b = { tokens: this.#burst, at: now }
      if (this.#buckets.size >= this.#maxSources) {
        const oldest = this.#buckets.keys().next()
        if (oldest.done !== true) this.#buckets.delete(oldest.value)
      }
    } else {
      this.#buckets.delete(source)
      b.tokens = Math.min(this.#burst, b.tokens + (Math.max(0, now - b.at) / 1000) * this.#rate)
      b.at = now
    }
    this.#buckets.set(source, b)
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }
}

/** The spec's DiscoveredPeer of a registry entry, with the trust score given. */
export function toDiscoveredPeer(e: PeerEntry, trustScore: number): DiscoveredPeer {
  const node = e.record.node
  return {
    peer_id: e.peerId,
    addresses: node.network_info.addresses.map((a) => ({ ...a })),
    capabilities: { ...node.capabilities },
    trust_score: trustScore,
    discovery_method: e.discoveryMethod,
    discovery_timestamp: e.discoveredAt,
  }
}
