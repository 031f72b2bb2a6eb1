/**
 * KLP on limited connections, through a circuit relay v2 server with its default limits (2 minutes,
 * 128 KiB per relayed connection). Without `allowLimitedConnections` a dial that only finds the
 * relayed connection fails with LimitedConnectionError; with it, KLP runs there and a send that would
 * pass the relay's data cap is refused with RelayDataLimitError before anything is sent, so the relay
 * never cuts the connection: every frame sent arrives, and the connection stays open.
 */
// the package entry first: it installs the Promise.withResolvers polyfill the libp2p code needs
import { libp2pTransport, reachabilityOptions, wireBytes, LIMITED_RESERVE_BYTES, type Libp2pTransportApi } from '../src/index.js'
import { generateIdentity } from '@kos-mesh/did-security'
import type { Connection } from '@kos-mesh/interface'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const cleanup: Array<() => Promise<unknown>> = []
afterAll(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => {})
})
function track(t: Libp2pTransportApi): Libp2pTransportApi {
  cleanup.push(() => t.close())
  return t
}

async function until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

// no DCUtR and no AutoNAT: the relayed connection stays the only one
const noUpgrade = { dcutr: false, autonat: false } as const

describe('KLP through a relay with default limits', () => {
  const privId = generateIdentity()
  let circuit = ''
  const received: Uint8Array[] = []

  beforeAll(async () => {
    const relay = track(libp2pTransport({ libp2pOptions: reachabilityOptions({ ...noUpgrade, relay: { limited: true } }) })({ identity: generateIdentity() }))
    const rl = await relay.listen('libp2p:///ip4/127.0.0.1/tcp/0', () => {})
    const relayAddr = (rl.addrs()[0] as string).slice('libp2p://'.length)
    // reachable only through its reservation: no direct listen address at all
    const priv = track(libp2pTransport({ allowLimitedConnections: true, libp2pOptions: reachabilityOptions(noUpgrade) })({ identity: privId }))
    await priv.listen(`libp2p://${relayAddr}/p2p-circuit`, (c: Connection) => {
      void (async () => { for await (const f of c) received.push(f) })().catch(() => {})
    })
    const host = priv.libp2p!
    await until(() => host.getMultiaddrs().some((m) => m.toString().includes('/p2p-circuit')), 'the relay reservation')
    circuit = host.getMultiaddrs().map((m) => m.toString()).find((m) => m.includes('/p2p-circuit'))!
  }, 30_000)

  it('refuses a limited connection by default with a typed error', async () => {
    const peer = track(libp2pTransport({ libp2pOptions: reachabilityOptions(noUpgrade) })({ identity: generateIdentity() }))
    await expect(peer.dial(`libp2p://${circuit}`, { remotePeer: privId.did })).rejects.toMatchObject({ name: 'LimitedConnectionError', code: 'ERR_LIMITED_CONNECTION' })
  })

  it('with allowLimitedConnections, runs KLP there and keeps within the data limit', async () => {
    const peer = track(libp2pTransport({ allowLimitedConnections: true, libp2pOptions: reachabilityOptions(noUpgrade) })({ identity: generateIdentity() }))
    const conn = await peer.dial(`libp2p://${circuit}`, { remotePeer: privId.did })
    expect(conn.remoteAddr).toContain('/p2p-circuit')
    const frame = new Uint8Array(8 * 1024).fill(7)
    let sent = 0
    let refused: { name?: string; code?: string } | undefined
    for (let i = 0; i < 64 && refused === undefined; i++) {
      try {
        await conn.send(frame)
        sent++
        // one frame at a time on the wire: what the relay counted is what limits.bytes shows
        await until(() => received.length === sent, `frame ${sent} at the other side`)
      } catch (err) {
        refused = err as { name?: string; code?: string }
      }
    }
    expect(refused).toMatchObject({ name: 'RelayDataLimitError', code: 'ERR_RELAY_DATA_LIMIT' })
    // 128 KiB both ways: some 8 KiB frames fit, and no more than the cap allows
    expect(sent).toBeGreaterThan(4)
    expect(wireBytes(sent * (frame.byteLength + 8))).toBeLessThanOrEqual(128 * 1024 - LIMITED_RESERVE_BYTES)
    // the relay did not cut the connection: it is open, and every frame sent arrived whole
    expect(conn.status).toBe('open')
    expect(received).toHaveLength(sent)
    expect(received.every((f) => f.byteLength === frame.byteLength && f[0] === 7)).toBe(true)
    // a frame that still fits goes through
    await conn.send(new Uint8Array(16).fill(1))
    await until(() => received.length === sent + 1, 'the small frame')
    await conn.close()
  })
})
