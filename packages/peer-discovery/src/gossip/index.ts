/**
 * Gossip: HyParView membership, Plumtree broadcast with lazy repair, and the `gossip_hops`
 * peer-list walk, as sans-I/O cores. See docs/DISCOVERY.md "## Gossip".
 */
export { gossipCore } from './core.js'
export type { GossipCore, GossipCoreStats } from './core.js'
export { HyParView, HYPARVIEW_DEFAULTS } from './hyparview.js'
export type { HyParViewComponents, HyParViewStats } from './hyparview.js'
export { Plumtree, PLUMTREE_DEFAULTS } from './plumtree.js'
export type { PlumtreeComponents, PlumtreeStats } from './plumtree.js'
export { PeerListWalker, PEER_LIST_DEFAULTS } from './peer-list.js'
export type { PeerListComponents, PeerListRequestOptions } from './peer-list.js'
export { validateGossipMessage, DEFAULT_GOSSIP_LIMITS } from './validate.js'
export type { GossipLimits } from './validate.js'
export { InvalidGossipMessageError, InvalidGossipOptionError, PeerListBusyError } from './errors.js'
export type * from './types.js'
