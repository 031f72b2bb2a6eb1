import { describe, expect, it } from 'vitest'
import { pair, collect, rejection } from './fixtures/helpers.js'

describe('tcp transport: basics', () => {
  it('dials, authenticates both sides and moves frames both ways', async () => {
    const p = await pair()
    try {
      const conn = await p.a.transport.dial(p.addr, { remotePeer: p.b.identity.did })
      const inb = await p.nextInbound()
      expect(conn.remotePeer).toBe(p.b.identity.did)
      expect(inb.remotePeer).toBe(p.a.identity.did)
      expect(conn.direction).toBe('outbound')
      expect(inb.direction).toBe('inbound')
      expect(conn.status).toBe('open')
      await conn.send(new Uint8Array([1, 2, 3]))
      await conn.send(new Uint8Array(100_000).fill(7))
      const got = await collect(inb, 2)
      expect([...got[0]!]).toEqual([1, 2, 3])
      expect(got[1]!.length).toBe(100_000)
      expect(got[1]!.every((b) => b === 7)).toBe(true)
      await inb.send(new Uint8Array([9]))
      const back = await collect(conn, 1)
      expect([...back[0]!]).toEqual([9])
      await conn.close()
      await inb.closed
      expect(conn.status).toBe('closed')
      expect(inb.status).toBe('closed')
    } finally {
      await p.teardown()
    }
  })

  it('graceful close delivers every frame sent before it, then ends the iterator', async () => {
    const p = await pair()
    try {
      const conn = await p.a.transport.dial(p.addr)
      const inb = await p.nextInbound()
      const n = 500
      const sends: Promise<void>[] = []
      for (let i = 0; i < n; i++) sends.push(conn.send(new Uint8Array(1000).fill(i & 0xff)))
      await Promise.all(sends)
      await conn.close()
      const got: Uint8Array[] = []
      for await (const f of inb) got.push(f)
      expect(got.length).toBe(n)
      expect(got.every((f, i) => f[0] === (i & 0xff))).toBe(true)
      const err = await rejection(conn.send(new Uint8Array(1)))
      expect(err.name).toBe('ConnectionClosedError')
    } finally {
      await p.teardown()
    }
  })

  it('refuses a peer whose authenticated DID differs and closes the socket', async () => {
    const p = await pair()
    try {
      const err = await rejection(p.a.transport.dial(p.addr, { remotePeer: p.a.identity.did }))
      expect(err.name).toBe('PeerMismatchError')
      expect(err.code).toBe('ERR_PEER_MISMATCH')
      expect(p.a.transport.connectionCount).toBe(0)
      const ok = await p.a.transport.dial(`${p.addr}/${p.b.identity.did}`)
      expect(ok.remotePeer).toBe(p.b.identity.did)
    } finally {
      await p.teardown()
    }
  })
})
