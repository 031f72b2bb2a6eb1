/**
 * The COSE_Sign1 (RFC 9052) envelope of entries and delegations, the same form as klp-codec's
 * messages and trust's statements, with an external AAD of our own for domain separation:
 *   #6.18([ bstr .cbor {1: -8, 4: kid}, {}, payload: bstr, signature: bstr .size 64 ])
 *   signing input = ["Signature1", protected, external_aad, payload]
 * A signature made for a KLP message (empty AAD) or a trust statement never verifies here.
 * Writers are did:key identities: the key comes from the DID itself, so verification needs no
 * resolver and is synchronous.
 */
import { didOfKeyId, type Signer } from '@kos-mesh/interface'
import { COSE_ALG_EDDSA, COSE_HEADER_ALG, COSE_HEADER_KID, COSE_SIGN1_TAG, SIGNATURE_LENGTH, SIGNING_CONTEXT } from '@kos-mesh/klp-codec'
import { ed25519Verify, publicKeyFromDidKey } from '@kos-mesh/did-security'
import { InvalidEntryError, InvalidEntrySignatureError, VectorTooLargeError } from './errors.js'

const utf8 = new TextEncoder()
const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
const PROTECTED_LEAD = Uint8Array.from([0xa2, COSE_HEADER_ALG, 0x20 | (-1 - COSE_ALG_EDDSA), COSE_HEADER_KID])
const TAG_HEAD = 0xc0 | COSE_SIGN1_TAG
const MAX_KID = 513

function head(major: number, n: number): number[] {
  const m = major << 5
  if (n < 24) return [m | n]
  if (n < 0x100) return [m | 24, n]
  if (n < 0x10000) return [m | 25, n >>> 8, n & 0xff]
  return [m | 26, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]
}

export function concatBytes(parts: ReadonlyArray<Uint8Array | readonly number[]>): Uint8Array {
  let n = 0
  for (const p of parts) n += p.length
  const out = new Uint8Array(n)
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}

const bstr = (b: Uint8Array): Uint8Array => concatBytes([head(2, b.length), b])
const SIG_PREFIX = concatBytes([[0x84], head(3, SIGNING_CONTEXT.length), utf8.encode(SIGNING_CONTEXT)])

function sigStructure(prot: Uint8Array, aad: Uint8Array, payload: Uint8Array): Uint8Array {
  return concatBytes([SIG_PREFIX, prot, aad, payload])
}

/** Signs `payload` (the body's DAG-CBOR) as a COSE_Sign1 under `aad`. */
export async function signCose(payload: Uint8Array, signer: Signer, aad: string): Promise<Uint8Array> {
  const prot = bstr(concatBytes([PROTECTED_LEAD, bstr(utf8.encode(signer.keyId))]))
  const p = bstr(payload)
  const sig = await signer.sign(sigStructure(prot, bstr(utf8.encode(aad)), p))
  if (!(sig instanceof Uint8Array) || sig.length !== SIGNATURE_LENGTH) throw new InvalidEntrySignatureError(`expected the signer to return ${SIGNATURE_LENGTH} bytes`)
  return concatBytes([[TAG_HEAD, 0x84], prot, [0xa0], p, head(2, SIGNATURE_LENGTH), sig])
}

const bad = (msg: string): never => { throw new InvalidEntryError(msg) }

function readHead(b: Uint8Array, pos: number, major: number, what: string): [number, number] {
  if (pos >= b.length) return bad(`expected ${what}, got the end of the input at offset ${pos}`)
  const first = b[pos] as number
  if (first >> 5 !== major) return bad(`expected ${what} (CBOR major type ${major}), got major type ${first >> 5} at offset ${pos}`)
  const ai = first & 0x1f
  if (ai < 24) return [ai, pos + 1]
  const size = ai === 24 ? 1 : ai === 25 ? 2 : ai === 26 ? 4 : 0
  if (size === 0) return bad(`expected ${what} with a length below 2^32, got additional info ${ai}`)
  if (pos + 1 + size > b.length) return bad(`expected ${what}, got a truncated head at offset ${pos}`)
  let n = 0
  for (let i = 1; i <= size; i++) n = n * 256 + (b[pos + i] as number)
  if (n < (size === 1 ? 24 : size === 2 ? 0x100 : 0x10000)) return bad(`expected ${what} in the shortest CBOR head, got a longer one at offset ${pos}`)
  return [n, pos + 1 + size]
}

