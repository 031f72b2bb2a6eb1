import { afterEach, describe, expect, it } from 'vitest'
import { createRecordVerifier } from '../src/index.js'
import { DEFAULT_CONTACT_PREFIX } from '../src/dht/index.js'
import type { DhtService } from '../src/dht/index.js'
import { dhtMesh, MapStore, seedOf, signatureVerifier } from './dht-helpers.js'
import type { DhtMesh } from './dht-helpers.js'

// Routing state across restarts (contacts' signed records in a KeyValueStore) and provider
// records that expire unless republished, on a small virtual-time mesh.

const N = 10
const KAD = { k: 4, alpha: 2, disjointPaths: 2 }
const MINUTE = 60_000

let mesh: DhtMesh | undefined
afterEach(async () => {
  await mesh?.stop()
  mesh = undefined
})

async function join(m: DhtMesh, from = 1): Promise<void> {
  const seed = seedOf(m.net, 0)
  for (let i = from; i < N; i++) await m.net.drive(m.dht[i]!.bootstrap([seed]))
}

describe('DHT persistence and record lifetimes', () => {
  it('a restarted node restores its table from the store (records verified again) and looks up without bootstrapping', async () => {
    mesh = await dhtMesh(N, { seed: 5, topology: 'ring', init: () => ({ kad: KAD }), withDht: (i) => i !== 7 })
    const m = mesh
    const store = new MapStore()
    await m.startDht(7, {}, store)
    await join(m)
    const before = m.dht[7]!.contacts().map((c) => c.did).sort()
    expect(before.length).toBeGreaterThan(2)
    await m.dht[7]!.stop()
    // one key per contact, each value that contact's own signed record
    const keys = [...store.map.keys()].sort()
    expect(keys).toEqual(before.map((d) => DEFAULT_CONTACT_PREFIX + d).sort())
    const verify = createRecordVerifier({ signatureVerifier, clock: m.net.network.clock })
    for (const k of keys) expect((await verify(store.map.get(k)!)).peerId).toBe(k.slice(DEFAULT_CONTACT_PREFIX.length))

    // a tampered value and a record filed under another DID are dropped (and deleted) at load
    const [k0, k1] = keys as [string, string]
    const tampered = store.map.get(k0)!.slice()
    tampered[tampered.length - 1]! ^= 1
    store.map.set(k0, tampered)
    store.map.set(`${DEFAULT_CONTACT_PREFIX}did:key:z6Mkmisfiled`, store.map.get(k1)!)

    const again = await m.startDht(7, {}, store)
    const after = again.contacts().map((c) => c.did).sort()
    expect(after).toEqual(before.filter((d) => DEFAULT_CONTACT_PREFIX + d !== k0))
    expect(again.stats().restored).toBe(before.length - 1)
    expect(store.map.has(k0)).toBe(false)
    expect(store.map.has(`${DEFAULT_CONTACT_PREFIX}did:key:z6Mkmisfiled`)).toBe(false)
    // the restored table is enough to look up any node
    for (const t of [2, 5, 9]) {
      const rec = await m.net.drive(again.findNode(m.net.nodes[t]!.did))
      expect(rec.peerId).toBe(m.net.nodes[t]!.did)
    }
  })

  it('persists at most maxStoredContacts contacts', async () => {
    mesh = await dhtMesh(N, { seed: 6, topology: 'ring', init: () => ({ kad: KAD }), withDht: (i) => i !== 3 })
    const m = mesh
    const store = new MapStore()
    await m.startDht(3, { maxStoredContacts: 2 }, store)
    await join(m)
    expect(m.dht[3]!.contacts().length).toBeGreaterThan(2)
    await m.net.drive(m.dht[3]!.refresh())
    expect(store.map.size).toBe(2)
    await m.dht[3]!.stop()
    expect(store.map.size).toBe(2)
    const again = await m.startDht(3, { maxStoredContacts: 2 }, store)
    expect(again.contacts().length).toBe(2)
  })

  it('provider records expire unless republished (on the injected clock)', async () => {
    // provider records live 10 minutes, republished every 4
    mesh = await dhtMesh(N, { seed: 8, topology: 'ring', init: () => ({ kad: KAD, providerTtlSeconds: 600, republishIntervalMs: 4 * MINUTE }) })
    const m = mesh
    await join(m)
    const kept = m.dht[4]!
    const dropped = m.dht[6]!
    expect(await m.net.drive(kept.provide('agent:summarizer'))).toBeGreaterThan(0)
    expect(await m.net.drive(dropped.provide('agent:summarizer'))).toBeGreaterThan(0)
    const finder = m.dht[9]!
    const first = await m.net.drive(finder.findProviders('agent:summarizer'))
    expect(first.map((p) => p.provider).sort()).toEqual([m.net.nodes[4]!.did, m.net.nodes[6]!.did].sort())
    expect(dropped.unprovide('agent:summarizer')).toBe(true)
    const t0 = m.net.network.clock.now()
    await m.net.network.runFor(12 * MINUTE, { stepMs: 1000 })
    expect(m.net.network.clock.now() - t0).toBe(12 * MINUTE)
    const later = await m.net.drive(finder.findProviders('agent:summarizer'))
    expect(later.map((p) => p.provider)).toEqual([m.net.nodes[4]!.did])
    // the record found is a re-signed one: it expires after the first one would have
    expect(later[0]!.expiresAt).toBeGreaterThan(first.find((p) => p.provider === m.net.nodes[4]!.did)!.expiresAt)
  })
})
