import { describe, expect, it } from 'vitest'
import { InvalidStatementError } from '../src/errors.js'
import { createTrustEngine } from '../src/engine/index.js'
import { DAY, HOUR, ManualClock, SELF, T0, att, did, mkEngine } from './helpers-engine.js'

const A = did('a')
const B = did('b')
const C = did('c')
const ANCHOR = did('anchor')

describe('engine: base scores (attenuated widest paths)', () => {
  it('a chain anchor(8) -> A(10) -> B(6): b(A) = 6.4, b(B) = 4.8', () => {
    const { engine } = mkEngine({ attestationHalfLifeMs: Infinity })
    engine.setAnchor({ did: ANCHOR, level: 8 })
    engine.add(att(ANCHOR, A, 10))
    engine.add(att(A, B, 6))
    expect(engine.peerScore(ANCHOR)).toBe(8)
    expect(engine.peerScore(A)).toBeCloseTo(6.4, 10)
    expect(engine.peerScore(B)).toBeCloseTo(4.8, 10)
    const r = engine.explain(B)
    expect(r.path).toEqual([ANCHOR, A, B])
    expect(r.base).toBeCloseTo(4.8, 10)
  })

  it('self is 10 and its attestations give beta * level', () => {
    const { engine } = mkEngine({ attestationHalfLifeMs: Infinity })
    engine.add(att(SELF, A, 5))
    expect(engine.peerScore(SELF)).toBe(10)
    expect(engine.peerScore(A)).toBeCloseTo(4, 10)
    expect(engine.profile(SELF).verification_level).toBe('cryptographic')
  })

  it('takes the max over two paths, not the sum', () => {
    const { engine } = mkEngine({ attestationHalfLifeMs: Infinity })
    engine.setAnchor({ did: ANCHOR, level: 8 })
    engine.setAnchor({ did: A, level: 5 })
    engine.add(att(ANCHOR, C, 3)) // 0.8 * 3 = 2.4
    engine.add(att(A, C, 10)) // 0.8 * 5 = 4
    engine.add(att(B, C, 10)) // B unknown: nothing
    expect(engine.peerScore(C)).toBeCloseTo(4, 10)
    expect(engine.explain(C).path).toEqual([A, C])
  })

  it('an anchor at 0 is explicit distrust that no path raises, and passes nothing on', () => {
    const { engine } = mkEngine({ attestationHalfLifeMs: Infinity })
    engine.setAnchor({ did: A, level: 0 })
    engine.add(att(SELF, A, 10))
    engine.add(att(A, B, 10))
    expect(engine.peerScore(A)).toBe(0)
    expect(engine.peerScore(B)).toBeUndefined()
    expect(engine.profile(A).verification_level).toBe('none')
  })

  it('follows at most maxDepth attestations from an anchor', () => {
    const { engine } = mkEngine({ attestationHalfLifeMs: Infinity, maxDepth: 3 })
    const chain = [SELF, did('h1'), did('h2'), did('h3'), did('h4')]
    for (let i = 0; i + 1 < chain.length; i++) engine.add(att(chain[i]!, chain[i + 1]!, 10))
    expect(engine.peerScore(did('h3'))).toBeCloseTo(10 * 0.8 ** 3, 10)
    // h4 is beyond the cut: no base score (h3 at 5.12 still endorses it, which is not trust)
    expect(engine.explain(did('h4')).base).toBe(0)
    expect(engine.peerScore(did('h4'))).toBe(0)
    expect(engine.profile(did('h4')).endorsements).toBe(1)
  })

  it('maxDepth is per path: a shorter, weaker path still passes trust beyond the cut', () => {
    const { engine } = mkEngine({ attestationHalfLifeMs: Infinity, maxDepth: 2 })
    // long strong path SELF -> X -> V (2 hops, 6.4); short weak path anchor(2) -> V (1 hop, 1.6)
    const X = did('x')
    const V = did('v')
    const W = did('w')
    engine.add(att(SELF, X, 10))
    engine.add(att(X, V, 10))
    engine.setAnchor({ did: ANCHOR, level: 2 })
    engine.add(att(ANCHOR, V, 10))
    engine.add(att(V, W, 10))
    expect(engine.peerScore(V)).toBeCloseTo(6.4, 10)
    // W only through the 1-hop label of V: 0.8 * min(1.6, 10) = 1.28
    expect(engine.peerScore(W)).toBeCloseTo(1.28, 10)
  })

  it('decay halves an attestation at one half-life', () => {
    const clock = new ManualClock()
    const engine = createTrustEngine({ self: SELF, attestationHalfLifeMs: 30 * DAY }, { clock })
    engine.add(att(SELF, A, 10))
    expect(engine.peerScore(A)).toBeCloseTo(8, 10)
    clock.advance(30 * DAY)
    expect(engine.peerScore(A)).toBeCloseTo(4, 10)
    clock.advance(30 * DAY)
    expect(engine.peerScore(A)).toBeCloseTo(2, 10)
  })

  it('ignores expired attestations, other contexts and self-attestations', () => {
    const { engine, clock } = mkEngine({ attestationHalfLifeMs: Infinity })
    engine.add(att(SELF, A, 10, { expiresAt: T0 + HOUR }))
    engine.add(att(SELF, B, 10, { context: 'storage' }))
    engine.add(att(A, A, 10))
    expect(engine.peerScore(A)).toBeCloseTo(8, 10)
    expect(engine.peerScore(B)).toBeUndefined()
    clock.advance(2 * HOUR)
    expect(engine.peerScore(A)).toBeUndefined()
    const { engine: e2 } = mkEngine({ attestationHalfLifeMs: Infinity, contexts: ['storage'] })
    e2.add(att(SELF, B, 10, { context: 'storage' }))
    expect(e2.peerScore(B)).toBeCloseTo(8, 10)
  })

  it('an issuer never lifts anyone above beta * its own score', () => {
    const { engine } = mkEngine({ attestationHalfLifeMs: Infinity })
    engine.add(att(SELF, A, 3)) // 2.4
    engine.add(att(A, B, 10))
    expect(engine.peerScore(B)).toBeCloseTo(0.8 * 2.4, 10)
  })

  it('rejects nonsense bodies with InvalidStatementError and counts them', () => {
    const { engine } = mkEngine()
    const bad = att(SELF, A, 7)
    ;(bad.body as { level: number }).level = 11
    expect(() => engine.add(bad)).toThrow(InvalidStatementError)
    const bad2 = att(SELF, A, 7)
    ;(bad2.body as { kind: string }).kind = 'gossip'
    expect(() => engine.add(bad2)).toThrow(expect.objectContaining({ name: 'InvalidStatementError' }))
    expect(engine.counters.rejected).toBe(2)
    expect(engine.size).toBe(0)
  })

  it('rejects bad anchors and options', () => {
    const { engine } = mkEngine()
    expect(() => engine.setAnchor({ did: A, level: 11 })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => engine.setAnchor({ did: SELF, level: 5 })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => createTrustEngine({ self: SELF, attenuation: 1.5 })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
  })

  it('anchor changes are visible at the next read; removing an anchor drops what hung on it', () => {
    const { engine } = mkEngine({ attestationHalfLifeMs: Infinity })
    engine.setAnchor({ did: ANCHOR, level: 8 })
    engine.add(att(ANCHOR, A, 10))
    expect(engine.peerScore(A)).toBeCloseTo(6.4, 10)
    engine.setAnchor({ did: ANCHOR, level: 4 })
    expect(engine.peerScore(A)).toBeCloseTo(3.2, 10)
    engine.removeAnchor(ANCHOR)
    expect(engine.peerScore(A)).toBeUndefined()
    expect(engine.anchors()).toEqual([])
  })
})

describe('engine: endorsements, verification levels and check', () => {
  it('counts distinct endorsers above the threshold only', () => {
    const { engine } = mkEngine({ attestationHalfLifeMs: Infinity })
    engine.setAnchor({ did: ANCHOR, level: 9 })
    engine.add(att(SELF, A, 10)) // t(A) = 8
    engine.add(att(SELF, B, 5)) // t(B) = 4 < 5
    engine.add(att(A, C, 6, { claim: 'endorse' }))
    engine.add(att(A, C, 8)) // same issuer twice: one endorser
    engine.add(att(B, C, 10)) // below the threshold
    engine.add(att(ANCHOR, C, 0)) // level 0 does not count
    engine.add(att(SELF, C, 1))
    const p = engine.profile(C)
    expect(p.endorsements).toBe(2)
    expect(engine.explain(C).endorsers.sort()).toEqual([A, SELF].sort())
    expect(p.verification_level).toBe('strong')
  })

  it('verification levels: none, basic (authenticated or b > 0), strong, cryptographic', () => {
    const { engine } = mkEngine({ attestationHalfLifeMs: Infinity, strongEndorsements: 2 })
    const V = did('validator')
    const K = did('keyed')
    expect(engine.profile(A).verification_level).toBe('none')
    engine.markAuthenticated(A)
    expect(engine.profile(A).verification_level).toBe('basic')
    engine.add(att(SELF, B, 3))
    expect(engine.profile(B).verification_level).toBe('basic') // b > 0, one endorser < 2
    engine.setAnchor({ did: ANCHOR, level: 9 })
    engine.add(att(ANCHOR, B, 3))
    expect(engine.profile(B).verification_level).toBe('strong')
    expect(engine.profile(ANCHOR).verification_level).toBe('cryptographic')
    // a key attestation by a validator above the threshold makes K cryptographic
    engine.setAnchor({ did: V, level: 8, validator: true })
    engine.add(att(V, K, undefined, { claim: 'key' }))
    expect(engine.profile(K).verification_level).toBe('cryptographic')
    // ... but not from a non-validator
    engine.add(att(ANCHOR, C, undefined, { claim: 'key' }))
    expect(engine.profile(C).verification_level).toBe('none')
  })

  it('a validator by role attestation of this node counts; capabilities and roles from trusted issuers', () => {
    const { engine } = mkEngine({ attestationHalfLifeMs: Infinity })
    const V = did('validator')
    engine.add(att(SELF, V, 9)) // t = 7.2
    engine.add(att(SELF, V, undefined, { claim: 'role', value: 'ValidatorNode' }))
    engine.add(att(V, A, undefined, { claim: 'key' }))
    engine.add(att(V, A, undefined, { claim: 'capability', value: 'agent_hosting' }))
    engine.add(att(B, A, undefined, { claim: 'capability', value: 'untrusted_claim' }))
    expect(engine.profile(A).verification_level).toBe('cryptographic')
    const r = engine.explain(A)
    expect(r.capabilities).toEqual(['agent_hosting'])
    expect(engine.explain(V).roles).toEqual(['ValidatorNode'])
  })

  it('check: passes, and names the first unmet requirement as "expected X, got Y"', () => {
    const { engine } = mkEngine({ attestationHalfLifeMs: Infinity })
    engine.add(att(SELF, A, 10)) // 8, one endorser (self), strong
    const ok = engine.check(A, { minimum_trust_score: 7, required_endorsements: 1, verification_level: 'strong' })
    expect(ok).toEqual({ passed: true, score: expect.closeTo(8, 10), endorsements: 1 })
    const low = engine.check(A, { minimum_trust_score: 9, required_endorsements: 0, verification_level: 'none' })
    expect(low.passed).toBe(false)
    expect(low.reason).toMatch(/^expected trust score >= 9, got 8/)
    const endo = engine.check(A, { minimum_trust_score: 0, required_endorsements: 2, verification_level: 'none' })
    expect(endo.reason).toBe('expected >= 2 endorsements, got 1')
    const lvl = engine.check(A, { minimum_trust_score: 0, required_endorsements: 0, verification_level: 'cryptographic' })
    expect(lvl.reason).toBe('expected verification level cryptographic, got strong')
    const stranger = engine.check(B, { minimum_trust_score: 0, required_endorsements: 0, verification_level: 'basic' })
    expect(stranger).toMatchObject({ passed: false, score: 0, endorsements: 0, reason: 'expected verification level basic, got none' })
    engine.markAuthenticated(B)
    expect(engine.check(B, { minimum_trust_score: 0, required_endorsements: 0, verification_level: 'basic' }).passed).toBe(true)
    const bogus = engine.check(A, { minimum_trust_score: 0, required_endorsements: 0, verification_level: 'godlike' as never })
    expect(bogus.passed).toBe(false)
  })

  it('peerScore is undefined for DIDs the graph does not know', () => {
    const { engine } = mkEngine()
    expect(engine.peerScore(did('nobody'))).toBeUndefined()
    engine.markAuthenticated(did('nobody'))
    expect(engine.peerScore(did('nobody'))).toBeUndefined()
  })
})

describe('engine: lazy recompute', () => {
  it('recomputes once per read after changes, not per change', () => {
    const { engine } = mkEngine({ maxStatementsPerIssuerPerMinute: 1000 })
    const before = engine.counters.recomputes
    for (let i = 0; i < 20; i++) engine.add(att(SELF, did(`n${i}`), 5))
    expect(engine.counters.recomputes).toBe(before)
    engine.peerScore(did('n1'))
    engine.peerScore(did('n2'))
    expect(engine.counters.recomputes).toBe(before + 1)
  })

  it('above syncRecomputeStatements reads see the last table until recomputeIntervalMs passed', () => {
    const { engine, clock } = mkEngine({ syncRecomputeStatements: 1, recomputeIntervalMs: 1000, attestationHalfLifeMs: Infinity, maxStatementsPerIssuerPerMinute: 1000 })
    engine.add(att(SELF, A, 5))
    engine.add(att(SELF, B, 5))
    expect(engine.peerScore(A)).toBeUndefined() // the table from before the adds is still fresh
    clock.advance(1000)
    expect(engine.peerScore(A)).toBeCloseTo(4, 10)
    engine.add(att(SELF, C, 5))
    expect(engine.peerScore(C)).toBeUndefined()
    engine.recompute()
    expect(engine.peerScore(C)).toBeCloseTo(4, 10)
  })
})
