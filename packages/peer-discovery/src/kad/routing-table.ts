/**
 * The k-bucket routing table (sans-I/O). Bucket `i` holds contacts sharing exactly `i` leading bits
 * with the local id, in LRU order (head = least recently seen). A full bucket keeps newcomers in a
 * bounded replacement cache and asks for a liveness check of its head; a contact that fails
 * `maxFailures` requests is dropped and the newest cached contact takes its place.
 *
 * Diversity: at most `maxPerGroupPerBucket` contacts of one group (network prefix, operator) per
 * bucket and `maxPerGroupPerTable` in the whole table, so one operator cannot fill a node's table.
 */
import type { Contact, KadId } from './types.js'
import { KAD_ID_BYTES } from './types.js'
import { commonPrefixLength, compareDistance, idKey } from './id.js'
import { defaultGroupOf } from './group.js'

/** Options of the routing table. */
export interface RoutingTableInit {
  /** Bucket size. Default 20. */
  k?: number
  /** Replacement cache entries per bucket. Default 20. */
  replacementCacheSize?: number
  /** Failures after which a contact is dropped. Default 2. */
  maxFailures?: number
  /** Contacts of one group per bucket. Default 2. */
  maxPerGroupPerBucket?: number
  /** Contacts of one group in the whole table. Default 4 x maxPerGroupPerBucket. */
  maxPerGroupPerTable?: number
  /** Default: `defaultGroupOf` (/24 or /48 prefix of the first tcp address). */
  groupOf?: (contact: Contact) => string
  /** A full bucket's head not seen for this long gets a liveness check. Default 60,000 ms. */
  staleAfterMs?: number
}

/** A contact in the routing table, with its group, when it was last seen and its failures. */
export interface TableEntry {
  contact: Contact
  readonly key: string
  readonly group: string
  /** Last time it answered or contacted us (clock ms). */
  lastSeen: number
  failures: number
  /** A liveness check of it is in flight. */
  checking: boolean
}

interface Bucket {
  entries: TableEntry[]
  replacements: TableEntry[]
  lastRefreshed: number
}

/** Whether a contact was added, updated, cached as a replacement, or rejected. */
export type AddStatus = 'added' | 'updated' | 'cached' | 'rejected'
/**
 * Why a contact was rejected: it is this node, its group has too many contacts in the bucket, or the bucket
 * and its cache are full.
 */
export type RejectReason = 'self' | 'diversity' | 'full'

/** What adding a contact did, and the stale head to check when a bucket is full. */
export interface AddResult {
  status: AddStatus
  reason?: RejectReason
  /** A full bucket's stale head: ping it, then `markSeen` or `evict` it. */
  check?: Contact
}

const BITS = KAD_ID_BYTES * 8

/**
 * The Kademlia routing table: k-buckets by common prefix length with this node's id, replacement caches,
 * and per-bucket diversity limits.
 */
export class RoutingTable {
  readonly self: KadId
  readonly k: number
  private readonly cacheSize: number
  private readonly maxFailures: number
  private readonly perBucket: number
  private readonly perTable: number
  private readonly groupOf: (contact: Contact) => string
  private readonly staleAfterMs: number
  private readonly buckets: Array<Bucket | undefined> = new Array(BITS)
  private readonly byKey = new Map<string, TableEntry>()
  private readonly groupCount = new Map<string, number>()
  private readonly selfKey: string

  constructor(self: KadId, init: RoutingTableInit = {}) {
    this.self = self
    this.selfKey = idKey(self)
    this.k = init.k ?? 20
    this.cacheSize = init.replacementCacheSize ?? 20
    this.maxFailures = init.maxFailures ?? 2
    this.perBucket = init.maxPerGroupPerBucket ?? 2
    this.perTable = init.maxPerGroupPerTable ?? 4 * this.perBucket
    this.groupOf = init.groupOf ?? defaultGroupOf
    this.staleAfterMs = init.staleAfterMs ?? 60_000
  }

  /** Contacts in the table (not counting replacement caches). */
  get size(): number { return this.byKey.size }

  /** Contacts waiting in replacement caches. */
  get cachedCount(): number {
    let n = 0
    for (const b of this.buckets) n += b?.replacements.length ?? 0
    return n
  }

  /** The bucket of `id`: the length of its common prefix with this node's id. */
  bucketIndexOf(id: KadId): number { return commonPrefixLength(this.self, id) }

