/**
 * Errors of @kos-mesh/transport-libp2p. One class per condition, each extending the matching class
 * of `@kos-mesh/interface`, so callers can test either the specific `name`/`code` or the family
 * (`instanceof TimeoutError`, `instanceof QueueFullError`, ...). Assert on `name`/`code`, never on text.
 *
 * Shared with every transport (from @kos-mesh/interface, re-exported below): PeerMismatchError (a
 * dial that names a DID reached another peer), UnreachableError, SendBufferFullError, SlowPeerError,
 * DialTimeoutError, ConnectionResetError, TooManyConnectionsError, ListenError.
 * Framing errors come from @kos-mesh/klp-codec (FrameTooLargeError, InvalidFrameError,
 * TruncatedInputError).
 */
import { InvalidParametersError } from '@kos-mesh/interface'

/**
 * A DID that is not an Ed25519 did:key (so no libp2p PeerId), or a PeerId that does not embed an
 * Ed25519 key (RSA, secp256k1: no did:key).
 */
export class PeerIdConversionError extends InvalidParametersError {
  static override readonly code: string = 'ERR_PEER_ID_CONVERSION'
  override name = 'PeerIdConversionError'
  override readonly code: string = 'ERR_PEER_ID_CONVERSION'
}

/** The transport errors every transport shares (interface). */
export { PeerMismatchError, SendBufferFullError, SlowPeerError, UnreachableError, DialTimeoutError, ConnectionResetError, TooManyConnectionsError, ListenError } from '@kos-mesh/interface'
