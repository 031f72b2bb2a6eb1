/**
 * Properties of the model on random graphs (fast-check): scores stay in 0..10; an issuer with score s
 * never lifts anyone above max(previous score, beta * s); a stranger's delta changes nothing;
 * revoking never raises a score.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { SignedStatement, TrustGraphEngine } from '../src/types.js'
import { SELF, T0, att, delta, did, mkEngine, revoke } from './helpers-engine.js'

const BETA = 0.8
const EPS = 1e-9

interface GraphSpec {
  n: number
  anchors: Array<{ node: number; level: number; validator: boolean }>
  edges: Array<{ from: number; to: number; level: number; claim: 'trust' | 'endorse'; age: number }>
  deltas: Array<{ from: number; to: number; ok: number; failed: number; forged: number }>
}

/** Node 0 is this node; the others are did:test:n<i>. */
const node = (i: number): string => (i === 0 ? SELF : did(`n${i}`))

const graphArb = (withDeltas: boolean, positiveOnly = false): fc.Arbitrary<GraphSpec> =>
  fc.integer({ min: 3, max: 12 }).chain((n) =>
    fc.record({
      n: fc.constant(n),
      anchors: fc.array(fc.record({ node: fc.integer({ min: 1, max: n - 1 }), level: fc.integer({ min: 0, max: 10 }), validator: fc.constant(false) }), { maxLength: 3 }),
      edges: fc.array(
        fc.record({
          from: fc.integer({ min: 0, max: n - 1 }),
          to: fc.integer({ min: 0, max: n - 1 }),
          level: fc.integer({ min: 0, max: 10 }),
          claim: fc.constantFrom('trust' as const, 'endorse' as const),
          age: fc.integer({ min: 0, max: 200 }),
        }),
        { maxLength: 40 },
      ),
      deltas: withDeltas
        ? fc.array(
            fc.record({
              from: fc.integer({ min: 0, max: n - 1 }),
              to: fc.integer({ min: 1, max: n - 1 }),
              ok: fc.integer({ min: 0, max: 40 }),
              failed: positiveOnly ? fc.constant(0) : fc.integer({ min: 0, max: 10 }),
              forged: positiveOnly ? fc.constant(0) : fc.integer({ min: 0, max: 3 }),
            }),
            { maxLength: 20 },
          )
        : fc.constant([]),
    }),
  )

const DAY = 86_400_000

function build(spec: GraphSpec): { engine: TrustGraphEngine; statements: SignedStatement[]; dids: string[] } {
  const { engine } = mkEngine({ maxStatementsPerIssuerPerMinute: 1e9, maxDepth: 4 })
  for (const a of spec.anchors) engine.setAnchor({ did: node(a.node), level: a.level, validator: a.validator })
  const statements: SignedStatement[] = []
  for (const e of spec.edges) statements.push(att(node(e.from), node(e.to), e.level, { claim: e.claim, issuedAt: T0 - e.age * DAY }))
  spec.deltas.forEach((d, k) => {
    statements.push(delta(node(d.from), node(d.to), { task_ok: d.ok, task_failed: d.failed, forged_message: d.forged }, { window: Math.floor(T0 / 3_600_000) * 3_600_000 - (k % 5) * 3_600_000, issuedAt: T0 - k }))
  })
  for (const st of statements) engine.add(st)
  const dids = Array.from({ length: spec.n + 1 }, (_, i) => node(i)) // node n is a stranger nobody attests
  return { engine, statements, dids }
}

const scores = (engine: TrustGraphEngine, dids: string[]): number[] => dids.map((d) => engine.peerScore(d) ?? 0)
const bases = (engine: TrustGraphEngine, dids: string[]): number[] => dids.map((d) => engine.explain(d).base)

/** A statement by node `issuer`: an attestation, or a revocation of any scope. */
const newStatementArb = (n: number) =>
  fc.record({
    issuer: fc.integer({ min: 0, max: n }),
    subject: fc.integer({ min: 0, max: n }),
    kind: fc.constantFrom('trust', 'endorse', 'attestations', 'key'),
    level: fc.integer({ min: 0, max: 10 }),
  })

function makeStatement(s: { issuer: number; subject: number; kind: string; level: number }): SignedStatement {
  if (s.kind === 'trust' || s.kind === 'endorse') return att(node(s.issuer), node(s.subject), s.level, { claim: s.kind, issuedAt: T0 + 1 })
  return revoke(node(s.issuer), node(s.subject), s.kind as 'attestations' | 'key', { issuedAt: T0 + 1 })
}

