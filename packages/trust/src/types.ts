/**
 * The data model of the trust engine: signed statements (attestations, reputation deltas,
 * revocations), what the engine answers (profiles, checks, reports) and its options.
 *
 * A statement is signed by its issuer on its own (a COSE_Sign1 over the DAG-CBOR body, see
 * statement.ts), so any node can store it, serve it and pass it on without being trusted itself:
 * whoever receives it checks the issuer's signature. Statements travel in TRUST_ATTESTATION
 * (attestations, revocations) and REPUTATION_DELTA (deltas) messages.
 */
import { TrustObservation, type AbortOptions, type Clock, type KeyValueStore, type MessageRouter, type SignatureVerifier, type Signer, type Startable, type Logger, type NodeTrustProfile, type TrustCheck, type TrustEngine, type TrustRequirements, type VerificationLevel } from '@kos-mesh/interface'

// ---------------------------------------------------------------- statements

/** Version of the statement body format (field `v`). */
export const STATEMENT_VERSION = 1

/** The kinds of signed trust statements: attestation, reputation delta, revocation. */
export const StatementKind = {
  ATTESTATION: 'attestation',
  DELTA: 'delta',
  REVOCATION: 'revocation',
} as const
/** A statement kind (the values of StatementKind). */
export type StatementKind = (typeof StatementKind)[keyof typeof StatementKind]

/** What an attestation says about its subject. */
export const ClaimType = {
  /** The issuer trusts the subject at `level` (0..10) in `context`. */
  TRUST: 'trust',
  /** The issuer endorses the subject (counts towards `endorsements`; carries a `level` too). */
  ENDORSE: 'endorse',
  /** The issuer verified that the subject offers capability `value` (e.g. `agent_hosting`). */
  CAPABILITY: 'capability',
  /** The issuer verified that the subject runs as node role `value` (a NodeType, e.g. `ValidatorNode`). */
  ROLE: 'role',
  /**
   * The issuer, as a validator, verified the subject's key binding out of band. From a validator
   * this node trusts, it raises the subject to `cryptographic` verification.
   */
  KEY: 'key',
} as const
export type ClaimType = (typeof ClaimType)[keyof typeof ClaimType]

/** Context of a trust claim that applies everywhere. */
export const ANY_CONTEXT = '*'

interface StatementBase {
  /** STATEMENT_VERSION */
  v: number
  /** DID of the signer. */
  issuer: string
  /** DID the statement is about. */
  subject: string
  /** ms since the Unix epoch. */
  issued_at: number
}

/**
 * The body of an attestation: a claim by the issuer about the subject (trust, endorsement, capability, role
 * or key), with a level and an expiry.
 */
export interface AttestationBody extends StatementBase {
  kind: 'attestation'
  claim: ClaimType
  /** Integer 0..10. Required for `trust` and `endorse`; absent otherwise. */
  level?: number
  /** Capability or role name for `capability` and `role` (1..64 chars); absent otherwise. */
  value?: string
  /** Where the claim applies: `*` (everywhere, the default) or a name of 1..64 chars. */
  context: string
  /** ms since the Unix epoch; after it the attestation counts for nothing. */
  expires_at: number
}

/** What a node observed of a peer (the interface's TrustObservation). */
export const Observation = TrustObservation
export type Observation = TrustObservation
/** Every observation kind, in order. */
export const OBSERVATIONS: readonly Observation[] = Object.freeze(Object.values(Observation))

/**
 * A reputation delta: the issuer's observations of the subject in one window. At most one delta
 * counts per (issuer, subject, window): a later one for the same window (a larger `issued_at`)
 * replaces it, so an issuer cannot stack observations by sending more statements.
 */
export interface DeltaBody extends StatementBase {
  kind: 'delta'
  /** Start of the window, ms since the epoch, a multiple of `window_ms`. */
  window: number
  /** Window length, ms (one of the accepted window lengths, default 1 hour). */
  window_ms: number
  /** Counts per observation, integers 0..MAX_DELTA_COUNT; omitted observations are 0. */
  counts: Partial<Record<Observation, number>>
  /** ms since the epoch; after it the delta is dropped. */
  expires_at: number
}

/** What a revocation withdraws. */
export const RevocationScope = {
  /** One statement of the issuer, named by `statement` (its id). */
  STATEMENT: 'statement',
  /** Every attestation of the issuer about `subject` issued at or before this revocation. */
  ATTESTATIONS: 'attestations',
  /**
   * The subject's key: by the key holder itself (`issuer === subject`, key compromise: absolute,
   * forever) or by a validator (counts as far as this node trusts that validator).
   */
  KEY: 'key',
} as const
export type RevocationScope = (typeof RevocationScope)[keyof typeof RevocationScope]

