/**
 * The gossip core's data model (sans-I/O, wire-independent): the messages of HyParView
 * (membership), Plumtree (broadcast) and the bounded peer-list walk, and the options with their
 * defaults. Node identities are opaque strings (DIDs). A driver (the simulator in sim/, or the
 * discovery service over KLP PEER_DISCOVERY messages and the router's BroadcastStrategy) carries
 * the messages and tells the core when a peer is down; time comes from an injected Clock.
 */
import type { Clock } from '@kos-mesh/interface'

/** An opaque node identity (a DID). */
export type NodeId = string

/** Priority of a NEIGHBOR request: `high` when the requester has no active peer left (must be accepted). */
export type NeighborPriority = 'high' | 'low'

// ---------------------------------------------------------------- HyParView (membership)

/** A new node asks its contact to join. */
export interface JoinMessage { type: 'join' }
/** The contact spreads a join along random walks of `ttl` hops (ARWL); at PRWL the walker keeps it passive. */
export interface ForwardJoinMessage { type: 'forward_join'; node: NodeId; ttl: number }
/**
 * Asks to become an active neighbour. With `swap` (rewiring): the sender will drop its neighbour
 * `swap`; a full receiver drops a random neighbour W and tells W to link with `swap` instead, so
 * the degrees stay and the edge pair (sender-swap, receiver-W) becomes (sender-receiver, swap-W).
 */
export interface NeighborMessage { type: 'neighbor'; priority: NeighborPriority; swap?: NodeId }
/** Answers NEIGHBOR (or confirms JOIN / FORWARD_JOIN): `accepted` means the sender keeps the receiver active. */
export interface NeighborReplyMessage { type: 'neighbor_reply'; accepted: boolean }
/** The sender dropped the receiver from its active view (it keeps it passive); `link`: link with that node instead (rewiring). */
export interface DisconnectMessage { type: 'disconnect'; link?: NodeId }
/** A random walk exchanging samples of the views; the last node answers `origin` directly. */
export interface ShuffleMessage { type: 'shuffle'; origin: NodeId; ttl: number; nodes: NodeId[] }
/** The answer to a SHUFFLE: a sample of the last node's views. */
export interface ShuffleReplyMessage { type: 'shuffle_reply'; nodes: NodeId[] }

/** A HyParView message. */
export type MembershipMessage =
  | JoinMessage
  | ForwardJoinMessage
  | NeighborMessage
  | NeighborReplyMessage
  | DisconnectMessage
  | ShuffleMessage
  | ShuffleReplyMessage

// ---------------------------------------------------------------- Plumtree (broadcast)

/** A broadcast's payload. `id` comes from the driver (e.g. the KLP message id); `round` = hops so far. */
export interface GossipMessage<P = Uint8Array> { type: 'gossip'; id: string; round: number; payload: P }
/** Announces ids the sender has (lazy push). */
export interface IHaveMessage { type: 'ihave'; ids: Array<{ id: string; round: number }> }
/** Asks for the payloads of `ids` and makes the link eager again (empty `ids`: only the link). */
export interface GraftMessage { type: 'graft'; ids: string[] }
/** The link is redundant: the receiver moves the sender to lazy. */
export interface PruneMessage { type: 'prune' }

/** A Plumtree message: a payload, an IHAVE, a GRAFT or a PRUNE. */
export type BroadcastMessage<P = Uint8Array> = GossipMessage<P> | IHaveMessage | GraftMessage | PruneMessage

// ---------------------------------------------------------------- peer list (discovery)

/** A peer-list walk: travels at most `hops` hops; each node on it answers `origin` with a sample. */
export interface PeerListRequestMessage { type: 'peer_list_request'; reqId: string; origin: NodeId; hops: number; max: number }
/** An answer to a peer-list walk: a sample of the answering node's peers. */
export interface PeerListMessage { type: 'peer_list'; reqId: string; peers: NodeId[] }

/** A peer-list walk message: a request or an answer. */
export type PeerListWireMessage = PeerListRequestMessage | PeerListMessage

/** Every message of the gossip core. */
export type GossipWireMessage<P = Uint8Array> = MembershipMessage | BroadcastMessage<P> | PeerListWireMessage

/** Sends one message (unreliable, one-way: the core copes with loss). */
export type SendFn<M> = (to: NodeId, message: M) => void

// ---------------------------------------------------------------- options

