/**
 * Persisted authority pins. One store key per pin, `pin/<authority>` -> UTF-8 JSON
 * `{ "did": "did:...", "firm": true|false }`, written as the router reports each change
 * (`pin:change`: pinned, firm, evicted), so saving a new pin costs one write whatever the size of
 * the table. At start the pins come back with their firmness, so a restart does not change the
 * policy: provisional pins stay evictable, firm ones never go (see klp-router's RoutingTable).
 */
import type { AbortOptions, KeyValueStore, Logger } from '@kos-mesh/interface'
import { parseAddress } from '@kos-mesh/klp-codec'
import type { RouterEvents, RouterInit } from '@kos-mesh/klp-router'
import { DID_SYNTAX } from './did.js'

/** Store prefix of persisted authority pins: `pin/<authority>` -> JSON `{ did, firm }` (UTF-8). */
export const PIN_PREFIX = 'pin/'

/** One `pin:change` event of the router. */
export type PinChange = RouterEvents['pin:change']['detail']
/** A pin as `RouterInit.pinnedAuthorities` takes it: a DID (firm) or `{ did, firm? }`. */
export type PinValue = NonNullable<RouterInit['pinnedAuthorities']>[string]

/** A pin as stored. */
export interface StoredPin {
  did: string
  /** Never evicted (configured, relied on, or its DID is trusted by the operator). */
  firm: boolean
}

const enc = new TextEncoder()
const dec = new TextDecoder('utf-8', { fatal: true })
/** Longest stored pin value read back (a DID is at most a few KiB). */
const MAX_PIN_VALUE_BYTES = 8192

export function encodePin(pin: StoredPin): Uint8Array {
  return enc.encode(JSON.stringify({ did: pin.did, firm: pin.firm }))
}

/**
 * Decodes a stored pin: JSON `{ did, firm }`, or the format of version 0.1 (the bare DID,
 * `legacy: true`, firmness unknown). Undefined when the value is neither.
 */
export function decodePin(value: Uint8Array): (StoredPin & { legacy: boolean }) | undefined {
  if (value.byteLength > MAX_PIN_VALUE_BYTES) return undefined
  let text: string
  try {
    text = dec.decode(value)
  } catch {
    return undefined
  }
  if (text.startsWith('{')) {
    let o: unknown
    try {
      o = JSON.parse(text)
    } catch {
      return undefined
    }
    if (o === null || typeof o !== 'object') return undefined
    const { did, firm } = o as { did?: unknown; firm?: unknown }
    if (typeof did !== 'string' || !DID_SYNTAX.test(did) || typeof firm !== 'boolean') return undefined
    return { did, firm, legacy: false }
  }
  return DID_SYNTAX.test(text) ? { did: text, firm: false, legacy: true } : undefined
}

function isAuthority(a: string): boolean {
  try {
    return parseAddress(`klp://${a}`).authority === a
  } catch {
    return false
  }
}

function didOfValue(v: PinValue | undefined): string | undefined {
  return v === undefined ? undefined : typeof v === 'string' ? v : v.did
}

/**
 * Writes pin changes to the store, one key per pin, one at a time in the order of the changes.
 * Changes to the same authority that have not been written yet collapse into the latest one, so a
 * burst can neither reorder a delete before its put nor queue more writes than there are
 * authorities. A failed write is logged (warn) and counted, never thrown; `flush({ retry: true })`
 * tries the failed ones once more (the node does it at stop).
 */
export class PinWriter {
  /** authority -> the value to write (null: delete), in the order of the latest change. */
  private readonly pending = new Map<string, StoredPin | null>()
  /** Writes that failed, with their value (dropped when a newer change comes). */
  private readonly failed = new Map<string, StoredPin | null>()
  private running: Promise<void> | undefined
  /** Store writes done (puts and deletes). */
  writes = 0
  /** Store writes that failed. */
  failures = 0

  constructor(
    private readonly store: KeyValueStore,
    private readonly log: Logger,
  ) {}

  /** Records a router `pin:change`: `evicted` deletes the key, `pinned` / `firm` put it. */
  change(c: PinChange): void {
    this.set(c.pin.authority, c.kind === 'evicted' ? null : { did: c.pin.did, firm: c.pin.firm })
  }

  put(authority: string, pin: StoredPin): void {
    this.set(authority, pin)
  }

  delete(authority: string): void {
    this.set(authority, null)
  }

  /** Writes not done yet. */
  get backlog(): number {
    return this.pending.size
  }

  private set(authority: string, value: StoredPin | null): void {
    this.pending.delete(authority) // re-insert: the order is that of the latest change
    this.pending.set(authority, value)
    this.failed.delete(authority)
    this.running ??= this.run()
  }

