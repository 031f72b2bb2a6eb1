import { describe, expect, it } from 'vitest'
import { mulberry32 } from '@kos-mesh/interface'
import { createMemoryNetwork } from '@kos-mesh/transport-memory'
import { HyParView, Plumtree, PeerListWalker, gossipCore, validateGossipMessage } from '../src/gossip/index.js'
import type { BroadcastMessage, GossipCore, GossipWireMessage, MembershipMessage, PeerListWireMessage } from '../src/gossip/index.js'

function clock() {
  const net = createMemoryNetwork({ time: 'virtual', seed: 'gossip-unit' })
  return { clock: net.clock, run: (ms: number) => net.runFor(ms) }
}

type Sent<M> = Array<{ to: string; m: M }>

function plumtree(minEager = 2, extra: Record<string, number> = {}) {
  const c = clock()
  const sent: Sent<BroadcastMessage> = []
  const delivered: string[] = []
  const p = new Plumtree({ minEager, graftTimeoutMs: 100, graftRetryMs: 150, ...extra }, {
    self: 'me', clock: c.clock, random: mulberry32(1),
    send: (to, m) => sent.push({ to, m }),
    deliver: (id) => delivered.push(id),
  })
  return { p, sent, delivered, ...c }
}

const payload = (n = 4) => new Uint8Array(n)
const of = <M extends { type: string }>(sent: Sent<M>, type: string) => sent.filter((s) => s.m.type === type)

describe('gossip message validation', () => {
  it('accepts well-formed messages and returns only known fields', () => {
    expect(validateGossipMessage({ type: 'forward_join', node: 'did:a', ttl: 6, extra: 1 })).toEqual({ type: 'forward_join', node: 'did:a', ttl: 6 })
    expect(validateGossipMessage({ type: 'ihave', ids: [{ id: 'x', round: 2 }] })).toEqual({ type: 'ihave', ids: [{ id: 'x', round: 2 }] })
    expect(validateGossipMessage({ type: 'neighbor', priority: 'low', swap: 'did:b' })).toEqual({ type: 'neighbor', priority: 'low', swap: 'did:b' })
  })

  it('rejects unknown types, bad fields and oversized lists with InvalidGossipMessageError', () => {
    const bad: unknown[] = [
      null, [], 'join', { type: 'nope' }, { type: 'forward_join', node: '', ttl: 1 }, { type: 'forward_join', node: 'a', ttl: -1 },
      { type: 'forward_join', node: 'a', ttl: 1.5 }, { type: 'neighbor', priority: 'urgent' }, { type: 'neighbor_reply', accepted: 'yes' },
      { type: 'shuffle', origin: 'a', ttl: 1, nodes: Array.from({ length: 65 }, (_, i) => `n${i}`) },
      { type: 'ihave', ids: [] }, { type: 'ihave', ids: [{ id: 'x' }] }, { type: 'graft', ids: ['x'.repeat(257)] },
      { type: 'gossip', id: 'x', round: 0 }, { type: 'peer_list_request', reqId: 'r', origin: 'o', hops: 300, max: 1 },
    ]
    for (const b of bad) expect(() => validateGossipMessage(b), JSON.stringify(b)?.slice(0, 60)).toThrow(expect.objectContaining({ name: 'InvalidGossipMessageError' }))
  })

  it('the core rejects a malformed message before touching its state', () => {
    const c = clock()
    const core = gossipCore()({ self: 'me', clock: c.clock, send: () => {}, random: mulberry32(2) })
    expect(() => core.handle('p', { type: 'graft', ids: 'x' })).toThrow(expect.objectContaining({ name: 'InvalidGossipMessageError' }))
    expect(() => gossipCore({ membership: { activeViewSize: 0 } })({ self: 'me', clock: c.clock, send: () => {} })).toThrow(expect.objectContaining({ name: 'InvalidGossipOptionError' }))
  })
})

