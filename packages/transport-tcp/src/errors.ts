/**
 * Errors of @kos-mesh/transport-tcp. One class per condition, each extending the matching class of
 * `@kos-mesh/interface`, so callers can test either the specific `name`/`code` or the family
 * (`instanceof TimeoutError`, `instanceof DecodeError`, ...). Assert on `name`/`code`, never on text.
 *
 * Shared with every transport (from @kos-mesh/interface, re-exported below): DialTimeoutError,
 * ConnectionResetError, TooManyConnectionsError, ListenError, SendBufferFullError, SlowPeerError.
 *
 * Framing errors come from @kos-mesh/klp-codec (FrameTooLargeError, InvalidFrameError,
 * TruncatedInputError) and handshake errors from @kos-mesh/did-security (HandshakeError,
 * HandshakeTimeoutError); this package does not duplicate them.
 */
import {
  ConnectionClosedError,
  DecodeError,
  DecryptionError,
  ReplayError,
} from '@kos-mesh/interface'



/** A decrypted record is malformed (empty, unknown kind) or a frame arrived in the wrong phase. */
export class InvalidRecordError extends DecodeError {
  static override readonly code: string = 'ERR_INVALID_RECORD'
  override name = 'InvalidRecordError'
  override readonly code: string = 'ERR_INVALID_RECORD'
}

/** An encrypted record did not authenticate or decrypt under the session keys. */
export class BadRecordError extends DecryptionError {
  static override readonly code: string = 'ERR_BAD_RECORD'
  override name = 'BadRecordError'
  override readonly code: string = 'ERR_BAD_RECORD'
}

/** An encrypted record was received a second time (replayed by someone on the path). */
export class ReplayedRecordError extends ReplayError {
  static override readonly code: string = 'ERR_REPLAYED_RECORD'
  override name = 'ReplayedRecordError'
  override readonly code: string = 'ERR_REPLAYED_RECORD'
}

/** The peer stopped answering keep-alive pings; the connection was closed. */
export class KeepAliveTimeoutError extends ConnectionClosedError {
  static override readonly code: string = 'ERR_KEEPALIVE_TIMEOUT'
  override name = 'KeepAliveTimeoutError'
  override readonly code: string = 'ERR_KEEPALIVE_TIMEOUT'
}

/** The transport errors every transport shares (interface). */
export { SendBufferFullError, SlowPeerError, DialTimeoutError, ConnectionResetError, TooManyConnectionsError, ListenError } from '@kos-mesh/interface'
