/**
 * The router envelope: a 5-byte header in front of an encoded, signed KLP message. Forwarders
 * change only the header (hop count, flags), never the signed bytes.
 *
 * ```
 * 0      1        2     3     4      5 ...
 * magic  version  kind  hops  flags  body (klp-codec encodeMessage bytes)
 * 0x4b   0x01     1|2   u8    u8
 * ```
 * kind 1 = message, kind 2 = hello (a signed PEER_DISCOVERY message only for the neighbour).
 * flags bit 0 = the `via` routing hint was reached. Other flag bits must be zero.
 *
 * kind 3 = data: an unsigned frame for a directly connected peer (never forwarded). Bytes 3..4
 * are the channel (0..65535, big endian) instead of hops and flags; the body is opaque to the
 * router (the protocol on the channel authenticates it, e.g. bulk transfer by its hash tree).
 */
import { DecodeError } from '@kos-mesh/interface'

export const ENVELOPE_MAGIC = 0x4b
export const ENVELOPE_VERSION = 1
export const ENVELOPE_HEADER_BYTES = 5

export const EnvelopeKind = { MESSAGE: 1, HELLO: 2, DATA: 3 } as const
export type EnvelopeKind = (typeof EnvelopeKind)[keyof typeof EnvelopeKind]

export const FLAG_VIA_REACHED = 0x01
const KNOWN_FLAGS = FLAG_VIA_REACHED

export interface Envelope {
  kind: EnvelopeKind
  hops: number
  flags: number
  body: Uint8Array
}

/** The envelope could not be parsed. */
export class InvalidEnvelopeError extends DecodeError {
  static override readonly code: string = 'ERR_INVALID_ROUTER_ENVELOPE'
  override name = 'InvalidEnvelopeError'
  override readonly code: string = 'ERR_INVALID_ROUTER_ENVELOPE'
}

export function encodeEnvelope(kind: EnvelopeKind, hops: number, flags: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(ENVELOPE_HEADER_BYTES + body.byteLength)
  out[0] = ENVELOPE_MAGIC
  out[1] = ENVELOPE_VERSION
  out[2] = kind
  out[3] = hops
  out[4] = flags
  out.set(body, ENVELOPE_HEADER_BYTES)
  return out
}

/** Same body, new hop count / flags (a copy of the header only; the body bytes are shared). */
export function rewrapEnvelope(frame: Uint8Array, hops: number, flags: number): Uint8Array {
  const out = new Uint8Array(frame.byteLength)
  out.set(frame)
  out[3] = hops
  out[4] = flags
  return out
}

/**
 * What is wrong with a frame's envelope header, or undefined when it is valid. Allocation-free:
 * the router checks every inbound frame with it and reads kind / hops / flags straight from
 * bytes 2..4.
 */
export function envelopeError(frame: Uint8Array): string | undefined {
  if (frame.byteLength < ENVELOPE_HEADER_BYTES + 1) return `expected a frame of at least ${ENVELOPE_HEADER_BYTES + 1} bytes, got ${frame.byteLength}`
  if (frame[0] !== ENVELOPE_MAGIC) return `expected magic 0x4b, got 0x${frame[0]!.toString(16)}`
  if (frame[1] !== ENVELOPE_VERSION) return `expected envelope version 1, got ${frame[1]}`
  const kind = frame[2]
  if (kind === EnvelopeKind.DATA) return undefined
  if (kind !== EnvelopeKind.MESSAGE && kind !== EnvelopeKind.HELLO) return `expected envelope kind 1, 2 or 3, got ${kind}`
  const flags = frame[4]!
  if ((flags & ~KNOWN_FLAGS) !== 0) return `expected only known flag bits, got 0x${flags.toString(16)}`
  return undefined
}

/** True when the frame's envelope header is valid (no allocation; see envelopeError). */
export function isValidEnvelope(frame: Uint8Array): boolean {
  return (
    frame.byteLength > ENVELOPE_HEADER_BYTES &&
    frame[0] === ENVELOPE_MAGIC &&
    frame[1] === ENVELOPE_VERSION &&
    (((frame[2] === EnvelopeKind.MESSAGE || frame[2] === EnvelopeKind.HELLO) && (frame[4]! & ~KNOWN_FLAGS) === 0) || frame[2] === EnvelopeKind.DATA)
  )
}

/** A data frame: `channel` in bytes 3..4, then the data. */
export function encodeDataFrame(channel: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(ENVELOPE_HEADER_BYTES + data.byteLength)
  out[0] = ENVELOPE_MAGIC
  out[1] = ENVELOPE_VERSION
  out[2] = EnvelopeKind.DATA
  out[3] = channel >>> 8
  out[4] = channel & 0xff
  out.set(data, ENVELOPE_HEADER_BYTES)
  return out
}

export function decodeEnvelope(frame: Uint8Array): Envelope {
  const err = envelopeError(frame)
  if (err !== undefined) throw new InvalidEnvelopeError(err)
  return { kind: frame[2] as EnvelopeKind, hops: frame[3]!, flags: frame[4]!, body: frame.subarray(ENVELOPE_HEADER_BYTES) }
}
