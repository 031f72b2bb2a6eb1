/**
 * Unit tests of the resource bounds added against the outside attack run (issue 8): byte-bounded
 * scheduler with a shared stranger turn, the outbound queues, the replay window's per-owner floors
 * and stranger pool, and the pin table's firm/provisional policy.
 */
import { describe, expect, it } from 'vitest'
import { MessagePriority, type Connection } from '@kos-mesh/interface'
import { FairScheduler } from '../src/scheduler.js'
import { OutboundQueues } from '../src/outbound.js'
import { ReplayWindow } from '../src/replay-cache.js'
import { RoutingTable, type PinChange } from '../src/routing-table.js'

describe('FairScheduler bytes and strangers', () => {
  it('bounds each peer and the total in bytes; one item always fits an empty peer queue', () => {
    const s = new FairScheduler<Uint8Array>({ maxBytesPerPeer: 100, maxBytesTotal: 250, sizeOf: (b) => b.byteLength })
    expect(s.push('a', MessagePriority.NORMAL, new Uint8Array(60))).toBe('ok')
    expect(s.push('a', MessagePriority.NORMAL, new Uint8Array(60))).toBe('peer_full')
    expect(s.push('b', MessagePriority.NORMAL, new Uint8Array(500))).toBe('full') // over the total while others queue
    expect(s.push('b', MessagePriority.NORMAL, new Uint8Array(100))).toBe('ok')
    expect(s.push('c', MessagePriority.NORMAL, new Uint8Array(100))).toBe('full')
    expect(s.bytes).toBe(160)
    expect(s.peerBytes('a')).toBe(60)
    s.shift()
    s.shift()
    expect(s.bytes).toBe(0)
    // an empty queue takes one oversized item (a frame may be larger than the per-peer bound)
    expect(s.push('c', MessagePriority.NORMAL, new Uint8Array(200))).toBe('ok')
  })

  it('gives all strangers together one turn against each known peer', () => {
    const s = new FairScheduler<string>({ maxPerPeer: 1000, maxTotal: 100_000 })
    for (let d = 0; d < 8; d++) for (let i = 0; i < 100; i++) s.push(`stranger${d}`, MessagePriority.NORMAL, `s${d}`, true)
    for (let i = 0; i < 100; i++) s.push('known', MessagePriority.NORMAL, 'k')
    const first = Array.from({ length: 40 }, () => s.shift()!)
    const known = first.filter((x) => x === 'k').length
    expect(known).toBe(20) // half the turns, however many strangers flood
    // and the strangers share their half round robin
    const strangers = new Set(first.filter((x) => x !== 'k'))
    expect(strangers.size).toBe(8)
  })

  it('serves strangers round robin among themselves when nobody is known', () => {
    const s = new FairScheduler<string>({ maxPerPeer: 1000, maxTotal: 100_000 })
    for (let i = 0; i < 100; i++) s.push('flooder', MessagePriority.NORMAL, 'f', true)
    s.push('honest', MessagePriority.NORMAL, 'h', true)
    const order = Array.from({ length: 3 }, () => s.shift())
    expect(order.indexOf('h')).toBeLessThanOrEqual(1)
  })
})

/** A connection whose send() resolves only when the test lets it (a peer that stopped reading). */
function stuckConnection(): Connection & { release(): void; sent: number } {
  let gate: () => void = () => {}
  let fail: (e: Error) => void = () => {}
  let blocked = true
  const c = {
    id: 'stuck',
    remotePeer: 'did:key:zStuck',
    remoteAddr: 'x://',
    direction: 'outbound' as const,
    status: 'open' as 'open' | 'closed',
    closed: new Promise<void>(() => {}),
    sent: 0,
    async send(): Promise<void> {
      if (c.status !== 'open') throw new Error('closed')
      if (blocked) await new Promise<void>((r, j) => { gate = r; fail = j })
      c.sent++
    },
    async close(): Promise<void> {},
    abort(): void {
      c.status = 'closed'
      fail(new Error('aborted'))
    },
    release(): void {
      blocked = false
      gate()
    },
    [Symbol.asyncIterator]: () => ({ next: () => new Promise<IteratorResult<Uint8Array>>(() => {}) }),
  }
  return c
}

