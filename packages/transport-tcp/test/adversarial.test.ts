import { connect, createServer, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { LimitExceededError, type Connection } from '@kos-mesh/interface'
import { pair, node, collect, rejection } from './fixtures/helpers.js'
import { startProxy, type WireFrame } from './fixtures/proxy.js'
import { encodeFrame } from '@kos-mesh/klp-codec'
import { performHandshake, type Identity } from '@kos-mesh/did-security'
import { FRAME_KIND_HANDSHAKE, type HandshakeFn } from '../src/index.js'
import type { TcpListener } from '../src/listener.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** A raw client; resolves `closed` when the server drops it. */
function raw(addr: string): { socket: Socket; connected: Promise<void>; closed: Promise<void> } {
  const m = /^tcp:\/\/([^:]+):(\d+)/.exec(addr) as RegExpExecArray
  const socket = connect({ host: m[1] as string, port: Number(m[2]) })
  socket.on('error', () => {})
  socket.resume()
  cleanups.push(() => { socket.destroy() })
  return {
    socket,
    connected: new Promise((resolve) => socket.once('connect', () => resolve())),
    closed: new Promise((resolve) => socket.once('close', () => resolve())),
  }
}

async function stillServes(p: Awaited<ReturnType<typeof pair>>): Promise<void> {
  const conn = await p.a.transport.dial(p.addr, { remotePeer: p.b.identity.did })
  const inb = await p.nextInbound()
  await conn.send(new Uint8Array([42]))
  const [f] = await collect(inb, 1)
  expect([...f!]).toEqual([42])
  await conn.close()
}

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5))
}

const stats = (l: unknown) => (l as TcpListener).stats()