  private async run(): Promise<void> {
    await Promise.resolve() // `running` is set before the loop can end
    for (;;) {
      const next = this.pending.entries().next()
      if (next.done === true) break
      const [authority, value] = next.value
      this.pending.delete(authority)
      try {
        if (value === null) await this.store.delete(PIN_PREFIX + authority)
        else await this.store.put(PIN_PREFIX + authority, encodePin(value))
        this.writes++
      } catch (err) {
        this.failures++
        if (!this.pending.has(authority)) this.failed.set(authority, value)
        this.log.warn('could not persist authority pin', { authority, op: value === null ? 'delete' : 'put', err: err instanceof Error ? err.name : String(err) })
      }
    }
    this.running = undefined
  }

  /** Resolves when every change so far is written (or failed); `retry` tries failed writes once more. */
  async flush(options: { retry?: boolean } = {}): Promise<void> {
    while (this.running !== undefined) await this.running
    if (options.retry !== true || this.failed.size === 0) return
    const again = [...this.failed]
    this.failed.clear()
    for (const [a, v] of again) if (!this.pending.has(a)) this.pending.set(a, v)
    this.running ??= this.run()
    while (this.running !== undefined) await this.running
  }
}

export interface LoadPinsInit {
  /** This node's authority and DID: a stored pin of either is dropped. */
  authority: string
  did: string
  /** Configured pins (`router.pinnedAuthorities`): they win over stored ones. */
  configured: Record<string, PinValue>
  /** The router's `maxPinnedAuthorities` (default 65,536). */
  maxPins: number
  /** True when the operator trusts the DID (its pin is restored firm). */
  trusted: (did: string) => boolean
  /** Rewrites (migration, firmness) and deletions (stale, corrupt, over capacity) go here. */
  writer: PinWriter
}

export interface LoadedPins {
  /** What to pass as `pinnedAuthorities`: stored pins with their firmness, then the configured ones. */
  pinned: Record<string, PinValue>
  restored: number
  firm: number
  /** Values of the 0.1 format (bare DID) rewritten as `{ did, firm }`. */
  migrated: number
  /** Stored provisional pins made firm because the operator trusts their DID. */
  confirmed: number
  /** Stored pins deleted: corrupt, this node's own, contradicting a configured pin, or beyond the table's capacity. */
  dropped: number
}

/**
 * Reads the stored pins and merges them with the configured ones. Values of the 0.1 format (the
 * bare DID, which that version restored as never evicted) are rewritten as `{ did, firm }` and
 * restored **provisional** unless the operator trusts the DID: a pin taken over before the
 * upgrade does not become permanent by being migrated.
 */
export async function loadPins(store: KeyValueStore, init: LoadPinsInit, options: AbortOptions = {}): Promise<LoadedPins> {
  const { configured, writer } = init
  const configuredDids = new Set<string>()
  for (const v of Object.values(configured)) {
    const d = didOfValue(v)
    if (d !== undefined) configuredDids.add(d)
  }
  const firm: Array<[string, string]> = []
  const provisional: Array<[string, string]> = []
  const out: LoadedPins = { pinned: {}, restored: 0, firm: 0, migrated: 0, confirmed: 0, dropped: 0 }
  for await (const { key, value } of store.query(PIN_PREFIX, options)) {
    const authority = key.slice(PIN_PREFIX.length)
    const p = decodePin(value)
    const conf = didOfValue(configured[authority])
    if (p === undefined || authority === init.authority || p.did === init.did || !isAuthority(authority) || (conf !== undefined && conf !== p.did) || (conf === undefined && configuredDids.has(p.did))) {
      writer.delete(authority)
      out.dropped++
      continue
    }
    if (conf !== undefined) continue // the same pin is configured: the configuration decides
    const isFirm = p.firm || init.trusted(p.did)
    if (p.legacy) out.migrated++
    else if (isFirm !== p.firm) out.confirmed++
    if (p.legacy || isFirm !== p.firm) writer.put(authority, { did: p.did, firm: isFirm })
    ;(isFirm ? firm : provisional).push([authority, p.did])
  }
  // firm pins all come back; provisional ones only as far as the table has room (they would be
  // the first to go anyway)
  const room = Math.max(0, init.maxPins - Object.keys(configured).length - firm.length)
  for (const [a] of provisional.slice(room)) {
    writer.delete(a)
    out.dropped++
  }
  for (const [a, did] of firm) out.pinned[a] = { did, firm: true }
  for (const [a, did] of provisional.slice(0, room)) out.pinned[a] = { did, firm: false }
  out.firm = firm.length
  out.restored = firm.length + Math.min(room, provisional.length)
  Object.assign(out.pinned, configured)
  return out
}
