/**
 * Payloads of the trust service's messages (the `data` of a KLP TRUST_ATTESTATION or
 * REPUTATION_DELTA message, DAG-CBOR on the wire through the router), as plain values:
 *
 * - `{ op: 'push', statements }`: one-way, to a neighbour: encoded signed statements (COSE_Sign1
 *   bytes) the receiver verifies, keeps and passes on. Attestations and revocations travel in
 *   TRUST_ATTESTATION, deltas in REPUTATION_DELTA.
 * - `{ op: 'query', subject?, issuer?, kind?, since?, limit? }`: a request for the statements the
 *   receiver holds that match (the `StatementQuery` of the engine).
 * - `{ op: 'answer', statements }`: the response to a query.
 *
 * Every parse is strict: unknown fields, wrong types, out-of-range numbers, too many statements or
 * too many bytes throw `InvalidTrustMessageError` before anything is kept. The statements' own
 * bytes are checked later (`verifyStatement`); here only their count and size.
 */
import type { KLPValue } from '@kos-mesh/interface'
import { InvalidTrustMessageError } from './errors.js'
import { StatementKind, type StatementQuery } from './types.js'

/** The path the trust service answers on: `klp://<authority>/trust`. */
export const TRUST_PATH = '/trust'

/** Reason code of a rejected malformed trust message (crosses the wire, stable). */
export const INVALID_TRUST_MESSAGE = 'invalid_trust_message'

/** Reason code of a push whose statements were all rejected (forged, malformed, expired). */
export const INVALID_STATEMENTS = 'invalid_statements'

/** The payload of a trust message: statements pushed, a query, or the statements that answer it. */
export type TrustPayload =
  | { op: 'push'; statements: Uint8Array[] }
  | { op: 'query'; query: StatementQuery }
  | { op: 'answer'; statements: Uint8Array[] }

/** Bounds of the trust service's messages, checked before anything is decoded further. */
export interface TrustProtocolLimits {
  /** Most statements in one push or answer (and the cap on a query's `limit`). Default 64. */
  maxStatementsPerMessage: number
  /**
   * Largest statement accepted in a message, bytes. Default 4,096: a coarse outer cap; the
   * statement limits (`maxStatementBytes`, default 1,024) apply per statement when verifying.
   */
  maxStatementBytes: number
  /** Most statement bytes in one message, in all. Default 128 KiB (well under a router frame). */
  maxMessageBytes: number
  /** Longest DID in a query. Default 512. */
  maxDidLength: number
}

/** The default bounds of trust messages (each documented on TrustProtocolLimits). */
export const DEFAULT_TRUST_PROTOCOL_LIMITS: Readonly<TrustProtocolLimits> = Object.freeze({
  maxStatementsPerMessage: 64,
  maxStatementBytes: 4096,
  maxMessageBytes: 128 * 1024,
  maxDidLength: 512,
})

const KINDS: readonly string[] = Object.values(StatementKind)

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)
}

function shown(got: unknown): string {
  if (got === null) return 'null'
  if (got === undefined) return 'undefined'
  if (Array.isArray(got)) return `an array of ${got.length}`
  if (got instanceof Uint8Array) return `${got.length} bytes`
  if (typeof got === 'string') return got.length > 40 ? `a string of ${got.length} characters` : JSON.stringify(got)
  if (typeof got === 'object') return 'an object'
  return `${typeof got} ${String(got)}`
}

function fail(what: string, got: unknown): never {
  throw new InvalidTrustMessageError(`expected ${what}, got ${shown(got)}`)
}

function onlyKeys(obj: Record<string, unknown>, keys: readonly string[]): void {
  for (const k of Object.keys(obj)) {
    if (!keys.includes(k)) throw new InvalidTrustMessageError(`expected only fields ${keys.join(', ')}, got field ${JSON.stringify(k.slice(0, 40))}`)
  }
}

/** Checks a list of statement bytes against the count and size bounds. */
function statementList(v: unknown, limits: TrustProtocolLimits): Uint8Array[] {
  if (!Array.isArray(v)) fail('statements as an array of bytes', v)
  if (v.length > limits.maxStatementsPerMessage) fail(`at most ${limits.maxStatementsPerMessage} statements`, v)
  let total = 0
  const out: Uint8Array[] = []
  for (const s of v as unknown[]) {
    if (!(s instanceof Uint8Array)) fail('a statement as bytes', s)
    if (s.length === 0) fail('a non-empty statement', s)
    if (s.length > limits.maxStatementBytes) fail(`a statement of at most ${limits.maxStatementBytes} bytes`, s)
    total += s.length
    if (total > limits.maxMessageBytes) throw new InvalidTrustMessageError(`expected at most ${limits.maxMessageBytes} statement bytes in a message, got more than ${total - s.length}`)
    out.push(s)
  }
  return out
}

