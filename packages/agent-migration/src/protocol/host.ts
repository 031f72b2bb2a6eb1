/**
 * Agents hosted on this node: creation (the owner signs the genesis of the audit trail), tasks
 * run in the sandbox with the granted capabilities (the new state is stored before the answer is
 * returned), and listing. A node acts only for agents whose record is `active` and which have no
 * migration pending; a `gone` record is fenced forever.
 */
import type { AbortOptions, KLPValue, Signer } from '@kos-mesh/interface'
import { appendAudit } from '../audit.js'
import { encodeAgent, sealChecksum } from '../codec.js'
import { AgentStateError, FencedAgentError } from '../errors.js'
import { grantPermissions } from '../policy.js'
import { runInSandbox, type AgentAnswer } from '../sandbox.js'
import { openSecrets, sealSecrets, type Secrets } from '../seal.js'
import type { AgentRecord } from '../store.js'
import type { AgentConfiguration, AgentInstance, AgentPermissions, SerializedAgent } from '../types.js'
import { currentAgent, recordFields, type Core } from './core.js'

/**
 * A new agent for `AgentMigrationService.create()`: its id, name, code, capabilities and
 * permissions, and optionally its initial state, params, probes, memory, secrets and owner. The
 * bundle's bounds apply (`MigrationLimits`); the node's policy must grant its permissions.
 */
export interface CreateAgentInit {
  /** A new id on this node (1..256 chars). */
  agent_id: string
  /** A name not taken on this node (see `AGENT_NAME_RE`). */
  name: string
  /** Owner DID. Default: this node. */
  owner?: string
  /** The agent's script, defining `function handle(input, state, params)` (at most `maxCodeBytes`). */
  code: string
  /** Task capabilities it answers (each matching `CAPABILITY_RE`). */
  capabilities: string[]
  /** What it needs of its host. */
  permissions: AgentPermissions
  /** Initial state, JSON-like. Default `{}`. */
  data?: KLPValue
  /** Fixed parameters of every call. Default `{}`. */
  params?: AgentConfiguration['params']
  /** Probe inputs of the behavioural fingerprint (at most `maxProbes`). Default none. */
  probes?: KLPValue[]
  /** Memory snapshot entries, distinct keys (at most `maxMemoryEntries`, `maxMemoryBytes` in total). Default none. */
  memory?: Array<{ key: string; value: Uint8Array }>
  /** Kept sealed to this node at rest, and to the target in a migration. */
  secrets?: Secrets
  /** Free text for listings (at most 1,024 chars). Default `''`. */
  description?: string
  /** Version label of the code. Default `0.0.0`. */
  version?: string
  /** The owner's signer (signs the `created` entry). Default: this node's, when it is the owner. */
  ownerSigner?: Signer
  /** The owner's delegation chain to this node (needed to migrate it when the owner is someone else). */
  delegations?: Uint8Array[]
}

export function instanceOf(core: Core, r: AgentRecord): AgentInstance {
  return { agent_id: r.agent_id, name: r.name, owner: r.owner, epoch: r.epoch, status: r.status, address: r.status === 'active' ? `klp://${core.authority()}/agents/${r.name}` : '', lineage: r.lineage }
}

