/**
 * @kos-mesh/peer-discovery: seed bootstrap, a bounded peer registry (de-duplication, ranking by
 * trust, latency and capabilities, liveness) and peer-table exchange over signed KLP
 * PEER_DISCOVERY records. Every record a node learns carries its own signature, so receivers
 * verify each one themselves; nothing is trusted because of who relayed it.
 *
 * @packageDocumentation
 */
export { peerDiscovery } from './service.js'
export type {
  PeerDiscovery,
  PeerDiscoveryInit,
  PeerDiscoveryComponents,
  PeerDiscoveryStats,
  DiscoveryConfig,
  BootstrapResult,
  SeedNode,
  LocalNodeInit,
} from './service-api.js'
export { PeerRegistry } from './registry.js'
export { DEFAULT_RANKING_WEIGHTS } from './registry-types.js'
export { toDiscoveredPeer } from './registry-rank.js'
export type {
  PeerRegistryInit,
  PeerEntry,
  RankedPeer,
  RankQuery,
  RankingWeights,
  MergeOptions,
  MergeResult,
  RejectReason,
  RemoveReason,
  RegistryStats,
  PeerRegistryEvents,
} from './registry-types.js'
export {
  createNodeRecord,
  createRecordVerifier,
  createRecordPeek,
  RECORD_TARGET,
  DEFAULT_RECORD_TTL_SECONDS,
  DEFAULT_CLOCK_SKEW_MS,
  DEFAULT_MAX_RECORD_BYTES,
  DEFAULT_MAX_RECORD_TTL_SECONDS,
} from './record.js'
export type { CreateNodeRecordOptions, RecordVerifierInit } from './record.js'
export { parseDiscoveryPayload, discoveryPayloadValue, knownKeyOf, knownSet, DEFAULT_PROTOCOL_LIMITS, DISCOVERY_CONTENT_TYPE, KNOWN_KEY_BYTES } from './protocol.js'
export type { DiscoveryPayload, ProtocolLimits } from './protocol.js'
export { parseFederatedNode, hasCapabilities, CAPABILITY_FLAGS, DEFAULT_NODE_LIMITS } from './validate.js'
export type { NodeLimits, CapabilityFlag } from './validate.js'
export { toNetworkAddress, toTransportAddress, splitPeerAddress } from './addresses.js'
export { LIBP2P_SCHEME, MAX_LIBP2P_ADDRESS_LENGTH, isLibp2pAddress, parseLibp2pTransportAddress, isUnspecifiedLibp2pHost, type ParsedLibp2pAddress } from './libp2p-address.js'
export type { NodeRecord, RecordVerifier, RecordPeek, DiscoverySource, PeerQuery } from './types.js'
export * from './errors.js'
export * from './gossip/index.js'
export * from './gossip-service/index.js'
export * from './kad/index.js'
export * from './dht/index.js'
