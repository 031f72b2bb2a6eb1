/**
 * The receiver's link to the sender: stall detection (no chunk for `stallTimeoutMs` while some
 * are outstanding: ask again, within `maxStalls` consecutive stalls) and re-dialling the sender
 * after a dropped connection (data frames need a direct connection). Time only from the
 * context's clock. Internal.
 */
import type { TimerHandle } from '@kos-mesh/interface'
import type { BulkContext } from './context.js'
import { BulkTimeoutError, BulkUnreachableError } from './errors.js'

export interface StallLimits {
  stallTimeoutMs: number
  maxStalls: number
}

export interface StallHooks {
  /** Still running with chunks outstanding (otherwise the timer stops). */
  waiting(): boolean
  connected(): boolean
  /** Ask again for what is outstanding (a new epoch). */
  retry(stalls: number): void
  /** Out of retries. */
  giveUp(err: Error): void
}

/** The stall timer and the consecutive-stall budget (shared with transient leaf page failures). */
export class StallWatch {
  /** Clock ms of the last chunk (or of the first pull after an idle window). */
  lastProgress = 0
  /** Consecutive stalls (reset by a chunk). */
  stalls = 0
  /** Stalls over the whole transfer. */
  total = 0
  private timer: TimerHandle | undefined

  constructor(
    private readonly ctx: BulkContext,
    private readonly limits: StallLimits,
    private readonly senderDid: string,
    private readonly hooks: StallHooks,
  ) {}

  /** A chunk arrived. */
  progress(): void {
    this.stalls = 0
    this.lastProgress = this.ctx.clock.now()
  }

  /** Counts a transient failure against the budget; false when the budget is spent. */
  spend(): boolean {
    if (this.stalls >= this.limits.maxStalls) return false
    this.stalls++
    this.total++
    return true
  }

  arm(): void {
    if (this.timer !== undefined) return
    this.timer = this.ctx.clock.setTimeout(() => this.fire(), this.limits.stallTimeoutMs, { unref: true })
  }

  clear(): void {
    if (this.timer !== undefined) this.ctx.clock.clearTimeout(this.timer)
    this.timer = undefined
  }

  private fire(): void {
    this.timer = undefined
    if (!this.hooks.waiting()) return
    if (!this.hooks.connected()) {
      this.arm()
      return
    }
    const idle = this.ctx.clock.now() - this.lastProgress
    const limit = this.limits.stallTimeoutMs
    if (idle < limit) {
      this.timer = this.ctx.clock.setTimeout(() => this.fire(), limit - idle, { unref: true })
      return
    }
    this.stalls++
    this.total++
    if (this.stalls > this.limits.maxStalls) {
      this.hooks.giveUp(new BulkTimeoutError(`expected a chunk from ${this.senderDid} within ${limit} ms, got none after ${this.limits.maxStalls} retries`))
      return
    }
    this.hooks.retry(this.stalls)
  }
}

/** True when the router has a connection to `did`. */
export function isConnected(ctx: BulkContext, did: string): boolean {
  return ctx.router.peers().some((p) => p.did === did)
}

/**
 * Dials `did` at `addrs` (in turn, with back-off) until connected or `timeoutMs` is over
 * (`BulkUnreachableError`). `check()` throws when the transfer ended meanwhile.
 */
export async function redial(ctx: BulkContext, did: string, addrs: readonly string[], timeoutMs: number, signal: AbortSignal, check: () => void, id: string): Promise<void> {
  const clock = ctx.clock
  const deadline = clock.now() + timeoutMs
  let attempt = 0
  let backoff = 50
  for (;;) {
    check()
    if (isConnected(ctx, did)) return
    const left = deadline - clock.now()
    if (left <= 0) throw new BulkUnreachableError(`expected a direct connection to ${did} within ${timeoutMs} ms, got none (addresses: ${addrs.join(', ') || 'none'})`)
    const addr = addrs.length === 0 ? undefined : addrs[attempt++ % addrs.length]
    if (addr !== undefined) {
      const timeout = new AbortController()
      const t = clock.setTimeout(() => timeout.abort(), Math.min(left, ctx.requestTimeoutMs), { unref: true })
      try {
        await ctx.router.dial(addr, { remotePeer: did, signal: AbortSignal.any([signal, timeout.signal]) })
      } catch (err) {
        ctx.log.debug('bulk dial failed', { id, addr, err: err instanceof Error ? err.name : '' })
      } finally {
        clock.clearTimeout(t)
      }
      check()
      if (isConnected(ctx, did)) return
    }
    await clock.sleep(Math.min(backoff, Math.max(1, deadline - clock.now())), { signal }).catch(() => {})
    backoff = Math.min(1000, backoff * 2)
  }
}
