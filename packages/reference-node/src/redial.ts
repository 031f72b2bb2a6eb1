/**
 * Redialing: after a restart or a lost connection, the node dials the peers it knew (and its
 * seeds) again, with exponential backoff and jitter on the injected clock. Each target gets
 * `maxAttempts` attempts with delays initialDelayMs * factor^n (capped at maxDelayMs, each +-jitter),
 * then one attempt every `slowRetryMs`, so a node that comes back after an hour is still found and
 * no peer is dialled more often than that. A connection from either side resets the target.
 */
import { InvalidParametersError, type Clock, type TimerHandle } from '@kos-mesh/interface'

/**
 * How a node redials the peers it knew and its seeds (`NodeInit.reconnect`): exponential backoff
 * with jitter per outage, then a slow retry. Every field is optional; a value out of its range
 * throws InvalidParametersError from `createNode()`.
 */
export interface ReconnectInit {
  /** Delay before the first redial of a lost peer, ms. Default 1,000. */
  initialDelayMs?: number
  /** Longest delay between two fast attempts, ms. Default 60,000. */
  maxDelayMs?: number
  /** Growth of the delay per attempt. Default 2. */
  factor?: number
  /** Random spread of each delay, as a fraction (0.2 = +-20 %). Default 0.2. */
  jitter?: number
  /** Fast attempts per outage before falling back to `slowRetryMs`. Default 10. */
  maxAttempts?: number
  /** Period of the attempts after `maxAttempts`, ms. Default 600,000 (10 minutes). */
  slowRetryMs?: number
  /** Time allowed for one dial (all the target's addresses), ms. Default 10,000. */
  dialTimeoutMs?: number
  /** Dials in flight at once. Default 4. */
  maxParallel?: number
  /** Peers remembered in the store (`peer/<did>`). Default 256. */
  maxKnownPeers?: number
  /** Random numbers in [0, 1) for the jitter. Default Math.random. */
  random?: () => number
}

/** The backoff of the redials, every value set (see ReconnectInit for each field's meaning and bounds). */
export interface BackoffSettings {
  /** Delay before the first redial, ms (>= 1). */
  initialDelayMs: number
  /** Longest delay between two fast attempts, ms (>= initialDelayMs). */
  maxDelayMs: number
  /** Growth of the delay per attempt (1..100). */
  factor: number
  /** Random spread of each delay, a fraction 0..0.99. */
  jitter: number
  /** Fast attempts per outage before `slowRetryMs` (0..1,000,000). */
  maxAttempts: number
  /** Period of the attempts after `maxAttempts`, ms (>= 1). */
  slowRetryMs: number
}

/** The default backoff: 1 s doubling to 60 s, +-20 % jitter, 10 fast attempts, then every 10 minutes. */
export const DEFAULT_BACKOFF: Readonly<BackoffSettings> = Object.freeze({
  initialDelayMs: 1_000,
  maxDelayMs: 60_000,
  factor: 2,
  jitter: 0.2,
  maxAttempts: 10,
  slowRetryMs: 600_000,
})

/**
 * The delay before attempt `attempt` (1 = the first redial): initialDelayMs * factor^(attempt-1),
 * capped at maxDelayMs, spread by +-jitter; after maxAttempts, slowRetryMs (spread too).
 */
export function backoffDelay(attempt: number, s: BackoffSettings, random: () => number): number {
  const base = attempt > s.maxAttempts ? s.slowRetryMs : Math.min(s.maxDelayMs, s.initialDelayMs * s.factor ** Math.max(0, attempt - 1))
  const spread = 1 - s.jitter + 2 * s.jitter * Math.min(Math.max(random(), 0), 1)
  return Math.max(0, Math.round(base * spread))
}

export function backoffSettings(init: ReconnectInit = {}): BackoffSettings {
  const n = (name: keyof BackoffSettings, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const v = init[name] ?? DEFAULT_BACKOFF[name]
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw new InvalidParametersError(`reconnect.${name}: expected a number in ${min}..${max}, got ${String(init[name])}`)
    return v
  }
  const s: BackoffSettings = {
    initialDelayMs: n('initialDelayMs', 1),
    maxDelayMs: n('maxDelayMs', 1),
    factor: n('factor', 1, 100),
    jitter: n('jitter', 0, 0.99),
    maxAttempts: Math.floor(n('maxAttempts', 0, 1_000_000)),
    slowRetryMs: n('slowRetryMs', 1),
  }
  if (s.maxDelayMs < s.initialDelayMs) throw new InvalidParametersError(`reconnect.maxDelayMs: expected at least initialDelayMs (${s.initialDelayMs}), got ${s.maxDelayMs}`)
  return s
}

