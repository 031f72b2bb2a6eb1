/**
 * Definitions shared by the modules of one TCP connection (handshake.ts, inbound.ts, outbound.ts,
 * connection.ts): the klp-codec frame kinds, the record kinds and their associated data, the size
 * constants, the per-connection limits and the marker of a clean close. Internal, apart from the two
 * frame kinds that index.ts exports.
 */

/** klp-codec frame kind of a handshake message (application range 0x80..0xff). */
export const FRAME_KIND_HANDSHAKE = 0x80
/** klp-codec frame kind of an encrypted record. */
export const FRAME_KIND_RECORD = 0x81

/**
 * Record kinds: the first byte of every record frame body, sent in the clear in front of the session
 * record and bound into its AEAD as associated data (so it cannot be changed on the path).
 */
export const KIND_DATA = 0
export const KIND_PING = 1
export const KIND_PONG = 2
export const KIND_CLOSE = 3
/** The associated data of each kind: one constant 1-byte array each (no allocation per record). */
export const KIND_AAD: readonly Uint8Array[] = [Uint8Array.of(KIND_DATA), Uint8Array.of(KIND_PING), Uint8Array.of(KIND_PONG), Uint8Array.of(KIND_CLOSE)]

/** Extra bytes a record may carry over its plaintext (session overhead: nonce/seq, tag...). */
export const RECORD_OVERHEAD_ALLOWANCE = 256

export interface ConnectionLimits {
  maxFrameSize: number
  maxInboundBufferBytes: number
  keepAliveIntervalMs: number
  maxMissedPongs: number
  closeTimeoutMs: number
  /** Outbound bytes held per connection (waiting copies + socket write buffer) before send() rejects. */
  maxOutboundBufferBytes: number
  /** Time outbound bytes may sit undrained before the peer is aborted (SlowPeerError); Infinity disables. */
  sendStallTimeoutMs: number
}

/** Marker for a clean end (not surfaced to callers as an error). */
export class LocalClose extends Error {}

export const EMPTY = new Uint8Array(0)
