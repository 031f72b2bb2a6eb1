/**
 * A deterministic scenario on a virtual-time testnet: the mesh forms (hellos, distance-vector
 * routes over a random graph of degree ~4, 20 ms links with jitter), node 0 broadcasts, then for
 * `trafficSeconds` a seeded random pair of nodes runs a request/response every 100 ms, over
 * several hops. Every delivery and every reject is logged with its virtual time; the log's sha-256
 * identifies the run. Formation is the expensive part (every hello carries the node's route
 * table); steady traffic is cheap, as it is in a real mesh.
 */
import { createHash } from 'node:crypto'
import { KLPMessageType, ProcessingStatus } from '@kos-mesh/interface'
import { createTestnet } from '../src/testnet/index.js'

export interface ScenarioResult {
  hash: string
  events: number
  simulatedMs: number
  wallMs: number
  requests: number
  answered: number
  delivered: number
  expected: number
}

export async function runScenario(o: { nodes: number; seed: number; trafficSeconds?: number; latencyMs?: number }): Promise<ScenarioResult & { formationWallMs: number; formationSimMs: number }> {
  const t0 = performance.now()
  const net = await createTestnet(o.nodes, {
    time: 'virtual',
    seed: o.seed,
    topology: { random: 4 },
    link: { latencyMs: o.latencyMs ?? 20, jitterMs: 5 },
    waitForRoutes: false,
    router: { routeRefreshMs: 0, routeUpdateDelayMs: 1000, maxRoutes: 4096, maxTotalRoutes: 65_536, maxRouteChangesPerMinute: 0 },
  })
  const start = net.network.clock.now()
  const log: string[] = []
  const clock = net.network.clock
  for (const n of net.nodes) {
    n.router.handle(KLPMessageType.TASK_REQUEST, async (m) => {
      log.push(`${clock.now() - start} task ${n.index} ${m.source.authority} ${String(m.payload.data)}`)
      return { status: ProcessingStatus.PROCESSED, response: await n.router.createResponse(m, `re:${String(m.payload.data)}`) }
    })
    n.router.handle(KLPMessageType.BROADCAST_ANNOUNCE, (m) => {
      log.push(`${clock.now() - start} bcast ${n.index} ${m.source.authority} ${String(m.payload.data)}`)
      return { status: ProcessingStatus.PROCESSED }
    })
    n.router.addEventListener('message:rejected', (e) => log.push(`${clock.now() - start} reject ${n.index} ${e.detail.reason}`))
  }
  // routes converge (distance vector over the random graph)
  await net.network.runFor(15_000, { stepMs: 5 })
  const formationWallMs = performance.now() - t0
  const formationSimMs = clock.now() - start
  await net.drive(net.nodes[0]!.router.broadcast({ data: 'hello mesh' }))
  await net.network.runFor(5_000, { stepMs: 5 })
  const delivered = log.filter((l) => l.includes(' bcast ')).length
  // steady traffic: a seeded random pair every 100 ms
  let s = o.seed * 7919 + 1
  const rnd = (): number => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    return s / 4294967296
  }
  let answered = 0
  let requests = 0
  const inflight: Array<Promise<void>> = []
  const ticks = Math.round(((o.trafficSeconds ?? 60) * 1000) / 100)
  for (let i = 0; i < ticks; i++) {
    const a = Math.floor(rnd() * o.nodes)
    const b = Math.floor(rnd() * o.nodes)
    if (a !== b) {
      requests++
      inflight.push(net.nodes[a]!.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${net.nodes[b]!.authority}/`, data: `q${i}` }, { timeoutMs: 30_000 }).then((r) => {
        if (r.payload.data === `re:q${i}`) answered++
        log.push(`${clock.now() - start} answer ${a} ${i}`)
      }, (err: Error) => { log.push(`${clock.now() - start} failed ${a} ${i} ${err.name}`) }))
    }
    await net.network.runFor(100, { stepMs: 5 })
  }
  await net.drive(Promise.all(inflight), { stepMs: 5 })
  const simulatedMs = clock.now() - start
  await net.stop()
  const wallMs = performance.now() - t0
  return {
    hash: createHash('sha256').update(log.join('\n')).digest('hex'),
    events: log.length,
    simulatedMs,
    wallMs,
    requests,
    answered,
    delivered,
    expected: o.nodes - 1,
    formationWallMs,
    formationSimMs,
  }
}
