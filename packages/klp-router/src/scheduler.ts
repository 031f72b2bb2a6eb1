import { InvalidParametersError, MessagePriority } from '@kos-mesh/interface'

/** Priority classes, highest first. */
export const PRIORITY_CLASSES = [MessagePriority.CRITICAL, MessagePriority.HIGH, MessagePriority.NORMAL, MessagePriority.LOW] as const

/** Maps any numeric priority to its class index (0 = CRITICAL ... 3 = LOW). */
export function priorityClass(priority: number): number {
  if (priority >= MessagePriority.CRITICAL) return 0
  if (priority >= MessagePriority.HIGH) return 1
  if (priority >= MessagePriority.NORMAL) return 2
  return 3
}

/** A FIFO on a growable ring buffer (O(1) push/shift, no array copying). */
class Fifo<T> {
  private buf: Array<T | undefined> = new Array(8)
  private head = 0
  length = 0

  private grow(): void {
    const next = new Array<T | undefined>(this.buf.length * 2)
    for (let i = 0; i < this.length; i++) next[i] = this.buf[(this.head + i) % this.buf.length]
    this.buf = next
    this.head = 0
  }

  push(v: T): void {
    if (this.length === this.buf.length) this.grow()
    this.buf[(this.head + this.length) % this.buf.length] = v
    this.length++
  }

  /** Puts `v` in front (it is shifted next). */
  unshift(v: T): void {
    if (this.length === this.buf.length) this.grow()
    this.head = (this.head - 1 + this.buf.length) % this.buf.length
    this.buf[this.head] = v
    this.length++
  }

  peek(): T | undefined {
    return this.length === 0 ? undefined : this.buf[this.head]
  }

  shift(): T | undefined {
    if (this.length === 0) return undefined
    const v = this.buf[this.head]
    this.buf[this.head] = undefined
    this.head = (this.head + 1) % this.buf.length
    this.length--
    return v
  }

  *drain(): Generator<T> {
    while (this.length > 0) yield this.shift() as T
  }
}

interface PriorityLane<T> {
  queues: Map<string, Fifo<T>>
  /**
   * Turns in round-robin order: a peer of its own (a non-empty queue in this lane), or the one
   * shared turn of every stranger (`STRANGERS`), which then goes round robin among the strangers.
   */
  ring: Fifo<string>
  /** Strangers with a non-empty queue in this lane, in round-robin order (they share one turn). */
  strangers: Fifo<string>
  size: number
}

/** The ring entry that stands for all strangers together (not a valid DID, so it never collides). */
const STRANGERS = '\u0000strangers'

export interface FairSchedulerInit<T = unknown> {
  /** Items queued per peer, all priorities together. Default 256. */
  maxPerPeer?: number
  /** Items queued in total. Default 8192. */
  maxTotal?: number
  /**
   * Weighted-round-robin weights for CRITICAL, HIGH, NORMAL, LOW: how many items each class
   * may take per round while higher ones are busy. Default [8, 4, 2, 1], so LOW still gets
   * 1 in 15 slots under full load (no starvation).
   */
  weights?: readonly [number, number, number, number]
  /** Bytes queued per peer (as counted by `sizeOf`). Default 4 MiB. */
  maxBytesPerPeer?: number
  /** Bytes queued in total. Default 64 MiB. */
  maxBytesTotal?: number
  /**
   * Items queued by all strangers together (they share one queue bound as they share one turn).
   * Default `maxPerPeer`. A stranger with nothing queued may always queue one item.
   */
  maxStrangers?: number
  /** Bytes queued by all strangers together. Default `maxBytesPerPeer`. */
  maxBytesStrangers?: number
  /**
   * `push` refuses a stranger's item only beyond this many times the strangers' bounds. Default 1.
   * With backpressure the router stops reading strangers at 1x (`peerFull`), but every stranger
   * connection may have one frame on its way past that check: 2 keeps those from being dropped.
   */
  strangersHardFactor?: number
  /** The bytes an item holds. Default: every item counts 0 bytes (count bounds only). */
  sizeOf?: (item: T) => number
  /**
   * A peer's recent usage (e.g. its CPU share). A peer whose queue was empty and that used less
   * than the peer next in turn goes to the front of the round (a peer that sends little is served
   * before a flooding one). Default: none (plain round robin).
   */
  usage?: (peer: string) => number
  /** All strangers' recent usage together (the strangers' shared turn's place). Default: none. */
  strangersUsage?: () => number
}

export type EnqueueResult = 'ok' | 'peer_full' | 'full'

interface PeerState {
  count: number
  bytes: number
  stranger: boolean
}

/**
 * Fair, prioritised, bounded queue. Across priority classes: weighted round robin (higher first,
 * lower never starved). Within a class: round robin across peers, so a flooding peer only delays
 * others by one of its items per turn, and a peer that used less than the one next in line (see
 * `usage`) is served first; peers pushed as *strangers* (untrusted, e.g. fresh DIDs)
 * share one turn between them, so any number of them together get the slice of one known peer
 * while known peers have work, and one queue bound between them (`maxStrangers`), so any number of
 * them together hold what one peer may. Every peer's queue, the strangers' and the whole queue are
 * bounded in items and in bytes.
 */