describe('tcp transport: hostile raw clients', () => {
  it('drops a client that sends garbage and keeps serving', async () => {
    const p = await pair()
    cleanups.push(p.teardown)
    const c = raw(p.addr)
    await c.connected
    // a well-formed handshake frame with garbage content: the handshake must reject it
    c.socket.write(encodeFrame(new Uint8Array(77).fill(0xab), { kind: FRAME_KIND_HANDSHAKE }))
    c.socket.write(new Uint8Array(300).fill(0x5a))
    await c.closed
    expect(stats(p.listener).failed).toBe(1)
    await stillServes(p)
  })

  it('drops a client that sends bytes that are not frames at all', async () => {
    const p = await pair()
    cleanups.push(p.teardown)
    const c = raw(p.addr)
    await c.connected
    c.socket.write(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))
    await c.closed
    expect(stats(p.listener).failed).toBe(1)
    await stillServes(p)
  })

  it('drops a truncated handshake', async () => {
    const p = await pair()
    cleanups.push(p.teardown)
    const c = raw(p.addr)
    await c.connected
    const frame = encodeFrame(new Uint8Array(34).fill(1), { kind: FRAME_KIND_HANDSHAKE })
    c.socket.end(frame.subarray(0, frame.length - 10))
    await c.closed
    expect(stats(p.listener).failed).toBe(1)
    await stillServes(p)
  })

  it('drops a client announcing an oversized frame without waiting for its bytes', async () => {
    const p = await pair()
    cleanups.push(p.teardown)
    const c = raw(p.addr)
    await c.connected
    // a valid klp-codec header (magic, version, handshake kind, flags) announcing ~4 GiB
    c.socket.write(new Uint8Array([0x4b, 0x01, FRAME_KIND_HANDSHAKE, 0x00, 0xff, 0xff, 0xff, 0xf0, 1, 2, 3]))
    await c.closed
    // a handshake message just over maxHandshakeFrameSize (4 KiB): refused from its header alone
    const c2 = raw(p.addr)
    await c2.connected
    c2.socket.write(new Uint8Array([0x4b, 0x01, FRAME_KIND_HANDSHAKE, 0x00, 0x00, 0x00, 0x10, 0x01, 9]))
    await c2.closed
    await until(() => stats(p.listener).failed === 2)
    await stillServes(p)
  })

  it('drops a client that stalls in the handshake when the handshake timeout fires', async () => {
    const p = await pair({ handshakeTimeoutMs: 60_000 }, { handshakeTimeoutMs: 150 })
    cleanups.push(p.teardown)
    const c = raw(p.addr)
    await c.connected
    await c.closed
    expect(stats(p.listener).failed).toBe(1)
    await stillServes(p)
  })

  it('limits concurrent inbound handshakes: an idle one is evicted for a new socket', async () => {
    const p = await pair({}, { maxInboundHandshakes: 2, handshakeTimeoutMs: 60_000, firstMessageTimeoutMs: 60_000 })
    cleanups.push(p.teardown)
    const s1 = raw(p.addr)
    await s1.connected
    const s2 = raw(p.addr)
    await s2.connected
    await until(() => stats(p.listener).handshaking === 2)
    const s3 = raw(p.addr)
    await s1.closed // the oldest socket that sent nothing made room
    expect(stats(p.listener)).toMatchObject({ evicted: 1, refused: 0, handshaking: 2 })
    expect(s2.socket.destroyed).toBe(false)
    expect(s3.socket.destroyed).toBe(false)
    s2.socket.destroy()
    s3.socket.destroy()
    await Promise.all([s2.closed, s3.closed])
    await until(() => stats(p.listener).handshaking === 0)
    await stillServes(p)
  })

  it('dial: handshake timeout against a silent server, AbortSignal, unreachable port', async () => {
    const accepted: Socket[] = []
    const silent = createServer((s) => { s.on('error', () => {}); accepted.push(s) })
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
    cleanups.push(() => new Promise<void>((r) => { for (const s of accepted) s.destroy(); silent.close(() => r()) }))
    const port = (silent.address() as { port: number }).port
    const n = node({ handshakeTimeoutMs: 100 })
    cleanups.push(() => n.transport.close())
    const t = await rejection(n.transport.dial(`tcp://127.0.0.1:${port}`))
    expect(t.name).toBe('HandshakeTimeoutError')
    expect(t.code).toBe('ERR_HANDSHAKE_TIMEOUT')

    const n2 = node({ handshakeTimeoutMs: 60_000 })
    cleanups.push(() => n2.transport.close())
    const ac = new AbortController()
    const dialing = n2.transport.dial(`tcp://127.0.0.1:${port}`, { signal: ac.signal })
    setTimeout(() => ac.abort(), 50)
    expect((await rejection(dialing)).name).toBe('AbortError')
    expect((await rejection(n2.transport.dial(`tcp://127.0.0.1:${port}`, { signal: AbortSignal.abort() }))).name).toBe('AbortError')
    expect(n2.transport.connectionCount).toBe(0)

    // a port nobody listens on (bind one, close it)
    const tmp = createServer()
    await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r))
    const freePort = (tmp.address() as { port: number }).port
    await new Promise<void>((r) => tmp.close(() => r()))
    expect((await rejection(n2.transport.dial(`tcp://127.0.0.1:${freePort}`))).name).toBe('UnreachableError')
  })
})

