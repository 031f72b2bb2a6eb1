/** Stage 1, envelope and size: the frame size, the peer's token bucket, the router envelope header. */
import type { RouterCore } from '../core.js'
import { isValidEnvelope } from '../envelope.js'
import { TokenBucket } from '../token-bucket.js'
import { REJECT, type Verdict } from './verdict.js'

export function checkFrame(core: RouterCore, from: string, frame: Uint8Array, now: number): Verdict {
  if (frame.byteLength > core.cfg.maxFrameBytes) return REJECT.FRAME_TOO_LARGE
  const rate = core.cfg.rateLimit
  if (rate !== false) {
    let b = core.buckets.get(from)
    if (b === undefined) {
      b = new TokenBucket(rate, now)
      core.buckets.set(from, b)
    }
    if (!b.take(now)) return REJECT.RATE_LIMITED
  }
  if (!isValidEnvelope(frame)) return REJECT.MALFORMED
  return undefined
}
