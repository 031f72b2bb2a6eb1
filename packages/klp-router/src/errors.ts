/**
 * Errors thrown by the router. Assert on `name` / `code`, never on message text.
 */
import {
  ConnectionClosedError,
  InvalidParametersError,
  KosMeshError,
  NotStartedError,
  PeerMismatchError,
  PeerRefusedError,
  QueueFullError,
  TimeoutError,
  UnreachableError,
  type KosMeshErrorOptions,
} from '@kos-mesh/interface'

/** No connection and no learned next hop leads to the target authority. */
export class NoRouteError extends UnreachableError {
  static override readonly code: string = 'ERR_NO_ROUTE'
  override name = 'NoRouteError'
  override readonly code: string = 'ERR_NO_ROUTE'
}

/** No configured transport can dial the address. */
export class NoTransportError extends UnreachableError {
  static override readonly code: string = 'ERR_NO_TRANSPORT'
  override name = 'NoTransportError'
  override readonly code: string = 'ERR_NO_TRANSPORT'
}

/** A request got no response before its deadline (after all retries). */
export class RequestTimeoutError extends TimeoutError {
  static override readonly code: string = 'ERR_REQUEST_TIMEOUT'
  override name = 'RequestTimeoutError'
  override readonly code: string = 'ERR_REQUEST_TIMEOUT'
}

/**
 * The remote router (or a forwarder on the way) rejected the request. `reason` is the stable
 * wire code (`insufficient_trust`, `no_route`, `no_eligible_agents`, ...).
 */
export class RemoteRejectedError extends PeerRefusedError {
  static override readonly code: string = 'ERR_REMOTE_REJECTED'
  override name = 'RemoteRejectedError'
  override readonly code: string = 'ERR_REMOTE_REJECTED'
  /** The error response itself. */
  readonly response: unknown

  constructor(message: string, reason: string, response?: unknown, options?: KosMeshErrorOptions) {
    super(message, reason, options)
    this.response = response
  }
}

/** The remote side deferred the request and its `retry_after` did not fit before the deadline. */
export class RequestDeferredError extends RemoteRejectedError {
  static override readonly code: string = 'ERR_REQUEST_DEFERRED'
  override name = 'RequestDeferredError'
  override readonly code: string = 'ERR_REQUEST_DEFERRED'
  /** Seconds the remote asked to wait. */
  retryAfter = 0
}

/** `handle()` was called twice for one message type. */
export class DuplicateHandlerError extends InvalidParametersError {
  static override readonly code: string = 'ERR_DUPLICATE_HANDLER'
  override name = 'DuplicateHandlerError'
  override readonly code: string = 'ERR_DUPLICATE_HANDLER'
}

/** Too many requests are pending (see `maxPendingRequests`). */
export class TooManyRequestsError extends QueueFullError {
  static override readonly code: string = 'ERR_TOO_MANY_REQUESTS'
  override name = 'TooManyRequestsError'
  override readonly code: string = 'ERR_TOO_MANY_REQUESTS'
}

/** The router was used before `start()` or after `stop()`. */
export class RouterNotStartedError extends NotStartedError {
  static override readonly code: string = 'ERR_ROUTER_NOT_STARTED'
  override name = 'RouterNotStartedError'
  override readonly code: string = 'ERR_ROUTER_NOT_STARTED'
}

/**
 * The peer's signed hello claims an authority pinned to another DID (trust on first use, or
 * `pinnedAuthorities`), or its DID is pinned to another authority. The connection is closed.
 */
export class AuthorityConflictError extends PeerMismatchError {
  static override readonly code: string = 'ERR_AUTHORITY_CONFLICT'
  override name = 'AuthorityConflictError'
  override readonly code: string = 'ERR_AUTHORITY_CONFLICT'
}

/**
 * The router's outbound queue for a connection (or over all connections) is full, or the
 * connection closed before the frame could be handed over.
 */
export class SendQueueFullError extends QueueFullError {
  static override readonly code: string = 'ERR_SEND_QUEUE_FULL'
  override name = 'SendQueueFullError'
  override readonly code: string = 'ERR_SEND_QUEUE_FULL'
}

/** The pin table is full and holds no pin that may be evicted: a new authority claim is refused. */
export class PinTableFullError extends QueueFullError {
  static override readonly code: string = 'ERR_PIN_TABLE_FULL'
  override name = 'PinTableFullError'
  override readonly code: string = 'ERR_PIN_TABLE_FULL'
}

/**
 * The peer's DID is revoked (the trust engine's `isRevoked`): its connection was closed when it
 * connected, or at its next frame when it became revoked while connected.
 */
export class PeerRevokedError extends ConnectionClosedError {
  static override readonly code: string = 'ERR_PEER_REVOKED'
  override name = 'PeerRevokedError'
  override readonly code: string = 'ERR_PEER_REVOKED'
}

/**
 * `relayBroadcast` was asked for a broadcast the router does not hold: never accepted here,
 * evicted from the bounded set of recent ones, expired, or past the hop limit.
 */
export class UnknownBroadcastError extends KosMeshError {
  static override readonly code: string = 'ERR_UNKNOWN_BROADCAST'
  override name = 'UnknownBroadcastError'
  override readonly code: string = 'ERR_UNKNOWN_BROADCAST'
}
