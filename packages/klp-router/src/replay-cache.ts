import { InvalidParametersError, type ReplayCache } from '@kos-mesh/interface'

export interface ReplayWindowInit {
  /**
   * Ids remembered for *known* owners (signers the node trusts, and calls without an owner).
   * Default 100,000. When full, the id expiring first goes and only its owner's floor rises.
   */
  maxEntries?: number
  /** Ids one known owner may hold. Default 10 % of `maxEntries` (at least 1). */
  maxPerOwner?: number
  /**
   * Ids remembered for *strangers* (signers the node does not trust), all together: their own,
   * separate pool, so strangers never push out a known signer's ids. Default 16,384.
   */
  maxStrangerEntries?: number
  /** Ids one stranger may hold. Default 1/16 of `maxStrangerEntries` (at least 1). */
  maxPerStranger?: number
  /**
   * Owners kept with only a floor left (all their ids evicted, the floor still in the future).
   * Beyond it, floors are folded into `floorSlots` hashed slots (never dropped). Default 65,536.
   */
  maxFloorOnlyOwners?: number
  /** Hashed floor slots for folded floors. Default 65,536 (512 KiB). */
  floorSlots?: number
  /** Clock (ms). */
  now: () => number
}

interface Pool {
  readonly max: number
  readonly perOwner: number
  size: number
  /** Binary min-heap of this pool's entries by expiry (lazy deletion: dead entries are skipped). */
  heap: Entry[]
  /** Binary max-heap of this pool's owners holding ids, by how many they hold (indexed: `OwnerState.pos`). */
  owners: OwnerState[]
}

interface Entry {
  readonly key: string
  readonly exp: number
  readonly owner: OwnerState
  readonly pool: Pool
  /** Insertion order (ties of `exp` go oldest first). */
  readonly seq: number
  live: boolean
}

function before(a: Entry, b: Entry): boolean {
  return a.exp < b.exp || (a.exp === b.exp && a.seq < b.seq)
}

interface OwnerState {
  readonly name: string
  readonly pool: Pool
  count: number
  /** Ids of this owner expiring at or before this time may have been evicted: treated as replays. */
  floor: number
  /** The owner's entries, a min-heap by expiry (dead ones are skipped and compacted). */
  heap: Entry[]
  /** Counted in `floorOnly` (no ids, a floor in the future). */
  floorOnly: boolean
  /** Index in its pool's owner heap, -1 when it holds no id. */
  pos: number
}

/** The owner of calls that name none (a known owner). */
const ANONYMOUS = ''

/**
 * Remembers message ids until their expiry, so a replayed message is caught for exactly as long
 * as it would otherwise be accepted (the router caps that expiry by its `maxMessageAgeSeconds`).
 *
 * Bounded, and fail closed *per owner*: an unexpired id is never forgotten silently. When an id
 * must go, it is an id of the owner that is over its quota or, when the pool is full, of the
 * owner holding the most ids (its id expiring first), and only **that owner's** floor rises to the
 * evicted id's expiry: from then on that owner's ids expiring at or before its floor are refused
 * as possible replays. Nobody else's floor moves, so no set of signers can make the window refuse
 * another signer's fresh messages; whoever fills a pool is pushed out of its own ids, and an
 * owner whose old ids went loses nothing it sends next (new messages expire later). Known owners
 * (trusted signers) and strangers have separate pools, so strangers never evict a known owner's
 * ids, and the known pool's memory grows with the trusted signers, not with what strangers send.
 * Owners left with only a floor are kept (bounded); beyond that their floors are folded into
 * hashed slots (a slot keeps the highest floor folded into it), so memory stays bounded and
 * nothing fails open: a stranger that shares a slot with a folded floor may see an old-expiring
 * message refused until that floor passes.
 */
export class ReplayWindow implements ReplayCache {
  private readonly seen = new Map<string, Entry>()
  private readonly owners = new Map<string, OwnerState>()
  private readonly known: Pool
  private readonly strangers: Pool
  private readonly maxFloorOnly: number
  private floorOnly = 0
  /** Hashed floors (allocated on the first fold: most windows never need them). */
  private slots: Float64Array | undefined
  private readonly slotCount: number
  private readonly now: () => number
  private inserts = 0
  /** The owner whose id is being recorded (never settled meanwhile). */
  private inserting: OwnerState | undefined
  /** Unexpired ids dropped because a pool (or an owner's quota) was full. */
  evictions = 0
  /** Floors folded into hashed slots because too many owners had only a floor left. */
  foldedFloors = 0

