/** The options, components and interface of the migration service (service.ts). */
import type { AbortOptions, Clock, KeyValueStore, KLPValue, Logger, MessageRouter, Startable, TrustEngine } from '@kos-mesh/interface'
import type { AgentRegistry } from '@kos-mesh/agents'
import type { BulkProgress, BulkTransfer } from '@kos-mesh/klp-router'
import type { MigrationLimits } from './limits.js'
import type { MigrationPolicy } from './policy.js'
import type { NodeIdentity } from './protocol/core.js'
import type { CreateAgentInit } from './protocol/host.js'
import type { OutgoingOptions } from './protocol/source.js'
import type { AgentInstance, MigrationResult, MigrationType } from './types.js'

/**
 * Options of `agentMigration(init)`: the handler's path, the archive role, what the node grants
 * agents, decoder bounds, timeouts, retention and concurrency. Durations are ms of the injected
 * clock. The service's constructor throws InvalidParametersError for a bad policy or limit, or a
 * `logRetentionMs` not above `requestTtlMs`.
 */
export interface AgentMigrationInit {
  /** Path of the AGENT_MIGRATION handler. Default `/agent-migration`. */
  path?: string
  /** This node is an ARCHIVE_NODE (accepts BACKUP). Default false. */
  archive?: boolean
  /** What this node grants to agents (see MigrationPolicy). Default: every host capability, 64 MiB, 1e6 budget. */
  policy?: MigrationPolicy
  /** Decoder and store bounds. Default DEFAULT_MIGRATION_LIMITS. */
  limits?: Partial<MigrationLimits>
  /** Bundles up to this size travel inside the prepare message; larger ones by bulk transfer. Default 512 KiB. */
  inlineMaxBytes?: number
  /** Control requests (preflight, commit, abort, query), ms. Default 10,000. */
  requestTimeoutMs?: number
  /** The prepare request (transfer + verification), ms. Default 120,000. */
  prepareTimeoutMs?: number
  /** Lifetime of a signed request, ms. Default 600,000. */
  requestTtlMs?: number
  /** Lifetime of the hand-off delegation given to the target, ms. Default 30 days. */
  handoffTtlMs?: number
  /** Recovery loop period (re-send commits, ask decisions), ms. Default 5,000. */
  recoveryIntervalMs?: number
  /**
   * Finished logs (out: done or aborted; in: committed or aborted) are deleted this long after they
   * were written, ms. Must exceed `requestTtlMs` (a replay then fails as expired). Default 86,400,000.
   */
  logRetentionMs?: number
  /** How often the source asks for the vote while the target pulls a bulk bundle, ms. Default 20. */
  pollMs?: number
  /** Bulk bundles received at once. Default 4 (more are refused `busy`). */
  maxReceiving?: number
}

/**
 * What the service runs on: the node's router and identity (required), and optionally its store,
 * clock, logger, agent registry, bulk transfer and trust engine.
 */
export interface AgentMigrationComponents {
  /**
   * The node's KLP router: `start()` registers the AGENT_MIGRATION handler at `init.path` on it,
   * and requests to other nodes go through it (their authority from `authorityOf(did)` unless given).
   */
  router: MessageRouter
  /** This node's identity (a did-security Identity): signs, and opens secrets sealed to it. */
  identity: NodeIdentity
  /** Durable logs and agent records. Default: in memory (nothing survives a restart). */
  store?: KeyValueStore
  /** Time of records, expiries, deadlines and the recovery loop. Default `systemClock`. */
  clock?: Clock
  /** Where failures of background work (recovery) are reported. Default silent. */
  logger?: Logger
  /** Where live agents are registered for tasks (the agents package's AgentRegistry). Default none. */
  registry?: Pick<AgentRegistry, 'register' | 'unregister' | 'get'>
  /** klp-router's bulk transfer on the same router, for bundles above `inlineMaxBytes`. Default none (larger bundles refused). */
  bulk?: Pick<BulkTransfer, 'offer' | 'receive'>
  /** Told the outcome of each migration with a peer (`task_ok`, `task_failed`, `forged_message`, `invalid_message`). */
  trust?: Pick<TrustEngine, 'observe'>
}

