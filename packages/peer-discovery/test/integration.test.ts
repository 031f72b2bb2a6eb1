import { afterEach, describe, expect, it } from 'vitest'
import { BootstrapStatus } from '@kos-mesh/interface'
import { network, startNode, stopAll } from './testnet.js'
import type { TestNode } from './testnet.js'

// End-to-end on the memory transport with the real router, codec and Ed25519.

let nodes: TestNode[] = []
afterEach(async () => {
  await stopAll(nodes)
  nodes = []
})

describe('bootstrap on the memory transport', () => {
  it('one seed + 8 nodes: every node ends knowing every other node and connected to targetPeers', async () => {
    const net = network()
    const targetPeers = 3
    const seed = await startNode(net, 'seed', { targetPeers: 0 })
    nodes.push(seed)
    const members: TestNode[] = []
    for (let i = 0; i < 8; i++) members.push(await startNode(net, `n${i}`, { targetPeers, refreshFanout: 16 }))
    nodes.push(...members)
    const results = await Promise.all(members.map((m) => m.discovery.bootstrap([{ address: 'memory://seed', did: seed.identity.did }])))
    for (const r of results) {
      expect(r.status).toBe(BootstrapStatus.COMPLETED)
      expect(r.seeds_reached).toBe(1)
      expect(r.errors).toEqual([])
      expect(r.peer_connections).toBeGreaterThanOrEqual(1)
    }
    expect(results.map((r) => r.node_id)).toEqual(members.map((m) => m.identity.did))
    // Early joiners learn of later ones on their next refresh round.
    await Promise.all(members.map((m) => m.discovery.refresh()))
    const all = [seed, ...members]
    for (const m of members) {
      const known = new Set(m.discovery.getPeers().map((p) => p.peer_id))
      const others = all.filter((o) => o !== m).map((o) => o.identity.did)
      expect([...known].sort()).toEqual(others.sort())
      expect(m.router.peers().length).toBeGreaterThanOrEqual(targetPeers)
      // Records carry the transport address the peer listens on.
      const seedPeer = m.discovery.getPeers().find((p) => p.peer_id === seed.identity.did)
      expect(seedPeer?.addresses).toEqual([{ protocol: 'memory', address: 'seed', port: 0, is_public: false, is_relay: false }])
    }
    // The seed knows every member (each announced its record with its get_peers request).
    expect(seed.discovery.getPeers().map((p) => p.peer_id).sort()).toEqual(members.map((m) => m.identity.did).sort())
    expect(seed.discovery.stats().requestsServed).toBeGreaterThanOrEqual(8)
  })

  it('a seed that is down fails bootstrap with a typed error; a second seed in the list still works', async () => {
    const net = network()
    const seed = await startNode(net, 'seed2', { targetPeers: 0 })
    const a = await startNode(net, 'a', { targetPeers: 2 })
    const b = await startNode(net, 'b', { targetPeers: 2 })
    nodes.push(seed, a, b)
    await a.discovery.bootstrap([`memory://seed2/${seed.identity.did}`])
    await expect(b.discovery.bootstrap([{ address: 'memory://down' }])).rejects.toMatchObject({
      name: 'BootstrapFailedError',
      code: 'ERR_BOOTSTRAP_FAILED',
      errors: [expect.objectContaining({ address: 'memory://down' })],
    })
    const r = await b.discovery.bootstrap([{ address: 'memory://down' }, { address: 'memory://seed2', did: seed.identity.did }])
    expect(r.status).toBe('completed')
    expect(r.seeds_reached).toBe(1)
    expect(r.errors).toHaveLength(1)
    expect(r.errors[0]?.address).toBe('memory://down')
    expect((r.errors[0]?.error as Error).name).toMatch(/Error$/)
    expect(b.discovery.registry.has(a.identity.did)).toBe(true)
    expect(b.discovery.registry.has(seed.identity.did)).toBe(true)
    // b auto-dialled a (the best known unconnected peer).
    expect(b.router.peers().map((p) => p.did)).toContain(a.identity.did)
  })

  it('a seed answering as another DID fails bootstrap', async () => {
    const net = network()
    const seed = await startNode(net, 'seed3', { targetPeers: 0 })
    const other = await startNode(net, 'other3', { targetPeers: 0 })
    const a = await startNode(net, 'a3')
    nodes.push(seed, other, a)
    const err = await a.discovery.bootstrap([{ address: 'memory://seed3', did: other.identity.did }]).catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'BootstrapFailedError' })
    expect(a.discovery.registry.size).toBe(0)
  })

  it('discoverPeers bootstraps from seed_nodes and returns ranked, filtered peers', async () => {
    const net = network()
    const seed = await startNode(net, 'seed4', { targetPeers: 0, node: { capabilities: { relay_services: true } } })
    const host = await startNode(net, 'host4', { targetPeers: 0, node: { capabilities: { agent_hosting: true } } })
    const plain = await startNode(net, 'plain4', { targetPeers: 0 })
    nodes.push(seed, host, plain)
    await host.discovery.bootstrap([`memory://seed4/${seed.identity.did}`])
    const peers = await plain.discovery.discoverPeers({ seed_nodes: [`memory://seed4/${seed.identity.did}`], required_capabilities: ['agent_hosting'] })
    expect(peers.map((p) => p.peer_id)).toEqual([host.identity.did])
    expect(peers[0]?.discovery_method).toBe('seed')
    expect(peers[0]?.capabilities.agent_hosting).toBe(true)
    const all = await plain.discovery.discoverPeers({ max_peers: 1 })
    expect(all).toHaveLength(1)
    const filtered = await plain.discovery.discoverPeers({ peer_filter: (p) => p.peer_id === seed.identity.did })
    expect(filtered.map((p) => p.peer_id)).toEqual([seed.identity.did])
  })

  it('auto-dials the best-ranked peers first', async () => {
    const net = network()
    const seed = await startNode(net, 'seed6', { targetPeers: 0 })
    nodes.push(seed)
    const ranked: TestNode[] = []
    for (let t = 1; t <= 5; t++) ranked.push(await startNode(net, `t${t}`, { targetPeers: 0, node: { trust_profile: { trust_score: t } } }))
    nodes.push(...ranked)
    await Promise.all(ranked.map((r) => r.discovery.bootstrap([{ address: 'memory://seed6', did: seed.identity.did }])))
    const newcomer = await startNode(net, 'new6', { targetPeers: 3 })
    nodes.push(newcomer)
    const result = await newcomer.discovery.bootstrap([{ address: 'memory://seed6', did: seed.identity.did }])
    expect(result.discovered).toBe(6)
    expect(result.peer_connections).toBe(3)
    // The seed plus the two highest trust scores (5 and 4).
    const connected = newcomer.router.peers().map((p) => p.did).sort()
    expect(connected).toEqual([seed.identity.did, ranked[4]!.identity.did, ranked[3]!.identity.did].sort())
    expect(newcomer.discovery.getPeers({ maxPeers: 2 }).map((p) => p.trust_score)).toEqual([5, 4])
    // The dialled peers learned about the newcomer from its announce.
    await expect.poll(() => ranked[4]!.discovery.registry.has(newcomer.identity.did), { timeout: 10_000 }).toBe(true)
  })

  it('the refresh loop picks up nodes that joined later', async () => {
    const net = network()
    const seed = await startNode(net, 'seed7', { targetPeers: 0 })
    const early = await startNode(net, 'early7', { targetPeers: 1, refreshIntervalMs: 20 })
    nodes.push(seed, early)
    await early.discovery.bootstrap([{ address: 'memory://seed7', did: seed.identity.did }])
    expect(early.discovery.registry.size).toBe(1)
    const late = await startNode(net, 'late7', { targetPeers: 1 })
    nodes.push(late)
    await late.discovery.bootstrap([{ address: 'memory://seed7', did: seed.identity.did }])
    await expect.poll(() => early.discovery.registry.has(late.identity.did), { timeout: 10_000 }).toBe(true)
  })

  it('the announce loop re-signs and pushes the local record to connected peers', async () => {
    const net = network()
    const seed = await startNode(net, 'seed10', { targetPeers: 0 })
    const a = await startNode(net, 'a10', { targetPeers: 0, announceIntervalMs: 20 })
    nodes.push(seed, a)
    await a.discovery.bootstrap([{ address: 'memory://seed10', did: seed.identity.did }])
    const first = seed.discovery.registry.get(a.identity.did)?.record.messageId
    expect(first).toBeDefined()
    await expect.poll(() => seed.discovery.registry.get(a.identity.did)?.record.messageId !== first, { timeout: 10_000 }).toBe(true)
    expect(seed.discovery.stats().registry.updated).toBeGreaterThanOrEqual(1)
  })

  it('discoverPeers merges registered DHT / gossip sources only when asked', async () => {
    const net = network()
    const other = await import('@kos-mesh/did-security').then((m) => m.generateIdentity())
    const { createNodeRecord } = await import('../src/index.js')
    const { makeNode } = await import('./helpers.js')
    const rec = await createNodeRecord(makeNode(other.did, { caps: { vector_storage: true } }), other.signer)
    let calls = 0
    const source = { method: 'dht' as const, name: 'fake-dht', findPeers: async () => { calls++; return [rec.bytes] } }
    const a = await startNode(net, 'a8', { sources: [source] })
    nodes.push(a)
    expect(await a.discovery.discoverPeers({})).toEqual([])
    expect(calls).toBe(0)
    const peers = await a.discovery.discoverPeers({ use_dht: true, required_capabilities: ['vector_storage'] })
    expect(calls).toBe(1)
    expect(peers.map((p) => [p.peer_id, p.discovery_method])).toEqual([[other.did, 'dht']])
  })

  it('validates its init and components', async () => {
    const net = network()
    const a = await startNode(net, 'a9')
    const b = await startNode(net, 'b9')
    nodes.push(a, b)
    const { peerDiscovery } = await import('../src/index.js')
    const { signatureVerifier } = await import('./testnet.js')
    expect(() => peerDiscovery()({ router: a.router, signer: b.identity.signer, signatureVerifier })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => peerDiscovery({ recordTtlSeconds: 7 * 86400 })({ router: a.router, signer: a.identity.signer, signatureVerifier })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => peerDiscovery({ recordTtlSeconds: 60, announceIntervalMs: 60_000 })({ router: a.router, signer: a.identity.signer, signatureVerifier })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => peerDiscovery({ targetPeers: -1 })({ router: a.router, signer: a.identity.signer, signatureVerifier })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_PARAMETERS' }))
    expect(() => peerDiscovery()({ router: a.router, signatureVerifier })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(peerDiscovery()({ router: a.router, identity: a.identity, signatureVerifier }).isStarted()).toBe(false)
    await expect(a.discovery.bootstrap([])).rejects.toMatchObject({ name: 'InvalidParametersError' })
  })

  it('refuses work before start and after stop', async () => {
    const net = network()
    const a = await startNode(net, 'a5')
    nodes.push(a)
    await a.discovery.stop()
    await expect(a.discovery.bootstrap(['memory://x'])).rejects.toMatchObject({ name: 'DiscoveryNotStartedError', code: 'ERR_DISCOVERY_NOT_STARTED' })
    await expect(a.discovery.refresh()).rejects.toMatchObject({ name: 'DiscoveryNotStartedError' })
  })
})