describe('Plumtree', () => {
  it('pushes a new message to eager peers, announces it to lazy ones, delivers each id once', () => {
    const { p, sent, delivered } = plumtree(1)
    for (const n of ['a', 'b', 'c']) p.neighborUp(n)
    p.receive('a', { type: 'prune' }) // a: lazy
    p.receive('b', { type: 'gossip', id: 'm1', round: 3, payload: payload() })
    expect(delivered).toEqual(['m1'])
    expect(of(sent, 'gossip').map((s) => s.to)).toEqual(['c'])
    expect((of(sent, 'gossip')[0]?.m as { round: number }).round).toBe(4)
    expect(of(sent, 'ihave').map((s) => s.to)).toEqual(['a'])
    p.receive('c', { type: 'gossip', id: 'm1', round: 2, payload: payload() })
    expect(delivered).toEqual(['m1'])
  })

  it('keeps at most minEager neighbours pushing to it: new links beyond it and duplicate senders are PRUNEd', () => {
    const { p, sent } = plumtree(2)
    for (const n of ['a', 'b', 'c']) p.neighborUp(n)
    // c is the third pushing neighbour: pruned at once
    expect(of(sent, 'prune').map((s) => s.to)).toEqual(['c'])
    expect(p.stats().inbound).toBe(2)
    p.receive('a', { type: 'gossip', id: 'm', round: 0, payload: payload() })
    p.receive('b', { type: 'gossip', id: 'm', round: 0, payload: payload() })
    // b is a duplicate but only 2 push to us: kept
    expect(of(sent, 'prune').map((s) => s.to)).toEqual(['c'])
    // c still pushes (its PRUNE was lost): pruned again
    p.receive('c', { type: 'gossip', id: 'm', round: 0, payload: payload() })
    expect(of(sent, 'prune').map((s) => s.to)).toEqual(['c', 'c'])
    expect(p.stats().duplicates).toBe(2)
  })

  it('prunes a duplicate sender while more than minEager push to it (PRUNEd peers that GRAFT come back)', () => {
    const { p, sent } = plumtree(1)
    p.neighborUp('a')
    p.neighborUp('b') // pruned at once
    p.receive('b', { type: 'graft', ids: [] }) // b asks us to push to it: our out-link, not its
    p.receive('a', { type: 'ihave', ids: [{ id: 'q', round: 0 }] })
    expect(p.stats().inbound).toBe(1)
    sent.length = 0
    p.receive('a', { type: 'gossip', id: 'm', round: 0, payload: payload() })
    expect(of(sent, 'gossip').map((s) => s.to)).toEqual(['b'])
  })

  it('the decision API returns the push plan and leaves payload sending to the caller', () => {
    const { p, sent } = plumtree(1)
    for (const n of ['a', 'b']) p.neighborUp(n)
    const plan = p.accept('k1', payload(), undefined, 0)
    expect(plan).toEqual({ eager: ['a', 'b'], lazy: [] })
    expect(of(sent, 'gossip')).toHaveLength(0)
    expect(p.accept('k1', payload(), 'a', 1)).toBeUndefined()
    expect(p.has('k1')).toBe(true)
  })

  it('a PRUNE moves the sender to lazy; a GRAFT makes it eager again and resends the cached payload', () => {
    const { p, sent } = plumtree(1)
    p.neighborUp('a')
    p.neighborUp('b')
    p.broadcast('m', payload(8))
    p.receive('a', { type: 'prune' })
    expect(p.lazyPeers()).toEqual(['a'])
    sent.length = 0
    p.receive('a', { type: 'graft', ids: ['m', 'unknown'] })
    expect(p.eagerPeers()).toContain('a')
    expect(sent).toEqual([{ to: 'a', m: { type: 'gossip', id: 'm', round: 1, payload: payload(8) } }])
  })

  it('an IHAVE for a missing id GRAFTs after the timeout, then the next announcer, until the payload arrives', async () => {
    const { p, sent, delivered, run } = plumtree(1)
    for (const n of ['a', 'b']) p.neighborUp(n)
    p.receive('a', { type: 'ihave', ids: [{ id: 'x', round: 1 }] })
    p.receive('b', { type: 'ihave', ids: [{ id: 'x', round: 1 }] })
    await run(99)
    expect(of(sent, 'graft')).toHaveLength(0)
    await run(2)
    expect(of(sent, 'graft')).toEqual([{ to: 'a', m: { type: 'graft', ids: ['x'] } }])
    await run(150) // a did not deliver (lost): retry goes to b
    expect(of(sent, 'graft').map((s) => s.to)).toEqual(['a', 'b'])
    p.receive('b', { type: 'gossip', id: 'x', round: 2, payload: payload() })
    expect(delivered).toEqual(['x'])
    await run(1_000)
    expect(of(sent, 'graft')).toHaveLength(2)
    expect(p.stats().missing).toBe(0)
  })

  it('gives up after maxGraftAttempts and bounds the missing ids', async () => {
    const { p, sent, run } = plumtree(1, { maxGraftAttempts: 3, maxMissing: 2 })
    p.neighborUp('a')
    p.receive('a', { type: 'ihave', ids: [{ id: 'x', round: 0 }, { id: 'y', round: 0 }, { id: 'z', round: 0 }] })
    expect(p.stats().missing).toBe(2)
    await run(5_000)
    expect(of(sent, 'graft')).toHaveLength(6)
    expect(p.stats().missing).toBe(0)
    expect(p.stats().givenUp).toBe(3)
  })

  it('bounds the payload cache by count and bytes; evicted ids are no longer served to GRAFTs', () => {
    const { p, sent } = plumtree(1, { maxCacheEntries: 3, maxCacheBytes: 100 })
    p.neighborUp('a')
    for (let i = 0; i < 5; i++) p.broadcast(`m${i}`, payload(10))
    expect(p.stats().cacheEntries).toBe(3)
    p.broadcast('big', payload(90))
    expect(p.stats().cacheBytes).toBeLessThanOrEqual(100)
    sent.length = 0
    p.receive('a', { type: 'graft', ids: ['m0', 'big'] })
    expect(sent.map((s) => (s.m as { id: string }).id)).toEqual(['big'])
  })

  it('batches IHAVEs per peer when ihaveDelayMs > 0', async () => {
    const { p, sent, run } = plumtree(1, { ihaveDelayMs: 50 })
    p.neighborUp('a')
    p.neighborUp('b')
    p.receive('b', { type: 'prune' })
    p.broadcast('m1', payload())
    p.broadcast('m2', payload())
    expect(of(sent, 'ihave')).toHaveLength(0)
    await run(60)
    expect(of(sent, 'ihave')).toEqual([{ to: 'b', m: { type: 'ihave', ids: [{ id: 'm1', round: 0 }, { id: 'm2', round: 0 }] } }])
  })

  it('when a neighbour pushing to it leaves below minEager, un-prunes another with a GRAFT', () => {
    const { p, sent } = plumtree(2)
    for (const n of ['a', 'b', 'c']) p.neighborUp(n) // c pruned
    sent.length = 0
    p.neighborDown('a')
    expect(sent).toEqual([{ to: 'c', m: { type: 'graft', ids: [] } }])
    expect(p.stats().inbound).toBe(2)
  })
})

