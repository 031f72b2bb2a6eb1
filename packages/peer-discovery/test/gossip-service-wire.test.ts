import { describe, expect, it } from 'vitest'
import { decodeValue, encodeValue } from '@kos-mesh/klp-codec'
import { DEFAULT_GOSSIP_WIRE_LIMITS, GOSSIP_ACTIONS, gossipPayloadValue, parseGossipPayload, type GossipWire } from '../src/gossip-service/wire.js'

const rec = (n: number, len = 40): Uint8Array => new Uint8Array(len).fill(n)
const id = (c: string): string => `b${c.repeat(32)}`

const samples: GossipWire[] = [
  { action: 'join', record: rec(1) },
  { action: 'forward_join', record: rec(2), ttl: 6 },
  { action: 'neighbor', record: rec(3), priority: 'high' },
  { action: 'neighbor', record: rec(3), priority: 'low' },
  { action: 'neighbor_reply', accepted: true },
  { action: 'neighbor_reply', accepted: false },
  { action: 'neighbor_reply', accepted: true, record: rec(3) },
  { action: 'disconnect' },
  { action: 'shuffle', origin: rec(4), ttl: 3, records: [rec(5), rec(6)] },
  { action: 'shuffle_reply', records: [] },
  { action: 'ihave', ids: [{ id: id('a'), round: 0 }, { id: id('2'), round: 255 }] },
  { action: 'graft', ids: [id('z')] },
  { action: 'graft', ids: [] },
  { action: 'prune' },
  { action: 'peer_list_request', req_id: 'r-1_A', origin: rec(8), hops: 2, max: 10 },
  { action: 'peer_list_request', req_id: '1z.k3x9ab', origin: rec(9), hops: 0, max: 0 },
  { action: 'peer_list', req_id: 'r-1_A', records: [rec(7)] },
]

/** Through the codec's DAG-CBOR and back, as on the wire. */
const wire = (v: unknown): unknown => decodeValue(encodeValue(v as never))

