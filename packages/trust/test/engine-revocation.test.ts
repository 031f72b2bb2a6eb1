import { describe, expect, it } from 'vitest'
import { DAY, SELF, T0, att, delta, did, mkEngine, revoke } from './helpers-engine.js'

const A = did('a')
const B = did('b')
const C = did('c')
const V = did('validator')
const ANCHOR = did('anchor')
const NO_DECAY = { attestationHalfLifeMs: Infinity }
const ANY = { minimum_trust_score: 0, required_endorsements: 0, verification_level: 'none' as const }

describe('engine: revocations', () => {
  it('scope statement removes the named statement of the same issuer only', () => {
    const { engine } = mkEngine(NO_DECAY)
    engine.setAnchor({ did: ANCHOR, level: 10 })
    const mine = att(SELF, A, 10)
    const theirs = att(ANCHOR, B, 10)
    engine.add(mine)
    engine.add(theirs)
    expect(engine.peerScore(A)).toBeCloseTo(8, 10)
    expect(engine.add(revoke(SELF, A, 'statement', { statement: mine.id }))).toBe('added')
    expect(engine.peerScore(A)).toBeUndefined()
    // SELF naming ANCHOR's statement: ignored for that statement
    engine.add(revoke(SELF, B, 'statement', { statement: theirs.id }))
    expect(engine.peerScore(B)).toBeCloseTo(8, 10)
  })

  it('a statement-scope revocation also withdraws the named statement when it arrives later', () => {
    const { engine } = mkEngine(NO_DECAY)
    const later = att(SELF, A, 10, { id: 'later-statement' })
    engine.add(revoke(SELF, A, 'statement', { statement: 'later-statement' }))
    engine.add(later)
    expect(engine.peerScore(A)).toBeUndefined()
  })

  it('scope attestations removes the issuer attestations issued up to the revocation; later ones count again', () => {
    const { engine } = mkEngine(NO_DECAY)
    engine.setAnchor({ did: ANCHOR, level: 10 })
    engine.add(att(SELF, A, 10, { issuedAt: T0 }))
    engine.add(att(SELF, A, 5, { issuedAt: T0 + 1000 }))
    engine.add(att(ANCHOR, A, 3))
    engine.add(revoke(SELF, A, 'attestations', { issuedAt: T0 + 1000 }))
    expect(engine.peerScore(A)).toBeCloseTo(2.4, 10) // only ANCHOR's 0.8 * 3 is left
    engine.add(att(SELF, A, 6, { issuedAt: T0 + 2000 }))
    expect(engine.peerScore(A)).toBeCloseTo(4.8, 10)
  })

  it('a key revocation by its holder revokes the DID at once, absolutely, and its statements stop counting', () => {
    const { engine } = mkEngine(NO_DECAY)
    engine.add(att(SELF, A, 10))
    engine.add(att(A, B, 10))
    engine.add(delta(A, C, { task_failed: 20 }))
    engine.add(att(SELF, C, 5))
    expect(engine.peerScore(B)).toBeCloseTo(6.4, 10)
    expect(engine.peerScore(C)).toBeLessThan(4)
    const selfRevocation = revoke(A, A, 'key', { reason: 'key compromised' })
    engine.add(selfRevocation)
    expect(engine.isRevoked(A)).toBe(true)
    expect(engine.peerScore(A)).toBe(0)
    expect(engine.profile(A)).toEqual({ trust_score: 0, endorsements: 0, verification_level: 'none' })
    expect(engine.check(A, ANY)).toMatchObject({ passed: false, reason: 'revoked' })
    expect(engine.peerScore(B)).toBeUndefined() // A's attestation no longer counts
    expect(engine.peerScore(C)).toBeCloseTo(4, 10) // nor its delta
    // its later statements are refused, and it cannot undo its own key revocation
    expect(engine.add(att(A, B, 10, { issuedAt: T0 + 1 }))).toBe('revoked_issuer')
    expect(engine.add(revoke(A, A, 'statement', { statement: selfRevocation.id, issuedAt: T0 + 1 }))).toBe('revoked_issuer')
    expect(engine.isRevoked(A)).toBe(true)
    // even this node's anchor decision does not bring it back
    engine.setAnchor({ did: A, level: 10 })
    expect(engine.isRevoked(A)).toBe(true)
    expect(engine.peerScore(A)).toBe(0)
    const r = engine.explain(A)
    expect(r.revoked).toBe(true)
    expect(r.evidence.some((e) => e.kind === 'revocation' && e.statement === selfRevocation.id)).toBe(true)
  })

  it('revocations by a revoked DID (other than its key revocation) stop counting', () => {
    const { engine } = mkEngine(NO_DECAY)
    engine.add(att(SELF, A, 10))
    const ab = att(A, B, 10)
    engine.add(ab)
    engine.add(revoke(A, B, 'statement', { statement: ab.id }))
    expect(engine.peerScore(B)).toBeUndefined()
    engine.add(revoke(A, A, 'key'))
    // A's withdrawal no longer counts; neither does the withdrawn attestation (issuer revoked)
    expect(engine.peerScore(B)).toBeUndefined()
    expect(engine.isRevoked(A)).toBe(true)
  })

  it('a validator at or above validatorRevokeThreshold revokes; its own later statement-scope revocation undoes it', () => {
    const { engine } = mkEngine(NO_DECAY)
    engine.setAnchor({ did: V, level: 8, validator: true })
    engine.add(att(SELF, A, 10))
    const rev = revoke(V, A, 'key', { issuedAt: T0 + 1 })
    engine.add(rev)
    expect(engine.isRevoked(A)).toBe(true) // at once, before any read
    expect(engine.peerScore(A)).toBe(0)
    engine.add(revoke(V, A, 'statement', { statement: rev.id, issuedAt: T0 + 2 }))
    expect(engine.isRevoked(A)).toBe(false)
    expect(engine.peerScore(A)).toBeCloseTo(8, 10)
  })

  it('a validator below the threshold caps the score at 10 - w', () => {
    const { engine } = mkEngine(NO_DECAY)
    engine.setAnchor({ did: V, level: 4, validator: true })
    engine.add(att(SELF, A, 10))
    engine.add(att(A, B, 10))
    engine.add(revoke(V, A, 'key'))
    expect(engine.isRevoked(A)).toBe(false)
    expect(engine.peerScore(A)).toBeCloseTo(6, 10)
    expect(engine.peerScore(B)).toBeCloseTo(0.8 * 6, 10) // the cap holds for what A passes on
    expect(engine.explain(A).evidence.find((e) => e.kind === 'revocation')?.note).toMatch(/capped at 6/)
  })

  it('a validator by role attestation weighs with its score here', () => {
    const { engine } = mkEngine(NO_DECAY)
    engine.add(att(SELF, V, 10)) // b(V) = 8 >= 7
    engine.add(att(SELF, V, undefined, { claim: 'role', value: 'ValidatorNode' }))
    engine.add(att(SELF, A, 10))
    engine.recompute()
    engine.add(revoke(V, A, 'key'))
    expect(engine.isRevoked(A)).toBe(true)
    // without the role it is anyone: the key revocation only withdraws its own attestations
    const { engine: e2 } = mkEngine(NO_DECAY)
    e2.add(att(SELF, V, 10))
    e2.add(att(SELF, A, 5))
    e2.add(att(V, A, 10))
    expect(e2.peerScore(A)).toBeCloseTo(6.4, 10)
    e2.add(revoke(V, A, 'key'))
    expect(e2.isRevoked(A)).toBe(false)
    expect(e2.peerScore(A)).toBeCloseTo(4, 10)
  })

  it('the more trusted of two validators revoking each other wins', () => {
    const { engine } = mkEngine(NO_DECAY)
    const V2 = did('validator2')
    engine.setAnchor({ did: V, level: 9, validator: true })
    engine.setAnchor({ did: V2, level: 8, validator: true })
    engine.add(revoke(V2, V, 'key'))
    engine.add(revoke(V, V2, 'key'))
    engine.recompute()
    expect(engine.isRevoked(V2)).toBe(true)
    expect(engine.isRevoked(V)).toBe(false)
  })

  it('revocations survive their issuer other statements being evicted, within maxRevocations', () => {
    const { engine } = mkEngine({ ...NO_DECAY, maxStatementsPerIssuer: 4, maxRevocations: 3, maxStatementsPerIssuerPerMinute: 1e6 })
    engine.add(revoke(SELF, A, 'attestations'))
    for (let i = 0; i < 10; i++) engine.add(att(SELF, did(`n${i}`), 5))
    expect(engine.statements({ issuer: SELF, kind: 'revocation' })).toHaveLength(1)
    expect(engine.statements({ issuer: SELF, kind: 'attestation' })).toHaveLength(4)
    // the revocation of a known DID outlives revocations of strangers
    engine.add(att(SELF, B, 5))
    engine.recompute()
    const known = revoke(SELF, B, 'attestations', { issuedAt: T0 - 1 })
    engine.add(known)
    for (let i = 0; i < 5; i++) engine.add(revoke(did('x'), did(`stranger${i}`), 'attestations'))
    const held = engine.statements({ kind: 'revocation' }).map((s) => s.id)
    expect(held).toHaveLength(3)
    expect(held).toContain(known.id)
    expect(engine.counters.evicted).toBeGreaterThan(0)
  })

  it('an expired attestation is refused; revocations never expire', () => {
    const { engine, clock } = mkEngine()
    clock.advance(10 * DAY)
    expect(engine.add(att(SELF, A, 5, { issuedAt: T0, expiresAt: T0 + DAY }))).toBe('expired')
    expect(engine.add(revoke(SELF, A, 'attestations', { issuedAt: T0 }))).toBe('added')
    expect(engine.counters.expired).toBe(1)
  })
})
