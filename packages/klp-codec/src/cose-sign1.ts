/**
 * The one COSE_Sign1 (RFC 9052) envelope of kos-mesh, for any payload and any external AAD:
 *   signed        = #6.18([ protected: bstr, unprotected: {}, payload: bstr, signature: bstr .size 64 ])
 *   protected     = bstr .cbor { 1 (alg): -8 (EdDSA), 4 (kid): bstr (UTF-8 of the signer's key id) }
 *   signing input = Sig_structure = [ "Signature1", protected, external_aad: bstr, payload ]
 * KLP messages use it with an empty external_aad (the message-*.ts modules keep their own optimized
 * writer and reader of the same bytes); trust statements, agent-migration objects and vector-mesh
 * entries each use it with their own external_aad, so a signature made for one domain never
 * verifies in another. Writing and strict, bounded decoding live here; verifying is the caller's
 * (it knows how to resolve the kid).
 */
import { describeValue, DecodeError, InvalidParametersError, InvalidSignatureError, LimitExceededError, throwIfAborted, type AbortOptions, type Signer } from '@kos-mesh/interface'

// Local copies of the message modules' constants (message-*.ts import nothing from here, so their hot path is unchanged).
const SIGNATURE_LENGTH = 64
const TAG_HEAD = 0xc0 | 18
const ARRAY4 = 0x84
const EMPTY_MAP = 0xa0
/** `a2 01 27 04`: the protected map's head, `1: -8` and the kid label. */
const PROTECTED_LEAD = Uint8Array.of(0xa2, 0x01, 0x27, 0x04)

/** A COSE_Sign1 is not in the one form `encodeCoseSign1` writes (or the input is not bytes). */
export class InvalidCoseSign1Error extends DecodeError {
  static override readonly code: string = 'ERR_INVALID_COSE_SIGN1'
  override name = 'InvalidCoseSign1Error'
  override readonly code: string = 'ERR_INVALID_COSE_SIGN1'
}

/** A COSE_Sign1 (to decode, or being signed) is longer than its `maxBytes`. */
export class CoseSign1TooLargeError extends LimitExceededError {
  static override readonly code: string = 'ERR_COSE_SIGN1_TOO_LARGE'
  override name = 'CoseSign1TooLargeError'
  override readonly code: string = 'ERR_COSE_SIGN1_TOO_LARGE'
}

/** A Signer passed to `signCoseSign1` returned something else than 64 bytes. */
export class CoseSign1SignerError extends InvalidSignatureError {
  static override readonly code: string = 'ERR_COSE_SIGN1_SIGNER'
  override name = 'CoseSign1SignerError'
  override readonly code: string = 'ERR_COSE_SIGN1_SIGNER'
}