describe('OutboundQueues', () => {
  it('never waits in post(): a peer that does not read gets its bound, then drops, and holds nothing else', async () => {
    const q = new OutboundQueues({ maxBytesPerConnection: 1000, maxBytesTotal: 10_000 })
    const c = stuckConnection()
    let posted = 0
    for (let i = 0; i < 100; i++) if (q.post(c, new Uint8Array(100))) posted++
    expect(posted).toBe(10) // the first one is in the connection's send(), 9 more wait
    expect(q.stats().dropped).toBe(90)
    expect(q.queuedBytes(c)).toBeLessThanOrEqual(1000)
    // another peer still gets room
    const d = stuckConnection()
    expect(q.post(d, new Uint8Array(100))).toBe(true)
    c.release()
    await new Promise((r) => setTimeout(r, 10))
    expect(c.sent).toBe(10)
    expect(q.queuedBytes(c)).toBe(0)
  })

  it('deliver() waits for room and resolves once the connection took the frame; a closed connection rejects', async () => {
    const q = new OutboundQueues({ maxBytesPerConnection: 300, maxBytesTotal: 10_000 })
    const c = stuckConnection()
    for (let i = 0; i < 3; i++) q.post(c, new Uint8Array(100))
    let done = false
    const p = q.deliver(c, new Uint8Array(100)).then(() => { done = true })
    await new Promise((r) => setTimeout(r, 10))
    expect(done).toBe(false)
    c.release()
    await p
    expect(done).toBe(true)
    const d = stuckConnection()
    q.post(d, new Uint8Array(100))
    q.post(d, new Uint8Array(200))
    const waiting = q.deliver(d, new Uint8Array(100))
    d.abort(new Error("gone"))
    q.remove(d, new Error('closed'))
    await expect(waiting).rejects.toBeInstanceOf(Error)
    expect(q.stats().queuedBytes).toBe(0)
  })

  it('deliver() honours an abort signal while it waits', async () => {
    const q = new OutboundQueues({ maxBytesPerConnection: 100, maxBytesTotal: 10_000 })
    const c = stuckConnection()
    q.post(c, new Uint8Array(100))
    q.post(c, new Uint8Array(100))
    const ac = new AbortController()
    const p = q.deliver(c, new Uint8Array(100), ac.signal)
    ac.abort()
    await expect(p).rejects.toMatchObject({ name: 'AbortError' })
  })
})

describe('ReplayWindow per-owner floors', () => {
  it('a flood of strangers never raises another signer\'s floor: fresh messages of others pass', () => {
    let now = 0
    const w = new ReplayWindow({ maxEntries: 100, maxStrangerEntries: 50, maxPerStranger: 50, now: () => now })
    // eleven throw-away DIDs fill the stranger pool with day-long ids, many times over
    for (let i = 0; i < 2000; i++) expect(w.checkAndRecord(`a${i}`, 86_400_000 + i, `did:attacker${i % 11}`, true)).toBe(true)
    expect(w.strangerSize).toBeLessThanOrEqual(50)
    expect(w.evictions).toBeGreaterThan(0)
    now = 1000
    // an honest stranger and a known signer with ordinary 60 s messages are not refused
    expect(w.checkAndRecord('h1', 61_000, 'did:honest-stranger', true)).toBe(true)
    expect(w.checkAndRecord('k1', 61_000, 'did:known')).toBe(true)
    // a replay of the attacker's evicted ids is refused (fail closed, for the attacker only)
    expect(w.checkAndRecord('a0', 86_400_000, 'did:attacker0', true)).toBe(false)
  })

  it('strangers never push out a known signer\'s ids', () => {
    const w = new ReplayWindow({ maxEntries: 10, maxStrangerEntries: 5, maxPerStranger: 5, now: () => 0 })
    expect(w.checkAndRecord('k', 1000, 'did:known')).toBe(true)
    for (let i = 0; i < 100; i++) w.checkAndRecord(`s${i}`, 5000 + i, `did:s${i}`, true)
    expect(w.has('k')).toBe(true)
    expect(w.checkAndRecord('k', 1000, 'did:known')).toBe(false)
  })

  it('an honest owner whose old ids were evicted loses nothing it sends next', () => {
    let now = 0
    const w = new ReplayWindow({ maxEntries: 100, maxPerOwner: 4, now: () => now })
    for (let i = 0; i < 50; i++) {
      now = i * 10
      expect(w.checkAndRecord(`m${i}`, now + 60_000, 'did:busy')).toBe(true) // later expiry each time
    }
    expect(w.size).toBe(4)
    expect(w.evictions).toBe(46)
    expect(w.checkAndRecord('m0', 60_000, 'did:busy')).toBe(false) // its evicted ids still count as replays
  })

  it('keeps memory bounded when owners only have floors left: folds them into slots, failing closed', () => {
    const now = 0
    const w = new ReplayWindow({ maxEntries: 10, maxStrangerEntries: 4, maxPerStranger: 4, maxFloorOnlyOwners: 8, floorSlots: 16, now: () => now })
    for (let i = 0; i < 500; i++) expect(w.checkAndRecord(`x${i}`, 10_000 + i, `did:sybil${i}`, true)).toBe(true)
    expect(w.ownerCount).toBeLessThanOrEqual(4 + 8)
    expect(w.foldedFloors).toBeGreaterThan(0)
    // every evicted id is still refused, whether its owner kept a floor or was folded into a slot
    for (let i = 0; i < 496; i++) expect(w.checkAndRecord(`x${i}`, 10_000 + i, `did:sybil${i}`, true)).toBe(false)
  })
})

