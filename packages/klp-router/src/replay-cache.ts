import { InvalidParametersError, type ReplayCache } from '@kos-mesh/interface'

export interface ReplayWindowInit {
  /** Maximum remembered ids. Default 100,000. When full, expired ids are purged, then the id expiring first is evicted. */
  maxEntries?: number
  /**
   * Maximum ids one owner (the router passes the signer DID) may hold. Default 10 % of
   * `maxEntries` (at least 1). Beyond it the owner's oldest id is evicted and the owner's own
   * floor is raised (see `checkAndRecord`), so one signer cannot push out anybody else's ids.
   */
  maxPerOwner?: number
  /** Clock (ms). */
  now: () => number
}

interface Entry {
  readonly key: string
  readonly exp: number
  readonly owner: OwnerState | undefined
  /** Insertion order (ties of `exp` go oldest first). */
  readonly seq: number
  live: boolean
}

function before(a: Entry, b: Entry): boolean {
  return a.exp < b.exp || (a.exp === b.exp && a.seq < b.seq)
}

interface OwnerState {
  readonly name: string
  count: number
  /** Ids of this owner expiring at or before this time may have been evicted: treated as replays. */
  floor: number
  /** The owner's entries, a min-heap by expiry (dead ones are skipped and compacted). */
  heap: Entry[]
}

/**
 * Remembers message ids until their expiry (message `timestamp + ttl` plus clock skew), so a
 * replayed message is caught for exactly as long as it would otherwise be accepted.
 *
 * Bounded: at most `maxEntries` ids. An unexpired id is never forgotten silently: when one must
 * be evicted (the window is full), the id expiring first goes and the window's *floor*
 * (`evictedUntil`) is raised to its expiry; from then on every id expiring at or before the floor
 * is refused as a possible replay (fail closed). Each owner (signer) may hold at most
 * `maxPerOwner` ids; beyond that its own id expiring first is evicted and a per-owner floor is raised,
 * which only affects that owner's messages.
 */
export class ReplayWindow implements ReplayCache {
  private readonly seen = new Map<string, Entry>()
  /** Binary min-heap of entries by expiry (lazy deletion: dead entries are skipped). */
  private heap: Entry[] = []
  private readonly owners = new Map<string, OwnerState>()
  private readonly maxEntries: number
  private readonly maxPerOwner: number
  private readonly now: () => number
  private inserts = 0
  /** Unexpired ids dropped because the window (or an owner's quota) was full. */
  evictions = 0
  /** Ids expiring at or before this time may have been evicted: they count as replays. */
  evictedUntil = -Infinity

