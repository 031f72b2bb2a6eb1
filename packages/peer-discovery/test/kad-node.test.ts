import { describe, expect, it } from 'vitest'
import { createMemoryNetwork } from '@kos-mesh/transport-memory'
import { idEquals, idKey, KadNode, ProviderStore, providerKeyOf } from '../src/kad/index.js'
import type { Contact, KadRequest, KadResponse, KadRpc, ProviderRecord } from '../src/kad/index.js'
import { KadNet } from '../sim/kad-net.js'
import { contact, freshIp } from './kad-helpers.js'

const HOUR = 3_600_000

function lonely(rpc: KadRpc = () => Promise.reject(new Error('no network')), init: Partial<ConstructorParameters<typeof KadNode>[0]> = {}) {
  const net = createMemoryNetwork({ time: 'virtual', seed: 1 })
  const node = new KadNode({ self: contact('self'), clock: net.clock, rpc, ...init })
  return { net, node }
}

describe('KadNode: answering requests', () => {
  it('answers ping, and find_node with the k closest it knows (not the requester), learning the requester', () => {
    const { node } = lonely(undefined, { k: 5 })
    const asker = contact('asker', freshIp())
    expect(node.handle(asker, { type: 'ping' })).toEqual({ type: 'pong' })
    expect(node.table.has(asker.id)).toBe(true)
    const others = Array.from({ length: 30 }, (_, i) => contact(`o${i}`, freshIp()))
    for (const o of others) node.learn(o)
    const res = node.handle(asker, { type: 'find_node', target: asker.id })
    expect(res.type).toBe('nodes')
    const closer = (res as { closer: Contact[] }).closer
    expect(closer).toHaveLength(5)
    expect(closer.some((c) => idEquals(c.id, asker.id))).toBe(false)
  })

  it('does not learn contacts whose id is not sha256 of their DID', () => {
    const { node } = lonely()
    const forged: Contact = { ...contact('x', freshIp()), id: contact('y').id }
    node.handle(forged, { type: 'ping' })
    expect(node.table.size).toBe(0)
  })

  it('rejects malformed targets with a typed error', () => {
    const { node } = lonely()
    expect(() => node.handle(contact('a'), { type: 'find_node', target: new Uint8Array(3) })).toThrow(expect.objectContaining({ name: 'InvalidKadIdError' }))
  })

  it('stores provider records of their own sender only, and lets them expire', async () => {
    const { net, node } = lonely(undefined, { providerTtlMs: HOUR })
    const key = providerKeyOf('capability:vector_storage')
    const p = contact('provider', freshIp())
    const now = net.clock.now()
    const record: ProviderRecord = { key, provider: p, expiresAt: now + 10 * HOUR }
    expect(() => node.handle(contact('other', freshIp()), { type: 'add_provider', record })).toThrow(expect.objectContaining({ name: 'InvalidProviderRecordError' }))
    expect(node.handle(p, { type: 'add_provider', record })).toEqual({ type: 'ok' })
    const got = node.handle(contact('asker', freshIp()), { type: 'get_providers', key }) as Extract<KadResponse, { type: 'providers' }>
    expect(got.providers).toHaveLength(1)
    expect(got.providers[0]!.expiresAt).toBe(now + HOUR) // clamped to the TTL
    await net.runFor(HOUR)
    expect((node.handle(p, { type: 'get_providers', key }) as Extract<KadResponse, { type: 'providers' }>).providers).toHaveLength(0)
  })

  it('checks a stale head of a full bucket: evicted when the ping fails, the newcomer takes its place', async () => {
    const pings: string[] = []
    let alive = true
    const rpc: KadRpc = async (to, req) => { pings.push(`${req.type}:${to.did}`); if (!alive) throw new Error('down'); return { type: 'pong' } }
    const { net, node } = lonely(rpc, { k: 1, staleAfterMs: 1_000 })
    // find two contacts in the same bucket
    const byBucket = new Map<number, Contact[]>()
    for (let i = 0; byBucket.get(0) === undefined || byBucket.get(0)!.length < 3; i++) {
      const c = contact(`b${i}`, freshIp())
      const b = node.table.bucketIndexOf(c.id)
      byBucket.set(b, [...(byBucket.get(b) ?? []), c])
    }
    const [a, b, c] = byBucket.get(0)!
    node.learn(a!)
    await net.runFor(2_000)
    node.learn(b!)
    await net.runFor(100)
    expect(pings).toEqual([`ping:${a!.did}`])
    expect(node.table.has(a!.id)).toBe(true) // answered: kept
    alive = false
    await net.runFor(2_000)
    node.learn(c!)
    await net.runFor(100)
    expect(node.table.has(a!.id)).toBe(false)
    expect(node.table.has(c!.id)).toBe(true)
  })

  it('refuses to look up without contacts', async () => {
    const { node } = lonely()
    await expect(node.lookup(contact('t').id)).rejects.toMatchObject({ name: 'KadNoContactsError' })
  })
})

