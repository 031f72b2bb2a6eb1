/**
 * The JSON + JWS baseline of the envelope benchmark (bench/jws.ts) against `jose`: jose verifies
 * the JWS we sign and we verify the JWS jose signs, in both shapes (DIDComm General JSON with an
 * attached payload; A2A-style detached payload over the JCS form). Ed25519 is deterministic, so
 * with the same protected header both sides produce the very same payload, header and signature. No timing here.
 */
import { GeneralSign, generalVerify, importJWK } from 'jose'
import { describe, expect, it } from 'vitest'
import type { CreateMessageInit } from '../src/index.js'
import {
  DIDCOMM_SIGNED_TYP, didKeyUrl, jcs, jsonMessage, nodeSigner, nodeVerifier, signA2a, signDidcomm, verifyA2a, verifyDidcomm,
} from '../bench/jws.js'
import type { GeneralJws } from '../bench/jws.js'
import { ed25519Signer } from './helpers/ed25519.js'

const key = ed25519Signer('unused', new Uint8Array(32).fill(9))
const kid = didKeyUrl(key.publicKey)
const other = ed25519Signer('other')
const rawSign = nodeSigner(key.privateKey)
const rawVerify = nodeVerifier(new Map([[kid, key.publicKeyObject]]))
const jwk = key.privateKey.export({ format: 'jwk' })
const josePrivate = await importJWK({ kty: 'OKP', crv: 'Ed25519', x: jwk.x, d: jwk.d }, 'EdDSA')
const josePublic = await importJWK({ kty: 'OKP', crv: 'Ed25519', x: jwk.x }, 'EdDSA')
const joseOther = await importJWK({ ...other.publicKeyObject.export({ format: 'jwk' }) }, 'EdDSA')

const init: CreateMessageInit = {
  type: 'TASK_REQUEST', source: 'klp://node-a.mesh.kai/agents/planner', target: 'klp://node-b.mesh.kai/agents/genie?mode=fast',
  data: { task: 'summarize', input: 'grüße, 世界 😀 "quoted" \\ back', blob: new Uint8Array([0, 1, 2, 250, 251, 252, 253, 254, 255]) },
  correlation_id: 'req-1', routing_hints: [{ kind: 'region', value: 'eu-west' }], timestamp: 1_732_460_000_123,
  trust_requirements: { minimum_trust_score: 0.5, required_endorsements: 1, verification_level: 'basic' },
}
const message = jsonMessage(init, 'b3f1c0de-0000-4000-8000-000000000001')
const text = new TextEncoder()
const expectedBlob = new Uint8Array([0, 1, 2, 250, 251, 252, 253, 254, 255])

describe('DIDComm signed message (JWS General JSON) vs jose', () => {
  it('jose verifies the JWS we sign, with our protected header', async () => {
    const wire = signDidcomm(message, kid, rawSign)
    const { payload, protectedHeader } = await generalVerify(JSON.parse(wire) as GeneralJws, josePublic)
    expect(protectedHeader).toEqual({ alg: 'EdDSA', kid, typ: DIDCOMM_SIGNED_TYP })
    expect(JSON.parse(new TextDecoder().decode(payload))).toEqual(message)
    await expect(generalVerify(JSON.parse(wire) as GeneralJws, joseOther)).rejects.toThrow()
  })

  it('we verify the JWS jose signs, and both sign to the same strings', async () => {
    const jws = await new GeneralSign(text.encode(JSON.stringify(message)))
      .addSignature(josePrivate).setProtectedHeader({ alg: 'EdDSA', kid, typ: DIDCOMM_SIGNED_TYP })
      .sign()
    const wire = JSON.stringify(jws)
    const out = verifyDidcomm(wire, rawVerify)
    expect(out.kid).toBe(kid)
    expect((out.message.payload as { data: { blob: Uint8Array } }).data.blob).toEqual(expectedBlob)
    // same payload, protected header and signature strings (jose writes the members in another order)
    expect(JSON.parse(wire)).toEqual(JSON.parse(signDidcomm(message, kid, rawSign)))
  })

  it('both reject a changed payload, an unknown kid and a wrong typ', async () => {
    const jws = JSON.parse(signDidcomm(message, kid, rawSign)) as GeneralJws
    const changed = { ...jws, payload: Buffer.from(JSON.stringify({ ...message, type: 'TASK_RESPONSE' })).toString('base64url') }
    expect(() => verifyDidcomm(JSON.stringify(changed), rawVerify)).toThrow(/does not verify/)
    await expect(generalVerify(changed, josePublic)).rejects.toThrow()
    expect(() => verifyDidcomm(signDidcomm(message, 'did:key:zUnknown#zUnknown', rawSign), rawVerify)).toThrow(/does not verify/)
    const plainTyp = await new GeneralSign(text.encode('{}')).addSignature(josePrivate).setProtectedHeader({ alg: 'EdDSA', kid, typ: 'JWT' }).sign()
    expect(() => verifyDidcomm(JSON.stringify(plainTyp), rawVerify)).toThrow(/typ/)
  })
})

describe('A2A style: detached JWS over the JCS form, in a JSON-RPC request', () => {
  it('jose verifies our detached signature over JCS(message)', async () => {
    const rpc = JSON.parse(signA2a(message, kid, rawSign)) as { params: { signatures: GeneralJws['signatures'] } & Record<string, unknown> }
    const { signatures, ...sent } = rpc.params
    const attached = { payload: Buffer.from(jcs(sent)).toString('base64url'), signatures }
    const { payload, protectedHeader } = await generalVerify(attached, josePublic)
    expect(protectedHeader).toEqual({ alg: 'EdDSA', kid })
    expect(new TextDecoder().decode(payload)).toBe(jcs(message))
  })

  it('we verify a detached signature jose makes over JCS(message), whatever the key order on the wire', async () => {
    const jws = await new GeneralSign(text.encode(jcs(message))).addSignature(josePrivate).setProtectedHeader({ alg: 'EdDSA', kid }).sign()
    const reversed = Object.fromEntries(Object.entries(message).reverse())
    const wire = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'message/send', params: { ...reversed, signatures: jws.signatures } })
    const out = verifyA2a(wire, rawVerify)
    expect(out.kid).toBe(kid)
    expect((out.message.payload as { data: { blob: Uint8Array } }).data.blob).toEqual(expectedBlob)
    const tampered = wire.replace('"priority":5', '"priority":10')
    expect(tampered).not.toBe(wire)
    expect(() => verifyA2a(tampered, rawVerify)).toThrow(/does not verify/)
  })

  it('canonicalizes as RFC 8785 does (its examples: numbers, string escapes, key order by UTF-16 units)', () => {
    const parsed = JSON.parse('{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}') as unknown
    expect(jcs(parsed)).toBe('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}')
    const keys = JSON.parse('{"\\u20ac":1,"\\r":2,"\\ufb33":3,"1":4,"\\ud83d\\ude00":5,"\\u0080":6,"\\u00f6":7}') as Record<string, number>
    expect(jcs(keys)).toBe(`{"\\r":2,"1":4,"\u0080":6,"ö":7,"€":1,"😀":5,"דּ":3}`)
  })
})
