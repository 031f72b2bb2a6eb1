import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { isKosMeshError } from '@kos-mesh/interface'
import { decodeValue, encodeValue } from '@kos-mesh/klp-codec'
import { DEFAULT_DHT_WIRE_LIMITS, dhtPayloadValue, parseDhtPayload, parseDhtRequest, parseDhtResponse } from '../src/dht/wire.js'
import type { DhtPayload } from '../src/dht/wire.js'

// The DHT payload codec: round trips through DAG-CBOR, every malformed shape a typed error, bounds.

const id = (b: number): Uint8Array => new Uint8Array(32).fill(b)
const rec = (n: number, b = 7): Uint8Array => new Uint8Array(n).fill(b)

const samples: DhtPayload[] = [
  { action: 'dht_ping' },
  { action: 'dht_ping', sender: rec(100) },
  { action: 'dht_find_node', target: id(1) },
  { action: 'dht_find_node', target: id(2), sender: rec(10) },
  { action: 'dht_get_providers', key: id(3), sender: rec(10) },
  { action: 'dht_add_provider', provider: { record: rec(50) } },
  { action: 'dht_add_provider', provider: { record: rec(50), node: rec(60) }, sender: rec(60) },
  { action: 'dht_pong', sender: rec(10) },
  { action: 'dht_ok' },
  { action: 'dht_nodes', closer: [] },
  { action: 'dht_nodes', closer: [rec(10, 1), rec(20, 2)], sender: rec(5) },
  { action: 'dht_providers', providers: [], closer: [] },
  { action: 'dht_providers', providers: [{ record: rec(30) }, { record: rec(31), node: rec(40) }], closer: [rec(10)], sender: rec(9) },
]

function roundTrip(p: DhtPayload): DhtPayload {
  return parseDhtPayload(decodeValue(encodeValue(dhtPayloadValue(p))))
}

function errorOf(fn: () => unknown): { name?: string; code?: string } {
  try {
    fn()
  } catch (err) {
    return err as { name: string; code: string }
  }
  throw new Error('expected an error')
}

describe('DHT wire codec', () => {
  it('round-trips every action through DAG-CBOR', () => {
    for (const p of samples) expect(roundTrip(p)).toEqual(p)
  })

  it('tells requests from answers', () => {
    expect(parseDhtRequest(dhtPayloadValue({ action: 'dht_find_node', target: id(1) })).action).toBe('dht_find_node')
    expect(parseDhtResponse(dhtPayloadValue({ action: 'dht_ok' })).action).toBe('dht_ok')
    expect(errorOf(() => parseDhtRequest({ action: 'dht_nodes', closer: [] }))).toMatchObject({ name: 'InvalidDhtMessageError', code: 'ERR_INVALID_DHT_MESSAGE' })
    expect(errorOf(() => parseDhtResponse({ action: 'dht_ping' }))).toMatchObject({ name: 'InvalidDhtMessageError' })
  })

  it.each([
    ['not an object', 'dht_ping'],
    ['null', null],
    ['an array', [{ action: 'dht_ping' }]],
    ['bytes', new Uint8Array(3)],
    ['no action', {}],
    ['an unknown action', { action: 'dht_store' }],
    ['a discovery action', { action: 'get_peers' }],
    ['an unknown field', { action: 'dht_ping', extra: 1 }],
    ['a short target', { action: 'dht_find_node', target: new Uint8Array(31) }],
    ['a long key', { action: 'dht_get_providers', key: new Uint8Array(33) }],
    ['a string target', { action: 'dht_find_node', target: 'ab'.repeat(16) }],
    ['no target', { action: 'dht_find_node' }],
    ['a sender that is not bytes', { action: 'dht_ping', sender: 'x' }],
    ['an empty sender', { action: 'dht_ping', sender: new Uint8Array(0) }],
    ['closer not an array', { action: 'dht_nodes', closer: new Uint8Array(4) }],
    ['closer with a non-bytes entry', { action: 'dht_nodes', closer: [new Uint8Array(4), 5] }],
    ['providers missing', { action: 'dht_providers', closer: [] }],
    ['a provider entry that is bytes', { action: 'dht_providers', providers: [new Uint8Array(4)], closer: [] }],
    ['a provider entry with an unknown field', { action: 'dht_providers', providers: [{ record: new Uint8Array(4), x: 1 }], closer: [] }],
    ['a provider entry without record', { action: 'dht_add_provider', provider: { node: new Uint8Array(4) } }],
    ['a provider node that is a string', { action: 'dht_add_provider', provider: { record: new Uint8Array(4), node: 'n' } }],
  ])('rejects %s with InvalidDhtMessageError', (_what, data) => {
    expect(errorOf(() => parseDhtPayload(data))).toMatchObject({ name: 'InvalidDhtMessageError', code: 'ERR_INVALID_DHT_MESSAGE' })
  })

  it('bounds record sizes, counts and the payload total with RecordLimitExceededError', () => {
    const L = DEFAULT_DHT_WIRE_LIMITS
    const over = (data: unknown, limits?: Parameters<typeof parseDhtPayload>[1]) => errorOf(() => parseDhtPayload(data, limits))
    expect(over({ action: 'dht_ping', sender: rec(L.maxRecordBytes + 1) })).toMatchObject({ name: 'RecordLimitExceededError', code: 'ERR_RECORD_LIMIT_EXCEEDED' })
    expect(parseDhtPayload({ action: 'dht_ping', sender: rec(L.maxRecordBytes) })).toMatchObject({ action: 'dht_ping' })
    expect(over({ action: 'dht_nodes', closer: Array.from({ length: L.maxContacts + 1 }, () => rec(1)) })).toMatchObject({ name: 'RecordLimitExceededError' })
    expect(over({ action: 'dht_providers', providers: Array.from({ length: L.maxProviders + 1 }, () => ({ record: rec(1) })), closer: [] })).toMatchObject({ name: 'RecordLimitExceededError' })
    expect(over({ action: 'dht_add_provider', provider: { record: rec(L.maxProviderRecordBytes + 1) } })).toMatchObject({ name: 'RecordLimitExceededError' })
    // each record is within bounds, all of them together are not
    expect(over({ action: 'dht_nodes', closer: [rec(4000), rec(4000), rec(4000)] }, { maxPayloadBytes: 10_000 })).toMatchObject({ name: 'RecordLimitExceededError' })
    expect(parseDhtPayload({ action: 'dht_nodes', closer: [rec(4000), rec(4000)] }, { maxPayloadBytes: 10_000 })).toMatchObject({ action: 'dht_nodes' })
    // the count is checked before any entry is looked at
    expect(over({ action: 'dht_nodes', closer: new Array(1_000_000) })).toMatchObject({ name: 'RecordLimitExceededError' })
  })

  it('only ever throws typed errors on arbitrary input', () => {
    const value = fc.letrec((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        fc.constant(null),
        fc.boolean(),
        fc.integer(),
        fc.string({ maxLength: 12 }),
        fc.constantFrom(...samples.map((s) => s.action)),
        fc.uint8Array({ maxLength: 40 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.array(tie('v'), { maxLength: 4 }),
        fc.dictionary(fc.constantFrom('action', 'target', 'key', 'sender', 'closer', 'providers', 'provider', 'record', 'node', 'x'), tie('v'), { maxKeys: 5 }),
      ),
    })).v
    fc.assert(fc.property(value, (v) => {
      try {
        parseDhtPayload(v)
      } catch (err) {
        if (!isKosMeshError(err)) throw err
      }
    }), { numRuns: 3000, seed: 12 })
  })
})
