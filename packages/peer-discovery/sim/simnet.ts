/**
 * A message-passing network for simulating sans-I/O protocol cores (the Kademlia and gossip cores)
 * at thousands of nodes in virtual time: no routers, no transports, no crypto — only the cores, a
 * virtual clock (the memory network's scheduler) and links with latency, jitter and loss drawn from
 * one seeded PRNG. Deterministic: the same seed and the same calls give the same run.
 *
 * Not shipped (sim/ is outside src/); tests and `pnpm sim` use it.
 */
import { mulberry32, type Clock } from '@kos-mesh/interface'
import { createMemoryNetwork, type MemoryNetwork } from '@kos-mesh/transport-memory'

export interface SimNetInit {
  seed?: number
  /** One-way latency, ms. Default 50. */
  latencyMs?: number
  /** Uniform extra latency in [0, jitterMs). Default 0. */
  jitterMs?: number
  /** Probability that a message is lost. Default 0. */
  loss?: number
  /**
   * Events up to this many ms apart run in one batch between event-loop turns (fewer turns for
   * large runs; promise reactions may then happen up to this late). Default 0 (exact).
   */
  batchMs?: number
}

export type SimHandler<M> = (from: number, message: M) => void

/** Per-run counters. */
export interface SimNetStats {
  sent: number
  delivered: number
  lost: number
  /** Sent to a node that is down (or unknown): dropped. */
  dropped: number
}

export class SimNet<M> {
  readonly clock: Clock
  readonly random: () => number
  readonly stats: SimNetStats = { sent: 0, delivered: 0, lost: 0, dropped: 0 }
  private readonly network: MemoryNetwork
  private readonly handlers = new Map<number, SimHandler<M>>()
  private readonly down = new Set<number>()
  private readonly latencyMs: number
  private readonly jitterMs: number
  private readonly loss: number
  private readonly batchMs: number

  constructor(init: SimNetInit = {}) {
    this.network = createMemoryNetwork({ time: 'virtual', seed: init.seed ?? 0 })
    this.clock = this.network.clock
    this.random = mulberry32(((init.seed ?? 0) ^ 0x5eed) >>> 0)
    this.latencyMs = init.latencyMs ?? 50
    this.jitterMs = init.jitterMs ?? 0
    this.loss = init.loss ?? 0
    this.batchMs = init.batchMs ?? 0
  }

  /** Registers node `id`'s receive function (a node is up once it has one). */
  attach(id: number, handler: SimHandler<M>): void {
    this.handlers.set(id, handler)
    this.down.delete(id)
  }

  /** Takes a node down (messages to it are dropped) or back up. */
  setDown(id: number, isDown: boolean): void {
    if (isDown) this.down.add(id)
    else this.down.delete(id)
  }

  isUp(id: number): boolean {
    return this.handlers.has(id) && !this.down.has(id)
  }

  /** Sends `message` from `from` to `to`: delivered after the link's latency unless lost or `to` is down then. */
  send(from: number, to: number, message: M): void {
    this.stats.sent++
    if (this.loss > 0 && this.random() < this.loss) {
      this.stats.lost++
      return
    }
    const delay = this.latencyMs + (this.jitterMs > 0 ? this.random() * this.jitterMs : 0)
    this.clock.setTimeout(() => {
      const h = this.handlers.get(to)
      if (h === undefined || this.down.has(to)) {
        this.stats.dropped++
        return
      }
      this.stats.delivered++
      h(from, message)
    }, delay)
  }

  /** Advances virtual time by `ms`, running everything due. */
  async runFor(ms: number): Promise<void> {
    await this.network.runFor(ms, this.batchMs > 0 ? { stepMs: this.batchMs } : {})
  }

  /** Advances virtual time in steps until `done()` holds or `maxMs` passed; returns whether it held. */
  async runUntil(done: () => boolean, maxMs: number, stepMs = 10): Promise<boolean> {
    const end = this.clock.now() + maxMs
    while (!done()) {
      if (this.clock.now() >= end) return false
      await this.network.runFor(stepMs, this.batchMs > 0 ? { stepMs: this.batchMs } : {})
    }
    return true
  }
}