function did(name: string, v: unknown, limits: TrustProtocolLimits): string {
  if (typeof v !== 'string' || !v.startsWith('did:') || v.length > limits.maxDidLength) fail(`${name} as a DID of at most ${limits.maxDidLength} characters`, v)
  return v
}

function parseQuery(data: Record<string, unknown>, limits: TrustProtocolLimits): StatementQuery {
  onlyKeys(data, ['op', 'subject', 'issuer', 'kind', 'since', 'limit'])
  const q: StatementQuery = {}
  if (data.subject !== undefined) q.subject = did('subject', data.subject, limits)
  if (data.issuer !== undefined) q.issuer = did('issuer', data.issuer, limits)
  if (data.kind !== undefined) {
    if (typeof data.kind !== 'string' || !KINDS.includes(data.kind)) fail(`kind as one of ${KINDS.join(', ')}`, data.kind)
    q.kind = data.kind as StatementKind
  }
  if (data.since !== undefined) {
    if (typeof data.since !== 'number' || !Number.isSafeInteger(data.since) || data.since < 0) fail('since as an integer >= 0 (ms since the epoch)', data.since)
    q.since = data.since
  }
  if (data.limit !== undefined) {
    if (typeof data.limit !== 'number' || !Number.isInteger(data.limit) || data.limit < 1 || data.limit > limits.maxStatementsPerMessage) {
      fail(`limit as an integer in [1, ${limits.maxStatementsPerMessage}]`, data.limit)
    }
    q.limit = data.limit
  }
  return q
}

/**
 * Parses an untrusted payload `data` value (as the router decoded it). Throws
 * `InvalidTrustMessageError` for any malformed shape or exceeded bound.
 */
export function parseTrustPayload(data: unknown, limits: TrustProtocolLimits = DEFAULT_TRUST_PROTOCOL_LIMITS): TrustPayload {
  if (!isObj(data)) fail('a trust payload object', data)
  switch (data.op) {
    case 'push':
      onlyKeys(data, ['op', 'statements'])
      return { op: 'push', statements: statementList(data.statements, limits) }
    case 'answer':
      onlyKeys(data, ['op', 'statements'])
      return { op: 'answer', statements: statementList(data.statements, limits) }
    case 'query':
      return { op: 'query', query: parseQuery(data, limits) }
    default:
      return fail('op push, query or answer', data.op)
  }
}

/**
 * The payload value of a trust message (absent optional query fields omitted). Checks the same
 * bounds as `parseTrustPayload`, so this node never sends what a peer would refuse.
 */
export function trustPayloadValue(p: TrustPayload, limits: TrustProtocolLimits = DEFAULT_TRUST_PROTOCOL_LIMITS): KLPValue {
  switch (p.op) {
    case 'push':
    case 'answer':
      return { op: p.op, statements: statementList(p.statements, limits) }
    case 'query': {
      const v: Record<string, KLPValue> = { op: 'query' }
      const q = p.query
      if (q.subject !== undefined) v.subject = q.subject
      if (q.issuer !== undefined) v.issuer = q.issuer
      if (q.kind !== undefined) v.kind = q.kind
      if (q.since !== undefined) v.since = q.since
      if (q.limit !== undefined) v.limit = q.limit
      parseQuery(v, limits)
      return v
    }
    default:
      return fail('op push, query or answer', (p as { op?: unknown }).op)
  }
}

/**
 * Splits statements into messages of at most `maxStatementsPerMessage` statements and
 * `maxMessageBytes` bytes, keeping their order. Statements larger than `maxStatementBytes` (or
 * than `maxMessageBytes`) are left out: a peer would refuse the whole message.
 */
export function batchStatements(statements: readonly Uint8Array[], limits: TrustProtocolLimits = DEFAULT_TRUST_PROTOCOL_LIMITS): Uint8Array[][] {
  const out: Uint8Array[][] = []
  let cur: Uint8Array[] = []
  let bytes = 0
  for (const s of statements) {
    if (s.length === 0 || s.length > limits.maxStatementBytes || s.length > limits.maxMessageBytes) continue
    if (cur.length >= limits.maxStatementsPerMessage || bytes + s.length > limits.maxMessageBytes) {
      out.push(cur)
      cur = []
      bytes = 0
    }
    cur.push(s)
    bytes += s.length
  }
  if (cur.length > 0) out.push(cur)
  return out
}
