/**
 * Signed statements on the wire: encoding, ids, signing, strict bounded decoding and verification.
 *
 * A statement is a standard COSE_Sign1 (RFC 9052), exactly like a KLP message envelope
 * (klp-codec's message-sign.ts) but under its own domain separation:
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
 * The envelope itself (writing, strict bounded decoding, the Sig_structure) is klp-codec's
 * (`signCoseSign1`, `decodeCoseSign1`); this module binds it to STATEMENT_AAD and our errors.
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
import { CoseSign1SignerError, CoseSign1TooLargeError, InvalidCoseSign1Error, decodeCoseSign1, decodeValue, encodeValue, signCoseSign1, type DecodedCoseSign1 } from '@kos-mesh/klp-codec'
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

/** Fragment of a DID URL (RFC 3986): pchar / "/" / "?". */
const FRAGMENT_RE = /^(?:[A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2}){1,256}$/
/** Bounds of the DAG-CBOR decoder on a payload (already at most maxStatementBytes long). */
const BODY_LIMITS = { maxDepth: 3, maxItems: 64, maxStringLength: 1024, maxBytesLength: 1024 }

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
  let bytes: Uint8Array
  try {
    bytes = await signCoseSign1(encoded, signer, { externalAad: STATEMENT_AAD, maxBytes: lim.maxStatementBytes, ...(options?.signal === undefined ? {} : { signal: options.signal }) })
  } catch (err) {
    if (err instanceof CoseSign1TooLargeError) throw new StatementTooLargeError(err.message.replace('a COSE_Sign1', 'a statement'), { cause: err })
    if (err instanceof CoseSign1SignerError) throw new InvalidStatementSignatureError(err.message, { cause: err })
    throw err
  }
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
  let d: DecodedCoseSign1
  try {
    d = decodeCoseSign1(bytes, { maxBytes: lim.maxStatementBytes })
  } catch (err) {
    if (err instanceof CoseSign1TooLargeError) throw new StatementTooLargeError(err.message.replace('a COSE_Sign1', 'a statement'), { cause: err })
    if (err instanceof InvalidCoseSign1Error) throw new InvalidStatementError(err.message, { cause: err })
    throw err
  }
  const payload = d.payload
  const kid = d.kid
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
    signingInput: d.signingInput(STATEMENT_AAD),
    signature: d.signature.slice(),
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
