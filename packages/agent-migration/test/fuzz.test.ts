/**
 * Bad input: random corruption of valid requests, wire payloads, delegations and audit entries
 * yields only typed errors (KosMeshError subclasses), never a crash or an untyped throw.
 */
import { KosMeshError, type KLPValue } from '@kos-mesh/interface'
import { encodeValue } from '@kos-mesh/klp-codec'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { appendAudit, openAuditEntry } from '../src/audit.js'
import { openDelegation, signDelegation } from '../src/delegation.js'
import { computeFingerprint } from '../src/fingerprint.js'
import { buildRequest, openRequest } from '../src/request.js'
import { parseWireRequest } from '../src/wire.js'
import { ident, sampleAgent } from './helpers.js'

const src = ident('fuzz-src')
const dst = ident('fuzz-dst')
const NOW = 5_000_000

function mutate(bytes: Uint8Array, edits: Array<[number, number]>, cut: number): Uint8Array {
  const b = bytes.slice(0, Math.max(1, Math.min(bytes.length, cut)))
  for (const [i, v] of edits) if (i < b.length) b[i] = v
  return b
}

function typedOnly(fn: () => unknown): void {
  try {
    fn()
  } catch (err) {
    if (!(err instanceof KosMeshError)) throw err
  }
}

const edits = fc.array(fc.tuple(fc.nat(4096), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 })

describe('fuzzed decoders give only typed errors', () => {
  it('migration requests', async () => {
    const agent = sampleAgent({ owner: src.did, memory: [{ key: 'm', value: new Uint8Array(100).fill(9) }] })
    let trail = await appendAudit([], { agent_id: 'agent-1', node: src.did, event: 'created', epoch: 0, at: NOW, migration_id: '', peer: src.did, checksum: agent.checksum }, src.signer)
    trail = await appendAudit(trail, { agent_id: 'agent-1', node: src.did, event: 'migrated_out', epoch: 1, at: NOW, migration_id: 'fuzz-migration-0001', peer: dst.did, checksum: agent.checksum }, src.signer)
    const { bytes } = await buildRequest({ migration_id: 'fuzz-migration-0001', agent_id: 'agent-1', owner: src.did, source_node: src.did, target_node: dst.did, migration_type: 'move', epoch: 1, created_at: NOW, expires_at: NOW + 60_000, fingerprint: await computeFingerprint(agent), delegations: [], restore_epoch: -1 }, agent, trail, src.signer, null)
    expect(openRequest(bytes, { now: NOW, self: dst.did }).agent_id).toBe('agent-1')
    let accepted = 0
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(bytes.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), fc.nat(bytes.length + 10), (e, cut) => {
      const b = mutate(bytes, e, cut)
      try {
        openRequest(b, { now: NOW, self: dst.did })
        // accepted only when the bytes are the original ones (edits that wrote the same value)
        expect(Buffer.compare(b, bytes)).toBe(0)
        accepted++
      } catch (err) {
        expect(err).toBeInstanceOf(KosMeshError)
      }
    }), { numRuns: 3000 })
    expect(accepted).toBeLessThan(3000)
  })

  it('wire payloads', () => {
    fc.assert(fc.property(fc.anything({ maxDepth: 3, withObjectString: true }), fc.constantFrom('preflight', 'prepare', 'commit', 'status', 'x'), (v, op) => {
      typedOnly(() => parseWireRequest(v, 1024))
      typedOnly(() => parseWireRequest(typeof v === 'object' && v !== null ? { ...(v as object), op } : { op, v }, 1024))
    }), { numRuns: 3000 })
  })

  it('delegations and audit entries', async () => {
    const d = await signDelegation({ issuer: src.did, delegate: dst.did, agent_id: 'a', actions: ['move'], targets: [], redelegate: false, issued_at: 1, expires_at: 2 }, src.signer)
    const e = (await appendAudit([], { agent_id: 'a', node: src.did, event: 'created', epoch: 0, at: 1, migration_id: '', peer: dst.did, checksum: 'c' }, src.signer))[0]!.bytes
    fc.assert(fc.property(edits, fc.nat(600), (ed, cut) => {
      typedOnly(() => openDelegation(mutate(d, ed, cut)))
      typedOnly(() => openAuditEntry(mutate(e, ed, cut)))
    }), { numRuns: 3000 })
    // well-formed DAG-CBOR of the wrong shape
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 3 }), (v) => {
      typedOnly(() => openDelegation(encodeValue(v as KLPValue)))
    }), { numRuns: 500 })
  })
})
