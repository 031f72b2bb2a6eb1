/**
 * Signed objects of agent migration (requests, delegations, audit entries, votes) as standard
 * COSE_Sign1 (RFC 9052), like KLP messages and trust statements, under their own domain:
 *   signed        = #6.18([ protected: bstr, unprotected: {}, payload: bstr, signature: bstr .size 64 ])
 *   protected     = bstr .cbor { 1 (alg): -8 (EdDSA), 4 (kid): bstr (UTF-8 of the signer's key id) }
 *   payload       = the body, exact DAG-CBOR (klp-codec's encoder)
 *   signing input = [ "Signature1", protected, external_aad, payload ]
 *   external_aad  = UTF-8 of "kos-mesh/agent-migration/v1" (MIGRATION_AAD)
 * A KLP message signs with an empty external_aad and a trust statement with "kos-mesh/trust/v1",
 * so no signature made for one of them verifies as one of ours, even over the same payload bytes.
 * Signers are did:key identities, verified locally (no resolver): the kid names the key.
 */
import { createHash } from 'node:crypto'
import { describeValue, didOfKeyId, KosMeshError, LimitExceededError, type KLPValue, type Signer } from '@kos-mesh/interface'
import { COSE_SIGN1_TAG, SIGNATURE_LENGTH, SIGNING_CONTEXT, decodeValue, encodeValue, type CodecLimits } from '@kos-mesh/klp-codec'
import { ed25519Verify, publicKeyFromDidKey } from '@kos-mesh/did-security'
import { BundleTooLargeError, InvalidBundleError, MigrationSignatureError } from './errors.js'

/** The external AAD of every signature of this package, as text (the signed bytes are its UTF-8). */
export const MIGRATION_AAD = 'kos-mesh/agent-migration/v1'

const utf8 = new TextEncoder()
const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
const PROT_LEAD = [0xa2, 0x01, 0x27, 0x04]
const MAX_KID = 600

export function cborHead(major: number, n: number): Uint8Array {
  const m = major << 5
  if (n < 24) return Uint8Array.of(m | n)
  if (n < 0x100) return Uint8Array.of(m | 24, n)
  if (n < 0x10000) return Uint8Array.of(m | 25, n >>> 8, n & 0xff)
  if (n < 0x100000000) return Uint8Array.of(m | 26, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)
  throw new BundleTooLargeError(`expected an item shorter than 2^32, got ${n}`)
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0
  for (const p of parts) n += p.length
  const out = new Uint8Array(n)
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}

const bstr = (b: Uint8Array): Uint8Array => concatBytes([cborHead(2, b.length), b])
const SIG_PREFIX = concatBytes([Uint8Array.of(0x84), cborHead(3, SIGNING_CONTEXT.length), utf8.encode(SIGNING_CONTEXT)])
const AAD_ITEM = bstr(utf8.encode(MIGRATION_AAD))

export function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest())
}

function sigStructure(prot: Uint8Array, payloadItem: Uint8Array): Uint8Array {
  return concatBytes([SIG_PREFIX, prot, AAD_ITEM, payloadItem])
}

/** Signs `body` (DAG-CBOR) as a COSE_Sign1 under MIGRATION_AAD; the signer must be a key of `expectedSigner`. */
export async function signObject(body: KLPValue, signer: Signer, expectedSigner: string, limits?: Partial<CodecLimits>): Promise<Uint8Array> {
  if (signer === null || typeof signer !== 'object' || typeof signer.sign !== 'function' || typeof signer.keyId !== 'string') {
    throw new InvalidBundleError(`expected a Signer, got ${describeValue(signer)}`)
  }
  if (didOfKeyId(signer.keyId) !== expectedSigner) throw new MigrationSignatureError(`expected a signer of ${expectedSigner}, got ${signer.keyId}`)
  const payload = bstr(encodeValue(body, limits === undefined ? undefined : { limits }))
  const prot = bstr(concatBytes([Uint8Array.from(PROT_LEAD), bstr(utf8.encode(signer.keyId))]))
  const sig: unknown = await signer.sign(sigStructure(prot, payload))
  if (!(sig instanceof Uint8Array) || sig.length !== SIGNATURE_LENGTH) throw new MigrationSignatureError(`expected a ${SIGNATURE_LENGTH}-byte signature, got ${describeValue(sig)}`)
  return concatBytes([Uint8Array.of(0xc0 | COSE_SIGN1_TAG, 0x84), prot, Uint8Array.of(0xa0), payload, cborHead(2, SIGNATURE_LENGTH), sig])
}

/**
 * A signed object (COSE_Sign1 under `MIGRATION_AAD`) that `openObject` decoded and whose signature
 * verified: its body, who signed it, and the hash that audit trails chain on.
 */
export interface OpenedObject {
  /** The decoded body (not yet validated: the caller checks its shape). */
  body: KLPValue
  /** The signer's DID (from the kid). */
  signer: string
  /** SHA-256 of the whole signed bytes (for hash chains). */
  hash: Uint8Array
}

