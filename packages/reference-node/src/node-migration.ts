/**
 * The node's agent migration (`services.migration`, on by default): @kos-mesh/agent-migration's
 * service over the node's router, with its durable logs and agent records in the node's store
 * (`/agent-migration/...`, so hosted agents and every migration's log survive a restart), the
 * trust engine told each outcome, the node's agent registry (live agents, also those migrated
 * here, answer tasks), and klp-router's bulk transfer on AGENT_MIGRATION for large bundles.
 *
 * Around it, what an operator asks about: the migrations in progress with their progress, the
 * recent outcomes, and a listing of the agents kept fresh for the dashboard's `agents` panel.
 */
import { randomBytes } from 'node:crypto'
import { KLPMessageType, NodeType, type AbortOptions, type Startable } from '@kos-mesh/interface'
import { bulkTransfer, type BulkTransfer } from '@kos-mesh/klp-router'
import {
  agentMigration,
  MigrationBusyError,
  type AgentInstance,
  type AgentMigrationInit,
  type AgentMigrationService,
  type CreateAgentInit,
  type ExportOptions,
  type MigrateOptions,
  type MigrationResult,
  type MigrationStats,
  type MigrationType,
} from '@kos-mesh/agent-migration'
import { defineService, type NodeComponents, type NodeService } from './components.js'

/** Largest bundle the node keeps (its store holds values up to 16 MiB). */
export const MAX_NODE_BUNDLE_BYTES = 16 * 1024 * 1024 - 64 * 1024
/** Recent outcomes kept (the newest). */
export const MAX_RECENT_MIGRATIONS = 32
/** The listing `view()` shows is read again after this long (agents a peer's BACKUP or PREPARE left here do not touch the registry), ms. */
export const AGENT_LISTING_MAX_AGE_MS = 2000
/** Migrations this node runs as source at once (more are refused with MigrationBusyError, 429 on the control API). */
export const MAX_ACTIVE_MIGRATIONS = 16

/** Options of the node's migration service: agent-migration's, and how many outcomes it keeps. */
export interface MigrationNodeInit extends AgentMigrationInit {
  /** Recent outcomes kept. Default 32. */
  maxRecent?: number
}

/** A migration this node runs as source, as it stands. */
export interface MigrationProgress {
  /** The migration's id (in the signed request and both nodes' logs). */
  migration_id: string
  /** The agent migrated (the source's id). */
  agent_id: string
  /** move, copy, clone, backup, or restore (of a backup held here). */
  type: MigrationType | 'restore'
  /** The target's DID. */
  to: string
  /** Clock ms when it started. */
  started_at: number
  /** Bytes of the bundle sent so far and its size (0 / 0 until a bulk transfer starts; small bundles go inline). */
  bytes: number
  total: number
}

/** How a migration this node started ended. */
export interface MigrationOutcome {
  /** The migration's id. */
  migration_id: string
  /** The agent migrated (the source's id). */
  agent_id: string
  /** move, copy, clone, backup or restore. */
  type: MigrationType | 'restore'
  /** The target's DID. */
  to: string
  /** How it ended (a failed or cancelled one left this node as it was). */
  status: 'completed' | 'failed' | 'cancelled'
  /** Clock ms when it started and ended. */
  started_at: number
  ended_at: number
  /** The agent on the target (completed). */
  new_agent_id?: string
  /** The checksum of the bundle the target verified (completed). */
  verification_hash?: string
  /** Bytes sent by bulk transfer (0: the bundle went inline, in the prepare message). */
  bytes: number
  /** The error (failed, cancelled): its name, and the peer's reason code when it refused. */
  error?: { name: string; message: string; reason?: string }
}

/** What the `agents` panel and `GET /v1/agents` show. */
export interface AgentsView {
  /** The agents this node knows (live, migrating, prepared, gone, archived). */
  agents: AgentInstance[]
  /** The migrations this node runs as source now. */
  migrations: MigrationProgress[]
  /** How the last ones ended, newest first. */
  recent: MigrationOutcome[]
  /** The service's counters since start. */
  stats: MigrationStats
}

/** The node's migration service as the control API uses it. */
export interface NodeAgentMigration extends Startable {
  /** The agent-migration service itself. */
  readonly service: AgentMigrationService
  /** The agents this node knows, read from its store. */
  list(): Promise<AgentInstance[]>
  /** Hosts a new sandboxed agent here (owned by this node unless the init says). */
  deploy(init: CreateAgentInit): Promise<AgentInstance>
  /** Migrates an agent, tracked (progress, outcome); `onProgress` also gets the progress. */
  migrate(agentId: string, options: MigrateOptions): Promise<MigrationResult>
  /** On an archive node: makes a BACKUP live on `to`, tracked. */
  restore(agentId: string, options: Omit<MigrateOptions, 'type'>): Promise<MigrationResult>
  /** A signed COPY, CLONE or BACKUP for `options.to` as bytes (a file); nothing changes here. */
  exportAgent(agentId: string, options: ExportOptions): Promise<Uint8Array>
  /** Verifies and hosts an exported agent addressed to this node. */
  importAgent(bytes: Uint8Array, options?: AbortOptions): Promise<AgentInstance>
  /** The panel's data now (the listing is refreshed in the background when it changed). */
  view(): AgentsView
  /** The counters of the node's Prometheus metrics (`kos_mesh_agent_migrations_*`, `kos_mesh_agents`) now. */
  metrics(): MigrationMetrics
}

