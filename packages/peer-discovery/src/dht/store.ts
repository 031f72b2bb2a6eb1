/**
 * Persistence of the routing table: each contact's signed node record under
 * `<prefix><did>` in a KeyValueStore (default prefix `dht/contact/`), bounded in count, written
 * when it changed and deleted when the contact left the table. At start the records are read back
 * and verified again (an expired, forged or misfiled one is deleted, never used).
 */
import type { AbortOptions, KeyValueStore, Logger } from '@kos-mesh/interface'
import type { Contact } from '../kad/types.js'
import type { RecordBook } from './contacts.js'
import type { NodeRecord } from '../types.js'
import { errName } from './rpc.js'

/** Default key prefix of the DHT contacts kept in the node's store (`dht/contact/<did>`). */
export const DEFAULT_CONTACT_PREFIX = 'dht/contact/'

export interface ContactStoreInit {
  store: KeyValueStore
  book: RecordBook
  log: Logger
  prefix: string
  /** Contacts kept in the store at most. */
  max: number
}

export interface LoadResult {
  loaded: NodeRecord[]
  dropped: number
}

export class ContactStore {
  readonly #i: ContactStoreInit
  /** DID -> message id of the record stored for it (what the store holds, as far as we wrote or read it). */
  readonly #stored = new Map<string, string>()

  constructor(init: ContactStoreInit) {
    this.#i = init
  }

  /** Reads and re-verifies the stored records (at most `max`); deletes the ones that fail. */
  async load(options: AbortOptions = {}): Promise<LoadResult> {
    const { store, book, prefix, max } = this.#i
    const loaded: NodeRecord[] = []
    const bad: string[] = []
    // read a little more than `max` so misfiled or stale entries do not hide good ones
    for await (const { key, value } of store.query(prefix, { limit: max * 2, ...options })) {
      const rec = value instanceof Uint8Array && value.length > 0 ? await book.node(value, options) : undefined
      if (rec === undefined || key !== prefix + rec.peerId || loaded.length >= max) {
        bad.push(key)
        continue
      }
      loaded.push(rec)
      this.#stored.set(rec.peerId, rec.messageId)
    }
    for (const key of bad) await store.delete(key, options).catch((err: unknown) => this.#i.log.debug('dht store delete failed', { key, err: errName(err) }))
    return { loaded, dropped: bad.length }
  }

  /**
   * Writes the records of `contacts` (their newest verified record, at most `max` contacts) that
   * changed since the last write, and deletes stored contacts that are no longer given. Returns
   * how many were written.
   */
  async save(contacts: Iterable<Contact>, options: AbortOptions = {}): Promise<number> {
    const { store, book, prefix, max } = this.#i
    const keep = new Map<string, NodeRecord>()
    for (const c of contacts) {
      if (keep.size >= max) break
      const rec = book.get(c.did) ?? (c.record === undefined ? undefined : await book.node(c.record, options))
      if (rec !== undefined && rec.peerId === c.did) keep.set(c.did, rec)
    }
    let written = 0
    for (const [did, rec] of keep) {
      if (this.#stored.get(did) === rec.messageId) continue
      await store.put(prefix + did, rec.bytes, options)
      this.#stored.set(did, rec.messageId)
      written++
    }
    for (const did of [...this.#stored.keys()]) {
      if (keep.has(did)) continue
      await store.delete(prefix + did, options)
      this.#stored.delete(did)
    }
    return written
  }
}