describe('ProviderStore bounds', () => {
  it('bounds records per key and in all', () => {
    const s = new ProviderStore({ maxProviders: 5, maxProvidersPerKey: 3, ttlMs: HOUR })
    const k1 = providerKeyOf('a')
    const k2 = providerKeyOf('b')
    const rec = (key: Uint8Array, i: number, exp = HOUR): ProviderRecord => ({ key, provider: contact(`p${i}`), expiresAt: exp })
    expect([0, 1, 2, 3].map((i) => s.put(rec(k1, i), 0))).toEqual(['added', 'added', 'added', 'full'])
    expect(s.put(rec(k1, 1), 0)).toBe('updated')
    expect([4, 5, 6].map((i) => s.put(rec(k2, i), 0))).toEqual(['added', 'added', 'full'])
    expect(s.size).toBe(5)
    expect(s.put(rec(k2, 7, 0), 0)).toBe('expired')
    // expired records make room again
    expect(s.prune(HOUR)).toBe(5)
    expect(s.put(rec(k2, 8, 2 * HOUR), HOUR)).toBe('added')
    expect(s.get(k2, HOUR).map((r) => idKey(r.provider.id))).toEqual([idKey(contact('p8').id)])
  })
})

describe('KadNode on a small simulated network', () => {
  it('bootstraps, finds every node, provides, finds providers and republishes', async () => {
    const knet = new KadNet({ seed: 3, kad: { providerTtlMs: 2 * HOUR } })
    await knet.build(60, { initial: 4, maxWave: 10 })
    const nodes = knet.peers.map((p) => p.node)
    expect(Math.min(...nodes.map((n) => n.table.size))).toBeGreaterThan(20)
    // every node finds every 7th node
    let found = 0
    let tried = 0
    const jobs: Array<Promise<void>> = []
    for (const [i, n] of nodes.entries()) {
      for (let j = i % 7; j < nodes.length; j += 7) {
        if (j === i) continue
        tried++
        jobs.push(n.findNode(nodes[j]!.id).then((r) => { if (r.found !== undefined && idEquals(r.found.id, nodes[j]!.id)) found++ }))
      }
    }
    let settled = false
    void Promise.all(jobs).then(() => { settled = true })
    await knet.net.runUntil(() => settled, 60_000)
    expect(found).toBe(tried)

    const key = providerKeyOf('agent:summarizer')
    let stored = -1
    void nodes[5]!.provide(key).then((n) => { stored = n })
    await knet.net.runUntil(() => stored >= 0, 60_000)
    expect(stored).toBe(20)
    let got: ProviderRecord[] | undefined
    void nodes[40]!.findProviders(key).then((r) => { got = r.providers })
    await knet.net.runUntil(() => got !== undefined, 60_000)
    expect(got!.map((r) => r.provider.did)).toEqual([nodes[5]!.self.did])

    // republish: nothing due before the interval (TTL / 2), then the key goes out again
    let due = -1
    void nodes[5]!.republish().then((n) => { due = n })
    await knet.net.runUntil(() => due >= 0, 1_000)
    expect(due).toBe(0)
    const servedBefore = knet.served.add_provider
    await knet.net.runFor(HOUR)
    due = -1
    void nodes[5]!.maintain().then(() => { due = 1 })
    await knet.net.runUntil(() => due >= 0, 120_000)
    expect(knet.served.add_provider - servedBefore).toBe(20)
    // after the TTL, records that were not renewed are gone
    const request: KadRequest = { type: 'get_providers', key }
    const holder = nodes.find((n) => n !== nodes[5] && n.providers.get(key, knet.clock.now()).length > 0)
    expect(holder).toBeDefined()
    expect((holder!.handle(nodes[1]!.self, request) as Extract<KadResponse, { type: 'providers' }>).providers).toHaveLength(1)
  })
})
