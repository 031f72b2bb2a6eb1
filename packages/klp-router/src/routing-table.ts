import { InvalidParametersError, type Connection } from '@kos-mesh/interface'
import { PinTable, type ClaimResult, type PinChange, type PinEntry, type PinInit } from '@kos-mesh/trust'

/** One route as advertised in a hello: the authority and its distance in hops from the sender. */
export interface AdvertisedRoute {
  authority: string
  hops: number
}

/**
 * Where a {@link Route} comes from, in the order `lookup` prefers them: `'direct'` (the authority's
 * pinned DID is connected, 1 hop), `'advertised'` (a neighbour's distance-vector advertisement in its
 * hello, one hop added) or `'learned'` (a reverse path learned from traffic that came through a
 * neighbour, kept for 60 s after it was last seen).
 */
export type RouteKind = 'direct' | 'advertised' | 'learned'

/** A route the table would use for an authority. */
export interface Route {
  authority: string
  /** DID of the next-hop peer (a directly connected peer). */
  nextHop: string
  /** Distance in hops (1 = direct neighbour). */
  hops: number
  /** How the route was found (see {@link RouteKind}). */
  kind: RouteKind
}

interface LearnedRoute {
  nextHop: string
  hops: number
  expiresAt: number
}

export interface RoutingTableInit {
  now: () => number
  /** Routes with more hops are ignored. */
  maxHops: number
  /** Maximum routes kept per neighbour advertisement and for reverse-path learning. Default 4096. */
  maxRoutes?: number
  /** Maximum advertised routes kept over all neighbours together. Default 4 x `maxRoutes`. */
  maxTotalRoutes?: number
  /** How long a reverse-path route learned from traffic is kept (ms). Default 60,000. */
  learnedRouteTtlMs?: number
  /**
   * Authority -> DID pins to start with (configured, or restored from `pinEntries()` of an earlier
   * run). A plain DID is a firm pin; `{ did, firm: false }` restores a provisional one. Pins are
   * never rebound; firm pins are never evicted.
   */
  pinned?: Record<string, string | PinInit>
  /**
   * Largest number of pins. When full, a new claim may only evict a *provisional* pin (trust on
   * first use that nothing relied on yet: see `confirm()`) whose DID has no open connection, the
   * one seen least recently; firm pins never go. When no pin may go, the claim is refused
   * (`pins_full`). Default 65,536.
   */
  maxPins?: number
  /** Called when a pin is made, becomes firm, or is evicted (for embedders that persist pins). */
  onPinChange?: (change: PinChange) => void
}

export type { PinInit, PinEntry, PinChange, ClaimResult } from '@kos-mesh/trust'

/**
 * Direct peers (DID -> connections, authority <-> DID from signed hellos), routes advertised by
 * neighbours (distance vector with split horizon; each neighbour's list replaces its previous
 * one) and reverse-path routes learned from traffic.
 */
export class RoutingTable {
  private readonly conns = new Map<string, Connection[]>()
  /** authority -> DID, trust on first use (or configured): never rebound while pinned. */
  private readonly pinTable: PinTable
  private readonly authorityByDid = new Map<string, string>()
  private readonly advertised = new Map<string, Map<string, number>>()
  private advertisedTotal = 0
  private readonly learned = new Map<string, LearnedRoute>()
  private readonly now: () => number
  private readonly maxHops: number
  private readonly maxRoutes: number
  private readonly maxTotalRoutes: number
  private readonly learnedTtl: number

  constructor(init: RoutingTableInit) {
    this.now = init.now
    this.maxHops = init.maxHops
    this.maxRoutes = init.maxRoutes ?? 4096
    this.maxTotalRoutes = init.maxTotalRoutes ?? this.maxRoutes * 4
    this.learnedTtl = init.learnedRouteTtlMs ?? 60_000
    this.pinTable = new PinTable({
      now: init.now,
      ...(init.maxPins === undefined ? {} : { maxPins: init.maxPins }),
      ...(init.onPinChange === undefined ? {} : { onPinChange: init.onPinChange }),
      onEvict: (authority, did) => {
        if (this.authorityByDid.get(did) === authority) this.authorityByDid.delete(did)
      },
    })
    for (const [authority, v] of Object.entries(init.pinned ?? {})) {
      if (typeof v === 'string') this.pin(authority, v)
      else if (v !== null && typeof v === 'object') this.pin(authority, v.did, v.firm !== false)
      else throw new InvalidParametersError(`expected a pin authority -> did:... or { did, firm }, got ${String(authority)} -> ${String(v)}`)
    }
  }

  /**
   * Pins an authority to a DID (firm by default: never evicted). Throws when the authority is
   * already pinned to another DID.
   */
  pin(authority: string, did: string, firm = true): void {
    this.pinTable.pin(authority, did, firm)
    if (!this.authorityByDid.has(did)) this.authorityByDid.set(did, authority)
  }

