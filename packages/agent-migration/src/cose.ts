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
 * The envelope itself (writing, strict bounded decoding, the Sig_structure) is klp-codec's
 * (`signCoseSign1`, `decodeCoseSign1`); this module binds it to our AAD, errors and did:key check.
 * Signers are did:key identities, verified locally (no resolver): the kid names the key.
 */
import { createHash } from 'node:crypto'
import { describeValue, didOfKeyId, KosMeshError, LimitExceededError, type KLPValue, type Signer } from '@kos-mesh/interface'
import { CoseSign1SignerError, CoseSign1TooLargeError, InvalidCoseSign1Error, decodeCoseSign1, decodeValue, encodeValue, signCoseSign1, type CodecLimits, type DecodedCoseSign1 } from '@kos-mesh/klp-codec'
import { ed25519Verify, publicKeyFromDidKey } from '@kos-mesh/did-security'
import { BundleTooLargeError, InvalidBundleError, MigrationSignatureError } from './errors.js'

/** The external AAD of every signature of this package, as text (the signed bytes are its UTF-8). */
export const MIGRATION_AAD = 'kos-mesh/agent-migration/v1'

const MAX_KID = 600

export function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest())
}

/** Signs `body` (DAG-CBOR) as a COSE_Sign1 under MIGRATION_AAD; the signer must be a key of `expectedSigner`. */
export async function signObject(body: KLPValue, signer: Signer, expectedSigner: string, limits?: Partial<CodecLimits>): Promise<Uint8Array> {
  if (signer === null || typeof signer !== 'object' || typeof signer.sign !== 'function' || typeof signer.keyId !== 'string') {
    throw new InvalidBundleError(`expected a Signer, got ${describeValue(signer)}`)
  }
  if (didOfKeyId(signer.keyId) !== expectedSigner) throw new MigrationSignatureError(`expected a signer of ${expectedSigner}, got ${signer.keyId}`)
  const payload = encodeValue(body, limits === undefined ? undefined : { limits })
  try {
    return await signCoseSign1(payload, signer, { externalAad: MIGRATION_AAD })
  } catch (err) {
    if (err instanceof CoseSign1SignerError) throw new MigrationSignatureError(err.message, { cause: err })
    throw err
  }
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

/**
 * Strictly decodes a signed object and verifies its signature (did:key of the kid). Bounded: more
 * than `maxBytes` throws BundleTooLargeError before parsing; the payload decodes within `limits`.
 * Throws InvalidBundleError for any other form than `signObject` writes, MigrationSignatureError
 * when the signature does not verify.
 */
export function openObject(bytes: Uint8Array, maxBytes: number, limits: Partial<CodecLimits>): OpenedObject {
  if (!(bytes instanceof Uint8Array)) bad(`expected signed bytes, got ${describeValue(bytes)}`)
  let d: DecodedCoseSign1
  try {
    d = decodeCoseSign1(bytes, { maxBytes, maxKidBytes: MAX_KID })
  } catch (err) {
    if (err instanceof CoseSign1TooLargeError) throw new BundleTooLargeError(err.message.replace('a COSE_Sign1', 'a signed object'), { cause: err })
    if (err instanceof InvalidCoseSign1Error) throw new InvalidBundleError(err.message, { cause: err })
    throw err
  }
  const kid = d.kid
  const signer = didOfKeyId(kid)
  if (!signer.startsWith('did:key:') || (kid !== signer && kid !== `${signer}#${signer.slice(8)}`)) bad(`expected the kid of a did:key, got ${describeValue(kid)}`)
  let body: KLPValue
  try {
    body = decodeValue(d.payload, { limits })
  } catch (err) {
    if (!(err instanceof KosMeshError)) throw err
    if (err instanceof LimitExceededError) throw new BundleTooLargeError(`expected a payload within the limits, got ${err.name}: ${err.message}`, { cause: err })
    throw new InvalidBundleError(`expected a DAG-CBOR payload, got ${err.name}: ${err.message}`, { cause: err })
  }
  let key: Uint8Array
  try { key = publicKeyFromDidKey(signer) } catch (err) { throw new InvalidBundleError(`expected an Ed25519 did:key signer, got ${describeValue(signer)}`, { cause: err }) }
  if (!ed25519Verify(key, d.signingInput(MIGRATION_AAD), d.signature)) throw new MigrationSignatureError(`expected a valid signature by ${signer.slice(0, 80)}, got an invalid one`)
  return { body, signer, hash: sha256(bytes) }
}
