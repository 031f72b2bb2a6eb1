/**
 * Errors of bulk transfer. Assert on `name` / `code`, never on message text. Codes that cross the
 * wire (in an error response or a `done` report) are the `BulkReason` values.
 */
import {
  AbortError,
  DecodeError,
  KosMeshError,
  LimitExceededError,
  PeerRefusedError,
  QueueFullError,
  TimeoutError,
  UnreachableError,
  type KosMeshErrorOptions,
} from '@kos-mesh/interface'

/** Wire codes of bulk transfer (`error.code` of a refused request, `code` of a failed `done`). */
export const BulkReason = {
  /** The offer is larger than the receiver's `maxBytes`. */
  TOO_LARGE: 'bulk_too_large',
  /** The receiver's `onOffer` refused the offer (or there is none). */
  REFUSED: 'bulk_refused',
  /** The sender has no such offer (never made, expired, closed), or not for this receiver. */
  UNKNOWN_OFFER: 'bulk_unknown_offer',
  /** Too many offers / transfers / sessions at once. */
  BUSY: 'bulk_busy',
  /** A control message did not parse. */
  INVALID: 'bulk_invalid',
  /** One side cancelled. */
  CANCELLED: 'bulk_cancelled',
  /** A chunk did not match its leaf hash. */
  CHUNK_HASH: 'bulk_chunk_hash',
  /** A leaf page did not match the offer's root. */
  PROOF: 'bulk_proof',
  /** The whole payload did not match the offer's content hash. */
  CONTENT_HASH: 'bulk_content_hash',
  /** No progress in time. */
  TIMEOUT: 'bulk_timeout',
  /** The sender could not read its source. */
  SOURCE: 'bulk_source_error',
  /** The receiver's sink failed. */
  SINK: 'bulk_sink_error',
} as const
export type BulkReason = (typeof BulkReason)[keyof typeof BulkReason]

/** The offer is larger than the receiver's `maxBytes`; nothing was transferred. */
export class BulkOfferTooLargeError extends LimitExceededError {
  static override readonly code: string = 'ERR_BULK_OFFER_TOO_LARGE'
  override name = 'BulkOfferTooLargeError'
  override readonly code: string = 'ERR_BULK_OFFER_TOO_LARGE'
}

/** A chunk did not match its leaf in the signed hash tree (a tampered or wrong chunk). */
export class BulkChunkHashError extends KosMeshError {
  static override readonly code: string = 'ERR_BULK_CHUNK_HASH'
  override name = 'BulkChunkHashError'
  override readonly code: string = 'ERR_BULK_CHUNK_HASH'
  /** Index of the chunk (-1 when the sender reported it). */
  readonly index: number
  constructor(message: string, index = -1, options?: KosMeshErrorOptions) {
    super(message, options)
    this.index = index
  }
}

/** A page of leaf hashes did not lead to the offer's root (a tampered hash list). */
export class BulkProofError extends KosMeshError {
  static override readonly code: string = 'ERR_BULK_PROOF'
  override name = 'BulkProofError'
  override readonly code: string = 'ERR_BULK_PROOF'
}

/** Every chunk matched the tree, but the whole payload did not match the offer's content hash. */
export class BulkContentHashError extends KosMeshError {
  static override readonly code: string = 'ERR_BULK_CONTENT_HASH'
  override name = 'BulkContentHashError'
  override readonly code: string = 'ERR_BULK_CONTENT_HASH'
}

/** The transfer was cancelled: by this side's signal (or `stop()`), or by the remote side (`remote`). */
export class BulkCancelledError extends AbortError {
  static override readonly code: string = 'ERR_BULK_CANCELLED'
  override name = 'BulkCancelledError'
  override readonly code: string = 'ERR_BULK_CANCELLED'
  /** True when the other side cancelled. */
  readonly remote: boolean
  constructor(message = 'bulk transfer cancelled', remote = false, options?: KosMeshErrorOptions) {
    super(message, options)
    this.remote = remote
  }
}

