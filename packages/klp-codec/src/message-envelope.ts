/**
 * encodeMessage: the wire bytes of a signed message, a tagged COSE_Sign1 assembled from the parts
 * signMessage or decodeMessage kept (nothing is re-encoded), with headroom for the frame header.
 */
import { describeValue } from '@kos-mesh/interface'
import type { KLPMessage } from '@kos-mesh/interface'
import { MessageTooLargeError } from './errors.js'
import { FRAME_HEADER_LENGTH, reserveFrameHeader } from './frame.js'
import { resolveLimits } from './limits.js'
import type { CodecLimits } from './limits.js'
import { COSE_SIGN1_TAG, MAX_SIGNER_LENGTH, SIGNATURE_LENGTH, checkBytes, checkString, failParam } from './message-schema.js'
import { PREFIX_LENGTH, signedOf } from './message-sign.js'

/** The empty unprotected header map (`{}`), at the same place in the COSE_Sign1 as external_aad in the Sig_structure. */
const EMPTY_MAP = 0xa0
/** `d2 84`: tag 18 and the head of the 4-item COSE_Sign1 array. */
const ENVELOPE_TAG = 0xc0 | COSE_SIGN1_TAG
const ENVELOPE_ARRAY = 0x84

/** `58 40`: the byte-string head of a 64-byte signature. */
const SIG_HEAD_0 = 0x58
const SIG_HEAD_1 = SIGNATURE_LENGTH

/**
 * The bytes of a signed message: a tagged COSE_Sign1 (RFC 9052 §4.2),
 * `d2 84 <protected bstr> a0 <payload bstr> 58 40 <signature>`. For a message from signMessage /
 * decodeMessage this is one allocation and one copy of the kept parts (the Sig_structure signMessage
 * kept, or the received bytes), plus the signature; nothing is re-encoded. The result is a fresh
 * buffer (with 8 bytes of headroom before it, which encodeFrame uses to frame it without another copy).
 */
export function encodeMessage(msg: KLPMessage, options?: { limits?: Partial<CodecLimits> }): Uint8Array {
  if (msg === null || typeof msg !== 'object') failParam(`expected a KLPMessage, got ${describeValue(msg)}`)
  const limits = resolveLimits(options?.limits)
  checkString(msg.signer, 'signer', 1, MAX_SIGNER_LENGTH, failParam)
  const sig = checkBytes(msg.signature, 'signature', SIGNATURE_LENGTH, SIGNATURE_LENGTH, failParam)
  const s = signedOf(msg) // s.signer === msg.signer
  const prot = s.protectedBstr
  const payload = s.payloadBstr
  const len = 2 + prot.length + 1 + payload.length + 2 + SIGNATURE_LENGTH
  if (len > limits.maxMessageSize) throw new MessageTooLargeError(`expected an encoded message of at most ${limits.maxMessageSize} bytes, got ${len}`)
  const buf = new Uint8Array(FRAME_HEADER_LENGTH + len)
  const o = FRAME_HEADER_LENGTH
  buf[o] = ENVELOPE_TAG
  buf[o + 1] = ENVELOPE_ARRAY
  let p = o + 2
  if (s.input !== undefined) {
    // protected, external_aad and payload are contiguous in the Sig_structure: one copy, then
    // the external_aad byte (h'') becomes the unprotected header ({}), which sits at that place.
    buf.set(s.input.subarray(PREFIX_LENGTH), p)
    p += prot.length
    buf[p] = EMPTY_MAP
    p += 1 + payload.length
  } else {
    buf.set(prot, p)
    p += prot.length
    buf[p++] = EMPTY_MAP
    buf.set(payload, p)
    p += payload.length
  }
  buf[p++] = SIG_HEAD_0
  buf[p++] = SIG_HEAD_1
  for (let i = 0; i < SIGNATURE_LENGTH; i++) buf[p++] = sig[i] as number
  return reserveFrameHeader(buf.subarray(o))
}
