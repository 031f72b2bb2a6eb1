/**
 * Signed statements on the wire: encoding, ids, signing, strict bounded decoding and verification.
 *
 * A statement is a standard COSE_Sign1 (RFC 9052), exactly like a KLP message envelope
 * (klp-codec's message.ts) but under its own domain separation:
 *   statement     = #6.18([ protected: bstr, unprotected: {}, payload: bstr, signature: bstr .size 64 ])
 *   protected     = bstr .cbor { 1 (alg): -8 (EdDSA), 4 (kid): bstr (UTF-8 of the issuer's key id) }
 *   payload       = the body (attestation, delta or revocation), exact DAG-CBOR
 *   signing input = Sig_structure = [ "Signature1", protected, external_aad, payload ]
 *   external_aad  = UTF-8 of "kos-mesh/trust/v1" (STATEMENT_AAD)
 *   id            = CIDv1(dag-cbor 0x71, sha2-256 of the payload bytes), base32
 *
 * Domain separation: a KLP message signs the same Sig_structure with an empty external_aad (h''),
 * a statement with the 17 bytes of STATEMENT_AAD. The signed bytes of the two always differ (at the
 * external_aad item), so a signature made for a message never verifies as a statement's, nor the
 * other way round, even under the same key over the same payload bytes.
 *
 * The id names the body (the payload bytes), not the signature: the same body signed twice has one
 * id. Any COSE library verifies a statement with the issuer's Ed25519 key and STATEMENT_AAD as its
 * external AAD; @ipld/dag-cbor encodes the body to the very payload bytes.
 */
import { createHash } from 'node:crypto'
import {
  describeValue,
  didOfKeyId,
  InvalidParametersError,
  KosMeshError,
  systemClock,
  throwIfAborted,
  type AbortOptions,
  type KLPValue,
  type SignatureVerifier,
  type Signer,
} from '@kos-mesh/interface'
import { COSE_ALG_EDDSA, COSE_HEADER_ALG, COSE_HEADER_KID, COSE_SIGN1_TAG, SIGNATURE_LENGTH, SIGNING_CONTEXT, decodeValue, encodeValue } from '@kos-mesh/klp-codec'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { InvalidStatementError, InvalidStatementSignatureError, StatementExpiredError, StatementTooLargeError } from './errors.js'
import { resolveStatementLimits, validateStatementBody, type ResolvedStatementLimits } from './statement-body.js'
import type { SignedStatement, StatementBody, StatementLimits } from './types.js'

export {
  validateStatementBody,
  resolveStatementLimits,
  isStatementDid,
  isStatementId,
  MAX_STATEMENT_BYTES,
  DEFAULT_MAX_FUTURE_SKEW_MS,
  DEFAULT_MAX_LIFETIME_MS,
  DELTA_WINDOWS_MS,
  MAX_DELTA_COUNT,
  MAX_STATEMENT_DID_LENGTH,
  MAX_STATEMENT_NAME_LENGTH,
  MAX_REASON_LENGTH,
  MAX_LEVEL,
} from './statement-body.js'
export type { ResolvedStatementLimits } from './statement-body.js'

/** The external_aad of a statement's Sig_structure, as text (the signed bytes are its UTF-8). */
export const STATEMENT_AAD = 'kos-mesh/trust/v1'
/** Multicodec of a statement id (dag-cbor). */
export const STATEMENT_ID_CODEC = 0x71
/** Multihash of a statement id (sha2-256, full 32 bytes). */
export const STATEMENT_ID_HASH = 0x12
/** Longest key id (`kid`), bytes: a DID of at most 256 chars, `#`, a fragment of at most 256 chars. */
export const MAX_KID_LENGTH = 513

