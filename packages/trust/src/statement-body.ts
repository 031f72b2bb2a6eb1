/**
 * Validation of statement bodies (attestations, reputation deltas, revocations): the one place
 * that says which bodies exist. Used on both sides of the wire: signStatement / encodeStatementBody
 * validate what this node signs, decodeStatement validates what it receives, with the same rules,
 * so a body this node signs is a body every node accepts.
 *
 * Every rule failure throws InvalidStatementError ("expected X, got Y"); bad limits throw
 * InvalidParametersError. See docs/TRUST.md, "Statements on the wire".
 */
import { describeValue, InvalidParametersError } from '@kos-mesh/interface'
import { CID } from 'multiformats/cid'
import { InvalidStatementError } from './errors.js'
import {
  ClaimType,
  OBSERVATIONS,
  RevocationScope,
  STATEMENT_VERSION,
  StatementKind,
  type AttestationBody,
  type DeltaBody,
  type Observation,
  type RevocationBody,
  type StatementBody,
  type StatementLimits,
} from './types.js'

/** Default largest encoded statement (the whole COSE_Sign1), bytes. */
export const MAX_STATEMENT_BYTES = 1024
/** Default largest clock skew accepted for `issued_at` in the future, ms (5 minutes). */
export const DEFAULT_MAX_FUTURE_SKEW_MS = 5 * 60_000
/** Default longest lifetime (`expires_at - issued_at`) of an attestation or delta, ms (365 days). */
export const DEFAULT_MAX_LIFETIME_MS = 365 * 86_400_000
/** Accepted delta window lengths, ms: 1 minute, 10 minutes, 1 hour, 1 day. */
export const DELTA_WINDOWS_MS: readonly number[] = Object.freeze([60_000, 600_000, 3_600_000, 86_400_000])
/** Largest count of one observation in a delta. */
export const MAX_DELTA_COUNT = 65_535
/** Longest `issuer` / `subject` DID, chars. */
export const MAX_STATEMENT_DID_LENGTH = 256
/** Longest `value` / `context`, chars. */
export const MAX_STATEMENT_NAME_LENGTH = 64
/** Longest revocation `reason`, Unicode code points. */
export const MAX_REASON_LENGTH = 256
/** Highest trust / endorsement `level`. */
export const MAX_LEVEL = 10

/** W3C DID Core 3.1 syntax: `did:<method>:<method-specific-id>` (a DID, not a DID URL). */
const IDCHAR = '(?:[A-Za-z0-9._-]|%[0-9A-Fa-f]{2})'
const DID_RE = new RegExp(`^did:[a-z0-9]+:(?:${IDCHAR}*:)*${IDCHAR}+$`)
/** Printable ASCII, no leading or trailing space. */
const NAME_RE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/
/** Control characters and lone surrogates, refused in free text. */
const BAD_TEXT_RE = /[\p{Cc}\p{Cs}]/u

const KINDS: readonly string[] = Object.values(StatementKind)
const CLAIMS: readonly string[] = Object.values(ClaimType)
const SCOPES: readonly string[] = Object.values(RevocationScope)
const FIELDS: Readonly<Record<StatementKind, readonly string[]>> = {
  attestation: ['kind', 'v', 'issuer', 'subject', 'issued_at', 'claim', 'level', 'value', 'context', 'expires_at'],
  delta: ['kind', 'v', 'issuer', 'subject', 'issued_at', 'window', 'window_ms', 'counts', 'expires_at'],
  revocation: ['kind', 'v', 'issuer', 'subject', 'issued_at', 'scope', 'statement', 'reason'],
}

const fail = (msg: string): never => { throw new InvalidStatementError(msg) }

// ------------------------------------------------------------------ limits

/** Limits with every default filled in. */
export type ResolvedStatementLimits = Readonly<Required<StatementLimits>>

const DEFAULT_STATEMENT_LIMITS: ResolvedStatementLimits = Object.freeze({
  maxStatementBytes: MAX_STATEMENT_BYTES,
  maxFutureSkewMs: DEFAULT_MAX_FUTURE_SKEW_MS,
  maxLifetimeMs: DEFAULT_MAX_LIFETIME_MS,
})

/** Fills in defaults; throws InvalidParametersError for a limit that is not a safe integer in range. */
export function resolveStatementLimits(limits?: StatementLimits): ResolvedStatementLimits {
  if (limits === undefined) return DEFAULT_STATEMENT_LIMITS
  if (limits === null || typeof limits !== 'object') throw new InvalidParametersError(`expected statement limits to be an object, got ${describeValue(limits)}`)
  const pick = (name: keyof StatementLimits, min: number): number => {
    const v = limits[name]
    if (v === undefined) return DEFAULT_STATEMENT_LIMITS[name]
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new InvalidParametersError(`expected ${name} to be an integer >= ${min}, got ${describeValue(v)}`)
    return v
  }
  return Object.freeze({
    maxStatementBytes: pick('maxStatementBytes', 1),
    maxFutureSkewMs: pick('maxFutureSkewMs', 0),
    maxLifetimeMs: pick('maxLifetimeMs', 1),
  })
}

