/**
 * The bounded statement store of the engine and its indexes, plus the per-issuer token bucket.
 *
 * Bounds: `maxStatementsPerIssuer` attestations and deltas per issuer (its oldest go first),
 * `maxStatements` attestations and deltas in all (the lowest-scored issuers' go first: strangers
 * before trusted issuers, this node's and its anchors' last), `maxRevocations` revocations kept
 * apart (revocations of DIDs nothing here knows go first). At most one delta per
 * (issuer, subject, window).
 */
import type { DeltaBody, RevocationBody, SignedStatement, StatementQuery } from '../types.js'

/** What the store asks the engine when it must evict. */
export interface EvictionPolicy {
  /** True when nothing here trusts the issuer (score 0, not this node, not an anchor). */
  isStranger(issuer: string): boolean
  /** Keep-rank of an issuer: higher is evicted later (this node and anchors: Infinity). */
  rank(issuer: string): number
  /** True when the DID is known here (a score, an anchor, this node). */
  isKnown(did: string): boolean
}

export type Stored = SignedStatement

export const deltaKey = (issuer: string, subject: string, window: number): string => `${issuer}\u0000${subject}\u0000${window}`

export class StatementStore {
  readonly byId = new Map<string, Stored>()
  /** Every statement by issuer (insertion order). */
  readonly byIssuer = new Map<string, Map<string, Stored>>()
  /** Every statement by subject. */
  readonly bySubject = new Map<string, Set<string>>()
  /** Attestations and deltas per issuer. */
  private readonly counted = new Map<string, number>()
  /** (issuer, subject, window) -> delta id. */
  readonly deltas = new Map<string, string>()
  /** Revocations, oldest first. */
  readonly revocations = new Map<string, SignedStatement<RevocationBody>>()
  /** Revocations of DIDs unknown when they arrived, oldest first (evicted first). */
  private readonly strangerRevocations = new Set<string>()
  /** Issuers nothing here trusts, in round-robin order (evicted first). */
  private strangers = new Set<string>()
  private rankCache: string[] | undefined
  private countedTotal = 0

  constructor(
    private readonly maxPerIssuer: number,
    private readonly maxStatements: number,
    private readonly maxRevocations: number,
    private readonly policy: EvictionPolicy,
  ) {}

  get size(): number {
    return this.byId.size
  }

  /** Attestations and deltas held. */
  get countedSize(): number {
    return this.countedTotal
  }

  get(id: string): Stored | undefined {
    return this.byId.get(id)
  }

  /** The held delta for the statement's (issuer, subject, window), if any. */
  deltaFor(body: DeltaBody): SignedStatement<DeltaBody> | undefined {
    const id = this.deltas.get(deltaKey(body.issuer, body.subject, body.window))
    return id === undefined ? undefined : (this.byId.get(id) as SignedStatement<DeltaBody> | undefined)
  }

  /**
   * Inserts a statement (a delta replaces the held one of its window) and evicts to stay within
   * bounds. Returns the statements evicted (the new one among them when it lost out at once).
   */
  insert(st: Stored): Stored[] {
    const body = st.body
    const evicted: Stored[] = []
    if (body.kind === 'delta') {
      const old = this.deltaFor(body)
      if (old !== undefined) this.remove(old.id)
      this.deltas.set(deltaKey(body.issuer, body.subject, body.window), st.id)
    }
    this.byId.set(st.id, st)
    let mine = this.byIssuer.get(body.issuer)
    if (mine === undefined) this.byIssuer.set(body.issuer, (mine = new Map()))
    mine.set(st.id, st)
    let about = this.bySubject.get(body.subject)
    if (about === undefined) this.bySubject.set(body.subject, (about = new Set()))
    about.add(st.id)
    if (body.kind === 'revocation') {
      this.revocations.set(st.id, st as SignedStatement<RevocationBody>)
      if (!this.policy.isKnown(body.subject) && body.subject !== body.issuer) this.strangerRevocations.add(st.id)
      while (this.revocations.size > this.maxRevocations) {
        const victim = this.revocationVictim()
        if (victim === undefined) break
        evicted.push(victim)
        this.remove(victim.id)
      }
      return evicted
    }
    const n = (this.counted.get(body.issuer) ?? 0) + 1
    this.counted.set(body.issuer, n)
    this.countedTotal++
    if (this.policy.isStranger(body.issuer)) this.strangers.add(body.issuer)
    if (n > this.maxPerIssuer) {
      const victim = this.oldestOf(body.issuer)
      if (victim !== undefined) {
        evicted.push(victim)
        this.remove(victim.id)
      }
    }
    while (this.countedTotal > this.maxStatements) {
      const victim = this.globalVictim()
      if (victim === undefined) break
      evicted.push(victim)
      this.remove(victim.id)
    }
    return evicted
  }

  remove(id: string): Stored | undefined {
    const st = this.byId.get(id)
    if (st === undefined) return undefined
    const body = st.body
    this.byId.delete(id)
    const mine = this.byIssuer.get(body.issuer)
    mine?.delete(id)
    if (mine?.size === 0) this.byIssuer.delete(body.issuer)
    const about = this.bySubject.get(body.subject)
    about?.delete(id)
    if (about?.size === 0) this.bySubject.delete(body.subject)
    if (body.kind === 'revocation') {
      this.revocations.delete(id)
      this.strangerRevocations.delete(id)
      return st
    }
    if (body.kind === 'delta') {
      const k = deltaKey(body.issuer, body.subject, body.window)
      if (this.deltas.get(k) === id) this.deltas.delete(k)
    }
    const n = (this.counted.get(body.issuer) ?? 1) - 1
    if (n <= 0) this.counted.delete(body.issuer)
    else this.counted.set(body.issuer, n)
    this.countedTotal--
    return st
  }