  constructor(init: ReplayWindowInit) {
    const maxEntries = init.maxEntries ?? 100_000
    const maxPerOwner = init.maxPerOwner ?? Math.max(1, Math.floor(maxEntries / 10))
    const maxStrangers = init.maxStrangerEntries ?? 16_384
    const maxPerStranger = init.maxPerStranger ?? Math.max(1, Math.floor(maxStrangers / 16))
    for (const [name, v] of [['maxEntries', maxEntries], ['maxPerOwner', maxPerOwner], ['maxStrangerEntries', maxStrangers], ['maxPerStranger', maxPerStranger]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new InvalidParametersError(`expected ${name} to be a positive integer, got ${v}`)
    }
    this.known = { max: maxEntries, perOwner: maxPerOwner, size: 0, heap: [], owners: [] }
    this.strangers = { max: maxStrangers, perOwner: maxPerStranger, size: 0, heap: [], owners: [] }
    this.maxFloorOnly = init.maxFloorOnlyOwners ?? 65_536
    const slots = init.floorSlots ?? 65_536
    if (!Number.isInteger(slots) || slots < 1) throw new InvalidParametersError(`expected floorSlots to be a positive integer, got ${slots}`)
    this.slotCount = slots
    this.now = init.now
  }

  /** Ids remembered (both pools). */
  get size(): number {
    return this.seen.size
  }

  /** Ids remembered for strangers. */
  get strangerSize(): number {
    return this.strangers.size
  }

  /** Owners tracked (with ids, or with a floor only). */
  get ownerCount(): number {
    return this.owners.size
  }

  /** The floor of calls without an owner (kept for callers that use one shared owner). */
  get evictedUntil(): number {
    return this.owners.get(ANONYMOUS)?.floor ?? -Infinity
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
   * True when a message of `owner` expiring at `expiresAt` is at or below that owner's floor (its
   * own ids expiring at or after it had to be evicted): it may be a replay of an evicted id.
   */
  belowFloor(expiresAt: number, owner: string = ANONYMOUS): boolean {
    const o = this.owners.get(owner)
    if (o !== undefined && expiresAt <= o.floor) return true
    return this.slots !== undefined && expiresAt <= this.slots[this.slotOf(owner)]!
  }

  /**
   * Returns true when the id was not seen (and records it until `expiresAt`), false when it is
   * (possibly) a replay: remembered, or expiring at or before the owner's floor. `owner` (the
   * signer DID) is charged for the entry; a `stranger` owner is charged in the strangers' pool.
   */
  checkAndRecord(id: string, expiresAt: number, owner: string = ANONYMOUS, stranger = false): boolean {
    const now = this.now()
    const cur = this.seen.get(id)
    if (cur !== undefined) {
      if (cur.exp > now) return false
      this.kill(cur)
    }
    if (this.belowFloor(expiresAt, owner)) return false
    if ((++this.inserts & 1023) === 0) this.maintain(now)
    let o = this.owners.get(owner)
    if (o === undefined) {
      o = { name: owner, pool: stranger ? this.strangers : this.known, count: 0, floor: -Infinity, heap: [], floorOnly: false, pos: -1 }
      this.owners.set(owner, o)
    } else if (o.floorOnly) {
      o.floorOnly = false // it holds an id again
      this.floorOnly--
    }
    const pool = o.pool
    this.inserting = o
    // incremental purge: up to 4 expired (or dead) entries from the pool's heap top per insert
    this.purge(pool, now, 4)
    // calls without an owner share the pool without a quota
    const quota = owner === ANONYMOUS ? pool.max : pool.perOwner
    while (o.count >= quota && this.evictOwn(o, now));
    if (pool.size >= pool.max) this.makeRoom(pool, now)
    this.inserting = undefined
    const e: Entry = { key: id, exp: expiresAt, owner: o, pool, seq: this.inserts, live: true }
    this.seen.set(id, e)
    heapPush(pool.heap, e)
    pool.size++
    o.count++
    if (o.pos < 0) ownerPush(pool.owners, o)
    else ownerUp(pool.owners, o.pos)
    heapPush(o.heap, e)
    return true
  }

  /** Removes an entry from the map and its owner's count (its heap slots die lazily). */
  private kill(e: Entry): void {
    if (!e.live) return
    e.live = false
    this.seen.delete(e.key)
    e.pool.size--
    const o = e.owner
    o.count--
    if (o.count === 0) ownerRemove(e.pool.owners, o)
    else ownerDown(e.pool.owners, o.pos)
    if (o.heap.length > 2 * o.count + 16) o.heap = heapify(o.heap.filter((x) => x.live))
    if (o.count === 0) this.settle(o)
  }

  /** An owner without ids: forgotten once its floor passed, else kept (bounded) or folded into a slot. */
  private settle(o: OwnerState): void {
    if (o === this.inserting) return
    o.heap = []
    if (o.floor <= this.now()) {
      this.owners.delete(o.name)
      return
    }
    if (this.floorOnly < this.maxFloorOnly) {
      o.floorOnly = true
      this.floorOnly++
      return
    }
    this.slots ??= new Float64Array(this.slotCount).fill(-Infinity)
    const s = this.slotOf(o.name)
    if (o.floor > this.slots[s]!) this.slots[s] = o.floor
    this.foldedFloors++
    this.owners.delete(o.name)
  }

  /** Raises an owner's floor to an evicted id's expiry. */
  private evict(e: Entry, now: number): void {
    if (e.exp > now) {
      this.evictions++
      if (e.exp > e.owner.floor) e.owner.floor = e.exp
    }
    this.kill(e)
  }

  /** The owner is over its quota: its id expiring first goes, and the owner's floor rises to it. */
  private evictOwn(o: OwnerState, now: number): boolean {
    for (;;) {
      const e = heapPop(o.heap)
      if (e === undefined) return false
      if (!e.live) continue
      this.evict(e, now)
      return true
    }
  }

  private purge(pool: Pool, now: number, max: number): void {
    const h = pool.heap
    for (let n = 0; n < max && h.length > 0; n++) {
      const top = h[0]!
      if (top.live && top.exp > now) return
      heapPop(h)
      this.kill(top)
    }
  }

  /**
   * The pool is full: expired ids go, then an id of the owner holding the most (its id expiring
   * first; only that owner's floor rises). Whoever fills the pool pays for it: a light, honest
   * signer keeps its ids while a flood is pushed out of its own.
   */
  private makeRoom(pool: Pool, now: number): void {
    this.purge(pool, now, Infinity)
    while (pool.size >= pool.max && pool.owners.length > 0) {
      if (!this.evictOwn(pool.owners[0]!, now)) break
    }
  }

  /** Occasional upkeep: rebuild heaps when dead entries dominate, drop owners whose floor passed. */
  private maintain(now: number): void {
    for (const pool of [this.known, this.strangers]) {
      if (pool.heap.length > 2 * pool.size + 1024) pool.heap = heapify(pool.heap.filter((e) => e.live))
    }
    for (const [k, o] of this.owners) {
      if (o.count === 0 && o.floor <= now) {
        this.owners.delete(k)
        if (o.floorOnly) this.floorOnly--
      }
    }
    const slots = this.slots
    if (slots !== undefined) for (let i = 0; i < slots.length; i++) if (slots[i]! <= now) slots[i] = -Infinity
  }

  private slotOf(owner: string): number {
    // FNV-1a over the owner's last characters (a DID's tail is its key material)
    let h = 0x811c9dc5
    for (let i = Math.max(0, owner.length - 24); i < owner.length; i++) h = Math.imul(h ^ owner.charCodeAt(i), 0x01000193)
    return (h >>> 0) % this.slotCount
  }

  clear(): void {
    this.seen.clear()
    this.owners.clear()
    for (const pool of [this.known, this.strangers]) {
      pool.heap = []
      pool.owners = []
      pool.size = 0
    }
    this.floorOnly = 0
    this.slots = undefined
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

// ---- the owner max-heap by count (indexed, so a count change re-sifts one owner)

function ownerSet(h: OwnerState[], i: number, o: OwnerState): void {
  h[i] = o
  o.pos = i
}

function ownerPush(h: OwnerState[], o: OwnerState): void {
  h.push(o)
  o.pos = h.length - 1
  ownerUp(h, o.pos)
}

function ownerUp(h: OwnerState[], i: number): void {
  const o = h[i]!
  while (i > 0) {
    const p = (i - 1) >> 1
    const po = h[p]!
    if (po.count >= o.count) break
    ownerSet(h, i, po)
    i = p
  }
  ownerSet(h, i, o)
}

function ownerDown(h: OwnerState[], i: number): void {
  const n = h.length
  const o = h[i]!
  for (;;) {
    let c = 2 * i + 1
    if (c >= n) break
    if (c + 1 < n && h[c + 1]!.count > h[c]!.count) c++
    if (h[c]!.count <= o.count) break
    ownerSet(h, i, h[c]!)
    i = c
  }
  ownerSet(h, i, o)
}

function ownerRemove(h: OwnerState[], o: OwnerState): void {
  const i = o.pos
  if (i < 0) return
  const last = h.pop()!
  o.pos = -1
  if (last === o) return
  ownerSet(h, i, last)
  ownerDown(h, i)
  ownerUp(h, last.pos)
}
