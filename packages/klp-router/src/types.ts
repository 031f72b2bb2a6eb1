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
  transports: Transport[]
  /** Time and timers. Default: `systemClock` (the memory transport's `network.clock` for simulations). */
  clock?: Clock
  /** Default: silent. */
  logger?: Logger
}

export interface RouterEvents extends MessageRouterEvents {
  /** An authority pin was made, became firm, or was evicted (persist it: see `routingTable.pinEntries()`). */
  'pin:change': CustomEvent<PinChange>
}

/** Read-only view of the routing table. */
export interface RoutingTableView {
  lookup(authority: string): Route | undefined
  routes(): Route[]
  didOf(authority: string): string | undefined
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

export interface Router extends MessageRouter, Startable {
  readonly routingTable: RoutingTableView
  isStarted(): boolean
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
  /** Receives the data frames of a channel (one handler per channel). */
  handleData(channel: number, handler: DataHandler): void
  unhandleData(channel: number): void
  addEventListener<K extends keyof RouterEvents>(type: K, listener: (evt: RouterEvents[K]) => void, options?: { once?: boolean; signal?: AbortSignal }): void
  removeEventListener<K extends keyof RouterEvents>(type: K, listener: (evt: RouterEvents[K]) => void): void
}

/** Re-exported for convenience: a message as the router hands it to handlers. */
export type { KLPMessage, KLPMessageType }
