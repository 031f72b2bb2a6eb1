import { afterEach, describe, expect, it } from 'vitest'
import { createMemoryNetwork, type MemoryNetwork } from '@kos-mesh/transport-memory'
import { startNode, stopAll, type TestNode } from './testnet.js'

// Discovery and its router on a virtual-time memory network, both taking their time from
// `network.clock`. The intervals and timeouts below are minutes to hours: only the virtual clock
// can let them pass while a test runs, so these tests fail if discovery read the wall clock.

let nodes: TestNode[] = []
afterEach(async () => {
  await stopAll(nodes)
  nodes = []
})

/** Virtual time starts far from the wall clock, so a timestamp tells which clock it came from. */
const START = Date.UTC(2040, 0, 1)
const MINUTE = 60_000
const HOUR = 60 * MINUTE

/** Advances virtual time in `stepMs` steps until `p` settles (at most `maxMs`). */
async function drive<T>(network: MemoryNetwork, p: Promise<T>, stepMs = 10, maxMs = HOUR): Promise<T> {
  let settled = false
  p.then(() => { settled = true }, () => { settled = true })
  for (let t = 0; !settled && t < maxMs; t += stepMs) await network.runFor(stepMs)
  return p
}

describe('peer discovery in the network\'s virtual time', () => {
  it('the refresh loop runs on the injected clock: early joiners learn of later ones after one virtual interval', async () => {
    const network = createMemoryNetwork({ seed: 'pd-virtual', time: 'virtual', startTime: START, defaults: { latencyMs: 5 } })
    const clock = network.clock
    const seed = await startNode(network, 'vseed', { targetPeers: 0 }, clock)
    nodes.push(seed)
    const members: TestNode[] = []
    for (let i = 0; i < 4; i++) {
      const m = await startNode(network, `v${i}`, { targetPeers: 1, refreshIntervalMs: 10 * MINUTE, refreshFanout: 8 }, clock)
      nodes.push(m)
      members.push(m)
      const r = await drive(network, m.discovery.bootstrap([{ address: 'memory://vseed', did: seed.identity.did }]))
      expect(r.seeds_reached).toBe(1)
      // the bootstrap timestamp is virtual time
      expect(r.bootstrap_timestamp).toBeGreaterThanOrEqual(START)
      expect(r.bootstrap_timestamp).toBeLessThanOrEqual(clock.now())
    }
    const first = members[0] as TestNode
    const last = members[3] as TestNode
    expect(first.discovery.registry.has(last.identity.did)).toBe(false)
    const before = clock.now()
    await network.runFor(10 * MINUTE + 1_000, { stepMs: 5 })
    expect(clock.now() - before).toBe(10 * MINUTE + 1_000)
    for (const m of members) {
      const known = new Set(m.discovery.getPeers().map((p) => p.peer_id))
      for (const o of [seed, ...members]) if (o !== m) expect(known.has(o.identity.did)).toBe(true)
    }
    // the records' timestamps come from the virtual clock too
    const rec = first.discovery.registry.get(last.identity.did)?.record
    expect(rec?.timestamp).toBeGreaterThanOrEqual(START)
    expect(rec?.timestamp).toBeLessThanOrEqual(clock.now())
  })

  it('a seed that does not answer within seedTimeoutMs of virtual time fails bootstrap with TimeoutError', async () => {
    const network = createMemoryNetwork({ seed: 'pd-timeout', time: 'virtual', startTime: START })
    const clock = network.clock
    const seed = await startNode(network, 'slowseed', { targetPeers: 0 }, clock)
    const a = await startNode(network, 'va', { seedTimeoutMs: HOUR }, clock)
    nodes.push(seed, a)
    // every frame from a to the seed takes ten hours: the dial cannot finish before the seed timeout
    network.setLink(a.identity.did, seed.identity.did, { latencyMs: 10 * HOUR })
    const start = clock.now()
    const err = await drive(network, a.discovery.bootstrap([{ address: 'memory://slowseed', did: seed.identity.did }]), MINUTE, 2 * HOUR).catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'BootstrapFailedError' })
    const first = (err as { errors: Array<{ error: Error }> }).errors[0]?.error
    expect(first?.name).toBe('TimeoutError')
    expect(clock.now() - start).toBeGreaterThanOrEqual(HOUR)
    expect(clock.now() - start).toBeLessThan(2 * HOUR)
  })
})
