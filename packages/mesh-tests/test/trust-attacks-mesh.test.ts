/**
 * The attacks of packages/trust/test/attacks.test.ts, end to end: real routers on the memory
 * transport's simulator in virtual time, each with a trust engine and a trust service; real did:key
 * identities; statements signed with them (signStatement) and pushed over router connections by an
 * attacker router, verified, kept and flooded by the honest nodes' services. Figures are printed;
 * the bounds of docs/TRUST.md are asserted on the observer node O.
 *
 * Mesh: honest nodes 0..19 (ring + seeded chords), O = node 0 trusts anchors 1 and 2 at 8; the
 * honest nodes attest each other (i -> i+1, i+3, i+9). The attacker M = node 20 is a router like the
 * others; it dials the honest node E farthest from O and pushes what its identities signed.
 *
 * 1. Sybil region (50, then 500 Sybil identities, attesting each other at 10, +deltas) behind
 *    k = 1 / 3 attack edges from honest nodes: max Sybil score on O <= beta * max over attack
 *    edges of min(b(h), level), and not larger with 500 Sybils than with 50 for the same k.
 * 2. Slander: 10 colluders O trusts at 3.2 push maximal negative deltas (24 windows) and
 *    revocations about H (base 8 on O): H stays >= 8 - maxOthersPenalty.
 * 3. One issuer pushes 5,000 signed attestations in one virtual minute through two of O's
 *    neighbours: O keeps <= 60 * (minutes + 1), the neighbours and O count rate_limited, and O
 *    still answers requests.
 * 4. Forged and tampered statements pushed by M to E: rejected (InvalidStatementSignatureError),
 *    never flooded, and M's score on E goes down (own forged_message observations).
 */
import { KLPMessageType, ProcessingStatus, type KLPMessage } from '@kos-mesh/interface'
import { decodeStatement, signStatement, type SignedStatement, type TrustServiceMetrics } from '@kos-mesh/trust'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HOUR, MINUTE, attestation, delta, fmt, forgedSigner, identities, levelByteIndex, prng, pushRaw, pushStatements, revocation, sign } from './attack-helpers.js'
import { createTrustMesh, hopsFrom, randomTopology, type MeshNode, type TrustMesh } from './helpers.js'

const HONEST = 20
const M = HONEST // the attacker's router
const O = 0
const ANCHORS = [1, 2]
const SEED = 23
const BETA = 0.8 // the engine's default attenuation
const MAX_OTHERS_PENALTY = 2 // the engine's default
const RATE = 60 // maxStatementsPerIssuerPerMinute, default
const PER_ISSUER = 1024 // maxStatementsPerIssuer, default
const EPS = 1e-9