describe('tcp transport: man in the middle', () => {
  it('a replayed record aborts the connection with ReplayedRecordError', async () => {
    const p = await pair()
    cleanups.push(p.teardown)
    // c2s frames: 0 = handshake msg1, 1 = msg3, 2.. = records. Replay record #2 right after itself.
    const proxy = await startProxy(p.addr, (dir, i, f) => (dir === 'c2s' && i === 3 ? [f, f] : [f]))
    cleanups.push(proxy.close)
    const conn = await p.a.transport.dial(proxy.addr, { remotePeer: p.b.identity.did })
    const inb = await p.nextInbound()
    await conn.send(new Uint8Array([1]))
    await conn.send(new Uint8Array([2]))
    const got: number[] = []
    const err = await rejection((async () => { for await (const f of inb) got.push(f[0]!) })())
    expect(err.name).toBe('ReplayedRecordError')
    expect(err.code).toBe('ERR_REPLAYED_RECORD')
    // the replay may arrive in the same chunk as record 2, and an abort drops undelivered frames
    expect(got[0]).toBe(1)
    expect(got.length).toBeLessThanOrEqual(2)
    expect(inb.status).toBe('closed')
    await conn.closed
    await stillServes(p)
  })

  it('records that arrive in the same chunk as the last handshake message are kept', async () => {
    const p = await pair()
    cleanups.push(p.teardown)
    let held: WireFrame | undefined
    const proxy = await startProxy(p.addr, (dir, i, f) => {
      if (dir !== 'c2s') return [f]
      if (i === 1) { held = f; return [] } // hold msg3 ...
      if (i === 2) return [held as WireFrame, f] // ... and release it together with the first record
      return [f]
    })
    cleanups.push(proxy.close)
    const conn = await p.a.transport.dial(proxy.addr)
    await conn.send(new Uint8Array([7, 7]))
    await conn.send(new Uint8Array([8]))
    const inb = await p.nextInbound()
    const got = await collect(inb, 2)
    expect(got.map((f) => [...f])).toEqual([[7, 7], [8]])
  })

  it('a flipped bit in a record aborts the connection with BadRecordError', async () => {
    const p = await pair()
    cleanups.push(p.teardown)
    const proxy = await startProxy(p.addr, (dir, i, f) => {
      if (dir === 'c2s' && i === 3) f.body[f.body.length - 1]! ^= 1
      return [f]
    })
    cleanups.push(proxy.close)
    const conn = await p.a.transport.dial(proxy.addr)
    const inb = await p.nextInbound()
    await conn.send(new Uint8Array([1]))
    await conn.send(new Uint8Array([2]))
    const err = await rejection(collect(inb, 3))
    expect(err.name).toBe('BadRecordError')
  })

  // the record kind travels in the clear (first body byte) but is bound into the AEAD as associated data
  for (const [from, to] of [[0, 3], [0, 1], [0, 2], [0, 9]] as const) {
    it(`rewriting the clear record kind ${from} -> ${to} aborts with BadRecordError (nothing delivered)`, async () => {
      const p = await pair()
      cleanups.push(p.teardown)
      const proxy = await startProxy(p.addr, (dir, i, f) => {
        if (dir === 'c2s' && i === 3) {
          expect(f.body[0]).toBe(from)
          f.body[0] = to
        }
        return [f]
      })
      cleanups.push(proxy.close)
      const conn = await p.a.transport.dial(proxy.addr)
      const inb = await p.nextInbound()
      await conn.send(new Uint8Array(1)) // frame #2 c2s (after m1, m3)
      await conn.send(new Uint8Array(64)) // frame #3: rewritten
      const it = inb[Symbol.asyncIterator]()
      expect((await it.next()).value).toEqual(new Uint8Array(1))
      const err = await rejection(it.next())
      expect(err.name).toBe('BadRecordError')
      expect(err.code).toBe('ERR_BAD_RECORD')
    })
  }

  for (const [dir, index] of [['c2s', 0], ['s2c', 0], ['c2s', 1]] as const) {
    it(`rewriting handshake message ${dir}#${index} makes the handshake fail`, async () => {
      const p = await pair({ handshakeTimeoutMs: 2_000 })
      cleanups.push(p.teardown)
      const proxy = await startProxy(p.addr, (d, i, f) => {
        if (d === dir && i === index) f.body[Math.floor(f.body.length / 2)]! ^= 0x40
        return [f]
      })
      cleanups.push(proxy.close)
      let inboundCount = 0
      const dialing = p.a.transport.dial(proxy.addr).then(async (c) => {
        // the initiator finishes before the responder checks msg3: the responder must then drop it
        const err = await rejection(collect(c, 1))
        return { c, err }
      })
      const res = await dialing.then((v) => v, (err: Error) => err)
      if (res instanceof Error) {
        expect(res.name).toBe('HandshakeError')
      } else {
        expect(res.err.name).toMatch(/ConnectionResetError|ConnectionClosedError/)
      }
      await until(() => stats(p.listener).failed === 1)
      inboundCount = stats(p.listener).accepted
      expect(inboundCount).toBe(0)
    })
  }

  it('keep-alive closes a connection whose peer went silent', async () => {
    const p = await pair({ keepAliveIntervalMs: 40, maxMissedPongs: 2 })
    cleanups.push(p.teardown)
    const proxy = await startProxy(p.addr)
    cleanups.push(proxy.close)
    const conn = await p.a.transport.dial(proxy.addr)
    await p.nextInbound()
    proxy.blackhole()
    const err = await rejection(collect(conn, 1))
    expect(err.name).toBe('KeepAliveTimeoutError')
    expect(err.code).toBe('ERR_KEEPALIVE_TIMEOUT')
  })

  it('keep-alive does not blame the peer while our own consumer holds the socket paused', async () => {
    // maxMissedPongs 3: tolerant of a loaded machine, still far below the ~16 silent intervals below
    const p = await pair({ keepAliveIntervalMs: 25, maxMissedPongs: 3, maxInboundBufferBytes: 64 * 1024 })
    cleanups.push(p.teardown)
    const conn = await p.a.transport.dial(p.addr)
    const inb = await p.nextInbound()
    // b floods a, which never reads: a pauses its socket, b's writes block; both go silent
    const flood = (async () => { for (;;) await inb.send(new Uint8Array(16 * 1024)) })().catch(() => {})
    await new Promise((r) => setTimeout(r, 400)) // ~16 keep-alive intervals of mutual silence
    expect(conn.status).toBe('open')
    expect(inb.status).toBe('open')
    await conn.close()
    await flood
  })

  it('closes gracefully when the session reaches its lifetime', async () => {
    const handshake: HandshakeFn<Identity> = (io, o) => performHandshake(io, { ...o, lifetimeMs: 150 })
    const p = await pair({ handshake })
    cleanups.push(p.teardown)
    const conn = await p.a.transport.dial(p.addr)
    const inb = await p.nextInbound()
    await conn.send(new Uint8Array([1]))
    expect(await collect(inb, 1)).toHaveLength(1)
    const rest: Uint8Array[] = []
    for await (const f of inb) rest.push(f) // ends without an error
    await conn.closed
    expect(rest).toEqual([])
    expect(conn.status).toBe('closed')
  })

  it('keep-alive pings keep an idle healthy connection open', async () => {
    // only a pings (b's own pings would count as liveness): a stays open only if b answers with pongs
    const p = await pair({ keepAliveIntervalMs: 20, maxMissedPongs: 3 }, { keepAliveIntervalMs: 0 })
    cleanups.push(p.teardown)
    const conn = await p.a.transport.dial(p.addr)
    const inb = await p.nextInbound()
    await new Promise((r) => setTimeout(r, 300)) // ~15 intervals: 5x the tolerance if pongs were broken
    expect(conn.status).toBe('open')
    expect(inb.status).toBe('open')
    await conn.send(new Uint8Array([5]))
    expect([...(await collect(inb, 1))[0]!]).toEqual([5])
  })
})