export class FairScheduler<T> {
  private readonly lanes: Array<PriorityLane<T>>
  private readonly credits: number[]
  private readonly weights: readonly number[]
  private readonly perPeer = new Map<string, PeerState>()
  private readonly sizeOf: (item: T) => number
  private readonly usage: ((peer: string) => number) | undefined
  private readonly strangersUsage: () => number
  readonly maxPerPeer: number
  readonly maxTotal: number
  readonly maxBytesPerPeer: number
  readonly maxBytesTotal: number
  readonly maxStrangers: number
  readonly maxBytesStrangers: number
  private readonly hardFactor: number
  /** Items and bytes queued by strangers. */
  strangerSize = 0
  strangerBytes = 0
  size = 0
  /** Bytes queued (as counted by `sizeOf`). */
  bytes = 0

  constructor(init: FairSchedulerInit<T> = {}) {
    this.maxPerPeer = init.maxPerPeer ?? 256
    this.maxTotal = init.maxTotal ?? 8192
    this.maxBytesPerPeer = init.maxBytesPerPeer ?? 4 * 1024 * 1024
    this.maxBytesTotal = init.maxBytesTotal ?? 64 * 1024 * 1024
    this.maxStrangers = init.maxStrangers ?? this.maxPerPeer
    this.maxBytesStrangers = init.maxBytesStrangers ?? this.maxBytesPerPeer
    this.hardFactor = init.strangersHardFactor ?? 1
    if (!(this.maxStrangers >= 1) || !(this.maxBytesStrangers >= 1)) {
      throw new InvalidParametersError(`expected strangers' queue bounds >= 1, got ${this.maxStrangers} items, ${this.maxBytesStrangers} bytes`)
    }
    this.sizeOf = init.sizeOf ?? (() => 0)
    this.usage = init.usage
    this.strangersUsage = init.strangersUsage ?? (() => 0)
    this.weights = init.weights ?? [8, 4, 2, 1]
    if (this.weights.length !== 4 || this.weights.some((w) => !Number.isInteger(w) || w < 1)) {
      throw new InvalidParametersError(`expected 4 integer weights >= 1, got [${this.weights.join(', ')}]`)
    }
    if (!(this.maxPerPeer >= 1) || !(this.maxTotal >= 1)) {
      throw new InvalidParametersError(`expected queue bounds >= 1, got maxPerPeer ${this.maxPerPeer}, maxTotal ${this.maxTotal}`)
    }
    if (!(this.maxBytesPerPeer >= 1) || !(this.maxBytesTotal >= this.maxBytesPerPeer)) {
      throw new InvalidParametersError(`expected byte bounds 1 <= maxBytesPerPeer <= maxBytesTotal, got ${this.maxBytesPerPeer} and ${this.maxBytesTotal}`)
    }
    this.lanes = PRIORITY_CLASSES.map(() => ({ queues: new Map(), ring: new Fifo<string>(), strangers: new Fifo<string>(), size: 0 }))
    this.credits = [...this.weights]
  }

  /** Queue depth per priority class: [critical, high, normal, low]. */
  depths(): [number, number, number, number] {
    return [this.lanes[0]!.size, this.lanes[1]!.size, this.lanes[2]!.size, this.lanes[3]!.size]
  }

  peerDepth(peer: string): number {
    return this.perPeer.get(peer)?.count ?? 0
  }

  /** Bytes queued for one peer. */
  peerBytes(peer: string): number {
    return this.perPeer.get(peer)?.bytes ?? 0
  }

  /**
   * Whether a peer with items queued may not queue an item of `bytes` more: its own bound, or for
   * a stranger the strangers' shared one (`below` > 1 asks for room below a fraction of the bounds:
   * e.g. 2 = whether the queue is over half full).
   */
  peerFull(peer: string, bytes: number, below = 1): boolean {
    const st = this.perPeer.get(peer)
    if (st === undefined) return false
    // at a bound: the count reached it; over a fraction: the count is above it
    const slack = below === 1 ? 1 : 0
    if (st.count * below + slack > this.maxPerPeer || (st.bytes + bytes) * below > this.maxBytesPerPeer) return true
    return st.stranger && (this.strangerSize * below + slack > this.maxStrangers || (this.strangerBytes + bytes) * below > this.maxBytesStrangers)
  }

