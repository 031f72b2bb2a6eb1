/**
 * The JSON + JWS baseline of the envelope benchmark (bench/envelope-vs-jws.ts): a KLP message as a
 * JSON object signed with JWS (RFC 7515), EdDSA / Ed25519, in the two shapes agent protocols use.
 * Our own small implementation on node:crypto with cached KeyObjects (like the codec's native
 * path), cross-checked against `jose` in test/jws-interop.test.ts. Not published; bench and tests only.
 *
 * - **DIDComm v2 signed message** (`application/didcomm-signed+json`): JWS General JSON
 *   Serialization (RFC 7515 §7.2.1), attached payload = base64url of the JSON plaintext:
 *   `{"payload":"<b64url(JSON)>","signatures":[{"protected":"<b64url(header)>","signature":"<b64url(sig)>"}]}`,
 *   signing input = ASCII(`<protected>.<payload>`). The protected header is
 *   `{"alg":"EdDSA","kid":"<DID URL>","typ":"application/didcomm-signed+json"}`. DIDComm's own examples
 *   carry `kid` in the unprotected per-signature `header`; we put it in the protected header so the
 *   signature covers the key id, as KLP's COSE protected header does (it costs ~1/3 more bytes for the kid).
 * - **A2A style**: JSON-RPC 2.0 over HTTP; the signed object carries `signatures: [{protected,
 *   signature}]` (as A2A's signed AgentCards do), the JWS payload is detached and is the RFC 8785
 *   (JCS) canonical form of the object without `signatures`. The verifier re-canonicalizes what it
 *   parsed, since JSON bytes do not survive a parse/serialize round trip.
 *
 * The plaintext is the KLPMessage's fields (type, source, target, version, timestamp, payload,
 * metadata with message_id), with byte strings as base64url strings. JSON has no content address,
 * so `message_id` travels in the message (a random UUID, as DIDComm's `id`); KLP derives its id
 * from the body bytes (a SHA-256 on decode). The JSON side does no schema validation after
 * JSON.parse (KLP's decoder validates every field and parses the addresses).
 */
import { randomUUID, sign, verify } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { base58btc } from 'multiformats/bases/base58'
import type { CreateMessageInit } from '../src/index.js'

export const DIDCOMM_SIGNED_TYP = 'application/didcomm-signed+json'

const b64u = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url')
const b64uText = (s: string): string => Buffer.from(s, 'utf8').toString('base64url')
const unb64u = (s: string): Buffer => Buffer.from(s, 'base64url')

/** The did:key DID URL of an Ed25519 public key (`did:key:z6Mk…#z6Mk…`), the kid both envelopes carry. */
export function didKeyUrl(publicKey: Uint8Array): string {
  const mb = base58btc.encode(Uint8Array.from([0xed, 0x01, ...publicKey]))
  return `did:key:${mb}#${mb}`
}

/** A JSON value with byte strings replaced by base64url text (what a JSON envelope has to carry). */
export function jsonable(v: unknown): unknown {
  if (v instanceof Uint8Array) return b64u(v)
  if (v === null || typeof v !== 'object') return v
  if (Array.isArray(v)) return v.map(jsonable)
  const out: Record<string, unknown> = {}
  for (const k in v) out[k] = jsonable((v as Record<string, unknown>)[k])
  return out
}

/** The KLPMessage fields of `init` as a JSON object (defaults as createMessage fills them). */
export function jsonMessage(init: CreateMessageInit, messageId: string = randomUUID()): Record<string, unknown> {
  const metadata: Record<string, unknown> = {
    message_id: messageId,
    ttl: init.ttl ?? 300,
    priority: init.priority ?? 5,
    routing_hints: init.routing_hints ?? [],
    trust_requirements: init.trust_requirements ?? { minimum_trust_score: 0, required_endorsements: 0, verification_level: 'none' },
  }
  if (init.correlation_id !== undefined) metadata.correlation_id = init.correlation_id
  return {
    type: init.type,
    source: String(init.source),
    target: String(init.target),
    version: init.version ?? '1.0',
    timestamp: init.timestamp ?? Date.now(),
    payload: {
      content_type: 'application/json',
      data: jsonable(init.data),
      encryption: init.encryption ?? { enabled: false },
      compression: init.compression ?? { enabled: false },
    },
    metadata,
  }
}

/** The receiver's side of `jsonable` for the fields it knows are bytes (here `payload.data.blob`). */
export function reviveBytes(msg: Record<string, unknown>): Record<string, unknown> {
  const data = (msg.payload as { data?: unknown } | undefined)?.data
  if (data !== null && typeof data === 'object' && typeof (data as { blob?: unknown }).blob === 'string') {
    ;(data as { blob: unknown }).blob = new Uint8Array(unb64u((data as { blob: string }).blob))
  }
  return msg
}

/** Signs bytes; the bench swaps in a constant signature to measure the envelope alone. */
export type RawSign = (data: Uint8Array) => Uint8Array
/** Verifies bytes under a key id; unknown ids are false. */
export type RawVerify = (kid: string, data: Uint8Array, signature: Uint8Array) => boolean

export function nodeSigner(privateKey: KeyObject): RawSign {
  return (data) => sign(null, data, privateKey)
}
export function nodeVerifier(keys: ReadonlyMap<string, KeyObject>): RawVerify {
  return (kid, data, sig) => {
    const key = keys.get(kid)
    return key !== undefined && sig.length === 64 && verify(null, data, key, sig)
  }
}

export interface GeneralJws {
  payload: string
  signatures: Array<{ protected: string; signature: string; header?: Record<string, unknown> }>
}