/** How the migrations of one type that this node started as source went (counts since start). */
export interface MigrationTypeCounts {
  /** Migrations started (not those refused before starting: see `refused`). */
  started: number
  /** Completed: the target verified and committed the bundle. */
  committed: number
  /** Failed (an error other than a refusal) or cancelled, by that outcome; this node was left as it was. */
  aborted: { failed: number; cancelled: number }
  /**
   * Refused, by reason: the target's wire code (MigrationRefusedError), or `busy` when this node
   * already ran MAX_ACTIVE_MIGRATIONS (MigrationBusyError, not started).
   */
  refused: Record<string, number>
}

/** What `metricsText()` reports of the migration service. */
export interface MigrationMetrics {
  /** Migrations this node started as source, by type (move, copy, clone, backup, restore). */
  byType: Record<MigrationProgress['type'], MigrationTypeCounts>
  /** Migrations running now as source (at most MAX_ACTIVE_MIGRATIONS). */
  inProgress: number
  /** Bundles this node accepted as target (prepared or applied). */
  received: number
  /** Refusals this node sent as target, by reason code. */
  refusalsSent: Record<string, number>
  /** The agents this node knows by status (`active`: live here and answering tasks), as last listed. */
  agents: Record<string, number>
}

/** Migration types as the metrics label them, in this order (`restore`: of a backup held here). */
export const MIGRATION_METRIC_TYPES: ReadonlyArray<MigrationProgress['type']> = ['move', 'copy', 'clone', 'backup', 'restore']

function errorView(err: unknown): NonNullable<MigrationOutcome['error']> {
  const e = err as { name?: unknown; message?: unknown; reason?: unknown }
  return {
    name: typeof e?.name === 'string' ? e.name : 'Error',
    message: typeof e?.message === 'string' ? e.message.slice(0, 300) : String(err).slice(0, 300),
    ...(typeof e?.reason === 'string' ? { reason: e.reason } : {}),
  }
}

class NodeMigration implements NodeAgentMigration {
  readonly service: AgentMigrationService
  private readonly bulk: BulkTransfer
  private readonly c: NodeComponents
  private readonly maxRecent: number
  private readonly active = new Map<string, MigrationProgress>()
  private readonly recent: MigrationOutcome[] = []
  private agents: AgentInstance[] = []
  private stale = true
  private listedAt = 0
  private refreshing: Promise<void> | undefined
  private running = false
  private readonly counts = Object.fromEntries(MIGRATION_METRIC_TYPES.map((k) => [k, { started: 0, committed: 0, aborted: { failed: 0, cancelled: 0 }, refused: {} }])) as Record<MigrationProgress['type'], MigrationTypeCounts>

  constructor(init: MigrationNodeInit, c: NodeComponents) {
    this.c = c
    this.maxRecent = init.maxRecent ?? MAX_RECENT_MIGRATIONS
    const { maxRecent: _, ...rest } = init
    this.bulk = bulkTransfer({ type: KLPMessageType.AGENT_MIGRATION })({ router: c.router, clock: c.clock, logger: c.logger })
    const reg = c.agents
    // the listing is refreshed whenever an agent goes live here or leaves (also by a peer's migration)
    const registry = {
      register: (d: Parameters<typeof reg.register>[0]) => {
        this.stale = true
        return reg.register(d)
      },
      unregister: (name: string) => {
        this.stale = true
        return reg.unregister(name)
      },
      get: (name: string) => reg.get(name),
    }
    this.service = agentMigration({
      archive: c.nodeInfo.nodeType === NodeType.ARCHIVE_NODE,
      ...rest,
      limits: { maxBundleBytes: MAX_NODE_BUNDLE_BYTES, ...rest.limits },
    })({ router: c.router, identity: c.identity, store: c.storage, clock: c.clock, logger: c.logger, registry, bulk: this.bulk, trust: c.trustEngine })
  }

  async start(): Promise<void> {
    this.bulk.start()
    try {
      await this.service.start()
    } catch (err) {
      this.bulk.stop()
      throw err
    }
    this.running = true
    await this.refresh()
  }

  async stop(): Promise<void> {
    this.running = false
    await this.service.stop()
    this.bulk.stop()
  }

