/**
 * Signing: the protected header, the COSE Sig_structure (the signing input, built in one
 * exact-size buffer), signMessage, and the COSE_Sign1 parts kept per signed or decoded message
 * (`Signed`, in `bodies`) that encodeMessage, decodeMessage and verifyMessage use.
 */
import { describeValue, InvalidSignatureError, throwIfAborted } from '@kos-mesh/interface'
import type { AbortOptions, KLPAddress, KLPMessage, Signer, UnsignedKLPMessage } from '@kos-mesh/interface'
import { allocBytes } from './alloc.js'
import { Writer, useWriter } from './cbor-encode.js'
import { MessageIdMismatchError } from './errors.js'
import { DEFAULT_LIMITS } from './limits.js'
import type { CodecLimits } from './limits.js'
import { addressString, canonical, encodeBody, writeCheckedBody } from './message-body-encode.js'
import { copyHints, created } from './message-create.js'
import { messageIdFromBody } from './message-id.js'
import {
  COSE_ALG_EDDSA, COSE_HEADER_ALG, COSE_HEADER_KID, DISABLED_INFO, MAX_SIGNER_LENGTH, SIGNATURE_LENGTH,
  SIGNING_CONTEXT, checkString, failParam,
} from './message-schema.js'

/**
 * What signMessage / decodeMessage keep per message: views of the COSE_Sign1 parts the signature
 * covers, the protected header and the payload (each a byte string with its head), and the body
 * (the payload's content).
 * - signMessage keeps the Sig_structure it signed (`input`), in one buffer that holds the other
 *   views too; never handed out to callers (getSigningInput copies), so it cannot be mutated behind
 *   our back; the Signer sees it, as it always saw the bytes it signs.
 * - decodeMessage keeps views into the received bytes (no copy) and builds the Sig_structure only
 *   when verifyMessage / getSigningInput asks for it, so a decoded message that waits in a queue
 *   costs nothing beyond the received bytes.
 */
export interface Signed {
  readonly signer: string
  /** The Sig_structure, kept by signMessage; undefined for decoded messages (built on demand). */
  readonly input: Uint8Array | undefined
  /** The protected header as it is signed and sent: `bstr .cbor {1: -8, 4: kid}`, head included. */
  readonly protectedBstr: Uint8Array
  /** The payload byte string, head included. */
  readonly payloadBstr: Uint8Array
  /** The body: the payload's content. */
  readonly body: Uint8Array
}
/** The Signed of signMessage: with the Sig_structure. */
type SignedInput = Signed & { readonly input: Uint8Array }
/** COSE parts of messages produced by signMessage or decodeMessage (never re-encoded). */
export const bodies = new WeakMap<object, Signed>()

/** `84 6a "Signature1"`: the head of the 4-item Sig_structure and its context string, 12 bytes. */
const SIGNING_PREFIX = (() => {
  const w = new Writer(16)
  w.head(4, 4)
  w.text(SIGNING_CONTEXT)
  return w.finish()
})()
export const PREFIX_LENGTH = SIGNING_PREFIX.length
/** The empty external_aad of the Sig_structure (`h''`). */
const EMPTY_BSTR = 0x40
/** Longest signer key id in UTF-8 bytes (1024 UTF-16 units, at most 3 bytes each). */
export const MAX_SIGNER_BYTES = MAX_SIGNER_LENGTH * 3

/** Protected headers of recent signer key ids (signers sign many messages with one key id). */
const protectedCache = new Map<string, Uint8Array>()
const PROTECTED_CACHE_SIZE = 256

/**
 * The protected header of `keyId` as signed and sent: a byte string (head included) holding the
 * deterministic map `{1: -8, 4: h'<UTF-8 of keyId>'}` = `a2 01 27 04 <bstr kid>`.
 */
function protectedHeader(keyId: string): Uint8Array {
  let p = protectedCache.get(keyId)
  if (p !== undefined) return p
  const kid = new Writer(keyId.length * 3 + 9)
  kid.text(keyId) // UTF-8 with the well-formedness check (InvalidParametersError on a lone surrogate)
  const kidHeadLen = kid.pos - Buffer.byteLength(keyId, 'utf8')
  const kidBytes = kid.buf.subarray(kidHeadLen, kid.pos)
  const map = new Writer(kidBytes.length + 16)
  map.head(5, 2)
  map.head(0, COSE_HEADER_ALG); map.head(1, -1 - COSE_ALG_EDDSA)
  map.head(0, COSE_HEADER_KID); map.bytes(kidBytes)
  const w = new Writer(map.pos + 9)
  w.bytes(map.buf.subarray(0, map.pos))
  p = w.finish()
  if (protectedCache.size >= PROTECTED_CACHE_SIZE) protectedCache.delete(protectedCache.keys().next().value as string)
  protectedCache.set(keyId, p)
  return p
}

