import { UnreachableError } from '@kos-mesh/interface'
import { describe, expect, it } from 'vitest'
import type { Connection } from '@kos-mesh/interface'
import { createMemoryNetwork, memoryTransport, seededRandom, type LinkConditions, type MemoryNetwork, type MemoryTransport } from '../src/index.js'

/** Reads a connection until it ends, calling `onFrame` for each frame. Errors end it quietly. */
function drain(conn: Connection, onFrame: (f: Uint8Array) => void): Promise<void> {
  return (async () => {
    try {
      for await (const f of conn) onFrame(f)
    } catch { /* reset */ }
  })()
}

function u32(n: number, size = 4): Uint8Array {
  const f = new Uint8Array(Math.max(4, size))
  new DataView(f.buffer).setUint32(0, n)
  return f
}
const seq = (f: Uint8Array): number => new DataView(f.buffer, f.byteOffset).getUint32(0)

async function pairOn(network: MemoryNetwork, a = 'did:key:a', b = 'did:key:b'): Promise<{ ta: MemoryTransport; tb: MemoryTransport; out: Connection; inb: Connection }> {
  const ta = memoryTransport({ peerId: a, network })
  const tb = memoryTransport({ peerId: b, network })
  let inb: Connection | undefined
  await tb.listen(`memory://${b}`, (c) => { inb = c })
  const dialing = ta.dial(`memory://${b}`, { remotePeer: b })
  if (network.time === 'virtual') await network.runUntilIdle()
  const out = await dialing
  if (inb === undefined) throw new Error('expected an inbound connection')
  return { ta, tb, out, inb }
}

/** A small lossy mesh; returns the trace of every delivery (time, link, sequence). */
async function scenario(seed: number | string, stepMs = 0): Promise<string[]> {
  const network = createMemoryNetwork({ seed, time: 'virtual', defaults: { latencyMs: 10, jitterMs: 5, loss: 0.1, duplicate: 0.05, reorder: 0.1, bandwidthBytesPerSec: 2_000_000 } })
  const n = 5
  const ts = Array.from({ length: n }, (_, i) => memoryTransport({ peerId: `did:key:n${i}`, network }))
  const trace: string[] = []
  for (const [i, t] of ts.entries()) {
    await t.listen(`memory://n${i}`, (c) => { void drain(c, (f) => trace.push(`${network.clock.now()} ${c.remotePeer}->n${i} ${seq(f)}`)) })
  }
  const dials: Array<Promise<Connection>> = []
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) dials.push((ts[i] as MemoryTransport).dial(`memory://n${j}`))
  await network.runFor(100)
  const conns = await Promise.all(dials)
  const sends = conns.map(async (c, k) => {
    for (let s = 0; s < 200; s++) {
      await c.send(u32(k * 1000 + s, 100 + (s % 50)))
      if (s % 20 === 0) await network.clock.sleep(3)
    }
  })
  await network.runUntilIdle({ stepMs })
  await Promise.all(sends)
  return trace
}

describe('simulator: determinism', () => {
  it('gives identical delivery traces for the same seed and different ones for another seed', async () => {
    const t1 = await scenario(42)
    const t2 = await scenario(42)
    const t3 = await scenario(43)
    expect(t1.length).toBeGreaterThan(3000)
    expect(t2).toEqual(t1)
    expect(t3).not.toEqual(t1)
  })

  it('stays deterministic when runUntilIdle batches events with stepMs', async () => {
    const t1 = await scenario(42, 2)
    const t2 = await scenario(42, 2)
    expect(t1.length).toBeGreaterThan(3000)
    expect(t2).toEqual(t1)
  })

  it('the PRNG gives the same stream for the same seed and is roughly uniform', () => {
    const r1 = seededRandom('x')
    const r2 = seededRandom('x')
    const r3 = seededRandom('y')
    const a = Array.from({ length: 10_000 }, () => r1())
    expect(Array.from({ length: 10_000 }, () => r2())).toEqual(a)
    expect(r3()).not.toBe(a[0])
    const mean = a.reduce((s, v) => s + v, 0) / a.length
    expect(mean).toBeGreaterThan(0.47)
    expect(mean).toBeLessThan(0.53)
    expect(Math.min(...a)).toBeGreaterThanOrEqual(0)
    expect(Math.max(...a)).toBeLessThan(1)
  })
})

