import { describe, expect, it } from 'vitest'
import { DAY, HOUR, SELF, T0, att, delta, did, mkEngine, revoke } from './helpers-engine.js'

const A = did('a')
const ANCHOR = did('anchor')

describe('engine: bounds', () => {
  it('rate-limits each issuer with a token bucket refilled by the clock', () => {
    const { engine, clock } = mkEngine({ maxStatementsPerIssuerPerMinute: 60 })
    const outcomes = Array.from({ length: 70 }, (_, i) => engine.add(att(A, did(`s${i}`), 5)))
    expect(outcomes.filter((o) => o === 'added')).toHaveLength(60)
    expect(outcomes.filter((o) => o === 'rate_limited')).toHaveLength(10)
    expect(engine.counters.rateLimited).toBe(10)
    clock.advance(1000) // one token back
    expect(engine.add(att(A, did('t1'), 5))).toBe('added')
    expect(engine.add(att(A, did('t2'), 5))).toBe('rate_limited')
    // another issuer has its own bucket; this node is not limited
    expect(engine.add(att(did('b'), A, 5))).toBe('added')
    for (let i = 0; i < 100; i++) expect(engine.add(att(SELF, did(`m${i}`), 5))).toBe('added')
  })

  it('statements restored from the own store (a restart) do not count against the rate limit', () => {
    const { engine } = mkEngine({ maxStatementsPerIssuerPerMinute: 60 })
    const outcomes = Array.from({ length: 200 }, (_, i) => engine.add(att(A, did(`r${i}`), 5), { restored: true }))
    expect(outcomes.every((o) => o === 'added')).toBe(true)
    expect(engine.counters.rateLimited).toBe(0)
    // live statements of the same issuer are still limited
    const live = Array.from({ length: 70 }, (_, i) => engine.add(att(A, did(`l${i}`), 5)))
    expect(live.filter((o) => o === 'rate_limited')).toHaveLength(10)
  })

  it('stats() counts what is held by kind and the revoked DIDs', () => {
    const { engine } = mkEngine({ maxStatementsPerIssuerPerMinute: 1e6 })
    engine.add(att(A, did('s1'), 5))
    engine.add(att(A, did('s2'), 5))
    engine.add(delta(A, did('s1'), { task_ok: 3 }))
    engine.add(revoke(did('x'), did('x'), 'key'))
    expect(engine.stats()).toEqual({ attestations: 2, deltas: 1, revocations: 1, revokedDids: 1, anchors: 0 })
  })

  it('duplicates are recognised by id and cost no token', () => {
    const { engine } = mkEngine({ maxStatementsPerIssuerPerMinute: 1 })
    const st = att(A, did('s'), 5)
    expect(engine.add(st)).toBe('added')
    expect(engine.add(st)).toBe('duplicate')
    expect(engine.counters.duplicates).toBe(1)
    expect(engine.has(st.id)).toBe(true)
    expect(engine.has('nope')).toBe(false)
    expect(engine.size).toBe(1)
  })

  it('keeps maxStatementsPerIssuer per issuer, evicting its oldest first', () => {
    const { engine } = mkEngine({ maxStatementsPerIssuer: 5, maxStatementsPerIssuerPerMinute: 1e6 })
    const sts = Array.from({ length: 8 }, (_, i) => att(A, did(`s${i}`), 5, { issuedAt: T0 - 1000 + ((i * 3) % 8) }))
    for (const st of sts) engine.add(st)
    const held = new Set(engine.statements({ issuer: A }).map((s) => s.id))
    expect(held.size).toBe(5)
    const newest = [...sts].sort((a, b) => b.body.issued_at - a.body.issued_at).slice(0, 5)
    expect([...held].sort()).toEqual(newest.map((s) => s.id).sort())
    expect(engine.counters.evicted).toBe(3)
  })

  it('when full, evicts strangers first, then the lowest-scored issuers; this node and anchors last', () => {
    const { engine } = mkEngine({ maxStatements: 10, maxStatementsPerIssuerPerMinute: 1e6, attestationHalfLifeMs: Infinity })
    engine.setAnchor({ did: ANCHOR, level: 9 })
    const HIGH = did('high')
    const LOW = did('low')
    const own = [att(SELF, HIGH, 10), att(SELF, LOW, 2)]
    const anchors = [att(ANCHOR, did('z'), 5)]
    const high = [att(HIGH, did('h1'), 5), att(HIGH, did('h2'), 5)]
    const low = [att(LOW, did('l1'), 5), att(LOW, did('l2'), 5)]
    for (const st of [...own, ...anchors, ...high, ...low]) engine.add(st)
    engine.recompute() // HIGH at 8, LOW at 1.6
    const strangers = Array.from({ length: 3 }, (_, i) => att(did(`stranger${i}`), A, 10))
    for (const st of strangers) engine.add(st)
    expect(engine.size).toBe(10)
    // 3 more from strangers: the strangers' statements go first
    for (let i = 0; i < 3; i++) engine.add(att(did(`late${i}`), A, 10))
    expect(engine.size).toBe(10)
    for (const st of [...own, ...anchors, ...high, ...low]) expect(engine.has(st.id)).toBe(true)
    engine.recompute()
    // no stranger statements left to take: trusted statements from this node's own and anchors' go last
    for (let i = 0; i < 5; i++) engine.add(att(SELF, did(`own${i}`), 1))
    expect(engine.size).toBe(10)
    expect(low.some((st) => engine.has(st.id))).toBe(false) // the lowest-scored issuer went first
    expect(high.every((st) => engine.has(st.id))).toBe(true)
    for (const st of [...own, ...anchors]) expect(engine.has(st.id)).toBe(true)
  })

  it('prune drops expired attestations and deltas, not revocations', () => {
    const { engine, clock } = mkEngine({ maxStatementsPerIssuerPerMinute: 1e6 })
    engine.add(att(SELF, A, 5, { expiresAt: T0 + DAY }))
    engine.add(att(SELF, did('b'), 5, { expiresAt: T0 + 3 * DAY }))
    engine.add(delta(SELF, A, { timeout: 1 }, { expiresAt: T0 + DAY }))
    engine.add(revoke(SELF, did('c'), 'attestations'))
    expect(engine.prune()).toBe(0)
    clock.advance(2 * DAY)
    expect(engine.prune()).toBe(2)
    expect(engine.size).toBe(2)
    expect(engine.counters.expired).toBe(2)
  })

  it('statements(): newest first, filtered, limit default 256, at most 4096', () => {
    const { engine } = mkEngine({ maxStatementsPerIssuerPerMinute: 1e6, maxStatementsPerIssuer: 10_000 })
    for (let i = 0; i < 5000; i++) engine.add(att(SELF, did(`s${i % 50}`), 5, { issuedAt: T0 - 5000 + i }))
    engine.add(delta(SELF, A, { timeout: 1 }, { issuedAt: T0 }))
    expect(engine.statements()).toHaveLength(256)
    expect(engine.statements({ limit: 100_000 })).toHaveLength(4096)
    const newest = engine.statements({ limit: 3 })
    expect(newest.map((s) => s.body.issued_at)).toEqual([T0, T0 - 1, T0 - 2])
    expect(engine.statements({ kind: 'delta' })).toHaveLength(1)
    expect(engine.statements({ subject: did('s7'), limit: 4096 })).toHaveLength(100)
    expect(engine.statements({ since: T0 - 10, kind: 'attestation' })).toHaveLength(10)
  })

  it('refuses statements of a revoked issuer', () => {
    const { engine } = mkEngine()
    engine.add(revoke(A, A, 'key'))
    expect(engine.add(att(A, did('b'), 5))).toBe('revoked_issuer')
    expect(engine.add(delta(A, did('b'), { task_ok: 1 }))).toBe('revoked_issuer')
  })

  it('explain lists who vouched, which deltas and how they decayed', () => {
    const { engine, clock } = mkEngine({ attestationHalfLifeMs: 10 * DAY })
    engine.setAnchor({ did: ANCHOR, level: 9 })
    engine.add(att(SELF, ANCHOR, 10))
    const best = att(ANCHOR, A, 10)
    const weak = att(did('nobody'), A, 10)
    engine.add(best)
    engine.add(weak)
    engine.add(delta(ANCHOR, A, { task_ok: 10 }))
    engine.markAuthenticated(A)
    clock.advance(10 * DAY)
    const r = engine.explain(A)
    expect(r.base).toBeCloseTo(0.8 * 9 * 0.5, 10)
    expect(r.path).toEqual([ANCHOR, A])
    expect(r.endorsers).toEqual([ANCHOR])
    const e = r.evidence.find((x) => x.statement === best.id)!
    expect(e).toMatchObject({ kind: 'attestation', issuer: ANCHOR, issuerScore: 9, level: 10, note: 'best chain' })
    expect(e.decay).toBeCloseTo(0.5, 10)
    expect(e.effect).toBeCloseTo(3.6, 10)
    expect(r.evidence.find((x) => x.statement === weak.id)).toMatchObject({ effect: 0, note: 'issuer has no score here' })
    const d = r.evidence.find((x) => x.kind === 'delta')!
    expect(d.issuer).toBe(ANCHOR)
    expect(d.decay).toBeCloseTo(2 ** (-(10 * DAY - HOUR) / (7 * DAY)), 10)
    expect(r.evidence.some((x) => x.kind === 'authenticated')).toBe(true)
    expect(r.computedAt).toBe(clock.now())
  })
})
