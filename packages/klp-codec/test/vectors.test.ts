import { readFileSync } from 'node:fs'
import { verify, createPublicKey } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { InvalidAddressError } from '@kos-mesh/interface'
import {
  computeMessageId, createMessage, decodeFrame, decodeMessage, decodeValue, encodeBody, encodeFrame, encodeMessage, encodeValue,
  formatAddress, getSigningInput, parseAddress, signMessage, verifyMessage,
} from '../src/index.js'
import { ed25519Signer, ed25519Verifier } from './helpers/ed25519.js'
import { fromJson } from './vectors/json.js'
import * as dagCbor from '@ipld/dag-cbor'

const vectors = JSON.parse(readFileSync(new URL('./vectors/klp-vectors.json', import.meta.url), 'utf8'))
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const encodeBstrHead = (n: number): string => hex(encodeValue(new Uint8Array(n))).slice(0, n < 24 ? 2 : n < 256 ? 4 : 6)

describe('committed wire vectors', () => {
  it('addresses parse and format as committed', () => {
    expect(vectors.addresses.length).toBeGreaterThan(3)
    for (const a of vectors.addresses) {
      expect(parseAddress(a.input)).toEqual(a.parsed)
      expect(formatAddress(a.parsed)).toBe(a.formatted)
    }
    for (const s of vectors.invalidAddresses) expect(() => parseAddress(s)).toThrow(InvalidAddressError)
  })

  it('values encode to the committed DAG-CBOR bytes, as @ipld/dag-cbor writes them', () => {
    expect(vectors.values.length).toBeGreaterThan(15)
    for (const v of vectors.values) {
      const value = fromJson(v.value)
      expect(hex(encodeValue(value))).toBe(v.cbor)
      expect(hex(dagCbor.encode(value))).toBe(v.cbor)
      const back = decodeValue(unhex(v.cbor))
      const expected = fromJson(v.decoded ?? v.value)
      // Object.is, so a -0 coming back (it must not) is told from 0
      if (typeof expected !== 'object' || expected === null) expect(Object.is(back, expected), `${v.cbor}`).toBe(true)
      else expect(back).toEqual(expected)
    }
    expect(vectors.values.find((v: { cbor: string; decoded?: unknown }) => v.cbor === '00' && v.decoded !== undefined)).toBeDefined() // the -0 vector
  })

  it('messages reproduce the committed body, id, signing input, signature, message and frame', async () => {
    const signer = ed25519Signer(vectors.signer.keyId, unhex(vectors.signer.seed))
    expect(hex(signer.publicKey)).toBe(vectors.signer.publicKey)
    const verifier = ed25519Verifier({ [signer.keyId]: signer.publicKey })
    const pub = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(signer.publicKey).toString('base64url') }, format: 'jwk' })
    expect(vectors.messages.length).toBe(3)
    for (const v of vectors.messages) {
      const unsigned = createMessage(fromJson(v.init))
      expect(hex(encodeBody(unsigned))).toBe(v.body)
      expect(computeMessageId(unsigned)).toBe(v.messageId)
      expect(hex(dagCbor.encode(dagCbor.decode(unhex(v.body))))).toBe(v.body)
      const signed = await signMessage(unsigned, signer)
      expect(hex(getSigningInput(signed))).toBe(v.signingInput)
      expect(hex(signed.signature)).toBe(v.signature)
      expect(hex(encodeMessage(signed))).toBe(v.message)
      expect(v.message.startsWith(`d284${encodeBstrHead(v.protectedHeader.length / 2)}${v.protectedHeader}a0`)).toBe(true)
      expect(hex(encodeFrame(encodeMessage(signed)))).toBe(v.frame)
      // Decoding the committed bytes: the same message, verified with a bare node:crypto call too.
      const decoded = decodeMessage(decodeFrame(unhex(v.frame)).body)
      expect(decoded).toEqual(signed)
      await verifyMessage(decoded, verifier)
      expect(verify(null, unhex(v.signingInput), pub, unhex(v.signature))).toBe(true)
    }
  })
})
