import { InvalidAddressError } from '@kos-mesh/interface'
import { describe, expect, it } from 'vitest'
import { createMemoryNetwork, memoryTransport, parseMemoryAddress, PERFECT_LINK, seededRandom, type TraceEvent } from '../src/index.js'

describe('network configuration', () => {
  it('per-link overrides merge over the defaults and can be cleared', () => {
    const network = createMemoryNetwork({ defaults: { latencyMs: 10 } })
    expect(network.getLink('a', 'b')).toEqual({ ...PERFECT_LINK, latencyMs: 10 })
    network.setLink('a', 'b', { loss: 0.5 })
    expect(network.getLink('a', 'b')).toMatchObject({ latencyMs: 10, loss: 0.5 })
    expect(network.getLink('b', 'a')).toMatchObject({ latencyMs: 10, loss: 0 })
    network.clearLink('a', 'b')
    expect(network.getLink('a', 'b').loss).toBe(0)
    network.setDefaults({ jitterMs: 3 })
    expect(network.getLink('a', 'b')).toMatchObject({ latencyMs: 0, jitterMs: 3 })
  })

  it('traces deliveries, drops and duplicates with their network time', async () => {
    const network = createMemoryNetwork({ seed: 9, time: 'virtual', defaults: { latencyMs: 7 } })
    const a = memoryTransport({ peerId: 'did:key:a', network })
    const b = memoryTransport({ peerId: 'did:key:b', network })
    await b.listen('memory://b', () => {})
    const dialing = a.dial('memory://b')
    await network.runFor(14)
    const conn = await dialing
    const events: TraceEvent[] = []
    const off = network.onTrace((e) => events.push(e))
    const t0 = network.clock.now()
    network.setLink('did:key:a', 'did:key:b', { loss: 1 })
    await conn.send(new Uint8Array(3))
    network.setLink('did:key:a', 'did:key:b', { duplicate: 1 })
    await conn.send(new Uint8Array(5))
    expect(network.advance(100)).toBeGreaterThanOrEqual(2)
    off()
    await conn.send(new Uint8Array(1))
    network.advance(100)
    expect(events.map((e) => [e.type, e.bytes, e.reason])).toEqual([
      ['drop', 3, 'loss'],
      ['duplicate', 5, undefined],
      ['deliver', 5, undefined],
      ['deliver', 5, undefined],
    ])
    expect((events[2] as TraceEvent).at - t0).toBe(7)
    expect(events.every((e) => e.from === 'did:key:a' && e.to === 'did:key:b')).toBe(true)
  })

  it('advance() runs timers synchronously in time order', () => {
    const network = createMemoryNetwork({ time: 'virtual', startTime: 0 })
    const order: Array<[string, number]> = []
    network.clock.setTimeout(() => order.push(['b', network.clock.now()]), 20)
    network.clock.setTimeout(() => order.push(['a', network.clock.now()]), 10)
    const h = network.clock.setTimeout(() => order.push(['x', network.clock.now()]), 15)
    network.clock.setTimeout(() => order.push(['a2', network.clock.now()]), 10)
    network.clock.clearTimeout(h)
    expect(network.pendingEvents).toBe(3)
    expect(network.advance(19)).toBe(2)
    expect(order).toEqual([['a', 10], ['a2', 10]])
    expect(network.clock.now()).toBe(19)
    network.advance(1)
    expect(order.at(-1)).toEqual(['b', 20])
    expect(network.pendingEvents).toBe(0)
  })
})

describe('address parser fuzz', () => {
  it('accepts or throws InvalidAddressError, never anything else, for 20,000 random inputs', () => {
    const r = seededRandom('fuzz')
    const alphabet = 'memory://abc~/:did.key-_@+ \u0000\u00e9/'
    let ok = 0
    for (let i = 0; i < 20_000; i++) {
      const len = Math.floor(r() * 40)
      let s = r() < 0.5 ? 'memory://' : ''
      for (let k = 0; k < len; k++) s += alphabet[Math.floor(r() * alphabet.length)]
      try {
        const parsed = parseMemoryAddress(s)
        expect(s.startsWith('memory://')).toBe(true)
        expect(parsed.name.includes('/')).toBe(false)
        ok++
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidAddressError)
      }
    }
    expect(ok).toBeGreaterThan(100)
  })
})
