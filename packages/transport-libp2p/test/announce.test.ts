/**
 * `announce` and `libp2pOptions.addresses`: the addresses are merged key by key (the first listen
 * address and the extra listen ones are all bound), and the announced address is what the listener
 * reports and what identify tells a stock js-libp2p node.
 */
// the package entry first: it installs the Promise.withResolvers polyfill the libp2p code below needs
import { libp2pTransport, parseLibp2pAddress } from '../src/index.js'
import { generateIdentity } from '@kos-mesh/did-security'
import { identify } from '@libp2p/identify'
import type { Libp2p } from '@libp2p/interface'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import type { Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => {})
})

const ANNOUNCED = '/ip4/192.0.2.7/tcp/4747'

/** The addresses the host's transports really bound (js-libp2p's TransportManager). */
function boundAddrs(host: Libp2p): string[] {
  const tm = (host as unknown as { components: { transportManager: { getAddrs(): Multiaddr[] } } }).components.transportManager
  return tm.getAddrs().map((m) => m.toString())
}

async function until(cond: () => Promise<boolean> | boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

describe('announce and merged libp2pOptions.addresses', () => {
  it('binds the listen() address and the extra listen ones, and announces the configured address', async () => {
    const identity = generateIdentity()
    const t = libp2pTransport({ announce: [ANNOUNCED], libp2pOptions: { addresses: { listen: ['/ip4/127.0.0.1/tcp/0/ws'] } } })({ identity })
    cleanup.push(() => t.close())
    const l = await t.listen('libp2p:///ip4/127.0.0.1/tcp/0', () => {})
    const host = t.libp2p!
    const bound = boundAddrs(host)
    // both kept: the listen() address (tcp) and the one of libp2pOptions.addresses (ws)
    expect(bound.some((a) => /^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/.test(a))).toBe(true)
    expect(bound.some((a) => /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/ws$/.test(a))).toBe(true)
    // what the host and the listener tell others: the announced address only
    expect(host.getMultiaddrs().map((m) => m.toString())).toEqual([`${ANNOUNCED}/p2p/${host.peerId.toString()}`])
    expect(l.addrs()).toEqual([`libp2p://${ANNOUNCED}/p2p/${host.peerId.toString()}`])
    expect(parseLibp2pAddress(l.addrs()[0]!).peerId).toBe(host.peerId.toString())

    // a stock js-libp2p node dials the real address and learns the announced one through identify
    const stock = await createLibp2p({
      transports: [tcp(), webSockets()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify(), ping: ping() },
    })
    cleanup.push(async () => { await stock.stop() })
    const tcpAddr = bound.find((a) => !a.endsWith('/ws'))!
    const { multiaddr } = await import('@multiformats/multiaddr')
    await stock.dial(multiaddr(`${tcpAddr}/p2p/${host.peerId.toString()}`))
    await until(async () => {
      const p = await stock.peerStore.get(host.peerId).catch(() => undefined)
      return p?.addresses.some((a) => a.multiaddr.toString() === ANNOUNCED) === true
    }, 'identify to carry the announced address')
    const peer = await stock.peerStore.get(host.peerId)
    expect(peer.addresses.map((a) => a.multiaddr.toString())).toEqual([ANNOUNCED])
  })

  it('refuses an announce entry that is not a multiaddr', () => {
    const identity = generateIdentity()
    expect(() => libp2pTransport({ announce: ['not a multiaddr'] })({ identity })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => libp2pTransport({ announce: 'x' as unknown as string[] })({ identity })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
  })
})
