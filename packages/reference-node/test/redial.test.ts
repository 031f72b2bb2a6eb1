/**
 * Issue 10, "a mesh that survives restarts": the backoff schedule, the redialer on a manual clock,
 * the known-peers table, and nodes on the memory transport that find each other again after a
 * restart or a lost connection.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { ManualClock, waitFor } from '@kos-mesh/interface-compliance-tests'
import { generateIdentity } from '@kos-mesh/did-security'
import { createMemoryNetwork } from '@kos-mesh/transport-memory'
import { backoffDelay, backoffSettings, DEFAULT_BACKOFF, Redialer } from '../src/redial.js'
import { KNOWN_PEER_PREFIX, KnownPeers } from '../src/known-peers.js'
import { createNode, memory, memoryStore, silentLogger, type KosMeshNode, type NodeStore } from '../src/index.js'

const DID_A = generateIdentity().did
const DID_B = generateIdentity().did

describe('backoff', () => {
  it('grows by the factor from the initial delay, is capped, then falls back to the slow period', () => {
    const s = { ...DEFAULT_BACKOFF, jitter: 0 }
    const mid = (): number => 0.5
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => backoffDelay(n, s, mid))).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000, 60000])
    expect(backoffDelay(11, s, mid)).toBe(s.slowRetryMs)
    expect(backoffDelay(1000, s, mid)).toBe(s.slowRetryMs)
  })

  it('spreads each delay by +-jitter', () => {
    const s = DEFAULT_BACKOFF // jitter 0.2
    expect(backoffDelay(1, s, () => 0)).toBe(800)
    expect(backoffDelay(1, s, () => 0.999999)).toBe(1200)
    expect(backoffDelay(7, s, () => 0)).toBe(48_000)
    expect(backoffDelay(7, s, () => 0.999999)).toBe(72_000)
  })

  it('refuses settings that make no sense', () => {
    expect(() => backoffSettings({ initialDelayMs: 0 })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => backoffSettings({ jitter: 1 })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => backoffSettings({ initialDelayMs: 5000, maxDelayMs: 1000 })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
  })
})

/** A redialer on a manual clock whose dials answer from `up` (the DIDs reachable, by address). */
function harness(init: ConstructorParameters<typeof Redialer>[0] = {}) {
  const clock = new ManualClock()
  const up = new Map<string, string>()
  const connected = new Set<string>()
  const dials: Array<{ addr: string; did: string | undefined; at: number }> = []
  const redialed: Array<{ did: string; attempts: number }> = []
  const failed: Array<{ attempts: number; delay: number }> = []
  const r = new Redialer(
    { random: () => 0.5, jitter: 0, ...init },
    {
      clock,
      dial: async (addr, did) => {
        dials.push({ addr, did, at: clock.now() })
        const reached = up.get(addr)
        if (reached === undefined) throw Object.assign(new Error('unreachable'), { name: 'UnreachableError' })
        if (did !== undefined && did !== reached) throw Object.assign(new Error('mismatch'), { name: 'PeerMismatchError' })
        connected.add(reached)
        return { did: reached }
      },
      isConnected: (did) => connected.has(did),
      onRedialed: (did, _t, attempts) => redialed.push({ did, attempts }),
      onFailed: (_t, attempts, delay) => failed.push({ attempts, delay }),
    },
  )
  /** Advances the clock and lets the dial promises settle. */
  const advance = async (ms: number): Promise<void> => {
    clock.advance(ms)
    for (let i = 0; i < 5; i++) await Promise.resolve()
  }
  return { clock, up, connected, dials, redialed, failed, r, advance }
}

