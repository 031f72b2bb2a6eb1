/** SealedRecords: sealed records kept as bytes in one buffer, in order, across growth and compaction. */
import { describe, expect, it } from 'vitest'
import { SealedRecords } from '../src/sealed.js'

const rec = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill)

describe('SealedRecords', () => {
  it('gives records back in order, byte for byte, across growth and compaction', () => {
    const s = new SealedRecords()
    const out: Uint8Array[] = []
    let next = 0
    let expectNext = 0
    // interleave pushes and shifts so the buffer both grows and moves its live part to the front
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 7; i++) {
        const r = rec(1 + ((next * 37) % 3000), next & 0xff)
        s.push(r)
        next++
      }
      for (let i = 0; i < 5 && s.count > 0; i++) out.push(Uint8Array.from(s.shift()))
    }
    while (s.count > 0) out.push(Uint8Array.from(s.shift()))
    expect(out.length).toBe(next)
    for (const r of out) {
      expect(r.byteLength).toBe(1 + ((expectNext * 37) % 3000))
      expect(r.every((b) => b === (expectNext & 0xff))).toBe(true)
      expectNext++
    }
    expect(s.bytes).toBe(0)
  })

  it('copies what it is given (the source may be reused), counts bytes, and lets a large buffer go once drained', () => {
    const s = new SealedRecords()
    const src = rec(100_000, 7)
    s.push(src)
    src.fill(0)
    expect(s.bytes).toBe(100_004)
    const v = s.shift()
    expect(v.byteLength).toBe(100_000)
    expect(v[0]).toBe(7)
    expect(s.count).toBe(0)
    expect(s.bytes).toBe(0)
    expect(() => s.shift()).toThrow(RangeError)
    s.push(rec(3, 1))
    s.clear()
    expect(s.count).toBe(0)
  })
})
