/**
 * The peers a node knew, persisted so that a restarted node can find them again: one store key per
 * peer, `peer/<did>` -> UTF-8 JSON `{ did, authority?, addrs, lastConnected, dialed? }`, where
 * `addrs` are the last good transport addresses of the peer (the ones a dial reached, then the ones
 * its signed node record publishes), newest first, and `dialed` says this node reached it by a dial
 * at least once. The table is bounded: beyond `max` peers one is forgotten, first among the peers
 * that only ever dialled in and that the operator does not trust (so a crowd of fresh DIDs dialling
 * in cannot push out the peers this node dialled or trusts), the one connected longest ago. Writes
 * run one at a time in order; a failed write is logged, not fatal.
 */
import type { AbortOptions, KeyValueStore, Logger } from '@kos-mesh/interface'
import { DID_SYNTAX } from './did.js'

/** Store prefix of the known peers: `peer/<did>` -> JSON `{ did, authority?, addrs, lastConnected }`. */
export const KNOWN_PEER_PREFIX = 'peer/'
/** Addresses kept per peer. */
export const MAX_PEER_ADDRS = 4
/** Largest stored value read back. */
const MAX_VALUE_BYTES = 16 * 1024

/**
 * A peer this node knew, as stored under `peer/<did>` (UTF-8 JSON) and redialled after a restart
 * or a lost connection. At most MAX_PEER_ADDRS addresses are kept per peer.
 */
export interface KnownPeer {
  /** The peer's DID (the store key's suffix). */
  did: string
  /** Its KLP authority, when it told one in its signed hello. */
  authority?: string
  /** Last good transport addresses (without the DID), newest first. */
  addrs: string[]
  /** When the peer was last connected (clock ms). */
  lastConnected: number
  /** This node reached the peer by a dial at least once. */
  dialed?: true
}

export interface KnownPeersInit {
  /** Most peers kept. Default 256. */
  max?: number
  /** This node's DID (never stored). */
  self: string
  /** Whether an address is worth keeping (a transport can dial it; not 0.0.0.0). */
  usable: (addr: string) => boolean
  /** Peers evicted last (e.g. the DIDs the operator trusts). Default none. */
  protect?: (did: string) => boolean
  logger: Logger
}

const enc = new TextEncoder()
const dec = new TextDecoder('utf-8', { fatal: true })

function decode(key: string, value: Uint8Array, usable: (a: string) => boolean): KnownPeer | undefined {
  if (value.byteLength > MAX_VALUE_BYTES) return undefined
  let o: unknown
  try {
    o = JSON.parse(dec.decode(value))
  } catch {
    return undefined
  }
  if (o === null || typeof o !== 'object') return undefined
  const { did, authority, addrs, lastConnected, dialed } = o as Record<string, unknown>
  if (typeof did !== 'string' || !DID_SYNTAX.test(did) || key !== KNOWN_PEER_PREFIX + did) return undefined
  if (authority !== undefined && (typeof authority !== 'string' || authority.length === 0 || authority.length > 253)) return undefined
  if (!Array.isArray(addrs) || typeof lastConnected !== 'number' || !Number.isFinite(lastConnected)) return undefined
  const good = addrs.filter((a): a is string => typeof a === 'string' && a.length <= 1024 && usable(a)).slice(0, MAX_PEER_ADDRS)
  return { did, ...(authority === undefined ? {} : { authority: authority as string }), addrs: good, lastConnected, ...(dialed === true ? { dialed: true as const } : {}) }
}

export class KnownPeers {
  private readonly peers = new Map<string, KnownPeer>()
  private readonly max: number
  private chain: Promise<void> = Promise.resolve()
  private writes = 0
  private failures = 0

  constructor(
    private readonly store: KeyValueStore,
    private readonly init: KnownPeersInit,
  ) {
    this.max = init.max ?? 256
  }

  /** Loads the stored peers; corrupt entries and this node's own are deleted. Keeps the `max` most recent. */
  async load(options?: AbortOptions): Promise<{ loaded: number; dropped: number }> {
    const found: KnownPeer[] = []
    const bad: string[] = []
    for await (const { key, value } of this.store.query(KNOWN_PEER_PREFIX, options)) {
      const p = decode(key, value, this.init.usable)
      if (p === undefined || p.did === this.init.self) bad.push(key)
      else found.push(p)
    }
    // the ones that would be evicted last are kept first
    found.sort((a, b) => this.rank(b) - this.rank(a) || b.lastConnected - a.lastConnected)
    for (const p of found.slice(this.max)) bad.push(KNOWN_PEER_PREFIX + p.did)
    for (const p of found.slice(0, this.max)) this.peers.set(p.did, p)
    for (const key of bad) this.enqueue(() => this.store.delete(key))
    return { loaded: this.peers.size, dropped: bad.length }
  }

