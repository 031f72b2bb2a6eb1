/**
 * The data model of agent migration, from the spec's section IV.B. Where the spec left a type
 * open (`AgentMetadata`, `AgentState`, ...), this file defines it; where it was loose, it picks a
 * wire-friendly type: times are integer milliseconds since the Unix epoch, signatures and hashes
 * are bytes or base32 CIDs, enums are `as const` objects.
 */
import { MigrationType, type KLPValue, type MigrationStatus } from '@kos-mesh/interface'

/**
 * The spec's migration types and statuses, defined once in @kos-mesh/interface and re-exported
 * here. This implementation resolves `migrate()` and `restore()` only with `completed`, once the
 * migration is decided and applied; a failed or cancelled migration rejects with a typed error
 * instead (counted in `MigrationStats.failed` / `cancelled`).
 */
export { MigrationStatus, MigrationType } from '@kos-mesh/interface'

type ValueOf<T> = T[keyof T]

/**
 * Every {@link MigrationType} value, frozen, in declaration order (`copy`, `move`, `clone`, `backup`):
 * what the decoders accept as a `migration_type`, a delegation's `actions` or a policy's `accept`.
 */
export const MIGRATION_TYPES: readonly MigrationType[] = Object.freeze(Object.values(MigrationType))


/** Where an agent came from, when it is not the original. */
export interface AgentLineage {
  /** The agent id it derives from. */
  parent: string
  kind: 'copy' | 'clone' | 'restore'
  /** The parent's fencing epoch at the time. */
  parent_epoch: number
  /** The migration that made it. */
  migration_id: string
}

/**
 * Who the agent is, the first part of its bundle: id, name, owner, code version, capabilities,
 * creation time and lineage. Covered by the bundle checksum; only a COPY or CLONE gives the agent
 * a new id (and a `lineage` pointing at the parent).
 */
export interface AgentMetadata {
  /** Stable id of the agent (1..256 chars). */
  agent_id: string
  /** Name on the hosting node (`[a-z0-9][a-z0-9._-]{0,63}`): its address is `klp://<node>/agents/<name>`. */
  name: string
  /** DID of the owner: who may move it, or delegate that. */
  owner: string
  /** Version label of the agent's code. */
  version: string
  /** Task capabilities it answers. */
  capabilities: string[]
  /** Free text for listings (at most 1,024 chars). */
  description: string
  /** When the agent was created, ms since the Unix epoch (the creating node's clock). */
  created_at: number
  /** Where it derives from (a COPY, CLONE or restore); null for an original agent. */
  lineage: AgentLineage | null
}

/** Secrets sealed to one recipient (see seal.ts for the construction). */
export interface SealedBox {
  v: 1
  /** Ephemeral X25519 public key. */
  epk: Uint8Array
  /** 24-byte XChaCha20 nonce. */
  nonce: Uint8Array
  /** Ciphertext with its 16-byte Poly1305 tag. */
  ct: Uint8Array
}

/**
 * The agent's mutable part, carried in its bundle: the fencing epoch, the state its code sees and
 * returns, and its secrets sealed to the node that holds the bundle.
 */
export interface AgentState {
  /** Fencing epoch: raised by every MOVE; a node refuses anything about the agent at or below an epoch it knows. */
  epoch: number
  /** The state the agent's code sees and returns (bounded, JSON-like: no byte strings). */
  data: KLPValue
  /** Secrets sealed to the node that holds the bundle (null: none). Never in clear on the wire. */
  sealed_secrets: SealedBox | null
}

/** Bulk memory the agent reads through the `memory` host capability (byte strings by key). */
export interface MemorySnapshot {
  entries: Array<{ key: string; value: Uint8Array }>
}

/**
 * How to run the agent: the runtime, its code, the fixed parameters of every call and the probe
 * inputs of its behavioural fingerprint. Bounded by `MigrationLimits.maxCodeBytes` (code) and
 * `maxProbes`; params and probes are JSON-like (no byte strings).
 */