describe('trust attacks end to end (20 honest routers + an attacker router, virtual time)', () => {
  let mesh: TrustMesh
  let n: MeshNode[]
  const honestEdges = randomTopology(HONEST, 3, SEED)
  const hops = hopsFrom(HONEST, honestEdges, O)
  /** The honest node M dials: the farthest from O (ties: the lowest index). */
  const E = hops.indexOf(Math.max(...hops))
  const neighboursOf = (x: number): number[] => honestEdges.flatMap(([a, b]) => (a === x ? [b] : b === x ? [a] : [])).sort((a, b) => a - b)
  const honest = (): MeshNode[] => n.slice(0, HONEST)
  const metrics = (i: number): TrustServiceMetrics => n[i]!.service.counters as TrustServiceMetrics
  const now = (): number => mesh.network.clock.now()
  const rejects: Array<{ node: number; reason: string; fromPeer: string }> = []
  let wall0 = 0

  /** Drives virtual time until every honest node holds every id (the flood settled), then 1 s more. */
  const settle = async (ids: readonly string[], timeoutMs = 30_000): Promise<number> => {
    const took = await mesh.until(() => honest().every((x) => ids.every((id) => x.engine.has(id))), { stepMs: 10, timeoutMs })
    await mesh.network.runFor(1000)
    return took
  }

  beforeAll(async () => {
    wall0 = performance.now()
    mesh = await createTrustMesh(HONEST + 1, {
      seed: SEED,
      link: { latencyMs: 10, jitterMs: 2 },
      edges: [...honestEdges, [M, E]],
      // statements travel neighbour to neighbour: no multi-hop routing needed
      router: () => ({ routeRefreshMs: 0, routeUpdateDelayMs: 1000, maxRoutes: 4096, maxTotalRoutes: 65_536, maxRouteChangesPerMinute: 0 }),
      service: () => ({ publishIntervalMs: 0 }),
    })
    n = mesh.nodes
    for (const a of ANCHORS) n[O]!.engine.setAnchor({ did: n[a]!.did, level: 8 })
    for (const x of n) x.router.addEventListener('message:rejected', (e) => rejects.push({ node: x.index, reason: e.detail.reason, fromPeer: e.detail.fromPeer }))
    // the honest web of trust: i -> i+1, i+3, i+9 at seeded levels 4..10, signed and flooded by each node
    const rnd = prng(SEED)
    const ids: string[] = []
    for (let i = 0; i < HONEST; i++) {
      for (const d of [1, 3, 9]) {
        const s = await mesh.drive(n[i]!.service.attest({ subject: n[(i + d) % HONEST]!.did, claim: 'trust', level: 4 + Math.floor(rnd() * 7) }))
        ids.push(s.id)
      }
    }
    await settle(ids)
    console.log(`[attacks] mesh: ${HONEST} honest routers, ${honestEdges.length} links, O = ${O}, anchors ${ANCHORS.join(', ')} at 8, attacker M = ${M} dialled to E = ${E} (${hops[E]} hops from O); ${ids.length} honest attestations; setup wall ${(performance.now() - wall0).toFixed(0)} ms`)
  }, 60_000)

  afterAll(async () => {
    await mesh?.stop()
    console.log(`[attacks] wall total ${(performance.now() - wall0).toFixed(0)} ms`)
  })

  it('1. a Sybil region gains at most beta * max over attack edges of min(b(h), level) on O, whatever its size', async () => {
    const o = n[O]!.engine
    const attacker = n[M]!
    const entry = n[E]!
    // attack-edge ends: honest nodes that are neither O, an anchor nor E
    const H = [7, 12, 16]
    const sybils = identities(9001, 50)
    const sybilSet = new Set<string>()
    const rnd = prng(9001)
    let sent = 0
    let messages = 0
    /** Active attack edges (honest index -> Sybil did, level, statement id). */
    const edges: Array<{ h: number; s: string; level: number; id: string }> = []

    /** Sybils from..to-1 each attest one Sybil below each of `ranges` (distinct, not itself) at 10; with a +delta each. */
    const sybilBatch = async (from: number, to: number, ranges: number[], withDelta: boolean): Promise<SignedStatement[]> => {
      const t = now()
      const out: SignedStatement[] = []
      for (let i = from; i < to; i++) {
        const me = sybils[i]!
        const picked = new Set<number>()
        for (const range of ranges) {
          let j = Math.floor(rnd() * range)
          while (j === i || picked.has(j)) j = (j + 1) % range
          picked.add(j)
        }
        let c = 0
        for (const j of picked) out.push(await sign(attestation(me.did, sybils[j]!.did, 10, t, { claim: c++ % 2 === 0 ? 'trust' : 'endorse' }), me))
        if (withDelta) out.push(await sign(delta(me.did, sybils[(i + 1 + Math.floor(rnd() * (to - from - 1))) % to]!.did, { task_ok: 1000 }, Math.floor(t / HOUR) * HOUR, t), me))
      }
      return out
    }
    const push = async (list: SignedStatement[]): Promise<void> => {
      messages += await mesh.drive(pushStatements(attacker, entry, list))
      sent += list.length
      await settle(list.map((s) => s.id))
    }
    const attackEdge = async (h: number, s: string): Promise<void> => {
      const st = await mesh.drive(n[h]!.service.attest({ subject: s, claim: 'trust', level: 10 }))
      edges.push({ h, s, level: 10, id: st.id })
      await settle([st.id])
    }
    const rows: Array<Record<string, string | number>> = []
    const measure = (label: string): { max: number; bound: number; reached: number } => {
      const scores = sybils.map((s) => o.peerScore(s.did) ?? 0)
      const max = Math.max(...scores)
      const ends = edges.map((e) => ({ ...e, base: o.explain(n[e.h]!.did).base, score: o.peerScore(n[e.h]!.did) ?? 0 }))
      const bound = BETA * Math.max(...ends.map((e) => Math.min(e.base, e.level)))
      const held = o.statements({ limit: 1_000_000 }).filter((s) => sybilSet.has(s.body.issuer)).length
      rows.push({
        step: label,
        S: sybils.length,
        k: edges.length,
        'b(h) of attack-edge ends': ends.map((e) => `${e.h}:${fmt(e.base)}`).join(' '),
        'max Sybil': fmt(max),
        'mean Sybil': fmt(scores.reduce((a, b) => a + b, 0) / scores.length),
        'Sybils > 0': scores.filter((x) => x > 0).length,
        bound: fmt(bound),
        'attacker sent (stmts/msgs)': `${sent}/${messages}`,
        'O holds (Sybil stmts)': held,
      })
      return { max, bound, reached: scores.filter((x) => x > 0).length }
    }

    // S = 50, k = 1: 5 attestations at 10 each inside the region and a +delta each
    for (const s of sybils) sybilSet.add(s.did)
    await attackEdge(H[0]!, sybils[0]!.did)
    await push(await sybilBatch(0, 50, [50, 50, 50, 50, 50], true))
    const s50k1 = measure('S=50, k=1')
    // S = 50, k = 3
    await attackEdge(H[1]!, sybils[1]!.did)
    await attackEdge(H[2]!, sybils[2]!.did)
    const s50k3 = measure('S=50, k=3')
    // S = 500, k = 3: 450 more Sybils; each of the first 50 vouches for 9 of them at 10 (14
    // statements per issuer in all, under the rate limit), each new one attests 1 of the first 50
    // and 1 of all 500
    sybils.push(...identities(9001, 450, 50))
    for (const s of sybils) sybilSet.add(s.did)
    const grow = await sybilBatch(50, 500, [50, 500], false)
    for (let i = 0; i < 50; i++) for (let m = 0; m < 9; m++) grow.push(await sign(attestation(sybils[i]!.did, sybils[50 + i * 9 + m]!.did, 10, now()), sybils[i]!))
    await push(grow)
    const s500k3 = measure('S=500, k=3')
    // S = 500, k = 1: the two later attack edges are withdrawn by their issuers (revocations flood)
    const withdrawn = edges.splice(1, 2)
    const revs: string[] = []
    for (const e of withdrawn) revs.push((await mesh.drive(n[e.h]!.service.revoke({ subject: e.s, scope: 'statement', statement: e.id }))).id)
    await settle(revs)
    const s500k1 = measure('S=500, k=1 (2 edges revoked)')

    console.log('\n[attacks] 1. Sybil region on O (beta 0.8; attack edges at level 10)')
    console.table(rows)
    for (const r of [s50k1, s50k3, s500k3, s500k1]) expect(r.max).toBeLessThanOrEqual(r.bound + EPS)
    // the region's size adds nothing: same k, 10x the Sybils, no larger maximum
    expect(s500k1.max).toBeLessThanOrEqual(s50k1.max + EPS)
    expect(s500k3.max).toBeLessThanOrEqual(s50k3.max + EPS)
    expect(s500k1.bound).toBeCloseTo(s50k1.bound, 4) // the same edge (decay moves it by ~1e-6)
    // the Sybils did reach O and the attack edges are real (else the bound would be vacuous)
    expect(o.statements({ limit: 1_000_000 }).filter((s) => sybilSet.has(s.body.issuer)).length).toBe(sent)
    expect(s50k1.max).toBeGreaterThan(0)
    expect(s500k3.reached).toBeGreaterThan(400) // the 450 new Sybils are reached, with less than the max
    expect(s50k1.max).toBeCloseTo(s50k1.bound, 4)
    for (const x of honest()) expect(metrics(x.index).rateLimited).toBe(0)
  }, 60_000)

  it('2. slander: 10 colluders trusted at ~3 cut an honest DID by at most maxOthersPenalty on O', async () => {
    const o = n[O]!.engine
    const attacker = n[M]!
    const entry = n[E]!
    const Hn = 10 // the slandered honest node
    const A = ANCHORS[0]!
    const H = n[Hn]!.did
    // O itself vouches for H at 10: b(H) = 0.8 * 10 = 8
    const byO = await mesh.drive(n[O]!.service.attest({ subject: H, claim: 'trust', level: 10 }))
    const colluders = identities(9002, 10)
    // the anchor A (8 on O) vouches a little for each colluder: b = 0.8 * min(8, 4) = 3.2
    const vouches: string[] = [byO.id]
    for (const c of colluders) vouches.push((await mesh.drive(n[A]!.service.attest({ subject: c.did, claim: 'trust', level: 4 }))).id)
    await settle(vouches)
    const before = o.explain(H)
    const t = now()
    const window0 = Math.floor(t / HOUR) * HOUR
    const worst = { task_failed: 65_535, invalid_message: 65_535, forged_message: 65_535, timeout: 65_535 }
    const list: SignedStatement[] = []
    for (const c of colluders) {
      for (const c2 of colluders) if (c2 !== c) list.push(await sign(attestation(c.did, c2.did, 10, t), c))
      for (let w = 0; w < 24; w++) list.push(await sign(delta(c.did, H, worst, window0 - w * HOUR, t), c))
      list.push(await sign(revocation(c.did, H, 'attestations', t), c))
      list.push(await sign(revocation(c.did, H, 'key', t), c))
      list.push(await sign(revocation(c.did, H, 'statement', t, byO.id), c))
    }
    const messages = await mesh.drive(pushStatements(attacker, entry, list))
    await settle(list.map((s) => s.id))
    const r = o.explain(H)
    const colluderScore = o.peerScore(colluders[0]!.did) ?? 0
    const colluderDeltas = r.evidence.filter((e) => e.kind === 'delta' && e.issuer !== undefined && colluders.some((c) => c.did === e.issuer)).length
    console.log(
      `\n[attacks] 2. slander on O: H = node ${Hn}, base ${fmt(before.base)} (score before ${fmt(before.trust_score)}); 10 colluders at ${fmt(colluderScore)} ` +
        `pushed ${list.length} statements in ${messages} messages (24 windows of maximal negative deltas, 30 revocations, a clique of attestations); ` +
        `O holds ${colluderDeltas} of their deltas about H -> H's score ${fmt(r.trust_score)} (base ${fmt(r.base)}, reputation ${fmt(r.reputation)}, floor ${fmt(before.base - MAX_OTHERS_PENALTY)}), revoked: ${r.revoked}`,
    )
    expect(before.base).toBeCloseTo(8, 4)
    expect(colluderScore).toBeCloseTo(3.2, 4)
    expect(colluderDeltas).toBe(240)
    expect(o.isRevoked(H)).toBe(false)
    expect(r.base).toBeCloseTo(before.base, 4) // the colluders' revocations withdraw nothing of O's
    expect(r.trust_score).toBeGreaterThanOrEqual(r.base - MAX_OTHERS_PENALTY - EPS)
    expect(r.trust_score).toBeCloseTo(r.base - MAX_OTHERS_PENALTY, 6) // the penalty is real, and capped
  }, 60_000)

  it('3. one issuer floods 5,000 attestations in a virtual minute through two of O\'s neighbours: held to the rate; O still answers', async () => {
    const o = n[O]!
    const attacker = n[M]!
    const [N1, N2] = neighboursOf(O).filter((x) => x !== E)
    expect(N1).toBeDefined()
    expect(N2).toBeDefined()
    await mesh.connect(M, N1!)
    await mesh.connect(M, N2!)
    await mesh.network.runFor(1000)
    const flooder = identities(9003, 1)[0]!
    const ATTEMPTED = 5000
    const t0 = now()
    const statements: SignedStatement[] = []
    for (let i = 0; i < ATTEMPTED; i++) statements.push(await sign(attestation(flooder.did, `did:example:victim-${i}`, 10, t0), flooder))
    const snap = (i: number): { received: number; added: number; rateLimited: number } => ({ received: metrics(i).received, added: metrics(i).added, rateLimited: metrics(i).rateLimited })
    const b = { n1: snap(N1!), n2: snap(N2!), o: snap(O) }
    // even statements to N1, odd ones to N2, all at once
    const [m1, m2] = await mesh.drive(
      Promise.all([
        pushStatements(attacker, n[N1!]!, statements.filter((_, i) => i % 2 === 0)),
        pushStatements(attacker, n[N2!]!, statements.filter((_, i) => i % 2 === 1)),
      ]),
    )
    await mesh.network.runFor(5000)
    const minutes = (now() - t0) / MINUTE
    const limit = Math.floor(RATE * (minutes + 1))
    const held = (x: MeshNode): number => x.engine.statements({ issuer: flooder.did, limit: 1_000_000 }).length
    const d = (i: number, s: { received: number; added: number; rateLimited: number }): { received: number; added: number; rateLimited: number } => ({ received: metrics(i).received - s.received, added: metrics(i).added - s.added, rateLimited: metrics(i).rateLimited - s.rateLimited })
    const rows = [
      { node: `N1 = ${N1}`, ...d(N1!, b.n1), holds: held(n[N1!]!) },
      { node: `N2 = ${N2}`, ...d(N2!, b.n2), holds: held(n[N2!]!) },
      { node: `O = ${O}`, ...d(O, b.o), holds: held(o) },
    ]
    const maxHeld = Math.max(...honest().map(held))
    console.log(`\n[attacks] 3. one issuer: ${ATTEMPTED} signed attestations pushed in ${m1 + m2} messages over ${fmt(minutes)} virtual minutes; limit 60 * (minutes + 1) = ${limit}; most held by any honest node ${maxHeld}`)
    console.table(rows)
    expect(held(o)).toBeLessThanOrEqual(limit)
    expect(held(o)).toBeLessThanOrEqual(PER_ISSUER)
    expect(maxHeld).toBeLessThanOrEqual(limit)
    expect(held(o)).toBeGreaterThan(0)
    expect(rows[0]!.rateLimited).toBeGreaterThan(0)
    expect(rows[1]!.rateLimited).toBeGreaterThan(0)
    expect(rows[2]!.rateLimited).toBeGreaterThan(0)

    // O still serves an honest neighbour: a task request, and a trust query
    o.router.handle(KLPMessageType.TASK_REQUEST, async (m: KLPMessage) => ({ status: ProcessingStatus.PROCESSED, response: await o.router.createResponse(m, 'done') }), { path: '/tasks' })
    const asker = n[N1!]!
    const answer = await mesh.drive(asker.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${o.authority}/tasks`, data: 'work' }, { timeoutMs: 5000 }))
    expect(answer.payload.data).toBe('done')
    const q = await mesh.drive(asker.service.fetch(o.did, { issuer: n[ANCHORS[0]!]!.did, kind: 'attestation' }))
    expect(q.rejected).toBe(0)
    expect(q.added + q.duplicates).toBeGreaterThanOrEqual(3)
    console.log(`[attacks] 3. afterwards O answered a TASK_REQUEST (${String(answer.payload.data)}) and a trust query (${q.added + q.duplicates} statements)`)
  }, 60_000)

  it('4. forged and tampered statements pushed by a neighbour: rejected, counted, never flooded; the pusher\'s score drops', async () => {
    const attacker = n[M]!
    const entry = n[E]!
    const e = entry.engine
    // E's operator trusts M somewhat, so that a drop shows
    e.setAnchor({ did: attacker.did, level: 6 })
    const scoreBefore = e.peerScore(attacker.did) ?? 0
    const victim = n[ANCHORS[0]!]!
    const t = now()
    // (a) forged: names the anchor as issuer, signed with M's key
    const forged = await signStatement(attestation(victim.did, attacker.did, 10, t), forgedSigner(victim.identity, attacker.identity))
    // (b) tampered signature: a statement M really signed, one signature bit flipped
    const own = await sign(attestation(attacker.did, n[O]!.did, 3, t), attacker.identity)
    const badSig = own.bytes.slice()
    badSig[badSig.length - 1] = (badSig[badSig.length - 1] as number) ^ 1
    // (c) tampered body: an honest attestation by the anchor, its level raised to 10 (same length, new id)
    const honestOne = e.statements({ issuer: victim.did, kind: 'attestation', limit: 64 }).find((s) => s.body.kind === 'attestation' && s.body.level !== undefined && s.body.level < 10)!
    expect(honestOne).toBeDefined()
    const raised = honestOne.bytes.slice()
    const at = levelByteIndex(raised)
    expect(at).toBeGreaterThan(0)
    raised[at] = 10
    const raisedId = decodeStatement(raised).id
    expect(decodeStatement(raised).body).toMatchObject({ issuer: victim.did, level: 10 })
    const bad = [forged.bytes, badSig, raised]
    const badIds = [forged.id, own.id, raisedId]

    const others = honest().filter((x) => x.index !== E)
    const beforeOthers = others.map((x) => ({ received: metrics(x.index).received, forged: metrics(x.index).rejected.InvalidStatementSignatureError ?? 0 }))
    const eBefore = { sent: metrics(E).sent, forged: metrics(E).rejected.InvalidStatementSignatureError ?? 0, added: metrics(E).added }
    rejects.length = 0
    await mesh.drive(pushRaw(attacker, entry, KLPMessageType.TRUST_ATTESTATION, bad))
    await mesh.network.runFor(2000)

    const scoreAfter = e.peerScore(attacker.did) ?? 0
    const report = e.explain(attacker.did)
    const ownObs = report.evidence.filter((x) => x.kind === 'delta' && x.issuer === entry.did)
    const forgedCount = ownObs.reduce((s, x) => s + (x.counts?.forged_message ?? 0), 0)
    const eForged = (metrics(E).rejected.InvalidStatementSignatureError ?? 0) - eBefore.forged
    console.log(
      `\n[attacks] 4. M pushed 3 bad statements (forged issuer, flipped signature bit, raised level) to E = ${E}: E rejected ${eForged} as InvalidStatementSignatureError, ` +
        `added ${metrics(E).added - eBefore.added}, sent ${metrics(E).sent - eBefore.sent}; reject reasons at E ${JSON.stringify(rejects.filter((r) => r.node === E).map((r) => r.reason))}; ` +
        `M's score on E ${fmt(scoreBefore)} -> ${fmt(scoreAfter)} (own forged_message observations ${forgedCount}, effect ${fmt(ownObs.reduce((s, x) => s + x.effect, 0))})`,
    )
    expect(eForged).toBe(3)
    expect(metrics(E).added).toBe(eBefore.added)
    expect(metrics(E).sent).toBe(eBefore.sent) // nothing passed on
    for (const id of badIds) for (const x of n) expect(x.engine.has(id)).toBe(false)
    others.forEach((x, i) => {
      expect(metrics(x.index).received).toBe(beforeOthers[i]!.received)
      expect(metrics(x.index).rejected.InvalidStatementSignatureError ?? 0).toBe(beforeOthers[i]!.forged)
    })
    expect(rejects.some((r) => r.node === E && r.reason === 'invalid_statements' && r.fromPeer === attacker.did)).toBe(true)
    expect(forgedCount).toBe(3)
    expect(scoreAfter).toBeLessThan(scoreBefore)
    expect(scoreAfter).toBeCloseTo(Math.max(0, scoreBefore - 5), 6) // 3 x -2, capped by maxOwnPenalty (5)
    // E's signed delta about M carries the observation to O (as evidence, weighted by E's score there)
    expect(await mesh.drive(entry.service.publishDeltas())).toBeGreaterThanOrEqual(1)
    await mesh.until(() => n[O]!.engine.statements({ issuer: entry.did, subject: attacker.did, kind: 'delta', limit: 8 }).length > 0, { timeoutMs: 5000 })
    const carried = n[O]!.engine.statements({ issuer: entry.did, subject: attacker.did, kind: 'delta', limit: 8 })[0]!
    expect(carried.body).toMatchObject({ kind: 'delta', counts: { forged_message: 3 } })
  }, 60_000)
})
