/**
 * Inbound handshake slots under a flood of idle or stalled sockets (security review PoC 6): idle
 * sockets must not be able to keep honest peers out. Real sockets, real handshakes.
 */
import { connect, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { encodeFrame } from '@kos-mesh/klp-codec'
import { performHandshake, type Identity } from '@kos-mesh/did-security'
import { FRAME_KIND_HANDSHAKE, type HandshakeFn } from '../src/index.js'
import { ipKey } from '../src/address.js'
import type { TcpListener } from '../src/listener.js'
import { collect, pair, rejection } from './fixtures/helpers.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

interface Raw { socket: Socket; connected: Promise<void>; closed: Promise<void>; isClosed(): boolean }

/** A raw TCP client from `localAddress` (any 127.0.0.0/8 address works on loopback). */
function raw(addr: string, localAddress?: string): Raw {
  const port = Number(/:(\d+)$/.exec(addr)?.[1])
  const socket = connect({ host: '127.0.0.1', port, ...(localAddress === undefined ? {} : { localAddress }) })
  socket.on('error', () => {})
  socket.resume()
  cleanups.push(() => { socket.destroy() })
  let closed = false
  return {
    socket,
    connected: new Promise((resolve) => socket.once('connect', () => resolve())),
    closed: new Promise((resolve) => socket.once('close', () => { closed = true; resolve() })),
    isClosed: () => closed,
  }
}

const stats = (l: unknown) => (l as TcpListener).stats()
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5))
}

/** A responder handshake that reads the first message, then stalls until aborted (a slow peer). */
function stallAfterFirstMessage(seen: { n: number }): HandshakeFn<Identity> {
  return async (io, opts) => {
    if (opts.role === 'initiator') return performHandshake(io as never, opts as never) as never
    await io.read({ ...(opts.signal === undefined ? {} : { signal: opts.signal }) })
    seen.n++
    return new Promise((_resolve, reject) => {
      opts.signal?.addEventListener('abort', () => reject(opts.signal?.reason), { once: true })
    })
  }
}

const firstMessage = () => encodeFrame(new Uint8Array(32).fill(7), { kind: FRAME_KIND_HANDSHAKE })

