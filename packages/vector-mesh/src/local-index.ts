/**
 * The local HNSW index of one shard: a usearch `Index` with the collection's metric and
 * quantization, keyed by 63-bit labels (entry.ts `labelOf`). usearch is a native addon: never
 * bundle it (it finds its .node file relative to its own directory).
 */
import { Index, MetricKind, ScalarKind } from 'usearch'
import type { ResolvedCollection } from './collection.js'

const METRICS = { cos: MetricKind.Cos, ip: MetricKind.IP, l2sq: MetricKind.L2sq } as const
const SCALARS = { f32: ScalarKind.F32, f16: ScalarKind.F16, i8: ScalarKind.I8 } as const

/** One result of `LocalIndex.search`. */
export interface IndexHit {
  /** The entry's 63-bit label (`labelOf` of its key). */
  label: bigint
  /**
   * usearch's distance under the collection's metric, smaller is nearer: `cos` 1 - cosine
   * similarity, `ip` 1 - inner product, `l2sq` the squared Euclidean distance.
   */
  distance: number
}

/**
 * The in-memory HNSW index of one shard: a usearch index with the collection's metric,
 * quantization, connectivity and expansions, holding one vector per 63-bit label (`labelOf`). It
 * stores vectors only; `ShardStore` maps labels to entries and saves the index to files.
 */
export class LocalIndex {
  private index: Index

  constructor(private readonly config: ResolvedCollection) {
    this.index = LocalIndex.make(config)
  }

  private static make(c: ResolvedCollection): Index {
    // positional constructor: IndexConfig would require every field
    return new Index(c.dimensions, METRICS[c.metric], SCALARS[c.quantization], c.connectivity, c.expansionAdd, c.expansionSearch, false)
  }

  /** Number of vectors in the index. */
  get size(): number {
    return this.index.size()
  }

  /** Whether the index holds a vector for `label`. */
  has(label: bigint): boolean {
    return this.index.contains(label) as boolean
  }

  /** Adds or replaces the vector of a label. */
  upsert(label: bigint, vector: Float32Array): void {
    if (this.index.contains(label) as boolean) this.index.remove(label)
    this.index.add(label, vector)
  }

  /** Removes the vector of `label`; nothing happens when there is none. */
  remove(label: bigint): void {
    if (this.index.contains(label) as boolean) this.index.remove(label)
  }

  /** The k nearest labels, nearest first. `threads` 0 = usearch's choice. */
  search(vector: Float32Array, k: number, threads = 1): IndexHit[] {
    if (this.index.size() === 0 || k < 1) return []
    const m = this.index.search(vector, Math.min(k, this.index.size()), threads)
    const out: IndexHit[] = []
    for (let i = 0; i < m.keys.length; i++) out.push({ label: m.keys[i] as bigint, distance: m.distances[i] as number })
    return out
  }

  /** Writes the index to `path` (usearch's format). */
  save(path: string): void {
    this.index.save(path)
  }

  /** Replaces the index with the one in `path` (no rebuild). */
  load(path: string): void {
    const ix = LocalIndex.make(this.config)
    ix.load(path)
    this.index = ix
  }

  /** Drops every vector: a new, empty index with the same settings. */
  clear(): void {
    this.index = LocalIndex.make(this.config)
  }
}
