import { describe, expect, it } from 'vitest'
import { MessagePriority, type Connection } from '@kos-mesh/interface'
import { FairScheduler, priorityClass } from '../src/scheduler.js'
import { TokenBucket } from '../src/token-bucket.js'
import { ReplayWindow } from '../src/replay-cache.js'
import { ResponseCache } from '../src/response-cache.js'
import { RoutingTable } from '../src/routing-table.js'
import { decodeEnvelope, encodeEnvelope, rewrapEnvelope, EnvelopeKind, FLAG_VIA_REACHED } from '../src/envelope.js'

describe('FairScheduler', () => {
  it('serves CRITICAL before HIGH before NORMAL before LOW when lightly loaded', () => {
    const s = new FairScheduler<string>()
    s.push('p', MessagePriority.LOW, 'low')
    s.push('p', MessagePriority.NORMAL, 'normal')
    s.push('p', MessagePriority.HIGH, 'high')
    s.push('p', MessagePriority.CRITICAL, 'critical')
    expect([s.shift(), s.shift(), s.shift(), s.shift(), s.shift()]).toEqual(['critical', 'high', 'normal', 'low', undefined])
  })

  it('does not starve LOW: weighted round robin gives it 1 in 15 slots under full load', () => {
    const s = new FairScheduler<number>({ maxPerPeer: 10_000, maxTotal: 10_000 })
    for (let i = 0; i < 1000; i++) for (const p of [10, 8, 5, 1]) s.push('p', p, p)
    const first = Array.from({ length: 150 }, () => s.shift())
    const counts = new Map<number, number>()
    for (const v of first) counts.set(v!, (counts.get(v!) ?? 0) + 1)
    expect(counts.get(10)).toBe(80)
    expect(counts.get(8)).toBe(40)
    expect(counts.get(5)).toBe(20)
    expect(counts.get(1)).toBe(10)
  })

  it('round-robins peers within a class so a flooding peer cannot starve others', () => {
    const s = new FairScheduler<string>({ maxPerPeer: 1000, maxTotal: 10_000 })
    for (let i = 0; i < 500; i++) s.push('flooder', MessagePriority.NORMAL, 'f')
    s.push('good', MessagePriority.NORMAL, 'g1')
    s.push('good', MessagePriority.NORMAL, 'g2')
    const order = Array.from({ length: 6 }, () => s.shift())
    expect(order.indexOf('g1')).toBeLessThanOrEqual(1)
    expect(order.indexOf('g2')).toBeLessThanOrEqual(3)
  })

  it('bounds each peer and the total', () => {
    const s = new FairScheduler<number>({ maxPerPeer: 2, maxTotal: 3 })
    expect(s.push('a', 5, 1)).toBe('ok')
    expect(s.push('a', 1, 2)).toBe('ok')
    expect(s.push('a', 10, 3)).toBe('peer_full')
    expect(s.push('b', 5, 4)).toBe('ok')
    expect(s.push('c', 5, 5)).toBe('full')
    expect(s.size).toBe(3)
    expect(s.depths()).toEqual([0, 0, 2, 1])
    s.shift()
    expect(s.push('c', 5, 6)).toBe('ok')
    expect(s.clear()).toHaveLength(3)
    expect(s.size).toBe(0)
  })

  it('maps any priority to a class', () => {
    expect([priorityClass(10), priorityClass(9), priorityClass(8), priorityClass(6), priorityClass(5), priorityClass(1), priorityClass(0)]).toEqual([0, 1, 1, 2, 2, 3, 3])
  })

  it('rejects bad weights with a typed error', () => {
    expect(() => new FairScheduler({ weights: [1, 0, 1, 1] })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
  })
})

describe('TokenBucket', () => {
  it('allows a burst then refills at the rate', () => {
    const b = new TokenBucket({ ratePerSec: 10, burst: 3 }, 0)
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false])
    expect(b.waitTime(0)).toBe(100)
    expect(b.take(50)).toBe(false)
    expect(b.take(100)).toBe(true)
    expect(b.available(10_000)).toBe(3)
  })

  it('validates its init', () => {
    expect(() => new TokenBucket({ ratePerSec: 0, burst: 1 }, 0)).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
  })
})

describe('ReplayWindow', () => {
  it('catches a replay until the id expires', () => {
    let now = 1000
    const w = new ReplayWindow({ now: () => now })
    expect(w.checkAndRecord('a', 2000)).toBe(true)
    expect(w.checkAndRecord('a', 2000)).toBe(false)
    expect(w.has('a')).toBe(true)
    now = 2000
    expect(w.has('a')).toBe(false)
    expect(w.checkAndRecord('a', 3000)).toBe(true)
  })

  it('stays bounded, purging expired ids first and counting evictions', () => {
    let now = 0
    const w = new ReplayWindow({ maxEntries: 3, now: () => now })
    w.checkAndRecord('a', 10)
    w.checkAndRecord('b', 10_000)
    w.checkAndRecord('c', 10_000)
    now = 5000
    w.checkAndRecord('d', 10_000)
    expect(w.size).toBe(3)
    expect(w.evictions).toBe(0)
    w.checkAndRecord('e', 10_000)
    expect(w.size).toBe(3)
    expect(w.evictions).toBe(1)
    expect(w.has('b')).toBe(false)
    expect(w.has('e')).toBe(true)
  })
})

