import { describe, expect, it } from 'vitest'
import type { DeltaBody, SignedStatement } from '../src/types.js'
import { DAY, HOUR, SELF, T0, att, delta, did, mkEngine } from './helpers-engine.js'

const A = did('a')
const I = did('issuer')
const X = did('x')
const NO_DECAY = { attestationHalfLifeMs: Infinity }
const WINDOW = Math.floor(T0 / HOUR) * HOUR

describe('engine: reputation deltas', () => {
  it("weighs another issuer's delta by b(issuer)/10 and its value by the weights", () => {
    const { engine } = mkEngine(NO_DECAY)
    engine.add(att(SELF, A, 10)) // 8
    engine.add(att(SELF, I, 5)) // 4
    // value = clamp(0.05*4 - 0.2*2 - 0.5*1 - 0.1*3, -5, 1) = 0.2 - 0.4 - 0.5 - 0.3 = -1
    engine.add(delta(I, A, { task_ok: 4, task_failed: 2, invalid_message: 1, timeout: 3 }))
    expect(engine.peerScore(A)).toBeCloseTo(8 - 0.4 * 1, 10)
    const r = engine.explain(A)
    expect(r.reputation).toBeCloseTo(-0.4, 10)
    const ev = r.evidence.find((e) => e.kind === 'delta')!
    expect(ev.issuer).toBe(I)
    expect(ev.effect).toBeCloseTo(-0.4, 10)
    expect(ev.decay).toBe(1)
  })

  it('one delta per (issuer, subject, window): later replaces (superseded), older or equal is stale', () => {
    const { engine } = mkEngine(NO_DECAY)
    engine.add(att(SELF, A, 10))
    engine.add(att(SELF, I, 10)) // 8
    expect(engine.add(delta(I, A, { task_failed: 5 }, { issuedAt: WINDOW + 2 * HOUR }))).toBe('added')
    expect(engine.peerScore(A)).toBeCloseTo(8 - 0.8, 10)
    expect(engine.add(delta(I, A, { task_failed: 1 }, { issuedAt: WINDOW + 3 * HOUR }))).toBe('superseded')
    expect(engine.peerScore(A)).toBeCloseTo(8 - 0.8 * 0.2, 10)
    expect(engine.add(delta(I, A, { forged_message: 1 }, { issuedAt: WINDOW + 3 * HOUR }))).toBe('stale')
    expect(engine.add(delta(I, A, { forged_message: 1 }, { issuedAt: WINDOW + HOUR }))).toBe('stale')
    expect(engine.statements({ kind: 'delta' })).toHaveLength(1)
    expect(engine.peerScore(A)).toBeCloseTo(8 - 0.8 * 0.2, 10)
  })

  it('others: each issuer counts -1..+1, and all of them together at most -maxOthersPenalty', () => {
    const { engine } = mkEngine({ ...NO_DECAY, maxStatementsPerIssuerPerMinute: 1000 })
    engine.add(att(SELF, A, 10))
    for (let i = 0; i < 10; i++) {
      engine.add(att(SELF, did(`i${i}`), 10)) // 8 each
      // two windows of -5 each: the issuer still counts only -1
      engine.add(delta(did(`i${i}`), A, { forged_message: 10 }))
      engine.add(delta(did(`i${i}`), A, { forged_message: 10 }, { window: WINDOW - HOUR }))
    }
    expect(engine.peerScore(A)).toBeCloseTo(8 - 2, 10) // 10 * -0.8 = -8, clamped to -2
  })

  it('own: this node its own observations cut up to maxOwnPenalty', () => {
    const { engine } = mkEngine(NO_DECAY)
    engine.add(att(SELF, A, 10))
    for (let i = 0; i < 3; i++) engine.observe(A, 'forged_message') // -6 -> clamp -5 per delta
    expect(engine.peerScore(A)).toBeCloseTo(3, 10)
    engine.add(delta(SELF, A, { forged_message: 5 }, { window: WINDOW - HOUR }))
    expect(engine.peerScore(A)).toBeCloseTo(3, 10) // own is clamped to -5 in all
  })

  it('a positive reputation raises only up to the ceiling', () => {
    const { engine, clock } = mkEngine({ ...NO_DECAY, maxStatementsPerIssuerPerMinute: 1000 })
    clock.t = WINDOW + 10 * HOUR
    // own observations of a stranger: +1 per window, own capped at +2, ceiling maxReputationGain
    for (let w = 0; w < 3; w++) {
      engine.add(delta(SELF, X, { task_ok: 100 }, { window: WINDOW + w * HOUR }))
    }
    expect(engine.peerScore(X)).toBeCloseTo(2, 10)
    // others: 20 issuers at b = 2.4 (+1 each: 0.24 each, 4.8, clamped to +2); ceiling beta * 2.4 = 1.92
    const Y = did('y')
    for (let i = 0; i < 20; i++) {
      engine.add(att(SELF, did(`j${i}`), 3))
      engine.add(delta(did(`j${i}`), Y, { task_ok: 100 }, { window: WINDOW + 9 * HOUR }))
    }
    expect(engine.peerScore(Y)).toBeCloseTo(0.8 * 2.4, 10)
    // a DID with a base above the ceiling keeps its base (no raise)
    engine.add(att(SELF, A, 5)) // 4
    for (let i = 0; i < 20; i++) engine.add(delta(did(`j${i}`), A, { task_ok: 100 }, { window: WINDOW + 9 * HOUR }))
    expect(engine.peerScore(A)).toBeCloseTo(4, 10)
  })

  it('a delta from an issuer with no score here changes nothing', () => {
    const { engine } = mkEngine(NO_DECAY)
    engine.add(att(SELF, A, 10))
    engine.add(delta(I, A, { forged_message: 100 }))
    expect(engine.peerScore(A)).toBeCloseTo(8, 10)
    expect(engine.peerScore(I)).toBeUndefined()
  })

  it('a delta decays with deltaHalfLifeMs from the end of its window', () => {
    const { engine, clock } = mkEngine({ ...NO_DECAY, deltaHalfLifeMs: 7 * DAY })
    engine.add(att(SELF, A, 10))
    clock.t = WINDOW + HOUR
    engine.add(delta(SELF, A, { forged_message: 2 }))
    expect(engine.peerScore(A)).toBeCloseTo(8 - 4, 10)
    clock.advance(7 * DAY)
    expect(engine.peerScore(A)).toBeCloseTo(8 - 2, 10)
    clock.advance(7 * DAY)
    expect(engine.peerScore(A)).toBeCloseTo(8 - 1, 10)
  })
})

