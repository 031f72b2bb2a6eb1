/**
 * Stable reason codes of the router's processing results. They cross the wire in error
 * responses (`payload.data.error.code`) and key the `rejects` metrics, so they never change.
 * Handlers may return their own codes (`no_eligible_agents`, ...); those pass through unchanged.
 */
export const RejectReason = {
  /** The frame is larger than `maxFrameBytes`. */
  FRAME_TOO_LARGE: 'frame_too_large',
  /** The envelope or the message could not be decoded (or failed a codec limit). */
  MALFORMED: 'malformed',
  /** The message is past `timestamp + ttl`, or too far in the future. */
  EXPIRED: 'expired',
  /** The message asks for a ttl longer than `maxTtlSeconds`. */
  TTL_TOO_LONG: 'ttl_too_long',
  /** The message id was already seen within the replay window. */
  REPLAY: 'replay',
  /**
   * The signer's DID is revoked (the trust engine's `isRevoked`): checked right after the expiry,
   * before the signature or anything else that costs, for messages to this node, to forward and
   * to relay alike. A revoked peer's connection is closed with this reason.
   */
  REVOKED: 'revoked',
  /** The signature does not verify. */
  INVALID_SIGNATURE: 'invalid_signature',
  /** The signer's key could not be resolved. */
  UNKNOWN_KEY: 'unknown_key',
  /** The source authority is bound (by a signed hello) to another DID than the signer. */
  SOURCE_MISMATCH: 'source_mismatch',
  /** The signer does not meet the message's trust requirements. */
  INSUFFICIENT_TRUST: 'insufficient_trust',
  /** No handler is registered for the message type. */
  UNSUPPORTED_MESSAGE_TYPE: 'unsupported_message_type',
  /** The sending peer exceeded its token bucket. */
  RATE_LIMITED: 'rate_limited',
  /** The peer's (or the router's) inbound queue is full. */
  QUEUE_FULL: 'queue_full',
  /** The handler threw. */
  HANDLER_ERROR: 'handler_error',
  /** No route to the target authority. */
  NO_ROUTE: 'no_route',
  /** Forwarding would exceed the hop limit. */
  HOP_LIMIT: 'hop_limit',
  /** A response arrived for no pending request. */
  UNSOLICITED_RESPONSE: 'unsolicited_response',
  /** The router is stopping. */
  SHUTTING_DOWN: 'shutting_down',
  /**
   * A hello claims an authority pinned to another DID (or the DID is pinned to another
   * authority): the binding is refused, routes are unchanged and the connection is closed.
   */
  AUTHORITY_CONFLICT: 'authority_conflict',
  /**
   * A message carries the correlation id of a pending request but is not its response (other
   * source authority than the request's target, other type, or another signer than expected).
   * The pending request stays pending.
   */
  RESPONSE_MISMATCH: 'response_mismatch',
  /** A hello advertised a route the router refuses (0 hops for an authority that is not the neighbour's own). */
  INVALID_ROUTE: 'invalid_route',
  /** A data frame arrived on a channel nobody handles. */
  UNKNOWN_CHANNEL: 'unknown_channel',
  /** A neighbour's route set changed more often than `routeChangeLimit` allows: its advertisement is ignored. */
  ROUTE_DAMPED: 'route_damped',
} as const
export type RejectReason = (typeof RejectReason)[keyof typeof RejectReason]

/** Every built-in reason code. */
export const REJECT_REASONS: readonly RejectReason[] = Object.freeze(Object.values(RejectReason))