/** Creates an agent on this node (live at once). */
export async function createAgent(core: Core, init: CreateAgentInit): Promise<AgentRecord> {
  const self = core.identity.did
  const owner = init.owner ?? self
  return core.lock.run(init.agent_id, async () => {
    if ((await core.store.getAgent(init.agent_id)) !== undefined) throw new AgentStateError(`expected a new agent id, got ${init.agent_id} which this node knows`)
    if (core.hostedNames().includes(init.name)) throw new AgentStateError(`expected a free agent name, got ${init.name}`)
    const now = core.clock.now()
    const agent: SerializedAgent = sealChecksum({
      agent_metadata: { agent_id: init.agent_id, name: init.name, owner, version: init.version ?? '0.0.0', capabilities: init.capabilities, description: init.description ?? '', created_at: now, lineage: null },
      agent_state: { epoch: 0, data: init.data ?? {}, sealed_secrets: init.secrets === undefined ? null : sealSecrets(init.secrets, self, init.agent_id) },
      memory_snapshot: { entries: init.memory ?? [] },
      configuration: { runtime: 'quickjs', code: init.code, params: init.params ?? {}, probes: init.probes ?? [] },
      permissions: init.permissions,
      serialization_timestamp: now,
    }, core.limits)
    grantPermissions(agent.permissions, core.policy, core.hostedNames())
    const signer = init.ownerSigner ?? (owner === self ? core.identity.signer : undefined)
    if (signer === undefined) throw new AgentStateError(`expected the owner's signer for an agent owned by ${owner}`)
    const trail = await appendAudit([], { agent_id: init.agent_id, node: owner, event: 'created', epoch: 0, at: now, migration_id: '', peer: self, checksum: agent.checksum }, signer)
    const bundle = encodeAgent(agent, core.limits)
    const record: AgentRecord = { agent_id: init.agent_id, name: init.name, status: 'active', epoch: 0, ...recordFields(agent), size: bundle.length, data: agent.agent_state.data, trail: trail.map((e) => e.bytes), delegations: init.delegations ?? [], moved_to: '', migration_id: '', updated_at: now }
    await core.store.putBundle(init.agent_id, bundle)
    await core.store.putAgent(record)
    core.hooks.activate(record)
    return record
  })
}

/** Throws unless this node may act for the agent now (live, no migration pending). */
export async function liveRecord(core: Core, agentId: string): Promise<AgentRecord> {
  const r = await core.store.getAgent(agentId)
  if (r === undefined) throw new AgentStateError(`expected an agent this node hosts, got unknown ${agentId}`)
  if (r.status === 'gone') throw new FencedAgentError(`expected a live agent, got ${agentId} moved to ${r.moved_to} at epoch ${r.epoch}: this node may never act for it again`)
  if (r.status !== 'active') throw new AgentStateError(`expected a live agent, got ${agentId} ${r.status}`)
  const pending = await core.store.pendingOut(agentId)
  if (pending !== undefined) throw new AgentStateError(`expected a live agent, got ${agentId} frozen by migration ${pending.migration_id} (${pending.phase})`)
  return r
}

/** Runs one task on a live agent in the sandbox; stores the new state, then answers. */
export async function runAgent(core: Core, agentId: string, input: KLPValue, options: AbortOptions = {}): Promise<KLPValue> {
  return core.lock.run(agentId, async () => {
    options.signal?.throwIfAborted()
    const r = await liveRecord(core, agentId)
    const agent = await currentAgent(core, r)
    const grant = grantPermissions(agent.permissions, core.policy, core.hostedNames())
    const secrets = agent.agent_state.sealed_secrets === null || !grant.capabilities.includes('secrets') ? {} : openSecrets(agent.agent_state.sealed_secrets, core.identity, agentId)
    const answer: AgentAnswer = await runInSandbox(
      { code: agent.configuration.code, input, state: agent.agent_state.data, params: agent.configuration.params },
      { memoryBytes: grant.memoryBytes, cpuBudget: grant.cpuBudget, timeMs: core.policy.maxTimeMs },
      {
        granted: new Set(grant.capabilities),
        now: () => core.clock.now(),
        log: (t) => core.logger.info('agent log', { agent: agentId, text: t }),
        seed: (core.clock.now() >>> 0) ^ r.epoch,
        memory: new Map(agent.memory_snapshot.entries.map((e) => [e.key, e.value])),
        secrets,
        clock: core.clock,
      },
    )
    await core.store.putAgent({ ...r, data: answer.state, updated_at: core.clock.now() })
    return answer.output
  })
}

/** Every agent record this node holds, as instances. */
export async function listAgents(core: Core): Promise<AgentInstance[]> {
  const out: AgentInstance[] = []
  for await (const r of core.store.agents()) {
    const pending = r.status === 'active' ? await core.store.pendingOut(r.agent_id) : undefined
    out.push({ ...instanceOf(core, r), status: pending !== undefined ? 'migrating' : r.status })
  }
  return out
}
