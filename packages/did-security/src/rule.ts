/**
 * THE Ed25519 verification rule of kos-mesh ("KLP strict"). Every node applies it, whichever backend
 * runs, so every node accepts and rejects exactly the same signatures:
 *
 * 1. the public key is 32 bytes and the signature 64 bytes;
 * 2. A (public key) and R (first half of the signature) are canonical encodings: y < p, and the sign
 *    bit is clear when x = 0 (y = 1 or y = p - 1);
 * 3. S (second half) is canonical: S < L;
 * 4. neither A nor R is one of the 8 small-order points;
 * 5. the cofactorless equation holds: [S]B = R + [k]A with k = SHA-512(R || A || M) mod L
 *    (A must decode to a curve point; R must equal the recomputed point exactly).
 *
 * Steps 1-4 are byte comparisons done here, in front of either backend. Step 5 is the backend's job:
 * node:crypto (OpenSSL) computes the cofactorless equation natively; the noble backend computes it with
 * @noble/ed25519 point arithmetic (noble's own `verify` is cofactored, which would accept more).
 */

/** Canonical encodings of the 8 points of the small-order subgroup (checked in the tests). */
const SMALL_ORDER_HEX = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
] as const

/**
 * The encodings of the small-order Ed25519 points (canonical and not) that the verification rule refuses as
 * a public key or R.
 */
export const SMALL_ORDER_ENCODINGS: readonly Uint8Array[] = SMALL_ORDER_HEX.map((h) => new Uint8Array(Buffer.from(h, 'hex')))

/** L = 2^252 + 27742317777372353535851937790883648493, little-endian. */
const L_LE = new Uint8Array(Buffer.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010', 'hex'))

function bytesEqualAt(a: Uint8Array, off: number, b: Uint8Array): boolean {
  for (let i = 0; i < 32; i++) if (a[off + i] !== b[i]) return false
  return true
}

/** True when the 32 bytes at `off` are a canonical point encoding (y < p; no negative zero x). */
export function isCanonicalPointEncoding(b: Uint8Array, off = 0): boolean {
  const top = (b[off + 31] as number) & 0x7f
  const sign = (b[off + 31] as number) & 0x80
  // y >= p  <=>  y in [2^255 - 19, 2^255 - 1]: bytes 1..30 all 0xff, byte 31 = 0x7f, byte 0 >= 0xed
  let allFF = top === 0x7f
  for (let i = 1; i < 31 && allFF; i++) if (b[off + i] !== 0xff) allFF = false
  if (allFF && (b[off] as number) >= 0xed) return false
  if (sign !== 0) {
    // x = 0 happens only for y = 1 and y = p - 1; their sign bit must be 0
    let yIsOne = b[off] === 1 && top === 0
    for (let i = 1; i < 31 && yIsOne; i++) if (b[off + i] !== 0) yIsOne = false
    let yIsPm1 = b[off] === 0xec && top === 0x7f
    for (let i = 1; i < 31 && yIsPm1; i++) if (b[off + i] !== 0xff) yIsPm1 = false
    if (yIsOne || yIsPm1) return false
  }
  return true
}

/** True when the (canonical) encoding at `off` is a small-order point. */
export function isSmallOrderEncoding(b: Uint8Array, off = 0): boolean {
  for (const s of SMALL_ORDER_ENCODINGS) if (bytesEqualAt(b, off, s)) return true
  return false
}

/** True when the 32-byte little-endian scalar at `off` is < L. */
export function isCanonicalScalar(b: Uint8Array, off = 0): boolean {
  for (let i = 31; i >= 0; i--) {
    const x = b[off + i] as number
    const l = L_LE[i] as number
    if (x < l) return true
    if (x > l) return false
  }
  return false // equal to L
}

/** Rule steps 1-4 for a public key alone (cacheable per key). */
export function checkPublicKey(publicKey: Uint8Array): boolean {
  return publicKey.length === 32 && isCanonicalPointEncoding(publicKey) && !isSmallOrderEncoding(publicKey)
}

/** Rule steps 1-4 for a signature alone. */
export function checkSignatureEncoding(signature: Uint8Array): boolean {
  return signature.length === 64 &&
    isCanonicalPointEncoding(signature, 0) &&
    !isSmallOrderEncoding(signature, 0) &&
    isCanonicalScalar(signature, 32)
}