  /** Makes a pin firm (something relies on it); false when the authority is not pinned (to `did`). */
  confirm(authority: string, did?: string): boolean {
    return this.pinTable.confirm(authority, did)
  }

  /** Every pin with its firmness, to persist and pass back as `pinned`. */
  pinEntries(): PinEntry[] {
    return this.pinTable.entries()
  }

  /** The DID an authority is pinned to, if any. */
  pinnedDid(authority: string): string | undefined {
    return this.pinTable.didOf(authority)
  }

  /** Every pin (authority -> DID). */
  pins(): Record<string, string> {
    return this.pinTable.record()
  }

  get pinCount(): number {
    return this.pinTable.size
  }

  /** Provisional pins evicted because the pin table was full. */
  get pinEvictions(): number {
    return this.pinTable.evictions
  }

  /** Claims refused because the pin table was full and no pin could go. */
  get pinRefusals(): number {
    return this.pinTable.refusals
  }

  /**
   * A signed hello from `did` claims `authority` (trust on first use; see PinTable.claim). On
   * success the DID's authority is known.
   */
  claim(authority: string, did: string): ClaimResult {
    const r = this.pinTable.claim(authority, did, (d) => this.conns.has(d))
    if (r.ok) this.authorityByDid.set(did, authority)
    return r
  }

  /** DIDs of directly connected peers. */
  peers(): string[] {
    return [...this.conns.keys()]
  }

  /** An open connection to the peer, if any (the most recently added first). */
  connection(did: string): Connection | undefined {
    const list = this.conns.get(did)
    if (list === undefined) return undefined
    for (let i = list.length - 1; i >= 0; i--) {
      const c = list[i]!
      if (c.status === 'open') return c
    }
    return undefined
  }

  connections(did: string): readonly Connection[] {
    return this.conns.get(did) ?? []
  }

  /** Returns true when this is the peer's first connection. */
  addConnection(conn: Connection): boolean {
    const list = this.conns.get(conn.remotePeer)
    if (list === undefined) {
      this.conns.set(conn.remotePeer, [conn])
      return true
    }
    list.push(conn)
    return false
  }

  /** Returns true when the peer has no connection left (its routes are then dropped). */
  removeConnection(conn: Connection): boolean {
    const list = this.conns.get(conn.remotePeer)
    if (list === undefined) return false
    const i = list.indexOf(conn)
    if (i >= 0) list.splice(i, 1)
    if (list.length > 0) return false
    this.conns.delete(conn.remotePeer)
    this.dropAdvertised(conn.remotePeer)
    for (const [a, r] of this.learned) if (r.nextHop === conn.remotePeer) this.learned.delete(a)
    return true
  }

  /**
   * Binds an authority to a DID (see `claim()`). Never rebinds: returns the DID the authority is
   * pinned to when that is another DID (the binding is then refused), else undefined.
   * (Before pinning, this silently rebound the authority and returned the displaced DID.)
   */
  bind(authority: string, did: string): string | undefined {
    const r = this.claim(authority, did)
    if (r.ok) return undefined
    return r.reason === 'authority_pinned' ? r.pinnedTo : undefined
  }

  /** The DID an authority is bound (pinned) to. */
  didOf(authority: string): string | undefined {
    return this.pinTable.didOf(authority)
  }

  authorityOf(did: string): string | undefined {
    return this.authorityByDid.get(did)
  }

  /**
   * True when a route advertised by neighbour `via` is acceptable: at 0 hops only for the
   * neighbour's own (pinned) authority, and never for an authority pinned to the neighbour
   * itself at more hops (that would be a detour around the direct binding).
   */
  acceptsAdvertised(via: string, r: AdvertisedRoute): boolean {
    const pinnedTo = this.pinTable.didOf(r.authority)
    if (r.hops === 0) return pinnedTo === via && this.authorityByDid.get(via) === r.authority
    return pinnedTo !== via
  }

  /**
   * Replaces the routes advertised by neighbour `via`. Returns true when anything changed.
   * Routes `acceptsAdvertised` refuses are skipped; at most `maxRoutes` per neighbour and
   * `maxTotalRoutes` over all neighbours are kept.
   */
  setAdvertised(via: string, routes: readonly AdvertisedRoute[]): boolean {
    return this.applyAdvertised(via, this.filterAdvertised(via, routes))
  }

  /** True when a filtered route set (`filterAdvertised`) differs from what `via` advertised before. */
  differs(via: string, next: Map<string, number>): boolean {
    return !sameRoutes(this.advertised.get(via), next)
  }

  /** Installs a filtered route set of `via` (`filterAdvertised`); true when anything changed. */
  applyAdvertised(via: string, next: Map<string, number>): boolean {
    const prev = this.advertised.get(via)
    this.advertised.set(via, next)
    this.advertisedTotal += next.size - (prev?.size ?? 0)
    return !sameRoutes(prev, next)
  }

