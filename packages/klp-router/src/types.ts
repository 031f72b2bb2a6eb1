/**
 * The router's public types: its components, the `Router` (a `MessageRouter` plus lifecycle,
 * routing table, data channels and metrics) and its events.
 */
import type {
  AbortOptions,
  Clock,
  KLPMessage,
  KLPMessageType,
  Logger,
  MessageRouter,
  MessageRouterEvents,
  SignatureVerifier,
  Signer,
  Startable,
  Transport,
  TrustEngine,
} from '@kos-mesh/interface'
import type { RouterMetrics } from './metrics.js'
import type { PinChange, PinEntry, Route } from './routing-table.js'

export type { MessageInit, RequestOptions, PeerInfo, RejectInfo, HandleOptions, BroadcastStrategy, BroadcastContext } from '@kos-mesh/interface'

/**
 * What the host gives a router (js-libp2p component style, the second call of
 * `klpRouter(init)(components)`): the signer that is this node's identity, the verifier and trust
 * engine that judge inbound messages, the transports it dials and listens with, and optionally a
 * clock and a logger. {@link createRouter} builds them from an identity.
 */
export interface RouterComponents {
  /** Signs every message this router creates. Its key id's DID is this node's identity. */
  signer: Signer
  /** Checks signatures of inbound messages. */
  signatureVerifier: SignatureVerifier
  /**
   * Decides trust requirements, revocation (`isRevoked`) and receives observations (`observe`).
   * Default: an empty `staticTrustEngine()` of @kos-mesh/trust (zero trust: only messages that ask
   * for nothing pass).
   */
  trustEngine?: TrustEngine
  /**
   * Transports to dial and listen with; an address goes to the first whose `canDial` accepts it (a
   * listen address also to one whose name matches its scheme). `dial` / `start` throw
   * `NoTransportError` when none fits.
   */
  transports: Transport[]
  /** Time and timers. Default: `systemClock` (the memory transport's `network.clock` for simulations). */
  clock?: Clock
  /** Default: silent. */
  logger?: Logger
}

/**
 * The events a router emits (`addEventListener`): `peer:connect`, `peer:identify` (the peer's signed
 * hello was accepted), `peer:disconnect` (with the reason when known, e.g. `revoked`), `message:rejected`
 * (every rejection, with its {@link RejectReason} and the peer blamed) and `pin:change`.
 */
export interface RouterEvents extends MessageRouterEvents {
  /** An authority pin was made, became firm, or was evicted (persist it: see `routingTable.pinEntries()`). */
  'pin:change': CustomEvent<PinChange>
}

/** Read-only view of the routing table. */
export interface RoutingTableView {
  /**
   * The route the router would use now for `authority`: direct (the authority's pinned DID is
   * connected), else the shortest route advertised by a connected neighbour, else a reverse path
   * learned from traffic (kept 60 s). Undefined when the authority is unreachable.
   */
  lookup(authority: string): Route | undefined
  /** The best route of every authority reachable now (as {@link RoutingTableView.lookup} gives it). */
  routes(): Route[]
  /**
   * The DID `authority` is pinned to (trust on first use from a signed hello, or configured in
   * `pinnedAuthorities`); this node's own DID for its own authority; undefined when not pinned.
   */
  didOf(authority: string): string | undefined
  /**
   * The authority `did` claimed in an accepted signed hello (or was configured with); this node's
   * own authority for its own DID; undefined when unknown or when its pin was evicted.
   */
  authorityOf(did: string): string | undefined
  /** Every authority -> DID pin (trust on first use and configured). */
  pins(): Record<string, string>
  /** Every pin with its firmness, to persist and pass back as `pinnedAuthorities` (`{ did, firm }`). */
  pinEntries(): PinEntry[]
  /**
   * Makes the pin of `authority` firm (never evicted): call it when something comes to rely on the
   * binding, e.g. an operator trusts the DID. The router does it itself when the authority
   * answers a request. Returns false when the authority is not pinned (to `did`, when given).
   */
  confirmPin(authority: string, did?: string): boolean
}

/** Receives the data frames of one channel (see `Router.sendData`). */
export type DataHandler = (peer: string, data: Uint8Array) => void

/**
 * A KLP router: the `MessageRouter` contract (handlers, send, request, broadcast, bindings) plus its
 * lifecycle (`start()` listens on `init.listen`; `stop()` closes every connection and rejects pending
 * requests with `RouterNotStartedError`; it can be started again), the routing table, unsigned data
 * channels, metrics and events. Made by {@link klpRouter} or {@link createRouter}; calls that need the
 * network throw `RouterNotStartedError` before `start()` and after `stop()`.
 */
export interface Router extends MessageRouter, Startable {
  /** Read-only view of routes and authority pins (live: reflects the table at each call). */
  readonly routingTable: RoutingTableView
  /** True between `start()` and `stop()`. */
  isStarted(): boolean
  /** A snapshot of the router's counters, queue depths and cache sizes (a new object each call). */
  metrics(): RouterMetrics
  /**
   * Sends an unsigned data frame on `channel` (0..65535) to a directly connected peer: for
   * protocols that authenticate their bytes otherwise (bulk transfer checks every chunk against a
   * hash tree from a signed offer). The transport still authenticates the peer and encrypts.
   * Waits for room in the peer's outbound queue; rejects with NoRouteError when the peer is not
   * connected.
   */
  sendData(peer: string, channel: number, data: Uint8Array, options?: AbortOptions): Promise<void>
  /** See `MessageRouter.relayBroadcast` (required here: klp-router always offers it). */
  relayBroadcast(peer: string, message: KLPMessage, options?: AbortOptions): Promise<void>
  /**
   * Receives the data frames of `channel` from every peer (one handler per channel). Throws
   * `InvalidParametersError` when `channel` is not an integer in 0..65535 or already has a handler.
   */
  handleData(channel: number, handler: DataHandler): void
  /** Removes the handler of data `channel`; frames on it are then rejected as `unknown_channel`. No-op when none is set. */
  unhandleData(channel: number): void
  /**
   * Listens to one of the {@link RouterEvents}. `once` removes the listener after its first event;
   * `signal` removes it when aborted.
   */
  addEventListener<K extends keyof RouterEvents>(type: K, listener: (evt: RouterEvents[K]) => void, options?: { once?: boolean; signal?: AbortSignal }): void
  /** Removes a listener added with {@link Router.addEventListener} (the same function). */
  removeEventListener<K extends keyof RouterEvents>(type: K, listener: (evt: RouterEvents[K]) => void): void
}

/** Re-exported for convenience: a message as the router hands it to handlers. */
export type { KLPMessage, KLPMessageType }
