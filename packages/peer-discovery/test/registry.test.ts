import { describe, expect, it } from 'vitest'
import { DiscoveryMethod } from '@kos-mesh/interface'
import type { FederatedNode, NodeCapabilities } from '@kos-mesh/interface'
import { PeerRegistry } from '../src/registry.js'
import type { PeerEntry } from '../src/registry-types.js'
import { InvalidRecordSignatureError, RecordSignerMismatchError } from '../src/errors.js'
import type { NodeRecord, RecordVerifier } from '../src/types.js'

// Unit tests of the sans-I/O registry. Records here are fake (JSON, no crypto): signature checks
// with the real codec and did-security live in record.test.ts.

const enc = new TextEncoder()
const dec = new TextDecoder()

function caps(over: Partial<NodeCapabilities> = {}): NodeCapabilities {
  return { agent_hosting: false, vector_storage: false, relay_services: false, validation_services: false, archive_services: false, bandwidth_mbps: 10, storage_gb: 1, compute_units: 1, ...over }
}

function node(id: string, over: { trust?: number; caps?: Partial<NodeCapabilities>; type?: FederatedNode['node_type'] } = {}): FederatedNode {
  return {
    node_id: id,
    node_type: over.type ?? 'PeerNode',
    capabilities: caps(over.caps),
    network_info: { addresses: [{ protocol: 'memory', address: id, port: 0, is_public: false, is_relay: false }], protocols_supported: ['klp/1'], nat_type: 'open', connectivity_status: 'connected', latency_ms: 0 },
    trust_profile: { trust_score: over.trust ?? 5, endorsements: 0, verification_level: 'basic' },
    last_seen: 0,
  }
}

interface Fake { id: string; ts: number; ttl?: number; forged?: boolean; signer?: string; trust?: number; caps?: Partial<NodeCapabilities>; type?: FederatedNode['node_type'] }

function fake(f: Fake): Uint8Array {
  return enc.encode(JSON.stringify(f))
}

function fakeVerifier(clock: { now(): number }, calls: { n: number } = { n: 0 }): RecordVerifier {
  return async (bytes) => {
    calls.n++
    const f = JSON.parse(dec.decode(bytes)) as Fake
    if (f.forged === true) throw new InvalidRecordSignatureError('bad signature')
    if (f.signer !== undefined && f.signer !== f.id) throw new RecordSignerMismatchError('signer')
    const rec: NodeRecord = { peerId: f.id, node: node(f.id, f), timestamp: f.ts, expiresAt: f.ts + (f.ttl ?? 3_600_000), messageId: `${f.id}@${f.ts}`, bytes }
    void clock
    return rec
  }
}

function setup(init: Partial<ConstructorParameters<typeof PeerRegistry>[0]> = {}) {
  const clock = { t: 1_700_000_000_000, now() { return this.t } }
  const calls = { n: 0 }
  const registry = new PeerRegistry({ verifyRecord: fakeVerifier(clock, calls), clock, ...init })
  return { clock, calls, registry }
}

const opts = { source: 'did:key:zSource', method: DiscoveryMethod.SEED }

