/**
 * In-core attack simulations, with their figures printed and asserted: a Sybil region behind k
 * attack edges, slander by a clique of trusted colluders, a flood from one issuer, and decay.
 */
import { describe, expect, it } from 'vitest'
import type { SignedStatement, TrustGraphEngine } from '../src/types.js'
import { DAY, HOUR, ManualClock, SELF, T0, att, delta, did, mkEngine, prng, revoke } from './helpers-engine.js'

const BETA = 0.8
const WINDOW = Math.floor(T0 / HOUR) * HOUR

interface SybilRun {
  honest: number
  sybils: number
  k: number
  maxSybil: number
  meanSybil: number
  reached: number
  bound: number
  maxSybilEndorsements: number
}

/**
 * An honest random graph (each honest DID attests 5 others at levels 3..10; three of them are
 * anchors at 8) and a Sybil region densely attesting itself at 10 (and sending +1 deltas about
 * each other), joined by k attack edges from random honest DIDs to Sybils at level 10.
 */
function sybilRun(honestCount: number, sybilCount: number, k: number, seed = 7): SybilRun {
  const { engine } = mkEngine({ maxStatementsPerIssuerPerMinute: 1e9, maxStatements: 1e6 })
  const rnd = prng(seed)
  const honest = Array.from({ length: honestCount }, (_, i) => did(`honest${i}`))
  const sybil = Array.from({ length: sybilCount }, (_, i) => did(`sybil${i}`))
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!
  for (let i = 0; i < 3; i++) engine.setAnchor({ did: honest[i]!, level: 8 })
  for (const h of honest) for (let j = 0; j < 5; j++) engine.add(att(h, pick(honest), 3 + Math.floor(rnd() * 8)))
  // the attack edges: their honest ends are drawn from a stream of their own, so that the same k
  // edges join Sybil regions of any size
  const rndAttack = prng(seed * 31 + k)
  const attack: Array<{ h: string; s: string; level: number }> = []
  for (let i = 0; i < k; i++) attack.push({ h: honest[Math.floor(rndAttack() * honestCount)]!, s: sybil[i % sybilCount]!, level: 10 })
  for (const e of attack) engine.add(att(e.h, e.s, e.level))
  const rndS = prng(seed + 1)
  for (const s of sybil) {
    for (let j = 0; j < 10; j++) engine.add(att(s, sybil[Math.floor(rndS() * sybilCount)]!, 10, { claim: j % 2 === 0 ? 'trust' : 'endorse' }))
    for (let j = 0; j < 3; j++) engine.add(delta(s, sybil[Math.floor(rndS() * sybilCount)]!, { task_ok: 1000 }, { window: WINDOW - j * HOUR }))
  }
  engine.recompute()
  const bound = BETA * Math.max(...attack.map((e) => Math.min(engine.explain(e.h).base, e.level)))
  const ss = sybil.map((s) => engine.peerScore(s) ?? 0)
  return {
    honest: honestCount,
    sybils: sybilCount,
    k,
    maxSybil: Math.max(...ss),
    meanSybil: ss.reduce((a, b) => a + b, 0) / ss.length,
    reached: ss.filter((x) => x > 0).length,
    bound,
    maxSybilEndorsements: Math.max(...sybil.map((s) => engine.explain(s).endorsers.filter((e) => e.startsWith('did:test:sybil')).length)),
  }
}

const f = (x: number): string => x.toFixed(3)

