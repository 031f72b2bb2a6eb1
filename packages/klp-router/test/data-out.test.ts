/**
 * The router's data frames out (src/data-out.ts): a frame buffer is reused only for connections
 * that keep no reference to a frame once send() settled, and never while a send it serves is
 * still in flight.
 */
import type { Connection } from '@kos-mesh/interface'
import { describe, expect, it } from 'vitest'
import { DataFrames, copiesOnSend } from '../src/data-out.js'
import { decodeEnvelope, EnvelopeKind } from '../src/envelope.js'

function harness(copies: boolean): { frames: DataFrames; sent: Uint8Array[]; settle: () => void; conn: Connection } {
  const sent: Uint8Array[] = []
  const pending: Array<() => void> = []
  const conn = (copies ? { copiesOnSend: true } : {}) as unknown as Connection
  const frames = new DataFrames(async (_c, frame) => {
    sent.push(frame)
    await new Promise<void>((resolve) => pending.push(resolve))
  })
  return { frames, sent, conn, settle: () => pending.shift()?.() }
}

describe('DataFrames', () => {
  it('reuses a frame buffer after its send settled when the connection copies on send', async () => {
    const h = harness(true)
    expect(copiesOnSend(h.conn)).toBe(true)
    const a = h.frames.send(h.conn, 0x0b01, new Uint8Array([1, 2, 3]))
    const b = h.frames.send(h.conn, 0x0b01, new Uint8Array([4, 5, 6]))
    // both in flight: two distinct buffers
    expect(h.sent[0]).not.toBe(h.sent[1])
    const env = decodeEnvelope(h.sent[0]!)
    expect(env.kind).toBe(EnvelopeKind.DATA)
    expect([env.hops, env.flags]).toEqual([0x0b, 0x01])
    expect([...env.body]).toEqual([1, 2, 3])
    h.settle()
    await a
    const c = h.frames.send(h.conn, 0x0b01, new Uint8Array([7, 8, 9]))
    expect(h.sent[2]).toBe(h.sent[0]) // the settled one, rebuilt
    expect([...decodeEnvelope(h.sent[2]!).body]).toEqual([7, 8, 9])
    expect([...decodeEnvelope(h.sent[1]!).body]).toEqual([4, 5, 6]) // the one in flight is untouched
    expect(h.frames.reused).toBe(1)
    h.settle()
    h.settle()
    await Promise.all([b, c])
    expect(h.frames.kept).toBe(2)
  })

  it('gives other connections a fresh frame every time', async () => {
    const h = harness(false)
    expect(copiesOnSend(h.conn)).toBe(false)
    const a = h.frames.send(h.conn, 1, new Uint8Array([1]))
    h.settle()
    await a
    const b = h.frames.send(h.conn, 1, new Uint8Array([2]))
    h.settle()
    await b
    expect(h.sent[1]).not.toBe(h.sent[0])
    expect([...decodeEnvelope(h.sent[0]!).body]).toEqual([1])
    expect(h.frames.reused).toBe(0)
    expect(h.frames.kept).toBe(0)
  })

  it('keeps a buffer whose send failed for reuse, and at most 8 buffers', async () => {
    const sent: Uint8Array[] = []
    const frames = new DataFrames(async (_c, frame) => {
      sent.push(frame)
      throw new Error('closed')
    })
    const conn = { copiesOnSend: true } as unknown as Connection
    await expect(frames.send(conn, 1, new Uint8Array(4))).rejects.toThrow('closed')
    await expect(frames.send(conn, 1, new Uint8Array(4))).rejects.toThrow('closed')
    expect(sent[1]).toBe(sent[0])
    await Promise.all(Array.from({ length: 12 }, (_, i) => frames.send(conn, 1, new Uint8Array(10 + i)).catch(() => {})))
    expect(frames.kept).toBe(8)
  })
})
