import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { ReconStorage, Reconciler, reconcileLocal, type ReconItem } from '../src/index.js'

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
function item(n: number, ts = n): ReconItem {
  return { ts, id: new Uint8Array(createHash('sha256').update(String(n)).digest()) }
}

function check(a: ReconItem[], b: ReconItem[], options?: { branching?: number; frameSizeLimit?: number }) {
  const r = reconcileLocal(ReconStorage.from(a), ReconStorage.from(b), options)
  const A = new Set(a.map((x) => hex(x.id)))
  const B = new Set(b.map((x) => hex(x.id)))
  expect(new Set(r.have.map(hex))).toEqual(new Set([...A].filter((x) => !B.has(x))))
  expect(new Set(r.need.map(hex))).toEqual(new Set([...B].filter((x) => !A.has(x))))
  return r
}

describe('range-based reconciliation', () => {
  it('finds exactly the difference (property, with shared timestamps)', () => {
    fc.assert(fc.property(fc.uniqueArray(fc.nat(400), { maxLength: 300 }), fc.uniqueArray(fc.nat(400), { maxLength: 300 }), fc.nat(3), fc.constantFrom(2, 4, 16), (xs, ys, tsMod, branching) => {
      const ts = (n: number) => (tsMod === 0 ? n : n % (tsMod + 1))
      check(xs.map((n) => item(n, ts(n))), ys.map((n) => item(n, ts(n))), { branching })
    }), { numRuns: 200 })
  })

  it('equal sets finish in one round with a tiny message', () => {
    const items = Array.from({ length: 10_000 }, (_, i) => item(i))
    const r = check(items, items)
    expect(r.rounds).toBe(1)
    expect(r.bytes).toBeLessThan(16 * 24 + 32)
  })

  it('empty against full, and full against empty', () => {
    const items = Array.from({ length: 500 }, (_, i) => item(i))
    expect(check([], items).need.length).toBe(500)
    expect(check(items, []).have.length).toBe(500)
  })

  it('bytes grow with the difference, not the set', () => {
    const base = Array.from({ length: 20_000 }, (_, i) => item(i))
    const one = check(base, base.slice(1))
    const big = Array.from({ length: 200_000 }, (_, i) => item(i))
    const oneBig = check(big, big.slice(0, 100_000).concat(big.slice(100_001)))
    expect(oneBig.bytes).toBeLessThan(one.bytes * 2)
    expect(oneBig.bytes).toBeLessThan(2048)
  })

  it('malformed messages give typed errors', () => {
    const s = ReconStorage.from(Array.from({ length: 100 }, (_, i) => item(i)))
    const good = new Reconciler(s).initiate()
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
      const r = new Reconciler(s)
      try { r.reconcile(b) } catch (err) { expect((err as Error).name).toMatch(/InvalidReconcileMessageError|VectorTooLargeError/) }
    }), { numRuns: 3000 })
    fc.assert(fc.property(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 }), (i, x) => {
      const b = good.slice(); b[i]! ^= x
      try { new Reconciler(s).reconcile(b) } catch (err) { expect((err as Error).name).toMatch(/InvalidReconcileMessageError|VectorTooLargeError/) }
    }), { numRuns: 2000 })
    expect(() => new Reconciler(s, { maxMessageBytes: 10 }).reconcile(good)).toThrow(expect.objectContaining({ name: 'VectorTooLargeError' }))
  })
})

describe('frame size limit', () => {
  it('keeps initiator messages bounded and still finds the whole difference', () => {
    const a = Array.from({ length: 30_000 }, (_, i) => item(i))
    const b = a.filter((_, i) => i % 10 !== 0)
    const init = new Reconciler(ReconStorage.from(a), { frameSizeLimit: 4096 })
    const resp = new Reconciler(ReconStorage.from(b))
    let msg: Uint8Array | undefined = init.initiate()
    let biggest = 0
    for (let i = 0; i < 1000 && msg !== undefined; i++) {
      biggest = Math.max(biggest, msg.length)
      const out = init.reconcile(resp.reconcile(msg).message!)
      msg = out.message
    }
    expect(msg).toBeUndefined()
    expect(biggest).toBeLessThanOrEqual(4096 + 32 * 32 + 64)
    expect(init.have.length).toBe(3000)
  })
})

describe('bounded messages both ways', () => {
  it('an empty initiator against a large set: every message stays under the frame limit', () => {
    const big = Array.from({ length: 50_000 }, (_, i) => item(i))
    const init = new Reconciler(ReconStorage.from([]), { frameSizeLimit: 8192 })
    const resp = new Reconciler(ReconStorage.from(big), { frameSizeLimit: 8192 })
    let msg: Uint8Array | undefined = init.initiate()
    let biggest = 0
    let rounds = 0
    while (msg !== undefined && rounds < 10_000) {
      const answer: Uint8Array = resp.reconcile(msg).message!
      biggest = Math.max(biggest, msg.length, answer.length)
      msg = init.reconcile(answer).message
      rounds++
    }
    expect(msg).toBeUndefined()
    expect(biggest).toBeLessThan(8192 + 5 * 1024)
    expect(init.need.length).toBe(50_000)
    expect(new Set(init.need.map(hex)).size).toBe(50_000)
  })

  it('the property still holds with small frames on both sides', () => {
    fc.assert(fc.property(fc.uniqueArray(fc.nat(8000), { minLength: 500, maxLength: 3000 }), fc.uniqueArray(fc.nat(8000), { maxLength: 3000 }), fc.nat(40), (xs, ys, tsMod) => {
      const ts = (n: number) => (tsMod === 0 ? n : n % tsMod)
      const r = check(xs.map((n) => item(n, ts(n))), ys.map((n) => item(n, ts(n))), { frameSizeLimit: 4096 })
      expect(r.have.length + r.need.length).toBe(new Set(r.have.concat(r.need).map(hex)).size) // no id twice
    }), { numRuns: 25 })
  })
})
