/**
 * @kos-mesh/klp-router: the KLP message processing engine. A pipeline (frame and size checks,
 * decode, expiry, replay suppression, signature, trust requirements, dispatch by type), request/
 * response with correlation ids, retries and a response cache, fair priority scheduling with
 * per-peer bounded queues and token buckets, a routing table with multi-hop forwarding, hop limit,
 * routing hints and broadcast flooding, signed hellos between neighbours, and metrics.
 *
 * @packageDocumentation
 */
export { klpRouter, createRouter, type CreateRouterOptions } from './router.js'
export type { RouterInit, RateLimitInit } from './options.js'
export type {
  Router,
  RouterComponents,
  RouterEvents,
  RoutingTableView,
  DataHandler,
  MessageInit,
  RequestOptions,
  PeerInfo,
  RejectInfo,
  HandleOptions,
  BroadcastStrategy,
  BroadcastContext,
} from './types.js'
export { responseTypeFor, didOfKeyId, errorOf, strictestTrust } from './messages.js'
export { floodingStrategy } from './forwarding.js'
export { RejectReason, REJECT_REASONS } from './reasons.js'
export * from './errors.js'
export { localTrustStore, checkTrust, type LocalTrustStore, type LocalTrustStoreInit } from './trust.js'
export type { RouterMetrics } from './metrics.js'
export { RoutingTable, type Route, type RouteKind, type AdvertisedRoute, type RoutingTableInit, type ClaimResult, type PinInit, type PinEntry, type PinChange } from './routing-table.js'
export { FairScheduler, priorityClass, PRIORITY_CLASSES, type FairSchedulerInit, type EnqueueResult } from './scheduler.js'
export { OutboundQueues, type OutboundInit, type OutboundStats } from './outbound.js'
export { TokenBucket, type TokenBucketInit } from './token-bucket.js'
export { ReplayWindow, type ReplayWindowInit } from './replay-cache.js'
export { ResponseCache, type ResponseCacheInit } from './response-cache.js'
export {
  encodeEnvelope,
  encodeDataFrame,
  decodeEnvelope,
  rewrapEnvelope,
  EnvelopeKind,
  InvalidEnvelopeError,
  ENVELOPE_HEADER_BYTES,
  ENVELOPE_MAGIC,
  ENVELOPE_VERSION,
  FLAG_VIA_REACHED,
  type Envelope,
} from './envelope.js'