/**
 * The body of a revocation: of one statement, of the issuer's attestations about the subject, or of a key.
 */
export interface RevocationBody extends StatementBase {
  kind: 'revocation'
  scope: RevocationScope
  /** Statement id, for scope `statement`. */
  statement?: string
  /** Free text for operators, at most 256 chars. */
  reason?: string
}

/** The body of a signed trust statement, by kind. */
export type StatementBody = AttestationBody | DeltaBody | RevocationBody

/** A statement whose signature was checked (or that this node signed). */
export interface SignedStatement<B extends StatementBody = StatementBody> {
  /** Content id of the body: CIDv1 (dag-cbor, sha2-256), base32. */
  readonly id: string
  readonly body: B
  /** The COSE_Sign1 encoding, as received and as passed on. */
  readonly bytes: Uint8Array
}

// ---------------------------------------------------------------- bounds

/** Bounds a statement must fit when signed or verified. */
export interface StatementLimits {
  /** Largest encoded statement, bytes. Default 1,024. */
  maxStatementBytes?: number
  /** Largest clock skew accepted for `issued_at` in the future, ms. Default 5 minutes. */
  maxFutureSkewMs?: number
  /** Longest attestation lifetime (`expires_at - issued_at`), ms. Default 365 days. */
  maxLifetimeMs?: number
}

// ---------------------------------------------------------------- the engine

/** What the engine needs from its host. */
export interface TrustEngineComponents {
  /** Default: systemClock. The engine reads time only from it. */
  clock?: Clock
  logger?: Logger
}

/** Options of `createTrustEngine`. */
export interface TrustEngineInit {
  /** This node's DID (trusted at 10, the source of personalisation). */
  self: string
  /** Per-hop attenuation of propagated trust, in (0, 1). Default 0.8. */
  attenuation?: number
  /** Longest chain of attestations followed from an anchor. Default 6. */
  maxDepth?: number
  /** Half-life of an attestation's weight since it was issued, ms. Default 90 days (Infinity: no decay). */
  attestationHalfLifeMs?: number
  /** Half-life of a delta's weight since its window ended, ms. Default 7 days. */
  deltaHalfLifeMs?: number
  /** Score an issuer needs here for its endorsements to count in `endorsements`. Default 5. */
  endorserThreshold?: number
  /** Endorsements (from issuers above the threshold) that make `strong` verification. Default 1. */
  strongEndorsements?: number
  /** Score a validator needs here for its key revocation to revoke outright. Default 7. */
  validatorRevokeThreshold?: number
  /** Largest raise of a score by reputation deltas, points. Default 2. */
  maxReputationGain?: number
  /** Largest cut of a score by this node's own observations, points. Default 5. */
  maxOwnPenalty?: number
  /** Largest cut of a score by every other issuer's deltas together, points. Default 2. */
  maxOthersPenalty?: number
  /** Window length of this node's own deltas, ms. Default 1 hour. */
  deltaWindowMs?: number
  /** Statements kept per issuer (the oldest non-revocation ones go first). Default 1,024. */
  maxStatementsPerIssuer?: number
  /** Statements kept in all. Default 200,000. */
  maxStatements?: number
  /** New statements accepted per issuer per minute (more are refused, `rate_limited`). Default 60. */
  maxStatementsPerIssuerPerMinute?: number
  /**
   * Scores are recomputed lazily at the next read after a change. With more statements than this
   * the recompute runs at most once per `recomputeIntervalMs` (reads in between see the last
   * scores; revocations and anchor changes always apply at once). Default 10,000.
   */
  syncRecomputeStatements?: number
  /** Default 1,000 ms. */
  recomputeIntervalMs?: number
  /**
   * Scores older than this are recomputed at the next read even without a change, so that decay
   * and expiry move on (both are slow: half-lives of days). Default 5 minutes.
   */
  maxScoreAgeMs?: number
  /** Contexts whose trust claims count for the general score. Default `['*']`. */
  contexts?: readonly string[]
  limits?: StatementLimits
  /** Revocations kept (apart from `maxStatements`; revocations of unknown DIDs go first). Default 100,000. */
  maxRevocations?: number
  /**
   * Points per counted observation in a delta's value (clamped to -5..+1 per delta). Defaults:
   * task_ok +0.05, task_failed -0.2, invalid_message -0.5, forged_message -2, timeout -0.1.
   */
  deltaWeights?: Partial<Record<Observation, number>>
  /** DIDs with pending own observations kept (the least recently observed is dropped). Default 10,000. */
  maxObservedSubjects?: number
}

