/** Splits a COSE_Sign1 with cbor-x (an independent decoder), for tests that need its parts. */
import { Decoder, Tag } from 'cbor-x'

const decoder = new Decoder({ mapsAsObjects: false, useRecords: false } as ConstructorParameters<typeof Decoder>[0])

export interface CoseSign1Parts {
  protectedBytes: Uint8Array
  unprotected: Map<unknown, unknown>
  payload: Uint8Array
  signature: Uint8Array
}

export function coseParts(bytes: Uint8Array): CoseSign1Parts {
  const t = decoder.decode(bytes) as unknown
  if (!(t instanceof Tag) || t.tag !== 18 || !Array.isArray(t.value) || t.value.length !== 4) throw new Error('not a COSE_Sign1_Tagged')
  const [protectedBytes, unprotected, payload, signature] = t.value as [Uint8Array, Map<unknown, unknown>, Uint8Array, Uint8Array]
  return { protectedBytes, unprotected, payload, signature }
}