/**
 * Options of `migrate()`: the type, the target DID and optionally its KLP authority, the new id,
 * name or owner of a COPY or CLONE, a signal that cancels the migration (before the commit point:
 * this node is then left as it was) and a bulk-transfer progress callback.
 */
export interface MigrateOptions extends AbortOptions, Omit<OutgoingOptions, 'restore'> {
  /** The migration type (see the README's table of the four types). */
  type: MigrationType
  /** The target's DID. */
  to: string
  /** Its KLP authority. Default: the router's pin for the DID. */
  authority?: string
  /** Progress of a bulk transfer (bytes sent / total). */
  onProgress?: (progress: BulkProgress) => void
}

/**
 * Options of `exportAgent()`: an offline COPY, CLONE or BACKUP for one target DID, with the new id,
 * name or owner of a COPY or CLONE. The signed request expires after `AgentMigrationInit.requestTtlMs`.
 */
export interface ExportOptions extends Omit<OutgoingOptions, 'restore' | 'migrationId'> {
  /** `copy`, `clone` or `backup` (a MOVE needs both nodes online). */
  type: Exclude<MigrationType, 'move'>
  /** The DID the export is for (its secrets are sealed to it; only it can import it). */
  to: string
}

/** Counters of the service since it started (for logs and metrics). */
export interface MigrationStats {
  /** Migrations this node started as source, and how they ended. */
  started: number
  completed: number
  failed: number
  cancelled: number
  /** Bundles this node accepted as target (prepared or applied). */
  received: number
  /** Refusals this node sent, by reason code. */
  refused: Record<string, number>
}

/**
 * The agent migration service of one node (`agentMigration(init)(components)`): it hosts agents and
 * runs their tasks, migrates them as a source, accepts them as a target, and recovers interrupted
 * migrations. `start()` registers the protocol handler, makes the stored live agents answer tasks
 * again and runs recovery (then every `recoveryIntervalMs`); `stop()` removes the handler,
 * unregisters the agents from the registry, stops the recovery loop and cancels the migrations in
 * flight.
 */
export interface AgentMigrationService extends Startable {
  /** Counters since start. */
  stats(): MigrationStats
  /** Creates and hosts a new agent here. */
  create(init: CreateAgentInit): Promise<AgentInstance>
  /**
   * Every agent this node has a record of, read from the store, whatever its status here: `active`,
   * `migrating` (an outgoing MOVE undecided), `prepared`, `gone` or `archived`.
   */
  list(): Promise<AgentInstance[]>
  /** Runs one task on a hosted agent (what the registry's handle does). */
  run(agentId: string, input: KLPValue, options?: AbortOptions): Promise<KLPValue>
  /** Migrates an agent; a cancelled or failed migration leaves this node as it was. */
  migrate(agentId: string, options: MigrateOptions): Promise<MigrationResult>
  /** On an archive node: restores a BACKUP to `to` (a live agent again, epoch + 1). */
  restore(agentId: string, options: Omit<MigrateOptions, 'type'>): Promise<MigrationResult>
  /**
   * Writes a signed request for `to` as bytes (a file, for `kos-mesh agent export`): COPY, CLONE or
   * BACKUP only (a MOVE needs both nodes online for its two phases). Nothing changes on this node.
   */
  exportAgent(agentId: string, options: ExportOptions): Promise<Uint8Array>
  /** Verifies and applies exported bytes addressed to this node (all the checks of a migration). */
  importAgent(bytes: Uint8Array, options?: AbortOptions): Promise<AgentInstance>
  /** One pass of recovery (also run at start and every `recoveryIntervalMs`). */
  recover(options?: AbortOptions): Promise<void>
}