describe('HyParView', () => {
  function view(self: string, init = {}) {
    const c = clock()
    const sent: Sent<MembershipMessage> = []
    const up: string[] = []
    const down: string[] = []
    const h = new HyParView({ activeViewSize: 2, passiveViewSize: 3, arwl: 3, prwl: 1, ...init }, {
      self, clock: c.clock, random: mulberry32(3), send: (to, m) => sent.push({ to, m }),
      onNeighborUp: (p) => up.push(p), onNeighborDown: (p) => down.push(p),
    })
    return { h, sent, up, down, ...c }
  }

  it('a contact accepts a JOIN and spreads FORWARD_JOIN to its other neighbours', () => {
    const { h, sent, up } = view('c')
    h.handle('x', { type: 'join' })
    h.handle('y', { type: 'join' })
    expect(h.active()).toEqual(['x', 'y'])
    expect(up).toEqual(['x', 'y'])
    expect(sent).toContainEqual({ to: 'y', m: { type: 'neighbor_reply', accepted: true } })
    expect(sent).toContainEqual({ to: 'x', m: { type: 'forward_join', node: 'y', ttl: 3 } })
  })

  it('when full, a new active peer evicts a random one with DISCONNECT into the passive view', () => {
    const { h, sent, down } = view('c')
    for (const p of ['x', 'y', 'z']) h.handle(p, { type: 'join' })
    expect(h.active()).toHaveLength(2)
    expect(h.active()).toContain('z')
    const evicted = down[0] as string
    expect(sent).toContainEqual({ to: evicted, m: { type: 'disconnect' } })
    expect(h.passive()).toContain(evicted)
  })

  it('FORWARD_JOIN: keeps the node passive at PRWL, accepts it at ttl 0', () => {
    const { h, sent } = view('w')
    h.handle('a', { type: 'neighbor', priority: 'high' })
    h.handle('b', { type: 'neighbor', priority: 'high' })
    h.handle('a', { type: 'forward_join', node: 'n', ttl: 1 })
    expect(h.passive()).toContain('n')
    expect(sent).toContainEqual({ to: 'b', m: { type: 'forward_join', node: 'n', ttl: 0 } })
    h.handle('a', { type: 'forward_join', node: 'm', ttl: 0 })
    expect(h.active()).toContain('m')
    expect(sent).toContainEqual({ to: 'm', m: { type: 'neighbor_reply', accepted: true } })
  })

  it('a full view rejects a low-priority NEIGHBOR and accepts a high-priority one', () => {
    const { h, sent } = view('w')
    h.handle('a', { type: 'neighbor', priority: 'low' })
    h.handle('b', { type: 'neighbor', priority: 'low' })
    h.handle('c', { type: 'neighbor', priority: 'low' })
    expect(sent).toContainEqual({ to: 'c', m: { type: 'neighbor_reply', accepted: false } })
    h.handle('d', { type: 'neighbor', priority: 'high' })
    expect(h.active()).toContain('d')
  })

  it('a peer reported down is replaced from the passive view (high priority when the view is empty)', () => {
    const { h, sent } = view('w', { activeViewSize: 1 })
    h.handle('a', { type: 'neighbor', priority: 'high' })
    h.handle('s', { type: 'shuffle_reply', nodes: ['p1'] })
    expect(h.passive()).toEqual(['p1'])
    h.peerDown('a')
    expect(h.active()).toEqual([])
    expect(sent).toContainEqual({ to: 'p1', m: { type: 'neighbor', priority: 'high' } })
    h.handle('p1', { type: 'neighbor_reply', accepted: true })
    expect(h.active()).toEqual(['p1'])
  })

  it('the passive view stays bounded; a SHUFFLE at the end of its walk is answered to its origin', () => {
    const { h, sent } = view('w')
    h.handle('s', { type: 'shuffle', origin: 'o', ttl: 0, nodes: ['n1', 'n2', 'n3', 'n4', 'n5'] })
    expect(h.passive()).toHaveLength(3)
    expect(sent.find((s) => s.to === 'o')?.m.type).toBe('shuffle_reply')
  })

  it('a rejected link check closes a half-open link; a late accept after a DISCONNECT is ignored', () => {
    const { h, down } = view('w', { passiveViewSize: 0 })
    h.handle('a', { type: 'neighbor', priority: 'high' })
    h.handle('a', { type: 'neighbor_reply', accepted: false })
    expect(h.active()).toEqual([])
    expect(down).toEqual(['a'])
    h.handle('b', { type: 'neighbor', priority: 'high' })
    h.handle('b', { type: 'disconnect' })
    h.handle('b', { type: 'neighbor_reply', accepted: true })
    expect(h.active()).toEqual([])
  })

  it('rewiring swaps edges: the receiver hands a neighbour over to the swapped-out peer', () => {
    const z = view('z')
    z.h.handle('w1', { type: 'neighbor', priority: 'high' })
    z.h.handle('w2', { type: 'neighbor', priority: 'high' })
    z.h.handle('x', { type: 'neighbor', priority: 'low', swap: 'y' })
    expect(z.h.active()).toContain('x')
    expect(z.h.active()).toHaveLength(2)
    const handed = z.sent.find((s) => s.m.type === 'disconnect')
    expect(handed?.m).toEqual({ type: 'disconnect', link: 'y' })
    // the handed-over peer asks y (high priority)
    const w = view('w1')
    w.h.handle('z', { type: 'neighbor', priority: 'high' })
    w.h.handle('z', { type: 'disconnect', link: 'y' })
    expect(w.sent).toContainEqual({ to: 'y', m: { type: 'neighbor', priority: 'high' } })
  })
})

