/**
 * Errors of the gossip service. One class per condition, each with a stable `name` and `code`;
 * assert on those, never on message text.
 */
import { LimitExceededError, NotStartedError } from '@kos-mesh/interface'

// a malformed payload is the core's InvalidGossipMessageError (one class for one condition)
export { InvalidGossipMessageError } from '../gossip/errors.js'

/** A gossip control payload is larger than a bound (records, ids, bytes, ttl, hops). */
export class GossipLimitExceededError extends LimitExceededError {
  static override readonly code: string = 'ERR_GOSSIP_LIMIT_EXCEEDED'
  override name = 'GossipLimitExceededError'
  override readonly code: string = 'ERR_GOSSIP_LIMIT_EXCEEDED'
}

/** The gossip service was used before `start()` or after `stop()`. */
export class GossipNotStartedError extends NotStartedError {
  static override readonly code: string = 'ERR_GOSSIP_NOT_STARTED'
  override name = 'GossipNotStartedError'
  override readonly code: string = 'ERR_GOSSIP_NOT_STARTED'
}