describe('PeerRegistry', () => {
  it('adds records and de-duplicates by peer id, keeping the newest', async () => {
    const { registry, clock } = setup()
    const events: string[] = []
    registry.addEventListener('peer:add', (e) => events.push(`add:${(e as CustomEvent<PeerEntry>).detail.peerId}`))
    registry.addEventListener('peer:update', (e) => events.push(`update:${(e as CustomEvent<PeerEntry>).detail.peerId}`))
    const t = clock.now()
    const r1 = await registry.merge([fake({ id: 'did:a', ts: t }), fake({ id: 'did:b', ts: t }), fake({ id: 'did:a', ts: t })], opts)
    expect(r1).toMatchObject({ added: 2, updated: 0, unchanged: 1, rejected: 0 })
    expect(registry.size).toBe(2)
    const r2 = await registry.merge([fake({ id: 'did:a', ts: t + 5, trust: 4 }), fake({ id: 'did:b', ts: t - 5 })], opts)
    expect(r2).toMatchObject({ added: 0, updated: 1, unchanged: 1 })
    expect(registry.get('did:a')?.record.timestamp).toBe(t + 5)
    expect(registry.get('did:a')?.record.node.trust_profile.trust_score).toBe(4)
    expect(registry.get('did:b')?.record.timestamp).toBe(t)
    expect(events).toEqual(['add:did:a', 'add:did:b', 'update:did:a'])
    expect(registry.get('did:a')?.discoveryMethod).toBe('seed')
  })

  it('skips verification of records that cannot replace the stored one when a peek is given', async () => {
    const clock = { t: 1_700_000_000_000, now() { return this.t } }
    const calls = { n: 0 }
    const registry = new PeerRegistry({
      verifyRecord: fakeVerifier(clock, calls),
      peekRecord: (b) => { const f = JSON.parse(dec.decode(b)) as Fake; return { peerId: f.id, timestamp: f.ts } },
      clock,
      localPeerId: 'did:me',
    })
    const t = clock.now()
    await registry.merge([fake({ id: 'did:a', ts: t })], opts)
    expect(calls.n).toBe(1)
    const r = await registry.merge([fake({ id: 'did:a', ts: t }), fake({ id: 'did:a', ts: t - 1 }), fake({ id: 'did:me', ts: t + 1 })], opts)
    expect(calls.n).toBe(1)
    expect(r).toMatchObject({ unchanged: 2, rejected: 1, reasons: { self: 1 } })
  })

  it('drops and counts invalid records by reason', async () => {
    const { registry, clock } = setup()
    const t = clock.now()
    const r = await registry.merge([
      fake({ id: 'did:a', ts: t, forged: true }),
      fake({ id: 'did:b', ts: t, signer: 'did:evil' }),
      enc.encode('not json'),
      fake({ id: 'did:c', ts: t }),
    ], opts)
    expect(r.added).toBe(1)
    expect(r.rejected).toBe(3)
    expect(r.reasons).toEqual({ forged: 1, signer_mismatch: 1, invalid: 1 })
    expect(registry.stats().rejected.forged).toBe(1)
    expect(registry.has('did:a')).toBe(false)
    expect(registry.has('did:b')).toBe(false)
  })

  it('ranks by trust, latency and capabilities, filtering on required capabilities', async () => {
    const { registry, clock } = setup({ weights: { trust: 0.5, latency: 0.3, capabilities: 0.2 } })
    const t = clock.now()
    await registry.merge([
      fake({ id: 'did:low', ts: t, trust: 1 }),
      fake({ id: 'did:high', ts: t, trust: 5 }),
      fake({ id: 'did:mid', ts: t, trust: 3, caps: { vector_storage: true } }),
      fake({ id: 'did:hosting', ts: t, trust: 2, caps: { agent_hosting: true } }),
    ], opts)
    expect(registry.rank().map((r) => r.entry.peerId)).toEqual(['did:high', 'did:mid', 'did:hosting', 'did:low'])
    // Measured latency moves a peer up.
    registry.setLatency('did:low', 0)
    registry.setLatency('did:high', 10_000)
    // low: .05 + .3 + 0 = .35; mid: .15 + .15 + .04 = .34; hosting: .29; high: .25 + .003 + 0
    expect(registry.rank().map((r) => r.entry.peerId)).toEqual(['did:low', 'did:mid', 'did:hosting', 'did:high'])
    // Later samples are smoothed in (EWMA), not taken as is.
    registry.setLatency('did:mid', 100)
    registry.setLatency('did:mid', 200)
    expect(registry.get('did:mid')?.latencyMs).toBeCloseTo(130)
    // A trust engine's score overrides the self-asserted one.
    registry.setTrust('did:high', 10)
    expect(registry.rank()[0]?.entry.peerId).toBe('did:high')
    expect(registry.rank()[0]?.trustScore).toBe(10)
    // Required capabilities filter; max bounds.
    expect(registry.rank({ requiredCapabilities: ['agent_hosting'] }).map((r) => r.entry.peerId)).toEqual(['did:hosting'])
    expect(registry.rank({ requiredCapabilities: ['no_such_capability'] })).toEqual([])
    expect(registry.rank({ maxPeers: 2 })).toHaveLength(2)
    const dp = registry.discoveredPeers({ requiredCapabilities: ['vector_storage'] })
    expect(dp).toEqual([expect.objectContaining({ peer_id: 'did:mid', trust_score: 3, discovery_method: 'seed', discovery_timestamp: t })])
  })

  it('ranks by the trust engine\'s scores when it has one (before setTrust and self-asserted trust)', async () => {
    const scores = new Map<string, number>([['did:liar', 0], ['did:vouched', 8]])
    const { registry, clock } = setup({ weights: { trust: 1, latency: 0, capabilities: 0 }, trustScoreOf: (did) => scores.get(did) })
    await registry.merge([fake({ id: 'did:liar', ts: clock.now(), trust: 10 }), fake({ id: 'did:vouched', ts: clock.now(), trust: 0 }), fake({ id: 'did:unknown', ts: clock.now(), trust: 3 })], opts)
    expect(registry.rank().map((r) => [r.entry.peerId, r.trustScore])).toEqual([['did:vouched', 8], ['did:unknown', 3], ['did:liar', 0]])
    registry.setTrust('did:liar', 10) // the engine knows it: its score wins
    expect(registry.rank().at(-1)?.entry.peerId).toBe('did:liar')
    scores.set('did:liar', 11) // out of range from a broken engine: clamped
    expect(registry.rank()[0]).toEqual(expect.objectContaining({ trustScore: 10 }))
  })

  it('ranks by node role when asked (role weight and preferred roles)', async () => {
    const { registry, clock } = setup({ weights: { trust: 0.5, latency: 0, capabilities: 0, role: 0.5 } })
    const t = clock.now()
    await registry.merge([fake({ id: 'did:peer', ts: t, trust: 4 }), fake({ id: 'did:validator', ts: t, trust: 2, type: 'ValidatorNode' })], opts)
    expect(registry.rank().map((r) => r.entry.peerId)).toEqual(['did:peer', 'did:validator'])
    expect(registry.rank({ preferredRoles: ['ValidatorNode'] }).map((r) => r.entry.peerId)).toEqual(['did:validator', 'did:peer'])
  })

  it('caps self-asserted trust', async () => {
    const { registry, clock } = setup({ maxSelfAssertedTrust: 4 })
    await registry.merge([fake({ id: 'did:liar', ts: clock.now(), trust: 10 }), fake({ id: 'did:honest', ts: clock.now(), trust: 4, caps: { relay_services: true } })], opts)
    expect(registry.rank().map((r) => [r.entry.peerId, r.trustScore])).toEqual([['did:honest', 4], ['did:liar', 4]])
  })

  it('stays within maxPeers, evicting the worst-ranked peer for a better one', async () => {
    const { registry, clock } = setup({ maxPeers: 3 })
    const removed: string[] = []
    registry.addEventListener('peer:remove', (e) => removed.push((e as CustomEvent<{ entry: PeerEntry; reason: string }>).detail.entry.peerId + ':' + (e as CustomEvent<{ reason: string }>).detail.reason))
    const t = clock.now()
    await registry.merge([1, 2, 3].map((i) => fake({ id: `did:${i}`, ts: t, trust: i })), opts)
    const worse = await registry.merge([fake({ id: 'did:0', ts: t, trust: 0 })], opts)
    expect(worse.reasons).toEqual({ table_full: 1 })
    expect(registry.stats().rejected.table_full).toBe(1)
    expect(registry.size).toBe(3)
    const better = await registry.merge([fake({ id: 'did:4', ts: t, trust: 4 })], opts)
    expect(better.added).toBe(1)
    expect(registry.size).toBe(3)
    expect(removed).toEqual(['did:1:evicted'])
    expect([...registry.entries()].map((e) => e.peerId).sort()).toEqual(['did:2', 'did:3', 'did:4'])
    for (let i = 5; i < 50; i++) await registry.merge([fake({ id: `did:${i}`, ts: t, trust: i % 6 })], opts)
    expect(registry.size).toBe(3)
  })

  it('expires records at timestamp + ttl and marks silent peers stale then removes them', async () => {
    const { registry, clock } = setup({ staleAfterMs: 1000, removeAfterMs: 5000 })
    const t = clock.now()
    await registry.merge([fake({ id: 'did:short', ts: t, ttl: 500 }), fake({ id: 'did:long', ts: t }), fake({ id: 'did:alive', ts: t })], opts)
    const stale: string[] = []
    const removed: string[] = []
    registry.addEventListener('peer:stale', (e) => stale.push((e as CustomEvent<PeerEntry>).detail.peerId))
    registry.addEventListener('peer:remove', (e) => removed.push(`${(e as CustomEvent<{ entry: PeerEntry; reason: string }>).detail.entry.peerId}:${(e as CustomEvent<{ reason: string }>).detail.reason}`))
    clock.t = t + 600
    expect(registry.rank().map((r) => r.entry.peerId)).not.toContain('did:short')
    expect(registry.prune()).toEqual({ stale: 0, removed: 1 })
    clock.t = t + 1000
    registry.touch('did:alive')
    expect(registry.prune()).toEqual({ stale: 1, removed: 0 })
    expect(registry.get('did:long')?.stale).toBe(true)
    expect(registry.get('did:alive')?.stale).toBe(false)
    // A stale peer ranks below an equal live one.
    expect(registry.rank().map((r) => r.entry.peerId)).toEqual(['did:alive', 'did:long'])
    clock.t = t + 5000
    // did:long has been silent for 5 s (removed); did:alive for 4 s (now stale).
    expect(registry.prune()).toEqual({ stale: 1, removed: 1 })
    expect(removed).toEqual(['did:short:expired', 'did:long:timeout'])
    // An already expired record is never added.
    const r = await registry.merge([fake({ id: 'did:old', ts: t - 10_000, ttl: 1000 })], opts)
    expect(r.reasons).toEqual({ expired: 1 })
  })

  it('rate-limits what a single source can push, before verifying', async () => {
    const { registry, clock, calls } = setup({ sourceBurst: 10, sourceRatePerSecond: 2 })
    const t = clock.now()
    const flood = Array.from({ length: 100 }, (_, i) => fake({ id: `did:f${i}`, ts: t }))
    const r = await registry.merge(flood, opts)
    expect(r.added).toBe(10)
    expect(r.reasons.rate_limited).toBe(90)
    expect(calls.n).toBe(10)
    // Another source has its own budget.
    const r2 = await registry.merge([fake({ id: 'did:other', ts: t })], { ...opts, source: 'did:key:zOther' })
    expect(r2.added).toBe(1)
    // The budget refills with time.
    clock.t = t + 1000
    const r3 = await registry.merge(flood.slice(10, 20), opts)
    expect(r3.added).toBe(2)
  })

  it('does no work for exact repeats, and never re-verifies the same bad bytes', async () => {
    const { registry, clock, calls } = setup()
    const t = clock.now()
    const good = fake({ id: 'did:a', ts: t })
    const bad = fake({ id: 'did:b', ts: t, forged: true })
    await registry.merge([good, bad], opts)
    expect(calls.n).toBe(2)
    const r = await registry.merge([good, bad, good.slice(), bad.slice()], opts)
    expect(calls.n).toBe(2)
    expect(r).toMatchObject({ unchanged: 2, rejected: 2, reasons: { forged: 2 } })
  })

  it('a look-alike of a genuine record (same length and tail) cannot get it pre-rejected', async () => {
    const clock = { t: 1_700_000_000_000, now() { return this.t } }
    let calls = 0
    // 'V' + json is genuine, 'X' + json is a forgery of it: same length, same last bytes.
    const verifyRecord: RecordVerifier = async (bytes) => {
      calls++
      if (bytes[0] === 0x58) throw new InvalidRecordSignatureError('forged')
      const f = JSON.parse(dec.decode(bytes.subarray(1))) as Fake
      return { peerId: f.id, node: node(f.id), timestamp: f.ts, expiresAt: f.ts + 3_600_000, messageId: 'm', bytes }
    }
    const registry = new PeerRegistry({ verifyRecord, clock })
    const json = JSON.stringify({ id: 'did:v', ts: clock.now() })
    const genuine = enc.encode('V' + json)
    const forged = enc.encode('X' + json)
    expect((await registry.merge([forged], opts)).reasons).toEqual({ forged: 1 })
    expect((await registry.merge([genuine], opts)).added).toBe(1)
    expect(calls).toBe(2)
  })

  it('caps how many table entries one source can introduce (Sybil flooding)', async () => {
    const { registry, clock } = setup({ maxPeers: 100, maxPeersPerSource: 5 })
    const t = clock.now()
    const sybils = Array.from({ length: 20 }, (_, i) => fake({ id: `did:sybil${i}`, ts: t, trust: 5, caps: { agent_hosting: true, vector_storage: true } }))
    const r = await registry.merge(sybils, { source: 'did:attacker', method: DiscoveryMethod.DIRECT })
    expect(r.added).toBe(5)
    expect(r.reasons).toEqual({ source_full: 15 })
    expect(registry.stats().rejected.source_full).toBe(15)
    // Updates of peers it introduced still go through; other sources are unaffected.
    expect((await registry.merge([fake({ id: 'did:sybil0', ts: t + 1 })], { source: 'did:attacker', method: DiscoveryMethod.DIRECT })).updated).toBe(1)
    expect((await registry.merge([fake({ id: 'did:honest', ts: t })], opts)).added).toBe(1)
    // Removing one frees a slot.
    registry.remove('did:sybil1')
    expect((await registry.merge([sybils[10]!], { source: 'did:attacker', method: DiscoveryMethod.DIRECT })).added).toBe(1)
  })

  it('rejects bad options with InvalidParametersError', () => {
    const clock = { now: () => 0 }
    expect(() => new PeerRegistry({ verifyRecord: fakeVerifier(clock), maxPeers: 0 })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => new PeerRegistry({ verifyRecord: fakeVerifier(clock), staleAfterMs: 10, removeAfterMs: 5 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_PARAMETERS' }))
    const { registry } = setup()
    expect(() => registry.setTrust('did:x', 11)).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
  })

  it('honours an aborted signal', async () => {
    const { registry, clock } = setup()
    const ac = new AbortController()
    ac.abort()
    await expect(registry.merge([fake({ id: 'did:a', ts: clock.now() })], { ...opts, signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' })
  })
})
