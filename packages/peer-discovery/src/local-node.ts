/**
 * This node's FederatedNode as every discovery service publishes it (the discovery service's record,
 * the DHT's contact record, the gossip service's record): what the operator set, the router's own
 * addresses and DID, and defaults for the rest.
 */
import { ConnectivityStatus, NATType, NodeType, VerificationLevel } from '@kos-mesh/interface'
import type { FederatedNode, MessageRouter, NetworkAddress } from '@kos-mesh/interface'
import { toNetworkAddress } from './addresses.js'
import type { LocalNodeInit } from './service-api.js'

/** The FederatedNode of the node behind `router` at `now` (ms), from `n` and defaults. */
export function localNodeOf(router: MessageRouter, n: LocalNodeInit, now: number): FederatedNode {
  const addresses = n.addresses ?? router.addrs().map((a) => toNetworkAddress(a)).filter((a): a is NetworkAddress => a !== undefined)
  return {
    node_id: router.did,
    node_type: n.node_type ?? NodeType.PEER_NODE,
    capabilities: { agent_hosting: false, vector_storage: false, relay_services: false, validation_services: false, archive_services: false, bandwidth_mbps: 0, storage_gb: 0, compute_units: 0, ...n.capabilities },
    network_info: { addresses, protocols_supported: n.protocols_supported ?? ['klp/1.0'], nat_type: n.nat_type ?? NATType.OPEN, connectivity_status: ConnectivityStatus.CONNECTED, latency_ms: 0 },
    trust_profile: { trust_score: 0, endorsements: 0, verification_level: VerificationLevel.CRYPTOGRAPHIC, ...n.trust_profile },
    last_seen: Math.floor(now),
  }
}
