import {
  InvalidParametersError,
  VerificationLevel,
  type NodeTrustProfile,
  type TrustCheck,
  type TrustEngine,
  type TrustRequirements,
} from '@kos-mesh/interface'

const LEVEL_RANK: Record<string, number> = {
  [VerificationLevel.NONE]: 0,
  [VerificationLevel.BASIC]: 1,
  [VerificationLevel.STRONG]: 2,
  [VerificationLevel.CRYPTOGRAPHIC]: 3,
}

export interface LocalTrustStoreInit {
  /**
   * Profile of a DID that was never set. Default `{ trust_score: 0, endorsements: 0,
   * verification_level: 'none' }` (zero trust: only messages that ask for nothing pass).
   */
  defaultProfile?: NodeTrustProfile
  /** Maximum DIDs kept. Default 100,000. */
  maxEntries?: number
}

/** A TrustEngine backed by a local, in-memory table of trust profiles by DID. */
export interface LocalTrustStore extends TrustEngine {
  /** Sets (merges) the profile of a DID. */
  set(did: string, profile: Partial<NodeTrustProfile>): void
  get(did: string): NodeTrustProfile
  delete(did: string): void
  readonly size: number
  check(subject: string, requirements: TrustRequirements): TrustCheck
  /** The DID's trust score, or undefined when it was never set. */
  peerScore(subject: string): number | undefined
}

/** Checks a profile against requirements; the `reason` names the first unmet one. */
export function checkTrust(profile: NodeTrustProfile, req: TrustRequirements): TrustCheck {
  // object literals, no spreads: this runs for every inbound message
  const score = profile.trust_score
  const endorsements = profile.endorsements
  if (score < req.minimum_trust_score) {
    return { passed: false, score, endorsements, reason: `expected trust score >= ${req.minimum_trust_score}, got ${score}` }
  }
  if (endorsements < req.required_endorsements) {
    return { passed: false, score, endorsements, reason: `expected >= ${req.required_endorsements} endorsements, got ${endorsements}` }
  }
  const need = LEVEL_RANK[req.verification_level]
  const have = LEVEL_RANK[profile.verification_level] ?? 0
  if (need === undefined || have < need) {
    return { passed: false, score, endorsements, reason: `expected verification level ${req.verification_level}, got ${profile.verification_level}` }
  }
  return { passed: true, score, endorsements }
}

class LocalTrust implements LocalTrustStore {
  private readonly profiles = new Map<string, NodeTrustProfile>()
  private readonly defaults: NodeTrustProfile
  private readonly maxEntries: number

  constructor(init: LocalTrustStoreInit) {
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
    if (profile.verification_level !== undefined && LEVEL_RANK[profile.verification_level] === undefined) {
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
    return checkTrust(this.get(subject), requirements)
  }

  peerScore(subject: string): number | undefined {
    return this.profiles.get(subject)?.trust_score
  }
}

/** A simple local trust store implementing the TrustEngine contract (a real engine comes later). */
export function localTrustStore(init: LocalTrustStoreInit = {}): LocalTrustStore {
  return new LocalTrust(init)
}
