/**
 * The gossip service (issue 12): HyParView membership and Plumtree broadcast (src/gossip) over a
 * MessageRouter, as the router's pluggable broadcast, plus a `gossip` DiscoverySource.
 */
export { gossipService } from './service.js'
export type { GossipService, GossipServiceStats, GossipPeerQuery } from './api.js'
export { GOSSIP_PATH } from './options.js'
export type { GossipServiceInit, GossipServiceComponents } from './options.js'
export { parseGossipPayload, gossipPayloadValue, DEFAULT_GOSSIP_WIRE_LIMITS, GOSSIP_ACTIONS } from './wire.js'
export type { GossipWire, GossipAction, GossipWireLimits } from './wire.js'
export { GossipLimitExceededError, GossipNotStartedError } from './errors.js'