export interface AgentConfiguration {
  /** Only `quickjs` is defined. */
  runtime: 'quickjs'
  /** The agent's program: a script defining `function handle(input, state, params)` returning `{ output, state }`. */
  code: string
  /** Parameters handed to every call. */
  params: { [key: string]: KLPValue }
  /** Deterministic probe inputs of the behavioural fingerprint. */
  probes: KLPValue[]
}

/** Host capabilities a node may grant to agent code. */
export const HostCapability = {
  /** `host.log(text)`: a line in the node's log. */
  LOG: 'log',
  /** `host.now()`: the node clock's time. */
  CLOCK: 'clock',
  /** `host.random()`: a seeded PRNG. */
  RANDOM: 'random',
  /** `host.memory.get(key)` / `host.memory.keys()`: read the agent's memory snapshot (as latin1 text). */
  MEMORY: 'memory',
  /** `host.secret(name)`: read one of the agent's opened secrets. */
  SECRETS: 'secrets',
} as const
export type HostCapability = ValueOf<typeof HostCapability>
/**
 * Every {@link HostCapability} value, frozen (`log`, `clock`, `random`, `memory`, `secrets`): the only
 * names a `MigrationPolicy` may grant, and its default grant.
 */
export const HOST_CAPABILITIES: readonly string[] = Object.freeze(Object.values(HostCapability))

/**
 * What an agent asks of the node that hosts it: host capabilities (some required), tools, agents
 * hosted beside it, heap and instruction budget. A target intersects it with its own policy
 * (`grantPermissions`) and refuses, before any transfer, an agent whose needs it cannot meet. Each
 * list holds at most 64 distinct names.
 */
export interface AgentPermissions {
  /** Host capabilities the agent asks for (names of {@link HostCapability}). */
  capabilities: string[]
  /** Those it cannot run without (a subset of `capabilities`); the target refuses when it cannot grant one. */
  required: string[]
  /** Tools the hosting node must offer. */
  tools: string[]
  /** Agents (by name) the hosting node must host. */
  agents: string[]
  /** Heap the agent needs, bytes: 65,536 (64 KiB) .. 2^31. */
  memory_bytes: number
  /** Interrupt-handler calls allowed per invocation (a deterministic instruction budget): 1 .. 2^31. */
  cpu_budget: number
}

/** The bundle: everything a node needs to run the agent (the spec's SerializedAgent). */
export interface SerializedAgent {
  agent_metadata: AgentMetadata
  agent_state: AgentState
  memory_snapshot: MemorySnapshot
  configuration: AgentConfiguration
  permissions: AgentPermissions
  serialization_timestamp: number
  /** CIDv1 (dag-cbor, sha2-256) of the bundle's encoding with `checksum` set to `''`, base32. */
  checksum: string
}

/** Hash of code + configuration, and the agent's answers to its probes (see fingerprint.ts). */
export interface BehavioralFingerprint {
  v: 1
  /** SHA-256 of the DAG-CBOR of `{ code, params, probes, runtime }`. */
  code_hash: Uint8Array
  /** SHA-256 of each probe's answer `{ output, state }` (DAG-CBOR), in probe order. */
  answers: Uint8Array[]
}

/** One link of the audit trail (see audit.ts). */
export interface AuditEntry {
  v: 1
  agent_id: string
  seq: number
  /** SHA-256 of the previous entry's signed bytes; empty for seq 0. */
  prev: Uint8Array
  /** The node that held the agent and signed this entry. */
  node: string
  event: 'created' | 'migrated_out' | 'migrated_in' | 'copied' | 'cloned' | 'archived' | 'restored'
  epoch: number
  at: number
  /** The migration id, or '' for `created`. */
  migration_id: string
  /** The other node of a migration ('' for `created`). */
  peer: string
  /** The bundle checksum at the time. */
  checksum: string
}

/** A signed audit entry: its COSE_Sign1 bytes and the checked body. */
export interface SignedAuditEntry {
  readonly entry: AuditEntry
  readonly bytes: Uint8Array
}

/**
 * An agent's audit trail, oldest entry first: signed, hash-chained entries (see `verifyAuditTrail`
 * for the rules). Immutable: `appendAudit` returns a new trail. At most
 * `MigrationLimits.maxAuditEntries` entries (default 1,024).
 */
