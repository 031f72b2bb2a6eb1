/**
 * @kos-mesh/agent-migration: signed, sandboxed, exactly-once migration of kOS agents between
 * kos-mesh nodes (the spec's section IV.B). Bundles (SerializedAgent) with checksums, signed
 * requests, ownership and delegation chains, hash-chained audit trails, secrets sealed to the
 * target, a QuickJS sandbox with limits and granted capabilities, behavioural fingerprints, and
 * COPY / MOVE / CLONE / BACKUP with a two-phase, fenced MOVE. See docs/MIGRATION.md.
 *
 * @packageDocumentation
 */
export * from './types.js'
export * from './errors.js'
export { DEFAULT_MIGRATION_LIMITS, resolveMigrationLimits, type MigrationLimits } from './limits.js'
export { MIGRATION_AAD, signObject, openObject, type OpenedObject } from './cose.js'
export { BUNDLE_VERSION, AGENT_NAME_RE, CAPABILITY_RE, validateSerializedAgent, computeChecksum, sealChecksum, verifyChecksum, encodeAgent, decodeAgent, validateSealedBox } from './codec.js'
export { signDelegation, openDelegation, validateDelegation, checkDelegationChain, MAX_FUTURE_SKEW_MS, type DelegationInit, type ChainCheck } from './delegation.js'
export { appendAudit, openAuditEntry, verifyAuditTrail, validateAuditEntry, auditHead, type AuditAppend, type TrailExpectation } from './audit.js'
export { sealSecrets, openSecrets, SEAL_INFO, MAX_SECRETS, MAX_SECRET_BYTES, type SealIdentity, type Secrets } from './seal.js'
export { runInSandbox, loadSandboxModule, MAX_MEMORY_READ, type SandboxLimits, type SandboxHost, type AgentCall, type AgentAnswer } from './sandbox.js'
export { computeFingerprint, checkFingerprint, codeHash, validateFingerprint, type FingerprintOptions } from './fingerprint.js'
export { resolvePolicy, grantPermissions, type MigrationPolicy, type ResolvedPolicy, type Grant } from './policy.js'
export { buildRequest, openRequest, openBundle, validateHeader, MIGRATION_ID_RE, type HeaderInit, type OpenRequestOptions } from './request.js'
export { agentMigration, type AgentMigrationInit, type AgentMigrationComponents, type AgentMigrationService, type MigrateOptions, type ExportOptions, type MigrationStats } from './service.js'
export { MIGRATION_PATH, MigrationRejectReason, reasonOf, parseWireRequest, type WireRequest } from './wire.js'
export { memoryKeyValueStore, MigrationStore, STORE_PREFIX, agentKey, type AgentRecord, type OutLog, type InLog, type OutPhase, type InPhase } from './store.js'
export type { CreateAgentInit } from './protocol/host.js'
export type { OutgoingOptions } from './protocol/source.js'
export type { Preflight } from './protocol/target.js'
export type { NodeIdentity } from './protocol/core.js'
