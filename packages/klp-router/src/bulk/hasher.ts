/**
 * The receiver's hashing for one transfer: the leaf hash of each chunk and the running content
 * hash of the whole payload (two SHA-256 passes over every byte, about 1 ms of CPU per MB with
 * SHA-NI). Content calls must come in index order. Internal.
 */
import { createHash, type Hash } from 'node:crypto'
import { leafHash } from './tree.js'

export interface ChunkHasher {
  /** Leaf hash of a chunk from the network; also feeds the content hash. */
  both(bytes: Uint8Array): Uint8Array
  /** Leaf hash only (a chunk read back from a sink, any order). */
  leaf(bytes: Uint8Array): Uint8Array
  /** Content hash only (a chunk already checked against its leaf). */
  content(bytes: Uint8Array): void
  digest(): Uint8Array
}

/** Leaf hashes only: the offer carries no whole-payload hash (one SHA-256 pass over every byte). */
export function leafHasher(): ChunkHasher {
  return {
    both: leafHash,
    leaf: leafHash,
    content() {},
    digest() {
      return new Uint8Array(0)
    },
  }
}

export function inlineHasher(): ChunkHasher {
  const hash: Hash = createHash('sha256')
  return {
    both(bytes) {
      const leaf = leafHash(bytes)
      hash.update(bytes)
      return leaf
    },
    leaf: leafHash,
    content(bytes) {
      hash.update(bytes)
    },
    digest() {
      return hash.digest()
    },
  }
}