/** A peer the node redials. */
export interface RedialTarget {
  /** The DID when known (`undefined` for a seed given without one, until it answers). */
  did?: string
  /** Transport addresses to try in order (a seed's may end with `/did:...`). */
  addrs: string[]
  /** A configured seed (kept even when it never answered). */
  seed: boolean
}

/** What `status` shows of one target. */
export interface RedialState {
  did?: string
  addrs: string[]
  seed: boolean
  /** `connected`, `waiting` (the next attempt is scheduled), `dialing`, or `idle` (nothing scheduled). */
  state: 'connected' | 'waiting' | 'dialing' | 'idle'
  /** Failed attempts since the last connection. */
  attempts: number
  /** Clock ms of the next attempt, when waiting. */
  nextAt?: number
  /** Name of the last dial error. */
  lastError?: string
}

interface Target extends RedialTarget {
  key: string
  attempts: number
  timer: TimerHandle | undefined
  nextAt: number | undefined
  dialing: boolean
  lastError: string | undefined
}

export interface RedialerComponents {
  clock: Clock
  /** Dials one address (with the expected DID when known); resolves with the DID reached. */
  dial: (addr: string, did: string | undefined, signal: AbortSignal) => Promise<{ did: string }>
  /** Whether `did` is connected now. */
  isConnected: (did: string) => boolean
  /** Called after a redial connected (e.g. to pull the peer's table). */
  onRedialed?: (did: string, target: RedialTarget, attempts: number) => void
  /** Called when an attempt failed and the next one is scheduled. */
  onFailed?: (target: RedialTarget, attempts: number, delayMs: number, err: unknown) => void
}

export class Redialer {
  private readonly targets = new Map<string, Target>()
  private readonly s: BackoffSettings
  private readonly random: () => number
  private readonly dialTimeoutMs: number
  private readonly maxParallel: number
  private inFlight = 0
  private running = false
  private stopController = new AbortController()

  constructor(
    init: ReconnectInit,
    private readonly c: RedialerComponents,
  ) {
    this.s = backoffSettings(init)
    this.random = init.random ?? Math.random
    this.dialTimeoutMs = init.dialTimeoutMs ?? 10_000
    this.maxParallel = Math.max(1, init.maxParallel ?? 4)
    if (!(Number.isFinite(this.dialTimeoutMs) && this.dialTimeoutMs > 0)) throw new InvalidParametersError(`reconnect.dialTimeoutMs: expected a positive number, got ${String(init.dialTimeoutMs)}`)
  }

  get settings(): Readonly<BackoffSettings> {
    return this.s
  }

  /** Adds or updates a target (by DID, else by its first address). */
  set(target: RedialTarget): void {
    const key = target.did ?? `addr:${target.addrs[0] ?? ''}`
    if (target.addrs.length === 0) return
    const cur = this.targets.get(key)
    if (cur !== undefined) {
      cur.addrs = [...new Set([...(target.seed ? target.addrs : []), ...cur.addrs, ...target.addrs])].slice(0, 8)
      cur.seed ||= target.seed
      return
    }
    this.targets.set(key, { ...target, addrs: [...target.addrs], key, attempts: 0, timer: undefined, nextAt: undefined, dialing: false, lastError: undefined })
  }

  /** Removes a target. */
  delete(did: string): void {
    const t = this.targets.get(did)
    if (t === undefined) return
    this.c.clock.clearTimeout(t.timer)
    this.targets.delete(did)
  }

  /** Schedules a first attempt for every target that is not connected (spread over initialDelayMs). */
  start(): void {
    if (this.running) return
    this.running = true
    this.stopController = new AbortController()
    for (const t of this.targets.values()) {
      if (t.did !== undefined && this.c.isConnected(t.did)) continue
      this.schedule(t, Math.round(this.random() * this.s.initialDelayMs))
    }
  }

  stop(): void {
    this.running = false
    this.stopController.abort()
    for (const t of this.targets.values()) {
      this.c.clock.clearTimeout(t.timer)
      t.timer = undefined
      t.nextAt = undefined
    }
  }

  /** A connection to `did` (either direction): its target rests. */
  connected(did: string): void {
    for (const t of this.targets.values()) {
      if (t.did !== did) continue
      this.c.clock.clearTimeout(t.timer)
      t.timer = undefined
      t.nextAt = undefined
      t.attempts = 0
      t.lastError = undefined
    }
  }