const utf8 = new TextEncoder()
const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
/** The parts of the Sig_structure that never change: the array head and "Signature1"; then the AAD item. */
const SIG_PREFIX = concat([[0x84], textItem(SIGNING_CONTEXT)])
const AAD_ITEM = bstr(utf8.encode(STATEMENT_AAD))
/** `a2 01 27 04`: the protected map's head, `1: -8` and the kid label. */
const PROTECTED_LEAD = Uint8Array.from([0xa0 | 2, COSE_HEADER_ALG, 0x20 | (-1 - COSE_ALG_EDDSA), COSE_HEADER_KID])
const TAG_HEAD = 0xc0 | COSE_SIGN1_TAG
const ARRAY4 = 0x84
const EMPTY_MAP = 0xa0
/** Fragment of a DID URL (RFC 3986): pchar / "/" / "?". */
const FRAGMENT_RE = /^(?:[A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2}){1,256}$/
/** Bounds of the DAG-CBOR decoder on a payload (already at most maxStatementBytes long). */
const BODY_LIMITS = { maxDepth: 3, maxItems: 64, maxStringLength: 1024, maxBytesLength: 1024 }

// ------------------------------------------------------------------ small CBOR writers

/** The shortest CBOR head of `major` with argument `n` (n < 2^32). */
function head(major: number, n: number): number[] {
  const m = major << 5
  if (n < 24) return [m | n]
  if (n < 0x100) return [m | 24, n]
  if (n < 0x10000) return [m | 25, n >>> 8, n & 0xff]
  return [m | 26, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]
}

function concat(parts: ReadonlyArray<Uint8Array | readonly number[]>): Uint8Array {
  let n = 0
  for (const p of parts) n += p.length
  const out = new Uint8Array(n)
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}

function bstr(b: Uint8Array): Uint8Array { return concat([head(2, b.length), b]) }
function textItem(s: string): Uint8Array { const b = utf8.encode(s); return concat([head(3, b.length), b]) }

/** The protected header as sent and signed: bstr .cbor `{1: -8, 4: h'<UTF-8 of kid>'}`. */
function protectedBstr(kid: string): Uint8Array {
  return bstr(concat([PROTECTED_LEAD, bstr(utf8.encode(kid))]))
}

/** `["Signature1", protected, h'<STATEMENT_AAD>', payload]`, from the two byte strings with their heads. */
function sigStructure(prot: Uint8Array, payload: Uint8Array): Uint8Array {
  return concat([SIG_PREFIX, prot, AAD_ITEM, payload])
}

// ------------------------------------------------------------------ ids, kids, bodies

/** The id of a statement: CIDv1 (dag-cbor 0x71, sha2-256) of its payload bytes, base32 (`bafyrei...`). */
export function statementId(payload: Uint8Array): string {
  if (!(payload instanceof Uint8Array)) throw new InvalidParametersError(`expected the payload to be a Uint8Array, got ${describeValue(payload)}`)
  const digest = createHash('sha256').update(payload).digest()
  return CID.createV1(STATEMENT_ID_CODEC, createDigest(STATEMENT_ID_HASH, new Uint8Array(digest))).toString()
}

/**
 * Checks a key id against the issuer: `kid` is the issuer's DID, or that DID followed by `#` and a
 * fragment of 1..256 URI fragment chars; for a did:key issuer the fragment, when present, is the
 * method-specific id (`did:key:z6Mk...#z6Mk...`, the only key a did:key has).
 */