describe('engine: own observations', () => {
  it('observe counts into the current window; takeOwnDeltas returns what is new and keeps counting it', () => {
    const { engine, clock } = mkEngine(NO_DECAY)
    engine.add(att(SELF, A, 10))
    clock.t = WINDOW + 10 * 60_000
    engine.observe(A, 'task_failed')
    engine.observe(A, 'task_failed')
    engine.observe(A, 'timeout')
    expect(engine.peerScore(A)).toBeCloseTo(8 - 0.5, 10)
    const first = engine.takeOwnDeltas()
    expect(first).toEqual([
      { v: 1, kind: 'delta', issuer: SELF, subject: A, issued_at: clock.t, window: WINDOW, window_ms: HOUR, counts: { task_failed: 2, timeout: 1 }, expires_at: WINDOW + HOUR + 28 * DAY },
    ])
    expect(engine.takeOwnDeltas()).toEqual([])
    expect(engine.peerScore(A)).toBeCloseTo(8 - 0.5, 10) // still counted
    // the signed body coming back does not count twice
    const back: SignedStatement<DeltaBody> = { id: 'own-1', body: first[0]!, bytes: new Uint8Array(0) }
    expect(engine.add(back)).toBe('added')
    expect(engine.peerScore(A)).toBeCloseTo(8 - 0.5, 10)
    // more in the same window: a later body for the same window, which supersedes the first
    engine.observe(A, 'task_failed')
    const second = engine.takeOwnDeltas()
    expect(second).toHaveLength(1)
    expect(second[0]!.counts).toEqual({ task_failed: 3, timeout: 1 })
    expect(second[0]!.issued_at).toBeGreaterThan(first[0]!.issued_at)
    expect(engine.add({ id: 'own-2', body: second[0]!, bytes: new Uint8Array(0) })).toBe('superseded')
    // the next window
    clock.advance(HOUR)
    engine.observe(A, 'task_ok')
    const third = engine.takeOwnDeltas()
    expect(third.map((d) => d.window)).toEqual([WINDOW + HOUR])
    // the first window ended 10 minutes ago: it decays by 2^(-10 min / 7 d)
    expect(engine.peerScore(A)).toBeCloseTo(8 - 0.7 * 2 ** (-10 / (7 * 24 * 60)) + 0.05, 10)
    expect(engine.explain(A).evidence.filter((e) => e.kind === 'delta').length).toBeGreaterThan(0)
  })

  it('continues from a held own delta of the current window (after a restart)', () => {
    const { engine, clock } = mkEngine(NO_DECAY)
    clock.t = WINDOW + 60_000
    engine.add(delta(SELF, A, { task_failed: 4 }, { issuedAt: WINDOW + 1 }))
    engine.observe(A, 'task_failed')
    const [d] = engine.takeOwnDeltas()
    expect(d!.counts).toEqual({ task_failed: 5 })
    expect(engine.explain(A).reputation).toBeCloseTo(-1, 10)
  })

  it('observe never throws, ignores bad input, caps counts and bounds the DIDs it keeps', () => {
    const { engine } = mkEngine({ ...NO_DECAY, maxObservedSubjects: 3 })
    expect(() => engine.observe('not a did', 'task_ok')).not.toThrow()
    expect(() => engine.observe(undefined as unknown as string, 'task_ok')).not.toThrow()
    expect(() => engine.observe(A, 'exploded' as never)).not.toThrow()
    expect(engine.takeOwnDeltas()).toEqual([])
    for (let i = 0; i < 70_000; i++) engine.observe(A, 'task_ok')
    expect(engine.takeOwnDeltas()[0]!.counts.task_ok).toBe(65_535)
    for (let i = 0; i < 5; i++) engine.observe(did(`o${i}`), 'timeout')
    expect(engine.counters.observationsDropped).toBe(3)
    expect(engine.takeOwnDeltas().map((d) => d.subject).sort()).toEqual([did('o2'), did('o3'), did('o4')])
  })
})
