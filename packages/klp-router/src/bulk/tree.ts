/**
 * The hash tree of a bulk payload (sans-I/O). SHA-256 throughout (node:crypto).
 *
 * ```
 * leaf i   = H(0x00 || chunk i)
 * node     = H(0x01 || left || right)
 * level 0  = the n leaves; level k+1 pairs level k left to right; an odd last node is promoted
 *            unchanged (never duplicated); the root is the single node of the top level
 * ```
 * The leaf count n is fixed by the signed offer, and leaves and nodes are domain-separated, so no
 * other list of chunks has the same root. Node j of level k covers leaves [j * 2^k, min((j+1) * 2^k, n)).
 *
 * Leaf hashes travel in **pages** of `pageLeaves` (a power of two) leaves. Page p is exactly node p
 * of level log2(pageLeaves) (the last page may be partial; promotion keeps it a node), so a page is
 * checked on its own: hash its leaves up to the page root, then climb to the root with the page's
 * proof (one sibling per level above the page level that has one). A receiver so keeps only the
 * pages it is using, whatever the payload's size, and each chunk is checked against a verified
 * leaf as it arrives.
 */
import { createHash } from 'node:crypto'
import { InvalidParametersError } from '@kos-mesh/interface'

/** Size of every hash of the tree in bytes (SHA-256): leaves, nodes, the root and the content hash. */
export const HASH_BYTES = 32
const LEAF_PREFIX = Uint8Array.of(0)
const NODE_PREFIX = Uint8Array.of(1)

/** SHA-256 of bytes. */
export function sha256(bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest()
}

/** The leaf hash of a chunk: H(0x00 || chunk). */
export function leafHash(chunk: Uint8Array): Uint8Array {
  return createHash('sha256').update(LEAF_PREFIX).update(chunk).digest()
}

function nodeHashInto(level: Uint8Array, left: number, out: Uint8Array, at: number): void {
  const h = createHash('sha256').update(NODE_PREFIX).update(level.subarray(left * HASH_BYTES, (left + 2) * HASH_BYTES)).digest()
  out.set(h, at * HASH_BYTES)
}

/** One level up: pairs nodes (packed 32-byte hashes), promoting an odd last node. */
function parentLevel(level: Uint8Array): Uint8Array {
  const count = level.byteLength / HASH_BYTES
  const up = Math.ceil(count / 2)
  const out = new Uint8Array(up * HASH_BYTES)
  for (let j = 0; j < up; j++) {
    if (2 * j + 1 < count) nodeHashInto(level, 2 * j, out, j)
    else out.set(level.subarray(2 * j * HASH_BYTES, (2 * j + 1) * HASH_BYTES), j * HASH_BYTES)
  }
  return out
}

/** The root of a run of packed leaf (or node) hashes; at least one. */
export function subtreeRoot(hashes: Uint8Array): Uint8Array {
  if (hashes.byteLength === 0 || hashes.byteLength % HASH_BYTES !== 0) throw new InvalidParametersError(`expected a non-empty multiple of ${HASH_BYTES} bytes of hashes, got ${hashes.byteLength}`)
  let level = hashes
  while (level.byteLength > HASH_BYTES) level = parentLevel(level)
  return level.slice(0, HASH_BYTES)
}

/** True when `n` is a power of two (1, 2, 4, ...). */
export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0
}

/** Leaves in page `page` of a tree of `count` leaves. */
export function pageSize(count: number, pageLeaves: number, page: number): number {
  return Math.max(0, Math.min(pageLeaves, count - page * pageLeaves))
}

/** Number of pages. */
export function pageCount(count: number, pageLeaves: number): number {
  return Math.ceil(count / pageLeaves)
}

/** Bytes equal (not constant time: hashes here are public). */
export function bytesEqual(a: Uint8Array, b: Uint8Array, bOffset = 0): boolean {
  if (b.byteLength - bOffset < a.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[bOffset + i]) return false
  return true
}

/**
 * The sender's tree: all leaves (32 bytes per chunk: 1/8192 of the payload with 256 KiB chunks)
 * and the levels from the page roots up, to serve pages with their proofs.
 */
