import { describe, expect, it } from 'vitest'
import { VerificationLevel, type NodeTrustProfile } from '@kos-mesh/interface'
import { VERIFICATION_ORDER, isVerificationLevel, meetsRequirements, strictestTrust, verificationRank } from '../src/index.js'

const req = (score: number, endorsements = 0, level: string = VerificationLevel.NONE) => ({
  minimum_trust_score: score, required_endorsements: endorsements, verification_level: level as VerificationLevel,
})
const profile = (score: number, endorsements = 0, level: string = VerificationLevel.NONE): NodeTrustProfile => ({
  trust_score: score, endorsements, verification_level: level as VerificationLevel,
})

describe('verification levels', () => {
  it('orders none < basic < strong < cryptographic; anything else ranks -1', () => {
    expect(VERIFICATION_ORDER).toEqual(['none', 'basic', 'strong', 'cryptographic'])
    expect(VERIFICATION_ORDER.map(verificationRank)).toEqual([0, 1, 2, 3])
    for (const bad of ['', 'NONE', 'constructor', '__proto__', 'toString', undefined, null, 3]) {
      expect(verificationRank(bad)).toBe(-1)
      expect(isVerificationLevel(bad)).toBe(false)
    }
    expect(isVerificationLevel('strong')).toBe(true)
  })
})

describe('strictestTrust', () => {
  it('takes the stricter value of each field', () => {
    expect(strictestTrust(req(2, 3, 'strong'), req(5, 1, 'basic'))).toEqual(req(5, 3, 'strong'))
    expect(strictestTrust(req(2, 0, 'basic'), req(0, 0, 'cryptographic'))).toEqual(req(2, 0, 'cryptographic'))
    const a = req(1)
    expect(strictestTrust(a, undefined)).toBe(a)
  })

  it('never lets an unknown level in b replace a known one', () => {
    expect(strictestTrust(req(0, 0, 'basic'), req(0, 0, 'bogus')).verification_level).toBe('basic')
  })
})

describe('meetsRequirements', () => {
  it('passes when every requirement is met, and reports score and endorsements', () => {
    expect(meetsRequirements(profile(6, 2, 'strong'), req(6, 2, 'basic'))).toEqual({ passed: true, score: 6, endorsements: 2 })
    expect(meetsRequirements(profile(0), req(0)).passed).toBe(true)
  })

  it('names the first unmet requirement: score, then endorsements, then level', () => {
    expect(meetsRequirements(profile(4, 0), req(5, 1, 'strong'))).toMatchObject({ passed: false, score: 4, reason: 'expected trust score >= 5, got 4' })
    expect(meetsRequirements(profile(5, 0), req(5, 1, 'strong'))).toMatchObject({ passed: false, reason: 'expected >= 1 endorsements, got 0' })
    expect(meetsRequirements(profile(5, 1, 'basic'), req(5, 1, 'strong'))).toMatchObject({ passed: false, reason: 'expected verification level strong, got basic' })
  })

  it('fails closed: an unknown required level or a NaN requirement is never met; an unknown profile level counts as none', () => {
    expect(meetsRequirements(profile(10, 10, 'cryptographic'), req(0, 0, 'bogus')).passed).toBe(false)
    expect(meetsRequirements(profile(10, 10, 'cryptographic'), req(Number.NaN)).passed).toBe(false)
    expect(meetsRequirements(profile(10, 10, 'bogus'), req(0, 0, 'none')).passed).toBe(true)
    expect(meetsRequirements(profile(10, 10, 'bogus'), req(0, 0, 'basic')).passed).toBe(false)
  })
})