describe('tcp transport: inbound handshake slots', () => {
  it('64 idle sockets (PoC 6) do not keep an honest dial out', async () => {
    const p = await pair()
    cleanups.push(p.teardown)
    const idle = Array.from({ length: 64 }, () => raw(p.addr))
    await Promise.all(idle.map((s) => s.connected))
    // all 64 reached the listener: each one is pending, was evicted or was refused
    await until(() => { const s = stats(p.listener); return s.handshaking + s.waiting + s.evicted + s.refused >= 64 })
    const conn = await p.a.transport.dial(p.addr, { remotePeer: p.b.identity.did, signal: AbortSignal.timeout(3_000) })
    const inb = await p.nextInbound()
    await conn.send(new Uint8Array([6]))
    expect([...(await collect(inb, 1))[0]!]).toEqual([6])
    expect(stats(p.listener).evicted).toBeGreaterThan(0)
    await conn.close()
  })

  it('a socket that sends nothing is dropped after firstMessageTimeoutMs', async () => {
    const p = await pair({}, { firstMessageTimeoutMs: 100, handshakeTimeoutMs: 60_000 })
    cleanups.push(p.teardown)
    const s = raw(p.addr)
    await s.connected
    await s.closed
    expect(stats(p.listener)).toMatchObject({ failed: 1, handshaking: 0, evicted: 0 })
    expect(p.b.transport.connectionCount).toBe(0)
  })

  it('a socket that finds the slots full of fresh handshakes waits (unread) instead of evicting them', async () => {
    const seen = { n: 0 }
    const p = await pair({}, { maxInboundHandshakes: 2, handshakeStallMs: 60_000, handshakeTimeoutMs: 60_000, handshake: stallAfterFirstMessage(seen) })
    cleanups.push(p.teardown)
    const busy = [raw(p.addr), raw(p.addr)]
    await Promise.all(busy.map((s) => s.connected))
    for (const s of busy) s.socket.write(firstMessage())
    await until(() => seen.n === 2)
    const s3 = raw(p.addr)
    await s3.connected
    s3.socket.write(firstMessage())
    await until(() => stats(p.listener).waiting === 1)
    expect(stats(p.listener)).toMatchObject({ refused: 0, evicted: 0, handshaking: 2, waiting: 1 })
    expect(seen.n).toBe(2) // the waiting socket is not read: its first message is not processed
    expect(busy.every((s) => !s.isClosed())).toBe(true)
    // a slot frees: the waiting socket gets it and its handshake starts
    busy[0]!.socket.destroy()
    await until(() => seen.n === 3)
    expect(stats(p.listener)).toMatchObject({ refused: 0, evicted: 0, handshaking: 2, waiting: 0 })
  })

  it('a handshake stalled after its first message is evicted for a waiting socket after handshakeStallMs', async () => {
    const seen = { n: 0 }
    const p = await pair({}, { maxInboundHandshakes: 2, handshakeStallMs: 200, handshakeTimeoutMs: 60_000, handshake: stallAfterFirstMessage(seen) })
    cleanups.push(p.teardown)
    const busy = [raw(p.addr), raw(p.addr)]
    await Promise.all(busy.map((s) => s.connected))
    for (const s of busy) s.socket.write(firstMessage())
    await until(() => seen.n === 2)
    const s3 = raw(p.addr)
    await s3.connected
    s3.socket.write(firstMessage())
    // the oldest stalled handshake makes room; the newcomer's handshake runs
    await busy[0]!.closed
    await until(() => seen.n === 3)
    expect(stats(p.listener)).toMatchObject({ refused: 0, evicted: 1, handshaking: 2, waiting: 0 })
    expect(busy[1]!.isClosed()).toBe(false)
    expect(s3.isClosed()).toBe(false)
  })

  it('maxInboundHandshakesPerIp caps one address without touching others; its waiting room is bounded too', async () => {
    const seen = { n: 0 }
    const p = await pair({}, { maxInboundHandshakesPerIp: 2, handshakeStallMs: 60_000, handshakeTimeoutMs: 60_000, handshake: stallAfterFirstMessage(seen) })
    cleanups.push(p.teardown)
    const busy = [raw(p.addr, '127.0.0.2'), raw(p.addr, '127.0.0.2')]
    await Promise.all(busy.map((s) => s.connected))
    for (const s of busy) s.socket.write(firstMessage())
    await until(() => seen.n === 2)
    // two more from the same address wait (the waiting room per address holds maxInboundHandshakesPerIp)
    const waiters = [raw(p.addr, '127.0.0.2'), raw(p.addr, '127.0.0.2')]
    await Promise.all(waiters.map((s) => s.connected))
    await until(() => stats(p.listener).waiting === 2)
    // a fifth is refused
    const fifth = raw(p.addr, '127.0.0.2')
    await fifth.closed
    expect(stats(p.listener)).toMatchObject({ refused: 1, handshaking: 2, waiting: 2 })
    // another address still gets a slot at once and is served
    const other = raw(p.addr, '127.0.0.3')
    await other.connected
    other.socket.write(firstMessage())
    await until(() => seen.n === 3)
    expect(stats(p.listener)).toMatchObject({ refused: 1, handshaking: 3, waiting: 2 })
  })

  it('an idle socket from the same address gives way under maxInboundHandshakesPerIp', async () => {
    const p = await pair({}, { maxInboundHandshakesPerIp: 1, firstMessageTimeoutMs: 60_000, handshakeTimeoutMs: 60_000 })
    cleanups.push(p.teardown)
    const idle = raw(p.addr)
    await idle.connected
    await until(() => stats(p.listener).handshaking === 1)
    const conn = await p.a.transport.dial(p.addr, { remotePeer: p.b.identity.did })
    await p.nextInbound()
    await idle.closed
    expect(stats(p.listener)).toMatchObject({ evicted: 1, accepted: 1 })
    await conn.close()
  })

  it('maxConnectionsPerIp: inbound and outbound are counted separately', async () => {
    const p = await pair({ maxConnectionsPerIp: 2 }, { maxConnectionsPerIp: 2 })
    cleanups.push(p.teardown)
    await p.a.transport.dial(p.addr)
    await p.a.transport.dial(p.addr)
    // a's own outbound budget for 127.0.0.1 is used up: refused before connecting
    expect((await rejection(p.a.transport.dial(p.addr))).name).toBe('TooManyConnectionsError')
    // b holds 2 inbound connections from 127.0.0.1, and can still dial out to that address
    const l2 = await p.a.transport.listen('tcp://127.0.0.1:0', () => {})
    const out = await p.b.transport.dial(l2.addrs()[0]!, { remotePeer: p.a.identity.did })
    expect(out.status).toBe('open')
    // a third inbound socket from 127.0.0.1 at b is refused (nothing idle to evict)
    const c = raw(p.addr)
    await c.closed
    expect(stats(p.listener).refused).toBe(1)
    await out.close()
  })

  it('rejects invalid new options', async () => {
    const { tcp } = await import('../src/index.js')
    const { generateIdentity } = await import('@kos-mesh/did-security')
    for (const bad of [{ firstMessageTimeoutMs: 0 }, { maxInboundHandshakesPerIp: -1 }, { maxConnectionsPerIp: Number.NaN }, { handshakeStallMs: 0 }]) {
      expect(() => tcp(bad)({ identity: generateIdentity() })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    }
  })
})

describe('ipKey', () => {
  it('unwraps IPv4-mapped IPv6, groups IPv6 by /64, keeps IPv4 and names', () => {
    expect(ipKey('::ffff:10.0.0.1')).toBe('10.0.0.1')
    expect(ipKey('10.0.0.1')).toBe('10.0.0.1')
    expect(ipKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64')
    expect(ipKey('2001:DB8:1:2::9')).toBe('2001:db8:1:2::/64')
    expect(ipKey('1:2::3:4:5:6:7')).toBe('1:2:0:3::/64')
    expect(ipKey('::1')).toBe('0:0:0:0::/64')
    expect(ipKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64')
    expect(ipKey('Example.COM')).toBe('example.com')
    expect(ipKey(undefined)).toBe('?')
  })
})