describe('attacks', () => {
  it('(a) a Sybil region gains trust bounded by its attack edges, not by its size', () => {
    const rows: SybilRun[] = []
    for (const n of [100, 1000]) for (const k of [1, 5, 20]) rows.push(sybilRun(n, n, k))
    // the same honest graph and attack edges, 10x more Sybils
    const growth: Array<{ k: number; small: SybilRun; large: SybilRun }> = []
    for (const k of [1, 5, 20]) growth.push({ k, small: sybilRun(1000, 100, k), large: sybilRun(1000, 1000, k) })
    console.log('\n(a) Sybil region: honest N, Sybils N, k attack edges (beta 0.8)')
    console.table(rows.map((r) => ({ N: r.honest, k: r.k, 'max Sybil': f(r.maxSybil), 'mean Sybil': f(r.meanSybil), 'Sybils > 0': r.reached, bound: f(r.bound), 'max endorsements by Sybils': r.maxSybilEndorsements })))
    console.table(growth.map((g) => ({ k: g.k, 'max Sybil, 100 Sybils': f(g.small.maxSybil), 'max Sybil, 1000 Sybils': f(g.large.maxSybil), bound: f(g.small.bound) })))
    for (const r of rows) {
      expect(r.maxSybil).toBeLessThanOrEqual(r.bound + 1e-9)
      // Sybils endorse each other only when an attack edge lifts one above the endorser threshold (5)
      if (r.bound < 5) expect(r.maxSybilEndorsements).toBe(0)
    }
    for (const g of growth) {
      expect(g.large.bound).toBeCloseTo(g.small.bound, 12) // same attack edges
      expect(g.large.maxSybil).toBeLessThanOrEqual(g.small.maxSybil + 1e-9)
      expect(g.large.maxSybil).toBeLessThanOrEqual(g.large.bound + 1e-9)
    }
  })

  it('(b) slander: 50 trusted colluders cut an honest DID by at most maxOthersPenalty', () => {
    const { engine } = mkEngine({ maxStatementsPerIssuerPerMinute: 1e9, attestationHalfLifeMs: Infinity })
    const H = did('honest')
    const ANCHOR = did('anchor')
    engine.setAnchor({ did: ANCHOR, level: 10 })
    const selfAttestation = att(SELF, H, 10)
    engine.add(selfAttestation) // b(H) = 8
    const colluders = Array.from({ length: 50 }, (_, i) => did(`colluder${i}`))
    for (const c of colluders) engine.add(att(ANCHOR, c, 4)) // b = 3.2 each
    for (const c of colluders) {
      for (const c2 of colluders) if (c2 !== c) engine.add(att(c, c2, 10))
      for (let w = 0; w < 24; w++) engine.add(delta(c, H, { forged_message: 65_535, invalid_message: 65_535 }, { window: WINDOW - w * HOUR }))
      engine.add(revoke(c, H, 'attestations', { issuedAt: T0 + 1 }))
      engine.add(revoke(c, H, 'key', { issuedAt: T0 + 1 }))
      engine.add(revoke(c, H, 'statement', { statement: selfAttestation.id, issuedAt: T0 + 1 }))
    }
    const r = engine.explain(H)
    const colluderScore = engine.peerScore(colluders[0]!)!
    console.log(`\n(b) slander: base ${f(r.base)}, 50 colluders at ${f(colluderScore)} sending 24 windows of -5 deltas and 150 revocations each set -> score ${f(r.trust_score)} (floor ${8 - 2})`)
    expect(r.base).toBeCloseTo(8, 10)
    expect(engine.isRevoked(H)).toBe(false)
    expect(r.trust_score).toBeGreaterThanOrEqual(8 - 2 - 1e-9)
    expect(r.trust_score).toBeCloseTo(6, 10) // the penalty is real, and capped
  })

  it('(c) a flood from one issuer is held to its rate and its per-issuer cap', () => {
    const rows: Array<{ span: string; attempted: number; accepted: number; rateLimited: number; stored: number; limit: number }> = []
    for (const [span, ms] of [['1 minute', 60_000], ['1 hour', 3_600_000]] as const) {
      const clock = new ManualClock()
      const { engine } = mkEngine({}, clock)
      const FLOODER = did('flooder')
      const attempted = 100_000
      let accepted = 0
      const step = ms / attempted
      for (let i = 0; i < attempted; i++) {
        const st: SignedStatement = att(FLOODER, did(`victim${i}`), 10, { issuedAt: T0 + i * step, expiresAt: T0 + 365 * DAY })
        if (engine.add(st) === 'added') accepted++
        clock.t = T0 + Math.floor((i + 1) * step)
      }
      const minutes = ms / 60_000
      rows.push({ span, attempted, accepted, rateLimited: engine.counters.rateLimited, stored: engine.statements({ issuer: FLOODER, limit: 4096 }).length, limit: 60 * (minutes + 1) })
      // 60 per minute, plus the full bucket it starts with (one minute's worth)
      expect(accepted).toBeLessThanOrEqual(60 * (minutes + 1))
      expect(engine.statements({ issuer: FLOODER, limit: 4096 }).length).toBeLessThanOrEqual(1024)
      expect(engine.size).toBeLessThanOrEqual(1024)
    }
    console.log('\n(c) flood from one issuer (60/min, 1,024 kept per issuer)')
    console.table(rows)
  })

  it('(d) decay: attestations halve every attestation half-life, deltas every delta half-life', () => {
    const clock = new ManualClock(WINDOW + HOUR)
    const { engine } = mkEngine({}, clock)
    const A = did('attested')
    const P = did('penalised')
    engine.add(att(SELF, A, 10, { issuedAt: clock.t }))
    engine.add(att(SELF, P, 10, { issuedAt: clock.t }))
    engine.add(delta(SELF, P, { forged_message: 1 }, { window: WINDOW })) // -2 when its window ends
    const rows: Array<{ at: string; attested: string; expected: string; penalty: string; expectedPenalty: string }> = []
    const start = clock.t
    for (const days of [0, 7, 14, 90, 180]) {
      clock.t = start + days * DAY
      const a = engine.peerScore(A)!
      const penalty = engine.peerScore(P)! - a
      const expA = 8 * 2 ** (-days / 90)
      const expP = -2 * 2 ** (-days / 7)
      rows.push({ at: `${days} d`, attested: f(a), expected: f(expA), penalty: f(penalty), expectedPenalty: f(days * DAY >= HOUR + 28 * DAY ? 0 : expP) })
      expect(a).toBeCloseTo(expA, 10)
      if (days <= 14) expect(penalty).toBeCloseTo(expP, 10)
      else expect(penalty).toBeCloseTo(0, 10) // past expires_at (window end + 4 half-lives) it counts nothing
    }
    console.log('\n(d) decay (attestation half-life 90 d, delta half-life 7 d)')
    console.table(rows)
  })
})
