/**
 * The node's trust store: the router's local trust table, persisted in the node's KeyValueStore
 * under `trust/<did>` so that operator decisions survive restarts.
 */
import {
  InvalidParametersError,
  VerificationLevel,
  throwIfAborted,
  type AbortOptions,
  type KeyValueStore,
  type NodeTrustProfile,
  type TrustCheck,
  type TrustEngine,
  type TrustRequirements,
  systemClock,
} from '@kos-mesh/interface'
import { localTrustStore, type LocalTrustStore } from '@kos-mesh/klp-router'
import { checkDid, isValidDid } from './did.js'

export const TRUST_PREFIX = 'trust/'

/** One persisted trust decision. */
export interface TrustEntry extends NodeTrustProfile {
  did: string
  /** What the operator named (a DID or agent addresses) when trusting this DID. */
  subjects: string[]
  /** ms since epoch. */
  updated: number
}

export interface PersistentTrustStore extends TrustEngine {
  /** Loads every persisted entry (the node calls it at start). */
  load(options?: AbortOptions): Promise<void>
  /** Trusts `did` (a valid DID, else InvalidDidError) at `level` (an integer 0..10), remembering `subject` (the DID or an agent address) and persisting it. */
  trust(did: string, level: number, subject?: string, options?: AbortOptions): Promise<TrustEntry>
  /** Forgets a DID. */
  untrust(did: string, options?: AbortOptions): Promise<void>
  get(did: string): NodeTrustProfile
  /** The trust score the operator set for `did`, or undefined when none was set. */
  peerScore(did: string): number | undefined
  list(): TrustEntry[]
}

const enc = new TextEncoder()
const dec = new TextDecoder()
const MAX_SUBJECTS = 32

class TrustStoreImpl implements PersistentTrustStore {
  private readonly table: LocalTrustStore = localTrustStore()
  private readonly entries = new Map<string, TrustEntry>()

  constructor(
    private readonly store: KeyValueStore,
    private readonly now: () => number,
  ) {}

  async load(options?: AbortOptions): Promise<void> {
    for await (const { key, value } of this.store.query(TRUST_PREFIX, options)) {
      let e: TrustEntry
      try {
        e = JSON.parse(dec.decode(value)) as TrustEntry
      } catch {
        continue // a corrupt entry is skipped, not fatal
      }
      if (!isValidDid(e.did) || key !== TRUST_PREFIX + e.did) continue // e.g. a malformed DID stored by an older version
      try {
        this.table.set(e.did, { trust_score: e.trust_score, endorsements: e.endorsements, verification_level: e.verification_level })
        this.entries.set(e.did, e)
      } catch {
        continue
      }
    }
  }

  async trust(did: string, level: number, subject: string = did, options?: AbortOptions): Promise<TrustEntry> {
    throwIfAborted(options?.signal)
    checkDid(did)
    if (typeof level !== 'number' || !Number.isInteger(level) || level < 0 || level > 10) throw new InvalidParametersError(`expected a trust level, an integer in 0..10, got ${String(level)}`)
    const prev = this.entries.get(did)
    const subjects = [...new Set([...(prev?.subjects ?? []), subject])].slice(-MAX_SUBJECTS)
    const entry: TrustEntry = {
      did,
      trust_score: level,
      endorsements: prev?.endorsements ?? 0,
      // the operator vouched for this DID, and every message of it is signature-checked
      verification_level: level > 0 ? VerificationLevel.CRYPTOGRAPHIC : VerificationLevel.NONE,
      subjects,
      updated: this.now(),
    }
    await this.store.put(TRUST_PREFIX + did, enc.encode(JSON.stringify(entry)), options)
    this.table.set(did, { trust_score: entry.trust_score, endorsements: entry.endorsements, verification_level: entry.verification_level })
    this.entries.set(did, entry)
    return entry
  }

  async untrust(did: string, options?: AbortOptions): Promise<void> {
    await this.store.delete(TRUST_PREFIX + did, options)
    this.table.delete(did)
    this.entries.delete(did)
  }

  get(did: string): NodeTrustProfile {
    return this.table.get(did)
  }

  list(): TrustEntry[] {
    return [...this.entries.values()].sort((a, b) => (a.did < b.did ? -1 : a.did > b.did ? 1 : 0))
  }

  check(subject: string, requirements: TrustRequirements): TrustCheck {
    return this.table.check(subject, requirements)
  }

  peerScore(subject: string): number | undefined {
    return this.table.peerScore(subject)
  }
}

/** A TrustEngine whose decisions persist in `store`. */
export function persistentTrustStore(store: KeyValueStore, now: () => number = () => systemClock.now()): PersistentTrustStore {
  return new TrustStoreImpl(store, now)
}
