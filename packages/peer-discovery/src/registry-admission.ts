/**
 * What the peer registry checks before it verifies a record: per-source token buckets, the memory
 * of rejected record bytes (so a repeated bad record is not verified again), and the reject reason
 * of a verification error.
 */
import { createHash } from 'node:crypto'
import { InvalidSignatureError, LimitExceededError, MessageExpiredError, UnknownKeyError, isKosMeshError } from '@kos-mesh/interface'
import type { Clock } from '@kos-mesh/interface'
import type { RejectReason } from './registry-types.js'

interface Bucket {
  tokens: number
  at: number
}

export function digestKey(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('base64')
}

export function errorReason(err: unknown): RejectReason {
  if (!isKosMeshError(err)) return 'invalid'
  if (err.code === 'ERR_RECORD_SIGNER_MISMATCH') return 'signer_mismatch'
  if (err.code === 'ERR_RECORD_FROM_FUTURE') return 'future'
  if (err instanceof MessageExpiredError || err.code === 'ERR_RECORD_EXPIRED') return 'expired'
  if (err instanceof InvalidSignatureError || err instanceof UnknownKeyError) return 'forged'
  if (err instanceof LimitExceededError) return 'limit'
  return 'invalid'
}

/** Budgets of records considered per source: a token bucket each, the least recently used forgotten. */
export class SourceBudgets {
  readonly #clock: Pick<Clock, 'now'>
  readonly #burst: number
  readonly #rate: number
  readonly #maxSources: number
  readonly #buckets = new Map<string, Bucket>()

  constructor(clock: Pick<Clock, 'now'>, burst: number, rate: number, maxSources: number) {
    this.#clock = clock
    this.#burst = burst
    this.#rate = rate
    this.#maxSources = maxSources
  }

  /** Token bucket per source; LRU-bounded map. */
  take(source: string): boolean {
    const now = this.#clock.now()
    let b = this.#buckets.get(source)
    if (b === undefined) {
      b = { tokens: this.#burst, at: now }
      if (this.#buckets.size >= this.#maxSources) {
        const oldest = this.#buckets.keys().next()
        if (oldest.done !== true) this.#buckets.delete(oldest.value)
      }
    } else {
      this.#buckets.delete(source)
      b.tokens = Math.min(this.#burst, b.tokens + (Math.max(0, now - b.at) / 1000) * this.#rate)
      b.at = now
    }
    this.#buckets.set(source, b)
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }
}

/** Verification outcomes of record bytes that can never become valid, by digest (LRU). */
export class RejectMemory {
  /** SHA-256 of recently rejected record bytes (LRU): a repeated bad record is not verified again. */
  readonly #rejectedTails = new Map<string, RejectReason>()
  readonly #maxRejectedTails: number

  constructor(maxRejectedTails: number) {
    this.#maxRejectedTails = maxRejectedTails
  }

  /** Digests remembered. */
  get size(): number {
    return this.#rejectedTails.size
  }

  /** Why the bytes of `digest` were rejected, if they were. */
  get(digest: string): RejectReason | undefined {
    return this.#rejectedTails.get(digest)
  }

  /** Remembers why the bytes of `digest` were rejected (the oldest is forgotten at the bound). */
  remember(digest: string, reason: RejectReason): void {
    if (this.#rejectedTails.size >= this.#maxRejectedTails) {
      const first = this.#rejectedTails.keys().next()
      if (first.done !== true) this.#rejectedTails.delete(first.value)
    }
    this.#rejectedTails.set(digest, reason)
  }
}
