/**
 * Pure trust policy: the order of verification levels, combining two sets of trust requirements
 * (the stricter wins, field by field) and checking a trust profile against requirements. No state,
 * no I/O; every engine (the static table, the web-of-trust engine) and the router's trust stage
 * use the same rules.
 */
import { VerificationLevel, type NodeTrustProfile, type TrustCheck, type TrustRequirements } from '@kos-mesh/interface'

/** Verification levels from the weakest to the strongest. */
export const VERIFICATION_ORDER: readonly VerificationLevel[] = Object.freeze([
  VerificationLevel.NONE,
  VerificationLevel.BASIC,
  VerificationLevel.STRONG,
  VerificationLevel.CRYPTOGRAPHIC,
])

/**
 * The rank of a verification level: 0 (`none`) .. 3 (`cryptographic`), or -1 for anything that is
 * not a VerificationLevel. A switch, not an object lookup: no prototype keys, no allocation.
 */
export function verificationRank(level: unknown): number {
  switch (level) {
    case VerificationLevel.NONE:
      return 0
    case VerificationLevel.BASIC:
      return 1
    case VerificationLevel.STRONG:
      return 2
    case VerificationLevel.CRYPTOGRAPHIC:
      return 3
    default:
      return -1
  }
}

/** True when `level` is one of the VerificationLevel values. */
export function isVerificationLevel(level: unknown): level is VerificationLevel {
  return verificationRank(level) >= 0
}

/** The stricter of two trust requirements, field by field (`b` undefined: `a` itself). */
export function strictestTrust(a: TrustRequirements, b: TrustRequirements | undefined): TrustRequirements {
  if (b === undefined) return a
  return {
    minimum_trust_score: Math.max(a.minimum_trust_score, b.minimum_trust_score),
    required_endorsements: Math.max(a.required_endorsements, b.required_endorsements),
    verification_level: verificationRank(b.verification_level) > verificationRank(a.verification_level) ? b.verification_level : a.verification_level,
  }
}

/**
 * Checks a trust profile against requirements; the `reason` names the first unmet one (score,
 * then endorsements, then verification level). A requirement level that is not a
 * VerificationLevel is never met; a profile level that is not one counts as `none`.
 */
export function meetsRequirements(profile: NodeTrustProfile, req: TrustRequirements): TrustCheck {
  // object literals, no spreads: this runs for every inbound message
  const score = profile.trust_score
  const endorsements = profile.endorsements
  if (!(score >= req.minimum_trust_score)) {
    return { passed: false, score, endorsements, reason: `expected trust score >= ${req.minimum_trust_score}, got ${score}` }
  }
  if (!(endorsements >= req.required_endorsements)) {
    return { passed: false, score, endorsements, reason: `expected >= ${req.required_endorsements} endorsements, got ${endorsements}` }
  }
  const need = verificationRank(req.verification_level)
  const have = verificationRank(profile.verification_level)
  if (need < 0 || (have < 0 ? 0 : have) < need) {
    return { passed: false, score, endorsements, reason: `expected verification level ${req.verification_level}, got ${profile.verification_level}` }
  }
  return { passed: true, score, endorsements }
}
