/**
 * @kos-mesh/klp-router: the KLP message processing engine. A pipeline (frame and size checks,
 * decode, expiry, replay suppression, signature, trust requirements, dispatch by type), request/
 * response with correlation ids, retries and a response cache, fair priority scheduling with
 * per-peer bounded queues and token buckets, a routing table with multi-hop forwarding, hop limit,
 * routing hints and pluggable broadcast, signed hellos between neighbours, data channels, bulk
 * transfer of hash-verified chunks, and metrics.
 *
 * @packageDocumentation
 */
export { klpRouter } from './router.js'
export { createRouter, type CreateRouterOptions } from './create.js'
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
export { responseTypeFor, didOfKeyId, errorOf } from './messages.js'
export { floodingStrategy } from './forwarding.js'
export { RejectReason, REJECT_REASONS } from './reasons.js'
export * from './errors.js'
export type { RouterMetrics } from './metrics.js'
export type { Route, RouteKind, AdvertisedRoute, PinInit, PinEntry, PinChange } from './routing-table.js'
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
export * from './bulk/index.js'
