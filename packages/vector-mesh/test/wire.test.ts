import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { decodeValue, encodeValue } from '@kos-mesh/klp-codec'
import { parseVectorRequest } from '../src/index.js'

describe('VECTOR_SYNC payloads', () => {
  it('accepts the documented ops and refuses unknown fields, ops and out-of-range values', () => {
    expect(parseVectorRequest({ op: 'fetch', collection: 'docs', shard: 0, ids: [new Uint8Array(32)] }, 1024).op).toBe('fetch')
    for (const bad of [
      { op: 'fetch', collection: 'docs', shard: 0, ids: [new Uint8Array(31)] },
      { op: 'fetch', collection: 'docs', shard: 0, ids: [], extra: 1 },
      { op: 'recon', collection: 'docs', shard: 0, since: 0, msg: new Uint8Array(2000) },
      { op: 'search', collection: 'docs', shard: 0, vector: new Uint8Array(6), k: 1 },
      { op: 'search', collection: 'docs', shard: 0, vector: new Uint8Array(8), k: 5000 },
      { op: 'push', collection: 'bad name', shard: 0, entries: [] },
      { op: 'nope', collection: 'docs', shard: 0 },
      { op: 'fetch', collection: 'docs', shard: -1, ids: [] },
    ]) expect(() => parseVectorRequest(bad, 1024)).toThrow(expect.objectContaining({ name: 'InvalidVectorMessageError' }))
  })

  it('fuzz: random DAG-CBOR values give only typed errors', () => {
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, fc.constantFrom('recon', 'fetch', 'push', 'search', 'announce', 'snapshot', 'docs'), fc.integer(), fc.uint8Array({ maxLength: 40 }), fc.boolean(), fc.constant(null), fc.array(tie('v'), { maxLength: 3 }), fc.dictionary(fc.constantFrom('op', 'collection', 'shard', 'ids', 'msg', 'since', 'entries', 'vector', 'k', 'fp', 'count', 'x'), tie('v'), { maxKeys: 6 })),
    })).v
    fc.assert(fc.property(value, (v) => {
      const data = decodeValue(encodeValue(v as never))
      try { parseVectorRequest(data, 1024) } catch (err) { expect((err as Error).name).toBe('InvalidVectorMessageError') }
    }), { numRuns: 3000 })
  })
})