export type AuditTrail = readonly SignedAuditEntry[]

/** What a delegation allows (see delegation.ts). */
export interface Delegation {
  v: 1
  kind: 'delegation'
  /** Who delegates: the owner for the first link, else the previous link's delegate. */
  issuer: string
  /** The node allowed to act. */
  delegate: string
  /** The agent it covers, or `*` for every agent of the owner. */
  agent_id: string
  /** The migration types it allows. */
  actions: MigrationType[]
  /** Target DIDs it allows, `[]` for any. */
  targets: string[]
  /** May the delegate delegate further (narrower)? */
  redelegate: boolean
  issued_at: number
  expires_at: number
}

/** The signed part of a migration request (the spec's request without its bundle and signature). */
export interface MigrationHeader {
  v: 1
  kind: 'migration'
  migration_id: string
  agent_id: string
  /** The owner whose authority the source exercises (the agent's owner; the parent's for a CLONE). */
  owner: string
  source_node: string
  target_node: string
  migration_type: MigrationType
  /** The agent's fencing epoch on the target once committed. */
  epoch: number
  created_at: number
  expires_at: number
  /** The bundle checksum (binds the bundle to this signature). */
  checksum: string
  /** Number of audit entries and SHA-256 of the last one's bytes (a cut or edit of the trail breaks this). */
  audit_length: number
  audit_head: Uint8Array
  fingerprint: BehavioralFingerprint
  /** COSE_Sign1 bytes of the delegation chain, owner first; `[]` when the source is the owner. */
  delegations: Uint8Array[]
  /** For BACKUP restores: the archived epoch restored, else -1. */
  restore_epoch: number
  /** SHA-256 of the hand-off delegation in the bundle (empty: none). */
  handoff_hash: Uint8Array
}

/** The spec's AgentMigrationRequest, decoded and verified (signature = COSE_Sign1 bytes of the header). */
export interface AgentMigrationRequest {
  agent_id: string
  agent_data: SerializedAgent
  source_node: string
  target_node: string
  migration_type: MigrationType
  behavioral_fingerprint: BehavioralFingerprint
  audit_trail: AuditTrail
  /** COSE_Sign1 of the header, signed by the source node (external AAD `kos-mesh/agent-migration/v1`). */
  signature: Uint8Array
  header: MigrationHeader
  /**
   * A delegation to the target, signed by the source (the owner, or a delegate allowed to
   * redelegate), that lets the target act for the agent later (chain: `header.delegations` +
   * this). Null when the source cannot or does not hand it off.
   */
  handoff: Uint8Array | null
}

/** A hosted agent as `list()` shows it. */
export interface AgentInstance {
  agent_id: string
  name: string
  owner: string
  epoch: number
  status: AgentRecordStatus
  /** klp:// address of the agent on its node when live. */
  address: string
  lineage: AgentLineage | null
}

/** Where an agent stands on one node. */
export type AgentRecordStatus =
  /** Live: answers tasks. */
  | 'active'
  /** Frozen by an outgoing MOVE that has not decided yet (tasks refused; back to active on abort). */
  | 'migrating'
  /** Prepared by an incoming MOVE: verified and stored, not live until commit. */
  | 'prepared'
  /** Moved away: fenced forever at this epoch. */
  | 'gone'
  /** A BACKUP on an archive node: never live here. */
  | 'archived'

/**
 * What a decided migration resolves with (the spec's MigrationResult): which migration, which
 * agent, and the instance the target now holds.
 */
export interface MigrationResult {
  /** The migration's id (16..64 base64url chars, random unless given). */
  migration_id: string
  /** The agent's id on the target (a COPY or CLONE has a new one). */
  agent_id: string
  /** Always `completed` here: failures and cancellations reject instead (see {@link MigrationStatus}). */
  status: MigrationStatus
  /** The agent as the target now holds it: `archived` for a BACKUP, `active` otherwise (a restore included). */
  new_agent_instance?: AgentInstance
  /** When the source saw the migration decided, ms since the Unix epoch (its clock). */
  migration_timestamp: number
  /** The checksum of the bundle the target verified. */
  verification_hash: string
}