/** Options of HyParView. */
export interface HyParViewInit {
  /** Active view (the overlay degree). Default 8: see docs/DISCOVERY.md "## Gossip" (latency needs an eager degree of ~5). */
  activeViewSize?: number
  /** Passive view. Default 30. */
  passiveViewSize?: number
  /** Active random walk length of FORWARD_JOIN (and of SHUFFLE). Default 6. */
  arwl?: number
  /** Passive random walk length: at this ttl FORWARD_JOIN adds the node to the passive view. Default 3. */
  prwl?: number
  /** Active peers in a SHUFFLE sample. Default 3. */
  shuffleActive?: number
  /** Passive peers in a SHUFFLE sample. Default 4. */
  shufflePassive?: number
  /** Period of shuffles. Default 10,000 ms (each period is jittered by up to +25 %). */
  shuffleIntervalMs?: number
  /** Period of view maintenance (fill the active view from the passive one, retry a join). Default 1,000 ms. */
  maintenanceIntervalMs?: number
  /** A NEIGHBOR request without answer after this long is given up (the candidate leaves the passive view). Default 1,000 ms. */
  neighborTimeoutMs?: number
  /** One active link is checked (a low-priority NEIGHBOR; a reject closes a half-open link) per period. 0: never. Default 2,500 ms. */
  linkCheckIntervalMs?: number
  /**
   * Rewiring: a full node swaps one random active link for a random passive peer per period (an
   * edge swap keeping every degree), so the overlay mixes into a random graph instead of keeping
   * the layered shape of its join order. 0: never. Default 60,000 ms.
   */
  rewireIntervalMs?: number
}

/** Options of Plumtree. */
export interface PlumtreeInit<P = Uint8Array> {
  /**
   * PRUNE keeps at least this many neighbours pushing payloads to this node (an eager mesh, not a
   * single tree): latency stays near flooding's and a lost push is covered by another eager path.
   * 1 is classic Plumtree. Default 6.
   */
  minEager?: number
  /** Wait after the first IHAVE of a missing id before the GRAFT. Default 200 ms (2x a 100 ms link). */
  graftTimeoutMs?: number
  /** Wait before the next GRAFT (to the next announcer) while the id is still missing. Default 250 ms (above a round trip). */
  graftRetryMs?: number
  /** GRAFTs per missing id before it is given up. Default 8. */
  maxGraftAttempts?: number
  /** Announcers remembered per missing id. Default 8. */
  maxAnnouncers?: number
  /** Missing ids tracked (pending grafts). Default 1,024. */
  maxMissing?: number
  /** IHAVEs are batched for this long per peer (0: sent at once). Default 0. */
  ihaveDelayMs?: number
  /** Ids per IHAVE (and per GRAFT accepted). Default 64. */
  maxIdsPerMessage?: number
  /** Payloads kept for GRAFTs: count, bytes, age. Defaults 1,024, 8 MiB, 60,000 ms. */
  maxCacheEntries?: number
  maxCacheBytes?: number
  cacheTtlMs?: number
  /** Delivered ids remembered (so a late copy is a duplicate, not a new message). Default 8,192; kept 2x cacheTtlMs. */
  maxSeen?: number
  /** Longest accepted id. Default 256 characters. */
  maxIdLength?: number
  /** Bytes of a payload (for the cache bound). Default: `byteLength` of a Uint8Array, else 0. */
  sizeOf?: (payload: P) => number
}

/** Options of peer-list walks. */
export interface PeerListInit {
  /** Most hops a request may travel (a larger `gossip_hops` is clamped). Default 8. */
  maxHops?: number
  /** Most peers in one answer. Default 16. */
  maxPeers?: number
  /** Peer-list requests of this node pending at once. Default 16. */
  maxPending?: number
  /** How long a request collects answers. Default 2,000 ms. */
  timeoutMs?: number
}

/** Options of the gossip core: membership, broadcast and peer-list walks. */
export interface GossipCoreInit<P = Uint8Array> {
  membership?: HyParViewInit
  broadcast?: PlumtreeInit<P>
  peerList?: PeerListInit
}

/**
 * What the gossip core needs: this node's id, the clock, a send function, randomness and the delivery
 * callback.
 */
export interface GossipCoreComponents<P = Uint8Array> {
  self: NodeId
  clock: Clock
  send: SendFn<GossipWireMessage<P>>
  /** Called once per broadcast id this node receives (not for its own broadcasts). */
  deliver?: (id: string, payload: P, from: NodeId, round: number) => void
  /** Uniform numbers in [0, 1); inject a seeded one for deterministic runs. Default Math.random. */
  random?: () => number
}

/** What to do with a new broadcast: push the payload to `eager`, announce its id to `lazy`. */
export interface PushPlan {
  eager: NodeId[]
  lazy: NodeId[]
}
