/**
 * Revocation spread through a 100-node mesh in virtual time: a DID revokes its own key on one
 * node; the revocation floods (each node verifies it, keeps it, passes it on once) and every
 * node's engine treats the DID as revoked within hops x (link latency + jitter + slack). A message
 * from the DID afterwards is refused with reason `revoked` by a far node's router.
 */
import { KLPMessageType, ProcessingStatus } from '@kos-mesh/interface'
import type { TrustServiceMetrics } from '@kos-mesh/trust'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTrustMesh, hopsFrom, randomTopology, type TrustMesh } from './helpers.js'

const N = 100
const DEGREE = 4
const LATENCY_MS = 20
const JITTER_MS = 5
/** Per hop allowance for the router's queues and the service's work (virtual time). */
const SLACK_MS = 10
const SEED = 3
const ANCHORS = [0, 1, 2]
const REVOKER = 42

describe(`key revocation across a ${N}-node mesh (virtual time)`, () => {
  let mesh: TrustMesh
  const edges = randomTopology(N, DEGREE, SEED)
  const hops = hopsFrom(N, edges, REVOKER)
  const far = hops.indexOf(Math.max(...hops))
  let wall0 = 0

  beforeAll(async () => {
    wall0 = performance.now()
    expect(hops.every((h) => h >= 0)).toBe(true) // connected
    mesh = await createTrustMesh(N, {
      seed: SEED,
      link: { latencyMs: LATENCY_MS, jitterMs: JITTER_MS },
      edges,
      // no multi-hop routing needed: statements travel neighbour to neighbour
      router: () => ({ routeRefreshMs: 0, routeUpdateDelayMs: 1000, maxRoutes: 4096, maxTotalRoutes: 65_536, maxRouteChangesPerMinute: 0 }),
      service: () => ({ publishIntervalMs: 0 }),
    })
    for (const x of mesh.nodes) for (const a of ANCHORS) if (a !== x.index) x.engine.setAnchor({ did: mesh.nodes[a]!.did, level: 8 })
    await mesh.network.runFor(2000)
  }, 60_000)

  afterAll(async () => {
    await mesh?.stop()
  })

  it('every node holds the DID as revoked within hops x (latency + jitter + slack)', async () => {
    const r = mesh.nodes[REVOKER]!
    const did = r.did
    expect(mesh.nodes.some((x) => x.engine.isRevoked(did))).toBe(false)
    const t0 = mesh.network.clock.now()
    const wallStart = performance.now()
    const revocation = await mesh.drive(r.service.revoke({ subject: did, scope: 'key', reason: 'key compromised' }), { stepMs: 1 })
    expect(revocation.body).toMatchObject({ issuer: did, subject: did, scope: 'key' })
    // the revoker's own engine applies it at once
    expect(r.engine.isRevoked(did)).toBe(true)
    const reachedAt = new Map<number, number>()
    await mesh.until(() => {
      const now = mesh.network.clock.now() - t0
      for (const x of mesh.nodes) if (!reachedAt.has(x.index) && x.engine.isRevoked(did)) reachedAt.set(x.index, now)
      return reachedAt.size === N
    }, { stepMs: 1, timeoutMs: 10_000 })
    const timeToAll = Math.max(...reachedAt.values())
    const eccentricity = Math.max(...hops)
    const bound = eccentricity * (LATENCY_MS + JITTER_MS + SLACK_MS)
    // every node got it no later than its own hop distance allows
    const late = mesh.nodes.filter((x) => x.index !== REVOKER && reachedAt.get(x.index)! > hops[x.index]! * (LATENCY_MS + JITTER_MS + SLACK_MS))
    await mesh.network.runFor(2000)
    const sent = mesh.nodes.reduce((s, x) => s + x.service.counters.sent, 0)
    const dups = mesh.nodes.reduce((s, x) => s + x.service.counters.duplicates, 0)
    const degree = (edges.length * 2) / N
    console.log(
      `[trust-revocation] ${N} nodes, ${edges.length} links (mean degree ${degree.toFixed(1)}), revoker node ${REVOKER}, eccentricity ${eccentricity} hops; ` +
        `time to all ${timeToAll} ms virtual (bound ${eccentricity} x (${LATENCY_MS} + ${JITTER_MS} + ${SLACK_MS}) = ${bound} ms); ` +
        `${sent} pushes sent (flood bound 2 x links = ${edges.length * 2}), ${dups} duplicates dropped; wall ${(performance.now() - wallStart).toFixed(0)} ms`,
    )
    expect(timeToAll).toBeLessThanOrEqual(bound)
    expect(late.map((x) => x.index)).toEqual([])
    // flooding ends: each node sends it at most once to each neighbour
    expect(sent).toBeLessThanOrEqual(edges.length * 2)
    for (const x of mesh.nodes) expect((x.service.counters as TrustServiceMetrics).rejected).toEqual({})
  })

  it("afterwards a message from the revoked DID is refused with reason 'revoked' at a far node", async () => {
    const r = mesh.nodes[REVOKER]!
    const f = mesh.nodes[far]!
    console.log(`[trust-revocation] far node ${far}: ${hops[far]} hops from the revoker`)
    const rejects: string[] = []
    f.router.addEventListener('message:rejected', (e) => {
      if (e.detail.fromPeer === r.did) rejects.push(e.detail.reason)
    })
    let handled = 0
    f.router.handle(KLPMessageType.TASK_REQUEST, async (m) => {
      handled++
      return { status: ProcessingStatus.PROCESSED, response: await f.router.createResponse(m, 'done') }
    })
    // the revoked node connects to the far node directly and asks it for work
    const outcome = await mesh.drive(
      r.router
        .dial(f.address, { remotePeer: f.did })
        .then(() => r.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${f.authority}/`, data: 'work' }, { timeoutMs: 3000 }))
        .then(
          () => 'answered',
          (err: { name?: string; reason?: string }) => `${String(err.name)}${err.reason === undefined ? '' : `:${err.reason}`}`,
        ),
    )
    await mesh.network.runFor(500)
    console.log(`[trust-revocation] the revoked DID's request to the far node: ${outcome}; far node's rejects from it: ${JSON.stringify(rejects)}; wall total ${(performance.now() - wall0).toFixed(0)} ms`)
    expect(handled).toBe(0)
    expect(outcome).not.toBe('answered')
    expect(rejects).toContain('revoked')
  })
})
