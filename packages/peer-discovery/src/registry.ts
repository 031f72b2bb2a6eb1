/**
 * PeerRegistry: the sans-I/O core of peer discovery. It merges signed node records from any
 * source, verifies each one, de-duplicates by peer id (DID), keeps the newest record, ranks peers
 * by trust, measured latency and capabilities, tracks liveness, and stays bounded.
 *
 * No sockets, no timers: time comes from the injected clock and `prune()` is called by the owner.
 * This module holds the table, its indexes, merging, expiry and queries; the public types are in
 * registry-types.ts, scoring in registry-rank.ts, per-source budgets and reject memory in
 * registry-admission.ts.
 */
import { DiscoveryMethod, equalBytes, systemClock, throwIfAborted } from '@kos-mesh/interface'
import type { AbortOptions, Clock, DiscoveredPeer } from '@kos-mesh/interface'
import { InvalidParametersError } from '@kos-mesh/interface'
import { digestKey, errorReason, RejectMemory, SourceBudgets } from './registry-admission.js'
import { compareTie, PeerScorer, tieKey, toDiscoveredPeer } from './registry-rank.js'
import { DEFAULT_RANKING_WEIGHTS } from './registry-types.js'
import type { MergeOptions, MergeResult, PeerEntry, PeerRegistryInit, RankedPeer, RankQuery, RegistryStats, RejectReason, RemoveReason } from './registry-types.js'
import { CAPABILITY_FLAGS, hasCapabilities } from './validate.js'
import type { DiscoverySource, NodeRecord, PeerQuery, RecordPeek, RecordVerifier } from './types.js'

/** Key of record bytes: their last 32 bytes (in a KLP message, the end of its Ed25519 signature). */
function tailKey(bytes: Uint8Array): string {
  const start = Math.max(0, bytes.length - 32)
  let k = String(bytes.length) + ':'
  for (let i = start; i < bytes.length; i++) k += String.fromCharCode(bytes[i]!)
  return k
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
  readonly #scorer: PeerScorer
  readonly #budgets: SourceBudgets
  readonly #peers = new Map<string, PeerEntry>()
  /** Stored records by the tail of their bytes (the signature): exact repeats skip all work. */
  readonly #byTail = new Map<string, PeerEntry>()
  /** Rejected record bytes, so repeats are dropped without verifying. */
  readonly #rejects: RejectMemory
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

  constructor(init: PeerRegistryInit) {
    super()
    if (typeof init?.verifyRecord !== 'function') throw new InvalidParametersError(`verifyRecord: expected a function, got ${typeof init?.verifyRecord}`)
    this.#verify = init.verifyRecord
    this.#peek = init.peekRecord
    this.#local = init.localPeerId
    this.#clock = init.clock ?? systemClock
    this.#maxPeers = Math.floor(positive('maxPeers', init.maxPeers, 1000))
    this.#staleAfter = positive('staleAfterMs', init.staleAfterMs, 5 * 60_000)
    this.#removeAfter = positive('removeAfterMs', init.removeAfterMs, 30 * 60_000)
    if (this.#removeAfter < this.#staleAfter) {
      throw new InvalidParametersError(`removeAfterMs: expected >= staleAfterMs (${this.#staleAfter}), got ${this.#removeAfter}`)
    }
    const weights = { ...DEFAULT_RANKING_WEIGHTS, ...init.weights }
    for (const [k, w] of Object.entries(weights)) {
      if (typeof w !== 'number' || !Number.isFinite(w) || w < 0) throw new InvalidParametersError(`weights.${k}: expected a number >= 0, got ${String(w)}`)
    }
    this.#scorer = new PeerScorer({
      weights,
      latencyRef: positive('latencyReferenceMs', init.latencyReferenceMs, 100),
      preferred: init.preferredCapabilities ?? CAPABILITY_FLAGS,
      maxSelfTrust: init.maxSelfAssertedTrust ?? 5,
      staleAfter: this.#staleAfter,
      trustScoreOf: init.trustScoreOf,
    })
    this.#budgets = new SourceBudgets(
      this.#clock,
      positive('sourceBurst', init.sourceBurst, 256),
      positive('sourceRatePerSecond', init.sourceRatePerSecond, 64),
      Math.floor(positive('maxTrackedSources', init.maxTrackedSources, 1024)),
    )
    this.#maxPerSource = Math.floor(positive('maxPeersPerSource', init.maxPeersPerSource, Math.max(64, Math.floor(this.#maxPeers / 4))))
    this.#rejects = new RejectMemory(Math.floor(positive('maxRememberedRejects', init.maxRememberedRejects, 1024)))
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
      const digest = this.#rejects.size === 0 ? '' : digestKey(bytes)
      const known = digest === '' ? undefined : this.#rejects.get(digest)
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
      if (!this.#budgets.take(options.source)) {
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
        if (reason !== 'expired' && reason !== 'future') this.#rejects.remember(digest === '' ? digestKey(bytes) : digest, reason)
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
      if (worst === undefined || this.#scorer.score(worst, now) >= this.#scorer.score(entry, now)) {
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
    return this.#scorer.trustOf(entry)
  }

  /**
   * Peers that have every required capability, best first (ties broken by a per-node hash), at most
   * `maxPeers`. Stale peers rank at half their score.
   */
  rank(query: RankQuery = {}): RankedPeer[] {
    const now = this.#clock.now()
    const weights = query.weights === undefined ? this.#scorer.weights : { ...this.#scorer.weights, ...query.weights }
    const required = query.requiredCapabilities ?? []
    const out: RankedPeer[] = []
    for (const e of this.#peers.values()) {
      if (e.record.expiresAt <= now) continue
      if (query.exclude?.has(e.peerId) === true) continue
      if (!hasCapabilities(e.record.node.capabilities, required)) continue
      out.push({ entry: e, score: this.#scorer.score(e, now, weights, query.preferredRoles), trustScore: this.trustOf(e) })
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

  #worst(): PeerEntry | undefined {
    const now = this.#clock.now()
    let worst: PeerEntry | undefined
    let worstScore = Infinity
    for (const e of this.#peers.values()) {
      const s = this.#scorer.score(e, now)
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
}
