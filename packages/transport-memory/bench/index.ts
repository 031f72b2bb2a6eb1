/**
 * Benchmarks of @kos-mesh/transport-memory (run: `npx tsx bench/index.ts`, BENCH_SECONDS shortens it).
 *
 * 1. Frames/s through a perfect memory link (send + read through the async iterator) vs a plain
 *    in-process array queue doing the same copies, measured in the same run.
 * 2. Frames/s with backpressure (a 64 KiB buffer: the sender blocks and the reader releases it).
 * 3. A 1,000-node flood over 100 ms lossy links in virtual time: wall-clock ms vs simulated ms.
 */
import type { Connection } from '@kos-mesh/interface'
import { measure, report, row, type BenchRow } from '../../../scripts/bench-util.js'
import { createMemoryNetwork, memoryTransport, seededRandom } from '../src/index.js'

const BATCH = 256
const SIZE = 1024

async function connect(maxBufferedBytes?: number): Promise<{ out: Connection; inb: Connection }> {
  const network = createMemoryNetwork({ seed: 'bench' })
  const a = memoryTransport({ peerId: 'did:key:a', network, ...(maxBufferedBytes === undefined ? {} : { maxBufferedBytes, maxFrameSize: SIZE }) })
  const b = memoryTransport({ peerId: 'did:key:b', network, ...(maxBufferedBytes === undefined ? {} : { maxBufferedBytes, maxFrameSize: SIZE }) })
  let inb: Connection | undefined
  await b.listen('memory://b', (c) => { inb = c })
  const out = await a.dial('memory://b', { remotePeer: 'did:key:b' })
  if (inb === undefined) throw new Error('no inbound connection')
  return { out, inb }
}

async function flood(N: number, stepMs: number): Promise<{ setupWallMs: number; floodWallMs: number; floodVirtualMs: number; reached: number }> {
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
    void (async () => { try { for await (const f of c) onFrame(i, f) } catch { /* reset */ } })()
  }
  const wall0 = performance.now()
  for (const [i, t] of nodes.entries()) await t.listen(`memory://n${i}`, (c) => drain(i, c))
  const rnd = seededRandom('topology')
  const dials: Array<Promise<void>> = []
  for (let i = 0; i < N; i++) {
    const targets = new Set<number>([(i + 1) % N])
    while (targets.size < 4) { const j = Math.floor(rnd() * N); if (j !== i) targets.add(j) }
    for (const j of targets) dials.push((nodes[i] as (typeof nodes)[number]).dial(`memory://n${j}`).then((c) => drain(i, c)))
  }
  await network.runFor(300, { stepMs })
  await Promise.all(dials)
  const setupWallMs = performance.now() - wall0
  const wall1 = performance.now()
  const v0 = network.clock.now()
  onFrame(0, new Uint8Array(512))
  await network.runUntilIdle({ stepMs })
  const floodVirtualMs = network.clock.now() - v0
  const floodWallMs = performance.now() - wall1
  await Promise.all(nodes.map((t) => t.close()))
  return { setupWallMs, floodWallMs, floodVirtualMs, reached: seen.reduce((s, v) => s + v, 0) }
}

async function main(): Promise<void> {
  const rows: BenchRow[] = []
  const frame = new Uint8Array(SIZE).fill(7)

  // Baseline: an array queue with the same copy per frame.
  const q: Uint8Array[] = []
  let sink = 0
  const baseline = (await measure(() => {
    for (let i = 0; i < BATCH; i++) q.push(frame.slice())
    for (let i = 0; i < BATCH; i++) sink += (q.shift() as Uint8Array).byteLength
  })) * BATCH

  // Perfect memory link, sequential send then read.
  const { out, inb } = await connect()
  const it = inb[Symbol.asyncIterator]()
  const link = (await measure(async () => {
    for (let i = 0; i < BATCH; i++) await out.send(frame)
    for (let i = 0; i < BATCH; i++) sink += ((await it.next()).value as Uint8Array).byteLength
  })) * BATCH
  rows.push(row('1 KiB frames, perfect memory link (send + read)', 'frames/s', link, { name: 'array queue + copy', value: baseline }, { higherIsBetter: true }))

  // Concurrent producer/consumer with a 64 KiB buffer: backpressure on every 64 frames.
  const bp = await connect(64 * 1024)
  const bit = bp.inb[Symbol.asyncIterator]()
  const withBackpressure = (await measure(async () => {
    const reading = (async () => { for (let i = 0; i < BATCH; i++) sink += ((await bit.next()).value as Uint8Array).byteLength })()
    for (let i = 0; i < BATCH; i++) await bp.out.send(frame)
    await reading
  })) * BATCH
  rows.push(row('1 KiB frames, 64 KiB buffer (sender blocks)', 'frames/s', withBackpressure, { name: 'array queue + copy', value: baseline }, { higherIsBetter: true }))

  // Virtual time at scale: exact event order, then 1 ms batches.
  const N = 1000
  for (const stepMs of [0, 1]) {
    const r = await flood(N, stepMs)
    const mode = stepMs === 0 ? 'exact' : `stepMs ${stepMs}`
    if (stepMs === 0) rows.push(row(`${N} nodes: open ${N * 4} connections (RTT 200 ms): wall time`, 'ms', r.setupWallMs, { name: 'simulated time', value: 300 }, { higherIsBetter: false }))
    rows.push(row(`${N} nodes: flood (100±20 ms, 5% loss), ${mode}: wall time`, 'ms', r.floodWallMs, { name: 'simulated time', value: r.floodVirtualMs }, { higherIsBetter: false }))
    rows.push(row(`${N} nodes: flood, ${mode}: nodes reached`, 'nodes', r.reached, { name: 'nodes', value: N }, { higherIsBetter: true }))
  }
  report('transport-memory', rows, { frameBytes: SIZE, batch: BATCH, sink })
}

await main()
