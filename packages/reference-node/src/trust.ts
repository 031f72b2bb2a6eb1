/**
 * The node's trust: the operator's anchors, persisted in the node's KeyValueStore under
 * `trust/<did>` (one JSON TrustEntry each, the format of earlier versions still loads), fed to
 * the web-of-trust engine of `@kos-mesh/trust`; and the node's trust runtime: that engine (the
 * router's TrustEngine) and the trust service that signs, verifies, persists (`trust-statement/`)
 * and floods statements.
 */
import {
  InvalidParametersError,
  VerificationLevel,
  throwIfAborted,
  systemClock,
  type AbortOptions,
  type Clock,
  type KeyValueStore,
  type Logger,
  type MessageRouter,
  type NodeTrustProfile,
  type SignatureVerifier,
  type Signer,
  type TrustCheck,
  type TrustEngine,
  type TrustRequirements,
} from '@kos-mesh/interface'
import {
  createTrustEngine,
  meetsRequirements,
  trustService,
  type AttestInit,
  type AttestationBody,
  type RevocationBody,
  type RevokeInit,
  type SignedStatement,
  type StatementQuery,
  type TrustEngineInit,
  type TrustGraphEngine,
  type TrustService,
  type TrustServiceInit,
} from '@kos-mesh/trust'
import { checkDid, isValidDid } from './did.js'
import { ConfirmationRequiredError, UnknownStatementError } from './errors.js'

/** Store prefix of the operator's trust decisions: `trust/<did>` -> UTF-8 JSON TrustEntry. */
export const TRUST_PREFIX = 'trust/'

/** One operator decision (an anchor of the web of trust), as persisted under `trust/<did>`. */
export interface TrustEntry {
  did: string
  /** The level the operator set, 0..10 (0: known, not trusted; no chain of attestations raises it). */
  trust_score: number
  /** The operator also trusts the DID as a validator (its key attestations and revocations count). */
  validator: boolean
  /** What the operator named (a DID or agent addresses) when trusting this DID. */
  subjects: string[]
  /** ms since epoch. */
  updated: number
}

/** An operator decision with what the engine computes for the DID now. */
export interface TrustListEntry extends TrustEntry {
  /** The score the engine gives the DID now (the level, moved by reputation deltas; 0 once revoked). */
  score: number
  endorsements: number
  verification_level: VerificationLevel
  revoked: boolean
}

/**
 * The operator's trust decisions (the anchors of the node's web of trust), persisted under
 * TRUST_PREFIX in the node's store and handed to the trust engine; as a TrustEngine it answers
 * with the engine's profiles once attached, else with the operator's levels alone.
 */
export interface PersistentTrustStore extends TrustEngine {
  /** Loads every persisted entry (the node calls it at start). */
  load(options?: AbortOptions): Promise<void>
  /**
   * Hands the anchors to `engine` of the node `self` (now and at every later change); the profiles
   * come from it from then on. A decision about `self` stays persisted but is no anchor (the
   * engine trusts its own node at 10).
   */
  attach(engine: TrustGraphEngine, self: string): void
  /** Forgets the engine (the node calls it at stop). */
  detach(): void
  /**
   * Trusts `did` (a valid DID, else InvalidDidError) at `level` (an integer 0..10), remembering
   * `subject` (the DID or an agent address) and persisting it; `validator` makes it a validator
   * anchor too (the decision is replaced: without it, the DID is no validator any more).
   */
  trust(did: string, level: number, subject?: string, options?: AbortOptions & { validator?: boolean }): Promise<TrustListEntry>
  /** Forgets a DID. */
  untrust(did: string, options?: AbortOptions): Promise<void>
  /** The DID's profile: the engine's, or (without one) the operator's level alone. */
  get(did: string): NodeTrustProfile
  /** The level the operator set for `did`, or undefined when none was set. */
  peerScore(did: string): number | undefined
  /** The operator decisions, by DID, with the engine's scores. */
  list(): TrustListEntry[]
}

const enc = new TextEncoder()
const dec = new TextDecoder()
const MAX_SUBJECTS = 32
const NO_PROFILE: NodeTrustProfile = Object.freeze({ trust_score: 0, endorsements: 0, verification_level: VerificationLevel.NONE })

function checkLevel(level: unknown): asserts level is number {
  if (typeof level !== 'number' || !Number.isInteger(level) || level < 0 || level > 10) throw new InvalidParametersError(`expected a trust level, an integer in 0..10, got ${String(level)}`)
}

class TrustStoreImpl implements PersistentTrustStore {
  private readonly entries = new Map<string, TrustEntry>()
  private engine: TrustGraphEngine | undefined
  private self: string | undefined

  constructor(
    private readonly store: KeyValueStore,
    private readonly now: () => number,
  ) {}

