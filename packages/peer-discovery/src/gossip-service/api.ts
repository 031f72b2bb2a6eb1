/**
 * The gossip service's public interface and stats, and small helpers of its implementation.
 */
import { AbortError } from '@kos-mesh/interface'
import type { AbortOptions, KLPMessage, Startable } from '@kos-mesh/interface'
import type { GossipCore, GossipCoreStats } from '../gossip/index.js'
import type { DiscoverySource, NodeRecord, PeerQuery } from '../types.js'

/** Counters of the gossip service and its core. */
export interface GossipServiceStats {
  core: GossipCoreStats
  /** Control messages sent / received / refused (malformed, bad record, not from a neighbour). */
  sent: number
  received: number
  invalid: number
  /** Control messages dropped: no record, no authority, no route, too many in flight. */
  dropped: number
  dials: number
  dialFailures: number
  /** Duplicates of broadcasts the router rejected (each one PRUNEs or counts against its sender). */
  duplicates: number
  /** Broadcasts re-sent to a grafting neighbour, and those the router no longer held. */
  grafted: number
  graftFailures: number
  /** `peer_list_request`s this node answered. */
  peerListServed: number
  /** Joins again through a router neighbour because the active view stayed short. */
  rejoins: number
  records: number
}

/**
 * A PeerQuery as the gossip source takes it: `hops` (PeerQuery's, set from the spec's `gossip_hops`
 * by `discoverPeers`) bounds the walk; `gossipHops` is the older name of the same thing.
 */
export interface GossipPeerQuery extends PeerQuery {
  /** @deprecated use `hops`. */
  gossipHops?: number
}

/**
 * The gossip service: HyParView membership and Plumtree broadcast over KLP messages (the router's broadcast
 * strategy), and a discovery source.
 */
export interface GossipService extends Startable {
  readonly core: GossipCore<KLPMessage>
  /** Records source for the discovery service (`sources: [gossip.source]`, `use_gossip: true`). */
  readonly source: DiscoverySource
  /** Whether the service is started. */
  isStarted(): boolean
  /** Joins the overlay through a connected peer (its DID) or a transport address (`addr[/did:...]`). */
  join(contact: string, options?: AbortOptions): Promise<void>
  /** The active view (router neighbours the overlay uses). */
  neighbors(): string[]
  /** The DIDs in the passive view (known, not linked). */
  passive(): string[]
  /** A peer-list walk of at most `hops` hops; resolves with the verified records the walk returned. */
  requestPeerList(options: { hops: number; max?: number }, abort?: AbortOptions): Promise<NodeRecord[]>
  /** This node's record as it sends it. */
  localRecord(): NodeRecord | undefined
  /** The core's counters and the service's message counters. */
  stats(): GossipServiceStats
}

/** Plumtree's cache bound counts bytes: a message's size, roughly (its payload bytes plus the envelope). */
export function approximateSize(m: KLPMessage): number {
  const d = m.payload.data
  return 512 + (d instanceof Uint8Array ? d.byteLength : typeof d === 'string' ? d.length : 0)
}

export function errName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err
}

export function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new AbortError(undefined, { cause: signal.reason }))
    if (signal.aborted) return onAbort()
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

