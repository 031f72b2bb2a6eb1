/**
 * Shared error classes. Every error has a stable `name` (assert on it, not on message text) and a
 * stable `code`; errors whose code crosses the wire (in an error response) keep it forever.
 *
 * Packages add their own classes in `src/errors.ts`, extending `KosMeshError`.
 */

export interface KosMeshErrorOptions {
  cause?: unknown
}

/**
 * The base class of every kos-mesh error: a stable `name` and `code` (assert on them, never on the
 * message).
 */
export class KosMeshError extends Error {
  static readonly code: string = 'ERR_KOS_MESH'
  override name = 'KosMeshError'
  readonly code: string = 'ERR_KOS_MESH'

  constructor(message: string, options?: KosMeshErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
  }
}


/** A caller passed an argument of the wrong shape or range ("expected X, got Y"). */
export class InvalidParametersError extends KosMeshError {
  static override readonly code: string = 'ERR_INVALID_PARAMETERS'
  override name = 'InvalidParametersError'
  override readonly code: string = 'ERR_INVALID_PARAMETERS'
}

/** A klp:// or transport address is malformed or too long. */
export class InvalidAddressError extends KosMeshError {
  static override readonly code: string = 'ERR_INVALID_ADDRESS'
  override name = 'InvalidAddressError'
  override readonly code: string = 'ERR_INVALID_ADDRESS'
}

/** Bytes could not be decoded into a valid value (base class of every decoder error). */
export class DecodeError extends KosMeshError {
  static override readonly code: string = 'ERR_DECODE'
  override name = 'DecodeError'
  override readonly code: string = 'ERR_DECODE'
}

/** A frame or value exceeds a configured size, count or depth limit. */
export class LimitExceededError extends DecodeError {
  static override readonly code: string = 'ERR_LIMIT_EXCEEDED'
  override name = 'LimitExceededError'
  override readonly code: string = 'ERR_LIMIT_EXCEEDED'
}

/** A signature did not verify, or was malformed. */
export class InvalidSignatureError extends KosMeshError {
  static override readonly code: string = 'ERR_INVALID_SIGNATURE'
  override name = 'InvalidSignatureError'
  override readonly code: string = 'ERR_INVALID_SIGNATURE'
}

/** A key id or DID could not be resolved to a key. */
export class UnknownKeyError extends KosMeshError {
  static override readonly code: string = 'ERR_UNKNOWN_KEY'
  override name = 'UnknownKeyError'
  override readonly code: string = 'ERR_UNKNOWN_KEY'
}

/** A message is past `timestamp + ttl` (or too far in the future) under the clock-skew window. */
export class MessageExpiredError extends KosMeshError {
  static override readonly code: string = 'ERR_MESSAGE_EXPIRED'
  override name = 'MessageExpiredError'
  override readonly code: string = 'ERR_MESSAGE_EXPIRED'
}

/** A message or record was seen before within the replay window. */
export class ReplayError extends KosMeshError {
  static override readonly code: string = 'ERR_REPLAY'
  override name = 'ReplayError'
  override readonly code: string = 'ERR_REPLAY'
}

/** Decryption or authentication of ciphertext failed. */
export class DecryptionError extends KosMeshError {
  static override readonly code: string = 'ERR_DECRYPTION'
  override name = 'DecryptionError'
  override readonly code: string = 'ERR_DECRYPTION'
}

/** An operation did not finish in time. */
export class TimeoutError extends KosMeshError {
  static override readonly code: string = 'ERR_TIMEOUT'
  override name = 'TimeoutError'
  override readonly code: string = 'ERR_TIMEOUT'
}

/** An operation was cancelled through its AbortSignal. */
export class AbortError extends KosMeshError {
  static override readonly code: string = 'ERR_ABORTED'
  override name = 'AbortError'
  override readonly code: string = 'ERR_ABORTED'
  constructor(message = 'The operation was aborted', options?: KosMeshErrorOptions) {
    super(message, options)
  }
}

/** The connection is closed or was reset. */
export class ConnectionClosedError extends KosMeshError {
  static override readonly code: string = 'ERR_CONNECTION_CLOSED'
  override name = 'ConnectionClosedError'
  override readonly code: string = 'ERR_CONNECTION_CLOSED'
}

/** The peer could not be reached (dial failed, partition, no route). */
export class UnreachableError extends KosMeshError {
  static override readonly code: string = 'ERR_UNREACHABLE'
  override name = 'UnreachableError'
  override readonly code: string = 'ERR_UNREACHABLE'
}

