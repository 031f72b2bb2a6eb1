/**
 * The trust graph engine: a bounded store of verified statements, this node's anchors and own
 * observations, and the table of scores computed from them (compute.ts), recomputed lazily at the
 * next read after a change. Reads (check, peerScore, profile) are map lookups on that table.
 */
import { VerificationLevel, systemClock, type Clock, type Logger, type NodeTrustProfile, type TrustCheck, type TrustRequirements } from '@kos-mesh/interface'
import { OBSERVATIONS } from '../types.js'
import type { Anchor, AddOutcome, DeltaBody, Observation, ReputationReport, RevocationBody, SignedStatement, StatementQuery, TrustCounters, TrustStats, TrustEngineComponents, TrustEngineInit, TrustGraphEngine } from '../types.js'
import { resolveConfig, type EngineConfig } from './config.js'
import { compute, finalScore, type Entry, type Table } from './compute.js'
import { explain } from './explain.js'
import { OwnObservations, deltaValue } from './reputation.js'
import { RateLimiter, StatementStore, deltaKey } from './store.js'
import { validateAnchor, validateStatement } from './validate.js'

const LEVELS: readonly VerificationLevel[] = [VerificationLevel.NONE, VerificationLevel.BASIC, VerificationLevel.STRONG, VerificationLevel.CRYPTOGRAPHIC]
const OBS = new Set<string>(OBSERVATIONS)
const MAX_OWN_DIRTY = 10_000

function rankOf(level: unknown): number {
  switch (level) {
    case VerificationLevel.NONE: return 0
    case VerificationLevel.BASIC: return 1
    case VerificationLevel.STRONG: return 2
    case VerificationLevel.CRYPTOGRAPHIC: return 3
    default: return -1
  }
}

export class TrustGraph implements TrustGraphEngine {
  readonly counters: TrustCounters = { added: 0, duplicates: 0, rejected: 0, rateLimited: 0, evicted: 0, expired: 0, recomputes: 0, lastRecomputeMs: 0, observationsDropped: 0 }
  private readonly cfg: EngineConfig
  private readonly clock: Clock
  private readonly logger: Logger | undefined
  private readonly store: StatementStore
  private readonly limiter: RateLimiter
  private readonly anchorMap = new Map<string, Anchor>()
  private readonly own: OwnObservations
  private readonly authenticated = new Set<string>()
  private table: Table
  /** Revoked DIDs: the table's, plus those revoked since it was computed. */
  private revoked: Set<string>
  /** Statements changed since the table (recompute at the next read, within the interval). */
  private dirty = false
  /** Anchors or revocations changed: recompute at the next read whatever the interval. */
  private force = false
  /** DIDs whose own observations changed since the table (updated one by one at the next read). */
  private readonly ownDirty = new Set<string>()

  constructor(init: TrustEngineInit, components: TrustEngineComponents = {}) {
    this.cfg = resolveConfig(init)
    this.clock = components.clock ?? systemClock
    this.logger = components.logger
    const cfg = this.cfg
    this.store = new StatementStore(cfg.maxStatementsPerIssuer, cfg.maxStatements, cfg.maxRevocations, {
      isStranger: (issuer) => issuer !== cfg.self && !this.anchorMap.has(issuer) && !((this.table.entries.get(issuer)?.t ?? 0) > 0),
      rank: (issuer) => (issuer === cfg.self || this.anchorMap.has(issuer) ? Infinity : (this.table.entries.get(issuer)?.t ?? 0)),
      isKnown: (did) => did === cfg.self || this.anchorMap.has(did) || this.table.entries.has(did),
    })
    this.limiter = new RateLimiter(cfg.maxStatementsPerIssuerPerMinute)
    this.own = new OwnObservations(cfg, (subject, window) => {
      const id = this.store.deltas.get(deltaKey(cfg.self, subject, window))
      const st = id === undefined ? undefined : (this.store.get(id) as SignedStatement<DeltaBody> | undefined)
      return st?.body.counts
    })
    this.table = this.computeTable()
    this.revoked = new Set(this.table.revoked)
  }

