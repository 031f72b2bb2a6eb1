import { connect } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { generateIdentity } from '@kos-mesh/did-security'
import type { Connection } from '@kos-mesh/interface'
import { tcp, type TcpTransportApi } from '../src/index.js'
import type { TcpListener } from '../src/listener.js'
import { collect, rejection } from './fixtures/helpers.js'
import { ManualClock } from './fixtures/manual-clock.js'
import { startProxy } from './fixtures/proxy.js'

const HOUR = 3_600_000
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function transport(init: Parameters<typeof tcp>[0], clock?: ManualClock): { did: string; t: TcpTransportApi } {
  const identity = generateIdentity()
  const t = tcp(init)({ identity, ...(clock === undefined ? {} : { clock }) })
  cleanups.push(() => t.close())
  return { did: identity.did, t }
}

/** Lets node:net run (one I/O turn at a time) until `cond` holds. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r))
}

// Every duration below is an hour or more of the injected clock: only that clock can make them
// pass while the test runs, so each test fails if the transport took the time anywhere else.
describe('tcp transport: time and timers come from components.clock', () => {
  it('drops a silent inbound socket when the injected clock passes firstMessageTimeoutMs', async () => {
    const clock = new ManualClock()
    const b = transport({ firstMessageTimeoutMs: HOUR, handshakeTimeoutMs: 2 * HOUR }, clock)
    let accepted = 0
    const listener = await b.t.listen('tcp://127.0.0.1:0', () => { accepted++ })
    const m = /^tcp:\/\/([^:]+):(\d+)/.exec(listener.addrs()[0] as string) as RegExpExecArray
    const socket = connect({ host: m[1] as string, port: Number(m[2]) })
    socket.on('error', () => {})
    cleanups.push(() => { socket.destroy() })
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    await until(() => (listener as TcpListener).stats().handshaking === 1)
    clock.advance(HOUR - 1)
    expect((listener as TcpListener).stats().handshaking).toBe(1)
    clock.advance(1)
    await closed
    expect((listener as TcpListener).stats()).toMatchObject({ failed: 1, handshaking: 0 })
    expect(accepted).toBe(0)
  })

  it('keep-alive runs on the injected clock: a silent peer is dropped after maxMissedPongs intervals of it', async () => {
    const clock = new ManualClock()
    const b = transport({ keepAliveIntervalMs: 0 })
    const inbound: Connection[] = []
    const listener = await b.t.listen('tcp://127.0.0.1:0', (c) => { inbound.push(c) })
    const proxy = await startProxy(listener.addrs()[0] as string)
    cleanups.push(proxy.close)
    const a = transport({ keepAliveIntervalMs: HOUR, maxMissedPongs: 2 }, clock)
    const conn = await a.t.dial(proxy.addr, { remotePeer: b.did })
    await until(() => inbound.length === 1)
    proxy.blackhole()
    const reading = rejection(collect(conn, 1))
    for (let i = 0; i < 6 && conn.status === 'open'; i++) {
      clock.advance(HOUR)
      await new Promise((r) => setImmediate(r))
    }
    const err = await reading
    expect(err.name).toBe('KeepAliveTimeoutError')
  })

  it('hands the clock to the handshake: the session lifetime and the close before expiry follow it', async () => {
    const clock = new ManualClock()
    const b = transport({ keepAliveIntervalMs: 0 }, clock)
    const inbound: Connection[] = []
    const listener = await b.t.listen('tcp://127.0.0.1:0', (c) => { inbound.push(c) })
    const a = transport({ keepAliveIntervalMs: 0 }, clock)
    const conn = await a.t.dial(listener.addrs()[0] as string, { remotePeer: b.did })
    await until(() => inbound.length === 1)
    const inb = inbound[0] as Connection
    await conn.send(new Uint8Array([7]))
    expect([...((await collect(inb, 1))[0] as Uint8Array)]).toEqual([7])
    // did-security sessions live 24 h; the transport closes 1 s before the keys expire
    clock.advance(24 * HOUR - 1_001)
    expect(conn.status).toBe('open')
    clock.advance(1)
    const rest: Uint8Array[] = []
    for await (const f of inb) rest.push(f) // ends without an error: a graceful close
    await conn.closed
    expect(rest).toEqual([])
    expect(conn.status).toBe('closed')
  })

  it('refuses a components.clock that is not a Clock', () => {
    const identity = generateIdentity()
    expect(() => tcp()({ identity, clock: { now: () => 0 } as never })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
  })
})
