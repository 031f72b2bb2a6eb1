/**
 * Issue 8, point 5: sockets that send only the first handshake message and then stall (reopening
 * when dropped) must not keep honest peers out. Before the fix, 8 such sockets made a node refuse
 * 40 of 40 new connections from their address, and 8 addresses would fill all 64 slots. Real
 * sockets and real handshakes on loopback (127.0.0.x source addresses); the assertions count
 * outcomes, never time.
 */
import { connect, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { encodeFrame } from '@kos-mesh/klp-codec'
import { createHandshake, generateIdentity } from '@kos-mesh/did-security'
import { FRAME_KIND_HANDSHAKE } from '../src/index.js'
import type { TcpListener } from '../src/listener.js'
import { collect, pair } from './fixtures/helpers.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

const stats = (l: unknown) => (l as TcpListener).stats()
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5))
}

/**
 * `n` attacker sockets from `localAddress`: each sends a genuine first handshake message (a fresh
 * initiator's msg1, as the outside attack did) and then never answers; each one that is dropped is
 * reopened at once.
 */
function stallers(addr: string, n: number, localAddress: string): { opened(): number; stop(): void } {
  const port = Number(/:(\d+)$/.exec(addr)?.[1])
  const identity = generateIdentity()
  const live = new Set<Socket>()
  let stopped = false
  let opened = 0
  const open = (): void => {
    if (stopped) return
    opened++
    const s = connect({ host: '127.0.0.1', port, localAddress })
    live.add(s)
    s.on('error', () => {})
    s.once('connect', () => {
      const msg1 = createHandshake({ identity, role: 'initiator' }).start() as Uint8Array
      s.write(encodeFrame(msg1, { kind: FRAME_KIND_HANDSHAKE }))
    })
    s.resume() // read (and ignore) the server's reply, never answer it
    s.once('close', () => {
      live.delete(s)
      setImmediate(open)
    })
  }
  for (let i = 0; i < n; i++) open()
  const handle = {
    opened: () => opened,
    stop: () => {
      stopped = true
      for (const s of live) s.destroy()
    },
  }
  cleanups.push(handle.stop)
  return handle
}

/** Dials `times` times one after the other; each success must carry a frame. Returns the successes. */
async function honestDials(p: Awaited<ReturnType<typeof pair>>, times: number): Promise<{ ok: number; errors: string[]; ms: number[] }> {
  let ok = 0
  const errors: string[] = []
  const ms: number[] = []
  for (let i = 0; i < times; i++) {
    const t0 = performance.now()
    try {
      const conn = await p.a.transport.dial(p.addr, { remotePeer: p.b.identity.did })
      const inb = await p.nextInbound()
      await conn.send(new Uint8Array([i]))
      const [f] = await collect(inb, 1)
      if (f?.[0] === i) ok++
      ms.push(performance.now() - t0)
      await conn.close()
    } catch (err) {
      errors.push((err as Error).name)
    }
  }
  return { ok, errors, ms }
}

const SERVER = { handshakeStallMs: 500 } as const

describe('tcp transport: stalled handshakes cannot hold the slots (issue 8.5)', () => {
  it('8 sockets from one address that send msg1 and stall (reopening when dropped) do not keep an honest client of that address out', async () => {
    const p = await pair({}, SERVER)
    cleanups.push(p.teardown)
    const attack = stallers(p.addr, 8, '127.0.0.1')
    // all 8 hold a slot with their first message in
    await until(() => stats(p.listener).handshaking === 8)
    const res = await honestDials(p, 10)
    const s = stats(p.listener)
    console.log(`[one address] honest ${res.ok}/10 (errors: ${res.errors.join(', ') || 'none'}); dial ms ${res.ms.map((v) => v.toFixed(0)).join(' ')}; attacker sockets opened ${attack.opened()}; listener ${JSON.stringify(s)}`)
    expect(res.ok).toBeGreaterThanOrEqual(9)
    expect(s.evicted).toBeGreaterThan(0) // the stalled handshakes were evicted, not the honest ones
    attack.stop()
  })

  it('8 addresses x 8 stalled sockets (all 64 slots) do not keep an honest client of another address out', async () => {
    const p = await pair({}, SERVER)
    cleanups.push(p.teardown)
    const attacks = Array.from({ length: 8 }, (_, i) => stallers(p.addr, 8, `127.0.0.${i + 2}`))
    await until(() => stats(p.listener).handshaking === 64)
    const res = await honestDials(p, 10)
    const s = stats(p.listener)
    console.log(`[8 addresses] honest ${res.ok}/10 (errors: ${res.errors.join(', ') || 'none'}); dial ms ${res.ms.map((v) => v.toFixed(0)).join(' ')}; attacker sockets opened ${attacks.reduce((n, a) => n + a.opened(), 0)}; listener ${JSON.stringify(s)}`)
    expect(res.ok).toBeGreaterThanOrEqual(9)
    expect(s.evicted).toBeGreaterThan(0)
    for (const a of attacks) a.stop()
  })
})