describe('Redialer (manual clock)', () => {
  it('redials with exponential backoff until the peer answers, then rests', async () => {
    const h = harness()
    h.r.set({ did: DID_A, addrs: ['memory://a'], seed: false })
    h.r.start()
    expect(h.r.pending()).toBe(1)
    await h.advance(500) // first attempt within [0, initialDelayMs)
    expect(h.dials).toHaveLength(1)
    expect(h.failed).toEqual([{ attempts: 1, delay: 2000 }])
    await h.advance(2000)
    expect(h.failed.at(-1)).toEqual({ attempts: 2, delay: 4000 })
    expect(h.r.states()[0]).toMatchObject({ did: DID_A, state: 'waiting', attempts: 2, lastError: 'UnreachableError', nextAt: h.clock.now() + 4000 })
    h.up.set('memory://a', DID_A)
    await h.advance(3999)
    expect(h.dials).toHaveLength(2) // not before its time
    await h.advance(1)
    expect(h.dials).toHaveLength(3)
    expect(h.redialed).toEqual([{ did: DID_A, attempts: 3 }])
    expect(h.r.pending()).toBe(0)
    expect(h.clock.pending).toBe(0)
    expect(h.dials.every((d) => d.did === DID_A)).toBe(true)
  })

  it('a lost connection schedules a redial; a connection from the peer cancels it', async () => {
    const h = harness()
    h.r.set({ did: DID_A, addrs: ['memory://a'], seed: false })
    h.connected.add(DID_A)
    h.r.start()
    expect(h.r.pending()).toBe(0) // connected: nothing to do
    h.connected.delete(DID_A)
    expect(h.r.disconnected(DID_A)).toBe(true)
    expect(h.r.disconnected(DID_B)).toBe(false) // not a target
    expect(h.r.states()[0]).toMatchObject({ state: 'waiting', nextAt: h.clock.now() + 1000 })
    // the peer dials us first
    h.connected.add(DID_A)
    h.r.connected(DID_A)
    await h.advance(60_000)
    expect(h.dials).toHaveLength(0)
    expect(h.clock.pending).toBe(0)
  })

  it('after maxAttempts fast attempts, one attempt per slowRetryMs; stop() clears every timer', async () => {
    const h = harness({ maxAttempts: 3, initialDelayMs: 100, maxDelayMs: 1000, slowRetryMs: 50_000 })
    h.r.set({ did: DID_A, addrs: ['memory://a'], seed: false })
    h.r.start()
    await h.advance(50)
    await h.advance(200)
    await h.advance(400)
    expect(h.failed.map((f) => f.delay)).toEqual([200, 400, 50_000])
    await h.advance(49_999)
    expect(h.dials).toHaveLength(3)
    await h.advance(1)
    expect(h.dials).toHaveLength(4)
    expect(h.failed.at(-1)).toEqual({ attempts: 4, delay: 50_000 })
    h.r.stop()
    expect(h.clock.pending).toBe(0)
    await h.advance(1_000_000)
    expect(h.dials).toHaveLength(4)
  })

  it('tries every address of a target in order, the one that answered first next time', async () => {
    const h = harness()
    h.up.set('memory://a2', DID_A)
    h.r.set({ did: DID_A, addrs: ['memory://a1', 'memory://a2'], seed: false })
    h.r.start()
    await h.advance(1000)
    expect(h.dials.map((d) => d.addr)).toEqual(['memory://a1', 'memory://a2'])
    expect(h.r.states()[0]?.addrs).toEqual(['memory://a2', 'memory://a1'])
  })

  it('a seed given without its DID learns it and becomes one target with the known peer', async () => {
    const h = harness()
    h.up.set('memory://seed', DID_A)
    h.r.set({ did: DID_A, addrs: ['memory://old-a'], seed: false })
    h.r.set({ addrs: ['memory://seed'], seed: true })
    expect(h.r.states()).toHaveLength(2)
    h.r.start()
    await h.advance(1000)
    const states = h.r.states()
    expect(states).toHaveLength(1)
    expect(states[0]).toMatchObject({ did: DID_A, seed: true, state: 'connected' })
    expect(states[0]?.addrs).toContain('memory://seed')
  })

  it('a peer that proves another DID than expected is not accepted (the attempt fails)', async () => {
    const h = harness()
    h.up.set('memory://a', DID_B)
    h.r.set({ did: DID_A, addrs: ['memory://a'], seed: false })
    h.r.start()
    await h.advance(1000)
    expect(h.redialed).toEqual([])
    expect(h.r.states()[0]).toMatchObject({ state: 'waiting', lastError: 'PeerMismatchError' })
  })
})