  private refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        this.stale = false
        this.listedAt = this.c.clock.now()
        this.agents = await this.service.list()
      } catch (err) {
        this.stale = true
        this.c.logger.debug('agent listing failed', { err: String(err) })
      } finally {
        this.refreshing = undefined
      }
    })()
    return this.refreshing
  }

  async list(): Promise<AgentInstance[]> {
    const list = await this.service.list()
    this.agents = list
    return list
  }

  async deploy(init: CreateAgentInit): Promise<AgentInstance> {
    try {
      return await this.service.create(init)
    } finally {
      await this.refresh()
    }
  }

  migrate(agentId: string, options: MigrateOptions): Promise<MigrationResult> {
    return this.track(agentId, options.type, options, (o) => this.service.migrate(agentId, o))
  }

  restore(agentId: string, options: Omit<MigrateOptions, 'type'>): Promise<MigrationResult> {
    return this.track(agentId, 'restore', options, (o) => this.service.restore(agentId, o))
  }

  private async track<O extends Omit<MigrateOptions, 'type'>>(agentId: string, type: MigrationProgress['type'], options: O, run: (o: O) => Promise<MigrationResult>): Promise<MigrationResult> {
    const counts = this.counts[type] as MigrationTypeCounts | undefined
    if (this.active.size >= MAX_ACTIVE_MIGRATIONS) {
      if (counts !== undefined) counts.refused.busy = (counts.refused.busy ?? 0) + 1
      throw new MigrationBusyError(`expected at most ${MAX_ACTIVE_MIGRATIONS} migrations at once, got one more`)
    }
    const mid = options.migrationId ?? randomBytes(16).toString('base64url')
    const p: MigrationProgress = { migration_id: mid, agent_id: agentId, type, to: options.to, started_at: this.c.clock.now(), bytes: 0, total: 0 }
    this.active.set(mid, p)
    if (counts !== undefined) counts.started++
    this.stale = true
    const outcome = (status: MigrationOutcome['status'], extra: Partial<MigrationOutcome>): void => {
      this.recent.unshift({ migration_id: mid, agent_id: agentId, type, to: options.to, status, started_at: p.started_at, ended_at: this.c.clock.now(), bytes: p.bytes, ...extra })
      this.recent.length = Math.min(this.recent.length, this.maxRecent)
      if (counts === undefined) return
      const reason = (extra.error?.name === 'MigrationRefusedError' ? extra.error.reason : undefined)
      if (status === 'completed') counts.committed++
      else if (reason !== undefined) counts.refused[reason] = (counts.refused[reason] ?? 0) + 1
      else counts.aborted[status]++
    }
    try {
      const r = await run({
        ...options,
        migrationId: mid,
        onProgress: (x) => {
          p.bytes = x.bytes
          p.total = x.total
          options.onProgress?.(x)
        },
      })
      outcome('completed', { ...(r.new_agent_instance === undefined ? {} : { new_agent_id: r.new_agent_instance.agent_id }), verification_hash: r.verification_hash })
      return r
    } catch (err) {
      outcome((err as { name?: string })?.name === 'AbortError' ? 'cancelled' : 'failed', { error: errorView(err) })
      throw err
    } finally {
      this.active.delete(mid)
      await this.refresh()
    }
  }

  exportAgent(agentId: string, options: ExportOptions): Promise<Uint8Array> {
    return this.service.exportAgent(agentId, options)
  }

  async importAgent(bytes: Uint8Array, options?: AbortOptions): Promise<AgentInstance> {
    try {
      return await this.service.importAgent(bytes, options)
    } finally {
      await this.refresh()
    }
  }

  view(): AgentsView {
    if (this.running && (this.stale || this.c.clock.now() - this.listedAt >= AGENT_LISTING_MAX_AGE_MS)) void this.refresh()
    return { agents: [...this.agents], migrations: [...this.active.values()].map((m) => ({ ...m })), recent: [...this.recent], stats: this.service.stats() }
  }

  metrics(): MigrationMetrics {
    const stats = this.service.stats()
    const agents: Record<string, number> = { active: 0, migrating: 0, prepared: 0, gone: 0, archived: 0 }
    for (const a of this.view().agents) agents[a.status] = (agents[a.status] ?? 0) + 1
    const byType = Object.fromEntries(Object.entries(this.counts).map(([k, c]) => [k, { ...c, aborted: { ...c.aborted }, refused: { ...c.refused } }])) as MigrationMetrics['byType']
    return { byType, inProgress: this.active.size, received: stats.received, refusalsSent: { ...stats.refused }, agents }
  }
}

/**
 * The migration service factory (`services.migration`): needs the router, identity, store,
 * clock, logger, trust engine, agent registry and node info. An ArchiveNode accepts BACKUPs.
 */
export function migrationService(init: MigrationNodeInit = {}): NodeService<NodeAgentMigration> {
  return defineService(['router', 'identity', 'storage', 'clock', 'logger', 'trustEngine', 'agents', 'nodeInfo'], (c) => new NodeMigration(init, c))
}