/** No progress in time: chunks stalled `maxStalls` times, an offer expired, a control request timed out. */
export class BulkTimeoutError extends TimeoutError {
  static override readonly code: string = 'ERR_BULK_TIMEOUT'
  override name = 'BulkTimeoutError'
  override readonly code: string = 'ERR_BULK_TIMEOUT'
}

/** The receiver could not get a direct connection to the sender (data frames need one) in time. */
export class BulkUnreachableError extends UnreachableError {
  static override readonly code: string = 'ERR_BULK_UNREACHABLE'
  override name = 'BulkUnreachableError'
  override readonly code: string = 'ERR_BULK_UNREACHABLE'
}

/**
 * The other side refused or reported a failure. `reason` is the wire code (a `BulkReason`, or a
 * router code such as `unsupported_message_type`).
 */
export class BulkRejectedError extends PeerRefusedError {
  static override readonly code: string = 'ERR_BULK_REJECTED'
  override name = 'BulkRejectedError'
  override readonly code: string = 'ERR_BULK_REJECTED'
}

/** The sender has no such offer (never made, expired, closed, or made for another receiver). */
export class BulkUnknownOfferError extends BulkRejectedError {
  static override readonly code: string = 'ERR_BULK_UNKNOWN_OFFER'
  override name = 'BulkUnknownOfferError'
  override readonly code: string = 'ERR_BULK_UNKNOWN_OFFER'
}

/** Too many offers, transfers or sessions at once (`maxOffers`, `maxTransfers`, `maxSessionsPerOffer`). */
export class BulkBusyError extends QueueFullError {
  static override readonly code: string = 'ERR_BULK_BUSY'
  override name = 'BulkBusyError'
  override readonly code: string = 'ERR_BULK_BUSY'
}

/** A bulk control message (offer, leaf page, pull, report) is malformed or out of bounds. */
export class InvalidBulkMessageError extends DecodeError {
  static override readonly code: string = 'ERR_INVALID_BULK_MESSAGE'
  override name = 'InvalidBulkMessageError'
  override readonly code: string = 'ERR_INVALID_BULK_MESSAGE'
}

/** The source or the sink failed (I/O). */
export class BulkIoError extends KosMeshError {
  static override readonly code: string = 'ERR_BULK_IO'
  override name = 'BulkIoError'
  override readonly code: string = 'ERR_BULK_IO'
}

/** The wire code of an error (what a failed `done` report or an error response carries). */
export function reasonOf(err: unknown): BulkReason {
  const name = err instanceof Error ? err.name : ''
  switch (name) {
    case 'BulkOfferTooLargeError': return BulkReason.TOO_LARGE
    case 'BulkChunkHashError': return BulkReason.CHUNK_HASH
    case 'BulkProofError': return BulkReason.PROOF
    case 'BulkContentHashError': return BulkReason.CONTENT_HASH
    case 'BulkCancelledError':
    case 'AbortError': return BulkReason.CANCELLED
    case 'BulkTimeoutError':
    case 'BulkUnreachableError': return BulkReason.TIMEOUT
    case 'BulkBusyError': return BulkReason.BUSY
    case 'BulkUnknownOfferError': return BulkReason.UNKNOWN_OFFER
    case 'InvalidBulkMessageError':
    case 'InvalidParametersError': return BulkReason.INVALID
    case 'BulkIoError': return BulkReason.SINK
    default: return BulkReason.REFUSED
  }
}

/** The typed error for a wire code the other side sent (`remote`: reported by the peer). */
export function errorForReason(reason: string, message: string): Error {
  switch (reason) {
    case BulkReason.TOO_LARGE: return new BulkOfferTooLargeError(message)
    case BulkReason.CANCELLED: return new BulkCancelledError(message, true)
    case BulkReason.CHUNK_HASH: return new BulkChunkHashError(message)
    case BulkReason.PROOF: return new BulkProofError(message)
    case BulkReason.CONTENT_HASH: return new BulkContentHashError(message)
    case BulkReason.TIMEOUT: return new BulkTimeoutError(message)
    case BulkReason.UNKNOWN_OFFER: return new BulkUnknownOfferError(message, reason)
    case BulkReason.BUSY: return new BulkBusyError(message)
    default: return new BulkRejectedError(message, reason)
  }
}
