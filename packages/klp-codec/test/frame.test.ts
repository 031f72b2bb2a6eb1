import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DecodeError, KosMeshError, LimitExceededError } from '@kos-mesh/interface'
import { decodeFrame, encodeFrame, FrameDecoder, FrameKind } from '../src/index.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
function throws(fn: () => unknown): KosMeshError {
  try { fn() } catch (err) { expect(err).toBeInstanceOf(KosMeshError); return err as KosMeshError }
  throw new Error('expected a throw')
}

describe('frames', () => {
  it('has an 8-byte versioned header with a big-endian length', () => {
    expect(hex(encodeFrame(new Uint8Array([0xaa, 0xbb])))).toBe('4b01010000000002aabb')
    expect(hex(encodeFrame(new Uint8Array(0), { kind: 7 }))).toBe('4b01070000000000')
    const f = decodeFrame(encodeFrame(new Uint8Array([1, 2, 3]), { kind: 0x80 }))
    expect(f.kind).toBe(0x80)
    expect([...f.body]).toEqual([1, 2, 3])
    expect(FrameKind.MESSAGE).toBe(1)
  })

  it('enforces maxFrameSize on both sides (header included)', () => {
    expect(encodeFrame(new Uint8Array(92), { maxFrameSize: 100 }).length).toBe(100)
    const e = throws(() => encodeFrame(new Uint8Array(93), { maxFrameSize: 100 }))
    expect(e.name).toBe('FrameTooLargeError')
    expect(e).toBeInstanceOf(LimitExceededError)
    const big = encodeFrame(new Uint8Array(93))
    expect(throws(() => decodeFrame(big, { maxFrameSize: 100 })).name).toBe('FrameTooLargeError')
    // A header claiming 4 GiB is refused from the header alone, before buffering.
    const d = new FrameDecoder()
    expect(throws(() => d.push(new Uint8Array([0x4b, 1, 1, 0, 0xff, 0xff, 0xff, 0xff]))).name).toBe('FrameTooLargeError')
    expect(d.bufferedBytes).toBe(0)
    expect(throws(() => d.push(new Uint8Array([1]))).name).toBe('FrameTooLargeError') // poisoned
    expect(throws(() => encodeFrame(new Uint8Array(1), { kind: 256 })).name).toBe('InvalidParametersError')
  })

  it('rejects bad headers and wrong lengths with typed errors', () => {
    const ok = encodeFrame(new Uint8Array([1, 2]))
    const bad = (i: number, v: number) => { const b = Uint8Array.from(ok); b[i] = v; return b }
    expect(throws(() => decodeFrame(bad(0, 0x4c))).name).toBe('InvalidFrameError')
    expect(throws(() => decodeFrame(bad(1, 2))).name).toBe('InvalidFrameError')
    expect(throws(() => decodeFrame(bad(3, 1))).name).toBe('InvalidFrameError')
    expect(throws(() => decodeFrame(ok.subarray(0, 9))).name).toBe('TruncatedInputError')
    expect(throws(() => decodeFrame(ok.subarray(0, 5))).name).toBe('TruncatedInputError')
    expect(throws(() => decodeFrame(new Uint8Array([...ok, 0]))).name).toBe('TrailingBytesError')
    const d = new FrameDecoder()
    expect(d.push(ok.subarray(0, 5))).toEqual([])
    expect(d.bufferedBytes).toBe(5)
    expect(throws(() => d.end())).toBeInstanceOf(DecodeError)
  })

  it('decodes streams split at arbitrary boundaries (property)', () => {
    const framesArb = fc.array(fc.record({ kind: fc.integer({ min: 0, max: 255 }), body: fc.uint8Array({ maxLength: 300 }) }), { maxLength: 8 })
    fc.assert(fc.property(framesArb, fc.array(fc.integer({ min: 0, max: 4000 }), { maxLength: 20 }), (frames, cuts) => {
      const stream = Buffer.concat(frames.map((f) => encodeFrame(f.body, { kind: f.kind })))
      const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b)
      const d = new FrameDecoder({ maxFrameSize: 400 })
      const out: Array<{ kind: number; body: Uint8Array }> = []
      let prev = 0
      for (const p of [...points, stream.length]) {
        out.push(...d.push(new Uint8Array(stream.subarray(prev, p))))
        prev = p
        expect(d.bufferedBytes).toBeLessThanOrEqual(400)
      }
      d.end()
      expect(out.map((f) => ({ kind: f.kind, body: hex(f.body) }))).toEqual(frames.map((f) => ({ kind: f.kind, body: hex(f.body) })))
    }), { numRuns: 500 })
  })

  it('decodes one byte at a time', () => {
    const stream = Buffer.concat([encodeFrame(new Uint8Array([1])), encodeFrame(new Uint8Array(0), { kind: 2 }), encodeFrame(new Uint8Array([3, 4]))])
    const d = new FrameDecoder()
    const out = []
    for (const b of stream) out.push(...d.push(Uint8Array.of(b)))
    expect(out.map((f) => [f.kind, hex(f.body)])).toEqual([[1, '01'], [2, ''], [1, '0304']])
  })
})
