import { AbortError, ConnectionClosedError, KosMeshError, LimitExceededError, PeerMismatchError } from '@kos-mesh/interface'
import { describe, expect, it } from 'vitest'
import { expectError, frameOf, isErrorOf, seqOf, stalled, withTimeout } from '../src/index.js'

class FrameTooBig extends LimitExceededError {
  static override readonly code: string = 'ERR_FRAME_TOO_BIG'
  override name = 'FrameTooBig'
  override readonly code: string = 'ERR_FRAME_TOO_BIG'
}

describe('suite helpers', () => {
  it('frameOf/seqOf round-trip the sequence number and fill deterministic bytes', () => {
    const f = frameOf(0xdeadbeef, 64)
    expect(f.byteLength).toBe(64)
    expect(seqOf(f)).toBe(0xdeadbeef)
    expect(frameOf(5, 64)).toEqual(frameOf(5, 64))
    expect(frameOf(5, 64)).not.toEqual(frameOf(6, 64))
    expect(seqOf(new Uint8Array(3))).toBe(-1)
    expect(seqOf(frameOf(9, 16).subarray(0, 8))).toBe(9)
  })

  it('isErrorOf accepts the class, its subclasses, and copies by name or code', () => {
    expect(isErrorOf(new PeerMismatchError('x'), PeerMismatchError)).toBe(true)
    expect(isErrorOf(new FrameTooBig('x'), LimitExceededError)).toBe(true)
    const copy = Object.assign(new Error('x'), { name: 'PeerMismatchError' })
    expect(isErrorOf(copy, PeerMismatchError)).toBe(true)
    const byCode = Object.assign(new Error('x'), { code: 'ERR_ABORTED' })
    expect(isErrorOf(byCode, AbortError)).toBe(true)
    expect(isErrorOf(new ConnectionClosedError('x'), PeerMismatchError)).toBe(false)
    expect(isErrorOf(new KosMeshError('x'), LimitExceededError)).toBe(false)
    expect(isErrorOf('PeerMismatchError', PeerMismatchError)).toBe(false)
  })

  it('expectError fails on success and on the wrong error class', async () => {
    await expect(expectError(Promise.reject(new AbortError()), AbortError)).resolves.toBeInstanceOf(AbortError)
    await expect(expectError(Promise.resolve(1), AbortError)).rejects.toThrow(/got success/)
    await expect(expectError(Promise.reject(new ConnectionClosedError('x')), AbortError)).rejects.toThrow(/expected AbortError, got ConnectionClosedError/)
  })

  it('stalled tells a pending promise from a settled one', async () => {
    expect(await stalled(Promise.resolve(), 50)).toBe(false)
    expect(await stalled(new Promise(() => {}), 1)).toBe(true)
    await expect(stalled(Promise.reject(new Error('x')), 50)).rejects.toThrow('x')
  })

  it('withTimeout rejects a promise that never settles', async () => {
    await expect(withTimeout(new Promise(() => {}), 'forever', 1)).rejects.toThrow(/hang: forever/)
    await expect(withTimeout(Promise.resolve(3), 'now')).resolves.toBe(3)
  })
})