  /** Whether `id` is in the table. */
  has(id: KadId): boolean { return this.byKey.has(idKey(id)) }

  /** The table entry of `id`, if any. */
  get(id: KadId): TableEntry | undefined { return this.byKey.get(idKey(id)) }

  /** Number of contacts of `group` in the table. */
  groupSize(group: string): number { return this.groupCount.get(group) ?? 0 }

  /**
   * Offers a contact seen alive at `now` (it answered or sent us a request). Known: moved to the
   * bucket's tail. Room and diversity allow: added. Full: kept in the replacement cache, and the
   * head is returned as `check` when stale (and `allowCheck`).
   */
  add(contact: Contact, now: number, allowCheck = true): AddResult {
    const key = idKey(contact.id)
    if (key === this.selfKey) return { status: 'rejected', reason: 'self' }
    const bucket = this.bucket(this.bucketIndexOf(contact.id))
    const known = this.byKey.get(key)
    if (known !== undefined) {
      known.contact = contact
      known.lastSeen = now
      known.failures = 0
      const i = bucket.entries.indexOf(known)
      if (i >= 0 && i !== bucket.entries.length - 1) {
        bucket.entries.splice(i, 1)
        bucket.entries.push(known)
      }
      return { status: 'updated' }
    }
    const group = this.groupOf(contact)
    let inBucket = 0
    for (const e of bucket.entries) if (e.group === group) inBucket++
    const fitsDiversity = inBucket < this.perBucket && this.groupSize(group) < this.perTable
    if (bucket.entries.length < this.k && fitsDiversity) {
      this.insert(bucket, { contact, key, group, lastSeen: now, failures: 0, checking: false })
      return { status: 'added' }
    }
    // Full (or over the group limit): remember as a replacement, if the cache's own limit allows.
    const ri = bucket.replacements.findIndex((e) => e.key === key)
    if (ri >= 0) bucket.replacements.splice(ri, 1)
    else {
      let cachedOfGroup = 0
      for (const e of bucket.replacements) if (e.group === group) cachedOfGroup++
      if (cachedOfGroup >= this.perBucket) return { status: 'rejected', reason: 'diversity' }
    }
    bucket.replacements.push({ contact, key, group, lastSeen: now, failures: 0, checking: false })
    if (bucket.replacements.length > this.cacheSize) bucket.replacements.shift()
    if (!fitsDiversity) return { status: 'cached', reason: 'diversity' }
    const head = bucket.entries[0]
    if (allowCheck && head !== undefined && !head.checking && now - head.lastSeen >= this.staleAfterMs) {
      head.checking = true
      return { status: 'cached', reason: 'full', check: head.contact }
    }
    return { status: 'cached', reason: 'full' }
  }

  /** A contact answered: moves it to its bucket's tail and clears its failures. */
  markSeen(id: KadId, now: number): void {
    const e = this.byKey.get(idKey(id))
    if (e === undefined) return
    e.checking = false
    this.add(e.contact, now)
  }

  /**
   * A request to the contact failed. After `maxFailures` failures in a row it is dropped and the
   * newest fitting contact of the replacement cache takes its place. Returns whether it was dropped.
   */
  recordFailure(id: KadId): boolean {
    const e = this.byKey.get(idKey(id))
    if (e === undefined) return false
    e.failures++
    e.checking = false
    if (e.failures < this.maxFailures) return false
    this.evict(id)
    return true
  }

  /** Drops a contact now (failed liveness check) and promotes a replacement. */
  evict(id: KadId): boolean {
    const key = idKey(id)
    const e = this.byKey.get(key)
    if (e === undefined) return false
    const bucket = this.bucket(this.bucketIndexOf(id))
    const i = bucket.entries.indexOf(e)
    if (i >= 0) bucket.entries.splice(i, 1)
    this.byKey.delete(key)
    this.decGroup(e.group)
    for (let r = bucket.replacements.length - 1; r >= 0; r--) {
      const c = bucket.replacements[r] as TableEntry
      let inBucket = 0
      for (const x of bucket.entries) if (x.group === c.group) inBucket++
      if (inBucket < this.perBucket && this.groupSize(c.group) < this.perTable) {
        bucket.replacements.splice(r, 1)
        this.insert(bucket, c)
        break
      }
    }
    return true
  }