const bad = (msg: string): never => { throw new InvalidBundleError(msg) }

function readHead(b: Uint8Array, pos: number, major: number, what: string): [number, number] {
  if (pos >= b.length) return bad(`expected ${what}, got the end of the input`)
  const first = b[pos] as number
  if (first >> 5 !== major) return bad(`expected ${what} (major type ${major}), got major type ${first >> 5} at offset ${pos}`)
  const ai = first & 0x1f
  if (ai < 24) return [ai, pos + 1]
  const size = ai === 24 ? 1 : ai === 25 ? 2 : ai === 26 ? 4 : 0
  if (size === 0 || pos + 1 + size > b.length) return bad(`expected ${what} with a definite length below 2^32 at offset ${pos}`)
  let n = 0
  for (let i = 1; i <= size; i++) n = n * 256 + (b[pos + i] as number)
  if (n < (size === 1 ? 24 : size === 2 ? 0x100 : 0x10000)) return bad(`expected ${what} in the shortest CBOR head at offset ${pos}`)
  return [n, pos + 1 + size]
}

function readBstr(b: Uint8Array, pos: number, what: string): [number, number] {
  const [n, start] = readHead(b, pos, 2, what)
  if (n > b.length - start) bad(`expected ${what} of ${n} bytes, got ${b.length - start} left`)
  return [start, start + n]
}

/**
 * Strictly decodes a signed object and verifies its signature (did:key of the kid). Bounded: more
 * than `maxBytes` throws BundleTooLargeError before parsing; the payload decodes within `limits`.
 * Throws InvalidBundleError for any other form than `signObject` writes, MigrationSignatureError
 * when the signature does not verify.
 */
export function openObject(bytes: Uint8Array, maxBytes: number, limits: Partial<CodecLimits>): OpenedObject {
  if (!(bytes instanceof Uint8Array)) bad(`expected signed bytes, got ${describeValue(bytes)}`)
  if (bytes.length > maxBytes) throw new BundleTooLargeError(`expected a signed object of at most ${maxBytes} bytes, got ${bytes.length}`)
  const b = bytes
  if (b[0] !== (0xc0 | COSE_SIGN1_TAG) || b[1] !== 0x84) bad('expected a COSE_Sign1 (tag 18, an array of 4)')
  const [pStart, pEnd] = readBstr(b, 2, 'the protected header')
  for (let i = 0; i < PROT_LEAD.length; i++) if (pStart + i >= pEnd || b[pStart + i] !== PROT_LEAD[i]) bad('expected the protected header {1: -8, 4: kid}')
  const [kStart, kEnd] = readBstr(b.subarray(0, pEnd), pStart + PROT_LEAD.length, 'the kid')
  if (kEnd !== pEnd || kEnd - kStart > MAX_KID) bad('expected the protected header to end with a kid of at most 600 bytes')
  let kid = ''
  try { kid = fatal.decode(b.subarray(kStart, kEnd)) } catch (err) { throw new InvalidBundleError('expected the kid in UTF-8', { cause: err }) }
  if (b[pEnd] !== 0xa0) bad('expected an empty unprotected header')
  const [bStart, bEnd] = readBstr(b, pEnd + 1, 'the payload')
  const [sigLen, sStart] = readHead(b, bEnd, 2, 'the signature')
  if (sigLen !== SIGNATURE_LENGTH || b.length - sStart !== SIGNATURE_LENGTH) bad(`expected a ${SIGNATURE_LENGTH}-byte signature ending the object`)
  const signer = didOfKeyId(kid)
  if (!signer.startsWith('did:key:') || (kid !== signer && kid !== `${signer}#${signer.slice(8)}`)) bad(`expected the kid of a did:key, got ${describeValue(kid)}`)
  let body: KLPValue
  try {
    body = decodeValue(b.subarray(bStart, bEnd), { limits })
  } catch (err) {
    if (!(err instanceof KosMeshError)) throw err
    if (err instanceof LimitExceededError) throw new BundleTooLargeError(`expected a payload within the limits, got ${err.name}: ${err.message}`, { cause: err })
    throw new InvalidBundleError(`expected a DAG-CBOR payload, got ${err.name}: ${err.message}`, { cause: err })
  }
  let key: Uint8Array
  try { key = publicKeyFromDidKey(signer) } catch (err) { throw new InvalidBundleError(`expected an Ed25519 did:key signer, got ${describeValue(signer)}`, { cause: err }) }
  const input = sigStructure(b.subarray(2, pEnd), b.subarray(pEnd + 1, bEnd))
  if (!ed25519Verify(key, input, b.subarray(sStart))) throw new MigrationSignatureError(`expected a valid signature by ${signer.slice(0, 80)}, got an invalid one`)
  return { body, signer, hash: sha256(b) }
}