describe('simulator: link conditions', () => {
  async function rates(cond: Partial<LinkConditions>, frames: number): Promise<{ received: number[]; network: MemoryNetwork }> {
    const network = createMemoryNetwork({ seed: 'rates', time: 'virtual' })
    const { out, inb } = await pairOn(network)
    network.setLink('did:key:a', 'did:key:b', cond)
    const received: number[] = []
    void drain(inb, (f) => received.push(seq(f)))
    for (let i = 0; i < frames; i++) await out.send(u32(i, 16))
    await network.runUntilIdle()
    return { received, network }
  }

  it('drops about `loss` of the frames', async () => {
    const { received, network } = await rates({ loss: 0.2 }, 10_000)
    const m = network.metrics
    expect(m.framesSent).toBe(10_000)
    expect(m.droppedByReason.loss).toBe(10_000 - received.length)
    expect(received.length / 10_000).toBeGreaterThan(0.75)
    expect(received.length / 10_000).toBeLessThan(0.85)
    // What arrives still arrives in order.
    expect(received).toEqual([...received].sort((x, y) => x - y))
  })

  it('duplicates about `duplicate` of the frames', async () => {
    const { received, network } = await rates({ duplicate: 0.1, latencyMs: 5, jitterMs: 5 }, 10_000)
    const extra = received.length - 10_000
    expect(network.metrics.framesDuplicated).toBe(extra)
    expect(extra / 10_000).toBeGreaterThan(0.07)
    expect(extra / 10_000).toBeLessThan(0.13)
    expect(new Set(received).size).toBe(10_000)
  })

  it('reorders about `reorder` of the frames', async () => {
    const { received, network } = await rates({ reorder: 0.1, latencyMs: 10 }, 10_000)
    expect(received.length).toBe(10_000)
    let max = -1
    let late = 0
    for (const s of received) {
      if (s < max) late++
      else max = s
    }
    expect(network.metrics.framesReordered).toBeGreaterThan(0)
    expect(late / 10_000).toBeGreaterThan(0.07)
    expect(late / 10_000).toBeLessThan(0.13)
    expect([...received].sort((x, y) => x - y)).toEqual(Array.from({ length: 10_000 }, (_, i) => i))
  })

  it('a perfect link (the default) neither drops, duplicates nor reorders', async () => {
    const { received, network } = await rates({}, 2000)
    expect(received).toEqual(Array.from({ length: 2000 }, (_, i) => i))
    expect(network.metrics.framesDropped).toBe(0)
    expect(network.metrics.framesDuplicated).toBe(0)
  })

  it('delays frames by latency (+ jitter) in virtual time, keeping order despite jitter', async () => {
    const network = createMemoryNetwork({ seed: 1, time: 'virtual' })
    const { out, inb } = await pairOn(network)
    network.setLink('did:key:a', 'did:key:b', { latencyMs: 50, jitterMs: 20 })
    const t0 = network.clock.now()
    const arrivals: Array<[number, number]> = []
    void drain(inb, (f) => arrivals.push([seq(f), network.clock.now() - t0]))
    for (let i = 0; i < 100; i++) await out.send(u32(i))
    await network.runFor(49)
    expect(arrivals).toEqual([])
    await network.runFor(30)
    expect(arrivals.map((x) => x[0])).toEqual(Array.from({ length: 100 }, (_, i) => i))
    for (const [, t] of arrivals) {
      expect(t).toBeGreaterThanOrEqual(50)
      expect(t).toBeLessThan(70)
    }
  })

  it('shapes bandwidth: N bytes take N / bandwidth seconds of virtual time', async () => {
    const network = createMemoryNetwork({ seed: 1, time: 'virtual' })
    const { out, inb } = await pairOn(network)
    network.setLink('did:key:a', 'did:key:b', { bandwidthBytesPerSec: 1_000_000, latencyMs: 5 })
    const t0 = network.clock.now()
    let last = 0
    let bytes = 0
    void drain(inb, (f) => { bytes += f.byteLength; last = network.clock.now() - t0 })
    for (let i = 0; i < 200; i++) await out.send(u32(i, 10_000)) // 2 MB
    await network.runUntilIdle()
    expect(bytes).toBe(2_000_000)
    // 2 MB at 1 MB/s = 2000 ms, plus 5 ms of latency.
    expect(last).toBeGreaterThan(2000)
    expect(last).toBeLessThan(2010)
  })

  it('a dial takes one round trip of virtual time', async () => {
    const network = createMemoryNetwork({ seed: 1, time: 'virtual', defaults: { latencyMs: 40 } })
    const ta = memoryTransport({ peerId: 'did:key:a', network })
    const tb = memoryTransport({ peerId: 'did:key:b', network })
    let inboundAt = -1
    await tb.listen('memory://b', () => { inboundAt = network.clock.now() })
    const t0 = network.clock.now()
    let doneAt = -1
    const dialing = ta.dial('memory://b').then((c) => { doneAt = network.clock.now(); return c })
    await network.runFor(39)
    expect(inboundAt).toBe(-1)
    await network.runFor(2)
    expect(inboundAt - t0).toBe(40)
    expect(doneAt).toBe(-1)
    await network.runFor(40)
    expect(doneAt - t0).toBe(80)
    await dialing
  })
})

