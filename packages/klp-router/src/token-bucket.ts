import { InvalidParametersError } from '@kos-mesh/interface'

export interface TokenBucketInit {
  /** Tokens added per second. */
  ratePerSec: number
  /** Maximum tokens (the burst). */
  burst: number
}

/** A token bucket driven by an external clock (milliseconds). Starts full. */
export class TokenBucket {
  private tokens: number
  private last: number
  readonly ratePerSec: number
  readonly burst: number

  constructor(init: TokenBucketInit, now: number) {
    if (!(init.ratePerSec > 0)) throw new InvalidParametersError(`expected ratePerSec > 0, got ${init.ratePerSec}`)
    if (!(init.burst >= 1)) throw new InvalidParametersError(`expected burst >= 1, got ${init.burst}`)
    this.ratePerSec = init.ratePerSec
    this.burst = init.burst
    this.tokens = init.burst
    this.last = now
  }

  private refill(now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.ratePerSec) / 1000)
      this.last = now
    }
  }

  /** Takes `n` tokens if available; returns false (taking nothing) otherwise. */
  take(now: number, n = 1): boolean {
    this.refill(now)
    if (this.tokens >= n) {
      this.tokens -= n
      return true
    }
    return false
  }

  /** Milliseconds until `n` tokens are available (0 when they are). */
  waitTime(now: number, n = 1): number {
    this.refill(now)
    return this.tokens >= n ? 0 : Math.ceil(((n - this.tokens) * 1000) / this.ratePerSec)
  }

  available(now: number): number {
    this.refill(now)
    return this.tokens
  }
}
