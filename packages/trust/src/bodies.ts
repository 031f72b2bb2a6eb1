/**
 * The statement bodies this node signs, built from what an operator or a service asks for
 * (`attest`, `revoke`), with the caller's mistakes reported as InvalidParametersError before
 * anything is signed. Pure: the issuer and the time are given.
 */
import { InvalidParametersError, describeValue } from '@kos-mesh/interface'
import { ANY_CONTEXT, ClaimType, RevocationScope, STATEMENT_VERSION, type AttestInit, type AttestationBody, type RevocationBody, type RevokeInit } from './types.js'

export const DAY_MS = 86_400_000
/** Default lifetime of an attestation: 90 days. */
export const DEFAULT_ATTESTATION_TTL_MS = 90 * DAY_MS
const MAX_TTL_MS = 365 * DAY_MS
/** Default level of a `trust` or `endorse` attestation. */
export const DEFAULT_ATTESTATION_LEVEL = 7
/** Longest DID, capability, role or context name this node signs (bodies cap them too). */
const MAX_DID = 256
const MAX_NAME = 64
const MAX_REASON = 256

const CLAIMS: readonly string[] = Object.values(ClaimType)
const SCOPES: readonly string[] = Object.values(RevocationScope)

export function intIn(name: string, v: number | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new InvalidParametersError(`${name}: expected an integer in [${min}, ${max}], got ${String(v)}`)
  return v
}

export function isDid(v: unknown): v is string {
  return typeof v === 'string' && v.startsWith('did:') && v.length > 4 && v.length <= MAX_DID
}

function checkName(name: string, v: unknown): string {
  if (typeof v !== 'string' || v.length < 1 || v.length > MAX_NAME) throw new InvalidParametersError(`${name}: expected a string of 1..${MAX_NAME} characters, got ${typeof v === 'string' ? `${v.length} characters` : typeof v}`)
  return v
}

/** The attestation `issuer` signs for `init` at time `now` (ms). */
export function attestationBody(init: AttestInit, issuer: string, now: number): AttestationBody {
  if (init === null || typeof init !== 'object') throw new InvalidParametersError(`init: expected an AttestInit, got ${init === null ? 'null' : typeof init}`)
  if (!isDid(init.subject)) throw new InvalidParametersError(`subject: expected a DID of at most ${MAX_DID} characters, got ${describeValue(init.subject)}`)
  const claim = init.claim ?? ClaimType.ENDORSE
  if (!CLAIMS.includes(claim)) throw new InvalidParametersError(`claim: expected one of ${CLAIMS.join(', ')}, got ${JSON.stringify(String(claim).slice(0, 40))}`)
  const leveled = claim === ClaimType.TRUST || claim === ClaimType.ENDORSE
  const named = claim === ClaimType.CAPABILITY || claim === ClaimType.ROLE
  if (!leveled && init.level !== undefined) throw new InvalidParametersError(`level: expected none for claim ${claim}, got ${String(init.level)}`)
  const level = leveled ? intIn('level', init.level, DEFAULT_ATTESTATION_LEVEL, 0, 10) : undefined
  if (named) checkName('value', init.value)
  else if (init.value !== undefined) throw new InvalidParametersError(`value: expected none for claim ${claim}, got a value`)
  const context = init.context === undefined ? ANY_CONTEXT : checkName('context', init.context)
  const ttl = intIn('ttlMs', init.ttlMs, DEFAULT_ATTESTATION_TTL_MS, 1, MAX_TTL_MS)
  return {
    v: STATEMENT_VERSION,
    kind: 'attestation',
    issuer,
    subject: init.subject,
    issued_at: now,
    claim,
    ...(level === undefined ? {} : { level }),
    ...(named ? { value: init.value as string } : {}),
    context,
    expires_at: now + ttl,
  }
}

/** The revocation `issuer` signs for `init` at time `now` (ms). */
export function revocationBody(init: RevokeInit, issuer: string, now: number): RevocationBody {
  if (init === null || typeof init !== 'object') throw new InvalidParametersError(`init: expected a RevokeInit, got ${init === null ? 'null' : typeof init}`)
  if (!isDid(init.subject)) throw new InvalidParametersError(`subject: expected a DID of at most ${MAX_DID} characters, got ${describeValue(init.subject)}`)
  const scope = init.scope ?? (init.statement === undefined ? RevocationScope.ATTESTATIONS : RevocationScope.STATEMENT)
  if (!SCOPES.includes(scope)) throw new InvalidParametersError(`scope: expected one of ${SCOPES.join(', ')}, got ${JSON.stringify(String(scope).slice(0, 40))}`)
  if (scope === RevocationScope.STATEMENT) {
    if (typeof init.statement !== 'string' || init.statement.length === 0 || init.statement.length > 128) throw new InvalidParametersError(`statement: expected a statement id for scope statement, got ${typeof init.statement}`)
  } else if (init.statement !== undefined) {
    throw new InvalidParametersError(`statement: expected none for scope ${scope}, got a statement id`)
  }
  if (init.reason !== undefined && (typeof init.reason !== 'string' || init.reason.length > MAX_REASON)) {
    throw new InvalidParametersError(`reason: expected a string of at most ${MAX_REASON} characters, got ${typeof init.reason === 'string' ? `${init.reason.length} characters` : typeof init.reason}`)
  }
  return {
    v: STATEMENT_VERSION,
    kind: 'revocation',
    issuer,
    subject: init.subject,
    issued_at: now,
    scope,
    ...(scope === RevocationScope.STATEMENT ? { statement: init.statement as string } : {}),
    ...(init.reason === undefined ? {} : { reason: init.reason }),
  }
}
