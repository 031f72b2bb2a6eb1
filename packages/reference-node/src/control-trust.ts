/**
 * The trust endpoints of the control API: operator anchors (`/v1/trust`, `/v1/untrust`),
 * attestations and revocations signed by the node (`/v1/attest`, `/v1/revoke`), the reputation
 * report of a DID (`/v1/reputation`) and the statements the node holds (`/v1/statements`).
 */
import { field, HttpError, intField, intParam } from './control-fields.js'
import type { KosMeshNode } from './node.js'
import { statementView } from './trust.js'

const CLAIMS = ['trust', 'endorse', 'capability', 'role', 'key']
const SCOPES = ['statement', 'attestations', 'key']
const KINDS = ['attestation', 'delta', 'revocation']
/** Largest `limit` of `GET /v1/statements`. */
export const MAX_STATEMENTS_LISTED = 10_000
/** Longest attestation lifetime accepted (`ttlMs`, 365 days). */
export const MAX_TTL_MS = 365 * 86_400_000

function oneOf(body: unknown, name: string, allowed: readonly string[]): string | undefined {
  const v = field<string | undefined>(body, name, 'string', true)
  if (v !== undefined && !allowed.includes(v)) throw new HttpError(400, 'ERR_INVALID_PARAMETERS', `expected "${name}" to be one of ${allowed.join(', ')}, got ${JSON.stringify(v.slice(0, 40))}`)
  return v
}

function didParam(query: unknown, name: string): string | undefined {
  const v = (query as Record<string, unknown>)[name]
  if (v === undefined) return undefined
  if (typeof v !== 'string' || !v.startsWith('did:') || v.length > 2048) throw new HttpError(400, 'ERR_INVALID_PARAMETERS', `expected "${name}" to be a DID, got ${JSON.stringify(String(v).slice(0, 80))}`)
  return v
}

type Route = (body: unknown, signal: AbortSignal) => Promise<unknown>

/** The trust routes, keyed `METHOD /path` (GET routes get the query parameters as their body). */
export function trustRoutes(node: KosMeshNode): Record<string, Route> {
  return {
    'GET /v1/trust': async () => ({ trusted: node.trustStore.list() }),
    'POST /v1/trust': async (body, signal) => {
      const subject = field<string>(body, 'subject', 'string')
      const level = intField(body, 'level', 0, 10) ?? 5
      const validator = field<boolean | undefined>(body, 'validator', 'boolean', true) === true
      return { trusted: await node.trust(subject, level, { signal, validator }) }
    },
    'POST /v1/untrust': async (body, signal) => {
      const subject = field<string>(body, 'subject', 'string')
      return { untrusted: await node.untrust(subject, { signal }) }
    },
    'POST /v1/attest': async (body, signal) => {
      const subject = field<string>(body, 'subject', 'string')
      const claim = oneOf(body, 'claim', CLAIMS)
      const level = intField(body, 'level', 0, 10)
      const value = field<string | undefined>(body, 'value', 'string', true)
      const context = field<string | undefined>(body, 'context', 'string', true)
      const ttlMs = intField(body, 'ttlMs', 1, MAX_TTL_MS)
      const s = await node.attest(
        {
          subject,
          ...(claim === undefined ? {} : { claim: claim as 'endorse' }),
          ...(level === undefined ? {} : { level }),
          ...(value === undefined ? {} : { value }),
          ...(context === undefined ? {} : { context }),
          ...(ttlMs === undefined ? {} : { ttlMs }),
        },
        { signal },
      )
      return { attested: statementView(s) }
    },
    'POST /v1/revoke': async (body, signal) => {
      const self = field<boolean | undefined>(body, 'self', 'boolean', true) === true
      const subject = field<string | undefined>(body, 'subject', 'string', true)
      const statement = field<string | undefined>(body, 'statement', 'string', true)
      const scope = oneOf(body, 'scope', SCOPES)
      const reason = field<string | undefined>(body, 'reason', 'string', true)
      const confirm = field<boolean | undefined>(body, 'confirm', 'boolean', true) === true
      if (self && subject !== undefined) throw new HttpError(400, 'ERR_INVALID_PARAMETERS', 'expected "self" or "subject", got both')
      if (self && scope !== undefined && scope !== 'key') throw new HttpError(400, 'ERR_INVALID_PARAMETERS', `expected scope key with "self", got ${scope}`)
      const s = await node.revoke(
        {
          ...(self ? { subject: node.did, scope: 'key' as const } : subject === undefined ? {} : { subject }),
          ...(scope === undefined ? {} : { scope: scope as 'key' }),
          ...(statement === undefined ? {} : { statement }),
          ...(reason === undefined ? {} : { reason }),
          confirm,
        },
        { signal },
      )
      return { revoked: statementView(s) }
    },
    'GET /v1/reputation': async (query) => {
      const subject = field<string>(query, 'subject', 'string')
      return { reputation: node.reputation(subject) }
    },
    'GET /v1/statements': async (query) => {
      const subject = didParam(query, 'subject')
      const issuer = didParam(query, 'issuer')
      const kind = oneOf(query, 'kind', KINDS)
      const since = intParam(query, 'since', 0, Number.MAX_SAFE_INTEGER)
      const limit = intParam(query, 'limit', 1, MAX_STATEMENTS_LISTED) ?? 256
      const list = node.statements({
        ...(subject === undefined ? {} : { subject }),
        ...(issuer === undefined ? {} : { issuer }),
        ...(kind === undefined ? {} : { kind: kind as 'attestation' }),
        ...(since === undefined ? {} : { since }),
        limit,
      })
      return { statements: list.map(statementView) }
    },
  }
}
