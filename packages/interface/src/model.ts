/**
 * The kos-mesh data model, from the spec (`federated-mesh-protocols.md`).
 *
 * Enums are `as const` objects with a union type of the same name, so they cost nothing at
 * runtime and can be used as values (`KLPMessageType.TASK_REQUEST`) and as types.
 *
 * Where the spec's pseudo-types were loose (`any`, `Date`, a signature as `string`) this file
 * picks the concrete wire-friendly type and says so: timestamps are integer milliseconds since
 * the Unix epoch (Date is not deterministic on the wire), signatures are raw bytes.
 */

type ValueOf<T> = T[keyof T]

// ---------------------------------------------------------------- enums

/** KLP message types (the spec's MessageType). */
export const KLPMessageType = {
  TASK_REQUEST: 'TASK_REQUEST',
  TASK_RESPONSE: 'TASK_RESPONSE',
  AGENT_MIGRATION: 'AGENT_MIGRATION',
  REPUTATION_DELTA: 'REPUTATION_DELTA',
  BROADCAST_ANNOUNCE: 'BROADCAST_ANNOUNCE',
  VECTOR_SYNC: 'VECTOR_SYNC',
  PEER_DISCOVERY: 'PEER_DISCOVERY',
  TRUST_ATTESTATION: 'TRUST_ATTESTATION',
} as const
/** One of the values of `KLPMessageType`. */
export type KLPMessageType = ValueOf<typeof KLPMessageType>
/** Every message type, in a stable order (the order is used by compact wire encodings). */
export const KLP_MESSAGE_TYPES: readonly KLPMessageType[] = Object.freeze(Object.values(KLPMessageType))

/** Message priorities, 1..10; higher is handled first. */
export const MessagePriority = {
  LOW: 1,
  NORMAL: 5,
  HIGH: 8,
  CRITICAL: 10,
} as const
/** One of the values of `MessagePriority`. */
export type MessagePriority = ValueOf<typeof MessagePriority>

/** How strongly a node's identity has been verified, weakest first. */
export const VerificationLevel = {
  NONE: 'none',
  BASIC: 'basic',
  STRONG: 'strong',
  CRYPTOGRAPHIC: 'cryptographic',
} as const
/** One of the values of `VerificationLevel`. */
export type VerificationLevel = ValueOf<typeof VerificationLevel>

/** The role of a node in the mesh, published in its record. */
export const NodeType = {
  PEER_NODE: 'PeerNode',
  GATEWAY_NODE: 'GatewayNode',
  ARCHIVE_NODE: 'ArchiveNode',
  VALIDATOR_NODE: 'ValidatorNode',
} as const
/** One of the values of `NodeType`. */
export type NodeType = ValueOf<typeof NodeType>

/** Network protocols of the spec's network layer. */
export const NetworkProtocol = {
  IP_UDP: 'IP/UDP',
  IP_TCP: 'IP/TCP',
  QUIC: 'QUIC',
} as const
/** One of the values of `NetworkProtocol`. */
export type NetworkProtocol = ValueOf<typeof NetworkProtocol>

/** Local mesh protocols of the spec (radio links). */
export const LocalMeshProtocol = {
  BLUETOOTH: 'Bluetooth',
  WIFI_DIRECT: 'WiFi Direct',
  LORA: 'LoRa',
} as const
/** One of the values of `LocalMeshProtocol`. */
export type LocalMeshProtocol = ValueOf<typeof LocalMeshProtocol>

/** Overlay protocols of the spec. */
export const OverlayProtocol = {
  LIBP2P: 'libp2p',
  NATS: 'NATS',
  TOR_HIDDEN: 'Tor Hidden Services',
} as const
/** One of the values of `OverlayProtocol`. */
export type OverlayProtocol = ValueOf<typeof OverlayProtocol>

/** NAT types, from open to symmetric. */
export const NATType = {
  OPEN: 'open',
  MODERATE: 'moderate',
  STRICT: 'strict',
  SYMMETRIC: 'symmetric',
} as const
/** One of the values of `NATType`. */
export type NATType = ValueOf<typeof NATType>

/** A node's connectivity to the mesh. */
export const ConnectivityStatus = {
  CONNECTED: 'connected',
  CONNECTING: 'connecting',
  DISCONNECTED: 'disconnected',
  ERROR: 'error',
} as const
/** One of the values of `ConnectivityStatus`. */
export type ConnectivityStatus = ValueOf<typeof ConnectivityStatus>

/** How a peer was discovered. */
export const DiscoveryMethod = {
  DHT: 'dht',
  GOSSIP: 'gossip',
  SEED: 'seed',
  DIRECT: 'direct',
} as const
/** One of the values of `DiscoveryMethod`. */
export type DiscoveryMethod = ValueOf<typeof DiscoveryMethod>