describe('peer-list walk (gossip_hops)', () => {
  it('travels at most `hops` hops and each node on it answers the origin with a bounded sample', async () => {
    const c = clock()
    const n = 10
    const msgs: Array<{ from: string; to: string; m: PeerListWireMessage }> = []
    const walkers = new Map<string, PeerListWalker>()
    for (let i = 0; i < n; i++) {
      const self = `n${i}`
      const ring = [`n${(i + 1) % n}`, `n${(i + n - 1) % n}`]
      walkers.set(self, new PeerListWalker({ maxPeers: 3 }, {
        self, clock: c.clock, random: mulberry32(i + 1),
        send: (to, m) => { msgs.push({ from: self, to, m }); c.clock.setTimeout(() => walkers.get(to)?.handle(self, m), 5) },
        sample: (k) => Array.from({ length: 10 }, (_, j) => `far${i}-${j}`).slice(0, k),
        next: (ex) => ring.find((p) => !ex.includes(p)),
      }))
    }
    const result = walkers.get('n0')!.request({ hops: 3, max: 100 })
    await c.run(1_000)
    const peers = await result
    expect(msgs.filter((x) => x.m.type === 'peer_list_request')).toHaveLength(3)
    expect(msgs.filter((x) => x.m.type === 'peer_list')).toHaveLength(3)
    expect(peers).toHaveLength(9) // 3 answers x maxPeers 3
    for (const x of msgs) if (x.m.type === 'peer_list') expect(x.m.peers.length).toBeLessThanOrEqual(3)
  })

  it('clamps hops to maxHops and bounds pending requests with PeerListBusyError', async () => {
    const c = clock()
    const sent: Array<PeerListWireMessage> = []
    const w = new PeerListWalker({ maxHops: 4, maxPending: 1, timeoutMs: 100 }, {
      self: 'me', clock: c.clock, random: mulberry32(5), send: (_to, m) => sent.push(m), sample: () => [], next: () => 'a',
    })
    const first = w.request({ hops: 99 })
    expect((sent[0] as { hops: number }).hops).toBe(4)
    await expect(w.request({ hops: 1 })).rejects.toMatchObject({ name: 'PeerListBusyError' })
    await c.run(150)
    expect(await first).toEqual([])
  })
})

