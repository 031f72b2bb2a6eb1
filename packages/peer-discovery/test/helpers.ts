import type { FederatedNode, NodeCapabilities } from '@kos-mesh/interface'

export function makeNode(did: string, over: { trust?: number; caps?: Partial<NodeCapabilities>; address?: string; lastSeen?: number } = {}): FederatedNode {
  return {
    node_id: did,
    node_type: 'PeerNode',
    capabilities: { agent_hosting: false, vector_storage: false, relay_services: false, validation_services: false, archive_services: false, bandwidth_mbps: 100, storage_gb: 10, compute_units: 4, ...over.caps },
    network_info: {
      addresses: [{ protocol: 'memory', address: over.address ?? 'node', port: 0, is_public: false, is_relay: false }],
      protocols_supported: ['klp/1'],
      nat_type: 'open',
      connectivity_status: 'connected',
      latency_ms: 0,
    },
    trust_profile: { trust_score: over.trust ?? 5, endorsements: 0, verification_level: 'basic' },
    last_seen: over.lastSeen ?? 1_700_000_000_000,
  }
}