  async load(options?: AbortOptions): Promise<void> {
    this.entries.clear()
    for await (const { key, value } of this.store.query(TRUST_PREFIX, options)) {
      let e: Partial<TrustEntry> & { did?: unknown }
      try {
        e = JSON.parse(dec.decode(value)) as typeof e
      } catch {
        continue // a corrupt entry is skipped, not fatal
      }
      if (e === null || typeof e !== 'object' || typeof e.did !== 'string' || !isValidDid(e.did) || key !== TRUST_PREFIX + e.did) continue // e.g. a malformed DID stored by an older version
      const level = e.trust_score
      if (typeof level !== 'number' || !Number.isInteger(level) || level < 0 || level > 10) continue
      // earlier versions also stored endorsements and a verification level: the engine derives those now
      const entry: TrustEntry = {
        did: e.did,
        trust_score: level,
        validator: e.validator === true,
        subjects: Array.isArray(e.subjects) ? e.subjects.filter((s): s is string => typeof s === 'string').slice(-MAX_SUBJECTS) : [e.did],
        updated: typeof e.updated === 'number' ? e.updated : 0,
      }
      this.entries.set(entry.did, entry)
      this.anchor(entry)
    }
  }

  attach(engine: TrustGraphEngine, self: string): void {
    this.engine = engine
    this.self = self
    for (const e of this.entries.values()) this.anchor(e)
  }

  detach(): void {
    this.engine = undefined
    this.self = undefined
  }

  private anchor(e: TrustEntry): void {
    if (this.engine === undefined || e.did === this.self) return
    this.engine.setAnchor({ did: e.did, level: e.trust_score, validator: e.validator })
  }

  async trust(did: string, level: number, subject: string = did, options?: AbortOptions & { validator?: boolean }): Promise<TrustListEntry> {
    throwIfAborted(options?.signal)
    checkDid(did)
    checkLevel(level)
    const prev = this.entries.get(did)
    const entry: TrustEntry = {
      did,
      trust_score: level,
      validator: options?.validator === true,
      subjects: [...new Set([...(prev?.subjects ?? []), subject])].slice(-MAX_SUBJECTS),
      updated: this.now(),
    }
    await this.store.put(TRUST_PREFIX + did, enc.encode(JSON.stringify(entry)), options)
    this.entries.set(did, entry)
    this.anchor(entry)
    return this.withScore(entry)
  }

  async untrust(did: string, options?: AbortOptions): Promise<void> {
    await this.store.delete(TRUST_PREFIX + did, options)
    this.entries.delete(did)
    if (this.engine !== undefined && did !== this.self) this.engine.removeAnchor(did)
  }

  get(did: string): NodeTrustProfile {
    if (this.engine !== undefined) return this.engine.profile(did)
    const e = this.entries.get(did)
    return e === undefined ? NO_PROFILE : { trust_score: e.trust_score, endorsements: 0, verification_level: VerificationLevel.NONE }
  }

  peerScore(did: string): number | undefined {
    return this.entries.get(did)?.trust_score
  }

  list(): TrustListEntry[] {
    return [...this.entries.values()].sort((a, b) => (a.did < b.did ? -1 : a.did > b.did ? 1 : 0)).map((e) => this.withScore(e))
  }

  check(subject: string, requirements: TrustRequirements): TrustCheck {
    return this.engine !== undefined ? this.engine.check(subject, requirements) : meetsRequirements(this.get(subject), requirements)
  }

  isRevoked(did: string): boolean {
    return this.engine?.isRevoked(did) ?? false
  }

  private withScore(e: TrustEntry): TrustListEntry {
    const p = this.get(e.did)
    return { ...e, score: p.trust_score, endorsements: p.endorsements, verification_level: p.verification_level, revoked: this.isRevoked(e.did) }
  }
}

/** The operator's anchors, persisted in `store`; hand them to an engine with `attach`. */
export function persistentTrustStore(store: KeyValueStore, now: () => number = () => systemClock.now()): PersistentTrustStore {
  return new TrustStoreImpl(store, now)
}

// ---------------------------------------------------------------- the runtime

/** A statement as the control API and the CLI show it: its id and its body's fields. */
export interface StatementView {
  id: string
  kind: 'attestation' | 'delta' | 'revocation'
  issuer: string
  subject: string
  issued_at: number
  claim?: string
  level?: number
  value?: string
  context?: string
  expires_at?: number
  scope?: string
  statement?: string
  reason?: string
  window?: number
  window_ms?: number
  counts?: Record<string, number>
}

/** The view of a signed statement: its id and its body's fields, flat (what the control API answers). */
export function statementView(s: SignedStatement): StatementView {
  return { id: s.id, ...(s.body as unknown as Omit<StatementView, 'id'>) }
}

