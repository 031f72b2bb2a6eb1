import { describe, expect, it } from 'vitest'
import { KLPMessageType } from '@kos-mesh/interface'
import type { KLPValue, Signer } from '@kos-mesh/interface'
import { createMessage, decodeMessage, encodeMessage, signMessage } from '@kos-mesh/klp-codec'
import { createSignatureVerifier, generateIdentity } from '@kos-mesh/did-security'
import { kadIdOf } from '../src/kad/id.js'
import { createProviderRecord, createProviderVerifier, providerKey, PROVIDER_TARGET, checkProviderName } from '../src/dht/provider.js'

// Signed provider records with the real codec and real Ed25519.

const T0 = 1_800_000_000_000
const clock = { t: T0, now() { return this.t } }
const signatureVerifier = createSignatureVerifier()
const verify = createProviderVerifier({ signatureVerifier, clock })

async function raw(data: KLPValue, signer: Signer, over: { ttl?: number; timestamp?: number; type?: string } = {}): Promise<Uint8Array> {
  const msg = createMessage({
    type: (over.type ?? KLPMessageType.PEER_DISCOVERY) as 'PEER_DISCOVERY',
    source: 'klp://p.test/dht',
    target: PROVIDER_TARGET,
    data,
    ttl: over.ttl ?? 3600,
    timestamp: over.timestamp ?? T0,
  })
  return encodeMessage(await signMessage(msg, signer))
}

describe('provider records', () => {
  it('sign and verify: the provider is the signer, the key is sha256(name)', async () => {
    clock.t = T0
    const a = generateIdentity()
    const rec = await createProviderRecord('capability:vector_storage', a.signer, { now: T0, ttlSeconds: 600 })
    expect(rec.provider).toBe(a.did)
    expect(rec.key).toEqual(kadIdOf('capability:vector_storage'))
    expect(rec.key).toEqual(providerKey('capability:vector_storage'))
    const got = await verify(rec.bytes)
    expect(got).toMatchObject({ provider: a.did, name: 'capability:vector_storage', timestamp: T0, expiresAt: T0 + 600_000, messageId: rec.messageId })
    expect(got.key).toEqual(rec.key)
  })

  it('checks provider names', () => {
    for (const ok of ['capability:vector_storage', 'agent:summarizer', 'service:a.b/c@1']) expect(checkProviderName(ok)).toBe(ok)
    for (const bad of ['', 'novalue', ':x', 'Cap:x', 'capability:', 'capability:with space', `agent:${'x'.repeat(300)}`, 5, null]) {
      expect(() => checkProviderName(bad)).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    }
  })

  it('rejects tampered bytes (the signature no longer checks)', async () => {
    clock.t = T0
    const a = generateIdentity()
    const rec = await createProviderRecord('agent:summarizer', a.signer, { now: T0 })
    const tampered = rec.bytes.slice()
    tampered[tampered.length - 1]! ^= 1
    await expect(verify(tampered)).rejects.toMatchObject({ name: 'InvalidProviderSignatureError', code: 'ERR_INVALID_PROVIDER_SIGNATURE' })
  })

  it('rejects a forged record: the body of one provider under another signer\'s signature', async () => {
    clock.t = T0
    const a = generateIdentity()
    const b = generateIdentity()
    const ra = await createProviderRecord('capability:vector_storage', a.signer, { now: T0 })
    const rb = await createProviderRecord('capability:vector_storage', b.signer, { now: T0 })
    // a's body with b's signature block: the signer field says a, the signature is b's
    const ma = decodeMessage(ra.bytes)
    const mb = decodeMessage(rb.bytes)
    const forged = encodeMessage({ ...ma, signature: mb.signature })
    await expect(verify(forged)).rejects.toMatchObject({ name: 'InvalidProviderSignatureError' })
  })

  it('rejects expired records and records from the future', async () => {
    const a = generateIdentity()
    const rec = await createProviderRecord('agent:x', a.signer, { now: T0, ttlSeconds: 60 })
    clock.t = T0 + 60_000 + 30_001
    await expect(verify(rec.bytes)).rejects.toMatchObject({ name: 'ProviderRecordExpiredError', code: 'ERR_PROVIDER_RECORD_EXPIRED' })
    clock.t = T0 + 60_000 + 29_000 // within the skew window
    await expect(verify(rec.bytes)).resolves.toMatchObject({ provider: a.did })
    clock.t = T0 - 30_001
    await expect(verify(rec.bytes)).rejects.toMatchObject({ name: 'ProviderRecordFromFutureError', code: 'ERR_PROVIDER_RECORD_FROM_FUTURE' })
  })

  it.each([
    ['a wrong key', (s: Signer) => raw({ action: 'dht_provider', key: kadIdOf('agent:y'), name: 'agent:x' }, s)],
    ['a short key', (s: Signer) => raw({ action: 'dht_provider', key: new Uint8Array(8), name: 'agent:x' }, s)],
    ['a bad name', (s: Signer) => raw({ action: 'dht_provider', key: kadIdOf('agent x'), name: 'agent x' }, s)],
    ['an extra field', (s: Signer) => raw({ action: 'dht_provider', key: kadIdOf('agent:x'), name: 'agent:x', expires: 1 }, s)],
    ['another action', (s: Signer) => raw({ action: 'record', key: kadIdOf('agent:x'), name: 'agent:x' }, s)],
    ['a payload that is not an object', (s: Signer) => raw('dht_provider', s)],
    ['another message type', (s: Signer) => raw({ action: 'dht_provider', key: kadIdOf('agent:x'), name: 'agent:x' }, s, { type: KLPMessageType.TASK_REQUEST })],
    ['a ttl over the bound', (s: Signer) => raw({ action: 'dht_provider', key: kadIdOf('agent:x'), name: 'agent:x' }, s, { ttl: 49 * 3600 })],
    ['a zero ttl', (s: Signer) => raw({ action: 'dht_provider', key: kadIdOf('agent:x'), name: 'agent:x' }, s, { ttl: 0 })],
  ])('rejects %s with MalformedProviderRecordError', async (_what, make) => {
    clock.t = T0
    const a = generateIdentity()
    await expect(verify(await make(a.signer))).rejects.toMatchObject({ name: 'MalformedProviderRecordError', code: 'ERR_MALFORMED_PROVIDER_RECORD' })
  })

  it('rejects undecodable and oversized bytes', async () => {
    clock.t = T0
    await expect(verify(new Uint8Array([1, 2, 3]))).rejects.toMatchObject({ name: 'MalformedProviderRecordError' })
    await expect(verify(new Uint8Array(3000))).rejects.toMatchObject({ name: 'RecordLimitExceededError' })
    await expect(verify('x' as unknown as Uint8Array)).rejects.toMatchObject({ name: 'MalformedProviderRecordError' })
  })

  it('refuses to create a record with a bad name or ttl', async () => {
    const a = generateIdentity()
    await expect(createProviderRecord('bad name', a.signer)).rejects.toMatchObject({ name: 'InvalidParametersError' })
    await expect(createProviderRecord('agent:x', a.signer, { ttlSeconds: 0 })).rejects.toMatchObject({ name: 'InvalidParametersError' })
  })
})
