/**
 * decodeMessage: strict, bounded decoding of a signed message (a tagged COSE_Sign1), reading the
 * protected header (and its kid, through a small cache) and the body in place, keeping views of
 * the received bytes for verifyMessage and encodeMessage.
 */
import { describeValue, InvalidParametersError } from '@kos-mesh/interface'
import type { KLPMessage } from '@kos-mesh/interface'
import { Reader, compareBytes } from './cbor-decode.js'
import {
  DuplicateKeyError, InvalidFieldError, MessageTooLargeError, MissingFieldError, NonCanonicalCborError,
  TrailingBytesError, UnknownFieldError,
} from './errors.js'
import { resolveLimits } from './limits.js'
import type { CodecLimits } from './limits.js'
import { BODY_FIELDS, BODY_REQUIRED, fastBody, fields, readMetadata, readPayload, wireAddress } from './message-body-decode.js'
import { messageIdFromBody } from './message-id.js'
import {
  COSE_ALG_EDDSA, COSE_HEADER_ALG, COSE_HEADER_KID, COSE_SIGN1_TAG, MAX_SIGNER_LENGTH, MAX_VERSION_LENGTH,
  SIGNATURE_LENGTH, VERSION_RE, checkString, checkType, checkUint, failField,
} from './message-schema.js'
import { MAX_SIGNER_BYTES, bodies } from './message-sign.js'
import type { Signed } from './message-sign.js'

