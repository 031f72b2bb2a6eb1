/**
 * Storage nodes from peer discovery: the peers whose signed node records advertise the
 * `vector_storage` capability, with the trust score the registry ranks them by (a trust engine's,
 * when the registry has one). Feed the result to `vectorMesh`'s `storageNodes` component.
 */
import type { PeerRegistry } from '@kos-mesh/peer-discovery'
import type { StorageNode } from './sharding.js'

/** Options of `storageNodesFromRegistry`. */
export interface StorageNodesOptions {
  /** Most nodes considered. Default 1,000. */
  maxPeers?: number
  /** This node's region for each peer DID (geographic placement), when known. */
  regionOf?: (did: string) => string | undefined
}

/** A `storageNodes` function over a discovery registry (re-read on every call: it follows churn). */
export function storageNodesFromRegistry(registry: Pick<PeerRegistry, 'rank'>, options: StorageNodesOptions = {}): () => StorageNode[] {
  return () => registry.rank({ requiredCapabilities: ['vector_storage'], maxPeers: options.maxPeers ?? 1000 }).filter((r) => !r.entry.stale).map((r) => {
    const region = options.regionOf?.(r.entry.peerId)
    const authority = r.entry.record.address?.authority
    return { did: r.entry.peerId, trust: r.trustScore, ...(authority === undefined ? {} : { authority }), ...(region === undefined ? {} : { region }) }
  })
}