describe('tcp transport: flow control and limits', () => {
  it('pauses the socket when the consumer lags and send() waits instead of queueing', async () => {
    const limit = 256 * 1024
    const p = await pair({}, { maxInboundBufferBytes: limit })
    cleanups.push(p.teardown)
    const conn = await p.a.transport.dial(p.addr)
    const inb = (await p.nextInbound()) as Connection & { inboundBufferedBytes: number }
    const frame = new Uint8Array(16 * 1024)
    const total = 4096 // 64 MiB: more than every kernel buffer on the path
    let sent = 0
    const sender = (async () => {
      for (let i = 0; i < total; i++) {
        frame[0] = i & 0xff
        await conn.send(frame)
        sent++
      }
    })()
    // wait until the sender is blocked: progress stops
    let last = -1
    while (sent !== last) {
      last = sent
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(sent).toBeLessThan(total)
    expect(inb.inboundBufferedBytes).toBeGreaterThan(0)
    expect(inb.inboundBufferedBytes).toBeLessThanOrEqual(limit + 128 * 1024)
    let i = 0
    for await (const f of inb) {
      expect(f[0]).toBe(i & 0xff)
      if (++i === total) break
    }
    await sender
    expect(sent).toBe(total)
  })

  it('a send blocked by backpressure can be cancelled with its AbortSignal', async () => {
    const p = await pair({}, { maxInboundBufferBytes: 64 * 1024 })
    cleanups.push(p.teardown)
    const conn = await p.a.transport.dial(p.addr)
    await p.nextInbound()
    const frame = new Uint8Array(64 * 1024)
    const ac = new AbortController()
    let blocked: Promise<void> | undefined
    for (let i = 0; i < 10_000 && blocked === undefined; i++) {
      const s = conn.send(frame, { signal: ac.signal })
      const settled = await Promise.race([s.then(() => true), new Promise((r) => setTimeout(() => r(false), 100))])
      if (!settled) blocked = s
    }
    expect(blocked).toBeDefined()
    ac.abort()
    expect((await rejection(blocked!)).name).toBe('AbortError')
    expect(conn.status).toBe('open')
  })

  it('rejects an oversized send with FrameTooLargeError and stays usable', async () => {
    const p = await pair({ maxFrameSize: 1024 })
    cleanups.push(p.teardown)
    const conn = await p.a.transport.dial(p.addr)
    const inb = await p.nextInbound()
    const err = await rejection(conn.send(new Uint8Array(1025)))
    expect(err.name).toBe('FrameTooLargeError')
    expect(err.code).toBe('ERR_FRAME_TOO_LARGE')
    await conn.send(new Uint8Array(1024))
    expect((await collect(inb, 1))[0]!.length).toBe(1024)
  })

  it('a receiver with a smaller maxFrameSize aborts on an oversized record', async () => {
    const p = await pair({ maxFrameSize: 4096 }, { maxFrameSize: 1024 })
    cleanups.push(p.teardown)
    const conn = await p.a.transport.dial(p.addr)
    const inb = await p.nextInbound()
    await conn.send(new Uint8Array(4000))
    const err = await rejection(collect(inb, 1))
    expect(err).toBeInstanceOf(LimitExceededError)
    expect(inb.status).toBe('closed')
  })

  it('serves many concurrent connections', async () => {
    const p = await pair()
    cleanups.push(p.teardown)
    const n = 60
    const echo = (c: Connection): void => {
      void (async () => { for await (const f of c) await c.send(f) })().catch(() => {})
    }
    const echoing = (async () => { for (let i = 0; i < n; i++) echo(await p.nextInbound()) })()
    const conns = await Promise.all(Array.from({ length: n }, () => p.a.transport.dial(p.addr, { remotePeer: p.b.identity.did })))
    await echoing
    const replies = await Promise.all(conns.map(async (c, i) => {
      await c.send(new Uint8Array([i]))
      return (await collect(c, 1))[0]![0]
    }))
    expect(replies).toEqual(Array.from({ length: n }, (_, i) => i))
    expect(p.a.transport.connectionCount).toBe(n)
    await Promise.all(conns.map((c) => c.close()))
    expect(p.a.transport.connectionCount).toBe(0)
  })

  it('maxConnections refuses extra dials', async () => {
    const p = await pair({ maxConnections: 2 })
    cleanups.push(p.teardown)
    await p.a.transport.dial(p.addr)
    await p.a.transport.dial(p.addr)
    const err = await rejection(p.a.transport.dial(p.addr))
    expect(err.name).toBe('TooManyConnectionsError')
  })

  it('abort() drops the connection: local reads fail with the error, the remote sees a reset', async () => {
    const p = await pair()
    cleanups.push(p.teardown)
    const conn = await p.a.transport.dial(p.addr)
    const inb = await p.nextInbound()
    const boom = new Error('boom')
    const reading = rejection(collect(conn, 1))
    conn.abort(boom)
    expect(await reading).toBe(boom)
    await conn.closed
    expect(conn.status).toBe('closed')
    expect((await rejection(collect(inb, 1))).name).toBe('ConnectionResetError')
    expect((await rejection(conn.send(new Uint8Array(1)))).name).toBe('ConnectionClosedError')
  })

  it('transport.close() closes listeners and every connection', async () => {
    const p = await pair()
    const conn = await p.a.transport.dial(p.addr)
    const inb = await p.nextInbound()
    await p.b.transport.close()
    await Promise.all([conn.closed, inb.closed])
    expect(conn.status).toBe('closed')
    expect((await rejection(p.a.transport.dial(p.addr))).name).toBe('UnreachableError')
    await p.a.transport.close()
  })
})