  /** Removes a contact (and any cached copy) without promoting. */
  remove(id: KadId): boolean {
    const key = idKey(id)
    const bucket = this.bucket(this.bucketIndexOf(id))
    const ri = bucket.replacements.findIndex((e) => e.key === key)
    if (ri >= 0) bucket.replacements.splice(ri, 1)
    const e = this.byKey.get(key)
    if (e === undefined) return ri >= 0
    bucket.entries.splice(bucket.entries.indexOf(e), 1)
    this.byKey.delete(key)
    this.decGroup(e.group)
    return true
  }

  /**
   * The `n` contacts closest to `target` by XOR distance, closest first. With b = cpl(self, target),
   * the buckets form classes of strictly increasing distance: bucket b; then every deeper bucket
   * (their distance to the target has b's bit set); then b-1, b-2, ... So it sorts only within a
   * class and stops at the first class that completes `n`.
   */
  closest(target: KadId, n: number, exclude?: (contact: Contact) => boolean): Contact[] {
    const b = Math.min(this.bucketIndexOf(target), BITS - 1)
    const out: Contact[] = []
    const cmp = (x: Contact, y: Contact): number => compareDistance(x.id, y.id, target)
    let classStart = 0
    const take = (bucket: Bucket | undefined): void => {
      if (bucket === undefined) return
      for (const e of bucket.entries) if (exclude === undefined || !exclude(e.contact)) out.push(e.contact)
    }
    const endClass = (): boolean => {
      if (out.length - classStart > 1) {
        const cls = out.splice(classStart).sort(cmp)
        for (const c of cls) out.push(c)
      }
      classStart = out.length
      if (out.length >= n) { out.length = n; return true }
      return false
    }
    take(this.buckets[b])
    if (endClass()) return out
    for (let i = b + 1; i < BITS; i++) take(this.buckets[i])
    if (endClass()) return out
    for (let i = b - 1; i >= 0; i--) {
      take(this.buckets[i])
      if (endClass()) return out
    }
    return out
  }

  /** Bucket `cpl`'s entries in LRU order (head = least recently seen) and its replacement cache. */
  bucketAt(cpl: number): { readonly entries: readonly TableEntry[]; readonly replacements: readonly TableEntry[] } {
    const b = this.buckets[cpl]
    return { entries: b?.entries ?? [], replacements: b?.replacements ?? [] }
  }

  /** All contacts, bucket by bucket. */
  *contacts(): IterableIterator<Contact> {
    for (const b of this.buckets) if (b !== undefined) for (const e of b.entries) yield e.contact
  }

  /** Sizes of the non-empty buckets, by index. */
  bucketSizes(): Map<number, number> {
    const out = new Map<number, number>()
    this.buckets.forEach((b, i) => { if (b !== undefined && b.entries.length > 0) out.set(i, b.entries.length) })
    return out
  }

  /** A lookup of an id in bucket `cpl` ran at `now`: the bucket counts as refreshed. */
  markRefreshed(cpl: number, now: number): void {
    if (cpl >= 0 && cpl < BITS) this.bucket(cpl).lastRefreshed = now
  }

  /**
   * Buckets due for a refresh (not refreshed for `intervalMs`), from 0 up to the deepest
   * non-empty bucket + 1 (bounded by `maxCpl`, default 15): deeper buckets are covered by the
   * lookup of the own id.
   */
  bucketsToRefresh(now: number, intervalMs: number, maxCpl = 15): number[] {
    let deepest = -1
    this.buckets.forEach((b, i) => { if (b !== undefined && b.entries.length > 0) deepest = i })
    const last = Math.min(deepest + 1, maxCpl)
    const out: number[] = []
    for (let i = 0; i <= last; i++) {
      const b = this.buckets[i]
      if (b === undefined || b.entries.length === 0 || now - b.lastRefreshed >= intervalMs) out.push(i)
    }
    return out
  }

  private bucket(i: number): Bucket {
    let b = this.buckets[i]
    if (b === undefined) {
      b = { entries: [], replacements: [], lastRefreshed: -Infinity }
      this.buckets[i] = b
    }
    return b
  }

  private insert(bucket: Bucket, e: TableEntry): void {
    bucket.entries.push(e)
    this.byKey.set(e.key, e)
    this.groupCount.set(e.group, this.groupSize(e.group) + 1)
  }

  private decGroup(group: string): void {
    const n = this.groupSize(group) - 1
    if (n <= 0) this.groupCount.delete(group)
    else this.groupCount.set(group, n)
  }
}
