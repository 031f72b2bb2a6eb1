/**
 * The bulk service's contract: its init options and components, the offer a receiver sees when a
 * sender pushes one, its events and the `BulkTransfer` interface. Internal module; the types are
 * exported from the package.
 */
import type { Clock, KLPMessageType, Logger, Startable } from '@kos-mesh/interface'
import type { Router } from '../types.js'
import type { BulkProgress, BulkStats } from './context.js'
import type { LeafHashing } from './hasher.js'
import type { BulkSendResult, OfferOptions, OutgoingOffer } from './offer.js'
import type { BulkReceiveResult, ReceiveOptions } from './receiver.js'
import type { BulkSource } from './source.js'
import type { BulkOfferInfo } from './wire.js'

/** Default path of the control messages: `klp://<authority>/.bulk`. */
export const DEFAULT_BULK_PATH = '/.bulk'
/** Default data channel of the chunks. */
export const DEFAULT_BULK_CHANNEL = 0x0b01

export interface BulkTransferInit {
  /** Message type of the control messages: the type of the service that embeds the transfer (e.g. AGENT_MIGRATION, VECTOR_SYNC). */
  type: KLPMessageType
  /** Path of the control messages (a handler at this path and type). Default `/.bulk`. */
  path?: string
  /** Data channel of the chunks (0..65535; one bulk service per channel on a router). Default 0x0b01. */
  channel?: number
  /** Sender: chunk size, bytes. Default 262,144 (256 KiB). */
  chunkSize?: number
  /** Sender: leaf hashes per page (power of two <= 16,384). Default 1,024 (32 KiB pages). */
  pageLeaves?: number
  /**
   * Sender: also offer the SHA-256 of the whole payload, checked by the receiver before it commits
   * (a second hash pass over every byte on both sides). Default false: the root of the hash tree
   * (in the signed offer) already identifies the content, and every chunk is checked against it.
   */
  contentHash?: boolean
  /** Sender: an offer lives this long after its last use, ms. Default 600,000. */
  offerTtlMs?: number
  /** Sender: offers alive at once. Default 64. */
  maxOffers?: number
  /** Sender: receivers fetching one offer at once. Default 8. */
  maxSessionsPerOffer?: number
  /** Sender: bytes of chunks read and not yet handed to the router, over all transfers. Default 16 MiB. */
  maxSendBufferBytes?: number
  /** Receiver: chunks outstanding per transfer (memory: window x chunkSize). Default 16. */
  window?: number
  /** Receiver: largest payload accepted (per call: `ReceiveOptions.maxBytes`). Default 1 GiB. */
  maxBytes?: number
  /** Receiver: largest chunk size accepted (a data frame must fit the router's frame limit). Default 1 MiB - 64. */
  maxChunkSize?: number
  /** Receiver: most chunks in an offer (tiny chunks cost a frame each, and a resumable sink a bit each). Default 4,194,304. */
  maxChunks?: number
  /**
   * Receiver: where the leaf hashes of chunks from the network are taken. `pool`: in libuv's
   * thread pool (WebCrypto), concurrently and off the event loop, at the cost of one copy of each
   * chunk (and up to window x chunkSize more memory); `inline`: on the event loop, in index order
   * (least CPU in total; better on one core). Offers with a content hash hash inline. Default:
   * `pool` on the real clock (no `components.clock`, or `systemClock`), `inline` under another
   * clock (a simulation: the pool's completions would come in real time, not on its clock).
   */
  leafHashing?: LeafHashing
  /** Receiver: transfers running at once. Default 16. */
  maxTransfers?: number
  /** Control requests (offer, leaf pages, reports), ms. Default 10,000. */
  requestTimeoutMs?: number
  /** Receiver: no chunk for this long while some are outstanding is a stall; they are asked again. Default 10,000 ms. */
  stallTimeoutMs?: number
  /** Receiver: consecutive stalls before the transfer fails with `BulkTimeoutError`. Default 3. */
  maxStalls?: number
  /** Receiver: time to get a direct connection to the sender (first dial and after a drop), ms. Default 30,000. */
  reconnectTimeoutMs?: number
  /**
   * Receiver: called for an offer a sender pushes (`push()`); call `offer.accept({ sink, ... })` or
   * `offer.reject(code)` before it returns (neither: refused). Without it, pushed offers are refused.
   * Offers larger than `maxBytes` are refused before it is called.
   */
  onOffer?: (offer: IncomingOffer) => void | Promise<void>
}

export interface BulkTransferComponents {
  /** klp-router's Router (for its data channels). */
  router: Router
  /** Default `systemClock`. */
  clock?: Clock
  /** Default: silent. */
  logger?: Logger
}

/** An offer a sender pushed, as `onOffer` sees it. */
export interface IncomingOffer extends BulkOfferInfo {
  /** The sender's authority and DID (the signer of the offer). */
  from: string
  fromDid: string
  /**
   * Accepts: the transfer starts once the answer is sent. The promise settles when it ends (attach
   * a handler; do not await it inside `onOffer`).
   */
  accept(options: ReceiveOptions): Promise<BulkReceiveResult>
  /** Refuses with a wire code (default `bulk_refused`). */
  reject(reason?: string): void
}

export interface BulkTransferEvents {
  /** Progress of any transfer of this service, both directions. */
  progress: CustomEvent<BulkProgress>
}

export interface BulkTransfer extends Startable {
  /**
   * Makes an offer: reads the source once (leaf hashes and content hash) and keeps it for
   * `ttlMs` after its last use. Hand `id` and this node's authority to the receiver (e.g. in a
   * message of your own), which calls `receive()`.
   */
  offer(source: BulkSource, options?: OfferOptions): Promise<OutgoingOffer>
  /** Offers to `to` (an authority) with a signed message and resolves when it reports success. */
  push(to: string, source: BulkSource, options?: OfferOptions): Promise<BulkSendResult>
  /** Fetches offer `id` of the node `from` (an authority) into `options.sink`. */
  receive(from: string, id: string, options: ReceiveOptions): Promise<BulkReceiveResult>
  /** A snapshot of this service's counters (a new object each call; both directions). */
  stats(): BulkStats
  /**
   * Listens to one of the {@link BulkTransferEvents} (`progress`). `once` removes the listener after
   * its first event; `signal` removes it when aborted.
   */
  addEventListener<K extends keyof BulkTransferEvents>(type: K, listener: (evt: BulkTransferEvents[K]) => void, options?: { once?: boolean; signal?: AbortSignal }): void
  /** Removes a listener added with {@link BulkTransfer.addEventListener} (the same function). */
  removeEventListener<K extends keyof BulkTransferEvents>(type: K, listener: (evt: BulkTransferEvents[K]) => void): void
}
