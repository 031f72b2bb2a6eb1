/**
 * DAG-CBOR for the KLP data model, shared by the encoder (cbor-encode.ts) and the strict decoder
 * (cbor-decode.ts): byte for byte what `@ipld/dag-cbor` (the IPLD DAG-CBOR codec,
 * https://ipld.io/specs/codecs/dag-cbor/spec/) writes for the same value, and a strict decoder that
 * accepts exactly those bytes:
 * - integers (a `number` that is a safe integer, or a `bigint` of at most 64 bits) as major type 0/1
 *   in the shortest head; `-0` is the integer 0 (`00`), as @ipld/dag-cbor writes it;
 * - every other finite number (non-integral, or integral beyond +/-(2^53 - 1)) as a 64-bit float
 *   (`fb`), never float16/32; NaN and +/-Infinity are outside the data model and rejected;
 * - definite lengths only; map keys are text strings sorted length-first, then bytewise (RFC 7049
 *   §3.9 "canonical CBOR", RFC 8949 §4.2.3), no duplicates;
 * - byte strings are untagged; no tags (the model has no links), no `undefined`, no other simple values.
 * This is not RFC 8949 §4.2.1 core deterministic encoding, which would shorten floats to 16/32 bits
 * and sort keys bytewise: DAG-CBOR keeps 64-bit floats and length-first keys.
 *
 * This module holds what both sides use: the 2^32 constant of 8-byte heads, the integer test and
 * the type names of error messages.
 */

export const TWO_32 = 0x1_0000_0000

export function typeName(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object'
  return typeof v
}

/**
 * True for a number that DAG-CBOR writes as an integer: a safe integer, `-0` included (written `00`,
 * as @ipld/dag-cbor does). Integral numbers beyond 2^53 - 1 are written as float64, like it does too.
 */
export function isCborInt(v: number): boolean {
  return Number.isSafeInteger(v)
}
