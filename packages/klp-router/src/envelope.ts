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

/** Byte 0 of every router frame (`'K'`); a frame with another first byte is `malformed`. */
export const ENVELOPE_MAGIC = 0x4b
/** Byte 1 of every router frame: the envelope format version this router writes and accepts (only 1). */
export const ENVELOPE_VERSION = 1
/** Size of the envelope header in bytes (magic, version, kind, hops, flags); the body starts at this offset. */
export const ENVELOPE_HEADER_BYTES = 5

/**
 * Byte 2 of a router frame, what the body is: `MESSAGE` (1) an encoded, signed KLP message to
 * process or forward; `HELLO` (2) a signed hello for the neighbour only (never routed); `DATA` (3) an
 * unsigned data frame for a directly connected peer, whose bytes 3..4 are the channel (see
 * {@link encodeDataFrame}).
 */
export const EnvelopeKind = { MESSAGE: 1, HELLO: 2, DATA: 3 } as const
/** One of the {@link EnvelopeKind} values: 1, 2 or 3. */
export type EnvelopeKind = (typeof EnvelopeKind)[keyof typeof EnvelopeKind]

/**
 * Flag bit 0 (byte 4): the message's `via` routing hint was reached. The node the hint names sets
 * it when it forwards the message, so the nodes after it route to the target instead of to `via`. No other flag bit is defined; a frame with another one set is `malformed`.
 */
export const FLAG_VIA_REACHED = 0x01
const KNOWN_FLAGS = FLAG_VIA_REACHED

/** A parsed router envelope, as {@link decodeEnvelope} returns it. */
export interface Envelope {
  /** What the body is (byte 2). */
  kind: EnvelopeKind
  /**
   * Hops the message has travelled so far (byte 3, 0..255; raised by each forwarder, checked against
   * the hop limit). In a `DATA` frame, the high byte of the channel instead.
   */
  hops: number
  /** Flag bits (byte 4, see {@link FLAG_VIA_REACHED}). In a `DATA` frame, the low byte of the channel instead. */
  flags: number
  /** The bytes after the header: a view into the frame (not a copy), the klp-codec message bytes for kinds 1 and 2. */
  body: Uint8Array
}

/** The envelope could not be parsed. */
export class InvalidEnvelopeError extends DecodeError {
  static override readonly code: string = 'ERR_INVALID_ROUTER_ENVELOPE'
  override name = 'InvalidEnvelopeError'
  override readonly code: string = 'ERR_INVALID_ROUTER_ENVELOPE'
}

/**
 * Builds a router frame: the 5-byte header, then a copy of `body` (for kinds 1 and 2, klp-codec
 * `encodeMessage` bytes of a signed message). For tools and tests that craft frames; nothing is
 * checked: `hops` and `flags` are stored as single bytes (taken modulo 256), and a data frame is
 * better built with {@link encodeDataFrame}.
 */
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

/** A copy of `frame` with a new hop count and flags (bytes 3 and 4); `frame` itself is not changed. */
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

/**
 * A data frame (envelope kind 3): `channel` (0..65535, big endian) in bytes 3..4, then a copy of
 * `data`. The channel is not checked here (`Router.sendData` checks it).
 */
export function encodeDataFrame(channel: number, data: Uint8Array): Uint8Array {
  return writeDataFrame(new Uint8Array(ENVELOPE_HEADER_BYTES + data.byteLength), channel, data)
}

/** {@link encodeDataFrame} into `out` (exactly `ENVELOPE_HEADER_BYTES + data.byteLength` bytes); returns `out`. */
export function writeDataFrame(out: Uint8Array, channel: number, data: Uint8Array): Uint8Array {
  out[0] = ENVELOPE_MAGIC
  out[1] = ENVELOPE_VERSION
  out[2] = EnvelopeKind.DATA
  out[3] = channel >>> 8
  out[4] = channel & 0xff
  out.set(data, ENVELOPE_HEADER_BYTES)
  return out
}

/**
 * Parses a router frame's header without copying (`body` is a view into `frame`).
 *
 * @throws InvalidEnvelopeError when the frame is shorter than 6 bytes, its magic or version is
 * wrong, its kind is not 1, 2 or 3, or (kinds 1 and 2) an unknown flag bit is set.
 */
export function decodeEnvelope(frame: Uint8Array): Envelope {
  const err = envelopeError(frame)
  if (err !== undefined) throw new InvalidEnvelopeError(err)
  return { kind: frame[2] as EnvelopeKind, hops: frame[3]!, flags: frame[4]!, body: frame.subarray(ENVELOPE_HEADER_BYTES) }
}
