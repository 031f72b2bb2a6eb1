/**
 * The dashboard's `vectors` section: the node's vector collections with their shards (held here
 * or not), each shard's holders (replicas) and entry counts, the syncs running with their
 * progress and the last outcome of each collection, and the service's counters. Reported while
 * the node runs its `vectors` service and has a collection.
 */
import type { KosMeshNode } from '../node-types.js'
import type { CollectionView, NodeVectors, SyncView, VectorsView } from '../node-vectors.js'
import type { DashboardSection } from './snapshot.js'

/** Most collections listed in the panel. */
export const MAX_COLLECTION_ROWS = 64
/** Most shards listed per collection (the counts cover all of them). */
export const MAX_SHARD_ROWS = 64

/** The `vectors` section's data. */
export interface VectorsPanel {
  /** The collections (at most MAX_COLLECTION_ROWS), each with at most MAX_SHARD_ROWS shards. */
  collections: CollectionView[]
  /** Collections beyond MAX_COLLECTION_ROWS, not listed. */
  more: number
  /** The syncs running now, with shards done and entries fetched. */
  syncs: SyncView[]
  /** The service's counters since start. */
  stats: VectorsView['stats']
}

/** The vectors section of a node (its data is undefined while there is none to show). */
export function vectorsSection(node: KosMeshNode): DashboardSection {
  return {
    name: 'vectors',
    snapshot(): VectorsPanel | undefined {
      if (!node.isStarted()) return undefined
      let v: NodeVectors
      try {
        v = node.service<NodeVectors>('vectors')
      } catch {
        return undefined
      }
      const view = v.view()
      if (view.collections.length === 0 && view.syncs.length === 0) return undefined
      return {
        collections: view.collections.slice(0, MAX_COLLECTION_ROWS).map((c) => ({ ...c, shards: c.shards.slice(0, MAX_SHARD_ROWS) })),
        more: Math.max(0, view.collections.length - MAX_COLLECTION_ROWS),
        syncs: view.syncs,
        stats: view.stats,
      }
    },
  }
}