/** Writes a Sig_structure around a protected header and a payload byte string (heads included) into one fresh buffer. */
export function sigStructure(protectedBstr: Uint8Array, payloadBstr: Uint8Array): Uint8Array {
  const p = protectedBstr.length
  const input = allocBytes(PREFIX_LENGTH + p + 1 + payloadBstr.length)
  input.set(SIGNING_PREFIX, 0)
  input.set(protectedBstr, PREFIX_LENGTH)
  input[PREFIX_LENGTH + p] = EMPTY_BSTR
  input.set(payloadBstr, PREFIX_LENGTH + p + 1)
  return input
}

/**
 * The exact bytes signed for `signer` and a body: the COSE Sig_structure
 * `["Signature1", protected, h'', body]` (RFC 9052 §4.4), where protected is
 * `bstr .cbor {1: -8, 4: h'<UTF-8 of signer>'}`.
 */
export function signingInput(signer: string, body: Uint8Array): Uint8Array {
  checkString(signer, 'signer', 1, MAX_SIGNER_LENGTH, failParam)
  if (!(body instanceof Uint8Array)) failParam(`expected the body to be a Uint8Array, got ${describeValue(body)}`)
  return signedFromBody(signer, body).input
}

/** Signing input of a message (a fresh copy): reuses the received/signed bytes when known, else re-encodes. */
export function getSigningInput(msg: KLPMessage): Uint8Array {
  const s = signedOf(msg)
  return s.input === undefined ? sigStructure(s.protectedBstr, s.payloadBstr).slice() : s.input.slice()
}

export function signedOf(msg: KLPMessage): Signed {
  const cached = bodies.get(msg)
  if (cached !== undefined && cached.signer === msg.signer) return cached
  const body = encodeBody(msg)
  const id = messageIdFromBody(body)
  if (msg.metadata.message_id !== id) {
    throw new MessageIdMismatchError(`expected metadata.message_id ${id} (computed from the content), got ${describeValue(msg.metadata.message_id)}`)
  }
  return signedFromBody(msg.signer, body)
}

/** Largest bstr head (1 + 8 bytes). */
const MAX_HEAD = 9

/** The Signed views of a Sig_structure whose protected header is `p` bytes long. */
function signedOfInput(keyId: string, input: Uint8Array, p: number, bodyLen: number): SignedInput {
  return {
    signer: keyId,
    input,
    protectedBstr: input.subarray(PREFIX_LENGTH, PREFIX_LENGTH + p),
    payloadBstr: input.subarray(PREFIX_LENGTH + p + 1),
    body: input.subarray(input.length - bodyLen),
  }
}

/** Writes the lead of a Sig_structure at `w.pos`: the prefix, the protected header `prot` and the empty external_aad. */
function writeLead(w: Writer, prot: Uint8Array): void {
  w.raw(SIGNING_PREFIX)
  w.raw(prot)
  w.ensure(1)
  w.buf[w.pos++] = EMPTY_BSTR
}

/**
 * Encodes the body of `msg` and returns the Sig_structure for `keyId` in one exact-size buffer, the
 * body a view into it: prefix, protected header and external_aad are written first, a 9-byte gap
 * is left for the body's byte-string head, then the body; once the body length (so the head size)
 * is known the lead is moved up against the head and the whole run is copied out once.
 */
function buildSigned(keyId: string, msg: UnsignedKLPMessage, limits: Readonly<CodecLimits>): SignedInput {
  const prot = protectedHeader(keyId)
  return useWriter((w) => {
    writeLead(w, prot)
    const lead = w.pos
    w.ensure(MAX_HEAD)
    w.pos += MAX_HEAD
    const bodyStart = w.pos
    writeCheckedBody(w, msg, limits)
    const bodyLen = w.pos - bodyStart
    const end = w.pos
    // Write the head into the gap, right-aligned against the body, then close up the gap.
    w.pos = bodyStart - MAX_HEAD
    w.head(2, bodyLen)
    const headLen = w.pos - (bodyStart - MAX_HEAD)
    const buf = w.buf
    buf.copyWithin(bodyStart - headLen, bodyStart - MAX_HEAD, w.pos)
    const start = MAX_HEAD - headLen
    buf.copyWithin(start, 0, lead)
    const input = allocBytes(end - start)
    input.set(buf.subarray(start, end))
    return signedOfInput(keyId, input, prot.length, bodyLen)
  })
}

/** The Sig_structure for `keyId` around an already encoded body, in one exact-size buffer. */
function signedFromBody(keyId: string, body: Uint8Array): SignedInput {
  const prot = protectedHeader(keyId)
  return useWriter((w) => {
    writeLead(w, prot)
    w.head(2, body.length)
    const lead = w.pos
    const input = allocBytes(lead + body.length)
    input.set(w.buf.subarray(0, lead))
    input.set(body, lead)
    return signedOfInput(keyId, input, prot.length, body.length)
  })
}

