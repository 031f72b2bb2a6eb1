/**
 * @kos-mesh/reference-node: a thin reference node that wires the kos-mesh packages together
 * (identity from a keystore, transports, LevelDB or in-memory storage, the KLP router, the trust
 * engine and service of @kos-mesh/trust with the operator's persisted anchors, peer discovery
 * (seeds and peer tables, the DHT, gossip) and local agents answering TASK_REQUEST), plus the `kos-mesh` CLI
 * and its loopback control API.
 *
 * @packageDocumentation
 */
export {
  createNode,
  memory,
  discoveryService,
  defaultAuthority,
  PIN_PREFIX,
  type KosMeshNode,
  type NodeInit,
  type NodePeer,
  type NodeStatus,
  type NodeRevokeInit,
  type TransportFactory,
} from './node.js'
export { libp2p, type Libp2pTransportInit } from './libp2p.js'
export { LIBP2P_SCHEME, isLibp2pAddress, parseLibp2pAddress, toRecordAddress, fromRecordAddress, type ParsedLibp2pAddress } from './addresses.js'
export { KNOWN_PEER_PREFIX, type KnownPeer } from './known-peers.js'
export { dhtNodeService, gossipNodeService, nodeGroupOf } from './mesh-services.js'
export { migrationService, MAX_NODE_BUNDLE_BYTES, MAX_RECENT_MIGRATIONS, MAX_ACTIVE_MIGRATIONS, AGENT_LISTING_MAX_AGE_MS, MIGRATION_METRIC_TYPES, type MigrationMetrics, type MigrationTypeCounts, type MigrationNodeInit, type NodeAgentMigration, type AgentsView, type MigrationProgress, type MigrationOutcome } from './node-migration.js'
export { vectorsService, VECTOR_BULK_CHANNEL, MAX_CONCURRENT_SYNCS, MAX_ADD_ENTRIES, MAX_RECENT_SYNCS, VECTORS_VIEW_MAX_AGE_MS, type VectorsNodeInit, type NodeVectors, type VectorMetrics, type VectorsView, type CollectionView, type ShardView, type SyncView, type VectorEntryInput } from './node-vectors.js'
export { vectorsSection, MAX_COLLECTION_ROWS, MAX_SHARD_ROWS, type VectorsPanel } from './dashboard/vectors.js'
export { parseImportFile, parseVectorText, checkEntry, InvalidImportFileError, InvalidVectorInputError, MAX_IMPORT_FILE_BYTES, MAX_IMPORT_LINE_BYTES, MAX_IMPORT_ENTRIES, type VectorEntry } from './vectors-input.js'
export { agentsSection, MAX_AGENT_ROWS, type AgentsPanel, type AgentRow } from './dashboard/agents.js'
export type { DashboardSection } from './dashboard/snapshot.js'
export { NodeMesh, BROADCAST_PATH, MAX_BROADCASTS_KEPT, MAX_BROADCAST_CHARS, type MeshDiscoverQuery, type MeshDiscoverResult, type MeshPeer, type MeshRecord, type MeshProvider, type MeshSummary, type ReceivedBroadcast } from './node-mesh.js'
export { DEFAULT_BACKOFF, backoffDelay, type ReconnectInit, type RedialState, type BackoffSettings } from './redial.js'
export type { EventLogInit } from './events.js'
export { defineService, BUILTIN_COMPONENTS, type NodeComponents, type NodeService, type NodeInfo } from './components.js'
export { keystoreIdentity, type IdentitySource, type KeystoreIdentityInit } from './identity.js'
export { memoryStore, type MemoryStoreInit, type NodeStore } from './storage/memory.js'
export { levelStore, integrityMarkerPath, RESERVED_KEY_PREFIX, type LevelStoreInit, type LevelNodeStore, type StoreIntegrityRecord } from './storage/level.js'
export { datastoreKeyValueStore, VerbatimMemoryDatastore, type DatastoreKeyValueStore, type DatastoreKeyValueStoreInit, type DatastoreNodeStore } from './datastore.js'
export { checkDid, isValidDid, DID_SYNTAX } from './did.js'
export { MAX_KEY_LENGTH, MAX_VALUE_BYTES } from './storage/keys.js'
export { persistentTrustStore, statementView, TrustRuntime, TRUST_PREFIX, type PersistentTrustStore, type TrustEntry, type TrustListEntry, type StatementView, type TrustSummary, type TrustRuntimeInit } from './trust.js'
// the agent runtime and the task service live in @kos-mesh/agents; re-exported so that code
// written against earlier versions of this package keeps working (`taskService` here is the
// node's wrapper, a `services.tasks` factory)
export { taskService } from './node.js'
export {
  AgentRegistry,
  MAX_AGENTS,
  echoAgent,
  textStatsAgent,
  mathAgent,
  BUILTIN_AGENTS,
  evaluateExpression,
  MAX_EXPRESSION_LENGTH,
  MAX_EXPRESSION_DEPTH,
  textStats,
  MAX_TEXT_LENGTH,
  parseTaskRequest,
  checkTaskSize,
  agentNameOfPath,
  TaskRejectReason,
  type Agent,
  type AgentContext,
  type AgentInit,
  type TaskRequest,
  type TaskResult,
  type TextStats,
  type TaskService,
  type TaskServiceInit,
  type SendTaskOptions,
  type AuthorityResolver,
} from '@kos-mesh/agents'
export { jsonLogger, silentLogger, LOG_LEVELS, type LogLevel } from './logger.js'
export * from './errors.js'
