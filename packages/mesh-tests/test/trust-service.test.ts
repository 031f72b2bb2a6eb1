/**
 * The trust service on real klp-routers over the memory transport, in virtual time. Each router
 * asks its node's trust engine (createTrustEngine) for trust requirements; the trust service on
 * it spreads and serves statements.
 *
 * Topology: A(0) - B(1) - C(2) - X(3), and D(4) dialled to B later. C trusts A as an anchor at 8
 * and requires one endorsement for TASK_REQUEST; X is the subject of A's attestations.
 */
import { KLPMessageType, ProcessingStatus, type KLPMessage } from '@kos-mesh/interface'
import { InvalidTrustMessageError, signStatement, STATEMENT_VERSION, type AttestationBody, type SignedStatement, type TrustServiceMetrics } from '@kos-mesh/trust'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTrustMesh, type MeshNode, type TrustMesh } from './helpers.js'

const A = 0
const B = 1
const C = 2
const X = 3
const D = 4

describe('trust service over real routers (virtual time)', () => {
  let mesh: TrustMesh
  let n: MeshNode[]
  const rejects: Array<{ node: number; reason: string; fromPeer: string }> = []
  const counters = (i: number): TrustServiceMetrics => n[i]!.service.counters as TrustServiceMetrics
  const totalSent = (): number => n.reduce((s, x) => s + x.service.counters.sent, 0)

  /** X asks C for a task: resolves 'ok' or the reason of the refusal. */
  const task = async (): Promise<string> => {
    try {
      const r = await mesh.drive(n[X]!.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${n[C]!.authority}/tasks`, data: 'work' }, { timeoutMs: 5000 }))
      return r.payload.data === 'done' ? 'ok' : `unexpected ${String(r.payload.data)}`
    } catch (err) {
      const e = err as { name?: string; reason?: string }
      return e.name === 'RemoteRejectedError' ? String(e.reason) : String(e.name)
    }
  }

  beforeAll(async () => {
    mesh = await createTrustMesh(5, {
      seed: 11,
      link: { latencyMs: 10 },
      edges: [[A, B], [B, C], [C, X]],
      router: (i) => (i === C ? { trustPolicy: { TASK_REQUEST: { minimum_trust_score: 0, required_endorsements: 1, verification_level: 'none' } } } : {}),
      service: () => ({ publishIntervalMs: 30_000 }),
    })
    n = mesh.nodes
    n[C]!.engine.setAnchor({ did: n[A]!.did, level: 8 })
    n[C]!.router.handle(KLPMessageType.TASK_REQUEST, async (m: KLPMessage) => ({ status: ProcessingStatus.PROCESSED, response: await n[C]!.router.createResponse(m, 'done') }), { path: '/tasks' })
    for (const x of n) x.router.addEventListener('message:rejected', (e) => rejects.push({ node: x.index, reason: e.detail.reason, fromPeer: e.detail.fromPeer }))
  }, 60_000)

  afterAll(async () => {
    await mesh?.stop()
  })

  it('attest on A floods through B to C (and on to X, once each); C counts the endorsement; a task needing 1 endorsement is refused before, accepted after, refused again after revoke', async () => {
    const subject = n[X]!.did
    expect(n[C]!.engine.profile(subject).endorsements).toBe(0)
    expect(await task()).toBe('insufficient_trust')

    const sent0 = totalSent()
    const t0 = mesh.network.clock.now()
    const s = await mesh.drive(n[A]!.service.attest({ subject }), { stepMs: 1 })
    expect(s.body).toMatchObject({ kind: 'attestation', issuer: n[A]!.did, subject, claim: 'endorse', level: 7, context: '*' })
    expect(s.body.expires_at - s.body.issued_at).toBe(90 * 86_400_000)
    await mesh.until(() => n[C]!.engine.has(s.id) && n[X]!.engine.has(s.id), { stepMs: 1 })
    const took = mesh.network.clock.now() - t0
    await mesh.network.runFor(2000)
    console.log(`[trust] attestation A -> B -> C -> X in ${took} ms of virtual time (10 ms links)`)
    expect(n[B]!.engine.has(s.id)).toBe(true)
    // flooding ends: A->B, B->C, C->X, nothing sent back to where it came from
    expect(totalSent() - sent0).toBe(3)
    expect(counters(B).added).toBe(1)
    expect(n[C]!.engine.profile(subject).endorsements).toBe(1)
    expect(await task()).toBe('ok')

    const r = await mesh.drive(n[A]!.service.revoke({ subject }))
    expect(r.body).toMatchObject({ kind: 'revocation', scope: 'attestations', issuer: n[A]!.did, subject })
    await mesh.until(() => n[C]!.engine.has(r.id))
    expect(n[C]!.engine.profile(subject).endorsements).toBe(0)
    expect(await task()).toBe('insufficient_trust')
  })

  it('a query returns the statements a peer holds (D joins late, fetches from B)', async () => {
    await mesh.connect(D, B)
    await mesh.network.runFor(500)
    const before = n[D]!.engine.statements({ issuer: n[A]!.did, kind: 'attestation' }).length
    expect(before).toBe(0)
    const result = await mesh.drive(n[D]!.service.fetch(n[B]!.did, { issuer: n[A]!.did }))
    expect(result.added + result.duplicates).toBeGreaterThanOrEqual(2)
    expect(result.rejected).toBe(0)
    const got = n[D]!.engine.statements({ issuer: n[A]!.did })
    expect(got.map((x) => x.body.kind).sort()).toEqual(['attestation', 'revocation'])
    expect(counters(B).queriesServed).toBeGreaterThanOrEqual(1)
    // a kind filter, over REPUTATION_DELTA (nothing yet)
    const none = await mesh.drive(n[D]!.service.fetch(n[B]!.did, { kind: 'delta', issuer: n[A]!.did }))
    expect(none).toEqual({ added: 0, duplicates: 0, rejected: 0, rateLimited: 0 })
    // a peer whose authority is unknown
    await expect(n[D]!.service.fetch('did:key:z6MkunknownPeerXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX', {})).rejects.toMatchObject({ name: 'UnreachableError' })
  })

  it('a forged or tampered statement pushed by a peer is rejected, counted, and not flooded', async () => {
    const xs = n[X]!
    const now = mesh.network.clock.now()
    const body: AttestationBody = { v: STATEMENT_VERSION, kind: 'attestation', issuer: n[A]!.did, subject: xs.did, issued_at: now, claim: 'trust', level: 10, context: '*', expires_at: now + 86_400_000 }
    // forged: claims A's key, signed with X's
    const forged = await signStatement(body, { ...xs.identity.signer, keyId: n[A]!.identity.signer.keyId, sign: (d: Uint8Array) => xs.identity.signer.sign(d), algorithm: 'Ed25519', publicKey: xs.identity.signer.publicKey })
    // tampered: X's own statement with one signature byte flipped
    const own = await signStatement({ ...body, issuer: xs.did, subject: n[B]!.did }, xs.identity.signer)
    const tampered = own.bytes.slice()
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1
    const cBefore = { ...counters(C), rejected: { ...counters(C).rejected } }
    const bReceived = counters(B).received
    const sent0 = totalSent()
    rejects.length = 0
    await mesh.drive(xs.router.send({ type: KLPMessageType.TRUST_ATTESTATION, target: `klp://${n[C]!.authority}/trust`, data: { op: 'push', statements: [forged.bytes, tampered] } }))
    await mesh.network.runFor(1000)
    const cAfter = counters(C)
    expect((cAfter.rejected.InvalidStatementSignatureError ?? 0) - (cBefore.rejected.InvalidStatementSignatureError ?? 0)).toBe(2)
    expect(cAfter.added).toBe(cBefore.added)
    expect(n[C]!.engine.has(forged.id)).toBe(false)
    expect(n[C]!.engine.has(own.id)).toBe(false)
    expect(counters(B).received).toBe(bReceived)
    expect(totalSent()).toBe(sent0)
    expect(rejects.some((r) => r.node === C && r.reason === 'invalid_statements')).toBe(true)
  })

  it('a push over the bounds (65 statements; an oversized statement; a malformed payload) is rejected as a whole', async () => {
    const xs = n[X]!
    const s = await signStatement({ v: STATEMENT_VERSION, kind: 'attestation', issuer: xs.did, subject: n[B]!.did, issued_at: mesh.network.clock.now(), claim: 'endorse', level: 5, context: '*', expires_at: mesh.network.clock.now() + 86_400_000 }, xs.identity.signer)
    const before = counters(C).invalidMessages
    const received = counters(C).received
    rejects.length = 0
    const push = (data: unknown): Promise<KLPMessage> => mesh.drive(xs.router.send({ type: KLPMessageType.TRUST_ATTESTATION, target: `klp://${n[C]!.authority}/trust`, data: data as never }))
    await push({ op: 'push', statements: Array.from({ length: 65 }, () => s.bytes) })
    await push({ op: 'push', statements: [s.bytes, new Uint8Array(5000)] })
    await push({ op: 'push', statements: 'nope' })
    await push({ op: 'push', statements: [s.bytes], extra: true })
    await mesh.network.runFor(1000)
    expect(counters(C).invalidMessages - before).toBe(4)
    expect(counters(C).received).toBe(received)
    expect(n[C]!.engine.has(s.id)).toBe(false)
    expect(rejects.filter((r) => r.node === C && r.reason === 'invalid_trust_message').length).toBe(4)
    // a query over the bounds, as a request: refused with the same reason
    const q = await mesh.drive(xs.router.request({ type: KLPMessageType.TRUST_ATTESTATION, target: `klp://${n[C]!.authority}/trust`, data: { op: 'query', limit: 1000 } }, { timeoutMs: 5000 }).then(() => 'answered', (e: { reason?: string }) => String(e.reason)))
    expect(q).toBe('invalid_trust_message')
    expect(new InvalidTrustMessageError('x').code).toBe('ERR_INVALID_TRUST_MESSAGE')
  })

  it("own deltas from observe() are published by the timer and reach a peer", async () => {
    const b = n[B]!
    b.engine.observe(n[X]!.did, 'task_ok')
    b.engine.observe(n[X]!.did, 'task_ok')
    b.engine.observe(n[A]!.did, 'timeout')
    const published = b.service.counters.published
    await mesh.until(() => b.service.counters.published > published, { timeoutMs: 31_000 })
    await mesh.until(() => n[C]!.engine.statements({ kind: 'delta', issuer: b.did }).length >= 2, { timeoutMs: 5000 })
    const deltas = n[C]!.engine.statements({ kind: 'delta', issuer: b.did })
    const aboutX = deltas.find((d) => d.body.subject === n[X]!.did)
    expect(aboutX?.body.kind).toBe('delta')
    expect((aboutX?.body as { counts: Record<string, number> }).counts.task_ok).toBe(2)
    // flooded on: X holds them too, A (B's other neighbour) as well
    await mesh.until(() => n[X]!.engine.has(aboutX!.id) && n[A]!.engine.has(aboutX!.id), { timeoutMs: 5000 })
    // nothing new observed: the next tick publishes nothing
    expect(await mesh.drive(b.service.publishDeltas())).toBe(0)
  })

  it('persistence: a new service on the same store gets the statements back; a corrupt entry is skipped and deleted', async () => {
    const c = n[C]!
    const held = c.engine.statements({ limit: 10_000 }).map((s: SignedStatement) => s.id).sort()
    expect(held.length).toBeGreaterThanOrEqual(3)
    expect(c.store.map.size).toBeGreaterThanOrEqual(held.length)
    c.store.map.set('trust-statement/bafyreicorrupt', new Uint8Array([0xd2, 0x84, 1, 2, 3]))
    await c.service.stop()
    const { createTrustEngine, trustService } = await import('@kos-mesh/trust')
    const { createSignatureVerifier } = await import('@kos-mesh/did-security')
    const engine2 = createTrustEngine({ self: c.did }, { clock: mesh.network.clock })
    const service2 = trustService({ publishIntervalMs: 30_000 })({ router: c.router, engine: engine2, signer: c.identity.signer, verifier: createSignatureVerifier(), store: c.store, clock: mesh.network.clock })
    await mesh.drive(Promise.resolve(service2.start()))
    const m = service2.counters as TrustServiceMetrics
    console.log(`[trust] reload: ${m.loaded} statements loaded, ${m.loadSkipped} skipped (of ${held.length} held before)`)
    expect(m.loadSkipped).toBe(1)
    expect(c.store.map.has('trust-statement/bafyreicorrupt')).toBe(false)
    for (const id of held) expect(engine2.has(id)).toBe(true)
    await service2.stop()
    // back to the router's own engine
    await mesh.drive(Promise.resolve(c.service.start()))
    expect((c.service.counters as TrustServiceMetrics).loaded).toBeGreaterThanOrEqual(held.length)
  })

  it('attest/revoke check their init with typed errors; a revoked node cannot sign', async () => {
    const a = n[A]!.service
    await expect(a.attest({ subject: 'nope' })).rejects.toMatchObject({ name: 'InvalidParametersError' })
    await expect(a.attest({ subject: n[B]!.did, level: 11 })).rejects.toMatchObject({ name: 'InvalidParametersError' })
    await expect(a.attest({ subject: n[B]!.did, claim: 'capability' })).rejects.toMatchObject({ name: 'InvalidParametersError' })
    await expect(a.attest({ subject: n[B]!.did, claim: 'bogus' as never })).rejects.toMatchObject({ name: 'InvalidParametersError' })
    await expect(a.attest({ subject: n[B]!.did, ttlMs: 0 })).rejects.toMatchObject({ name: 'InvalidParametersError' })
    await expect(a.revoke({ subject: n[B]!.did, scope: 'statement' })).rejects.toMatchObject({ name: 'InvalidParametersError' })
    await expect(a.revoke({ subject: n[B]!.did, reason: 'x'.repeat(300) })).rejects.toMatchObject({ name: 'InvalidParametersError' })
    const cap = await mesh.drive(a.attest({ subject: n[B]!.did, claim: 'capability', value: 'agent_hosting' }))
    expect(cap.body).toMatchObject({ claim: 'capability', value: 'agent_hosting' })
    expect(cap.body.level).toBeUndefined()
    // D revokes its own key: then it signs nothing more
    const d = n[D]!.service
    await mesh.drive(d.revoke({ subject: n[D]!.did, scope: 'key', reason: 'test' }))
    expect(n[D]!.engine.isRevoked(n[D]!.did)).toBe(true)
    await expect(d.attest({ subject: n[B]!.did })).rejects.toMatchObject({ name: 'RevokedDidError' })
    await expect(d.revoke({ subject: n[B]!.did })).rejects.toMatchObject({ name: 'RevokedDidError' })
    await mesh.until(() => n[B]!.engine.isRevoked(n[D]!.did) && n[X]!.engine.isRevoked(n[D]!.did), { timeoutMs: 5000 })
  })
})