  /** `did` went away: schedule its first redial (when it is a target). Returns whether one was scheduled. */
  disconnected(did: string): boolean {
    if (!this.running) return false
    let scheduled = false
    for (const t of this.targets.values()) {
      if (t.did !== did || t.timer !== undefined || t.dialing) continue
      t.attempts = 0
      this.schedule(t, backoffDelay(1, this.s, this.random))
      scheduled = true
    }
    return scheduled
  }

  /** Targets being redialled (not connected). */
  pending(): number {
    let n = 0
    for (const t of this.targets.values()) if (t.timer !== undefined || t.dialing) n++
    return n
  }

  states(): RedialState[] {
    return [...this.targets.values()].map((t) => {
      const connected = t.did !== undefined && this.c.isConnected(t.did)
      const state: RedialState['state'] = t.dialing ? 'dialing' : connected ? 'connected' : t.timer !== undefined ? 'waiting' : 'idle'
      return {
        ...(t.did === undefined ? {} : { did: t.did }),
        addrs: [...t.addrs],
        seed: t.seed,
        state,
        attempts: t.attempts,
        ...(state === 'waiting' && t.nextAt !== undefined ? { nextAt: t.nextAt } : {}),
        ...(t.lastError === undefined ? {} : { lastError: t.lastError }),
      }
    })
  }

  private schedule(t: Target, delay: number): void {
    if (!this.running) return
    this.c.clock.clearTimeout(t.timer)
    t.nextAt = this.c.clock.now() + delay
    t.timer = this.c.clock.setTimeout(() => {
      t.timer = undefined
      t.nextAt = undefined
      void this.attempt(t)
    }, delay, { unref: true })
  }

  private async attempt(t: Target): Promise<void> {
    if (!this.running || this.targets.get(t.key) !== t) return
    if (t.did !== undefined && this.c.isConnected(t.did)) {
      this.connected(t.did)
      return
    }
    if (this.inFlight >= this.maxParallel) {
      // no attempt spent: try again shortly
      this.schedule(t, Math.round(this.s.initialDelayMs * (0.5 + this.random())))
      return
    }
    this.inFlight++
    t.dialing = true
    const controller = new AbortController()
    const onStop = (): void => controller.abort()
    this.stopController.signal.addEventListener('abort', onStop, { once: true })
    const timer = this.c.clock.setTimeout(() => controller.abort(), this.dialTimeoutMs, { unref: true })
    let lastErr: unknown
    try {
      for (const addr of t.addrs) {
        if (controller.signal.aborted) break
        try {
          const info = await this.c.dial(addr, t.did ?? didOfAddress(addr), controller.signal)
          const attempts = t.attempts + 1
          t.dialing = false
          // the address that answered goes first
          t.addrs = [addr, ...t.addrs.filter((a) => a !== addr)]
          if (t.did === undefined) {
            // a seed given without its DID: now known, one target per DID
            const same = this.targets.get(info.did)
            if (same !== undefined && same !== t) {
              same.addrs = [...new Set([...t.addrs, ...same.addrs])].slice(0, 8)
              same.seed ||= t.seed
              this.targets.delete(t.key)
            } else {
              this.targets.delete(t.key)
              t.key = info.did
              this.targets.set(info.did, t)
            }
            t.did = info.did
          }
          this.connected(info.did)
          this.c.onRedialed?.(info.did, this.targets.get(info.did) ?? t, attempts)
          return
        } catch (err) {
          lastErr = err
        }
      }
    } finally {
      t.dialing = false
      this.inFlight--
      this.c.clock.clearTimeout(timer)
      this.stopController.signal.removeEventListener('abort', onStop)
    }
    if (!this.running) return
    if (t.did !== undefined && this.c.isConnected(t.did)) {
      this.connected(t.did)
      return
    }
    t.attempts++
    t.lastError = lastErr instanceof Error ? lastErr.name : controller.signal.aborted ? 'TimeoutError' : 'Error'
    const delay = backoffDelay(t.attempts + 1, this.s, this.random)
    this.c.onFailed?.(t, t.attempts, delay, lastErr)
    this.schedule(t, delay)
  }
}

function didOfAddress(addr: string): string | undefined {
  const i = addr.indexOf('/did:')
  return i < 0 ? undefined : addr.slice(i + 1)
}
