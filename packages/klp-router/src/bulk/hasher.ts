/**
 * The receiver's hashing for one transfer: the leaf hash of each chunk (SHA-256, about 0.5 ms of
 * CPU per MB with SHA-NI) and, when the offer has one, the running content hash of the whole
 * payload (a second pass). Content calls must come in index order. Leaf hashes of chunks from the
 * network may instead be taken in libuv's thread pool (`pooledLeafHash`), off the event loop.
 * Internal.
 */
import { createHash, webcrypto, type Hash } from 'node:crypto'
import { leafHash } from './tree.js'

export interface ChunkHasher {
  /** Leaf hash of a chunk from the network; also feeds the content hash. */
  both(bytes: Uint8Array): Uint8Array
  /** Leaf hash only (a chunk read back from a sink, any order). */
  leaf(bytes: Uint8Array): Uint8Array
  /** Content hash only (a chunk already checked against its leaf). */
  content(bytes: Uint8Array): void
  digest(): Uint8Array
  /** Leaf hashes of network chunks must be taken here, in index order (they also feed the content hash). */
  readonly inOrder: boolean
}

/** Where the receiver takes the leaf hashes of chunks from the network. */
export type LeafHashing = 'pool' | 'inline'

/**
 * H(0x00 || chunk) in libuv's thread pool (WebCrypto's digest), off the event loop. `chunk` must
 * be a view with at least one byte before it in its buffer that may be overwritten (the data frame
 * header's last byte, already read): that byte becomes the 0x00 prefix, so the chunk is hashed
 * where it is (WebCrypto copies its input once, before the call returns).
 */
export function pooledLeafHash(chunk: Uint8Array): Promise<Uint8Array> {
  if (chunk.byteOffset < 1) return Promise.resolve(leafHash(chunk))
  const framed = new Uint8Array(chunk.buffer, chunk.byteOffset - 1, chunk.byteLength + 1)
  framed[0] = 0x00
  return webcrypto.subtle.digest('SHA-256', framed).then((h) => new Uint8Array(h))
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
    inOrder: false,
  }
}

/** Leaf hashes and the content hash (two passes over every byte, in index order). */
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
    inOrder: true,
  }
}