describe('RoutingTable pins', () => {
  const conn = (did: string): Connection => ({ remotePeer: did, status: 'open' }) as unknown as Connection

  it('a full table of connected or firm pins refuses a new claim (pins_full), and says so', () => {
    const t = new RoutingTable({ now: () => 0, maxHops: 8, maxPins: 2, pinned: { 'a.kai': 'did:key:a' } })
    t.addConnection(conn('did:key:b'))
    expect(t.claim('b.kai', 'did:key:b')).toEqual({ ok: true, pinned: true })
    expect(t.claim('c.kai', 'did:key:c')).toMatchObject({ ok: false, reason: 'pins_full' })
    expect(t.pinRefusals).toBe(1)
  })

  it('evicts only provisional pins of disconnected DIDs, least recently seen, never a firm one', () => {
    let now = 0
    const changes: PinChange[] = []
    const t = new RoutingTable({ now: () => now, maxHops: 8, maxPins: 3, onPinChange: (c) => changes.push(c) })
    t.claim('worker.kai', 'did:key:worker')
    expect(t.confirm('worker.kai', 'did:key:worker')).toBe(true) // something relied on it
    now = 10
    t.claim('old.kai', 'did:key:old')
    now = 20
    t.claim('newer.kai', 'did:key:newer')
    now = 30
    // the attacker fills the table: only the provisional, least recently seen pin goes
    expect(t.claim('attacker1.kai', 'did:key:attacker1').ok).toBe(true)
    expect(t.pinnedDid('old.kai')).toBeUndefined()
    expect(t.pinnedDid('worker.kai')).toBe('did:key:worker')
    expect(changes.filter((c) => c.kind === 'evicted').map((c) => c.pin.authority)).toEqual(['old.kai'])
    // however many attackers come, the firm pin stays and its authority cannot be claimed
    for (let i = 2; i < 50; i++) t.claim(`attacker${i}.kai`, `did:key:attacker${i}`)
    expect(t.pinnedDid('worker.kai')).toBe('did:key:worker')
    expect(t.claim('worker.kai', 'did:key:attacker99')).toMatchObject({ ok: false, reason: 'authority_pinned' })
    expect(t.pinEntries().find((p) => p.authority === 'worker.kai')).toEqual({ authority: 'worker.kai', did: 'did:key:worker', firm: true })
  })

  it('restores provisional pins as provisional (a restart does not change the policy)', () => {
    const t = new RoutingTable({ now: () => 0, maxHops: 8, maxPins: 2, pinned: { 'p.kai': { did: 'did:key:p', firm: false }, 'f.kai': 'did:key:f' } })
    expect(t.claim('n.kai', 'did:key:n').ok).toBe(true) // p.kai was evictable
    expect(t.pinnedDid('p.kai')).toBeUndefined()
    expect(t.pinnedDid('f.kai')).toBe('did:key:f')
    // a restored provisional DID still pins at most one authority
    const u = new RoutingTable({ now: () => 0, maxHops: 8, pinned: { 'p.kai': { did: 'did:key:p', firm: false } } })
    expect(u.claim('q.kai', 'did:key:p')).toMatchObject({ ok: false, reason: 'did_pinned' })
  })
})