  // ------------------------------------------------------------ anchors, authentication

  setAnchor(anchor: Anchor): void {
    const a = validateAnchor(anchor, this.cfg.self)
    this.anchorMap.set(a.did, a)
    this.force = true
  }

  removeAnchor(did: string): void {
    if (this.anchorMap.delete(did)) {
      this.force = true
    }
  }

  anchors(): Anchor[] {
    return [...this.anchorMap.values()].map((a) => ({ ...a }))
  }

  markAuthenticated(did: string): void {
    if (typeof did !== 'string' || did.length === 0) return
    this.authenticated.delete(did)
    if (this.authenticated.size >= this.cfg.maxAuthenticated) {
      const oldest = this.authenticated.values().next().value
      if (oldest !== undefined) this.authenticated.delete(oldest)
    }
    this.authenticated.add(did)
  }

  // ------------------------------------------------------------ statements

  add(statement: SignedStatement, options?: { restored?: boolean }): AddOutcome {
    try {
      validateStatement(statement)
    } catch (err) {
      this.counters.rejected++
      throw err
    }
    if (this.store.byId.has(statement.id)) {
      this.counters.duplicates++
      return 'duplicate'
    }
    const now = this.clock.now()
    const b = statement.body
    if (b.kind !== 'revocation' && !(b.expires_at > now)) {
      this.counters.expired++
      return 'expired'
    }
    // a revoked DID may still revoke keys: its own (making it final), or, as a validator revoked
    // by another validator, the other one (the more trusted validator wins at the recompute)
    const keyRevocation = b.kind === 'revocation' && b.scope === 'key'
    if (this.revoked.has(b.issuer) && !keyRevocation) {
      this.counters.rejected++
      return 'revoked_issuer'
    }
    const held = b.kind === 'delta' ? this.store.deltaFor(b) : undefined
    if (held !== undefined && held.body.issued_at >= b.issued_at) return 'stale'
    if (b.issuer !== this.cfg.self && options?.restored !== true && !this.limiter.take(b.issuer, now)) {
      this.counters.rateLimited++
      return 'rate_limited'
    }
    const evicted = this.store.insert(statement)
    this.counters.added++
    this.dirty = true
    if (evicted.length > 0) {
      this.counters.evicted += evicted.length
      for (const st of evicted) {
        if (st.body.kind !== 'revocation') continue
        this.force = true
        this.redecide(st.body.subject)
      }
    }
    if (b.kind === 'revocation' && this.store.byId.has(statement.id)) this.applyRevocation(statement as SignedStatement<RevocationBody>)
    return held !== undefined ? 'superseded' : 'added'
  }

  /** The immediate effect of a revocation on `isRevoked`; the scores follow at the next read. */
  private applyRevocation(st: SignedStatement<RevocationBody>): void {
    const b = st.body
    if (b.scope === 'key') {
      if (b.issuer === b.subject) {
        this.revoked.add(b.subject)
        this.force ||= b.subject === this.cfg.self || this.isKnown(b.subject)
        return
      }
      if (this.isValidator(b.issuer)) {
        this.force = true
        if (b.subject !== this.cfg.self && this.validatorWeight(b.issuer) >= this.cfg.validatorRevokeThreshold) this.revoked.add(b.subject)
        return
      }
    }
    if (b.scope === 'statement' && b.statement !== undefined) {
      const target = this.store.get(b.statement)
      if (target !== undefined && target.body.issuer === b.issuer && target.body.kind === 'revocation') {
        this.force = true
        this.redecide(target.body.subject)
        return
      }
    }
    // withdrawals of attestations matter only when the issuer's attestations counted
    this.force ||= (this.table.entries.get(b.issuer)?.b ?? 0) > 0 || this.anchorMap.has(b.issuer) || b.issuer === this.cfg.self
  }

  private isKnown(did: string): boolean {
    return did === this.cfg.self || this.anchorMap.has(did) || this.table.entries.has(did)
  }

  private isValidator(did: string): boolean {
    return this.anchorMap.get(did)?.validator === true || this.table.validators.has(did)
  }