// ------------------------------------------------------------------ field checks

/** True when `s` is a DID by the statements' syntax rule (at most 256 chars). */
export function isStatementDid(s: unknown): s is string {
  return typeof s === 'string' && s.length <= MAX_STATEMENT_DID_LENGTH && DID_RE.test(s)
}

/**
 * True when `s` is a statement id in its one canonical form: a CIDv1, codec dag-cbor (0x71),
 * multihash sha2-256 (0x12, 32 bytes), in lower-case base32 (`b...`).
 */
export function isStatementId(s: unknown): s is string {
  if (typeof s !== 'string' || s.length < 2 || s.length > 64 || s[0] !== 'b') return false
  let cid: CID
  try {
    cid = CID.parse(s)
  } catch {
    return false
  }
  return cid.version === 1 && cid.code === 0x71 && cid.multihash.code === 0x12 && cid.multihash.size === 32 && cid.toString() === s
}

function did(v: unknown, name: string): string {
  if (typeof v !== 'string') return fail(`expected ${name} to be a DID string, got ${describeValue(v)}`)
  if (v.length > MAX_STATEMENT_DID_LENGTH) fail(`expected ${name} of at most ${MAX_STATEMENT_DID_LENGTH} chars, got ${v.length}`)
  if (!DID_RE.test(v)) fail(`expected ${name} to be a DID (did:<method>:<method-specific-id>), got ${describeValue(v)}`)
  return v
}

function uint(v: unknown, name: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max || Object.is(v, -0)) {
    fail(`expected ${name} to be an integer in 0..${max}, got ${describeValue(v)}`)
  }
  return v as number
}

function name(v: unknown, field: string): string {
  if (typeof v !== 'string') return fail(`expected ${field} to be a string, got ${describeValue(v)}`)
  if (v.length < 1 || v.length > MAX_STATEMENT_NAME_LENGTH) fail(`expected ${field} of 1..${MAX_STATEMENT_NAME_LENGTH} chars, got ${v.length}`)
  if (!NAME_RE.test(v)) fail(`expected ${field} of printable ASCII without leading or trailing spaces, got ${describeValue(v)}`)
  return v
}

function oneOf<T extends string>(v: unknown, field: string, allowed: readonly string[]): T {
  if (typeof v !== 'string' || !allowed.includes(v)) fail(`expected ${field} to be one of ${allowed.join(', ')}, got ${describeValue(v)}`)
  return v as T
}

function absent(v: unknown, field: string, why: string): void {
  if (v !== undefined) fail(`expected no ${field} ${why}, got ${describeValue(v)}`)
}

function plainObject(v: unknown, what: string): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) return fail(`expected ${what} to be a map, got ${describeValue(v)}`)
  const proto = Object.getPrototypeOf(v) as unknown
  if (proto !== Object.prototype && proto !== null) fail(`expected ${what} to be a plain map, got an instance of another class`)
  return v as Record<string, unknown>
}

/** Own fields of `o` among `allowed` (a field whose value is `undefined` counts as absent); anything else is refused. */
function ownFields(o: Record<string, unknown>, allowed: readonly string[], what: string): Map<string, unknown> {
  const out = new Map<string, unknown>()
  for (const key of Object.keys(o)) {
    const v = o[key]
    if (!allowed.includes(key)) fail(`expected only the fields ${allowed.join(', ')} in ${what}, got ${describeValue(key)}`)
    if (v !== undefined) out.set(key, v)
  }
  return out
}

function lifetime(issuedAt: number, expiresAt: number, limits: ResolvedStatementLimits): void {
  if (expiresAt <= issuedAt) fail(`expected expires_at after issued_at ${issuedAt}, got ${expiresAt}`)
  if (expiresAt - issuedAt > limits.maxLifetimeMs) fail(`expected a lifetime of at most ${limits.maxLifetimeMs} ms, got ${expiresAt - issuedAt}`)
}

// ------------------------------------------------------------------ bodies

/**
 * Checks that `value` is a statement body by every rule of the format and returns a frozen copy
 * holding only its fields (fields set to `undefined` are dropped: they are absent on the wire).
 * Throws InvalidStatementError ("expected X, got Y") on the first bad field, unknown field,
 * missing field or broken cross-field rule. Time against a clock is not checked here (see
 * checkStatementTime); the lifetime bound is.
 */
export function validateStatementBody(value: unknown, limits?: StatementLimits): StatementBody {
  const lim = resolveStatementLimits(limits)
  const raw = plainObject(value, 'a statement body')
  const kind = oneOf<StatementKind>(Object.hasOwn(raw, 'kind') ? raw.kind : undefined, 'kind', KINDS)
  const f = ownFields(raw, FIELDS[kind], `a ${kind} statement`)
  const v = f.get('v')
  if (v !== STATEMENT_VERSION) fail(`expected v ${STATEMENT_VERSION}, got ${describeValue(v)}`)
  const issuer = did(f.get('issuer'), 'issuer')
  const subject = did(f.get('subject'), 'subject')
  const issuedAt = uint(f.get('issued_at'), 'issued_at')
  switch (kind) {
    case 'attestation': return attestation(f, issuer, subject, issuedAt, lim)
    case 'delta': return delta(f, issuer, subject, issuedAt, lim)
    default: return revocation(f, issuer, subject, issuedAt)
  }
}