  /** The routes of `via` that would be kept: accepted, within the hop limit and the route budgets. */
  filterAdvertised(via: string, routes: readonly AdvertisedRoute[]): Map<string, number> {
    const prev = this.advertised.get(via)
    const budget = Math.min(this.maxRoutes, this.maxTotalRoutes - (this.advertisedTotal - (prev?.size ?? 0)))
    const next = new Map<string, number>()
    for (const r of routes) {
      if (next.size >= budget) break
      const hops = r.hops + 1
      if (hops > this.maxHops || !this.acceptsAdvertised(via, r)) continue
      const cur = next.get(r.authority)
      if (cur === undefined || hops < cur) next.set(r.authority, hops)
    }
    return next
  }

  /** Advertised routes kept over all neighbours. */
  get advertisedCount(): number {
    return this.advertisedTotal
  }

  private dropAdvertised(via: string): void {
    const prev = this.advertised.get(via)
    if (prev === undefined) return
    this.advertisedTotal -= prev.size
    this.advertised.delete(via)
  }

  /** Learns a reverse-path route from traffic (`authority` reached us through `via` in `hops`). */
  learn(authority: string, via: string, hops: number): void {
    if (hops > this.maxHops || !this.conns.has(via)) return
    // a pinned authority whose DID is a direct peer is reached directly, never through a detour
    const pinnedTo = this.pinTable.didOf(authority)
    if (pinnedTo !== undefined && pinnedTo !== via && this.conns.has(pinnedTo)) return
    const cur = this.learned.get(authority)
    const now = this.now()
    if (cur !== undefined && cur.expiresAt > now && cur.hops < hops) return
    if (cur === undefined && this.learned.size >= this.maxRoutes) {
      const first = this.learned.keys().next()
      if (first.done !== true) this.learned.delete(first.value)
    }
    if (cur !== undefined) {
      // refresh in place: this runs for every inbound message from a remote source
      cur.nextHop = via
      cur.hops = hops
      cur.expiresAt = now + this.learnedTtl
      return
    }
    this.learned.set(authority, { nextHop: via, hops, expiresAt: now + this.learnedTtl })
  }

  /** The best route to an authority: direct, then the shortest advertised, then learned from traffic. */
  lookup(authority: string, exclude?: string): Route | undefined {
    const did = this.pinTable.didOf(authority)
    if (did !== undefined && did !== exclude && this.connection(did) !== undefined) {
      return { authority, nextHop: did, hops: 1, kind: 'direct' }
    }
    let best: Route | undefined
    for (const [via, routes] of this.advertised) {
      if (via === exclude) continue
      const hops = routes.get(authority)
      if (hops !== undefined && (best === undefined || hops < best.hops) && this.connection(via) !== undefined) {
        best = { authority, nextHop: via, hops, kind: 'advertised' }
      }
    }
    if (best !== undefined) return best
    const l = this.learned.get(authority)
    if (l !== undefined && l.nextHop !== exclude) {
      if (l.expiresAt <= this.now()) this.learned.delete(authority)
      else if (this.connection(l.nextHop) !== undefined) return { authority, nextHop: l.nextHop, hops: l.hops, kind: 'learned' }
    }
    return undefined
  }

  /** Routes to advertise to neighbour `to` (split horizon: nothing learned through `to`). */
  advertisement(selfAuthority: string, to: string): AdvertisedRoute[] {
    const out = new Map<string, number>([[selfAuthority, 0]])
    for (const did of this.conns.keys()) {
      const a = this.authorityByDid.get(did)
      if (a !== undefined && did !== to && !out.has(a)) out.set(a, 1)
    }
    for (const [via, routes] of this.advertised) {
      if (via === to) continue
      for (const [a, hops] of routes) {
        if (hops >= this.maxHops) continue
        const cur = out.get(a)
        if (cur === undefined || hops < cur) out.set(a, hops)
      }
    }
    const toAuthority = this.authorityOf(to)
    if (toAuthority !== undefined) out.delete(toAuthority)
    const list: AdvertisedRoute[] = []
    for (const [authority, hops] of out) {
      if (list.length >= this.maxRoutes) break
      list.push({ authority, hops })
    }
    return list
  }

  /** Every authority the table can currently reach, with its best route. */
  routes(): Route[] {
    const names = new Set<string>(this.learned.keys())
    for (const [a, did] of this.pinTable.all()) if (this.conns.has(did)) names.add(a)
    for (const r of this.advertised.values()) for (const a of r.keys()) names.add(a)
    const out: Route[] = []
    for (const a of names) {
      const r = this.lookup(a)
      if (r !== undefined) out.push(r)
    }
    return out
  }

  /** Drops connections and routes; pins stay (they live as long as the table). */
  clear(): void {
    this.conns.clear()
    this.advertised.clear()
    this.advertisedTotal = 0
    this.learned.clear()
  }
}

function sameRoutes(prev: Map<string, number> | undefined, next: Map<string, number>): boolean {
  if (prev === undefined) return next.size === 0
  if (prev.size !== next.size) return false
  for (const [a, h] of next) if (prev.get(a) !== h) return false
  return true
}