/** The trust counters of `status` and the metrics. */
export interface TrustSummary {
  /** Operator anchors. */
  anchors: number
  /** Statements the engine holds (attestations, deltas, revocations). */
  statements: number
  byKind: { attestation: number; delta: number; revocation: number }
  /** DIDs revoked here (by their key holder, or by a validator trusted enough). */
  revokedDids: number
  /** Statements received from peers, taken, sent and signed by this node. */
  received: number
  added: number
  duplicates: number
  sent: number
  published: number
  rateLimited: number
  /** Statements refused, by reason (the error name, or the engine's outcome). */
  rejected: Record<string, number>
  /** Persisted statements loaded at start. */
  loaded: number
}

/** How many statements one listing asks the engine for at most. */
const LIST_ALL = 1_000_000

/** What a TrustRuntime is made of: the node's DID, engine and service options, and the components they use. */
export interface TrustRuntimeInit {
  /** The node's DID (the engine's `self`, trusted at 10). */
  did: string
  /** Engine options (TrustEngineInit without `self`). */
  engine?: Omit<TrustEngineInit, 'self'>
  service?: TrustServiceInit
  anchors: PersistentTrustStore
  store: KeyValueStore
  signer: Signer
  verifier: SignatureVerifier
  clock: Clock
  logger: Logger
}

/** The engine and the service of a running node. */
export class TrustRuntime {
  readonly engine: TrustGraphEngine
  private svc: TrustService | undefined

  constructor(private readonly init: TrustRuntimeInit) {
    this.engine = createTrustEngine({ ...init.engine, self: init.did }, { clock: init.clock, logger: init.logger })
    init.anchors.attach(this.engine, init.did)
  }

  /** Starts the service on `router` (loads the persisted statements, registers the handlers). */
  async start(router: MessageRouter): Promise<void> {
    const i = this.init
    const svc = trustService(i.service)({ router, engine: this.engine, signer: i.signer, verifier: i.verifier, store: i.store, clock: i.clock, logger: i.logger })
    await svc.start()
    this.svc = svc
  }

  /** Stops the service (its handlers removed) and detaches the anchors from the engine; never rejects for a runtime not started. */
  async stop(): Promise<void> {
    const svc = this.svc
    this.svc = undefined
    this.init.anchors.detach()
    await svc?.stop()
  }

  /** The started trust service; throws InvalidParametersError before `start()` or after `stop()`. */
  get service(): TrustService {
    if (this.svc === undefined) throw new InvalidParametersError('expected a started trust service, got none')
    return this.svc
  }

  /** Signs an attestation by this node, keeps it and floods it (the service's `attest`; InvalidParametersError before `start()`). */
  async attest(init: AttestInit, options?: AbortOptions): Promise<SignedStatement<AttestationBody>> {
    return await this.service.attest(init, options)
  }

  /**
   * Revokes: `statement` alone names one of this node's statements (its subject is looked up);
   * scope `key` with this node's DID needs `confirm` (key compromise: for good).
   */
  async revoke(init: Omit<RevokeInit, 'subject'> & { subject?: string; confirm?: boolean }, options?: AbortOptions): Promise<SignedStatement<RevocationBody>> {
    let subject = init.subject
    if (init.statement !== undefined) {
      const own = this.engine.statements({ issuer: this.init.did, limit: LIST_ALL }).find((s) => s.id === init.statement)
      if (own === undefined) throw new UnknownStatementError(`expected the id of a statement this node issued and holds, got ${JSON.stringify(String(init.statement).slice(0, 80))}`)
      if (subject !== undefined && subject !== own.body.subject) throw new InvalidParametersError(`expected the subject of statement ${init.statement} (${own.body.subject}), got ${subject}`)
      subject = own.body.subject
    }
    if (subject === undefined) throw new InvalidParametersError('expected a subject DID or a statement id to revoke, got neither')
    if (init.scope === 'key' && subject === this.init.did && init.confirm !== true) {
      throw new ConfirmationRequiredError(`expected confirm: true to revoke this node's own DID (key compromise, for good), got ${String(init.confirm)}`)
    }
    const { confirm: _confirm, ...rest } = init
    return await this.service.revoke({ ...rest, subject }, options)
  }

  /** The statements the engine holds that match `query` (at most its `limit`, default 256). */
  statements(query: StatementQuery = {}): SignedStatement[] {
    return this.engine.statements(query)
  }

  /** The trust counters now (the service's counters are 0 before `start()`). */
  summary(): TrustSummary {
    const st = this.engine.stats()
    const byKind = { attestation: st.attestations, delta: st.deltas, revocation: st.revocations }
    const c = this.svc?.counters
    const loaded = (c as { loaded?: number } | undefined)?.loaded ?? 0
    return {
      anchors: st.anchors,
      statements: this.engine.size,
      byKind,
      revokedDids: st.revokedDids,
      received: c?.received ?? 0,
      added: c?.added ?? 0,
      duplicates: c?.duplicates ?? 0,
      sent: c?.sent ?? 0,
      published: c?.published ?? 0,
      rateLimited: c?.rateLimited ?? 0,
      rejected: { ...c?.rejected },
      loaded,
    }
  }
}