/** How `add` took a statement. */
export type AddOutcome = 'added' | 'duplicate' | 'superseded' | 'stale' | 'rate_limited' | 'revoked_issuer' | 'expired'

/** An operator decision: a DID this node trusts directly. */
export interface Anchor {
  did: string
  /** Integer 0..10; 0 means "known, not trusted" (an explicit distrust that paths cannot raise). */
  level: number
  /** The operator also trusts this DID as a validator (its key attestations and key revocations count). */
  validator?: boolean
}

/** One piece of evidence behind a score, as `explain` lists it. */
export interface Evidence {
  kind: 'anchor' | 'attestation' | 'delta' | 'revocation' | 'authenticated'
  /** Statement id, when the evidence is a statement. */
  statement?: string
  issuer?: string
  /** The issuer's score here (its weight). */
  issuerScore?: number
  claim?: ClaimType
  level?: number
  /** Points this evidence moved the score, after attenuation, weighting and decay. */
  effect: number
  /** Decay factor applied (1 = fresh). */
  decay?: number
  counts?: Partial<Record<Observation, number>>
  window?: number
  note?: string
}

/** The score of a DID with everything behind it. */
export interface ReputationReport extends NodeTrustProfile {
  did: string
  revoked: boolean
  /** Score from attestations alone (the best attenuated chain from this node's anchors). */
  base: number
  /** Net points from reputation deltas (own and others', bounded). */
  reputation: number
  /** The chain of DIDs from an anchor that gave `base` (empty when none). */
  path: string[]
  /** Distinct issuers above the endorser threshold that vouch for the DID. */
  endorsers: string[]
  capabilities: string[]
  roles: string[]
  evidence: Evidence[]
  /** When the scores were last computed, ms. */
  computedAt: number
}

/** Which statements `statements()` lists. */
export interface StatementQuery {
  subject?: string
  issuer?: string
  kind?: StatementKind
  /** Only statements with `issued_at` >= since. */
  since?: number
  /** Default 256. */
  limit?: number
}

/**
 * The trust engine: the router's TrustEngine (check, peerScore, isRevoked, observe) over a store of
 * verified statements and this node's anchors. Sans-I/O: it reads time from the injected clock
 * only and does no I/O; the trust service feeds it and persists what it holds.
 */
export interface TrustGraphEngine extends TrustEngine {
  /** Sets (or replaces) one of this node's anchors: a DID it trusts directly, at a level. */
  setAnchor(anchor: Anchor): void
  /** Removes the anchor of `did`. */
  removeAnchor(did: string): void
  /** This node's anchors. */
  anchors(): Anchor[]
  /** Records that `did` authenticated over a channel with this node (evidence for `basic`). */
  markAuthenticated(did: string): void
  /**
   * Takes a statement whose signature was already checked. Throws typed errors on bad bodies.
   * `restored`: the statement comes back from this node's own store (a restart), so it does not
   * count against its issuer's rate limit (it was counted when it first arrived).
   */
  add(statement: SignedStatement, options?: { restored?: boolean }): AddOutcome
  /** Counts an outcome this node observed (its own reputation delta for the current window). */
  observe(did: string, outcome: Observation): void
  /** This node's own deltas not yet published (unsigned bodies), and marks them published. */
  takeOwnDeltas(): DeltaBody[]
  /** Recomputes every score now (normally lazy: at the next read after a change). */
  recompute(): void
  /** The trust profile of `did` (score, endorsements, verification level) from this node's point of view. */
  profile(did: string): NodeTrustProfile
  /** Whether `subject` meets `requirements`, and why not (the router's trust stage). */
  check(subject: string, requirements: TrustRequirements): TrustCheck
  peerScore(did: string): number | undefined
  isRevoked(did: string): boolean
  /**
   * The score of `did` with the evidence behind it: anchors and chains, endorsements, deltas, revocations.
   */
  explain(did: string): ReputationReport
  /** Statements held that match `query` (at most its `limit`, default 256). */
  statements(query?: StatementQuery): SignedStatement[]
  /** Every statement id held (for sync). */
  has(id: string): boolean
  /**
   * Cheap, takes nothing: false when a new statement of `issuer` would be refused now as
   * `rate_limited`. The service asks it before paying for a signature check.
   */
  admits(issuer: string): boolean
  /** Drops expired statements; returns how many. */
  prune(): number
  /** What the engine holds, by kind, and how many DIDs are revoked here. Cheap (no scan). */
  stats(): TrustStats
  readonly size: number
  readonly counters: TrustCounters
}

/** What the engine holds, by kind, and how many DIDs are revoked here. */
export interface TrustStats {
  attestations: number
  deltas: number
  revocations: number
  revokedDids: number
  anchors: number
}