function readBstr(b: Uint8Array, pos: number, what: string): [number, number] {
  const [n, start] = readHead(b, pos, 2, what)
  if (n > b.length - start) bad(`expected ${what} of ${n} bytes, got ${b.length - start} left`)
  return [start, start + n]
}

export interface DecodedCose {
  kid: string
  /** The DID of the kid. */
  signer: string
  payload: Uint8Array
  signingInput: Uint8Array
  signature: Uint8Array
}

/** Strictly decodes the envelope (bounded by `maxBytes` before any parsing); does not verify. */
export function decodeCose(bytes: Uint8Array, aad: string, maxBytes: number): DecodedCose {
  if (!(bytes instanceof Uint8Array)) bad('expected a Uint8Array')
  if (bytes.length > maxBytes) throw new VectorTooLargeError(`expected at most ${maxBytes} bytes, got ${bytes.length}`)
  const b = bytes
  if (b[0] !== TAG_HEAD || b[1] !== 0x84) bad('expected a COSE_Sign1 (tag 18, array of 4)')
  const [pStart, pEnd] = readBstr(b, 2, 'the protected header')
  for (let i = 0; i < PROTECTED_LEAD.length; i++) if (pStart + i >= pEnd || b[pStart + i] !== PROTECTED_LEAD[i]) bad('expected the protected header {1: -8, 4: kid}')
  const [kStart, kEnd] = readBstr(b.subarray(0, pEnd), pStart + PROTECTED_LEAD.length, 'the kid')
  if (kEnd !== pEnd) bad('expected the protected header to end with the kid')
  if (kEnd - kStart > MAX_KID || kEnd === kStart) bad(`expected a kid of 1..${MAX_KID} bytes, got ${kEnd - kStart}`)
  let kid = ''
  try { kid = fatalUtf8.decode(b.subarray(kStart, kEnd)) } catch (err) { throw new InvalidEntryError('expected the kid to be UTF-8', { cause: err }) }
  if (b[pEnd] !== 0xa0) bad('expected an empty unprotected header map')
  const [bStart, bEnd] = readBstr(b, pEnd + 1, 'the payload')
  const [sigLen, sEnd] = readHead(b, bEnd, 2, 'the signature')
  if (sigLen !== SIGNATURE_LENGTH || b.length - sEnd !== SIGNATURE_LENGTH) bad(`expected a ${SIGNATURE_LENGTH}-byte signature and nothing after it`)
  return {
    kid,
    signer: didOfKeyId(kid),
    payload: b.subarray(bStart, bEnd),
    signingInput: sigStructure(b.subarray(2, pEnd), bstr(utf8.encode(aad)), b.subarray(pEnd + 1, bEnd)),
    signature: b.subarray(sEnd),
  }
}

/** Verifies a decoded envelope under the did:key of its kid. Throws InvalidEntrySignatureError. */
export function verifyCose(d: DecodedCose): void {
  let pk: Uint8Array
  try {
    pk = publicKeyFromDidKey(d.signer)
  } catch (err) {
    throw new InvalidEntrySignatureError(`expected a did:key signer, got ${d.signer.slice(0, 80)}`, { cause: err })
  }
  if (d.kid !== d.signer && d.kid !== `${d.signer}#${d.signer.slice(8)}`) throw new InvalidEntrySignatureError('expected the kid of a did:key')
  if (!ed25519Verify(pk, d.signingInput, d.signature)) throw new InvalidEntrySignatureError(`expected a valid signature by ${d.signer.slice(0, 80)}, got an invalid one`)
}