/** Direct-mapped cache of recently decoded ASCII key ids (routers see the same signers again and again). */
const KID_CACHE_SIZE = 256
const KID_CACHE_MAX_LENGTH = 512
const kidCache: Array<string | undefined> = new Array<string | undefined>(KID_CACHE_SIZE).fill(undefined)
const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** The signer key id in `b[start..start+len)` (the kid's UTF-8), validated like any signer. */
function kidString(b: Uint8Array, start: number, len: number): string {
  if (len < 1 || len > MAX_SIGNER_BYTES) failField(`expected a kid (signer key id) of 1..${MAX_SIGNER_BYTES} bytes, got ${len}`)
  let s: string | undefined
  if (len <= KID_CACHE_MAX_LENGTH) {
    let h = len
    let ascii = true
    for (let i = start; i < start + len; i++) {
      const c = b[i] as number
      if (c > 0x7f) { ascii = false; break }
      h = (Math.imul(h, 31) + c) | 0
    }
    if (ascii) {
      const slot = (h ^ (h >>> 15)) & (KID_CACHE_SIZE - 1)
      const hit = kidCache[slot]
      if (hit !== undefined && hit.length === len) {
        let i = 0
        while (i < len && hit.charCodeAt(i) === b[start + i]) i++
        if (i === len) return hit
      }
      s = String.fromCharCode.apply(null, b.subarray(start, start + len) as unknown as number[])
      kidCache[slot] = checkString(s, 'signer', 1, MAX_SIGNER_LENGTH, failField)
      return s
    }
  }
  try {
    s = fatalUtf8.decode(b.subarray(start, start + len))
  } catch (err) {
    throw new InvalidFieldError('expected the kid (signer key id) to be UTF-8', { cause: err })
  }
  return checkString(s, 'signer', 1, MAX_SIGNER_LENGTH, failField)
}

/**
 * Reads the protected header map in `bytes[start..end)`: exactly `{1: -8, 4: kid}` in deterministic
 * order; returns the signer key id (the kid as UTF-8).
 */
function readProtected(bytes: Uint8Array, limits: Readonly<CodecLimits>, start: number, end: number): string {
  const b = bytes
  // The form every encoder here writes: a2 01 27 04 <bstr kid> (kid <= 23 bytes is too short for a DID URL: 58 / 59 heads).
  if (end - start > 6 && b[start] === 0xa2 && b[start + 1] === 0x01 && b[start + 2] === 0x27 && b[start + 3] === 0x04) {
    const h = b[start + 4] as number
    const kidLen = h === 0x58 ? (b[start + 5] as number) : h === 0x59 && end - start > 7 ? ((b[start + 5] as number) << 8) | (b[start + 6] as number) : -1
    const kidStart = start + (h === 0x58 ? 6 : 7)
    if ((h === 0x58 ? kidLen >= 24 : kidLen >= 0x100) && kidStart + kidLen === end) return kidString(b, kidStart, kidLen)
  }
  // Anything else: parsed generically, for the precise error (or a short kid).
  const pr = new Reader(bytes, limits, start, end)
  const n = pr.head()
  if (pr.type() !== 5) throw new InvalidFieldError(`expected the protected header to be a map, got major type ${pr.type()}`)
  const count = pr.takeItems(n, 2, 'a map')
  let alg = false
  let kid: string | undefined
  let prevStart = -1
  let prevEnd = -1
  for (let i = 0; i < count; i++) {
    const keyStart = pr.pos
    const label = pr.head()
    const t = pr.type()
    const keyEnd = pr.pos
    if (t !== 0 && t !== 1) throw new UnknownFieldError(`expected only the integer header labels 1 (alg) and 4 (kid) in the protected header, got a label of major type ${t}`)
    if (prevStart >= 0) {
      const c = compareBytes(b, prevStart, prevEnd, keyStart, keyEnd)
      if (c === 0) throw new DuplicateKeyError(`expected unique header labels, got ${String(label)} twice in the protected header`)
      if (c > 0) throw new NonCanonicalCborError('expected the protected header labels in deterministic order (1, then 4)')
    }
    prevStart = keyStart
    prevEnd = keyEnd
    if (t === 0 && label === COSE_HEADER_ALG) {
      const v = pr.head()
      if (pr.type() !== 1 || v !== -1 - COSE_ALG_EDDSA) {
        throw new InvalidFieldError(`expected alg ${COSE_ALG_EDDSA} (EdDSA), got ${pr.type() === 1 && typeof v === 'number' ? -1 - v : pr.type() === 0 ? String(v) : `major type ${pr.type()}`}`)
      }
      alg = true
    } else if (t === 0 && label === COSE_HEADER_KID) {
      const kn = pr.head()
      if (pr.type() !== 2) throw new InvalidFieldError(`expected the kid (signer key id) as a byte string, got major type ${pr.type()}`)
      const len = pr.length(kn, 'the kid')
      kid = kidString(b, pr.pos, len)
      pr.pos += len
    } else {
      throw new UnknownFieldError(`expected only the header parameters 1 (alg) and 4 (kid) in the protected header, got label ${t === 0 ? String(label) : String(-1 - Number(label))}`)
    }
  }
  if (pr.pos !== end) throw new TrailingBytesError(`expected one map in the protected header, got ${end - pr.pos} trailing byte(s)`)
  if (!alg) throw new MissingFieldError(`expected the header parameter 1 (alg) in the protected header, got none`)
  if (kid === undefined) throw new MissingFieldError(`expected the header parameter 4 (kid) in the protected header, got none`)
  return kid
}

/**
 * Strictly decodes a signed message (encodeMessage's output): a tagged COSE_Sign1 with the
 * protected header `{1: -8, 4: kid}`, an empty unprotected header, the DAG-CBOR body as payload
 * and a 64-byte signature. Rejects malformed or non-canonical CBOR, other COSE headers, unknown or
 * missing fields and wrong types with typed errors, bounded by `limits`. The result is frozen.
 *
 * The result references `bytes` (no copy): byte strings in it (`payload.data` when it is one, an
 * encryption nonce, `signature`...) are views into the input, and the message keeps views of the
 * received protected header and body, so verifyMessage checks the signature over the received
 * bytes without re-encoding and encodeMessage copies them. Do not modify `bytes` afterwards (a
 * change would show in the message and in what verifyMessage checks), and `.slice()` a byte string
 * you keep beyond the message if the input is large (a view keeps the whole input buffer alive).
 */
export function decodeMessage(bytes: Uint8Array, options?: { limits?: Partial<CodecLimits> }): KLPMessage {
  if (!(bytes instanceof Uint8Array)) throw new InvalidParametersError(`expected a Uint8Array, got ${describeValue(bytes)}`)
  const limits = resolveLimits(options?.limits)
  if (bytes.length > limits.maxMessageSize) {
    throw new MessageTooLargeError(`expected a message of at most ${limits.maxMessageSize} bytes, got ${bytes.length}`)
  }
  const r = new Reader(bytes, limits)
  r.freeze = true
  const tag = r.head()
  if (r.type() !== 6 || tag !== COSE_SIGN1_TAG) {
    throw new InvalidFieldError(`expected a COSE_Sign1 (CBOR tag ${COSE_SIGN1_TAG}), got major type ${r.type()} with argument ${String(tag)}`)
  }
  const n = r.head()
  if (r.type() !== 4 || n !== 4) throw new InvalidFieldError(`expected the COSE_Sign1 array of 4 items, got major type ${r.type()} with argument ${String(n)}`)
  // protected: bstr .cbor header map
  const pn = r.head()
  if (r.type() !== 2) throw new InvalidFieldError(`expected the protected header as a byte string, got major type ${r.type()}`)
  const protStart = r.headStart
  const pLen = r.length(pn, 'the protected header')
  const pStart = r.pos
  const pEnd = pStart + pLen
  const signer = readProtected(bytes, limits, pStart, pEnd)
  r.pos = pEnd
  // unprotected: an empty map
  const un = r.head()
  if (r.type() !== 5) throw new InvalidFieldError(`expected the unprotected header as a map, got major type ${r.type()}`)
  if (un !== 0) throw new UnknownFieldError(`expected an empty unprotected header, got ${String(un)} parameter(s)`)
  // payload: the body, attached
  const payloadStart = r.pos
  const bn = r.head()
  if (r.type() !== 2) throw new InvalidFieldError(`expected the payload (body) as a byte string, got major type ${r.type()}`)
  const bodyLen = r.length(bn, 'the body')
  const bodyStart = r.pos
  const bodyEnd = bodyStart + bodyLen
  // Decode the body in place, bounded to its byte string: the schema-directed fast path for a
  // well-formed body, else the generic decoder plus field checks (which report the error).
  const fast = fastBody(bytes, limits, bodyStart, bodyEnd)
  let raw: unknown
  if (fast === undefined) {
    const br = new Reader(bytes, limits, bodyStart, bodyEnd)
    br.freeze = true
    raw = br.value(0)
    if (br.pos !== bodyEnd) throw new TrailingBytesError(`expected one CBOR item in the body, got ${bodyEnd - br.pos} trailing byte(s)`)
  }
  r.pos = bodyEnd
  const sigN = r.head()
  if (r.type() !== 2) throw new InvalidFieldError(`expected the signature as a byte string, got major type ${r.type()}`)
  if (sigN !== SIGNATURE_LENGTH) throw new InvalidFieldError(`expected a signature of exactly ${SIGNATURE_LENGTH} bytes, got ${String(sigN)}`)
  const signature = r.bytesBody(sigN)
  if (r.pos !== r.end) throw new TrailingBytesError(`expected one message, got ${r.end - r.pos} trailing byte(s) at offset ${r.pos}`)

  // Views of what the signature covers, in the received bytes: no copy (see Signed).
  const body = bytes.subarray(bodyStart, bodyEnd)
  const signed: Signed = {
    signer,
    input: undefined,
    protectedBstr: bytes.subarray(protStart, pEnd),
    payloadBstr: bytes.subarray(payloadStart, bodyEnd),
    body,
  }
  if (fast !== undefined) {
    const m = fast.metadata
    const msg: KLPMessage = Object.freeze({
      version: fast.version,
      type: fast.type,
      source: fast.source,
      target: fast.target,
      payload: fast.payload,
      metadata: Object.freeze(m.correlation_id === undefined
        ? { message_id: messageIdFromBody(body), priority: m.priority, ttl: m.ttl, routing_hints: m.routing_hints, trust_requirements: m.trust_requirements }
        : { message_id: messageIdFromBody(body), priority: m.priority, ttl: m.ttl, routing_hints: m.routing_hints, trust_requirements: m.trust_requirements, correlation_id: m.correlation_id }),
      signature,
      signer,
      timestamp: fast.timestamp,
    })
    bodies.set(msg, signed)
    return msg
  }
  const o = fields(raw, 'message body', BODY_FIELDS, BODY_REQUIRED)
  const msg: KLPMessage = {
    version: checkString(o.version, 'version', 1, MAX_VERSION_LENGTH, failField, VERSION_RE),
    type: checkType(o.type, failField),
    source: wireAddress(o.source, 'source'),
    target: wireAddress(o.target, 'target'),
    payload: readPayload(o.payload),
    metadata: readMetadata(o.metadata, messageIdFromBody(body)),
    signature,
    signer,
    timestamp: checkUint(o.timestamp, 'timestamp', Number.MAX_SAFE_INTEGER, failField),
  }
  Object.freeze(msg)
  bodies.set(msg, signed)
  return msg
}