describe('simulator: partitions and crashes', () => {
  it('partition drops frames and refuses dials both ways; heal restores both', async () => {
    const network = createMemoryNetwork({ seed: 3 })
    const { ta, tb, out, inb } = await pairOn(network)
    const tc = memoryTransport({ peerId: 'did:key:c', network })
    await tc.listen('memory://c', () => {})
    const got: number[] = []
    const gotBack: number[] = []
    void drain(inb, (f) => got.push(seq(f)))
    void drain(out, (f) => gotBack.push(seq(f)))
    await out.send(u32(1))
    network.partition(['did:key:a'], ['did:key:b'])
    expect(network.isReachable('did:key:a', 'did:key:b')).toBe(false)
    expect(network.isReachable('did:key:b', 'did:key:a')).toBe(false)
    expect(network.isReachable('did:key:a', 'did:key:c')).toBe(true)
    await out.send(u32(2))
    await inb.send(u32(3))
    await expect(ta.dial('memory://did:key:b')).rejects.toMatchObject({ name: 'UnreachableError' })
    await expect(tb.dial('memory://c')).resolves.toBeDefined()
    expect(network.metrics.droppedByReason.partition).toBe(2)
    network.heal()
    await out.send(u32(4))
    await inb.send(u32(5))
    await new Promise((r) => setTimeout(r, 5))
    expect(got).toEqual([1, 4])
    expect(gotBack).toEqual([5])
    await expect(ta.dial('memory://did:key:b')).resolves.toBeDefined()
    // isolate cuts a node from everyone.
    network.isolate('did:key:c')
    await expect(ta.dial('memory://c')).rejects.toBeInstanceOf(UnreachableError)
    network.heal()
    await expect(ta.dial('memory://c')).resolves.toBeDefined()
  })

  it('frames in flight when a partition starts are dropped on arrival', async () => {
    const network = createMemoryNetwork({ seed: 3, time: 'virtual', defaults: { latencyMs: 20 } })
    const { out, inb } = await pairOn(network)
    const got: number[] = []
    void drain(inb, (f) => got.push(seq(f)))
    await out.send(u32(1))
    await network.runFor(10)
    network.partition(['did:key:a'], ['did:key:b'])
    await network.runFor(20)
    network.heal()
    await out.send(u32(2))
    await network.runFor(30)
    expect(got).toEqual([2])
    expect(network.metrics.droppedByReason.partition).toBe(1)
  })

  it('crash() resets the node\'s connections and removes its listeners', async () => {
    const network = createMemoryNetwork({ seed: 3 })
    const { ta, tb, out, inb } = await pairOn(network)
    const remoteEnd = (async () => { try { for await (const _ of out) { /* */ } return 'ended' } catch (err) { return (err as Error).name } })()
    network.crash('did:key:b')
    expect(await remoteEnd).toBe('ConnectionResetError')
    await inb.closed
    await out.closed
    await expect(ta.dial('memory://did:key:b')).rejects.toMatchObject({ name: 'UnreachableError' })
    await expect(tb.dial('memory://x')).rejects.toMatchObject({ name: 'TransportClosedError' })
    expect(network.metrics.openConnectionEnds).toBe(0)
  })
})

describe('simulator: virtual time at scale', () => {
  it('floods a message to 2,000 nodes over 100 ms lossy links in virtual time', async () => {
    const N = 2000
    const DEGREE = 3
    const network = createMemoryNetwork({ seed: 'smoke', time: 'virtual', defaults: { latencyMs: 100, jitterMs: 20, loss: 0.01 } })
    const nodes = Array.from({ length: N }, (_, i) => memoryTransport({ peerId: `did:key:n${i}`, network }))
    const conns: Connection[][] = Array.from({ length: N }, () => [])
    const seen = new Uint8Array(N)
    const firstAt = new Float64Array(N)
    const t0 = network.clock.now()
    const onFrame = (i: number) => (f: Uint8Array): void => {
      if (seen[i] === 1) return
      seen[i] = 1
      firstAt[i] = network.clock.now() - t0
      for (const c of conns[i] as Connection[]) void c.send(f).catch(() => {})
    }
    for (const [i, t] of nodes.entries()) {
      await t.listen(`memory://n${i}`, (c) => { (conns[i] as Connection[]).push(c); void drain(c, onFrame(i)) })
    }
    const rnd = seededRandom('topology')
    const dials: Array<Promise<void>> = []
    for (let i = 0; i < N; i++) {
      const targets = new Set<number>([(i + 1) % N])
      while (targets.size < DEGREE) { const j = Math.floor(rnd() * N); if (j !== i) targets.add(j) }
      for (const j of targets) {
        dials.push((nodes[i] as MemoryTransport).dial(`memory://n${j}`).then((c) => { (conns[i] as Connection[]).push(c); void drain(c, onFrame(i)) }))
      }
    }
    await network.runFor(300)
    await Promise.all(dials)
    const start = network.clock.now()
    onFrame(0)(u32(7, 64))
    firstAt[0] = 0
    await network.runUntilIdle()
    const reached = seen.reduce((s, v) => s + v, 0)
    expect(reached).toBeGreaterThanOrEqual(N * 0.99)
    const times = [...firstAt].filter((_, i) => seen[i] === 1).sort((x, y) => x - y)
    const p95 = (times[Math.floor(times.length * 0.95)] ?? 0) - (start - t0)
    // Virtual-time result (not a wall-clock assertion): a few hops of 100-120 ms.
    expect(p95).toBeGreaterThan(100)
    expect(p95).toBeLessThan(2000)
    expect(network.metrics.framesSent).toBeGreaterThan(N)
    await Promise.all(nodes.map((t) => t.close()))
    await network.runUntilIdle()
    expect(network.metrics.openConnectionEnds).toBe(0)
  })
})