  private validatorWeight(did: string): number {
    if (this.revoked.has(did)) return 0
    const a = this.anchorMap.get(did)
    if (a !== undefined) return Math.min(a.level, this.table.entries.get(did)?.cap ?? 10)
    return this.table.entries.get(did)?.b ?? 0
  }

  /** Re-decides at once whether a DID is revoked, from the revocations held about it. */
  private redecide(subject: string): void {
    let revoked = false
    for (const id of this.store.bySubject.get(subject) ?? []) {
      const st = this.store.get(id)
      if (st === undefined || st.body.kind !== 'revocation' || st.body.scope !== 'key') continue
      const b = st.body
      if (b.issuer === b.subject) {
        revoked = true
        break
      }
      if (b.subject === this.cfg.self || !this.isValidator(b.issuer) || this.validatorWeight(b.issuer) < this.cfg.validatorRevokeThreshold) continue
      let withdrawn = false
      for (const other of this.store.byIssuer.get(b.issuer)?.values() ?? []) {
        if (other.body.kind === 'revocation' && other.body.scope === 'statement' && other.body.statement === st.id) {
          withdrawn = true
          break
        }
      }
      if (!withdrawn) {
        revoked = true
        break
      }
    }
    if (revoked) this.revoked.add(subject)
    else this.revoked.delete(subject)
  }

  statements(query?: StatementQuery): SignedStatement[] {
    return this.store.query(query)
  }

  admits(issuer: string): boolean {
    return issuer === this.cfg.self || this.limiter.peek(issuer, this.clock.now())
  }

  has(id: string): boolean {
    return this.store.byId.has(id)
  }

  get size(): number {
    return this.store.size
  }

  stats(): TrustStats {
    const revocations = this.store.revocations.size
    const deltas = this.store.deltas.size
    return { attestations: this.store.size - revocations - deltas, deltas, revocations, revokedDids: this.revoked.size, anchors: this.anchors().length }
  }

  prune(): number {
    const now = this.clock.now()
    const gone: string[] = []
    for (const st of this.store.byId.values()) {
      if (st.body.kind !== 'revocation' && !(st.body.expires_at > now)) gone.push(st.id)
    }
    for (const id of gone) this.store.remove(id)
    if (gone.length > 0) {
      this.counters.expired += gone.length
      this.dirty = true
    }
    return gone.length
  }

  // ------------------------------------------------------------ own observations

  observe(did: string, outcome: Observation): void {
    try {
      if (typeof did !== 'string' || !did.startsWith('did:') || did.length > 2048 || !OBS.has(outcome)) return
      if (did === this.cfg.self) return
      if (!this.own.observe(did, outcome, this.clock.now())) return
      this.counters.observationsDropped = this.own.dropped
      if (this.ownDirty.size >= MAX_OWN_DIRTY) {
        this.ownDirty.clear()
        this.dirty = true
      } else {
        this.ownDirty.add(did)
      }
    } catch {
      // never throws: observations are best effort
    }
  }

  takeOwnDeltas(): DeltaBody[] {
    return this.own.take(this.cfg.self, this.clock.now())
  }

  // ------------------------------------------------------------ scores

  recompute(): void {
    this.table = this.computeTable()
    this.revoked = new Set(this.table.revoked)
    this.dirty = false
    this.force = false
    this.ownDirty.clear()
    this.store.refreshStrangers()
  }

  private computeTable(): Table {
    const t0 = performance.now() // clock-exempt: measures the recompute itself (a counter), not protocol time
    const table = compute({ cfg: this.cfg, store: this.store, anchors: this.anchorMap, own: this.own, now: this.clock.now() })
    this.counters.recomputes++
    this.counters.lastRecomputeMs = performance.now() - t0 // clock-exempt: as above
    this.logger?.debug('trust: recomputed', { statements: this.store.size, dids: table.entries.size, ms: this.counters.lastRecomputeMs })
    return table
  }

