/**
 * The DHT service's view of records: every node record and provider record that arrives is
 * verified here (its own signature, whoever relayed it), with a bounded cache of bytes already
 * verified, and the newest verified node record per DID is kept in a bounded directory (for
 * authorities, dial addresses and the `node` of provider entries). Invalid records are counted by
 * the error's name and dropped; they never reach the Kademlia core.
 */
import { createHash } from 'node:crypto'
import type { AbortOptions, Clock, NetworkAddress, TransportAddress } from '@kos-mesh/interface'
import { throwIfAborted } from '@kos-mesh/interface'
import { kadIdOf } from '../kad/id.js'
import type { Contact } from '../kad/types.js'
import type { NodeRecord, RecordVerifier } from '../types.js'
import type { ProviderVerifier, SignedProviderRecord } from './provider.js'

export interface RecordBookInit {
  verifyRecord: RecordVerifier
  verifyProvider: ProviderVerifier
  clock: Pick<Clock, 'now'>
  toTransportAddress: (a: NetworkAddress) => TransportAddress | undefined
  /** Newest node record kept per DID, for this many DIDs. */
  maxRecords: number
  /** Verified byte strings remembered (skips a second signature check of the same bytes). */
  maxCache: number
}

function lruSet<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key)
  if (map.size >= max) {
    const first = map.keys().next()
    if (first.done !== true) map.delete(first.value)
  }
  map.set(key, value)
}

function digest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('base64')
}

export class RecordBook {
  readonly #init: RecordBookInit
  readonly #records = new Map<string, NodeRecord>()
  readonly #nodeCache = new Map<string, NodeRecord>()
  readonly #providerCache = new Map<string, SignedProviderRecord>()
  readonly #contacts = new WeakMap<NodeRecord, Contact>()
  /** Records rejected, by the error's name (`InvalidRecordSignatureError`, `RecordExpiredError`, ...). */
  readonly rejects: Record<string, number> = {}

  constructor(init: RecordBookInit) {
    this.#init = init
  }

  #reject(err: unknown, signal?: AbortSignal): undefined {
    throwIfAborted(signal)
    const name = err instanceof Error ? err.name : 'unknown'
    this.rejects[name] = (this.rejects[name] ?? 0) + 1
    return undefined
  }

  /** Verifies node record bytes (cached); undefined (counted) when invalid or expired. */
  async node(bytes: Uint8Array, options: AbortOptions = {}): Promise<NodeRecord | undefined> {
    const key = digest(bytes)
    const hit = this.#nodeCache.get(key)
    if (hit !== undefined) {
      if (hit.expiresAt > this.#init.clock.now()) {
        this.#remember(hit)
        return hit
      }
      this.#nodeCache.delete(key)
    }
    try {
      const rec = await this.#init.verifyRecord(bytes, options)
      lruSet(this.#nodeCache, key, rec, this.#init.maxCache)
      this.#remember(rec)
      return rec
    } catch (err) {
      return this.#reject(err, options.signal)
    }
  }

  /** Verifies provider record bytes (cached); undefined (counted) when invalid or expired. */
  async provider(bytes: Uint8Array, options: AbortOptions = {}): Promise<SignedProviderRecord | undefined> {
    const key = digest(bytes)
    const hit = this.#providerCache.get(key)
    if (hit !== undefined) {
      if (hit.expiresAt > this.#init.clock.now()) return hit
      this.#providerCache.delete(key)
    }
    try {
      const rec = await this.#init.verifyProvider(bytes, options)
      lruSet(this.#providerCache, key, rec, this.#init.maxCache)
      return rec
    } catch (err) {
      return this.#reject(err, options.signal)
    }
  }

  /** Counts a record that verified but was refused for another reason (e.g. `DhtRecordMismatchError`). */
  count(name: string): void {
    this.rejects[name] = (this.rejects[name] ?? 0) + 1
  }

  #remember(rec: NodeRecord): void {
    const cur = this.#records.get(rec.peerId)
    if (cur !== undefined && cur.timestamp > rec.timestamp && cur.expiresAt > this.#init.clock.now()) return
    lruSet(this.#records, rec.peerId, rec, this.#init.maxRecords)
  }

  /** The newest unexpired verified record of `did`. */
  get(did: string): NodeRecord | undefined {
    const rec = this.#records.get(did)
    if (rec === undefined) return undefined
    if (rec.expiresAt <= this.#init.clock.now()) {
      this.#records.delete(did)
      return undefined
    }
    return rec
  }

  /** The KLP authority a verified record of `did` names (its signed `source`). */
  authorityOf(did: string): string | undefined {
    return this.get(did)?.address?.authority
  }

  /** The Kademlia contact of a verified record: id = sha256(did), dialable addresses, the signed bytes. */
  contactOf(rec: NodeRecord): Contact {
    let c = this.#contacts.get(rec)
    if (c === undefined) {
      const addrs: string[] = []
      for (const a of rec.node.network_info.addresses) {
        const t = this.#init.toTransportAddress(a)
        if (t !== undefined && !addrs.includes(t)) addrs.push(t)
      }
      c = { id: kadIdOf(rec.peerId), did: rec.peerId, addrs, record: rec.bytes }
      this.#contacts.set(rec, c)
    }
    return c
  }

  /** The best contact known for `did`: from its newest record, else a bare one (no addresses). */
  contactOfDid(did: string): Contact {
    const rec = this.get(did)
    return rec === undefined ? { id: kadIdOf(did), did, addrs: [] } : this.contactOf(rec)
  }

  get size(): number {
    return this.#records.size
  }
}
