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
export type KLPMessageType = ValueOf<typeof KLPMessageType>
/** Every message type, in a stable order (the order is used by compact wire encodings). */
export const KLP_MESSAGE_TYPES: readonly KLPMessageType[] = Object.freeze(Object.values(KLPMessageType))

export const MessagePriority = {
  LOW: 1,
  NORMAL: 5,
  HIGH: 8,
  CRITICAL: 10,
} as const
export type MessagePriority = ValueOf<typeof MessagePriority>

export const VerificationLevel = {
  NONE: 'none',
  BASIC: 'basic',
  STRONG: 'strong',
  CRYPTOGRAPHIC: 'cryptographic',
} as const
export type VerificationLevel = ValueOf<typeof VerificationLevel>

export const NodeType = {
  PEER_NODE: 'PeerNode',
  GATEWAY_NODE: 'GatewayNode',
  ARCHIVE_NODE: 'ArchiveNode',
  VALIDATOR_NODE: 'ValidatorNode',
} as const
export type NodeType = ValueOf<typeof NodeType>

export const NetworkProtocol = {
  IP_UDP: 'IP/UDP',
  IP_TCP: 'IP/TCP',
  QUIC: 'QUIC',
} as const
export type NetworkProtocol = ValueOf<typeof NetworkProtocol>

export const LocalMeshProtocol = {
  BLUETOOTH: 'Bluetooth',
  WIFI_DIRECT: 'WiFi Direct',
  LORA: 'LoRa',
} as const
export type LocalMeshProtocol = ValueOf<typeof LocalMeshProtocol>

export const OverlayProtocol = {
  LIBP2P: 'libp2p',
  NATS: 'NATS',
  TOR_HIDDEN: 'Tor Hidden Services',
} as const
export type OverlayProtocol = ValueOf<typeof OverlayProtocol>

export const NATType = {
  OPEN: 'open',
  MODERATE: 'moderate',
  STRICT: 'strict',
  SYMMETRIC: 'symmetric',
} as const
export type NATType = ValueOf<typeof NATType>

export const ConnectivityStatus = {
  CONNECTED: 'connected',
  CONNECTING: 'connecting',
  DISCONNECTED: 'disconnected',
  ERROR: 'error',
} as const
export type ConnectivityStatus = ValueOf<typeof ConnectivityStatus>

export const DiscoveryMethod = {
  DHT: 'dht',
  GOSSIP: 'gossip',
  SEED: 'seed',
  DIRECT: 'direct',
} as const
export type DiscoveryMethod = ValueOf<typeof DiscoveryMethod>

export const MigrationType = {
  COPY: 'copy',
  MOVE: 'move',
  CLONE: 'clone',
  BACKUP: 'backup',
} as const
export type MigrationType = ValueOf<typeof MigrationType>

export const MigrationStatus = {
  PENDING: 'pending',
  IN_PROGRESS: 'in_progress',
  COMPLETED: 'completed',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
} as const
export type MigrationStatus = ValueOf<typeof MigrationStatus>

export const SyncStrategy = {
  PUSH: 'push',
  PULL: 'pull',
  HYBRID: 'hybrid',
  GOSSIP: 'gossip',
} as const
export type SyncStrategy = ValueOf<typeof SyncStrategy>

export const ShardingMethod = {
  HASH_BASED: 'hash_based',
  RANGE_BASED: 'range_based',
  SEMANTIC_BASED: 'semantic_based',
  GEOGRAPHIC: 'geographic',
} as const
export type ShardingMethod = ValueOf<typeof ShardingMethod>

export const SyncStatus = {
  PENDING: 'pending',
  IN_PROGRESS: 'in_progress',
  COMPLETED: 'completed',
  FAILED: 'failed',
} as const
export type SyncStatus = ValueOf<typeof SyncStatus>

export const BootstrapStatus = {
  PENDING: 'pending',
  IN_PROGRESS: 'in_progress',
  COMPLETED: 'completed',
  FAILED: 'failed',
} as const
export type BootstrapStatus = ValueOf<typeof BootstrapStatus>

export const ProcessingStatus = {
  PROCESSED: 'processed',
  REJECTED: 'rejected',
  DEFERRED: 'deferred',
} as const
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

export interface CompressionInfo {
  enabled: boolean
  /** Only `gzip` is defined. */
  algorithm?: 'gzip'
}

export interface KLPPayload {
  /** MIME-like content type of `data` before compression/encryption, e.g. `application/cbor`. */
  content_type: string
  /** The data. When compressed or encrypted this is the transformed bytes. */
  data: KLPValue
  encryption: EncryptionInfo
  compression: CompressionInfo
}

export interface RoutingHint {
  /** e.g. `via` (next hop node id), `region`, `prefer`. */
  kind: string
  value: string
}

export interface TrustRequirements {
  minimum_trust_score: number
  required_endorsements: number
  verification_level: VerificationLevel
}

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

export interface ProcessingResult {
  status: ProcessingStatus
  /** Stable reason code when rejected or deferred (`insufficient_trust`, `no_eligible_agents`, ...). */
  reason?: string
  response?: KLPMessage
  /** Seconds after which a deferred request may be retried. */
  retry_after?: number
}

// ---------------------------------------------------------------- nodes and peers

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

export interface NetworkAddress {
  protocol: string
  address: string
  port: number
  is_public: boolean
  is_relay: boolean
}

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

export interface NodeTrustProfile {
  /** 0..10, as TrustRequirements.minimum_trust_score. */
  trust_score: number
  endorsements: number
  verification_level: VerificationLevel
}

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

export interface DiscoveredPeer {
  peer_id: string
  addresses: NetworkAddress[]
  capabilities: NodeCapabilities
  trust_score: number
  discovery_method: DiscoveryMethod
  /** Milliseconds since the Unix epoch. */
  discovery_timestamp: number
}
