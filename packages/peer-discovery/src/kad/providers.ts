/**
 * The provider store: who offers which key (a service type or capability), bounded in total and
 * per key, each record expiring at its `expiresAt` (clamped to `ttlMs` from when it was stored).
 */
import type { KadId, ProviderRecord } from './types.js'
import { idKey } from './id.js'

/** Options of the provider store. */
export interface ProviderStoreInit {
  /** Records kept in all. Default 65,536. */
  maxProviders?: number
  /** Records kept per key. Default 64. */
  maxProvidersPerKey?: number
  /** Longest lifetime accepted. Default 24 hours. */
  ttlMs?: number
}

/** What storing a provider record did: added, updated, refused (`full`), or dropped as expired. */
export type PutStatus = 'added' | 'updated' | 'full' | 'expired'

/**
 * The provider records this node holds for others, bounded in all and per key; expired records are dropped.
 */
export class ProviderStore {
  private readonly max: number
  private readonly maxPerKey: number
  private readonly ttlMs: number
  private readonly byKey = new Map<string, Map<string, ProviderRecord>>()
  private count = 0

  constructor(init: ProviderStoreInit = {}) {
    this.max = init.maxProviders ?? 65_536
    this.maxPerKey = init.maxProvidersPerKey ?? 64
    this.ttlMs = init.ttlMs ?? 24 * 3_600_000
  }

  /** Records held. */
  get size(): number { return this.count }

  /** Number of keys with at least one record. */
  get keys(): number { return this.byKey.size }

  /** Stores (or renews) a record. Its expiry is clamped to `now + ttlMs`. */
  put(record: ProviderRecord, now: number): PutStatus {
    if (record.expiresAt <= now) return 'expired'
    const expiresAt = Math.min(record.expiresAt, now + this.ttlMs)
    const stored = expiresAt === record.expiresAt ? record : { ...record, expiresAt }
    const k = idKey(record.key)
    const pk = idKey(record.provider.id)
    let m = this.byKey.get(k)
    if (m?.has(pk) === true) {
      m.set(pk, stored)
      return 'updated'
    }
    if (m !== undefined && m.size >= this.maxPerKey) {
      this.pruneKey(k, m, now)
      if (m.size >= this.maxPerKey) return 'full'
    }
    if (this.count >= this.max) {
      this.prune(now)
      if (this.count >= this.max) return 'full'
    }
    if (m === undefined) {
      m = new Map()
      this.byKey.set(k, m)
    }
    m.set(pk, stored)
    this.count++
    return 'added'
  }

  /** Live records of `key`, at most `limit` (default: per-key bound), soonest-expiring last. */
  get(key: KadId, now: number, limit = this.maxPerKey): ProviderRecord[] {
    const k = idKey(key)
    const m = this.byKey.get(k)
    if (m === undefined) return []
    this.pruneKey(k, m, now)
    const out = [...m.values()].sort((a, b) => b.expiresAt - a.expiresAt)
    return out.length > limit ? out.slice(0, limit) : out
  }

  /** Drops expired records; returns how many. */
  prune(now: number): number {
    const before = this.count
    for (const [k, m] of this.byKey) this.pruneKey(k, m, now)
    return before - this.count
  }

  private pruneKey(k: string, m: Map<string, ProviderRecord>, now: number): void {
    for (const [pk, r] of m) {
      if (r.expiresAt <= now) {
        m.delete(pk)
        this.count--
      }
    }
    if (m.size === 0) this.byKey.delete(k)
  }
}