  /**
   * Queues an item of `peer`. A peer pushed as a `stranger` shares one round-robin turn with every
   * other stranger (a peer keeps the class it had while it has items queued). An item larger than
   * the per-peer byte bound is still accepted when the peer has nothing queued (one frame always fits).
   */
  push(peer: string, priority: number, item: T, stranger = false): EnqueueResult {
    let st = this.perPeer.get(peer)
    const bytes = this.sizeOf(item)
    if (st !== undefined) {
      if (st.count >= this.maxPerPeer || st.bytes + bytes > this.maxBytesPerPeer) return 'peer_full'
      const h = this.hardFactor
      if (st.stranger && (this.strangerSize >= this.maxStrangers * h || this.strangerBytes + bytes > this.maxBytesStrangers * h)) return 'peer_full'
    }
    if (this.size >= this.maxTotal || (this.size > 0 && this.bytes + bytes > this.maxBytesTotal)) return 'full'
    if (st === undefined) {
      st = { count: 0, bytes: 0, stranger }
      this.perPeer.set(peer, st)
    }
    const lane = this.lanes[priorityClass(priority)]!
    let q = lane.queues.get(peer)
    if (q === undefined) {
      q = new Fifo<T>()
      lane.queues.set(peer, q)
    }
    if (q.length === 0) {
      if (!st.stranger) this.enter(lane.ring, peer, this.usage?.(peer))
      else {
        if (lane.strangers.length === 0) this.enter(lane.ring, STRANGERS, this.usage === undefined ? undefined : this.strangersUsage())
        this.enter(lane.strangers, peer, this.usage?.(peer))
      }
    }
    q.push(item)
    lane.size++
    this.size++
    this.bytes += bytes
    st.count++
    st.bytes += bytes
    if (st.stranger) {
      this.strangerSize++
      this.strangerBytes += bytes
    }
    return 'ok'
  }

  /** A turn joins the round: in front when it used less than the turn next in line, else at the back. */
  private enter(ring: Fifo<string>, turn: string, used: number | undefined): void {
    const head = ring.peek()
    if (used !== undefined && head !== undefined && used < (head === STRANGERS ? this.strangersUsage() : this.usage!(head))) ring.unshift(turn)
    else ring.push(turn)
  }

  /**
   * Next item by weighted round robin across classes and round robin across peers. Peers for which
   * `skip` says so (e.g. at their share of the pipeline's slots) are passed over and keep their
   * place; undefined when every queued item is of such a peer.
   */
  shift(skip?: (peer: string) => boolean): T | undefined {
    if (this.size === 0) return undefined
    for (let pass = 0; pass < 2; pass++) {
      for (let c = 0; c < 4; c++) {
        const lane = this.lanes[c]!
        if (lane.size > 0 && this.credits[c]! > 0) {
          const item = this.take(lane, skip)
          if (item === undefined) continue // every peer of this class is skipped: the next class
          this.credits[c]!--
          return item
        }
      }
      for (let c = 0; c < 4; c++) this.credits[c] = this.weights[c]!
    }
    return undefined
  }

  /** The next turn in a ring that is not skipped (rotating skipped ones to the back), or undefined. */
  private nextTurn(ring: Fifo<string>, ok: (turn: string) => boolean): string | undefined {
    for (let n = ring.length; n > 0; n--) {
      const turn = ring.shift()!
      if (ok(turn)) return turn
      ring.push(turn)
    }
    return undefined
  }

  private take(lane: PriorityLane<T>, skip?: (peer: string) => boolean): T | undefined {
    const free = skip === undefined ? undefined : (p: string): boolean => !skip(p)
    let turn: string | undefined
    let peer: string | undefined
    if (free === undefined) turn = lane.ring.shift()
    else {
      turn = this.nextTurn(lane.ring, (t) => (t === STRANGERS ? lane.strangers.length > 0 && (peer = this.nextTurn(lane.strangers, free)) !== undefined : free(t)))
    }
    if (turn === undefined) return undefined
    const shared = turn === STRANGERS
    if (!shared) peer = turn
    else if (free === undefined) peer = lane.strangers.shift()!
    const q = lane.queues.get(peer!)!
    const item = q.shift() as T
    if (shared) {
      if (q.length > 0) lane.strangers.push(peer!)
      else lane.queues.delete(peer!)
      if (lane.strangers.length > 0) lane.ring.push(STRANGERS)
    } else if (q.length > 0) lane.ring.push(peer!)
    else lane.queues.delete(peer!)
    lane.size--
    this.size--
    // a drained queue starts a fresh round: bursts are served in strict priority order, and the
    // weights only share the slots while classes compete
    if (this.size === 0) for (let c = 0; c < 4; c++) this.credits[c] = this.weights[c]!
    const bytes = this.sizeOf(item)
    this.bytes -= bytes
    const st = this.perPeer.get(peer!)!
    st.count--
    st.bytes -= bytes
    if (st.stranger) {
      this.strangerSize--
      this.strangerBytes -= bytes
    }
    if (st.count === 0) this.perPeer.delete(peer!)
    return item
  }

  /** Removes and returns everything (used on stop). */
  clear(): T[] {
    const out: T[] = []
    for (const lane of this.lanes) {
      for (const q of lane.queues.values()) for (const v of q.drain()) out.push(v)
      lane.queues.clear()
      lane.ring = new Fifo<string>()
      lane.strangers = new Fifo<string>()
      lane.size = 0
    }
    this.perPeer.clear()
    this.size = 0
    this.bytes = 0
    this.strangerSize = 0
    this.strangerBytes = 0
    return out
  }
}