/** The engine's counters since it was created. */
export interface TrustCounters {
  added: number
  duplicates: number
  rejected: number
  rateLimited: number
  evicted: number
  expired: number
  recomputes: number
  /** ms spent in the last recompute. */
  lastRecomputeMs: number
  /** Own observations dropped because `maxObservedSubjects` DIDs were pending (createTrustEngine sets it). */
  observationsDropped?: number
}

export type { NodeTrustProfile, VerificationLevel }

// ---------------------------------------------------------------- the service

/** What `attest` signs. */
export interface AttestInit {
  subject: string
  /** Default `endorse`. */
  claim?: ClaimType
  /** Integer 0..10 for `trust` and `endorse`. Default 7. */
  level?: number
  /** For `capability` and `role`. */
  value?: string
  /** Default `*`. */
  context?: string
  /** Lifetime, ms. Default 90 days. */
  ttlMs?: number
}

/** What `revoke` signs. */
export interface RevokeInit {
  /** The DID the revocation is about (this node's own DID to revoke its own key). */
  subject: string
  /** Default `attestations` (or `statement` when `statement` is given). */
  scope?: RevocationScope
  statement?: string
  reason?: string
}

/** What taking a batch of statements did. */
export interface IngestResult {
  added: number
  duplicates: number
  /** Malformed, forged, expired or refused statements (counted by error name in the counters). */
  rejected: number
  rateLimited: number
}

/** Options of `trustService()`. */
export interface TrustServiceInit {
  /** Pass new statements on (by `spread`). Default true. */
  flood?: boolean
  /**
   * How new statements travel: `push` (default) sends them to every neighbour but the sender, which
   * pass the new ones on (flooding by the service); `broadcast` hands them to the router's
   * `broadcast()` (BROADCAST_ANNOUNCE to `/trust`), so the router's broadcast strategy spreads them:
   * plain flooding, or the gossip service's Plumtree tree when it is installed. Sync on connect and
   * queries stay unicast either way.
   */
  spread?: 'push' | 'broadcast'
  /** Largest number of statements in one TRUST_ATTESTATION / REPUTATION_DELTA message. Default 64. */
  maxStatementsPerMessage?: number
  /** How often this node signs and spreads its own deltas, ms. Default 5 minutes. */
  publishIntervalMs?: number
  /** On a new neighbour, send it the revocations and this node's own attestations (at most this many). Default 1,024. */
  syncOnConnect?: number
  /** KeyValueStore prefix of persisted statements. Default `trust-statement/`. */
  storePrefix?: string
  /** Default 10,000 ms. */
  queryTimeoutMs?: number
  /** Bounds statements are checked against (size, future skew, lifetime). Default: the codec's defaults. */
  limits?: StatementLimits
}

/**
 * What the trust service needs: the router, the engine, this node's signer, a verifier, and optionally a
 * store, clock and logger.
 */
export interface TrustServiceComponents {
  router: MessageRouter
  engine: TrustGraphEngine
  /** Signs this node's statements (the node identity's signer; its keyId names the issuer). */
  signer: Signer
  /** Checks statements' signatures. */
  verifier: SignatureVerifier
  /** Persists statements; without it they live in memory only. */
  store?: KeyValueStore
  clock?: Clock
  logger?: Logger
}

/** The trust service's counters since it started. */
export interface TrustServiceCounters {
  received: number
  added: number
  duplicates: number
  /** By error name (InvalidStatementError, InvalidStatementSignatureError, StatementExpiredError, ...). */
  rejected: Record<string, number>
  rateLimited: number
  sent: number
  published: number
}

/** The trust engine's I/O: signs, verifies, persists, spreads and serves statements over a MessageRouter. */
export interface TrustService extends Startable {
  readonly engine: TrustGraphEngine
  /** Signs an attestation by this node, adds it, persists it and spreads it. */
  attest(init: AttestInit, options?: AbortOptions): Promise<SignedStatement<AttestationBody>>
  /** Signs a revocation by this node, applies it, persists it and spreads it. */
  revoke(init: RevokeInit, options?: AbortOptions): Promise<SignedStatement<RevocationBody>>
  /** Verifies and takes encoded statements (from a peer, a file, the CLI); spreads the new ones. */
  ingest(statements: readonly Uint8Array[], options?: AbortOptions & { fromPeer?: string }): Promise<IngestResult>
  /** Asks a connected peer (DID) for the statements it holds that match `query`, and ingests them. */
  fetch(peer: string, query: StatementQuery, options?: AbortOptions): Promise<IngestResult>
  /** Signs and spreads this node's pending own deltas now; resolves with how many. */
  publishDeltas(options?: AbortOptions): Promise<number>
  readonly counters: TrustServiceCounters
}