describe('gossip control messages', () => {
  it('round-trip every action through DAG-CBOR', () => {
    expect(new Set(samples.map((s) => s.action))).toEqual(new Set(GOSSIP_ACTIONS))
    for (const s of samples) expect(parseGossipPayload(wire(gossipPayloadValue(s)))).toEqual(s)
  })

  it('reject malformed payloads with InvalidGossipMessageError', () => {
    const bad: unknown[] = [
      null, 'join', [], rec(1), 42,
      {}, { action: 'nope' }, { action: 7 },
      { action: 'join' }, { action: 'join', record: 'abc' }, { action: 'join', record: new Uint8Array(0) },
      { action: 'join', record: rec(1), extra: 1 },
      { action: 'forward_join', record: rec(1) }, { action: 'forward_join', record: rec(1), ttl: -1 }, { action: 'forward_join', record: rec(1), ttl: 1.5 },
      { action: 'neighbor', record: rec(1), priority: 'urgent' }, { action: 'neighbor', record: rec(1) },
      { action: 'neighbor_reply', accepted: 'yes' }, { action: 'neighbor_reply', accepted: true, record: 'r' }, { action: 'disconnect', why: 'x' }, { action: 'prune', ids: [] },
      { action: 'shuffle', ttl: 1, records: [] }, { action: 'shuffle', ttl: -1, origin: rec(1), records: [] }, { action: 'shuffle', id: 1, ttl: 1, origin: rec(1), records: [] },
      { action: 'shuffle_reply', records: rec(1) }, { action: 'shuffle_reply', records: ['x'] },
      { action: 'ihave', ids: [] }, { action: 'ihave', ids: [id('a')] }, { action: 'ihave', ids: [{ id: 'not-an-id', round: 1 }] }, { action: 'ihave', ids: [{ id: id('A'), round: 1 }] },
      { action: 'ihave', ids: [{ id: id('a') }] }, { action: 'ihave', ids: [{ id: id('a'), round: 1, x: 2 }] }, { action: 'ihave', ids: [{ id: id('a'), round: -1 }] },
      { action: 'graft', ids: [`${id('a')}a`] }, { action: 'graft', ids: id('a') }, { action: 'graft' },
      { action: 'peer_list_request', req_id: 'r', origin: rec(1), hops: -1, max: 1 }, { action: 'peer_list_request', req_id: 'r', origin: rec(1), hops: 1 },
      { action: 'peer_list_request', req_id: 'r', hops: 1, max: 1 }, { action: 'peer_list_request', req_id: 'a b', origin: rec(1), hops: 1, max: 1 },
      { action: 'peer_list_request', req_id: 'r'.repeat(65), origin: rec(1), hops: 1, max: 1 }, { action: 'peer_list_request', req_id: 5, origin: rec(1), hops: 1, max: 1 },
      { action: 'peer_list', req_id: 'r', records: null }, { action: 'peer_list', records: [] },
    ]
    for (const b of bad) expect(() => parseGossipPayload(b), JSON.stringify(b, (_k, v: unknown) => (v instanceof Uint8Array ? `bytes(${v.length})` : v))).toThrow(expect.objectContaining({ name: 'InvalidGossipMessageError', code: 'ERR_INVALID_GOSSIP_MESSAGE' }))
  })

  it('enforce the bounds with GossipLimitExceededError', () => {
    const l = DEFAULT_GOSSIP_WIRE_LIMITS
    const over: unknown[] = [
      { action: 'join', record: rec(1, l.maxRecordBytes + 1) },
      { action: 'forward_join', record: rec(1), ttl: l.maxTtl + 1 },
      { action: 'shuffle', ttl: 1, origin: rec(1), records: Array.from({ length: l.maxRecords + 1 }, () => rec(1)) },
      { action: 'shuffle', ttl: l.maxTtl + 1, origin: rec(1), records: [] },
      { action: 'ihave', ids: [{ id: id('a'), round: l.maxRound + 1 }] },
      { action: 'graft', ids: Array.from({ length: l.maxIds + 1 }, () => id('a')) },
      { action: 'ihave', ids: Array.from({ length: l.maxIds + 1 }, () => ({ id: id('a'), round: 1 })) },
      { action: 'peer_list_request', req_id: 'r', origin: rec(1), hops: l.maxHops + 1, max: 1 },
      { action: 'peer_list_request', req_id: 'r', origin: rec(1), hops: 1, max: l.maxRecords + 1 },
      { action: 'peer_list_request', req_id: 'r', origin: rec(1, l.maxRecordBytes + 1), hops: 1, max: 1 },
    ]
    for (const o of over) expect(() => parseGossipPayload(o)).toThrow(expect.objectContaining({ name: 'GossipLimitExceededError', code: 'ERR_GOSSIP_LIMIT_EXCEEDED' }))
    // at the bounds exactly: accepted
    expect(parseGossipPayload({ action: 'ihave', ids: Array.from({ length: l.maxIds }, () => ({ id: id('b'), round: 3 })) })).toMatchObject({ action: 'ihave' })
    expect(parseGossipPayload({ action: 'join', record: rec(1, l.maxRecordBytes) })).toMatchObject({ action: 'join' })
    // custom (tighter) limits apply to parsing and to building alike
    expect(() => parseGossipPayload({ action: 'peer_list', req_id: 'r', records: [rec(1), rec(2), rec(3)] }, { ...l, maxRecordsBytes: 100 })).toThrow(expect.objectContaining({ name: 'GossipLimitExceededError' }))
    const tight = { ...l, maxIds: 2 }
    expect(() => parseGossipPayload({ action: 'graft', ids: [id('a'), id('b'), id('c')] }, tight)).toThrow(expect.objectContaining({ name: 'GossipLimitExceededError' }))
    expect(() => gossipPayloadValue({ action: 'graft', ids: [id('a'), id('b'), id('c')] }, tight)).toThrow(expect.objectContaining({ name: 'GossipLimitExceededError' }))
  })
})

describe('gossip service sources', () => {
  it('take time and randomness only from the injected clock and PRNG (no Date.now, global timers, performance.now, Math.random)', async () => {
    const { readdirSync, readFileSync } = await import('node:fs')
    const dir = new URL('../src/gossip-service/', import.meta.url)
    const files = readdirSync(dir).filter((f) => f.endsWith('.ts'))
    expect(files.length).toBeGreaterThanOrEqual(6)
    const banned = /\bDate\.now\(|(?<!clock\.)\bset(?:Timeout|Interval|Immediate)\(|performance\.now\(|Math\.random\(|new Date\(/
    for (const f of files) {
      const code = readFileSync(new URL(f, dir), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '')
      expect(banned.exec(code)?.[0], f).toBeUndefined()
      expect(code.split('\n').length, `${f} stays small`).toBeLessThan(400)
    }
  })
})
