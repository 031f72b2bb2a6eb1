/**
 * Errors of @kos-mesh/transport-libp2p. One class per condition, each extending the matching class
 * of `@kos-mesh/interface`, so callers can test either the specific `name`/`code` or the family
 * (`instanceof TimeoutError`, `instanceof QueueFullError`, ...). Assert on `name`/`code`, never on text.
 *
 * Shared with every transport (from @kos-mesh/interface, re-exported below): PeerMismatchError (a
 * dial that names a DID reached another peer), UnreachableError, SendBufferFullError, SlowPeerError.
 * Framing errors come from @kos-mesh/klp-codec (FrameTooLargeError, InvalidFrameError,
 * TruncatedInputError).
 */
import { ConnectionClosedError, InvalidParametersError, KosMeshError, QueueFullError, TimeoutError } from '@kos-mesh/interface'

/** The libp2p dial (connection + KLP stream) did not complete in time (`dialTimeoutMs`). */
export class DialTimeoutError extends TimeoutError {
  static override readonly code: string = 'ERR_DIAL_TIMEOUT'
  override name = 'DialTimeoutError'
  override readonly code: string = 'ERR_DIAL_TIMEOUT'
}

/**
 * A DID that is not an Ed25519 did:key (so no libp2p PeerId), or a PeerId that does not embed an
 * Ed25519 key (RSA, secp256k1: no did:key).
 */
export class PeerIdConversionError extends InvalidParametersError {
  static override readonly code: string = 'ERR_PEER_ID_CONVERSION'
  override name = 'PeerIdConversionError'
  override readonly code: string = 'ERR_PEER_ID_CONVERSION'
}

/** The remote reset the KLP stream (or its libp2p connection went away without a clean close). */
export class ConnectionResetError extends ConnectionClosedError {
  static override readonly code: string = 'ERR_CONNECTION_RESET'
  override name = 'ConnectionResetError'
  override readonly code: string = 'ERR_CONNECTION_RESET'
}

/** `maxConnections` KLP connections are open; no new one can be opened or accepted. */
export class TooManyConnectionsError extends QueueFullError {
  static override readonly code: string = 'ERR_TOO_MANY_CONNECTIONS'
  override name = 'TooManyConnectionsError'
  override readonly code: string = 'ERR_TOO_MANY_CONNECTIONS'
}

/** The host could not listen on the address, or the KLP protocol handler could not be registered. */
export class ListenError extends KosMeshError {
  static override readonly code: string = 'ERR_LISTEN'
  override name = 'ListenError'
  override readonly code: string = 'ERR_LISTEN'
}

/** The transport errors every transport shares (interface). */
export { PeerMismatchError, SendBufferFullError, SlowPeerError, UnreachableError } from '@kos-mesh/interface'
