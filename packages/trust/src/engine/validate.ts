/**
 * Semantic checks of statement bodies and anchors. The statement codec has checked the shape and
 * the signature already; these guard ranges so that nonsense (a level of 11, a negative count)
 * never reaches the math.
 */
import { InvalidParametersError, describeValue } from '@kos-mesh/interface'
import { InvalidStatementError } from '../errors.js'
import { ClaimType, OBSERVATIONS, RevocationScope, type Anchor, type SignedStatement } from '../types.js'
import { MAX_DELTA_COUNT } from './config.js'

const CLAIMS = new Set<string>(Object.values(ClaimType))
const SCOPES = new Set<string>(Object.values(RevocationScope))
const OBS = new Set<string>(OBSERVATIONS)
const MAX_DID = 2048

function fail(what: string, expected: string, got: unknown): never {
  throw new InvalidStatementError(`${what}: expected ${expected}, got ${describeValue(got)}`)
}

const isDid = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_DID
const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0
const isLevel = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 10

export function validateStatement(st: SignedStatement): void {
  if (st === null || typeof st !== 'object') fail('statement', 'an object', st)
  if (typeof st.id !== 'string' || st.id.length === 0 || st.id.length > 256) fail('statement id', 'a string of 1..256 chars', st.id)
  const b = st.body as unknown as Record<string, unknown>
  if (b === null || typeof b !== 'object') fail('statement body', 'an object', b)
  if (!isDid(b.issuer)) fail('issuer', 'a DID', b.issuer)
  if (!isDid(b.subject)) fail('subject', 'a DID', b.subject)
  if (!isTime(b.issued_at)) fail('issued_at', 'ms since the epoch', b.issued_at)
  switch (b.kind) {
    case 'attestation': {
      if (!CLAIMS.has(b.claim as string)) fail('claim', 'a ClaimType', b.claim)
      if (!isTime(b.expires_at)) fail('expires_at', 'ms since the epoch', b.expires_at)
      if (typeof b.context !== 'string' || b.context.length === 0 || b.context.length > 64) fail('context', 'a string of 1..64 chars', b.context)
      if (b.claim === 'trust' || b.claim === 'endorse') {
        if (!isLevel(b.level)) fail('level', 'an integer 0..10', b.level)
      } else if (b.claim === 'capability' || b.claim === 'role') {
        if (typeof b.value !== 'string' || b.value.length === 0 || b.value.length > 64) fail('value', 'a string of 1..64 chars', b.value)
      }
      return
    }
    case 'delta': {
      const windowMs = b.window_ms
      if (typeof windowMs !== 'number' || !Number.isInteger(windowMs) || windowMs <= 0) fail('window_ms', 'a positive integer', windowMs)
      if (!isTime(b.window) || (b.window as number) % windowMs !== 0) fail('window', `a multiple of window_ms (${windowMs})`, b.window)
      if (!isTime(b.expires_at)) fail('expires_at', 'ms since the epoch', b.expires_at)
      const counts = b.counts as Record<string, unknown>
      if (counts === null || typeof counts !== 'object') fail('counts', 'an object', counts)
      for (const [k, c] of Object.entries(counts)) {
        if (!OBS.has(k)) fail('counts', 'observation names', k)
        if (typeof c !== 'number' || !Number.isInteger(c) || c < 0 || c > MAX_DELTA_COUNT) fail(`counts.${k}`, `an integer 0..${MAX_DELTA_COUNT}`, c)
      }
      return
    }
    case 'revocation': {
      if (!SCOPES.has(b.scope as string)) fail('scope', 'a RevocationScope', b.scope)
      if (b.scope === 'statement' && (typeof b.statement !== 'string' || b.statement.length === 0)) fail('statement', 'the id of the revoked statement', b.statement)
      return
    }
    default:
      fail('kind', 'attestation, delta or revocation', b.kind)
  }
}

export function validateAnchor(a: Anchor, self: string): Anchor {
  if (a === null || typeof a !== 'object') throw new InvalidParametersError(`anchor: expected an object, got ${describeValue(a)}`)
  if (!isDid(a.did)) throw new InvalidParametersError(`anchor did: expected a DID, got ${describeValue(a.did)}`)
  if (a.did === self) throw new InvalidParametersError(`anchor did: expected a DID other than this node's, got ${a.did}`)
  if (!isLevel(a.level)) throw new InvalidParametersError(`anchor level: expected an integer 0..10, got ${describeValue(a.level)}`)
  if (a.validator !== undefined && typeof a.validator !== 'boolean') throw new InvalidParametersError(`anchor validator: expected a boolean, got ${describeValue(a.validator)}`)
  return a.validator === true ? { did: a.did, level: a.level, validator: true } : { did: a.did, level: a.level }
}