/** Kinds of agent migration. */
export const MigrationType = {
  /** The source keeps its agent; the target runs a live copy under a derived id, same owner, history continued. */
  COPY: 'copy',
  /** The agent leaves the source: same id, fencing epoch + 1, exactly one live instance (two-phase). */
  MOVE: 'move',
  /** An independent agent: a new id and lineage root, possibly a new owner, no secrets carried. */
  CLONE: 'clone',
  /** An inactive archived snapshot on an ARCHIVE_NODE, restorable later by the owner. */
  BACKUP: 'backup',
} as const
/** One of the values of `MigrationType`. */
export type MigrationType = ValueOf<typeof MigrationType>

/** States of an agent migration. */
export const MigrationStatus = {
  PENDING: 'pending',
  IN_PROGRESS: 'in_progress',
  COMPLETED: 'completed',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
} as const
/** One of the values of `MigrationStatus`. */
export type MigrationStatus = ValueOf<typeof MigrationStatus>

/** Strategies of vector index synchronisation. */
export const SyncStrategy = {
  /** Push updates to peers: a writer sends its new entries to the shard's other holders. */
  PUSH: 'push',
  /** Pull updates from peers: a replica reconciles with the other holders. */
  PULL: 'pull',
  /** Push-pull hybrid: push new writes, and pull periodically to repair what pushes missed. */
  HYBRID: 'hybrid',
  /** Gossip-based propagation: announce a shard's fingerprint; who differs pulls from the announcer. */
  GOSSIP: 'gossip',
} as const
/** One of the values of `SyncStrategy`. */
export type SyncStrategy = ValueOf<typeof SyncStrategy>

/** How a vector collection is split into shards. */
export const ShardingMethod = {
  /** SHA-256 of the entry key modulo `shard_count`: even shares; a query visits every shard. */
  HASH_BASED: 'hash_based',
  /** The entry id against the collection's sorted range boundaries; a query visits every shard. */
  RANGE_BASED: 'range_based',
  /** The centroid nearest the entry's vector (centroids learned from a sample); a query visits only the nearest shards. */
  SEMANTIC_BASED: 'semantic_based',
  /** The entry's region names its shard through the locality hints (an unknown region is hashed); a query with a region visits only that shard. */
  GEOGRAPHIC: 'geographic',
} as const
/** One of the values of `ShardingMethod`. */
export type ShardingMethod = ValueOf<typeof ShardingMethod>

/** States of a vector synchronisation. */
export const SyncStatus = {
  /** Not started. */
  PENDING: 'pending',
  /** Running. */
  IN_PROGRESS: 'in_progress',
  /** Every requested shard was reconciled with the peer. */
  COMPLETED: 'completed',
  /** The sync with the peer stopped on an error; what was applied before it is kept. */
  FAILED: 'failed',
} as const
/** One of the values of `SyncStatus`. */
export type SyncStatus = ValueOf<typeof SyncStatus>

/** States of a node's bootstrap. */
export const BootstrapStatus = {
  PENDING: 'pending',
  IN_PROGRESS: 'in_progress',
  COMPLETED: 'completed',
  FAILED: 'failed',
} as const
/** One of the values of `BootstrapStatus`. */
export type BootstrapStatus = ValueOf<typeof BootstrapStatus>

/** What became of a message: processed, rejected, or deferred (try again later). */
export const ProcessingStatus = {
  PROCESSED: 'processed',
  REJECTED: 'rejected',
  DEFERRED: 'deferred',
} as const
/** One of the values of `ProcessingStatus`. */
export type ProcessingStatus = ValueOf<typeof ProcessingStatus>

// ---------------------------------------------------------------- KLP messages

/** A parsed `klp://authority/path?query#fragment` address. */
export interface KLPAddress {
  scheme: 'klp'
  /** `node.domain.kai`: lower-case DNS-like labels. */
  authority: string
  /** Absolute path, `/agents/genie`; `/` when empty. */
  path: string
  query?: string
  fragment?: string
}

/** A CBOR-representable value: what a payload's `data` may hold. */
export type KLPValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | readonly KLPValue[]
  | { readonly [key: string]: KLPValue }

/** How a payload's data was encrypted (AES-256-GCM to a recipient key). */
export interface EncryptionInfo {
  enabled: boolean
  /** Only `AES-256-GCM` is defined. */
  algorithm?: 'AES-256-GCM'
  /** 12-byte nonce, present when enabled. */
  nonce?: Uint8Array
  /** Identifies the key for the recipient (a DID key id, a session id...). */
  key_id?: string
  /** Ephemeral public key of a sealed (ECIES-style) envelope, when used. */
  ephemeral_key?: Uint8Array
}

