/**
 * Errors of the libp2p discovery sources. Each extends the matching `@kos-mesh/interface` class;
 * assert on `name`/`code`, never on text. Records themselves fail with peer-discovery's typed errors
 * (InvalidRecordSignatureError, RecordExpiredError, ...); these cover what is specific to the DHT key
 * and the gossipsub topic.
 */
import { DecodeError, InvalidParametersError, InvalidSignatureError } from '@kos-mesh/interface'

/** A DHT key outside our namespace, or not `/<namespace>/<Ed25519 PeerId>`. */
export class InvalidDhtKeyError extends InvalidParametersError {
  static override readonly code: string = 'ERR_INVALID_DHT_KEY'
  override name = 'InvalidDhtKeyError'
  override readonly code: string = 'ERR_INVALID_DHT_KEY'
}

/** A validly signed node record stored under another node's key (the signer must match the key). */
export class DhtKeyMismatchError extends InvalidSignatureError {
  static override readonly code: string = 'ERR_DHT_KEY_MISMATCH'
  override name = 'DhtKeyMismatchError'
  override readonly code: string = 'ERR_DHT_KEY_MISMATCH'
}

/** A gossipsub message that is not a well-formed BROADCAST_ANNOUNCE (size, decode, type, time). */
export class InvalidBroadcastError extends DecodeError {
  static override readonly code: string = 'ERR_INVALID_BROADCAST'
  override name = 'InvalidBroadcastError'
  override readonly code: string = 'ERR_INVALID_BROADCAST'
}

/** A broadcast signed by a revoked DID (the `isRevoked` component said so): not delivered, not forwarded. */
export class RevokedSignerError extends InvalidSignatureError {
  static override readonly code: string = 'ERR_REVOKED_SIGNER'
  override name = 'RevokedSignerError'
  override readonly code: string = 'ERR_REVOKED_SIGNER'
}

/** The host lacks the libp2p service a source needs (kad-dht under `dht`, gossipsub under `pubsub`). */
export class MissingServiceError extends InvalidParametersError {
  static override readonly code: string = 'ERR_MISSING_LIBP2P_SERVICE'
  override name = 'MissingServiceError'
  override readonly code: string = 'ERR_MISSING_LIBP2P_SERVICE'
}
