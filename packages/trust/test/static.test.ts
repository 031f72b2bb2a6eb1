import { describe, expect, it } from 'vitest'
import { VerificationLevel, type TrustEngine } from '@kos-mesh/interface'
import { localTrustStore, staticTrustEngine, type LocalTrustStore, type StaticTrustEngine } from '../src/index.js'

const req = (score: number, endorsements = 0, level: VerificationLevel = VerificationLevel.NONE) => ({
  minimum_trust_score: score, required_endorsements: endorsements, verification_level: level,
})

describe('staticTrustEngine', () => {
  it('is zero-trust by default and checks score, endorsements and level', () => {
    const t = staticTrustEngine()
    expect(t.check('did:x', req(0)).passed).toBe(true)
    expect(t.check('did:x', req(1)).passed).toBe(false)
    t.set('did:x', { trust_score: 6, endorsements: 2, verification_level: VerificationLevel.STRONG })
    expect(t.check('did:x', req(6, 2, VerificationLevel.BASIC)).passed).toBe(true)
    expect(t.check('did:x', req(6, 3)).passed).toBe(false)
    expect(t.check('did:x', req(6, 2, VerificationLevel.CRYPTOGRAPHIC)).passed).toBe(false)
    expect(t.check('did:x', req(7)).score).toBe(6)
    t.delete('did:x')
    expect(t.check('did:x', req(6)).passed).toBe(false)
  })

  it('merges profiles, answers peerScore only for DIDs that were set, and uses the default profile', () => {
    const t = staticTrustEngine({ defaultProfile: { trust_score: 2, endorsements: 0, verification_level: VerificationLevel.BASIC } })
    expect(t.peerScore('did:y')).toBeUndefined()
    expect(t.get('did:y')).toEqual({ trust_score: 2, endorsements: 0, verification_level: VerificationLevel.BASIC })
    expect(t.check('did:y', req(2, 0, VerificationLevel.BASIC)).passed).toBe(true)
    t.set('did:y', { endorsements: 3 })
    t.set('did:y', { trust_score: 5 })
    expect(t.get('did:y')).toEqual({ trust_score: 5, endorsements: 3, verification_level: VerificationLevel.BASIC })
    expect(t.peerScore('did:y')).toBe(5)
    expect(t.size).toBe(1)
  })

  it('rejects out-of-range profiles with a typed error', () => {
    expect(() => staticTrustEngine().set('did:x', { trust_score: 11 })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => staticTrustEngine().set('did:x', { trust_score: Number.NaN })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => staticTrustEngine().set('did:x', { verification_level: 'constructor' as never })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
  })

  it('stays bounded: the oldest DID set goes first', () => {
    const t = staticTrustEngine({ maxEntries: 2 })
    t.set('did:a', { trust_score: 1 })
    t.set('did:b', { trust_score: 2 })
    t.set('did:c', { trust_score: 3 })
    expect(t.size).toBe(2)
    expect(t.peerScore('did:a')).toBeUndefined()
    expect(t.peerScore('did:c')).toBe(3)
  })

  it('has no behaviour beyond operator-set profiles: no revocation, no observations', () => {
    const t: TrustEngine = staticTrustEngine()
    expect(t.isRevoked).toBeUndefined()
    expect(t.observe).toBeUndefined()
  })

  it('keeps localTrustStore as a deprecated alias', () => {
    expect(localTrustStore).toBe(staticTrustEngine)
    const t: LocalTrustStore = localTrustStore()
    const u: StaticTrustEngine = t
    u.set('did:z', { trust_score: 4 })
    expect(t.check('did:z', req(4)).passed).toBe(true)
  })
})
