import type { Connection } from '@kos-mesh/interface'

/** One route as advertised in a hello: the authority and its distance in hops from the sender. */
export interface AdvertisedRoute {
  authority: string
  hops: number
}

export type RouteKind = 'direct' | 'advertised' | 'learned'

/** A route the table would use for an authority. */
export interface Route {
  authority: string
  /** DID of the next-hop peer (a directly connected peer). */
  nextHop: string
  /** Distance in hops (1 = direct neighbour). */
  hops: number
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
  /** How long a reverse-path route learned from traffic is kept (ms). Default 60,000. */
  learnedRouteTtlMs?: number
}

/**
 * Direct peers (DID -> connections, authority <-> DID from signed hellos), routes advertised by
 * neighbours (distance vector with split horizon; each neighbour's list replaces its previous
 * one) and reverse-path routes learned from traffic.
 */
export class RoutingTable {
  private readonly conns = new Map<string, Connection[]>()
  private readonly didByAuthority = new Map<string, string>()
  private readonly authorityByDid = new Map<string, string>()
  private readonly advertised = new Map<string, Map<string, number>>()
  private readonly learned = new Map<string, LearnedRoute>()
  private readonly now: () => number
  private readonly maxHops: number
  private readonly maxRoutes: number
  private readonly learnedTtl: number

  constructor(init: RoutingTableInit) {
    this.now = init.now
    this.maxHops = init.maxHops
    this.maxRoutes = init.maxRoutes ?? 4096
    this.learnedTtl = init.learnedRouteTtlMs ?? 60_000
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
    this.advertised.delete(conn.remotePeer)
    for (const [a, r] of this.learned) if (r.nextHop === conn.remotePeer) this.learned.delete(a)
    return true
  }

  /** Binds an authority to a DID (from a signed hello). Returns the DID it was bound to before, if different. */
  bind(authority: string, did: string): string | undefined {
    const prev = this.didByAuthority.get(authority)
    const prevAuthority = this.authorityByDid.get(did)
    if (prevAuthority !== undefined && prevAuthority !== authority) this.didByAuthority.delete(prevAuthority)
    this.didByAuthority.set(authority, did)
    this.authorityByDid.set(did, authority)
    return prev !== undefined && prev !== did ? prev : undefined
  }

  didOf(authority: string): string | undefined {
    return this.didByAuthority.get(authority)
  }

  authorityOf(did: string): string | undefined {
    return this.authorityByDid.get(did)
  }

  /** Replaces the routes advertised by neighbour `via`. Returns true when anything changed. */
  setAdvertised(via: string, routes: readonly AdvertisedRoute[]): boolean {
    const next = new Map<string, number>()
    for (const r of routes) {
      if (next.size >= this.maxRoutes) break
      const hops = r.hops + 1
      if (hops > this.maxHops) continue
      const cur = next.get(r.authority)
      if (cur === undefined || hops < cur) next.set(r.authority, hops)
    }
    const prev = this.advertised.get(via)
    this.advertised.set(via, next)
    if (prev === undefined) return next.size > 0
    if (prev.size !== next.size) return true
    for (const [a, h] of next) if (prev.get(a) !== h) return true
    return false
  }

  /** Learns a reverse-path route from traffic (`authority` reached us through `via` in `hops`). */
  learn(authority: string, via: string, hops: number): void {
    if (hops > this.maxHops || !this.conns.has(via)) return
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
    const did = this.didByAuthority.get(authority)
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
    const names = new Set<string>([...this.didByAuthority.keys(), ...this.learned.keys()])
    for (const r of this.advertised.values()) for (const a of r.keys()) names.add(a)
    const out: Route[] = []
    for (const a of names) {
      const r = this.lookup(a)
      if (r !== undefined) out.push(r)
    }
    return out
  }

  clear(): void {
    this.conns.clear()
    this.advertised.clear()
    this.learned.clear()
  }
}
