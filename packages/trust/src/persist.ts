/**
 * Persistence of signed statements in a KeyValueStore: one entry per statement, key
 * `<prefix><statement id>`, value the statement's COSE_Sign1 bytes exactly as received (so a
 * reload verifies them again, and a corrupt entry is found and skipped, never trusted).
 */
import { InvalidParametersError, type AbortOptions, type KeyValueStore, type Logger } from '@kos-mesh/interface'
import { InvalidTrustMessageError } from './errors.js'
import type { AddOutcome, SignedStatement } from './types.js'

/** The default key prefix of persisted statements. */
export const DEFAULT_STORE_PREFIX = 'trust-statement/'

/** Signed statements persisted in a KeyValueStore, one key per statement (`<prefix><id>`). */
export interface StatementStore {
  readonly prefix: string
  /** Stores a statement under `<prefix><id>` (idempotent). */
  put(statement: SignedStatement, options?: AbortOptions): Promise<void>
  /** Removes the persisted statement with id `id`. */
  delete(id: string, options?: AbortOptions): Promise<void>
  /** Every persisted entry, in key order: the id from its key and the stored bytes (unchecked). */
  entries(options?: AbortOptions): AsyncIterable<{ id: string; bytes: Uint8Array }>
}

/** A StatementStore on a KeyValueStore, under `prefix` (default `trust-statement/`). */
export function statementStore(store: KeyValueStore, prefix: string = DEFAULT_STORE_PREFIX): StatementStore {
  if (typeof prefix !== 'string' || prefix.length === 0 || prefix.length > 256) {
    throw new InvalidParametersError(`storePrefix: expected a string of 1..256 characters, got ${typeof prefix === 'string' ? `${prefix.length} characters` : typeof prefix}`)
  }
  return {
    prefix,
    async put(statement, options) {
      await store.put(prefix + statement.id, statement.bytes, options)
    },
    async delete(id, options) {
      await store.delete(prefix + id, options)
    },
    async *entries(options) {
      for await (const { key, value } of store.query(prefix, options)) {
        if (!key.startsWith(prefix)) continue
        yield { id: key.slice(prefix.length), bytes: value }
      }
    },
  }
}

/** What loading and persisting count (a view of the service's counters). */
export interface PersistCounters {
  loaded: number
  loadSkipped: number
  persistFailures: number
}

/** The engine's side of persistence: what it holds, and how it takes a reloaded statement. */
export interface PersistEngine {
  add(statement: SignedStatement, options?: { restored?: boolean }): AddOutcome
  has(id: string): boolean
  prune(): number
}

/**
 * The statements of an engine mirrored in a StatementStore: reloaded (and verified again) at
 * start, written when the engine takes a new one, deleted when it no longer holds one. Without a
 * store every method does nothing.
 */
export class PersistedStatements {
  readonly #store: StatementStore | undefined
  readonly #ids = new Set<string>()

  constructor(
    store: StatementStore | undefined,
    private readonly counters: PersistCounters,
    private readonly log: Logger,
  ) {
    this.#store = store
  }

  /** Loads the persisted statements, verifying each again; corrupt or dead entries are deleted. */
  async load(engine: PersistEngine, verify: (bytes: Uint8Array, signal: AbortSignal) => Promise<SignedStatement>, signal: AbortSignal): Promise<void> {
    const store = this.#store
    if (store === undefined) return
    const drop: string[] = []
    for await (const { id, bytes } of store.entries({ signal })) {
      let s: SignedStatement
      try {
        s = await verify(bytes, signal)
        if (s.id !== id) throw new InvalidTrustMessageError(`expected the entry of ${id.slice(0, 80)} to hold that statement, got ${s.id.slice(0, 80)}`)
      } catch (err) {
        if (signal.aborted) throw err
        this.counters.loadSkipped++
        this.log.warn('skipped a persisted trust statement', { id: id.slice(0, 80), err: errName(err) })
        drop.push(id)
        continue
      }
      let outcome: AddOutcome
      try {
        outcome = engine.add(s, { restored: true })
      } catch (err) {
        this.counters.loadSkipped++
        this.log.warn('the engine refused a persisted trust statement', { id: id.slice(0, 80), err: errName(err) })
        drop.push(id)
        continue
      }
      if (outcome === 'added' || outcome === 'superseded' || outcome === 'duplicate') {
        this.counters.loaded++
        this.#ids.add(id)
      } else {
        this.counters.loadSkipped++
        drop.push(id)
      }
    }
    for (const id of drop) await this.delete(id)
  }

  async persist(s: SignedStatement, signal?: AbortSignal): Promise<void> {
    if (this.#store === undefined) return
    try {
      await this.#store.put(s, signal === undefined ? {} : { signal })
      this.#ids.add(s.id)
    } catch (err) {
      this.counters.persistFailures++
      this.log.warn('persisting a trust statement failed', { id: s.id.slice(0, 80), err: errName(err) })
    }
  }

  async delete(id: string): Promise<void> {
    if (this.#store === undefined) return
    try {
      await this.#store.delete(id)
      this.#ids.delete(id)
    } catch (err) {
      this.counters.persistFailures++
      this.log.debug('deleting a trust statement failed', { id: id.slice(0, 80), err: errName(err) })
    }
  }

  /** Drops expired statements from the engine, and from the store what the engine no longer holds. */
  async sweep(engine: PersistEngine): Promise<void> {
    engine.prune()
    for (const id of [...this.#ids]) if (!engine.has(id)) await this.delete(id)
  }
}

function errName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err
}
