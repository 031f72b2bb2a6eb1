/**
 * Issue 13: the `libp2p` config keys relay / autonat / dcutr / dht / gossipsub, wired into the host
 * of the node's libp2p transport (libp2p-services.ts), and the libp2p kad-dht as a discovery source.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { PeerDiscovery } from '@kos-mesh/peer-discovery'
import { createNode, libp2p, type KosMeshNode } from '../src/index.js'
import { libp2pInit, parseLibp2pConfig } from '../src/config-libp2p.js'
import { createRecordPeek } from '@kos-mesh/peer-discovery'
import type { Transport } from '@kos-mesh/interface'
import { libp2pDhtDiscovery, libp2pHostOf, libp2pNetworkInfo, resolveLibp2pFeatures } from '../src/libp2p-services.js'
import { networkStatusLines } from '../src/cli-discovery.js'

const LOOPBACK = 'libp2p:///ip4/127.0.0.1/tcp/0'
const PEER = '12D3KooWPwKkxKu9j9S2MLsu6CiqAhNBeC9KZBLXnSRs3CGvHhSQ'
const nodes: KosMeshNode[] = []

afterEach(async () => {
  await Promise.allSettled(nodes.splice(0).map((n) => n.stop()))
})

async function start(init: Parameters<typeof createNode>[0]): Promise<KosMeshNode> {
  const n = createNode({ listen: [LOOPBACK], ...init })
  nodes.push(n)
  await n.start()
  return n
}

async function until(cond: () => boolean | Promise<boolean>, ms = 15_000): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await cond()) return true
    await new Promise((r) => setTimeout(r, 50))
  }
  return false
}

/** The node's transports (private in the node; read here to reach the libp2p host). */
function transportsOf(n: KosMeshNode): Transport[] {
  return (n as unknown as { transports: Transport[] }).transports
}

function bad(v: unknown): string {
  try {
    parseLibp2pConfig(v)
  } catch (err) {
    expect((err as Error).name).toBe('InvalidConfigError')
    return (err as Error).message
  }
  throw new Error('expected InvalidConfigError')
}