function freezeAddress(a: KLPAddress): KLPAddress {
  const c = canonical.get(a)
  if (c !== undefined) return a // frozen already
  const out: KLPAddress = { scheme: a.scheme, authority: a.authority, path: a.path }
  if (a.query !== undefined) out.query = a.query
  if (a.fragment !== undefined) out.fragment = a.fragment
  Object.freeze(out)
  canonical.set(out, addressString(a)) // validated by the body encoding just before
  return out
}

/**
 * Signs a message: computes its id, signs `signingInput(signer.keyId, body)` and returns a new
 * frozen KLPMessage with `metadata.message_id`, `signer` and `signature` filled in.
 *
 * For a message straight from createMessage (frozen) the body encoded there is reused, and the
 * result shares its frozen parts; `payload.data` is the caller's value, signed as it was at
 * createMessage. Any other message (a spread copy, a hand-built object) is validated and encoded
 * here, and the fields are snapshotted before the signer runs. Either way, objects inside
 * `payload.data` are shared, not copied: do not mutate them.
 */
export async function signMessage(msg: UnsignedKLPMessage, signer: Signer, options?: AbortOptions): Promise<KLPMessage> {
  throwIfAborted(options?.signal)
  if (signer === null || typeof signer !== 'object' || typeof signer.sign !== 'function') failParam(`expected a Signer, got ${describeValue(signer)}`)
  const keyId = checkString(signer.keyId, 'signer.keyId', 1, MAX_SIGNER_LENGTH, failParam)
  const c = msg !== null && typeof msg === 'object' ? created.get(msg) : undefined
  let signed: SignedInput
  let out: Omit<KLPMessage, 'signature' | 'signer'>
  if (c !== undefined) {
    signed = signedFromBody(keyId, c.body)
    const id = c.id ?? (c.id = messageIdFromBody(c.body))
    const m = msg.metadata // frozen: exactly what the body holds
    out = {
      version: msg.version,
      type: msg.type,
      source: msg.source,
      target: msg.target,
      payload: msg.payload,
      metadata: Object.freeze(m.correlation_id === undefined
        ? { message_id: id, priority: m.priority, ttl: m.ttl, routing_hints: m.routing_hints, trust_requirements: m.trust_requirements }
        : { message_id: id, priority: m.priority, ttl: m.ttl, routing_hints: m.routing_hints, trust_requirements: m.trust_requirements, correlation_id: m.correlation_id }),
      timestamp: msg.timestamp,
    }
  } else {
    signed = buildSigned(keyId, msg, DEFAULT_LIMITS) // validates every field
    const id = messageIdFromBody(signed.body)
    if (msg.metadata.message_id !== undefined && msg.metadata.message_id !== id) {
      throw new MessageIdMismatchError(`expected metadata.message_id ${id} (computed from the content), got ${describeValue(msg.metadata.message_id)}`)
    }
    // Snapshot the (just validated) fields before the signer runs, so the result matches the body.
    const m = msg.metadata
    const metadata: KLPMessage['metadata'] = {
      message_id: id,
      priority: m.priority,
      ttl: m.ttl,
      routing_hints: copyHints(m.routing_hints),
      trust_requirements: Object.freeze({
        minimum_trust_score: m.trust_requirements.minimum_trust_score,
        required_endorsements: m.trust_requirements.required_endorsements,
        verification_level: m.trust_requirements.verification_level,
      }),
    }
    if (m.correlation_id !== undefined) metadata.correlation_id = m.correlation_id
    const p = msg.payload
    out = {
      version: msg.version,
      type: msg.type,
      source: freezeAddress(msg.source),
      target: freezeAddress(msg.target),
      payload: Object.freeze({
        content_type: p.content_type,
        data: p.data,
        encryption: p.encryption.enabled ? Object.freeze({ ...p.encryption }) : DISABLED_INFO,
        compression: p.compression.enabled ? Object.freeze({ ...p.compression }) : DISABLED_INFO,
      }),
      metadata: Object.freeze(metadata),
      timestamp: msg.timestamp,
    }
  }
  const sig = await signer.sign(signed.input)
  throwIfAborted(options?.signal)
  if (!(sig instanceof Uint8Array) || sig.length !== SIGNATURE_LENGTH) {
    throw new InvalidSignatureError(`expected the signer to return ${SIGNATURE_LENGTH} bytes, got ${describeValue(sig)}`)
  }
  const result: KLPMessage = {
    version: out.version,
    type: out.type,
    source: out.source,
    target: out.target,
    payload: out.payload,
    metadata: out.metadata,
    signature: Uint8Array.from(sig),
    signer: keyId,
    timestamp: out.timestamp,
  }
  Object.freeze(result)
  bodies.set(result, signed)
  return result
}
