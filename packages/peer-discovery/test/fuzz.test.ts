import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { isKosMeshError } from '@kos-mesh/interface'
import { createSignatureVerifier, generateIdentity } from '@kos-mesh/did-security'
import { createNodeRecord, createRecordVerifier, parseDiscoveryPayload, parseFederatedNode } from '../src/index.js'
import { makeNode } from './helpers.js'

// Bad input never crashes: only typed kos-mesh errors come out.

function typedOnly(fn: () => unknown): void {
  try {
    fn()
  } catch (err) {
    if (!isKosMeshError(err)) throw err
  }
}

const value = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double(),
    fc.integer(),
    fc.string({ maxLength: 20 }),
    fc.constantFrom('announce', 'get_peers', 'peers', 'record'),
    fc.uint8Array({ maxLength: 64 }),
    fc.array(tie('v'), { maxLength: 5 }),
    fc.dictionary(fc.constantFrom('action', 'record', 'records', 'capabilities', 'max', 'known', 'node', 'x'), tie('v'), { maxKeys: 5 }),
  ),
})).v

describe('fuzz', () => {
  it('parseDiscoveryPayload and parseFederatedNode throw only typed errors', () => {
    fc.assert(fc.property(value, (v) => {
      typedOnly(() => parseDiscoveryPayload(v))
      typedOnly(() => parseFederatedNode(v))
    }), { numRuns: 3000 })
  })

  it('mutated node objects are either valid nodes or typed errors', () => {
    const base = makeNode('did:key:z6Mkbase') as unknown as Record<string, unknown>
    const keys = ['node_id', 'node_type', 'capabilities', 'network_info', 'trust_profile', 'last_seen']
    fc.assert(fc.property(fc.constantFrom(...keys), value, (k, v) => {
      typedOnly(() => parseFederatedNode({ ...base, [k]: v }))
    }), { numRuns: 2000 })
  })

  it('the record verifier rejects corrupted record bytes with typed errors only', async () => {
    const id = generateIdentity()
    const rec = await createNodeRecord(makeNode(id.did), id.signer)
    const verify = createRecordVerifier({ signatureVerifier: createSignatureVerifier() })
    let accepted = 0
    await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: rec.bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), fc.nat({ max: 3 }), async (pos, xor, cut) => {
      const b = rec.bytes.slice(0, rec.bytes.length - cut)
      if (pos < b.length) b[pos] = (b[pos] ?? 0) ^ xor
      try {
        await verify(b)
        accepted++
      } catch (err) {
        if (!isKosMeshError(err)) throw err
      }
    }), { numRuns: 1500 })
    // Every corruption must be caught (a flip anywhere breaks decode, checks or the signature).
    expect(accepted).toBe(0)
  })
})
