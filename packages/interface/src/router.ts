/**
 * The one contract protocol services are written against: register handlers, send, request,
 * broadcast, and see peers come and go. klp-router implements it; peer-discovery, the agents'
 * task service, bulk transfer and every later service use only this contract, so they run on any
 * implementation (a test double, the simulator, a future router).
 */
import type { AbortOptions, MessageHandler, TransportAddress } from './contracts.js'
import type { KLPAddress, KLPMessage, KLPMessageType, KLPValue, MessagePriority, RoutingHint, TrustRequirements } from './model.js'

/** What `send`, `request` and `broadcast` accept instead of a ready signed message. */
export interface MessageInit {
  type: KLPMessageType
  /** `klp://authority/path` or a parsed address. For broadcasts, default `klp://<self>/broadcast`. */
  target?: string | KLPAddress
  /** Source path of this node. Default `/`. */
  sourcePath?: string
  data: KLPValue
  /** Default `application/cbor`. */
  contentType?: string
  /** Default NORMAL. */
  priority?: MessagePriority
  /** Seconds. Default: the router's default ttl. */
  ttl?: number
  correlationId?: string
  routingHints?: RoutingHint[]
  /** Default: nothing required (score 0, 0 endorsements, level none). */
  trustRequirements?: TrustRequirements
}

export interface RequestOptions extends AbortOptions {
  /** Total time, ms. Default: the router's request timeout. */
  timeoutMs?: number
  /** Retransmissions of the same signed request within the timeout. Default: the router's. */
  retries?: number
  /**
   * The DID that must sign the response. Default: the DID the target authority is pinned to. When
   * none is known, any signer the source-binding check accepts may answer.
   */
  expectedSigner?: string
  /**
   * The request relies on the target's authority pin: when the pinned DID answers, the pin becomes
   * firm (never evicted). Default: true, except for PEER_DISCOVERY requests.
   */
  reliesOnPin?: boolean
}

/** A connected peer as a service sees it. */
export interface PeerInfo {
  did: string
  /** Known once the peer's signed hello arrived. */
  authority?: string
  connectionId: string
}

/** A message the router rejected: the reason code, the message id when known, and the peer it came from. */
export interface RejectInfo {
  reason: string
  messageId?: string
  fromPeer: string
}

/** Events every MessageRouter emits (implementations may emit more). */
export interface MessageRouterEvents {
  'peer:connect': CustomEvent<PeerInfo>
  /** The peer's last connection closed; `reason` names why when known (the error's name, e.g. `SlowPeerError`). */
  'peer:disconnect': CustomEvent<PeerInfo & { reason?: string }>
  /** The peer's signed hello was accepted (authority <-> DID known). */
  'peer:identify': CustomEvent<PeerInfo>
  'message:rejected': CustomEvent<RejectInfo>
}

/** Options of `handle`. */
export interface HandleOptions {
  /**
   * Only messages whose target path is this path or below it (`/bulk` takes `/bulk` and
   * `/bulk/x`, not `/bulkx`) reach this handler; the longest matching path wins, and a handler
   * without a path takes what no path matched. Several services can so share one message type.
   */
  path?: string
}

/**
 * Decides where a broadcast goes next: plain flooding by default, a gossip protocol when a service
 * installs one (`setBroadcastStrategy`). Called once per broadcast this node accepts (its own ones
 * with `fromPeer` undefined), after the signature, replay and trust checks.
 */
export interface BroadcastStrategy {
  /** The neighbour DIDs the router relays the broadcast to now (hop count raised, bytes unchanged). */
  relay(message: KLPMessage, context: BroadcastContext): readonly string[]
}

/** What a broadcast strategy knows of a broadcast it forwards. */
export interface BroadcastContext {
  /** The neighbour it came from; undefined for this node's own broadcast. */
  readonly fromPeer: string | undefined
  /** Hops travelled so far. */
  readonly hops: number
  /** DIDs of the directly connected neighbours. */
  readonly neighbours: readonly string[]
}

/** Options of `deliverBroadcast`. */
export interface DeliverBroadcastOptions extends AbortOptions {
  /** The DID of the neighbour that handed the broadcast over (the sender a reject names). */
  fromPeer: string
}