/** The remote side authenticated as a different identity than expected. */
export class PeerMismatchError extends KosMeshError {
  static override readonly code: string = 'ERR_PEER_MISMATCH'
  override name = 'PeerMismatchError'
  override readonly code: string = 'ERR_PEER_MISMATCH'
}

/** A bounded queue or buffer is full. */
export class QueueFullError extends KosMeshError {
  static override readonly code: string = 'ERR_QUEUE_FULL'
  override name = 'QueueFullError'
  override readonly code: string = 'ERR_QUEUE_FULL'
}

/** A component was used before `start()` or after `stop()`. */
export class NotStartedError extends KosMeshError {
  static override readonly code: string = 'ERR_NOT_STARTED'
  override name = 'NotStartedError'
  override readonly code: string = 'ERR_NOT_STARTED'
}

/** A sender does not meet a message's trust requirements. */
export class InsufficientTrustError extends KosMeshError {
  static override readonly code: string = 'ERR_INSUFFICIENT_TRUST'
  override name = 'InsufficientTrustError'
  override readonly code: string = 'ERR_INSUFFICIENT_TRUST'
}

/**
 * A transport's `send()` would take the connection's outbound bytes past its bound
 * (`maxOutboundBufferBytes`). Nothing was queued; the connection stays open.
 */
export class SendBufferFullError extends QueueFullError {
  static override readonly code: string = 'ERR_SEND_BUFFER_FULL'
  override name = 'SendBufferFullError'
  override readonly code: string = 'ERR_SEND_BUFFER_FULL'
}

/**
 * The peer did not drain our send buffer for the transport's `sendStallTimeoutMs` while data waited
 * for it (it stopped reading): the connection was aborted. The reader throws it; pending and later
 * `send()`s reject with a `ConnectionClosedError` whose `cause` is it.
 */
export class SlowPeerError extends ConnectionClosedError {
  static override readonly code: string = 'ERR_SLOW_PEER'
  override name = 'SlowPeerError'
  override readonly code: string = 'ERR_SLOW_PEER'
}

/** Throws an AbortError when the signal is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) {
    throw new AbortError(undefined, { cause: signal.reason })
  }
}

/** True for any kos-mesh error (works across duplicated package copies by checking the shape). */
export function isKosMeshError(err: unknown): err is KosMeshError {
  if (err instanceof KosMeshError) return true
  const code = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined
  return typeof code === 'string' && code.startsWith('ERR_') && err instanceof Error && err.name !== 'Error'
}

// ---------------------------------------------------------------- transport conditions every transport shares

/** A dial did not complete (connect plus authentication) within its time limit. */
export class DialTimeoutError extends TimeoutError {
  static override readonly code: string = 'ERR_DIAL_TIMEOUT'
  override name = 'DialTimeoutError'
  override readonly code: string = 'ERR_DIAL_TIMEOUT'
}

/** The remote ended the connection without a clean close (a reset, or a truncated stream). */
export class ConnectionResetError extends ConnectionClosedError {
  static override readonly code: string = 'ERR_CONNECTION_RESET'
  override name = 'ConnectionResetError'
  override readonly code: string = 'ERR_CONNECTION_RESET'
}

/** The transport's `maxConnections` is reached; no new connection can be opened or accepted. */
export class TooManyConnectionsError extends QueueFullError {
  static override readonly code: string = 'ERR_TOO_MANY_CONNECTIONS'
  override name = 'TooManyConnectionsError'
  override readonly code: string = 'ERR_TOO_MANY_CONNECTIONS'
}

/** A listener could not take its address (in use, not permitted, no handler could be registered). */
export class ListenError extends KosMeshError {
  static override readonly code: string = 'ERR_LISTEN'
  override name = 'ListenError'
  override readonly code: string = 'ERR_LISTEN'
}

/**
 * A peer refused an operation and said why: `reason` is the stable wire code of its refusal (the
 * `error.code` of its error response). Base of every "the other side refused" error (the router's
 * `RemoteRejectedError`, bulk transfer's, agent migration's, vector sync's), so a caller can catch
 * any refusal and branch on `reason`.
 */
export class PeerRefusedError extends KosMeshError {
  static override readonly code: string = 'ERR_PEER_REFUSED'
  override name = 'PeerRefusedError'
  override readonly code: string = 'ERR_PEER_REFUSED'
  /** The wire code of the refusal. */
  readonly reason: string

  constructor(message: string, reason: string, options?: KosMeshErrorOptions) {
    super(message, options)
    this.reason = reason
  }
}