  /** The current table: recomputed first when it is out of date (see TrustEngineInit.syncRecomputeStatements). */
  private read(): Table {
    const now = this.clock.now()
    const table = this.table
    if (this.force || now - table.at >= this.cfg.staleAfterMs) {
      this.recompute()
    } else if (this.dirty && (this.store.size <= this.cfg.syncRecomputeStatements || now - table.at >= this.cfg.recomputeIntervalMs)) {
      this.recompute()
    } else if (this.ownDirty.size > 0) {
      this.updateOwn(now)
    }
    return this.table
  }

  /** Applies new own observations to their DIDs' entries alone (a full recompute when one crosses the endorser threshold). */
  private updateOwn(now: number): void {
    const cfg = this.cfg
    const entries = this.table.entries
    for (const did of this.ownDirty) {
      let e: Entry | undefined = entries.get(did)
      if (e === undefined) {
        e = { t: 0, b: 0, depth: -1, own: 0, ownStored: 0, others: 0, othersCeil: 0, cap: 10, endorsements: 0, rank: 0, revoked: this.revoked.has(did) }
        entries.set(did, e)
      }
      let stored = 0
      for (const id of this.store.bySubject.get(did) ?? []) {
        const st = this.store.get(id)
        if (st === undefined || st.body.kind !== 'delta' || st.body.issuer !== cfg.self) continue
        const b = st.body
        if (b.expires_at > now && !this.own.covers(did, b.window)) stored += deltaValue(b.counts, b.window, b.window_ms, now, cfg)
      }
      e.ownStored = stored
      const before = e.t
      finalScore(e, did, { cfg, own: this.own, now })
      if (before >= cfg.endorserThreshold !== e.t >= cfg.endorserThreshold || this.table.validators.has(did)) this.dirty = true
    }
    this.ownDirty.clear()
  }

  profile(did: string): NodeTrustProfile {
    const e = this.read().entries.get(did)
    if (this.revoked.has(did)) return { trust_score: 0, endorsements: 0, verification_level: VerificationLevel.NONE }
    let rank = e?.rank ?? 0
    if (rank === 0 && this.authenticated.has(did)) rank = 1
    return { trust_score: e?.t ?? 0, endorsements: e?.endorsements ?? 0, verification_level: LEVELS[rank]! }
  }

  check(subject: string, requirements: TrustRequirements): TrustCheck {
    const e = this.read().entries.get(subject)
    if (this.revoked.has(subject)) return { passed: false, score: 0, endorsements: 0, reason: 'revoked' }
    const score = e === undefined ? 0 : e.t
    const endorsements = e === undefined ? 0 : e.endorsements
    if (!(score >= requirements.minimum_trust_score)) {
      return { passed: false, score, endorsements, reason: `expected trust score >= ${requirements.minimum_trust_score}, got ${score}` }
    }
    if (!(endorsements >= requirements.required_endorsements)) {
      return { passed: false, score, endorsements, reason: `expected >= ${requirements.required_endorsements} endorsements, got ${endorsements}` }
    }
    const need = rankOf(requirements.verification_level)
    if (need > 0 || need < 0) {
      let rank = e === undefined ? 0 : e.rank
      if (rank === 0 && this.authenticated.has(subject)) rank = 1
      if (need < 0 || rank < need) {
        return { passed: false, score, endorsements, reason: `expected verification level ${requirements.verification_level}, got ${LEVELS[rank]}` }
      }
    }
    return { passed: true, score, endorsements }
  }

  peerScore(did: string): number | undefined {
    const e = this.read().entries.get(did)
    if (this.revoked.has(did)) return 0
    return e?.t
  }

  isRevoked(did: string): boolean {
    if (this.force) this.recompute()
    return this.revoked.has(did)
  }

  explain(did: string): ReputationReport {
    const table = this.read()
    return explain({
      did,
      cfg: this.cfg,
      table,
      store: this.store,
      anchors: this.anchorMap,
      own: this.own,
      revoked: this.revoked,
      authenticated: this.authenticated.has(did),
      now: this.clock.now(),
      profile: this.profile(did),
    })
  }
}