describe('gossip core end to end (no loss, small)', () => {
  it('joins, forms symmetric views and broadcasts to every node exactly once', async () => {
    const net = createMemoryNetwork({ time: 'virtual', seed: 'core-e2e' })
    const cores = new Map<string, GossipCore>()
    const got = new Map<string, number>()
    for (let i = 0; i < 30; i++) {
      const self = `n${i}`
      cores.set(self, gossipCore<Uint8Array>({ membership: { activeViewSize: 4, passiveViewSize: 8 }, broadcast: { minEager: 2 } })({
        self, clock: net.clock, random: mulberry32(100 + i),
        send: (to, m: GossipWireMessage) => { net.clock.setTimeout(() => cores.get(to)?.receive(self, m), 10) },
        deliver: () => got.set(self, (got.get(self) ?? 0) + 1),
      }))
    }
    for (const [id, core] of cores) { core.start(); if (id !== 'n0') core.join('n0'); await net.runFor(50) }
    await net.runFor(30_000)
    for (const [id, core] of cores) for (const p of core.neighbors()) expect(cores.get(p)!.neighbors(), `${id}-${p}`).toContain(id)
    cores.get('n7')!.broadcast('hello', new Uint8Array(3))
    await net.runFor(2_000)
    expect(got.size).toBe(29)
    for (const [id, c] of got) expect(c, id).toBe(1)
    for (const c of cores.values()) c.stop()
  })
})
