/**
 * The static trust engine: a local, in-memory table of trust profiles by DID that an operator (or
 * a test) sets by hand. No statements, no propagation, no revocation, no reputation: a DID is
 * exactly as trusted as its profile says. It is the router's default engine (empty: zero trust,
 * only messages that ask for nothing pass). Formerly klp-router's `localTrustStore`.
 */
import {
  InvalidParametersError,
  VerificationLevel,
  type NodeTrustProfile,
  type TrustCheck,
  type TrustEngine,
  type TrustRequirements,
} from '@kos-mesh/interface'
import { isVerificationLevel, meetsRequirements } from './policy.js'

/** Options of `staticTrustEngine`. */
export interface StaticTrustEngineInit {
  /**
   * Profile of a DID that was never set. Default `{ trust_score: 0, endorsements: 0,
   * verification_level: 'none' }` (zero trust: only messages that ask for nothing pass).
   */
  defaultProfile?: NodeTrustProfile
  /** Maximum DIDs kept (the oldest set goes first). Default 100,000. */
  maxEntries?: number
}

/** A TrustEngine backed by a local, in-memory table of trust profiles by DID. */
export interface StaticTrustEngine extends TrustEngine {
  /** Sets (merges) the profile of a DID. Throws InvalidParametersError on a bad score or level. */
  set(did: string, profile: Partial<NodeTrustProfile>): void
  /** The DID's profile, or the default profile when it was never set. */
  get(did: string): NodeTrustProfile
  /** Forgets the profile of `did`. */
  delete(did: string): void
  readonly size: number
  /**
   * Whether `subject`'s profile meets `requirements` (score, endorsements, verification level), and why
   * not.
   */
  check(subject: string, requirements: TrustRequirements): TrustCheck
  /** The DID's trust score, or undefined when it was never set. */
  peerScore(subject: string): number | undefined
}

class StaticTrust implements StaticTrustEngine {
  private readonly profiles = new Map<string, NodeTrustProfile>()
  private readonly defaults: NodeTrustProfile
  private readonly maxEntries: number

  constructor(init: StaticTrustEngineInit) {
    this.defaults = init.defaultProfile ?? { trust_score: 0, endorsements: 0, verification_level: VerificationLevel.NONE }
    this.maxEntries = init.maxEntries ?? 100_000
  }

  get size(): number {
    return this.profiles.size
  }

  set(did: string, profile: Partial<NodeTrustProfile>): void {
    if (profile.trust_score !== undefined && !(profile.trust_score >= 0 && profile.trust_score <= 10)) {
      throw new InvalidParametersError(`expected trust_score in 0..10, got ${profile.trust_score}`)
    }
    if (profile.verification_level !== undefined && !isVerificationLevel(profile.verification_level)) {
      throw new InvalidParametersError(`expected a VerificationLevel, got ${String(profile.verification_level)}`)
    }
    const cur = this.profiles.get(did)
    if (cur === undefined && this.profiles.size >= this.maxEntries) {
      const first = this.profiles.keys().next()
      if (first.done !== true) this.profiles.delete(first.value)
    }
    this.profiles.set(did, { ...this.defaults, ...cur, ...profile })
  }

  get(did: string): NodeTrustProfile {
    return this.profiles.get(did) ?? this.defaults
  }

  delete(did: string): void {
    this.profiles.delete(did)
  }

  check(subject: string, requirements: TrustRequirements): TrustCheck {
    return meetsRequirements(this.get(subject), requirements)
  }

  peerScore(subject: string): number | undefined {
    return this.profiles.get(subject)?.trust_score
  }
}

/** A TrustEngine over an operator-set table of profiles (see the module comment). */
export function staticTrustEngine(init: StaticTrustEngineInit = {}): StaticTrustEngine {
  return new StaticTrust(init)
}

/** @deprecated Renamed `staticTrustEngine` (moved from klp-router); this alias goes in the next minor release. */
export const localTrustStore: (init?: StaticTrustEngineInit) => StaticTrustEngine = staticTrustEngine
/** @deprecated Renamed `StaticTrustEngine`. */
export type LocalTrustStore = StaticTrustEngine
/** @deprecated Renamed `StaticTrustEngineInit`. */
export type LocalTrustStoreInit = StaticTrustEngineInit
