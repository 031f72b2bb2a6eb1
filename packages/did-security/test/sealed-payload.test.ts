import { describe, expect, it } from 'vitest'
import { KLPMessageType } from '@kos-mesh/interface'
import { createMessage, decodeMessage, encodeMessage, signMessage, verifyMessage } from '@kos-mesh/klp-codec'
import { createSignatureVerifier, generateIdentity, openSealedPayload, sealPayloadTo } from '../src/index.js'

describe('sealed KLP payloads through the codec envelope', () => {
  const alice = generateIdentity()
  const bob = generateIdentity()
  const eve = generateIdentity()
  const data = { secret: 'meet at the usual node', n: 42 }

  async function sealedMessage(options: { sender?: typeof alice; compress?: boolean } = {}) {
    const m = createMessage({ type: KLPMessageType.TASK_REQUEST, source: 'klp://alice.mesh.kai/', target: 'klp://bob.mesh.kai/', data })
    const sealed = { ...m, payload: sealPayloadTo(m.payload, bob.did, options) }
    const signed = await signMessage(sealed, alice.signer)
    return decodeMessage(encodeMessage(signed)) // what bob receives
  }

  it('anonymous: only the recipient opens it, and the wire carries no plaintext', async () => {
    const msg = await sealedMessage()
    await verifyMessage(msg, createSignatureVerifier())
    expect(msg.payload.encryption).toMatchObject({ enabled: true, algorithm: 'AES-256-GCM', key_id: bob.x25519KeyId })
    expect(msg.payload.encryption.ephemeral_key).toHaveLength(32)
    expect(Buffer.from(encodeMessage(msg)).includes(Buffer.from('usual node'))).toBe(false)
    expect(openSealedPayload(bob, msg.payload).data).toEqual(data)
    expect(() => openSealedPayload(eve, msg.payload)).toThrow(expect.objectContaining({ name: 'SealOpenError' }))
  })

  it('authenticated: opens only as sealed by the expected sender', async () => {
    const msg = await sealedMessage({ sender: alice, compress: true })
    expect(msg.payload.compression.enabled).toBe(true)
    const signerDid = msg.signer.split('#')[0]!
    expect(openSealedPayload(bob, msg.payload, { sender: signerDid }).data).toEqual(data)
    // claiming another sender derives another key: the tag check fails
    expect(() => openSealedPayload(bob, msg.payload, { sender: eve.did })).toThrow(expect.objectContaining({ name: 'SealOpenError' }))
    // opening it as anonymous fails too
    expect(() => openSealedPayload(bob, msg.payload)).toThrow(expect.objectContaining({ name: 'SealOpenError' }))
  })

  it('the ephemeral key is bound: swapping it or the key id fails to open', async () => {
    const msg = await sealedMessage()
    const other = sealPayloadTo(msg.payload.encryption.enabled ? { content_type: 'application/cbor', data: 1, encryption: { enabled: false }, compression: { enabled: false } } : msg.payload, bob.did)
    const swapped = { ...msg.payload, encryption: { ...msg.payload.encryption, ephemeral_key: other.encryption.ephemeral_key } }
    expect(() => openSealedPayload(bob, swapped)).toThrow(expect.objectContaining({ name: 'SealOpenError' }))
    const wrongKeyId = { ...msg.payload, encryption: { ...msg.payload.encryption, key_id: eve.x25519KeyId } }
    expect(() => openSealedPayload(bob, wrongKeyId)).toThrow(expect.objectContaining({ name: 'SealOpenError' }))
    const plain = { content_type: 'application/cbor', data: 1, encryption: { enabled: false }, compression: { enabled: false } }
    expect(() => openSealedPayload(bob, plain)).toThrow(expect.objectContaining({ name: 'SealOpenError' }))
  })
})
