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

describe('tcp transport: stream boundaries', () => {
  for (const chunk of [0, 7001]) {
    it(`bulk frames spanning socket reads arrive intact and do not alias each other (${chunk === 0 ? 'direct' : `${chunk}-byte chunks`})`, async () => {
      const { startByteProxy } = await import('./fixtures/proxy.js')
      const { randomBytes } = await import('node:crypto')
      const p = await pair()
      const proxy = chunk === 0 ? undefined : await startByteProxy(p.addr, chunk)
      try {
        const conn = await p.a.transport.dial(proxy?.addr ?? p.addr, { remotePeer: p.b.identity.did })
        const inb = await p.nextInbound()
        // 64 KiB (reused assembly buffer), 600 KiB (over its cap), small ones in between
        const frames = [65536, 100, 65536, 600_000, 65536, 1, 65536 + 7].map((n) => new Uint8Array(randomBytes(n)))
        const sent = Promise.all(frames.map((f) => conn.send(f)))
        const got = await collect(inb, frames.length)
        await sent
        // compared after all arrived: a frame delivered early must not have been overwritten by a later one
        for (let i = 0; i < frames.length; i++) expect(Buffer.from(got[i]!).equals(Buffer.from(frames[i]!))).toBe(true)
        // and the other direction, through the listener's connection
        await inb.send(frames[0]!)
        await inb.send(frames[3]!)
        const back = await collect(conn, 2)
        expect(Buffer.from(back[0]!).equals(Buffer.from(frames[0]!))).toBe(true)
        expect(Buffer.from(back[1]!).equals(Buffer.from(frames[3]!))).toBe(true)
        await conn.close()
      } finally {
        await proxy?.close()
        await p.teardown()
      }
    })
  }

  it('works when every byte arrives in its own chunk (1-byte TCP segments through a proxy)', async () => {
    const { startByteProxy } = await import('./fixtures/proxy.js')
    const p = await pair()
    try {
      const proxy = await startByteProxy(p.addr, 1)
      try {
        const conn = await p.a.transport.dial(proxy.addr, { remotePeer: p.b.identity.did })
        const inb = await p.nextInbound()
        const frames = [new Uint8Array(0), new Uint8Array([1]), new Uint8Array(3000).fill(3), new Uint8Array(20_000).fill(4)]
        for (const f of frames) await conn.send(f)
        const got = await collect(inb, frames.length)
        expect(got.map((f) => f.length)).toEqual(frames.map((f) => f.length))
        expect(got[3]!.every((b) => b === 4)).toBe(true)
        await conn.close()
      } finally {
        await proxy.close()
      }
    } finally {
      await p.teardown()
    }
  })
})
