import { describe, expect, it } from 'vitest'
import { DiscoveryMethod, KLPMessageType } from '@kos-mesh/interface'
import type { KLPValue, Signer } from '@kos-mesh/interface'
import { computeMessageId, createMessage, decodeMessage, encodeMessage, signMessage } from '@kos-mesh/klp-codec'
import { createSignatureVerifier, generateIdentity } from '@kos-mesh/did-security'
import { createNodeRecord, createRecordPeek, createRecordVerifier, RECORD_TARGET } from '../src/record.js'
import { PeerRegistry } from '../src/registry.js'
import { makeNode } from './helpers.js'

// Signed node records with the real codec and real Ed25519 (did-security).

const T0 = 1_700_000_000_000
const clock = { t: T0, now() { return this.t } }
const signatureVerifier = createSignatureVerifier()

async function rawRecord(data: KLPValue, signer: Signer, over: { timestamp?: number; ttl?: number; type?: string } = {}): Promise<Uint8Array> {
  const msg = createMessage({
    type: (over.type ?? KLPMessageType.PEER_DISCOVERY) as 'PEER_DISCOVERY',
    source: 'klp://node.test/peer-discovery',
    target: RECORD_TARGET,
    data,
    ttl: over.ttl ?? 3600,
    timestamp: over.timestamp ?? T0,
  })
  return encodeMessage(await signMessage(msg, signer))
}

function verifier(over: Parameters<typeof createRecordVerifier>[0] extends infer I ? Partial<I> : never = {}) {
  return createRecordVerifier({ signatureVerifier, clock, ...over })
}

