import * as dagCbor from '@ipld/dag-cbor'
import { Algorithms, Sign1 } from '@auth0/cose'
import { KLPMessageType, KosMeshError, type KLPValue } from '@kos-mesh/interface'
import { encodeValue } from '@kos-mesh/klp-codec'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { computeChecksum, decodeAgent, encodeAgent, verifyChecksum } from '../src/codec.js'
import { MIGRATION_AAD, openObject, signObject } from '../src/cose.js'
import { MIGRATION_TYPES, MigrationStatus, MigrationType } from '../src/types.js'
import { ident, rejectsWith, sampleAgent } from './helpers.js'

const owner = ident('owner')

describe('the model', () => {
  it('has the spec enums and the AGENT_MIGRATION message type', () => {
    expect(MIGRATION_TYPES).toEqual(['copy', 'move', 'clone', 'backup'])
    expect(MigrationType.MOVE).toBe('move')
    expect(Object.values(MigrationStatus)).toEqual(['pending', 'in_progress', 'completed', 'failed', 'cancelled'])
    expect(KLPMessageType.AGENT_MIGRATION).toBe('AGENT_MIGRATION')
  })
})

describe('bundle encoding', () => {
  it('round-trips, byte-identical to @ipld/dag-cbor', () => {
    const a = sampleAgent({ owner: owner.did, memory: [{ key: 'm', value: new Uint8Array([1, 2, 3]) }] })
    const b = encodeAgent(a)
    expect(Buffer.compare(Buffer.from(b), Buffer.from(dagCbor.encode(a)))).toBe(0)
    const back = decodeAgent(b)
    expect(back.checksum).toBe(a.checksum)
    expect(back.agent_metadata).toEqual(a.agent_metadata)
    expect(a.checksum.startsWith('bafyrei')).toBe(true)
  })

  it('the checksum covers every field', () => {
    const a = sampleAgent({ owner: owner.did })
    const variants = [
      { ...a, serialization_timestamp: 2_001 },
      { ...a, agent_state: { ...a.agent_state, epoch: 1 } },
      { ...a, configuration: { ...a.configuration, code: a.configuration.code + ' ' } },
      { ...a, permissions: { ...a.permissions, capabilities: ['log'], required: ['log'] } },
      { ...a, agent_metadata: { ...a.agent_metadata, owner: ident('mallory').did } },
    ]
    for (const v of variants) {
      expect(computeChecksum(v)).not.toBe(a.checksum)
      expect(() => verifyChecksum(v)).toThrow(expect.objectContaining({ name: 'ChecksumMismatchError' }))
    }
  })

  it('rejects unknown fields, wrong types, byte strings in state, and a bad checksum, with typed errors', async () => {
    const a = sampleAgent({ owner: owner.did })
    const enc = (v: unknown): Uint8Array => encodeValue(v as KLPValue)
    await rejectsWith(() => decodeAgent(enc({ ...a, extra: 1 })), 'InvalidBundleError')
    await rejectsWith(() => decodeAgent(enc({ ...a, serialization_timestamp: -1 })), 'InvalidBundleError')
    await rejectsWith(() => decodeAgent(enc({ ...a, agent_state: { ...a.agent_state, data: new Uint8Array(2) } })), 'InvalidBundleError')
    await rejectsWith(() => decodeAgent(enc({ ...a, agent_metadata: { ...a.agent_metadata, owner: 'did:web:x' } })), 'InvalidBundleError')
    await rejectsWith(() => decodeAgent(enc({ ...a, checksum: 'bafyreixxxx' })), 'ChecksumMismatchError')
    await rejectsWith(() => decodeAgent(new Uint8Array([0xff])), 'InvalidBundleError')
  })

  it('is bounded in bytes, depth and counts', async () => {
    const a = sampleAgent({ owner: owner.did, memory: [{ key: 'big', value: new Uint8Array(4096) }] })
    await rejectsWith(() => decodeAgent(encodeAgent(a), { maxBundleBytes: 1024 }), 'BundleTooLargeError')
    let deep: KLPValue = 1
    for (let i = 0; i < 40; i++) deep = [deep]
    const d = { ...a, agent_state: { ...a.agent_state, data: deep } }
    await rejectsWith(() => decodeAgent(encodeValue(d as unknown as KLPValue, { limits: { maxDepth: 64 } })), 'BundleTooLargeError')
    await rejectsWith(() => encodeAgent(a, { maxMemoryBytes: 100 }), 'BundleTooLargeError')
    const many = sampleAgent({ owner: owner.did, memory: Array.from({ length: 5 }, (_, i) => ({ key: `k${i}`, value: new Uint8Array(1) })) })
    await rejectsWith(() => decodeAgent(encodeAgent(many), { maxMemoryEntries: 4 }), 'InvalidBundleError')
  })

  it('random corruption of a bundle gives only typed errors', () => {
    const bytes = encodeAgent(sampleAgent({ owner: owner.did, memory: [{ key: 'm', value: new Uint8Array(64) }] }))
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(bytes.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat(bytes.length), (edits, cut) => {
      const b = bytes.slice(0, Math.max(1, cut))
      for (const [i, v] of edits) if (i < b.length) b[i] = v
      try {
        decodeAgent(b)
      } catch (err) {
        expect(err).toBeInstanceOf(KosMeshError)
      }
    }), { numRuns: 2000 })
  })
})

describe('signed objects (COSE_Sign1 under the migration AAD)', () => {
  it('verify with an independent COSE library and the AAD, and not without it', async () => {
    const node = ident('node')
    const bytes = await signObject({ hello: 'world' }, node.signer, node.did)
    const key = await crypto.subtle.importKey('raw', node.publicKey, { name: 'Ed25519' }, false, ['verify'])
    await Sign1.decode(bytes).verify(key, { algorithms: [Algorithms.EdDSA], externalAAD: new TextEncoder().encode(MIGRATION_AAD) })
    await expect(Sign1.decode(bytes).verify(key, { algorithms: [Algorithms.EdDSA] })).rejects.toThrow()
    expect(openObject(bytes, 1024, {}).signer).toBe(node.did)
  })

  it('a flipped bit anywhere is refused with a typed error', async () => {
    const node = ident('node')
    const bytes = await signObject({ hello: 'world', n: 1 }, node.signer, node.did)
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes.slice()
      b[i] = (b[i] as number) ^ 0x01
      expect(() => openObject(b, 1024, {})).toThrow(KosMeshError)
    }
  })

  it('refuses a signer that is not the named DID', async () => {
    await rejectsWith(signObject({ a: 1 }, ident('a').signer, ident('b').did), 'MigrationSignatureError')
  })
})
