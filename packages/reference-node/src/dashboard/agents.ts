/**
 * The dashboard's `agents` section: the sandboxed agents this node knows (owner, epoch, state:
 * active, migrating, prepared, gone, archived), the migrations it runs as source with their
 * progress, and the recent outcomes. Reported while the node runs its `migration` service and has
 * something to show (an agent, a migration, an outcome).
 */
import type { KosMeshNode } from '../node-types.js'
import type { MigrationOutcome, MigrationProgress, NodeAgentMigration } from '../node-migration.js'
import type { DashboardSection } from './snapshot.js'

/** Most agents listed in the panel. */
export const MAX_AGENT_ROWS = 200

/** One agent row of the panel. */
export interface AgentRow {
  /** The agent's id. */
  agent_id: string
  /** Its name (its address is klp://<authority>/agents/<name> while live). */
  name: string
  /** Its owner's DID. */
  owner: string
  /** Its fencing epoch as this node knows it. */
  epoch: number
  /** active, migrating, prepared, gone or archived. */
  status: string
  /** `copy` or `clone` of a parent, when it is one. */
  lineage?: { parent: string; kind: string }
}

/** The `agents` section's data. */
export interface AgentsPanel {
  /** The agents this node knows (at most MAX_AGENT_ROWS). */
  agents: AgentRow[]
  /** Agents beyond MAX_AGENT_ROWS, not listed. */
  more: number
  /** The migrations this node runs as source, with bytes sent of the total. */
  migrations: MigrationProgress[]
  /** The recent outcomes, newest first. */
  recent: MigrationOutcome[]
  /** The migration counters since the node started. */
  stats: { started: number; completed: number; failed: number; cancelled: number; received: number }
}

/** The agents section of a node (its data is undefined while there is none to show). */
export function agentsSection(node: KosMeshNode): DashboardSection {
  return {
    name: 'agents',
    snapshot(): AgentsPanel | undefined {
      if (!node.isStarted()) return undefined
      let m: NodeAgentMigration
      try {
        m = node.service<NodeAgentMigration>('migration')
      } catch {
        return undefined
      }
      const v = m.view()
      if (v.agents.length === 0 && v.migrations.length === 0 && v.recent.length === 0) return undefined
      const { started, completed, failed, cancelled, received } = v.stats
      return {
        agents: v.agents.slice(0, MAX_AGENT_ROWS).map((a) => ({
          agent_id: a.agent_id,
          name: a.name,
          owner: a.owner,
          epoch: a.epoch,
          status: a.status,
          ...(a.lineage === null ? {} : { lineage: { parent: a.lineage.parent, kind: a.lineage.kind } }),
        })),
        more: Math.max(0, v.agents.length - MAX_AGENT_ROWS),
        migrations: v.migrations,
        recent: v.recent,
        stats: { started, completed, failed, cancelled, received },
      }
    },
  }
}