/** Protected headers are the same for every message of a key: encoded once per kid, like the codec's COSE header. */
const headerCache = new Map<string, string>()
function protectedHeader(kid: string, typ: string | undefined): string {
  const key = `${typ ?? ''} ${kid}`
  let h = headerCache.get(key)
  if (h === undefined) {
    h = b64uText(JSON.stringify(typ === undefined ? { alg: 'EdDSA', kid } : { alg: 'EdDSA', kid, typ }))
    headerCache.set(key, h)
  }
  return h
}

class JwsError extends Error {}

function checkHeader(b64: string, typ: string | undefined): string {
  const h = JSON.parse(unb64u(b64).toString('utf8')) as Record<string, unknown>
  if (h.alg !== 'EdDSA') throw new JwsError(`expected alg EdDSA, got ${String(h.alg)}`)
  if (typeof h.kid !== 'string') throw new JwsError('expected a kid')
  if (typ !== undefined && h.typ !== typ) throw new JwsError(`expected typ ${typ}, got ${String(h.typ)}`)
  if (h.crit !== undefined) throw new JwsError('crit is not supported')
  return h.kid
}

// ------------------------------------------------------------------ DIDComm: General JSON, attached

/** DIDComm v2 signed message (JWS General JSON) of a JSON plaintext object; returns the wire text. */
export function signDidcomm(plaintext: unknown, kid: string, rawSign: RawSign): string {
  const payload = b64uText(JSON.stringify(plaintext))
  const prot = protectedHeader(kid, DIDCOMM_SIGNED_TYP)
  const sig = rawSign(Buffer.from(`${prot}.${payload}`, 'latin1'))
  return JSON.stringify({ payload, signatures: [{ protected: prot, signature: b64u(sig) }] } satisfies GeneralJws)
}

/**
 * Parses and verifies a DIDComm signed message: one signature, EdDSA, the DIDComm typ, a kid the
 * verifier knows. Returns the plaintext object and the kid. Throws on anything else.
 */
export function verifyDidcomm(wire: string, rawVerify: RawVerify): { message: Record<string, unknown>; kid: string } {
  const jws = JSON.parse(wire) as GeneralJws
  if (typeof jws.payload !== 'string' || !Array.isArray(jws.signatures) || jws.signatures.length !== 1) throw new JwsError('expected a General JWS with one signature')
  const s = jws.signatures[0]!
  if (typeof s.protected !== 'string' || typeof s.signature !== 'string') throw new JwsError('expected protected and signature')
  const kid = checkHeader(s.protected, DIDCOMM_SIGNED_TYP)
  if (!rawVerify(kid, Buffer.from(`${s.protected}.${jws.payload}`, 'latin1'), unb64u(s.signature))) throw new JwsError('signature does not verify')
  const message = JSON.parse(unb64u(jws.payload).toString('utf8')) as Record<string, unknown>
  return { message: reviveBytes(message), kid }
}

// ------------------------------------------------------------------ A2A: JCS, detached, JSON-RPC

/** RFC 8785 JSON Canonicalization Scheme for the JSON values this bench has (finite numbers, no -0 subtleties beyond JSON.stringify's). */
export function jcs(v: unknown): string {
  if (v === null || typeof v !== 'object') {
    if (typeof v === 'number' && !Number.isFinite(v)) throw new JwsError('JCS: non-finite number')
    return JSON.stringify(v)
  }
  if (Array.isArray(v)) return `[${v.map(jcs).join(',')}]`
  // keys sorted by UTF-16 code units (the default string order), members with undefined dropped
  const o = v as Record<string, unknown>
  const parts: string[] = []
  for (const k of Object.keys(o).sort()) if (o[k] !== undefined) parts.push(`${JSON.stringify(k)}:${jcs(o[k])}`)
  return `{${parts.join(',')}}`
}

/** A JSON-RPC 2.0 request whose params are the message plus its detached JWS over JCS(message). */
export function signA2a(message: Record<string, unknown>, kid: string, rawSign: RawSign, rpcId: string | number = 1): string {
  const prot = protectedHeader(kid, undefined)
  const sig = rawSign(Buffer.from(`${prot}.${b64uText(jcs(message))}`, 'latin1'))
  return JSON.stringify({ jsonrpc: '2.0', id: rpcId, method: 'message/send', params: { ...message, signatures: [{ protected: prot, signature: b64u(sig) }] } })
}

/** Parses a request from signA2a, re-canonicalizes the message and verifies its one signature. */
export function verifyA2a(wire: string, rawVerify: RawVerify): { message: Record<string, unknown>; kid: string } {
  const rpc = JSON.parse(wire) as { jsonrpc?: unknown; params?: Record<string, unknown> }
  if (rpc.jsonrpc !== '2.0' || rpc.params === null || typeof rpc.params !== 'object') throw new JwsError('expected a JSON-RPC 2.0 request with params')
  const { signatures, ...message } = rpc.params
  if (!Array.isArray(signatures) || signatures.length !== 1) throw new JwsError('expected one signature')
  const s = signatures[0] as { protected?: unknown; signature?: unknown }
  if (typeof s.protected !== 'string' || typeof s.signature !== 'string') throw new JwsError('expected protected and signature')
  const kid = checkHeader(s.protected, undefined)
  if (!rawVerify(kid, Buffer.from(`${s.protected}.${b64uText(jcs(message))}`, 'latin1'), unb64u(s.signature))) throw new JwsError('signature does not verify')
  return { message: reviveBytes(message), kid }
}
