/**
 * A small seeded PRNG (sfc32: 128-bit state, 32-bit output) and a string hash to derive one
 * independent stream per directed link from the network seed. Not cryptographic: it only has to
 * be fast, well distributed and identical on every platform.
 */

/** Returns floats in [0, 1). */
export type Random = () => number

/** sfc32 ("small fast counting" generator) over four 32-bit words. */
export function sfc32(a: number, b: number, c: number, d: number): Random {
  let s0 = a >>> 0
  let s1 = b >>> 0
  let s2 = c >>> 0
  let s3 = d >>> 0
  const next = (): number => {
    const t = (((s0 + s1) >>> 0) + s3) >>> 0
    s3 = (s3 + 1) >>> 0
    s0 = s1 ^ (s1 >>> 9)
    s1 = (s2 + (s2 << 3)) >>> 0
    s2 = (s2 << 21) | (s2 >>> 11)
    s2 = (s2 + t) >>> 0
    return t / 4294967296
  }
  // Discard the first outputs so that similar seeds diverge.
  for (let i = 0; i < 12; i++) next()
  return next
}

/** murmur3's 32-bit finaliser. */
function fmix32(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** Hashes a string into four 32-bit words (four independently seeded multiplicative lanes). */
export function hash128(input: string): [number, number, number, number] {
  let h0 = 0x9e3779b9
  let h1 = 0x243f6a88
  let h2 = 0xb7e15162
  let h3 = 0x428a2f98
  for (let i = 0; i < input.length; i++) {
    const c = input.charCodeAt(i)
    h0 = Math.imul(h0 ^ c, 0x01000193)
    h1 = Math.imul(h1 ^ c, 0x5bd1e995)
    h2 = Math.imul(h2 ^ c, 0x27d4eb2d)
    h3 = Math.imul(h3 ^ c, 0x165667b1)
  }
  const n = input.length
  return [fmix32(h0 ^ n), fmix32(h1 ^ h0), fmix32(h2 ^ h1), fmix32(h3 ^ h2)]
}

/** A PRNG seeded from any string (e.g. `${seed}|${from}|${to}`). */
export function seededRandom(seed: string): Random {
  const [a, b, c, d] = hash128(seed)
  return sfc32(a, b, c, d)
}