function notSelf(issuer: string, subject: string, what: string): void {
  if (issuer === subject) fail(`expected ${what} about another DID than its issuer, got subject === issuer ${describeValue(issuer)}`)
}

function attestation(f: Map<string, unknown>, issuer: string, subject: string, issuedAt: number, lim: ResolvedStatementLimits): AttestationBody {
  notSelf(issuer, subject, 'an attestation')
  const claim = oneOf<ClaimType>(f.get('claim'), 'claim', CLAIMS)
  const hasLevel = claim === ClaimType.TRUST || claim === ClaimType.ENDORSE
  const hasValue = claim === ClaimType.CAPABILITY || claim === ClaimType.ROLE
  const level = hasLevel ? uint(f.get('level'), 'level', MAX_LEVEL) : undefined
  if (!hasLevel) absent(f.get('level'), 'level', `for claim ${claim}`)
  const value = hasValue ? name(f.get('value'), 'value') : undefined
  if (!hasValue) absent(f.get('value'), 'value', `for claim ${claim}`)
  const context = name(f.get('context'), 'context')
  const expiresAt = uint(f.get('expires_at'), 'expires_at')
  lifetime(issuedAt, expiresAt, lim)
  const out: AttestationBody = { kind: 'attestation', v: STATEMENT_VERSION, issuer, subject, issued_at: issuedAt, claim, context, expires_at: expiresAt }
  if (level !== undefined) out.level = level
  if (value !== undefined) out.value = value
  return Object.freeze(out)
}

function delta(f: Map<string, unknown>, issuer: string, subject: string, issuedAt: number, lim: ResolvedStatementLimits): DeltaBody {
  notSelf(issuer, subject, 'a delta')
  const windowMs = f.get('window_ms')
  if (typeof windowMs !== 'number' || !DELTA_WINDOWS_MS.includes(windowMs)) fail(`expected window_ms to be one of ${DELTA_WINDOWS_MS.join(', ')}, got ${describeValue(windowMs)}`)
  const window = uint(f.get('window'), 'window')
  if (window % (windowMs as number) !== 0) fail(`expected window to be a multiple of window_ms ${String(windowMs)}, got ${window}`)
  // observations are counted in a window before they are signed: a delta for a window not yet begun is nonsense
  if (issuedAt < window) fail(`expected issued_at >= window ${window} (a delta is signed during or after its window), got ${issuedAt}`)
  const rawCounts = plainObject(f.get('counts'), 'counts')
  const c = ownFields(rawCounts, OBSERVATIONS, 'counts')
  const counts: Partial<Record<Observation, number>> = {}
  for (const obs of OBSERVATIONS) {
    const n = c.get(obs)
    if (n !== undefined) counts[obs] = uint(n, `counts.${obs}`, MAX_DELTA_COUNT)
  }
  const expiresAt = uint(f.get('expires_at'), 'expires_at')
  lifetime(issuedAt, expiresAt, lim)
  return Object.freeze({
    kind: 'delta', v: STATEMENT_VERSION, issuer, subject, issued_at: issuedAt,
    window, window_ms: windowMs as number, counts: Object.freeze(counts), expires_at: expiresAt,
  })
}

function revocation(f: Map<string, unknown>, issuer: string, subject: string, issuedAt: number): RevocationBody {
  const scope = oneOf<RevocationScope>(f.get('scope'), 'scope', SCOPES)
  if (scope !== RevocationScope.KEY) notSelf(issuer, subject, `a revocation of scope ${scope} (only scope key may be about its issuer)`)
  const statement = f.get('statement')
  if (scope === RevocationScope.STATEMENT) {
    if (!isStatementId(statement)) fail(`expected statement to be a statement id (CIDv1 dag-cbor sha2-256, base32), got ${describeValue(statement)}`)
  } else {
    absent(statement, 'statement', `for scope ${scope}`)
  }
  const reason = f.get('reason')
  if (reason !== undefined) {
    if (typeof reason !== 'string') fail(`expected reason to be a string, got ${describeValue(reason)}`)
    const r = reason as string
    // A code point is 1 or 2 UTF-16 units: past 2 * MAX units it is too long whatever the count.
    const n = r.length > MAX_REASON_LENGTH * 2 ? r.length : [...r].length
    if (n > MAX_REASON_LENGTH) fail(`expected reason of at most ${MAX_REASON_LENGTH} chars, got ${n}`)
    if (BAD_TEXT_RE.test(r)) fail(`expected reason without control characters or lone surrogates, got ${describeValue(r)}`)
  }
  const out: RevocationBody = { kind: 'revocation', v: STATEMENT_VERSION, issuer, subject, issued_at: issuedAt, scope }
  if (statement !== undefined) out.statement = statement as string
  if (reason !== undefined) out.reason = reason as string
  return Object.freeze(out)
}
