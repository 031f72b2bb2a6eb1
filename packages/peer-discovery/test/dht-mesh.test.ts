import { afterEach, describe, expect, it } from 'vitest'
import { createRecordPeek, createRecordVerifier, PeerRegistry, peerDiscovery } from '../src/index.js'
import { kadIdOf } from '../src/kad/index.js'
import type { DhtService } from '../src/dht/index.js'
import { dhtMesh, seedOf, signatureVerifier } from './dht-helpers.js'
import type { DhtMesh } from './dht-helpers.js'

// The DHT service on real routers (klp-router, memory transport) in virtual time: a sparse mesh
// where every node bootstraps from one seed, then node and provider lookups across it.

const N = 32
// small buckets so the tables hold only part of the mesh and lookups really travel
const KAD = { k: 6, alpha: 3, disjointPaths: 2 }
const PROVIDER = 19

let mesh: DhtMesh | undefined
afterEach(async () => {
  await mesh?.stop()
  mesh = undefined
})

function svc(m: DhtMesh, i: number): DhtService {
  const s = m.dht[i]
  if (s === undefined) throw new Error(`no DHT on node ${i}`)
  return s
}

async function joinAll(m: DhtMesh): Promise<void> {
  const seed = seedOf(m.net, 0)
  // in waves of 8, so later nodes find earlier ones
  for (let i = 1; i < N; i += 8) {
    const wave = Array.from({ length: Math.min(8, N - i) }, (_, j) => i + j)
    const results = await m.net.drive(Promise.all(wave.map((w) => svc(m, w).bootstrap([seed]))), { timeoutMs: 120_000 })
    for (const r of results) expect(r.seedsReached).toBe(1)
  }
}

describe('DHT service on a virtual-time mesh', () => {
  it(`${N} nodes join from one seed; findNode reaches a node outside the asker's table; a provider is found by a node never told about it`, async () => {
    mesh = await dhtMesh(N, {
      seed: 3,
      init: (i) => ({ kad: KAD, ...(i === PROVIDER ? { node: { capabilities: { vector_storage: true } } } : {}) }),
    })
    const m = mesh
    await joinAll(m)
    const sizes = m.dht.map((s) => s?.contacts().length ?? 0)
    expect(Math.min(...sizes.slice(1))).toBeGreaterThan(0)
    // the provider announced capability:vector_storage after its bootstrap (provideCapabilities)
    expect(svc(m, PROVIDER).provided()).toEqual(['capability:vector_storage'])

    // findNode: an asker, and a target it does not hold in its table
    let asker = -1
    let target = -1
    for (let a = N - 1; a > 0 && target < 0; a--) {
      for (let t = 1; t < N; t++) {
        if (t !== a && !svc(m, a).kad.table.has(kadIdOf(m.net.nodes[t]!.did))) { asker = a; target = t; break }
      }
    }
    expect(target).toBeGreaterThan(0)
    const rec = await m.net.drive(svc(m, asker).findNode(m.net.nodes[target]!.did))
    expect(rec.peerId).toBe(m.net.nodes[target]!.did)
    expect(rec.address?.authority).toBe(m.net.nodes[target]!.authority)
    expect(rec.node.network_info.addresses[0]).toMatchObject({ protocol: 'memory', address: `node-${target}` })

    // findProviders from a node that never talked to the provider about it
    const finder = PROVIDER === N - 1 ? N - 2 : N - 1
    const providers = await m.net.drive(svc(m, finder).findProviders('capability:vector_storage'))
    expect(providers.map((p) => p.provider)).toEqual([m.net.nodes[PROVIDER]!.did])
    expect(providers[0]!.record?.node.capabilities.vector_storage).toBe(true)
    expect(providers[0]!.name).toBe('capability:vector_storage')

    // and as a DiscoverySource of the peer registry
    const clock = m.net.network.clock
    const registry = new PeerRegistry({ verifyRecord: createRecordVerifier({ signatureVerifier, clock }), peekRecord: createRecordPeek(), localPeerId: m.net.nodes[5]!.did, clock })
    const merged = await m.net.drive(registry.mergeFrom(svc(m, 5), { requiredCapabilities: ['vector_storage'] }))
    expect(merged.added).toBe(1)
    expect(registry.has(m.net.nodes[PROVIDER]!.did)).toBe(true)
    // nobody provides archive_services
    const none = await m.net.drive(registry.mergeFrom(svc(m, 5), { requiredCapabilities: ['archive_services'] }))
    expect(none.added).toBe(0)

    // through the discovery service's `sources` (use_dht)
    const n7 = m.net.nodes[7]!
    const discovery = peerDiscovery({ sources: [svc(m, 7)], autoDial: false, refreshIntervalMs: 0, announceIntervalMs: 0 })({ router: n7.router, signer: n7.identity.signer, signatureVerifier, clock })
    await discovery.start()
    const peers = await m.net.drive(discovery.discoverPeers({ use_dht: true, required_capabilities: ['vector_storage'] }))
    await discovery.stop()
    expect(peers.map((p) => p.peer_id)).toEqual([m.net.nodes[PROVIDER]!.did])
    expect(peers[0]!.discovery_method).toBe('dht')

    // the seed itself joins from its connected peers (no seeds given)
    const own = await m.net.drive(svc(m, 0).bootstrap())
    expect(own.seedsReached).toBeGreaterThan(0)

    const st = svc(m, finder).stats()
    expect(st.requestsSent).toBeGreaterThan(0)
    expect(Object.keys(st.rejectedRecords)).toEqual([])
  })
})