  constructor(init: ReplayWindowInit) {
    this.maxEntries = init.maxEntries ?? 100_000
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) {
      throw new InvalidParametersError(`expected maxEntries to be a positive integer, got ${init.maxEntries}`)
    }
    this.maxPerOwner = init.maxPerOwner ?? Math.max(1, Math.floor(this.maxEntries / 10))
    if (!Number.isInteger(this.maxPerOwner) || this.maxPerOwner < 1) {
      throw new InvalidParametersError(`expected maxPerOwner to be a positive integer, got ${init.maxPerOwner}`)
    }
    this.now = init.now
  }

  get size(): number {
    return this.seen.size
  }

  /** True when the id is remembered and not yet expired. */
  has(id: string): boolean {
    const e = this.seen.get(id)
    if (e === undefined) return false
    if (e.exp <= this.now()) {
      this.kill(e)
      return false
    }
    return true
  }

  /**
   * True when a message of `owner` expiring at `expiresAt` is below a floor (the window or the
   * owner had to evict unexpired ids expiring at or after it): it may be a replay of an evicted id.
   */
  belowFloor(expiresAt: number, owner?: string): boolean {
    if (expiresAt <= this.evictedUntil) return true
    if (owner === undefined) return false
    const o = this.owners.get(owner)
    return o !== undefined && expiresAt <= o.floor
  }

  /**
   * Returns true when the id was not seen (and records it until `expiresAt`), false when it is
   * (possibly) a replay: remembered, or expiring at or before a floor. `owner` (the signer DID)
   * is charged for the entry against `maxPerOwner`.
   */
  checkAndRecord(id: string, expiresAt: number, owner?: string): boolean {
    const now = this.now()
    const cur = this.seen.get(id)
    if (cur !== undefined) {
      if (cur.exp > now) return false
      this.kill(cur)
    }
    if (this.belowFloor(expiresAt, owner)) return false
    // incremental purge: up to 4 expired (or dead) entries from the heap top per insert
    this.purge(now, 4)
    if ((++this.inserts & 1023) === 0) this.maintain(now)
    let o: OwnerState | undefined
    if (owner !== undefined) {
      o = this.owners.get(owner)
      if (o === undefined) {
        o = { name: owner, count: 0, floor: -Infinity, heap: [] }
        this.owners.set(owner, o)
      }
      while (o.count >= this.maxPerOwner && this.evictOwn(o, now));
    }
    if (this.seen.size >= this.maxEntries) this.makeRoom(now)
    const e: Entry = { key: id, exp: expiresAt, owner: o, seq: this.inserts, live: true }
    this.seen.set(id, e)
    heapPush(this.heap, e)
    if (o !== undefined) {
      o.count++
      heapPush(o.heap, e)
    }
    return true
  }

  /** Removes an entry from the map and its owner's count (its heap and fifo slots die lazily). */
  private kill(e: Entry): void {
    if (!e.live) return
    e.live = false
    this.seen.delete(e.key)
    const o = e.owner
    if (o !== undefined) {
      o.count--
      if (o.heap.length > 2 * o.count + 16) o.heap = heapify(o.heap.filter((x) => x.live))
    }
  }

  /** The owner is over its quota: its id expiring first goes, and the owner's floor rises to it. */
  private evictOwn(o: OwnerState, now: number): boolean {
    for (;;) {
      const e = heapPop(o.heap)
      if (e === undefined) return false
      if (!e.live) continue
      if (e.exp > now) {
        this.evictions++
        if (e.exp > o.floor) o.floor = e.exp
      }
      this.kill(e)
      return true
    }
  }

  private purge(now: number, max: number): void {
    const h = this.heap
    for (let n = 0; n < max && h.length > 0; n++) {
      const top = h[0]!
      if (top.live && top.exp > now) return
      heapPop(h)
      this.kill(top)
    }
  }

  /** Occasional upkeep: rebuild the heap when dead entries dominate, drop idle owners. */
  private maintain(now: number): void {
    if (this.heap.length > 2 * this.seen.size + 1024) this.heap = heapify([...this.seen.values()])
    for (const [k, o] of this.owners) if (o.count === 0 && o.floor <= now) this.owners.delete(k)
  }

  private makeRoom(now: number): void {
    this.purge(now, Infinity)
    while (this.seen.size >= this.maxEntries && this.heap.length > 0) {
      const top = heapPop(this.heap)!
      if (!top.live) continue
      // fail closed: every id expiring at or before the evicted one counts as a replay from now on
      if (top.exp > this.evictedUntil) this.evictedUntil = top.exp
      this.evictions++
      this.kill(top)
    }
  }

  clear(): void {
    this.seen.clear()
    this.heap = []
    this.owners.clear()
    this.evictedUntil = -Infinity
  }
}

function heapPush(h: Entry[], e: Entry): void {
  h.push(e)
  let i = h.length - 1
  while (i > 0) {
    const p = (i - 1) >> 1
    const pe = h[p]!
    if (!before(e, pe)) break
    h[i] = pe
    i = p
  }
  h[i] = e
}

function heapPop(h: Entry[]): Entry | undefined {
  const top = h[0]
  const last = h.pop()
  if (top === undefined || last === undefined || h.length === 0) return top
  h[0] = last
  siftDown(h, 0)
  return top
}

function siftDown(h: Entry[], i: number): void {
  const n = h.length
  const e = h[i]!
  for (;;) {
    let c = 2 * i + 1
    if (c >= n) break
    if (c + 1 < n && before(h[c + 1]!, h[c]!)) c++
    if (!before(h[c]!, e)) break
    h[i] = h[c]!
    i = c
  }
  h[i] = e
}

function heapify(h: Entry[]): Entry[] {
  for (let i = (h.length >> 1) - 1; i >= 0; i--) siftDown(h, i)
  return h
}
