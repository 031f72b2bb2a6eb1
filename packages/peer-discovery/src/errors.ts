/**
 * Errors of @kos-mesh/peer-discovery. One class per condition, each with a stable `name` and
 * `code`; assert on those, never on message text.
 */
import {
  DecodeError,
  InvalidSignatureError,
  KosMeshError,
  LimitExceededError,
  MessageExpiredError,
  NotStartedError,
  UnreachableError,
} from '@kos-mesh/interface'

/** A node record (or a discovery payload) is malformed: wrong message type, action or field shape. */
export class InvalidNodeRecordError extends DecodeError {
  static override readonly code: string = 'ERR_INVALID_NODE_RECORD'
  override name = 'InvalidNodeRecordError'
  override readonly code: string = 'ERR_INVALID_NODE_RECORD'
}

/** A PEER_DISCOVERY payload (`announce`, `get_peers`, `peers`) is malformed. */
export class InvalidDiscoveryMessageError extends DecodeError {
  static override readonly code: string = 'ERR_INVALID_DISCOVERY_MESSAGE'
  override name = 'InvalidDiscoveryMessageError'
  override readonly code: string = 'ERR_INVALID_DISCOVERY_MESSAGE'
}

/** A record or discovery payload is larger than a configured bound (bytes, addresses, records). */
export class RecordLimitExceededError extends LimitExceededError {
  static override readonly code: string = 'ERR_RECORD_LIMIT_EXCEEDED'
  override name = 'RecordLimitExceededError'
  override readonly code: string = 'ERR_RECORD_LIMIT_EXCEEDED'
}

/** A node record's signature does not verify (forged or tampered bytes). */
export class InvalidRecordSignatureError extends InvalidSignatureError {
  static override readonly code: string = 'ERR_INVALID_RECORD_SIGNATURE'
  override name = 'InvalidRecordSignatureError'
  override readonly code: string = 'ERR_INVALID_RECORD_SIGNATURE'
}

/** A node record was signed by a DID other than its `node_id`. */
export class RecordSignerMismatchError extends InvalidSignatureError {
  static override readonly code: string = 'ERR_RECORD_SIGNER_MISMATCH'
  override name = 'RecordSignerMismatchError'
  override readonly code: string = 'ERR_RECORD_SIGNER_MISMATCH'
}

/** A node record is past `timestamp + ttl` (beyond the clock-skew window). */
export class RecordExpiredError extends MessageExpiredError {
  static override readonly code: string = 'ERR_RECORD_EXPIRED'
  override name = 'RecordExpiredError'
  override readonly code: string = 'ERR_RECORD_EXPIRED'
}

/** A node record's timestamp is in the future beyond the clock-skew window. */
export class RecordFromFutureError extends MessageExpiredError {
  static override readonly code: string = 'ERR_RECORD_FROM_FUTURE'
  override name = 'RecordFromFutureError'
  override readonly code: string = 'ERR_RECORD_FROM_FUTURE'
}

/** No seed could be reached (or none answered with a valid peer table). `errors` holds each seed's cause. */
export class BootstrapFailedError extends UnreachableError {
  static override readonly code: string = 'ERR_BOOTSTRAP_FAILED'
  override name = 'BootstrapFailedError'
  override readonly code: string = 'ERR_BOOTSTRAP_FAILED'
  readonly errors: ReadonlyArray<{ address: string; error: unknown }>

  constructor(message: string, errors: ReadonlyArray<{ address: string; error: unknown }>) {
    super(message, { cause: errors[0]?.error })
    this.errors = errors
  }
}

/** The discovery service was used before `start()` or after `stop()`. */
export class DiscoveryNotStartedError extends NotStartedError {
  static override readonly code: string = 'ERR_DISCOVERY_NOT_STARTED'
  override name = 'DiscoveryNotStartedError'
  override readonly code: string = 'ERR_DISCOVERY_NOT_STARTED'
}

/** A peer answered a discovery request with something else than a valid `peers` response. */
export class UnexpectedResponseError extends KosMeshError {
  static override readonly code: string = 'ERR_UNEXPECTED_RESPONSE'
  override name = 'UnexpectedResponseError'
  override readonly code: string = 'ERR_UNEXPECTED_RESPONSE'
}