/** How a payload's data was compressed. */
export interface CompressionInfo {
  enabled: boolean
  /** Only `gzip` is defined. */
  algorithm?: 'gzip'
}

/** A message's payload: the data with its content type, and how it was compressed and encrypted. */
export interface KLPPayload {
  /** MIME-like content type of `data` before compression/encryption, e.g. `application/cbor`. */
  content_type: string
  /** The data. When compressed or encrypted this is the transformed bytes. */
  data: KLPValue
  encryption: EncryptionInfo
  compression: CompressionInfo
}

/** A hint to routers on the way of a message (a next hop, a region, a preference). */
export interface RoutingHint {
  /** e.g. `via` (next hop node id), `region`, `prefer`. */
  kind: string
  value: string
}

/** What a message asks of its receiver's trust in the sender (the receiver's own policy may ask more). */
export interface TrustRequirements {
  minimum_trust_score: number
  required_endorsements: number
  verification_level: VerificationLevel
}

/**
 * A message's metadata: id, time, time to live, priority, correlation, routing hints and trust
 * requirements.
 */
export interface KLPMetadata {
  /** Content address of the canonical unsigned message (see klp-codec). */
  message_id: string
  correlation_id?: string
  priority: MessagePriority
  /** Time to live in seconds, counted from `timestamp`. */
  ttl: number
  routing_hints: RoutingHint[]
  trust_requirements: TrustRequirements
}

/** A KLP message, as the spec defines it (with `signer`, the key id that signed it). */
export interface KLPMessage {
  version: string
  type: KLPMessageType
  source: KLPAddress
  target: KLPAddress
  payload: KLPPayload
  metadata: KLPMetadata
  /** Ed25519 signature over the canonical bytes of everything but the signature. */
  signature: Uint8Array
  /** Key id (DID URL or DID) of the signer. */
  signer: string
  /** Milliseconds since the Unix epoch. */
  timestamp: number
}

/** A message before signing. `message_id` is computed by the codec if absent. */
export type UnsignedKLPMessage = Omit<KLPMessage, 'signature' | 'signer' | 'metadata'> & {
  metadata: Omit<KLPMetadata, 'message_id'> & { message_id?: string }
}

/**
 * What a handler (or the pipeline) did with a message: processed, rejected or deferred, with a reason and a
 * response.
 */
export interface ProcessingResult {
  status: ProcessingStatus
  /** Stable reason code when rejected or deferred (`insufficient_trust`, `no_eligible_agents`, ...). */
  reason?: string
  response?: KLPMessage
  /** Seconds after which a deferred request may be retried. */
  retry_after?: number
}

// ---------------------------------------------------------------- nodes and peers

/** What a node offers the mesh (the flags of its record). */
export interface NodeCapabilities {
  agent_hosting: boolean
  vector_storage: boolean
  relay_services: boolean
  validation_services: boolean
  archive_services: boolean
  bandwidth_mbps: number
  storage_gb: number
  compute_units: number
}

/** An address a node can be reached at: protocol, host and port. */
export interface NetworkAddress {
  protocol: string
  address: string
  port: number
  is_public: boolean
  is_relay: boolean
}

/** How a node is reachable: its addresses, protocols, NAT type and connectivity. */
export interface NetworkInfo {
  addresses: NetworkAddress[]
  protocols_supported: string[]
  nat_type: NATType
  connectivity_status: ConnectivityStatus
  latency_ms: number
}

/** What a node observed of a peer, reported to the trust engine (`TrustEngine.observe`). */
export const TrustObservation = {
  TASK_OK: 'task_ok',
  TASK_FAILED: 'task_failed',
  INVALID_MESSAGE: 'invalid_message',
  FORGED_MESSAGE: 'forged_message',
  TIMEOUT: 'timeout',
} as const
export type TrustObservation = ValueOf<typeof TrustObservation>

/** A node's trust as another node sees it: score, endorsements, verification level. */
export interface NodeTrustProfile {
  /** 0..10, as TrustRequirements.minimum_trust_score. */
  trust_score: number
  endorsements: number
  verification_level: VerificationLevel
}

/** A node's record in the mesh: its DID, type, capabilities, network information and trust profile. */
export interface FederatedNode {
  /** The node's DID. */
  node_id: string
  node_type: NodeType
  capabilities: NodeCapabilities
  network_info: NetworkInfo
  trust_profile: NodeTrustProfile
  /** Milliseconds since the Unix epoch. */
  last_seen: number
}

/** A peer as discovery reports it: its DID, addresses, capabilities, how and when it was found. */
export interface DiscoveredPeer {
  peer_id: string
  addresses: NetworkAddress[]
  capabilities: NodeCapabilities
  trust_score: number
  discovery_method: DiscoveryMethod
  /** Milliseconds since the Unix epoch. */
  discovery_timestamp: number
}
