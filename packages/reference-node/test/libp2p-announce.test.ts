/**
 * `libp2p.announce`: the node's libp2p host announces the configured address instead of its listen
 * addresses; the node's record and what identify tells a peer show it.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createNode, libp2p, type KosMeshNode } from '../src/index.js'
import { libp2pInit, parseConfig, defaultConfig } from '../src/config.js'
import type { Libp2pTransportApi } from '@kos-mesh/transport-libp2p'

const ANNOUNCED = '/ip4/198.51.100.23/tcp/4747'
const nodes: KosMeshNode[] = []

afterEach(async () => {
  await Promise.allSettled(nodes.splice(0).map((n) => n.stop()))
})

async function until(what: string, cond: () => Promise<boolean> | boolean): Promise<void> {
  // bounded by the test timeout; polls, no timing assertion
  while (!(await cond())) await new Promise((r) => setTimeout(r, 25))
  expect(await cond(), what).toBe(true)
}

describe('libp2p.announce', () => {
  it('is a config key: checked, and passed to the transport', () => {
    const config = parseConfig({ ...defaultConfig(), listen: [], transport: 'libp2p', libp2p: { listen: ['/ip4/0.0.0.0/tcp/4747'], announce: [ANNOUNCED, '/dns4/node.example.org/tcp/4747'] } })
    expect(config.libp2p?.announce).toEqual([ANNOUNCED, '/dns4/node.example.org/tcp/4747'])
    expect(libp2pInit(config.libp2p).announce).toEqual([ANNOUNCED, '/dns4/node.example.org/tcp/4747'])
    const bad = (announce: unknown): unknown => parseConfig({ ...defaultConfig(), listen: [], transport: 'libp2p', libp2p: { listen: [], announce } })
    expect(() => bad(['/ip4/0.0.0.0/tcp/4747'])).toThrow(/libp2p\.announce\[0\]/)
    expect(() => bad(['/ip4/198.51.100.23/tcp/0'])).toThrow(/libp2p\.announce\[0\]/)
    expect(() => bad('/ip4/198.51.100.23/tcp/4747')).toThrow(/libp2p\.announce/)
    // and the opt-in to KLP on limited (relayed) connections
    const limited = parseConfig({ ...defaultConfig(), listen: [], transport: 'libp2p', libp2p: { listen: [], allowLimitedConnections: true } })
    expect(libp2pInit(limited.libp2p).allowLimitedConnections).toBe(true)
    expect(() => parseConfig({ ...defaultConfig(), listen: [], transport: 'libp2p', libp2p: { listen: [], allowLimitedConnections: 'yes' } })).toThrow(/allowLimitedConnections/)
  })

  it("shows in the node's record and in identify", async () => {
    let ta: Libp2pTransportApi | undefined
    const factory = libp2p({ announce: [ANNOUNCED] })
    const a = createNode({ authority: 'a.mesh.kai', transports: [(c) => (ta = factory(c) as Libp2pTransportApi)], listen: ['libp2p:///ip4/127.0.0.1/tcp/0'] })
    nodes.push(a)
    await a.start()
    const hostA = ta!.libp2p!
    expect(a.record()?.network_info.addresses.map((x) => x.address)).toEqual([ANNOUNCED])
    expect(a.addrs().length).toBeGreaterThan(0)
    expect(a.addrs().every((x) => x.startsWith(`libp2p://${ANNOUNCED}/p2p/${hostA.peerId.toString()}`))).toBe(true)
    // b reaches a where it really listens and learns the announced address through identify
    let tb: Libp2pTransportApi | undefined
    const fb = libp2p()
    const b = createNode({ authority: 'b.mesh.kai', transports: [(c) => (tb = fb(c) as Libp2pTransportApi)], listen: ['libp2p:///ip4/127.0.0.1/tcp/0'] })
    nodes.push(b)
    await b.start()
    const real = (hostA as unknown as { components: { transportManager: { getAddrs(): Array<{ toString(): string }> } } }).components.transportManager.getAddrs()[0]!.toString()
    await b.connect(`libp2p://${real}/p2p/${hostA.peerId.toString()}/${a.did}`)
    const hostB = tb!.libp2p!
    await until('identify carries the announced address', async () => {
      const peer = await hostB.peerStore.get(hostA.peerId).catch(() => undefined)
      return peer?.addresses.some((x) => x.multiaddr.toString() === ANNOUNCED) === true
    })
    const peer = await hostB.peerStore.get(hostA.peerId)
    expect(peer.addresses.map((x) => x.multiaddr.toString())).toEqual([ANNOUNCED])
  })
})