describe('KnownPeers', () => {
  const usable = (a: string): boolean => a.startsWith('memory://') || a.startsWith('tcp://127.')

  it('persists peers with their last good addresses, bounded, the oldest forgotten first', async () => {
    const store = memoryStore()
    const known = new KnownPeers(store, { max: 2, self: DID_A, usable, logger: silentLogger })
    const c = generateIdentity().did
    known.connected(DID_B, 1000, 'b.mesh.kai', ['memory://b'])
    known.connected(c, 2000, undefined, ['udp://nope', 'tcp://127.0.0.1:4747'])
    known.connected(DID_A, 3000, 'self.mesh.kai', ['memory://self']) // never itself
    known.addAddresses(c, ['tcp://127.0.0.1:4748']) // from its record: after the known ones
    expect(known.get(c)?.addrs).toEqual(['tcp://127.0.0.1:4747', 'tcp://127.0.0.1:4748'])
    const d = generateIdentity().did
    known.connected(d, 4000, 'd.mesh.kai', ['memory://d'])
    await known.flush()
    expect(known.list().map((p) => p.did)).toEqual([d, c]) // b (connected longest ago) went
    const again = new KnownPeers(store, { max: 2, self: DID_A, usable, logger: silentLogger })
    expect(await again.load()).toEqual({ loaded: 2, dropped: 0 })
    expect(again.get(c)).toEqual({ did: c, addrs: ['tcp://127.0.0.1:4747', 'tcp://127.0.0.1:4748'], lastConnected: 2000 })
    expect(again.get(d)).toMatchObject({ authority: 'd.mesh.kai', addrs: ['memory://d'] })
  })

  it('peers that only dialled in go first: fresh DIDs cannot push out the peers this node dialled or trusts', async () => {
    const store = memoryStore()
    const trusted = generateIdentity().did
    const dialed = generateIdentity().did
    const known = new KnownPeers(store, { max: 3, self: DID_A, usable, protect: (did) => did === trusted, logger: silentLogger })
    known.connected(trusted, 1, undefined, ['memory://t'])
    known.connected(dialed, 2, undefined, [])
    known.addAddresses(dialed, ['memory://dialed'], true) // a dial of this node reached it there: first
    expect(known.get(dialed)).toMatchObject({ addrs: ['memory://dialed'], dialed: true })
    for (let i = 0; i < 50; i++) known.connected(generateIdentity().did, 100 + i, undefined, [`memory://sybil-${i}`])
    expect(known.size).toBe(3)
    expect(known.get(trusted)).toBeDefined()
    expect(known.get(dialed)).toBeDefined()
    await known.flush()
    const again = new KnownPeers(store, { max: 2, self: DID_A, usable, protect: (did) => did === trusted, logger: silentLogger })
    await again.load() // a smaller table keeps the ones it would evict last
    expect(again.list().map((p) => p.did).sort()).toEqual([trusted, dialed].sort())
  })

  it('drops corrupt entries and this node\'s own at load', async () => {
    const store = memoryStore()
    const enc = new TextEncoder()
    await store.put(`${KNOWN_PEER_PREFIX}${DID_B}`, enc.encode('{not json'))
    await store.put(`${KNOWN_PEER_PREFIX}${DID_A}`, enc.encode(JSON.stringify({ did: DID_A, addrs: [], lastConnected: 1 })))
    await store.put(`${KNOWN_PEER_PREFIX}did:key:other`, enc.encode(JSON.stringify({ did: DID_B, addrs: [], lastConnected: 1 }))) // key and DID differ
    const known = new KnownPeers(store, { self: DID_A, usable, logger: silentLogger })
    expect(await known.load()).toEqual({ loaded: 0, dropped: 3 })
    await known.flush()
    const left: string[] = []
    for await (const { key } of store.query(KNOWN_PEER_PREFIX)) left.push(key)
    expect(left).toEqual([])
  })
})