describe('ResponseCache', () => {
  it('returns stored frames until expiry and evicts by count and bytes', () => {
    let now = 0
    const c = new ResponseCache({ maxEntries: 2, maxBytes: 10, now: () => now })
    c.set('a', new Uint8Array(4), 'x', 100)
    c.set('b', new Uint8Array(4), 'x', 100)
    expect(c.get('a')?.frame.byteLength).toBe(4)
    c.set('c', new Uint8Array(4), 'x', 100)
    expect(c.get('a')).toBeUndefined()
    expect(c.size).toBe(2)
    c.set('d', new Uint8Array(8), 'x', 100)
    expect(c.byteSize).toBeLessThanOrEqual(10)
    expect(c.get('d')?.target).toBe('x')
    now = 100
    expect(c.get('d')).toBeUndefined()
  })
})

function fakeConn(remotePeer: string, id = remotePeer): Connection {
  return { id, remotePeer, status: 'open' } as unknown as Connection
}

describe('RoutingTable', () => {
  it('prefers direct routes, then the shortest advertised, and applies split horizon', () => {
    const t = new RoutingTable({ now: () => 0, maxHops: 8 })
    t.addConnection(fakeConn('did:b'))
    t.addConnection(fakeConn('did:c'))
    t.bind('b.kai', 'did:b')
    t.bind('c.kai', 'did:c')
    t.setAdvertised('did:b', [{ authority: 'b.kai', hops: 0 }, { authority: 'd.kai', hops: 2 }])
    t.setAdvertised('did:c', [{ authority: 'c.kai', hops: 0 }, { authority: 'd.kai', hops: 1 }])
    expect(t.lookup('b.kai')).toMatchObject({ nextHop: 'did:b', hops: 1, kind: 'direct' })
    expect(t.lookup('d.kai')).toMatchObject({ nextHop: 'did:c', hops: 2, kind: 'advertised' })
    expect(t.lookup('d.kai', 'did:c')).toMatchObject({ nextHop: 'did:b', hops: 3 })
    const adv = t.advertisement('a.kai', 'did:c')
    expect(adv).toContainEqual({ authority: 'a.kai', hops: 0 })
    expect(adv).toContainEqual({ authority: 'b.kai', hops: 1 })
    expect(adv.find((r) => r.authority === 'c.kai')).toBeUndefined()
    // d is learned through c at 2 hops and through b at 3: to c we only advertise the route via b
    expect(adv).toContainEqual({ authority: 'd.kai', hops: 3 })
  })

  it('drops routes of a disconnected neighbour and ignores routes beyond the hop limit', () => {
    const t = new RoutingTable({ now: () => 0, maxHops: 3 })
    const cb = fakeConn('did:b')
    t.addConnection(cb)
    expect(t.setAdvertised('did:b', [{ authority: 'far.kai', hops: 3 }, { authority: 'near.kai', hops: 1 }])).toBe(true)
    expect(t.lookup('far.kai')).toBeUndefined()
    expect(t.lookup('near.kai')?.hops).toBe(2)
    expect(t.setAdvertised('did:b', [{ authority: 'near.kai', hops: 1 }, { authority: 'far.kai', hops: 3 }])).toBe(false)
    expect(t.removeConnection(cb)).toBe(true)
    expect(t.lookup('near.kai')).toBeUndefined()
    expect(t.peers()).toEqual([])
  })

  it('learns reverse paths from traffic, with expiry', () => {
    let now = 0
    const t = new RoutingTable({ now: () => now, maxHops: 8, learnedRouteTtlMs: 1000 })
    t.addConnection(fakeConn('did:b'))
    t.learn('x.kai', 'did:b', 3)
    expect(t.lookup('x.kai')).toMatchObject({ nextHop: 'did:b', kind: 'learned', hops: 3 })
    now = 1000
    expect(t.lookup('x.kai')).toBeUndefined()
  })

  // security fix: this test used to assert that a second DID silently rebinds the authority;
  // authorities are now pinned to the first DID (trust on first use) and never rebound
  it('never rebinds an authority pinned to another DID', () => {
    const t = new RoutingTable({ now: () => 0, maxHops: 8 })
    expect(t.bind('a.kai', 'did:1')).toBeUndefined()
    expect(t.bind('a.kai', 'did:2')).toBe('did:1')
    expect(t.didOf('a.kai')).toBe('did:1')
    expect(t.authorityOf('did:2')).toBeUndefined()
    expect(t.authorityOf('did:1')).toBe('a.kai')
  })
})

describe('envelope', () => {
  it('round-trips and rewraps only the header', () => {
    const body = new Uint8Array([1, 2, 3])
    const f = encodeEnvelope(EnvelopeKind.MESSAGE, 2, 0, body)
    const e = decodeEnvelope(f)
    expect(e).toMatchObject({ kind: 1, hops: 2, flags: 0 })
    expect([...e.body]).toEqual([1, 2, 3])
    const g = rewrapEnvelope(f, 3, FLAG_VIA_REACHED)
    expect(decodeEnvelope(g)).toMatchObject({ hops: 3, flags: 1 })
    expect([...g.subarray(5)]).toEqual([...f.subarray(5)])
    expect(f[3]).toBe(2)
  })

  it('rejects bad magic, version, kind, flags and short frames with a typed error', () => {
    const good = encodeEnvelope(EnvelopeKind.HELLO, 0, 0, new Uint8Array([9]))
    for (const [i, v] of [[0, 0], [1, 2], [2, 7], [4, 0x80]] as const) {
      const bad = good.slice()
      bad[i] = v
      expect(() => decodeEnvelope(bad)).toThrow(expect.objectContaining({ name: 'InvalidEnvelopeError' }))
    }
    expect(() => decodeEnvelope(new Uint8Array(5))).toThrow(expect.objectContaining({ name: 'InvalidEnvelopeError' }))
  })
})
