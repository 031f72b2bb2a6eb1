/**
 * Authority -> DID pins: trust on first use, never rebound while pinned. A pin is *firm*
 * (configured, or something relied on it) or *provisional*; a full table may only evict a
 * provisional pin of a disconnected DID, the one seen least recently, so an attacker who fills
 * the table can push out pins nothing relied on, never take a pin in use. The klp-router's routing
 * table keeps its authority bindings in one; embedders may use it for their own bindings.
 */
import { InvalidParametersError } from '@kos-mesh/interface'

/** A pin to restore: the DID and whether it is firm (default true). */
export interface PinInit {
  did: string
  firm?: boolean
}

/** One pin as `pinEntries()` lists it. */
export interface PinEntry {
  authority: string
  did: string
  /**
   * Firm pins are never evicted: configured ones, and trust-on-first-use pins something relied on
   * (a request answered by the authority, or `confirm()` by the embedder, e.g. when an operator
   * sets trust for the DID). Provisional pins may be evicted, when the table is full, by a rule
   * a peer cannot trigger for a pin it does not own (only pins of disconnected DIDs that nothing
   * relied on, least recently seen first).
   */
  firm: boolean
}

/** A change of the pin table, as the router reports it (`pin:change`): a pin made, made firm, or evicted. */
export type PinChange =
  | { kind: 'pinned'; pin: PinEntry }
  | { kind: 'firm'; pin: PinEntry }
  | { kind: 'evicted'; pin: PinEntry }

/** Result of `claim()`. */
export type ClaimResult =
  | { ok: true; pinned: boolean }
  | { ok: false; reason: 'authority_pinned' | 'did_pinned' | 'pins_full'; pinnedTo?: string }

interface Pin {
  did: string
  /** Configured, or relied on: never evicted. */
  firm: boolean
  /** Last time the DID claimed the authority (clock ms): eviction order of provisional pins. */
  seen: number
}

/** Options of a PinTable. */
export interface PinTableInit {
  /** The time, ms since the epoch (when a pin was made or last used, for eviction). */
  now: () => number
  /** Largest number of pins. Default 65,536. */
  maxPins?: number
  /** Called when a pin is made, becomes firm, or is evicted. */
  onPinChange?: (change: PinChange) => void
  /** Called when a pin is evicted (the routing table forgets the DID's authority). */
  onEvict?: (authority: string, did: string) => void
}

/** The authority -> DID pin table (see the module comment). */
export class PinTable {
  private readonly pinned = new Map<string, Pin>()
  /** TOFU pins per DID (a DID claims at most one authority by itself). */
  private readonly tofuByDid = new Map<string, string>()
  private readonly now: () => number
  private readonly maxPins: number
  private readonly onPinChange: ((change: PinChange) => void) | undefined
  private readonly onEvict: ((authority: string, did: string) => void) | undefined
  /** Provisional pins evicted because the table was full. */
  evictions = 0
  /** Claims refused because the table was full and no pin could go. */
  refusals = 0

  constructor(init: PinTableInit) {
    this.now = init.now
    this.maxPins = init.maxPins ?? 65_536
    this.onPinChange = init.onPinChange
    this.onEvict = init.onEvict
  }

  /** Pins held. */
  get size(): number {
    return this.pinned.size
  }

  /** Pins an authority (firm by default); throws when it is pinned to another DID. */
  pin(authority: string, did: string, firm = true): void {
    if (typeof authority !== 'string' || authority.length === 0 || typeof did !== 'string' || !did.startsWith('did:')) {
      throw new InvalidParametersError(`expected a pin authority -> did:..., got ${String(authority)} -> ${String(did)}`)
    }
    const cur = this.pinned.get(authority)
    if (cur !== undefined && cur.did !== did) {
      throw new InvalidParametersError(`expected ${authority} to be unpinned or pinned to ${did}, got it pinned to ${cur.did}`)
    }
    this.pinned.set(authority, { did, firm: firm || cur?.firm === true, seen: this.now() })
    if (!firm) this.tofuByDid.set(did, authority)
  }

  /** Makes a pin firm; false when the authority is not pinned (to `did`, when given). */
  confirm(authority: string, did?: string): boolean {
    const p = this.pinned.get(authority)
    if (p === undefined || (did !== undefined && p.did !== did)) return false
    if (!p.firm) {
      p.firm = true
      this.onPinChange?.({ kind: 'firm', pin: { authority, did: p.did, firm: true } })
    }
    return true
  }

  /** The DID `authority` is pinned to, if any. */
  didOf(authority: string): string | undefined {
    return this.pinned.get(authority)?.did
  }

  /** Every pin with its firmness (to persist, and to restore as `pinnedAuthorities`). */
  entries(): PinEntry[] {
    const out: PinEntry[] = []
    for (const [authority, p] of this.pinned) out.push({ authority, did: p.did, firm: p.firm })
    return out
  }

  /** Every pin as `authority -> DID`. */
  record(): Record<string, string> {
    const out: Record<string, string> = {}
    for (const [a, p] of this.pinned) out[a] = p.did
    return out
  }

  /** [authority, DID] of every pin. */
  *all(): Generator<[string, string]> {
    for (const [a, p] of this.pinned) yield [a, p.did]
  }

  /**
   * A signed hello from `did` claims `authority`. Trust on first use: an unpinned authority is
   * pinned to the DID (a DID pins at most one authority by itself); an authority pinned to another
   * DID, or a DID already pinned to another authority, is refused and nothing changes.
   */
  claim(authority: string, did: string, connected: (did: string) => boolean): ClaimResult {
    const cur = this.pinned.get(authority)
    if (cur !== undefined) {
      if (cur.did !== did) return { ok: false, reason: 'authority_pinned', pinnedTo: cur.did }
      cur.seen = this.now()
      return { ok: true, pinned: false }
    }
    const own = this.tofuByDid.get(did)
    if (own !== undefined && own !== authority && this.pinned.get(own)?.did === did) {
      return { ok: false, reason: 'did_pinned', pinnedTo: own }
    }
    if (this.pinned.size >= this.maxPins && !this.evict(connected)) {
      this.refusals++
      return { ok: false, reason: 'pins_full' }
    }
    this.pinned.set(authority, { did, firm: false, seen: this.now() })
    this.tofuByDid.set(did, authority)
    this.onPinChange?.({ kind: 'pinned', pin: { authority, did, firm: false } })
    return { ok: true, pinned: true }
  }

  /** Evicts the provisional pin of a disconnected DID seen least recently; false when none may go. */
  private evict(connected: (did: string) => boolean): boolean {
    let victim: string | undefined
    let oldest = Infinity
    for (const [a, p] of this.pinned) {
      if (p.firm || connected(p.did)) continue
      if (p.seen < oldest) {
        oldest = p.seen
        victim = a
      }
    }
    if (victim === undefined) return false
    const p = this.pinned.get(victim)!
    this.pinned.delete(victim)
    if (this.tofuByDid.get(p.did) === victim) this.tofuByDid.delete(p.did)
    this.evictions++
    this.onEvict?.(victim, p.did)
    this.onPinChange?.({ kind: 'evicted', pin: { authority: victim, did: p.did, firm: false } })
    return true
  }
}
