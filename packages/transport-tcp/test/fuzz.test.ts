import { connect } from 'node:net'
import { expect, it } from 'vitest'
import { encodeFrame } from '@kos-mesh/klp-codec'
import { FRAME_KIND_HANDSHAKE, FRAME_KIND_RECORD } from '../src/index.js'
import type { TcpListener } from '../src/listener.js'
import { collect, pair } from './fixtures/helpers.js'

/** xorshift32: reproducible inputs. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    return x
  }
}

function blob(rand: () => number): Uint8Array {
  const kind = rand() % 4
  const body = new Uint8Array(rand() % 900)
  for (let i = 0; i < body.length; i++) body[i] = rand() & 0xff
  // a version byte and message type the did-security handshake expects, sometimes
  if (body.length > 2 && (rand() & 1) === 1) { body[0] = 1; body[1] = 1 + (rand() % 3) }
  switch (kind) {
    case 0: return body // raw garbage
    case 1: return encodeFrame(body, { kind: FRAME_KIND_HANDSHAKE })
    case 2: return encodeFrame(body, { kind: FRAME_KIND_RECORD })
    default: { // a valid frame cut short
      const f = encodeFrame(body, { kind: FRAME_KIND_HANDSHAKE })
      return f.subarray(0, rand() % f.length)
    }
  }
}

it('fuzz: 300 hostile clients (random frames, garbage, truncation) each get dropped; the listener keeps serving', async () => {
  const p = await pair({}, { handshakeTimeoutMs: 2_000 })
  try {
    const rand = prng(0x5eed)
    const port = Number(/:(\d+)$/.exec(p.addr)?.[1])
    const N = 300
    for (let batch = 0; batch < N; batch += 30) {
      await Promise.all(Array.from({ length: 30 }, async () => {
        const s = connect({ host: '127.0.0.1', port })
        s.on('error', () => {})
        s.resume()
        await new Promise((r) => s.once('connect', r))
        s.end(blob(rand))
        await new Promise((r) => s.once('close', r))
      }))
    }
    const listener = p.listener as TcpListener
    while (listener.stats().failed + listener.stats().refused < N) await new Promise((r) => setTimeout(r, 5))
    const stats = listener.stats()
    expect(stats.accepted).toBe(0)
    expect(stats.failed + stats.refused).toBe(N)
    expect(stats.handshaking).toBe(0)
    expect(p.b.transport.connectionCount).toBe(0)
    const conn = await p.a.transport.dial(p.addr, { remotePeer: p.b.identity.did })
    const inb = await p.nextInbound()
    await conn.send(new Uint8Array([1, 2]))
    expect([...(await collect(inb, 1))[0]!]).toEqual([1, 2])
  } finally {
    await p.teardown()
  }
})
