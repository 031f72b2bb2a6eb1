/**
 * The COSE_Sign1 (RFC 9052) envelope of entries and delegations, the same form as klp-codec's
 * messages and trust's statements, with an external AAD of our own for domain separation:
 *   #6.18([ bstr .cbor {1: -8, 4: kid}, {}, payload: bstr, signature: bstr .size 64 ])
 *   signing input = ["Signature1", protected, external_aad, payload]
 * A signature made for a KLP message (empty AAD) or a trust statement never verifies here.
 * The envelope itself (writing, strict bounded decoding, the Sig_structure) is klp-codec's
 * (`signCoseSign1`, `decodeCoseSign1`); this module binds it to our AAD, errors and did:key check.
 * Writers are did:key identities: the key comes from the DID itself, so verification needs no
 * resolver and is synchronous.
 */
import { didOfKeyId, type Signer } from '@kos-mesh/interface'
import { CoseSign1SignerError, CoseSign1TooLargeError, InvalidCoseSign1Error, decodeCoseSign1, signCoseSign1, type DecodedCoseSign1 } from '@kos-mesh/klp-codec'
import { ed25519Verify, publicKeyFromDidKey } from '@kos-mesh/did-security'
import { InvalidEntryError, InvalidEntrySignatureError, VectorTooLargeError } from './errors.js'

const MAX_KID = 513

/** Signs `payload` (the body's DAG-CBOR) as a COSE_Sign1 under `aad`. */
export async function signCose(payload: Uint8Array, signer: Signer, aad: string): Promise<Uint8Array> {
  try {
    return await signCoseSign1(payload, signer, { externalAad: aad })
  } catch (err) {
    if (err instanceof CoseSign1SignerError) throw new InvalidEntrySignatureError(err.message, { cause: err })
    throw err
  }
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
  let d: DecodedCoseSign1
  try {
    d = decodeCoseSign1(bytes, { maxBytes, minKidBytes: 1, maxKidBytes: MAX_KID })
  } catch (err) {
    if (err instanceof CoseSign1TooLargeError) throw new VectorTooLargeError(err.message, { cause: err })
    if (err instanceof InvalidCoseSign1Error) throw new InvalidEntryError(err.message, { cause: err })
    throw err
  }
  return { kid: d.kid, signer: didOfKeyId(d.kid), payload: d.payload, signingInput: d.signingInput(aad), signature: d.signature }
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