describe('node records', () => {
  it('round-trips: a record signed by its node verifies and yields the node', async () => {
    clock.t = T0
    const a = generateIdentity()
    const rec = await createNodeRecord(makeNode(a.did, { address: 'a' }), a.signer, { now: T0, ttlSeconds: 60, source: 'klp://a.test/' })
    const got = await verifier()(rec.bytes)
    expect(got.peerId).toBe(a.did)
    expect(got.node).toEqual(makeNode(a.did, { address: 'a' }))
    expect(got.timestamp).toBe(T0)
    expect(got.expiresAt).toBe(T0 + 60_000)
    expect(got.messageId).toBe(rec.messageId)
    expect(got.address?.authority).toBe('a.test')
    expect(createRecordPeek()(rec.bytes)).toEqual({ peerId: a.did, timestamp: T0 })
  })

  it('refuses to sign a record for another DID', async () => {
    const a = generateIdentity()
    const b = generateIdentity()
    await expect(createNodeRecord(makeNode(a.did), b.signer)).rejects.toMatchObject({ name: 'InvalidParametersError' })
  })

  it('rejects a record signed by a DID other than node_id', async () => {
    clock.t = T0
    const a = generateIdentity()
    const b = generateIdentity()
    const bytes = await rawRecord({ action: 'record', node: makeNode(a.did) as unknown as KLPValue }, b.signer)
    await expect(verifier()(bytes)).rejects.toMatchObject({ name: 'RecordSignerMismatchError', code: 'ERR_RECORD_SIGNER_MISMATCH' })
  })

  it('rejects a forged record (claims the node key id, signed with another key)', async () => {
    clock.t = T0
    const a = generateIdentity()
    const b = generateIdentity()
    const forger: Signer = { algorithm: 'Ed25519', keyId: a.keyId, publicKey: a.publicKey, sign: (d) => b.sign(d) }
    const bytes = await rawRecord({ action: 'record', node: makeNode(a.did) as unknown as KLPValue }, forger)
    await expect(verifier()(bytes)).rejects.toMatchObject({ name: 'InvalidRecordSignatureError' })
  })

  it('rejects a tampered record (content changed, signature kept)', async () => {
    clock.t = T0
    const a = generateIdentity()
    const rec = await createNodeRecord(makeNode(a.did, { trust: 2 }), a.signer, { now: T0 })
    const msg = decodeMessage(rec.bytes)
    const evil = makeNode(a.did, { trust: 10 })
    const changed = { ...msg, payload: { ...msg.payload, data: { action: 'record', node: evil as unknown as KLPValue } } }
    const tampered = encodeMessage({ ...changed, metadata: { ...msg.metadata, message_id: computeMessageId(changed) } })
    await expect(verifier()(tampered)).rejects.toMatchObject({ name: 'InvalidRecordSignatureError' })
    // A flipped signature bit is caught too.
    const flipped = rec.bytes.slice()
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 1
    await expect(verifier()(flipped)).rejects.toMatchObject({ name: 'InvalidRecordSignatureError' })
  })

  it('rejects records from the future and expired records, beyond the clock-skew window', async () => {
    const a = generateIdentity()
    const v = verifier({ clockSkewMs: 1000 })
    const rec = await createNodeRecord(makeNode(a.did), a.signer, { now: T0 + 5000, ttlSeconds: 10 })
    clock.t = T0
    await expect(v(rec.bytes)).rejects.toMatchObject({ name: 'RecordFromFutureError', code: 'ERR_RECORD_FROM_FUTURE' })
    clock.t = T0 + 4000 // 1 s ahead: within the skew
    await expect(v(rec.bytes)).resolves.toMatchObject({ peerId: a.did })
    clock.t = T0 + 5000 + 10_000 + 1000 // expiry + skew: still accepted
    await expect(v(rec.bytes)).resolves.toMatchObject({ peerId: a.did })
    clock.t = T0 + 5000 + 10_000 + 1001
    await expect(v(rec.bytes)).rejects.toMatchObject({ name: 'RecordExpiredError', code: 'ERR_RECORD_EXPIRED' })
    clock.t = T0
  })

  it('rejects malformed records with typed errors', async () => {
    clock.t = T0
    const a = generateIdentity()
    const v = verifier()
    const node = makeNode(a.did) as unknown as Record<string, KLPValue>
    const cases: Array<[KLPValue, string]> = [
      [{ action: 'announce', node }, 'InvalidNodeRecordError'],
      [{ action: 'record', node, extra: 1 }, 'InvalidNodeRecordError'],
      [{ action: 'record', node: { ...node, node_type: 'Robot' } }, 'InvalidNodeRecordError'],
      [{ action: 'record', node: { ...node, sneaky: true } }, 'InvalidNodeRecordError'],
      [{ action: 'record', node: { ...node, trust_profile: { trust_score: 11, endorsements: 0, verification_level: 'basic' } } }, 'InvalidNodeRecordError'],
      [{ action: 'record', node: { ...node, network_info: { ...(node.network_info as Record<string, KLPValue>), addresses: Array.from({ length: 17 }, (_, i) => ({ protocol: 'memory', address: `x${i}`, port: 0, is_public: false, is_relay: false })) } } }, 'RecordLimitExceededError'],
      ['just a string', 'InvalidNodeRecordError'],
    ]
    for (const [data, name] of cases) {
      const bytes = await rawRecord(data, a.signer)
      await expect(v(bytes), JSON.stringify(name)).rejects.toMatchObject({ name })
    }
    const wrongType = await rawRecord({ action: 'record', node }, a.signer, { type: KLPMessageType.TASK_REQUEST })
    await expect(v(wrongType)).rejects.toMatchObject({ name: 'InvalidNodeRecordError' })
    const longTtl = await rawRecord({ action: 'record', node }, a.signer, { ttl: 7 * 24 * 3600 })
    await expect(v(longTtl)).rejects.toMatchObject({ name: 'InvalidNodeRecordError' })
    const ok = await rawRecord({ action: 'record', node }, a.signer)
    await expect(verifier({ maxRecordBytes: 100 })(ok)).rejects.toMatchObject({ name: 'RecordLimitExceededError' })
    await expect(v(new Uint8Array([1, 2, 3]))).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_/) })
  })

  it('a registry merging real records keeps valid ones and counts forged, tampered and foreign ones', async () => {
    clock.t = T0
    const ids = Array.from({ length: 4 }, () => generateIdentity())
    const [a, b, c, d] = ids as [typeof ids[0], typeof ids[0], typeof ids[0], typeof ids[0]]
    const registry = new PeerRegistry({ verifyRecord: verifier(), peekRecord: createRecordPeek(), clock })
    const good = await Promise.all([a, b].map((id) => createNodeRecord(makeNode(id.did), id.signer, { now: T0 })))
    const foreign = await rawRecord({ action: 'record', node: makeNode(c.did) as unknown as KLPValue }, d.signer)
    const forged = await rawRecord({ action: 'record', node: makeNode(d.did) as unknown as KLPValue }, { algorithm: 'Ed25519', keyId: d.keyId, publicKey: d.publicKey, sign: (x) => c.sign(x) })
    const tampered = good[0]!.bytes.slice()
    tampered[tampered.length - 10] = (tampered[tampered.length - 10] ?? 0) ^ 0xff
    const result = await registry.merge([...good.map((g) => g.bytes), foreign, forged, tampered], { source: 'test', method: DiscoveryMethod.SEED })
    expect(result.added).toBe(2)
    // The tampered copy of a's record peeks as "not newer" and is skipped without verification.
    expect(result.unchanged).toBe(1)
    expect(result.reasons).toEqual({ signer_mismatch: 1, forged: 1 })
    expect([...registry.entries()].map((e) => e.peerId).sort()).toEqual([a.did, b.did].sort())
    // A newer tampered record is verified and rejected.
    const newer = await createNodeRecord(makeNode(b.did, { trust: 1 }), b.signer, { now: T0 + 1 })
    const bad = newer.bytes.slice()
    bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 1
    const r2 = await registry.merge([bad], { source: 'test', method: DiscoveryMethod.SEED })
    expect(r2.reasons).toEqual({ forged: 1 })
    // Bytes over the record size bound count as 'limit'; garbage as 'invalid'.
    const small = new PeerRegistry({ verifyRecord: verifier({ maxRecordBytes: 64 }), clock })
    const r3 = await small.merge([newer.bytes, new Uint8Array([0xff, 0x00])], { source: 'test', method: DiscoveryMethod.SEED })
    expect(r3.reasons).toEqual({ limit: 1, invalid: 1 })
    expect(registry.get(b.did)?.record.timestamp).toBe(T0)
  })
})
