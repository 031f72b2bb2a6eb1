/**
 * Trust statements carried by the router's broadcast (`spread: 'broadcast'`) instead of the service's
 * own pushes: whatever broadcast strategy the router runs (plain flooding here; the gossip service's
 * Plumtree tree in the reference node) spreads them, every node verifies each statement itself, and
 * forged statements inside a validly signed broadcast are refused, counted and held against its signer.
 */
import { KLPMessageType } from '@kos-mesh/interface'
import { signStatement, trustPayloadValue, type TrustServiceMetrics } from '@kos-mesh/trust'
import { generateIdentity } from '@kos-mesh/did-security'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTrustMesh, randomTopology, type TrustMesh } from './helpers.js'

const N = 30

describe('trust statements over the router broadcast', () => {
  let mesh: TrustMesh
  const edges = randomTopology(N, 4, 11)

  beforeAll(async () => {
    mesh = await createTrustMesh(N, {
      seed: 11,
      link: { latencyMs: 10, jitterMs: 2 },
      edges,
      router: () => ({ routeRefreshMs: 0, routeUpdateDelayMs: 1000 }),
      service: () => ({ publishIntervalMs: 0, spread: 'broadcast', syncOnConnect: 0 }),
    })
    await mesh.network.runFor(1000)
  }, 60_000)

  afterAll(async () => {
    await mesh?.stop()
  })

  it('an attestation reaches every node through the broadcast; no service pushes are sent', async () => {
    const a = mesh.nodes[0]!
    const subject = mesh.nodes[N - 1]!.did
    const s = await mesh.drive(a.service.attest({ subject, level: 9 }))
    await mesh.until(() => mesh.nodes.every((x) => x.engine.has(s.id)), { stepMs: 2, timeoutMs: 5000 })
    expect(mesh.nodes.every((x) => x.engine.has(s.id))).toBe(true)
    // the one broadcast message of the attesting node; the others only received (the router relayed)
    expect(a.service.counters.sent).toBe(1)
    expect(mesh.nodes.slice(1).every((x) => x.service.counters.sent === 0)).toBe(true)
    // a node that anchors the attester counts it
    const c = mesh.nodes[5]!
    c.engine.setAnchor({ did: a.did, level: 8 })
    expect(c.engine.explain(subject).endorsers).toContain(a.did)
  })

  it('a forged statement inside a validly signed broadcast is refused and counted, the others taken', async () => {
    const m = mesh.nodes[3]!
    const stranger = generateIdentity()
    const good = await signStatement({ v: 1, kind: 'attestation', issuer: m.did, subject: stranger.did, issued_at: Math.floor(mesh.network.clock.now()), claim: 'trust', level: 3, context: '*', expires_at: Math.floor(mesh.network.clock.now()) + 3_600_000 }, m.identity.signer)
    const forgedBytes = (await signStatement({ v: 1, kind: 'attestation', issuer: stranger.did, subject: m.did, issued_at: Math.floor(mesh.network.clock.now()), claim: 'trust', level: 10, context: '*', expires_at: Math.floor(mesh.network.clock.now()) + 3_600_000 }, stranger.signer)).bytes.slice()
    forgedBytes[forgedBytes.length - 1]! ^= 1
    await mesh.drive(m.router.broadcast({ type: KLPMessageType.BROADCAST_ANNOUNCE, target: `klp://${m.authority}/trust`, data: trustPayloadValue({ op: 'push', statements: [good.bytes, forgedBytes] }) }))
    // m sent the bytes raw (its own engine never took them); every other node verifies and keeps the good one
    const others = mesh.nodes.filter((x) => x.index !== m.index)
    await mesh.until(() => others.every((x) => x.engine.has(good.id)), { stepMs: 2, timeoutMs: 5000 })
    expect(others.every((x) => (x.service.counters as TrustServiceMetrics).rejected.InvalidStatementSignatureError === 1)).toBe(true)
    // the forged one was held against the broadcast's signer on every receiver
    expect(others.every((x) => x.engine.explain(m.did).evidence.some((e) => e.kind === 'delta'))).toBe(true)
  })
})
