import { describe, expect, it } from 'vitest'
import { PinTable, type PinChange } from '../src/index.js'

function table(maxPins?: number): { t: PinTable; changes: PinChange[]; evicted: Array<[string, string]>; clock: { now: number } } {
  const clock = { now: 0 }
  const changes: PinChange[] = []
  const evicted: Array<[string, string]> = []
  const t = new PinTable({
    now: () => clock.now,
    ...(maxPins === undefined ? {} : { maxPins }),
    onPinChange: (c) => changes.push(c),
    onEvict: (a, d) => evicted.push([a, d]),
  })
  return { t, changes, evicted, clock }
}
const none = (): boolean => false

describe('PinTable', () => {
  it('pins on first claim and never rebinds: another DID, or the same DID for another authority, is refused', () => {
    const { t, changes } = table()
    expect(t.claim('a.kai', 'did:1', none)).toEqual({ ok: true, pinned: true })
    expect(t.claim('a.kai', 'did:1', none)).toEqual({ ok: true, pinned: false })
    expect(t.claim('a.kai', 'did:2', none)).toEqual({ ok: false, reason: 'authority_pinned', pinnedTo: 'did:1' })
    expect(t.claim('b.kai', 'did:1', none)).toEqual({ ok: false, reason: 'did_pinned', pinnedTo: 'a.kai' })
    expect(t.didOf('a.kai')).toBe('did:1')
    expect(t.record()).toEqual({ 'a.kai': 'did:1' })
    expect([...t.all()]).toEqual([['a.kai', 'did:1']])
    expect(changes).toEqual([{ kind: 'pinned', pin: { authority: 'a.kai', did: 'did:1', firm: false } }])
  })

  it('configured pins are firm; pin() refuses another DID and bad input with a typed error', () => {
    const { t } = table()
    t.pin('a.kai', 'did:1')
    expect(t.entries()).toEqual([{ authority: 'a.kai', did: 'did:1', firm: true }])
    expect(() => t.pin('a.kai', 'did:2')).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => t.pin('', 'did:2')).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => t.pin('b.kai', 'not-a-did')).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    t.pin('c.kai', 'did:3', false)
    expect(t.entries().find((e) => e.authority === 'c.kai')?.firm).toBe(false)
  })

  it('confirm() makes a provisional pin firm once (one change event), only for the pinned DID', () => {
    const { t, changes } = table()
    t.claim('a.kai', 'did:1', none)
    expect(t.confirm('a.kai', 'did:2')).toBe(false)
    expect(t.confirm('b.kai')).toBe(false)
    expect(t.confirm('a.kai', 'did:1')).toBe(true)
    expect(t.confirm('a.kai')).toBe(true)
    expect(changes.filter((c) => c.kind === 'firm')).toHaveLength(1)
    expect(t.entries()).toEqual([{ authority: 'a.kai', did: 'did:1', firm: true }])
  })

  it('when full, evicts only the least recently seen provisional pin of a disconnected DID', () => {
    const { t, evicted, clock } = table(3)
    t.pin('firm.kai', 'did:f')
    clock.now = 1
    t.claim('old.kai', 'did:o', none)
    clock.now = 2
    t.claim('new.kai', 'did:n', none)
    clock.now = 3
    t.claim('old.kai', 'did:o', none) // seen again: now the most recent
    const connected = new Set<string>()
    expect(t.claim('x.kai', 'did:x', (d) => connected.has(d))).toEqual({ ok: true, pinned: true })
    expect(evicted).toEqual([['new.kai', 'did:n']])
    expect(t.evictions).toBe(1)
    // the rest is firm or connected: a new claim is refused, nothing changes
    connected.add('did:o')
    connected.add('did:x')
    expect(t.claim('y.kai', 'did:y', (d) => connected.has(d))).toEqual({ ok: false, reason: 'pins_full' })
    expect(t.refusals).toBe(1)
    expect(t.size).toBe(3)
    expect(t.didOf('firm.kai')).toBe('did:f')
  })

  it('an evicted DID may claim a new authority', () => {
    const { t } = table(1)
    t.claim('a.kai', 'did:1', none)
    expect(t.claim('b.kai', 'did:2', none)).toEqual({ ok: true, pinned: true })
    expect(t.claim('c.kai', 'did:1', none)).toEqual({ ok: true, pinned: true })
  })
})