describe('properties', () => {
  it('every score is in 0..10 (attestations and arbitrary deltas)', () => {
    fc.assert(
      fc.property(graphArb(true), (spec) => {
        const { engine, dids } = build(spec)
        for (const d of dids) {
          const p = engine.profile(d)
          expect(p.trust_score).toBeGreaterThanOrEqual(0)
          expect(p.trust_score).toBeLessThanOrEqual(10)
          expect(Number.isFinite(engine.explain(d).base)).toBe(true)
        }
        expect(engine.peerScore(SELF)).toBe(10)
      }),
      { numRuns: 150 },
    )
  })

  it('a statement from an issuer with score s raises no score above max(previous, beta * s)', () => {
    fc.assert(
      fc.property(
        graphArb(false).chain((spec) => fc.tuple(fc.constant(spec), newStatementArb(spec.n))),
        ([spec, ns]) => {
          const { engine, dids } = build(spec)
          const before = scores(engine, dids)
          const st = makeStatement(ns)
          const s = engine.peerScore(st.body.issuer) ?? 0
          engine.add(st)
          const after = scores(engine, dids)
          dids.forEach((d, i) => {
            if (d === SELF) return
            expect(after[i]!).toBeLessThanOrEqual(Math.max(before[i]!, BETA * s) + EPS)
            expect(after[i]! <= before[i]! + EPS || after[i]! <= s + EPS).toBe(true)
          })
        },
      ),
      { numRuns: 200 },
    )
  })

  it('with deltas around, the same holds for base scores', () => {
    fc.assert(
      fc.property(
        graphArb(true).chain((spec) => fc.tuple(fc.constant(spec), newStatementArb(spec.n))),
        ([spec, ns]) => {
          const { engine, dids } = build(spec)
          const before = bases(engine, dids)
          const st = makeStatement(ns)
          const s = engine.explain(st.body.issuer).base
          engine.add(st)
          const after = bases(engine, dids)
          dids.forEach((d, i) => {
            if (d !== SELF) expect(after[i]!).toBeLessThanOrEqual(Math.max(before[i]!, BETA * s) + EPS)
          })
        },
      ),
      { numRuns: 150 },
    )
  })

  it('a delta from an issuer with no score here changes nothing', () => {
    fc.assert(
      fc.property(graphArb(true), fc.integer({ min: 1, max: 11 }), fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 5 }), (spec, target, ok, forged) => {
        const { engine, dids } = build(spec)
        const before = dids.map((d) => engine.profile(d))
        const stranger = did('stranger')
        engine.add(delta(stranger, node(Math.min(target, spec.n)), { task_ok: ok, forged_message: forged }))
        const after = dids.map((d) => engine.profile(d))
        expect(after).toEqual(before)
      }),
      { numRuns: 150 },
    )
  })

  const revocationArb = (spec: GraphSpec) =>
    fc.record({
      issuer: fc.integer({ min: 0, max: spec.n - 1 }),
      subject: fc.integer({ min: 0, max: spec.n - 1 }),
      scope: fc.constantFrom('attestations', 'key', 'self-key', 'statement'),
      pick: fc.nat(),
    })

  function makeRevocation(spec: GraphSpec, statements: SignedStatement[], r: { issuer: number; subject: number; scope: string; pick: number }): SignedStatement {
    if (r.scope === 'self-key') return revoke(node(r.subject), node(r.subject), 'key', { issuedAt: T0 + 1 })
    if (r.scope === 'statement') {
      const atts = statements.filter((s) => s.body.kind === 'attestation')
      if (atts.length === 0) return revoke(node(r.issuer), node(r.subject), 'attestations', { issuedAt: T0 + 1 })
      const target = atts[r.pick % atts.length]!
      return revoke(target.body.issuer, target.body.subject, 'statement', { statement: target.id, issuedAt: T0 + 1 })
    }
    return revoke(node(r.issuer), node(r.subject), r.scope as 'attestations' | 'key', { issuedAt: T0 + 1 })
  }

  it('revoking never raises a score (attestations and positive deltas)', () => {
    fc.assert(
      fc.property(
        graphArb(true, true).chain((spec) => fc.tuple(fc.constant(spec), revocationArb(spec))),
        ([spec, r]) => {
          const { engine, statements, dids } = build(spec)
          const before = scores(engine, dids)
          engine.add(makeRevocation(spec, statements, r))
          const after = scores(engine, dids)
          dids.forEach((d, i) => expect(after[i]!).toBeLessThanOrEqual(before[i]! + EPS))
        },
      ),
      { numRuns: 200 },
    )
  })

  it('revoking never raises a base score (arbitrary deltas)', () => {
    fc.assert(
      fc.property(
        graphArb(true).chain((spec) => fc.tuple(fc.constant(spec), revocationArb(spec))),
        ([spec, r]) => {
          const { engine, statements, dids } = build(spec)
          const before = bases(engine, dids)
          engine.add(makeRevocation(spec, statements, r))
          const after = bases(engine, dids)
          dids.forEach((d, i) => expect(after[i]!).toBeLessThanOrEqual(before[i]! + EPS))
        },
      ),
      { numRuns: 150 },
    )
  })
})
