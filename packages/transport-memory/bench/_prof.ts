import type { Connection } from '@kos-mesh/interface'
import { createMemoryNetwork, memoryTransport, seededRandom } from '/work/main/packages/transport-memory/src/index.js'
const N = 1000
const network = createMemoryNetwork({ seed: 'bench-flood', time: 'virtual', defaults: { latencyMs: 100, jitterMs: 20, loss: 0.05 } })
const nodes = Array.from({ length: N }, (_, i) => memoryTransport({ peerId: `did:key:n${i}`, network }))
const conns: Connection[][] = Array.from({ length: N }, () => [])
const seen = new Uint8Array(N)
const onFrame = (i: number, f: Uint8Array): void => {
  if (seen[i] === 1) return
  seen[i] = 1
  for (const c of conns[i] as Connection[]) void c.send(f).catch(() => {})
}
const drain = (i: number, c: Connection): void => {
  (conns[i] as Connection[]).push(c)
  void (async () => { try { for await (const f of c) onFrame(i, f) } catch { } })()
}
let t = performance.now()
const lap = (s: string) => { const n = performance.now(); console.log(s, (n - t).toFixed(1)); t = n }
for (const [i, tr] of nodes.entries()) await tr.listen(`memory://n${i}`, (c) => drain(i, c))
lap('listen')
const rnd = seededRandom('topology')
const dials: Array<Promise<void>> = []
for (let i = 0; i < N; i++) {
  const targets = new Set<number>([(i + 1) % N])
  while (targets.size < 4) { const j = Math.floor(rnd() * N); if (j !== i) targets.add(j) }
  for (const j of targets) dials.push(nodes[i]!.dial(`memory://n${j}`).then((c) => drain(i, c)))
}
lap('dial start')
console.log('events', network.pendingEvents)
await network.runFor(300)
await Promise.all(dials)
lap('dials done')
onFrame(0, new Uint8Array(512))
console.log('events', network.pendingEvents)
const ms = await network.runUntilIdle()
lap('flood ' + ms)
console.log(network.metrics)