describe('nodes find each other again (memory transport)', () => {
  const nodes: KosMeshNode[] = []
  afterEach(async () => {
    await Promise.allSettled(nodes.splice(0).map((n) => n.stop()))
  })
  const fast = { initialDelayMs: 20, maxDelayMs: 200 }

  function make(name: string, network: ReturnType<typeof createMemoryNetwork>, identity: ReturnType<typeof generateIdentity>, storage: NodeStore, extra: Parameters<typeof createNode>[0] = {}): KosMeshNode {
    const n = createNode({ authority: `${name}.mesh.kai`, identity, storage, transports: [memory({ network })], listen: [`memory://${name}`], reconnect: fast, ...extra })
    nodes.push(n)
    return n
  }

  const connectedTo = (n: KosMeshNode, did: string): boolean => n.isStarted() && n.router.peers().some((p) => p.did === did)

  it('a node whose peer goes away redials it when it comes back', async () => {
    const network = createMemoryNetwork()
    const idA = generateIdentity()
    const idB = generateIdentity()
    const storeA = memoryStore()
    const storeB = memoryStore()
    let a = make('a', network, idA, storeA)
    const b = make('b', network, idB, storeB)
    await a.start()
    await b.start()
    await b.connect(a.addrs()[0] as string)
    await waitFor(() => b.status().peersKnown === 1, 'b.status().peersKnown === 1', 5000)
    await a.stop()
    await waitFor(() => b.status().peers === 0, 'b.status().peers === 0', 5000)
    expect(b.status().redial.pending).toBe(1)
    expect(b.peers().find((p) => p.did === idA.did)).toMatchObject({ connected: false, known: true, addresses: ['memory://a'] })
    // a comes back with the same identity and address: b finds it with no command given
    a = make('a', network, idA, storeA)
    await a.start()
    await waitFor(() => connectedTo(b, idA.did), 'connectedTo(b, idA.did)', 10_000)
    expect(b.status().redial.pending).toBe(0)
  })

  it('a restarted node redials the peers it knew, with no seeds and no command, whoever dialled whom', async () => {
    const network = createMemoryNetwork()
    const idA = generateIdentity()
    const idB = generateIdentity()
    const storeA = memoryStore()
    const storeB = memoryStore()
    // slow: this node never redials within the test, so the other one must
    const slow = { reconnect: { initialDelayMs: 1_000_000, maxDelayMs: 1_000_000 } }
    let a = make('a', network, idA, storeA, slow)
    let b = make('b', network, idB, storeB, slow)
    await a.start()
    await b.start()
    await b.connect(a.addrs()[0] as string)
    await waitFor(() => a.status().peersKnown === 1 && b.status().peersKnown === 1, 'both remember the other', 5000)
    // a restarts: it dials b, which it knows only from b's signed record (b dialled a)
    await a.stop()
    a = make('a', network, idA, storeA)
    await a.start()
    expect(a.peers().find((p) => p.did === idB.did)).toMatchObject({ known: true, addresses: ['memory://b'] })
    await waitFor(() => connectedTo(a, idB.did), 'a redialled b', 10_000)
    // b restarts too (a does not redial): b dials a from its store
    await Promise.all([a.stop(), b.stop()])
    a = make('a', network, idA, storeA, slow)
    await a.start()
    b = make('b', network, idB, storeB)
    await b.start()
    await waitFor(() => connectedTo(b, idA.did), 'b redialled a', 10_000)
    expect(b.status().redial.pending).toBe(0)
  })

  it('publish: the record carries the published address, which peers save and redial', async () => {
    const network = createMemoryNetwork()
    const idA = generateIdentity()
    const a = make('a', network, idA, memoryStore(), { publish: ['memory://a-public'] })
    const b = make('b', network, generateIdentity(), memoryStore())
    expect(() => createNode({ publish: ['memory://x/did:key:z6Mk'] })).toThrow(expect.objectContaining({ name: 'InvalidConfigError' }))
    await a.start()
    await b.start()
    expect(a.record()?.network_info.addresses).toEqual([expect.objectContaining({ protocol: 'memory', address: 'a-public' })])
    expect(a.status().published).toEqual([`memory://a-public/${idA.did}`])
    await a.connect(b.addrs()[0] as string) // a dials b: b learns a's address only from a's record
    await waitFor(() => b.peers().some((p) => p.did === idA.did && p.known === true && p.addresses.includes('memory://a-public')), 'b saved the published address', 5000)
    expect(b.peers().find((p) => p.did === idA.did)?.addresses).not.toContain('memory://a')
  })

  it('with reconnect: false nothing is redialled; with persistPeers: false nothing is remembered', async () => {
    const network = createMemoryNetwork()
    const a = make('a', network, generateIdentity(), memoryStore())
    const b = make('b', network, generateIdentity(), memoryStore(), { reconnect: false, persistPeers: false })
    await a.start()
    await b.start()
    await b.connect(a.addrs()[0] as string)
    expect(b.status()).toMatchObject({ peers: 1, peersKnown: 0, redial: { pending: 0, targets: [] } })
    const keys: string[] = []
    for await (const { key } of b.storage.query(KNOWN_PEER_PREFIX)) keys.push(key)
    expect(keys).toEqual([])
  })
})