describe('libp2p config keys', () => {
  it('parses relay, autonat, dcutr, dht, gossipsub (absent keys stay absent)', () => {
    expect(parseLibp2pConfig({ listen: [] })).toEqual({ listen: [] })
    const c = parseLibp2pConfig({
      listen: ['/ip4/127.0.0.1/tcp/0', `/ip4/127.0.0.1/tcp/4001/p2p/${PEER}/p2p-circuit`],
      relay: { client: true, server: true },
      autonat: false,
      dcutr: false,
      dht: { enabled: true, clientMode: false, bootstrap: [`/ip4/192.0.2.7/tcp/4747/p2p/${PEER}`] },
      gossipsub: true,
    })
    expect(c).toEqual({
      listen: ['/ip4/127.0.0.1/tcp/0', `/ip4/127.0.0.1/tcp/4001/p2p/${PEER}/p2p-circuit`],
      relay: { client: true, server: true },
      autonat: false,
      dcutr: false,
      dht: { enabled: true, clientMode: false, bootstrap: [`/ip4/192.0.2.7/tcp/4747/p2p/${PEER}`] },
      gossipsub: true,
    })
    expect(libp2pInit(c).features).toEqual({ relay: c.relay, autonat: false, dcutr: false, dht: c.dht, gossipsub: true })
    expect(libp2pInit({ listen: [] }).features).toEqual({})
    expect(libp2pInit(undefined).features).toBeUndefined()
    expect(parseLibp2pConfig({ dht: {} }).dht).toEqual({ enabled: false })
  })

  it('defaults: relay client on, server off, autonat and dcutr on, dht and gossipsub off', () => {
    expect(resolveLibp2pFeatures()).toEqual({ relayClient: true, relayServer: false, autonat: true, dcutr: true, dht: { enabled: false, bootstrap: [] }, gossipsub: false })
  })

  it('refuses bad values with InvalidConfigError naming the key', () => {
    expect(bad({ relay: true })).toMatch(/^libp2p\.relay: expected an object/)
    expect(bad({ relay: { client: 'yes' } })).toMatch(/^libp2p\.relay\.client: expected true or false/)
    expect(bad({ relay: { serve: true } })).toMatch(/^libp2p\.relay: .*unknown key "serve"/)
    expect(bad({ autonat: 1 })).toMatch(/^libp2p\.autonat: expected true or false/)
    expect(bad({ dcutr: null })).toMatch(/^libp2p\.dcutr: expected true or false/)
    expect(bad({ gossipsub: 'on' })).toMatch(/^libp2p\.gossipsub: expected true or false/)
    expect(bad({ dht: true })).toMatch(/^libp2p\.dht: expected an object/)
    expect(bad({ dht: { enabled: 'true' } })).toMatch(/^libp2p\.dht\.enabled: expected true or false/)
    expect(bad({ dht: { enabled: true, clientMode: 0 } })).toMatch(/^libp2p\.dht\.clientMode: expected true or false/)
    expect(bad({ dht: { enabled: true, bootstrap: '/ip4/1.2.3.4/tcp/1' } })).toMatch(/^libp2p\.dht\.bootstrap: expected a list/)
    expect(bad({ dht: { enabled: true, bootstrap: ['/ip4/1.2.3.4/tcp/1'] } })).toMatch(/^libp2p\.dht\.bootstrap\[0\]: expected a multiaddr with \/p2p\//)
    expect(bad({ dht: { enabled: true, bootstrap: ['tcp://1.2.3.4:1'] } })).toMatch(/^libp2p\.dht\.bootstrap\[0\]:/)
    expect(bad({ dht: { enabled: true, extra: 1 } })).toMatch(/unknown key "extra"/)
    expect(bad({ announced: ['/ip4/1.2.3.4/tcp/1'] })).toMatch(/unknown key "announced"/)
    expect(bad({ listen: [`/ip4/127.0.0.1/tcp/4001/p2p/${PEER}/p2p-circuit`], relay: { client: false } })).toMatch(/^libp2p\.listen\[0\]: expected no \/p2p-circuit/)
  })
})

describe('libp2p features on the node host', () => {
  it('relay.server runs a circuit relay v2 server; a relay client reserves a slot on it', async () => {
    const relay = await start({ authority: 'relay.mesh.kai', transports: [libp2p(libp2pInit(parseLibp2pConfig({ listen: [], relay: { server: true }, autonat: false })))] })
    const relayHost = libp2pHostOf(transportsOf(relay))
    expect(relayHost).toBeDefined()
    expect(Object.keys(relayHost!.services)).toContain('relay')
    const relayAddr = relay.addrs()[0]!.slice('libp2p://'.length).replace(/\/did:.*$/, '')
    const client = await start({
      authority: 'client.mesh.kai',
      transports: [libp2p(libp2pInit(parseLibp2pConfig({ listen: [], autonat: false })))],
      listen: [LOOPBACK, `libp2p://${relayAddr}/p2p-circuit`],
    })
    const host = libp2pHostOf(transportsOf(client))!
    expect(Object.keys(host.services)).not.toContain('relay')
    expect(await until(() => host.getMultiaddrs().some((m) => m.toString().includes('/p2p-circuit')))).toBe(true)
    const info = libp2pNetworkInfo(transportsOf(client))!
    expect(info.addresses.some((a) => a.is_relay)).toBe(true)
    // the node's status carries the same NetworkInfo, and `kos-mesh status` prints it
    const status = client.status()
    expect(status.network?.addresses.some((a) => a.is_relay)).toBe(true)
    expect(networkStatusLines(status.network)[0]).toMatch(/^network: +nat \w+, \w+, \d+ public address(es)?, [1-9]\d* relay address(es)?$/)
    expect(relay.status().network?.connectivity_status).toBeDefined()
  })

  it('two nodes with dht.enabled: one finds the other\'s vector_storage capability through the libp2p DHT', async () => {
    const features = parseLibp2pConfig({ listen: [], autonat: false, dht: { enabled: true, clientMode: false } })
    const mk = async (authority: string, caps: Record<string, boolean>): Promise<{ node: KosMeshNode; d: ReturnType<typeof libp2pDhtDiscovery> }> => {
      const d = libp2pDhtDiscovery({ queryTimeoutMs: 5_000 })
      const node = await start({ authority, capabilities: caps, transports: [libp2p(libp2pInit(features))], services: { libp2pDht: d.service }, discovery: { sources: [d.source] }, dht: false, gossip: false })
      return { node, d }
    }
    const b = await mk('b.mesh.kai', { vector_storage: true })
    const a = await mk('a.mesh.kai', {})
    expect(Object.keys(libp2pHostOf(transportsOf(a.node))!.services)).toContain('dht')
    // the hosts meet over libp2p only (no KLP connection, so no KLP peer exchange)
    const hostA = libp2pHostOf(transportsOf(a.node))!
    const hostB = libp2pHostOf(transportsOf(b.node))!
    await hostA.dial(hostB.getMultiaddrs()[0]!)
    const svcB = b.node.service<{ publish(): Promise<void> }>('libp2pDht')
    // b publishes once a DHT peer (a) is in its routing table
    expect(await until(async () => { try { await svcB.publish(); return true } catch { return false } })).toBe(true)
    // the source alone: b's verified record, found as a vector_storage provider
    const peek = createRecordPeek()
    let bytes: Uint8Array[] = []
    expect(await until(async () => {
      bytes = (await a.d.source.findPeers({ requiredCapabilities: ['vector_storage'] })) as Uint8Array[]
      return bytes.some((x) => peek(x)?.peerId === b.node.did)
    })).toBe(true)
    const discovery = a.node.service<PeerDiscovery>('discovery')
    let found: Awaited<ReturnType<PeerDiscovery['discoverPeers']>> = []
    expect(await until(async () => {
      found = await discovery.discoverPeers({ use_dht: true, required_capabilities: ['vector_storage'] })
      return found.some((p) => p.peer_id === b.node.did)
    })).toBe(true)
    const peer = found.find((p) => p.peer_id === b.node.did)!
    expect(peer.discovery_method).toBe('dht')
  })
})