/** The router as protocol services use it. */
export interface MessageRouter {
  /** This node's KLP authority. */
  readonly authority: string
  /** This node's DID. */
  readonly did: string
  /** Transport addresses this node listens on. */
  addrs(): TransportAddress[]
  /** Registers the handler of a message type (and path); a second one for the same pair throws. */
  handle(type: KLPMessageType, handler: MessageHandler, options?: HandleOptions): void
  /** Removes the handler of a message type (and path). */
  unhandle(type: KLPMessageType, options?: HandleOptions): void
  /** Connects to a peer; resolves once its signed hello arrived. */
  dial(addr: TransportAddress, options?: AbortOptions & { remotePeer?: string }): Promise<PeerInfo>
  /** Signs (when given an init) and routes one message; resolves when handed to the next hop. */
  send(message: MessageInit | KLPMessage, options?: AbortOptions): Promise<KLPMessage>
  /** Sends a request and resolves with its response (matched by correlation id, bound to the target). */
  request(init: MessageInit, options?: RequestOptions): Promise<KLPMessage>
  /** Spreads a BROADCAST_ANNOUNCE through the mesh (see `BroadcastStrategy`). */
  broadcast(init: Omit<MessageInit, 'type'> & { type?: KLPMessageType }, options?: AbortOptions): Promise<KLPMessage>
  /** Builds the signed response to `request` (correlation id, target = the request's source). */
  createResponse(request: KLPMessage, data: KLPValue, options?: { type?: KLPMessageType; priority?: MessagePriority }): Promise<KLPMessage>
  /** Connected peers. */
  peers(): PeerInfo[]
  /** The DID an authority is bound to (pinned), if known. */
  didOf(authority: string): string | undefined
  /** The authority a DID is bound to, if known. */
  authorityOf(did: string): string | undefined
  /** Replaces how broadcasts are relayed (undefined restores flooding). */
  setBroadcastStrategy(strategy: BroadcastStrategy | undefined): void
  /**
   * Relays a broadcast this node accepted (or made) to one more directly connected neighbour, as
   * `BroadcastStrategy.relay` would have: the same signed bytes, the hop count raised (for a
   * gossip service's lazy repair, e.g. a neighbour that asked for a broadcast it missed). Only
   * broadcasts the router still holds qualify: implementations keep the recent ones, bounded,
   * while a strategy is installed. Resolves once the neighbour's connection took the frame;
   * rejects when the peer is not connected (NoRouteError in klp-router), the broadcast is not
   * held or expired (UnknownBroadcastError), or the hop limit would be passed. Optional: a router
   * without it gives gossip services no lazy repair.
   */
  relayBroadcast?(peer: string, message: KLPMessage, options?: AbortOptions): Promise<void>
  /**
   * Delivers a broadcast that reached this node by another path than the router's own connections
   * (e.g. a libp2p gossipsub topic): the signed message bytes (klp-codec `encodeMessage`, no router
   * envelope) or the decoded message. It passes the same checks as a broadcast from a connection
   * (decode and size, type BROADCAST_ANNOUNCE, expiry and ttl, revoked signer, replay window shared
   * with the connections, signature, source binding, trust) and reaches the BROADCAST_ANNOUNCE
   * handler at most once whichever path brings it first; a refused one is counted and emitted as
   * `message:rejected` with `fromPeer`. The router does not spread it further (neither flooding nor
   * the broadcast strategy): the other path does that. `fromPeer` is the DID of the neighbour that
   * handed it over (blamed for a forgery). Resolves with true once the message was queued for the
   * checks, false when it was refused before them (size, decode, type, queue full). Optional.
   */
  deliverBroadcast?(message: KLPMessage | Uint8Array, options: DeliverBroadcastOptions): Promise<boolean>
  /**
   * Listens to one of the router's events (`peer:connect`, `peer:disconnect`, `peer:identify`,
   * `message:rejected`).
   */
  addEventListener<K extends keyof MessageRouterEvents>(type: K, listener: (evt: MessageRouterEvents[K]) => void, options?: { once?: boolean; signal?: AbortSignal }): void
  /** Stops listening to an event. */
  removeEventListener<K extends keyof MessageRouterEvents>(type: K, listener: (evt: MessageRouterEvents[K]) => void): void
}