function checkKid(kid: string, issuer: string): void {
  if (kid.length < 1 || kid.length > MAX_KID_LENGTH) throw new InvalidStatementError(`expected a kid of 1..${MAX_KID_LENGTH} chars, got ${kid.length}`)
  const did = didOfKeyId(kid)
  if (did !== issuer) throw new InvalidStatementError(`expected the kid to name a key of the issuer ${describeValue(issuer)}, got ${describeValue(kid)}`)
  if (did === kid) return
  const fragment = kid.slice(did.length + 1)
  if (!FRAGMENT_RE.test(fragment)) throw new InvalidStatementError(`expected the kid's fragment of 1..256 URI fragment chars, got ${describeValue(fragment)}`)
  if (did.startsWith('did:key:') && fragment !== did.slice('did:key:'.length)) {
    throw new InvalidStatementError(`expected the kid of a did:key to be ${describeValue(`${did}#${did.slice(8)}`)}, got ${describeValue(kid)}`)
  }
}

/** Validates a body and returns its payload: the exact DAG-CBOR of the body (optional fields absent). */
export function encodeStatementBody(body: StatementBody, limits?: StatementLimits): Uint8Array {
  return encodeValue(validateStatementBody(body, limits) as unknown as KLPValue)
}

// ------------------------------------------------------------------ sign

/** Options of signing a statement: the bounds it must fit. */
export interface SignStatementOptions extends AbortOptions {
  limits?: StatementLimits
}

/**
 * Validates `body`, signs it with `signer` and returns the statement (id, frozen body, bytes).
 * Throws InvalidStatementError for a bad body or when the signer's key id is not a key of
 * `body.issuer`, StatementTooLargeError when the encoding would exceed maxStatementBytes (checked
 * before signing), InvalidParametersError for a non-signer, InvalidStatementSignatureError when
 * the signer does not return 64 bytes.
 */
export async function signStatement<B extends StatementBody>(body: B, signer: Signer, options?: SignStatementOptions): Promise<SignedStatement<B>> {
  throwIfAborted(options?.signal)
  if (signer === null || typeof signer !== 'object' || typeof signer.sign !== 'function' || typeof signer.keyId !== 'string') {
    throw new InvalidParametersError(`expected a Signer, got ${describeValue(signer)}`)
  }
  const lim = resolveStatementLimits(options?.limits)
  const b = validateStatementBody(body, lim) as B
  const kid = signer.keyId
  checkKid(kid, b.issuer)
  const encoded = encodeValue(b as unknown as KLPValue)
  const payload = bstr(encoded)
  const prot = protectedBstr(kid)
  const size = 2 + prot.length + 1 + payload.length + 2 + SIGNATURE_LENGTH
  if (size > lim.maxStatementBytes) throw new StatementTooLargeError(`expected a statement of at most ${lim.maxStatementBytes} bytes, got ${size}`)
  const sig: unknown = await signer.sign(sigStructure(prot, payload))
  throwIfAborted(options?.signal)
  if (!(sig instanceof Uint8Array) || sig.length !== SIGNATURE_LENGTH) {
    throw new InvalidStatementSignatureError(`expected the signer to return ${SIGNATURE_LENGTH} bytes, got ${describeValue(sig)}`)
  }
  const bytes = concat([[TAG_HEAD, ARRAY4], prot, [EMPTY_MAP], payload, head(2, SIGNATURE_LENGTH), sig])
  return Object.freeze({ id: statementId(encoded), body: b, bytes })
}

// ------------------------------------------------------------------ decode

/** What decodeStatement returns: the checked body, its id, and what the signature must cover. */
export interface DecodedStatement {
  /** The validated, frozen body. */
  readonly body: StatementBody
  /** CIDv1 (dag-cbor, sha2-256) of the payload bytes, base32. */
  readonly id: string
  /** The issuer's key id from the protected header (`didOfKeyId(kid) === body.issuer`). */
  readonly kid: string
  /** The Sig_structure `["Signature1", protected, h'kos-mesh/trust/v1', payload]` over the received bytes. */
  readonly signingInput: Uint8Array
  /** The 64-byte signature (a copy). */
  readonly signature: Uint8Array
}

const bad = (msg: string): never => { throw new InvalidStatementError(msg) }

/** Reads a shortest-form definite head of major type `major` at `pos`; returns [argument, position after the head]. */
function readHead(b: Uint8Array, pos: number, major: number, what: string): [number, number] {
  if (pos >= b.length) return bad(`expected ${what}, got the end of the input at offset ${pos}`)
  const first = b[pos] as number
  if (first >> 5 !== major) return bad(`expected ${what} (CBOR major type ${major}), got major type ${first >> 5} at offset ${pos}`)
  const ai = first & 0x1f
  if (ai < 24) return [ai, pos + 1]
  const size = ai === 24 ? 1 : ai === 25 ? 2 : ai === 26 ? 4 : 0
  if (size === 0) return bad(`expected ${what} with a definite length below 2^32, got additional info ${ai} at offset ${pos}`)
  if (pos + 1 + size > b.length) return bad(`expected ${what}, got a truncated head at offset ${pos}`)
  let n = 0
  for (let i = 1; i <= size; i++) n = n * 256 + (b[pos + i] as number)
  if (n < (size === 1 ? 24 : size === 2 ? 0x100 : 0x10000)) return bad(`expected ${what} in the shortest CBOR head, got a ${size + 1}-byte head for ${n} at offset ${pos}`)
  return [n, pos + 1 + size]
}

/** Reads a byte string at `pos`; returns [start of its content, end]. */
function readBstr(b: Uint8Array, pos: number, what: string): [number, number] {
  const [n, start] = readHead(b, pos, 2, what)
  if (n > b.length - start) bad(`expected ${what} of ${n} bytes, got ${b.length - start} left at offset ${start}`)
  return [start, start + n]
}

/**
 * Strictly decodes a statement without checking its signature or the time. Bounded: input longer
 * than `limits.maxStatementBytes` (default 1,024) throws StatementTooLargeError before any parsing.
 * Requires exactly the form signStatement writes (CBOR tag 18, the 4-item array, the protected
 * header `{1: -8, 4: kid}` in deterministic form, an empty unprotected map, a DAG-CBOR payload that
 * is a valid body, a 64-byte signature, no trailing bytes) and a kid of the issuer; anything else
 * throws InvalidStatementError.
 */
export function decodeStatement(bytes: Uint8Array, limits?: StatementLimits): DecodedStatement {
  const lim = resolveStatementLimits(limits)
  if (!(bytes instanceof Uint8Array)) bad(`expected a statement as a Uint8Array, got ${describeValue(bytes)}`)
  if (bytes.length > lim.maxStatementBytes) throw new StatementTooLargeError(`expected a statement of at most ${lim.maxStatementBytes} bytes, got ${bytes.length}`)
  const b = bytes
  if (b[0] !== TAG_HEAD) bad(`expected a COSE_Sign1 (CBOR tag ${COSE_SIGN1_TAG}, byte 0xd2), got ${b.length === 0 ? 'no bytes' : `byte 0x${(b[0] as number).toString(16)}`}`)
  if (b[1] !== ARRAY4) bad(`expected the COSE_Sign1 array of 4 items (byte 0x84), got ${b.length < 2 ? 'the end of the input' : `byte 0x${(b[1] as number).toString(16)}`}`)
  // protected: bstr .cbor {1: -8, 4: kid}
  const [pStart, pEnd] = readBstr(b, 2, 'the protected header as a byte string')
  for (let i = 0; i < PROTECTED_LEAD.length; i++) {
    if (b[pStart + i] !== PROTECTED_LEAD[i] || pStart + i >= pEnd) bad('expected the protected header {1: -8 (EdDSA), 4: kid} (a2 01 27 04 ...), got another header map')
  }
  const [kStart, kEnd] = readBstr(b.subarray(0, pEnd), pStart + PROTECTED_LEAD.length, 'the kid as a byte string')
  if (kEnd !== pEnd) bad(`expected the protected header to end with the kid, got ${pEnd - kEnd} more byte(s)`)
  let kid = ''
  try {
    kid = fatalUtf8.decode(b.subarray(kStart, kEnd))
  } catch (err) {
    throw new InvalidStatementError('expected the kid to be UTF-8, got invalid bytes', { cause: err })
  }
  // unprotected: {}
  if (b[pEnd] !== EMPTY_MAP) bad(`expected an empty unprotected header map (byte 0xa0), got ${pEnd < b.length ? `byte 0x${(b[pEnd] as number).toString(16)}` : 'the end of the input'}`)
  // payload: the body, as DAG-CBOR
  const payloadAt = pEnd + 1
  const [bStart, bEnd] = readBstr(b, payloadAt, 'the payload as a byte string')
  // signature: bstr of 64 bytes, then the end
  const [sig, sEnd] = readHead(b, bEnd, 2, 'the signature as a byte string')
  if (sig !== SIGNATURE_LENGTH) bad(`expected a signature of exactly ${SIGNATURE_LENGTH} bytes, got ${sig}`)
  const left = b.length - sEnd
  if (left !== SIGNATURE_LENGTH) bad(left < SIGNATURE_LENGTH ? `expected ${SIGNATURE_LENGTH} signature bytes, got ${left}` : `expected the statement to end after the signature, got ${left - SIGNATURE_LENGTH} trailing byte(s)`)
  const payload = b.subarray(bStart, bEnd)
  let raw: unknown
  try {
    raw = decodeValue(payload, { limits: BODY_LIMITS })
  } catch (err) {
    if (!(err instanceof KosMeshError)) throw err
    throw new InvalidStatementError(`expected the payload to be one DAG-CBOR body, got ${err.name}: ${err.message}`, { cause: err })
  }
  const body = validateStatementBody(raw, lim)
  checkKid(kid, body.issuer)
  return Object.freeze({
    body,
    id: statementId(payload),
    kid,
    signingInput: sigStructure(b.subarray(2, pEnd), b.subarray(payloadAt, bEnd)),
    signature: b.slice(sEnd, sEnd + SIGNATURE_LENGTH),
  })
}

// ------------------------------------------------------------------ time, verify

/**
 * Throws StatementExpiredError when an attestation or delta has expired (`expires_at <= now`), or
 * when any statement claims `issued_at > now + maxFutureSkewMs`. Revocations never expire.
 */
export function checkStatementTime(body: StatementBody, now: number, limits?: StatementLimits): void {
  if (typeof now !== 'number' || !Number.isFinite(now)) throw new InvalidParametersError(`expected now to be a finite number, got ${describeValue(now)}`)
  const lim: ResolvedStatementLimits = resolveStatementLimits(limits)
  if (body.kind !== 'revocation' && body.expires_at <= now) {
    throw new StatementExpiredError(`expected a ${body.kind} valid at ${now}, got one that expired at ${body.expires_at}`)
  }
  if (body.issued_at > now + lim.maxFutureSkewMs) {
    throw new StatementExpiredError(`expected issued_at at most ${lim.maxFutureSkewMs} ms after ${now}, got ${body.issued_at - now} ms ahead`)
  }
}

/** Options of verifying a signed statement: the time it is checked at and the bounds it must fit. */
export interface VerifyStatementOptions extends AbortOptions {
  /** Current time, ms since the epoch (pass the node clock's time). Default `Date.now()`. */
  now?: number
  limits?: StatementLimits
}

/**
 * Decodes a statement (decodeStatement), checks it against the time (checkStatementTime: the cheap
 * check, before the signature), then its signature through `verifier.verifySignature(kid,
 * signingInput, signature)`. Returns the statement with a copy of `bytes`. Throws
 * StatementTooLargeError, InvalidStatementError, StatementExpiredError,
 * InvalidStatementSignatureError (the verifier said no), or whatever the verifier throws (e.g.
 * UnknownKeyError when the kid cannot be resolved, AbortError).
 */
export async function verifyStatement(bytes: Uint8Array, verifier: SignatureVerifier, options?: VerifyStatementOptions): Promise<SignedStatement> {
  throwIfAborted(options?.signal)
  if (verifier === null || typeof verifier !== 'object' || typeof verifier.verifySignature !== 'function') {
    throw new InvalidParametersError(`expected a SignatureVerifier, got ${describeValue(verifier)}`)
  }
  const now = options?.now ?? systemClock.now()
  const d = decodeStatement(bytes, options?.limits)
  checkStatementTime(d.body, now, options?.limits)
  const ok = await verifier.verifySignature(d.kid, d.signingInput, d.signature, options?.signal === undefined ? undefined : { signal: options.signal })
  throwIfAborted(options?.signal)
  if (ok !== true) throw new InvalidStatementSignatureError(`expected a valid signature by ${d.kid.slice(0, 120)} on statement ${d.id}, got an invalid one`)
  return Object.freeze({ id: d.id, body: d.body, bytes: bytes.slice() })
}
