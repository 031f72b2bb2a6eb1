/** Stage 3, expiry and ttl: the receiver's ttl bound, expiry (capped by its maximum age), clock skew. */
import type { KLPMessage } from '@kos-mesh/interface'
import type { RouterCore } from '../core.js'
import { REJECT, type Verdict } from './verdict.js'

export function checkExpiry(core: RouterCore, msg: KLPMessage, now: number): Verdict {
  if (msg.metadata.ttl > core.cfg.maxTtlSeconds) return REJECT.TTL_TOO_LONG
  if (core.isExpired(msg, now)) return REJECT.EXPIRED
  return undefined
}

/**
 * The replay window only lives in memory: a message from a peer timestamped before this router's
 * first start (minus the skew) may be a replay of one a previous run processed.
 */
export function checkBeforeStart(core: RouterCore, msg: KLPMessage): Verdict {
  if (!core.cfg.acceptBeforeStart && msg.timestamp < (core.startedAt ?? 0) - core.cfg.clockSkewMs) return REJECT.REPLAY
  return undefined
}
