import { InvalidParametersError, type ReplayCache } from '@kos-mesh/interface'

export interface ReplayWindowInit {
  /** Maximum remembered ids. Default 100,000. When full, expired ids are purged, then the oldest is evicted. */
  maxEntries?: number
  /** Clock (ms). */
  now: () => number
}

/**
 * Remembers message ids until their expiry (message `timestamp + ttl` plus clock skew), so a
 * replayed message is caught for exactly as long as it would otherwise be accepted.
 * Bounded: at most `maxEntries` ids.
 */
export class ReplayWindow implements ReplayCache {
  private readonly seen = new Map<string, number>()
  private readonly maxEntries: number
  private readonly now: () => number
  private lastSweep = 0
  private inserts = 0
  private purged = 0
  /** Unexpired ids dropped because the window was full (a replay of those would be missed). */
  evictions = 0

  constructor(init: ReplayWindowInit) {
    this.maxEntries = init.maxEntries ?? 100_000
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) {
      throw new InvalidParametersError(`expected maxEntries to be a positive integer, got ${init.maxEntries}`)
    }
    this.now = init.now
  }

  get size(): number {
    return this.seen.size
  }

  /** True when the id is remembered and not yet expired. */
  has(id: string): boolean {
    const exp = this.seen.get(id)
    if (exp === undefined) return false
    if (exp <= this.now()) {
      this.seen.delete(id)
      return false
    }
    return true
  }

  checkAndRecord(id: string, expiresAt: number): boolean {
    const now = this.now()
    const exp = this.seen.get(id)
    if (exp !== undefined && exp > now) return false
    if (exp !== undefined) this.seen.delete(id)
    // cheap incremental purge, every 8th insert (one iterator, not two per message): the oldest
    // inserted entries usually expire first; up to 16 go at once, 2 per insert on average
    if ((++this.inserts & 7) === 0) {
      for (const [k, e] of this.seen) {
        if (e > now || ++this.purged > 16) break
        this.seen.delete(k)
      }
      this.purged = 0
    }
    if (this.seen.size >= this.maxEntries) this.makeRoom(now)
    this.seen.set(id, expiresAt)
    return true
  }

  private makeRoom(now: number): void {
    if (now - this.lastSweep >= 1000) {
      this.lastSweep = now
      for (const [k, e] of this.seen) if (e <= now) this.seen.delete(k)
    }
    while (this.seen.size >= this.maxEntries) {
      const first = this.seen.keys().next()
      if (first.done === true) break
      this.seen.delete(first.value)
      this.evictions++
    }
  }

  clear(): void {
    this.seen.clear()
  }
}