export class HashTree {
  readonly count: number
  readonly pageLeaves: number
  readonly root: Uint8Array
  /** Packed leaf hashes. */
  readonly leaves: Uint8Array
  /** levels[0] = page roots, ..., last = [root]. */
  private readonly levels: Uint8Array[]

  constructor(leaves: Uint8Array, pageLeaves: number) {
    if (!isPowerOfTwo(pageLeaves)) throw new InvalidParametersError(`expected pageLeaves to be a power of two, got ${pageLeaves}`)
    if (leaves.byteLength === 0 || leaves.byteLength % HASH_BYTES !== 0) throw new InvalidParametersError(`expected at least one leaf hash, got ${leaves.byteLength} bytes`)
    this.count = leaves.byteLength / HASH_BYTES
    this.pageLeaves = pageLeaves
    this.leaves = leaves
    const pages = pageCount(this.count, pageLeaves)
    const roots = new Uint8Array(pages * HASH_BYTES)
    for (let p = 0; p < pages; p++) roots.set(subtreeRoot(this.pageLeavesOf(p)), p * HASH_BYTES)
    const levels: Uint8Array[] = [roots]
    while (levels[levels.length - 1]!.byteLength > HASH_BYTES) levels.push(parentLevel(levels[levels.length - 1]!))
    this.levels = levels
    this.root = levels[levels.length - 1]!.slice(0, HASH_BYTES)
  }

  /** Number of leaf pages: ceil(count / pageLeaves), at least 1; pages are numbered 0..pages - 1. */
  get pages(): number {
    return this.levels[0]!.byteLength / HASH_BYTES
  }

  /** The packed leaf hashes of a page (a view). */
  pageLeavesOf(page: number): Uint8Array {
    const from = page * this.pageLeaves
    return this.leaves.subarray(from * HASH_BYTES, (from + pageSize(this.count, this.pageLeaves, page)) * HASH_BYTES)
  }

  /** The page's proof: the sibling of its node at each level above the page level that has one. */
  proof(page: number): Uint8Array {
    if (!Number.isSafeInteger(page) || page < 0 || page >= this.pages) throw new InvalidParametersError(`expected a page in 0..${this.pages - 1}, got ${page}`)
    const out: Uint8Array[] = []
    let idx = page
    for (let k = 0; k < this.levels.length - 1; k++) {
      const level = this.levels[k]!
      const sib = idx ^ 1
      if (sib * HASH_BYTES < level.byteLength) out.push(level.subarray(sib * HASH_BYTES, (sib + 1) * HASH_BYTES))
      idx >>= 1
    }
    const proof = new Uint8Array(out.length * HASH_BYTES)
    out.forEach((h, i) => proof.set(h, i * HASH_BYTES))
    return proof
  }
}

/**
 * Checks a page of leaf hashes against the root: the page must hold exactly the page's number of
 * leaves and its proof must lead to `root` using every proof hash. Pure; no allocation beyond the hashes.
 */
export function verifyPage(root: Uint8Array, count: number, pageLeaves: number, page: number, leaves: Uint8Array, proof: Uint8Array): boolean {
  const pages = pageCount(count, pageLeaves)
  if (!Number.isSafeInteger(page) || page < 0 || page >= pages) return false
  if (leaves.byteLength !== pageSize(count, pageLeaves, page) * HASH_BYTES) return false
  if (proof.byteLength % HASH_BYTES !== 0) return false
  let h = subtreeRoot(leaves)
  let idx = page
  let size = pages
  let used = 0
  const pair = new Uint8Array(2 * HASH_BYTES)
  while (size > 1) {
    const sib = idx ^ 1
    if (sib < size) {
      if (used + HASH_BYTES > proof.byteLength) return false
      const s = proof.subarray(used, used + HASH_BYTES)
      used += HASH_BYTES
      if ((idx & 1) === 1) {
        pair.set(s, 0)
        pair.set(h, HASH_BYTES)
      } else {
        pair.set(h, 0)
        pair.set(s, HASH_BYTES)
      }
      h = createHash('sha256').update(NODE_PREFIX).update(pair).digest()
    }
    idx >>= 1
    size = Math.ceil(size / 2)
  }
  return used === proof.byteLength && bytesEqual(root, h)
}