  get size(): number {
    return this.peers.size
  }

  get(did: string): KnownPeer | undefined {
    return this.peers.get(did)
  }

  /** Known peers, most recently connected first. */
  list(): KnownPeer[] {
    return [...this.peers.values()].sort((a, b) => b.lastConnected - a.lastConnected)
  }

  /**
   * Records that `did` is connected now (`at`), with its authority and addresses that reached it
   * or that it publishes (`addrs`, best first; merged before the ones already known). Persists.
   */
  connected(did: string, at: number, authority?: string, addrs: readonly string[] = []): void {
    if (did === this.init.self) return
    const cur = this.peers.get(did)
    if (cur === undefined && this.peers.size >= this.max) this.evictOldest()
    const merged = this.merge(addrs, cur?.addrs ?? [])
    const next: KnownPeer = {
      did,
      ...((authority ?? cur?.authority) === undefined ? {} : { authority: (authority ?? cur?.authority) as string }),
      addrs: merged,
      lastConnected: at,
      ...(cur?.dialed === true ? { dialed: true as const } : {}),
    }
    this.peers.delete(did)
    this.peers.set(did, next)
    this.save(next)
  }

  /**
   * Adds addresses of a known peer (from its signed record; `dialed`: an address a dial of this
   * node reached, put first); persists when something changes.
   */
  addAddresses(did: string, addrs: readonly string[], dialed = false): void {
    const cur = this.peers.get(did)
    if (cur === undefined) return
    const merged = dialed ? this.merge(addrs, cur.addrs) : this.merge(cur.addrs, addrs)
    const same = merged.length === cur.addrs.length && merged.every((a, i) => a === cur.addrs[i])
    if (same && (!dialed || cur.dialed === true)) return
    const next: KnownPeer = { ...cur, addrs: merged, ...(dialed && merged.length > 0 ? { dialed: true as const } : {}) }
    this.peers.set(did, next)
    this.save(next)
  }

  /** Forgets a peer. */
  forget(did: string): void {
    if (!this.peers.delete(did)) return
    this.enqueue(() => this.store.delete(KNOWN_PEER_PREFIX + did))
  }

  /** Waits for every queued write. */
  async flush(): Promise<void> {
    await this.chain
  }

  stats(): { size: number; writes: number; failures: number } {
    return { size: this.peers.size, writes: this.writes, failures: this.failures }
  }

  private merge(first: readonly string[], then: readonly string[]): string[] {
    const out: string[] = []
    for (const a of [...first, ...then]) if (!out.includes(a) && this.init.usable(a)) out.push(a)
    return out.slice(0, MAX_PEER_ADDRS)
  }

  /** 0: only dialled in, not protected; 1: dialled by this node; 2: protected (trusted). */
  private rank(p: KnownPeer): number {
    return this.init.protect?.(p.did) === true ? 2 : p.dialed === true ? 1 : 0
  }

  /** Forgets the peer of the lowest rank connected longest ago. */
  private evictOldest(): void {
    let victim: KnownPeer | undefined
    for (const p of this.peers.values()) {
      if (victim === undefined) victim = p
      else {
        const d = this.rank(p) - this.rank(victim)
        if (d < 0 || (d === 0 && p.lastConnected < victim.lastConnected)) victim = p
      }
    }
    if (victim !== undefined) this.forget(victim.did)
  }

  private save(p: KnownPeer): void {
    const value = enc.encode(JSON.stringify(p))
    this.enqueue(() => this.store.put(KNOWN_PEER_PREFIX + p.did, value))
  }

  private enqueue(write: () => Promise<void> | void): void {
    this.chain = this.chain.then(async () => {
      try {
        await write()
        this.writes++
      } catch (err) {
        this.failures++
        this.init.logger.warn('could not persist a known peer', { err: err instanceof Error ? err.name : String(err) })
      }
    })
  }
}