const utf8 = new TextEncoder()
const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** The shortest CBOR head of `major` with argument `n` (n < 2^32). */
function head(major: number, n: number): number[] {
  const m = major << 5
  if (n < 24) return [m | n]
  if (n < 0x100) return [m | 24, n]
  if (n < 0x10000) return [m | 25, n >>> 8, n & 0xff]
  if (n < 0x100000000) return [m | 26, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]
  throw new InvalidParametersError(`expected an item shorter than 2^32 bytes, got ${n}`)
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

/** `84 6a "Signature1"`: the head of the Sig_structure and its context string. */
const SIG_PREFIX = concat([[ARRAY4], head(3, 10), utf8.encode('Signature1')])

const aadBytes = (aad: string | Uint8Array | undefined): Uint8Array => aad === undefined ? new Uint8Array(0) : typeof aad === 'string' ? utf8.encode(aad) : aad

/**
 * The protected header of `kid` as signed and sent: the byte string (head included) holding
 * `{1: -8, 4: h'<UTF-8 of kid>'}` = `a2 01 27 04 <bstr kid>`.
 */
export function coseSign1Protected(kid: string): Uint8Array {
  if (typeof kid !== 'string') throw new InvalidParametersError(`expected the kid to be a string, got ${describeValue(kid)}`)
  return bstr(concat([PROTECTED_LEAD, bstr(utf8.encode(kid))]))
}

/**
 * The bytes a COSE_Sign1 signs: `["Signature1", protected, external_aad, payload]`. `protectedOrKid`
 * is the key id, or the protected header as sent (a byte string, head included, e.g. a decoded
 * envelope's `protectedBytes`); `payload` is the payload's content; `externalAad` is the AAD's
 * content, as text (its UTF-8 is signed) or bytes, empty when absent.
 */
export function coseSign1SigningInput(protectedOrKid: string | Uint8Array, payload: Uint8Array, externalAad?: string | Uint8Array): Uint8Array {
  const prot = typeof protectedOrKid === 'string' ? coseSign1Protected(protectedOrKid) : protectedOrKid
  return concat([SIG_PREFIX, prot, bstr(aadBytes(externalAad)), bstr(payload)])
}

/** The parts of a COSE_Sign1 as `encodeCoseSign1` takes them. */
export interface CoseSign1Parts {
  /** The signer's key id (its UTF-8 goes in the protected header). */
  kid: string
  /** The payload's content (it travels as a byte string). */
  payload: Uint8Array
  /** The 64-byte Ed25519 signature. */
  signature: Uint8Array
}

/** The tagged COSE_Sign1 `d2 84 <protected> a0 <payload bstr> 58 40 <signature>`. */
export function encodeCoseSign1(parts: CoseSign1Parts): Uint8Array {
  const { kid, payload, signature } = parts
  if (!(payload instanceof Uint8Array)) throw new InvalidParametersError(`expected the payload to be a Uint8Array, got ${describeValue(payload)}`)
  if (!(signature instanceof Uint8Array) || signature.length !== SIGNATURE_LENGTH) throw new InvalidParametersError(`expected a ${SIGNATURE_LENGTH}-byte signature, got ${describeValue(signature)}`)
  return concat([[TAG_HEAD, ARRAY4], coseSign1Protected(kid), [EMPTY_MAP], bstr(payload), head(2, SIGNATURE_LENGTH), signature])
}

/** Options of `signCoseSign1`. */
export interface SignCoseSign1Options extends AbortOptions {
  /** The external AAD, as text (its UTF-8 is signed) or bytes; default empty (a KLP message's). */
  externalAad?: string | Uint8Array
  /** Largest envelope, bytes: a longer one throws CoseSign1TooLargeError before the signer runs. */
  maxBytes?: number
}

/**
 * Signs `payload` (its content) with `signer` under `externalAad` and returns the COSE_Sign1 bytes,
 * kid = `signer.keyId`. Throws InvalidParametersError for a non-signer, CoseSign1TooLargeError
 * beyond `maxBytes` (before signing), CoseSign1SignerError when the signer does not return 64
 * bytes, and whatever the signer throws (an AbortError when `signal` aborts).
 */
export async function signCoseSign1(payload: Uint8Array, signer: Signer, options?: SignCoseSign1Options): Promise<Uint8Array> {
  if (signer === null || typeof signer !== 'object' || typeof signer.sign !== 'function' || typeof signer.keyId !== 'string') {
    throw new InvalidParametersError(`expected a Signer, got ${describeValue(signer)}`)
  }
  if (!(payload instanceof Uint8Array)) throw new InvalidParametersError(`expected the payload to be a Uint8Array, got ${describeValue(payload)}`)
  const prot = coseSign1Protected(signer.keyId)
  const payloadItem = bstr(payload)
  const size = 2 + prot.length + 1 + payloadItem.length + 2 + SIGNATURE_LENGTH
  const max = options?.maxBytes
  if (max !== undefined && size > max) throw new CoseSign1TooLargeError(`expected a COSE_Sign1 of at most ${max} bytes, got ${size}`)
  const sig: unknown = await signer.sign(concat([SIG_PREFIX, prot, bstr(aadBytes(options?.externalAad)), payloadItem]))
  throwIfAborted(options?.signal)
  if (!(sig instanceof Uint8Array) || sig.length !== SIGNATURE_LENGTH) {
    throw new CoseSign1SignerError(`expected the signer to return ${SIGNATURE_LENGTH} bytes, got ${describeValue(sig)}`)
  }
  return concat([[TAG_HEAD, ARRAY4], prot, [EMPTY_MAP], payloadItem, head(2, SIGNATURE_LENGTH), sig])
}

/** Bounds of `decodeCoseSign1`. */
export interface DecodeCoseSign1Options {
  /** Largest input, bytes: a longer one throws CoseSign1TooLargeError before any parsing. */
  maxBytes: number
  /** Longest kid, UTF-8 bytes (default: bounded by `maxBytes` only). */
  maxKidBytes?: number
  /** Shortest kid, UTF-8 bytes (default 0). */
  minKidBytes?: number
}

/** A strictly decoded COSE_Sign1 (not verified): views into the input bytes, no copies. */
export interface DecodedCoseSign1 {
  /** The signer's key id (the kid, UTF-8 checked). */
  readonly kid: string
  /** The payload's content. */
  readonly payload: Uint8Array
  /** The 64-byte signature. */
  readonly signature: Uint8Array
  /** The protected header as received (a byte string, head included). */
  readonly protectedBytes: Uint8Array
  /** The Sig_structure over the received bytes under `externalAad` (text or bytes, default empty). */
  signingInput(externalAad?: string | Uint8Array): Uint8Array
}

const bad = (msg: string): never => { throw new InvalidCoseSign1Error(msg) }

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

/** Reads a byte string at `pos` ending by `end`; returns [start of its content, end]. */
function readBstr(b: Uint8Array, pos: number, end: number, what: string): [number, number] {
  const [n, start] = readHead(b.subarray(0, end), pos, 2, what)
  if (n > end - start) bad(`expected ${what} of ${n} bytes, got ${end - start} left at offset ${start}`)
  return [start, start + n]
}

/**
 * Strictly decodes a COSE_Sign1 in exactly the form `encodeCoseSign1` writes: tag 18, the 4-item
 * array, the protected header `{1: -8, 4: kid}` (deterministic, nothing else), an empty
 * unprotected map, the payload, a 64-byte signature, no trailing bytes; every head shortest.
 * Bounded: more than `maxBytes` throws CoseSign1TooLargeError before parsing; any other form, a
 * kid outside `minKidBytes..maxKidBytes` or not UTF-8 throws InvalidCoseSign1Error. Does not
 * verify: check `signature` over `signingInput(externalAad)` with the kid's key.
 */
export function decodeCoseSign1(bytes: Uint8Array, options: DecodeCoseSign1Options): DecodedCoseSign1 {
  if (!(bytes instanceof Uint8Array)) bad(`expected a COSE_Sign1 as a Uint8Array, got ${describeValue(bytes)}`)
  if (bytes.length > options.maxBytes) throw new CoseSign1TooLargeError(`expected a COSE_Sign1 of at most ${options.maxBytes} bytes, got ${bytes.length}`)
  const b = bytes
  if (b[0] !== TAG_HEAD) bad(`expected a COSE_Sign1 (CBOR tag 18, byte 0xd2), got ${b.length === 0 ? 'no bytes' : `byte 0x${(b[0] as number).toString(16)}`}`)
  if (b[1] !== ARRAY4) bad(`expected the COSE_Sign1 array of 4 items (byte 0x84), got ${b.length < 2 ? 'the end of the input' : `byte 0x${(b[1] as number).toString(16)}`}`)
  const [pStart, pEnd] = readBstr(b, 2, b.length, 'the protected header as a byte string')
  for (let i = 0; i < PROTECTED_LEAD.length; i++) {
    if (pStart + i >= pEnd || b[pStart + i] !== PROTECTED_LEAD[i]) bad('expected the protected header {1: -8 (EdDSA), 4: kid} (a2 01 27 04 ...), got another header map')
  }
  const [kStart, kEnd] = readBstr(b, pStart + PROTECTED_LEAD.length, pEnd, 'the kid as a byte string')
  if (kEnd !== pEnd) bad(`expected the protected header to end with the kid, got ${pEnd - kEnd} more byte(s)`)
  const kidLen = kEnd - kStart
  const minKid = options.minKidBytes ?? 0
  const maxKid = options.maxKidBytes ?? Number.MAX_SAFE_INTEGER
  if (kidLen < minKid || kidLen > maxKid) bad(`expected a kid of ${minKid}..${maxKid} bytes, got ${kidLen}`)
  let kid = ''
  try {
    kid = fatalUtf8.decode(b.subarray(kStart, kEnd))
  } catch (err) {
    throw new InvalidCoseSign1Error('expected the kid to be UTF-8, got invalid bytes', { cause: err })
  }
  if (b[pEnd] !== EMPTY_MAP) bad(`expected an empty unprotected header map (byte 0xa0), got ${pEnd < b.length ? `byte 0x${(b[pEnd] as number).toString(16)}` : 'the end of the input'}`)
  const payloadAt = pEnd + 1
  const [bStart, bEnd] = readBstr(b, payloadAt, b.length, 'the payload as a byte string')
  const [sigLen, sStart] = readHead(b, bEnd, 2, 'the signature as a byte string')
  if (sigLen !== SIGNATURE_LENGTH) bad(`expected a signature of exactly ${SIGNATURE_LENGTH} bytes, got ${sigLen}`)
  const left = b.length - sStart
  if (left !== SIGNATURE_LENGTH) bad(left < SIGNATURE_LENGTH ? `expected ${SIGNATURE_LENGTH} signature bytes, got ${left}` : `expected the COSE_Sign1 to end after the signature, got ${left - SIGNATURE_LENGTH} trailing byte(s)`)
  const protectedBytes = b.subarray(2, pEnd)
  const payloadItem = b.subarray(payloadAt, bEnd)
  return {
    kid,
    payload: b.subarray(bStart, bEnd),
    signature: b.subarray(sStart),
    protectedBytes,
    signingInput: (externalAad) => concat([SIG_PREFIX, protectedBytes, bstr(aadBytes(externalAad)), payloadItem]),
  }
}