  /** Recomputes who the strangers are (after the scores changed). */
  refreshStrangers(): void {
    const next = new Set<string>()
    for (const issuer of this.counted.keys()) if (this.policy.isStranger(issuer)) next.add(issuer)
    this.strangers = next
    this.rankCache = undefined
  }

  /** The issuer's oldest (smallest issued_at) attestation or delta. */
  private oldestOf(issuer: string): Stored | undefined {
    let best: Stored | undefined
    for (const st of this.byIssuer.get(issuer)?.values() ?? []) {
      if (st.body.kind === 'revocation') continue
      if (best === undefined || st.body.issued_at < best.body.issued_at) best = st
    }
    return best
  }

  private globalVictim(): Stored | undefined {
    // strangers first, round robin: one statement of each in turn
    for (const issuer of this.strangers) {
      this.strangers.delete(issuer)
      const victim = this.oldestOf(issuer)
      if (victim === undefined) continue
      if ((this.counted.get(issuer) ?? 0) > 1) this.strangers.add(issuer)
      return victim
    }
    // then the lowest-ranked issuers (ranks cached until the scores change)
    for (let attempt = 0; attempt < 2; attempt++) {
      if (this.rankCache === undefined || this.rankCache.length === 0) {
        this.rankCache = [...this.counted.keys()].sort((a, b) => this.policy.rank(b) - this.policy.rank(a))
      }
      while (this.rankCache.length > 0) {
        const issuer = this.rankCache[this.rankCache.length - 1]!
        const victim = this.oldestOf(issuer)
        if (victim !== undefined) {
          if ((this.counted.get(issuer) ?? 0) <= 1) this.rankCache.pop()
          return victim
        }
        this.rankCache.pop()
      }
    }
    return undefined
  }

  private revocationVictim(): Stored | undefined {
    for (const id of this.strangerRevocations) {
      const st = this.revocations.get(id)
      if (st !== undefined) return st
      this.strangerRevocations.delete(id)
    }
    let firstKey: Stored | undefined
    for (const st of this.revocations.values()) {
      // a key holder's own revocation of its key is the last to go
      if (st.body.scope === 'key' && st.body.issuer === st.body.subject) {
        firstKey ??= st
        continue
      }
      return st
    }
    return firstKey
  }

  /** Held statements matching the query, newest first. */
  query(q: StatementQuery = {}, maxLimit = 4096): Stored[] {
    const limit = Math.max(0, Math.min(maxLimit, Math.floor(q.limit ?? 256)))
    let pool: Iterable<Stored>
    if (q.issuer !== undefined) {
      pool = this.byIssuer.get(q.issuer)?.values() ?? []
    } else if (q.subject !== undefined) {
      const ids = this.bySubject.get(q.subject)
      pool = ids === undefined ? [] : [...ids].map((id) => this.byId.get(id)!).filter((s) => s !== undefined)
    } else {
      pool = this.byId.values()
    }
    const out: Stored[] = []
    for (const st of pool) {
      const b = st.body
      if (q.subject !== undefined && b.subject !== q.subject) continue
      if (q.kind !== undefined && b.kind !== q.kind) continue
      if (q.since !== undefined && b.issued_at < q.since) continue
      out.push(st)
    }
    out.sort((a, b) => b.body.issued_at - a.body.issued_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    return out.length > limit ? out.slice(0, limit) : out
  }
}

/**
 * Token buckets per issuer: `perMinute` tokens, refilled continuously from the clock. Buckets that
 * have refilled are forgotten, so memory follows the issuers active in the last minute (and is
 * capped at `maxBuckets`: beyond it the oldest are dropped, i.e. refilled early).
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>()

  constructor(
    private readonly perMinute: number,
    private readonly maxBuckets = 200_000,
  ) {}

  take(issuer: string, now: number): boolean {
    const rate = this.perMinute / 60_000
    let b = this.buckets.get(issuer)
    if (b === undefined) {
      if (this.buckets.size >= this.maxBuckets) this.sweep(now)
      b = { tokens: this.perMinute, at: now }
      this.buckets.set(issuer, b)
    } else {
      const elapsed = now - b.at
      if (elapsed > 0) b.tokens = Math.min(this.perMinute, b.tokens + elapsed * rate)
      b.at = Math.max(b.at, now)
    }
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }

  /** True when `issuer` has a token now (nothing is taken). */
  peek(issuer: string, now: number): boolean {
    const b = this.buckets.get(issuer)
    if (b === undefined) return true
    const elapsed = now - b.at
    return (elapsed > 0 ? Math.min(this.perMinute, b.tokens + elapsed * (this.perMinute / 60_000)) : b.tokens) >= 1
  }

  private sweep(now: number): void {
    const rate = this.perMinute / 60_000
    for (const [k, b] of this.buckets) if (b.tokens + (now - b.at) * rate >= this.perMinute) this.buckets.delete(k)
    for (const k of this.buckets.keys()) {
      if (this.buckets.size < this.maxBuckets) break
      this.buckets.delete(k)
    }
  }

  get size(): number {
    return this.buckets.size
  }
}
