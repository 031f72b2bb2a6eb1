/**
 * What a node grants to agents it accepts: the requested permissions intersected with the node's
 * policy. Needs it cannot meet (a required capability, a tool, an agent it does not host, more
 * heap or instructions than it allows) refuse the agent with every reason, before any transfer.
 */
import { describeValue, InvalidParametersError } from '@kos-mesh/interface'
import { PermissionRefusedError } from './errors.js'
import { HOST_CAPABILITIES, MIGRATION_TYPES, type AgentPermissions, type MigrationType } from './types.js'

/**
 * What this node allows the agents it accepts as a target and hosts: host capabilities, tools,
 * heap, instruction budget, time per call and the migration types it accepts. Checked and filled
 * in by {@link resolvePolicy}; every number is a positive integer.
 */
export interface MigrationPolicy {
  /** Host capabilities this node grants. Default `['log', 'clock', 'random', 'memory', 'secrets']`. */
  capabilities?: readonly string[]
  /** Tools this node offers. Default none. */
  tools?: readonly string[]
  /** Most heap per agent, bytes. Default 64 MiB. */
  maxMemoryBytes?: number
  /** Most instructions (interrupt calls) per call. Default 1,000,000. */
  maxCpuBudget?: number
  /** Wall time per call on the node clock, ms (beside the deterministic budget). Default 5,000. */
  maxTimeMs?: number
  /** Migration types this node accepts as a target. Default all but BACKUP (BACKUP: only archive nodes). */
  accept?: readonly MigrationType[]
}

/** A {@link MigrationPolicy} checked, with every default filled in, its lists as sets. */
export interface ResolvedPolicy {
  /** Host capabilities granted. */
  capabilities: ReadonlySet<string>
  /** Tools offered. */
  tools: ReadonlySet<string>
  /** Most heap per agent, bytes. */
  maxMemoryBytes: number
  /** Most interrupt-handler calls per call. */
  maxCpuBudget: number
  /** Wall time per call on the node clock, ms. */
  maxTimeMs: number
  /** Migration types accepted as a target. */
  accept: ReadonlySet<MigrationType>
}

/**
 * Checks `p` and fills in its defaults. `archive` tells whether this node is an ARCHIVE_NODE: the
 * default `accept` then includes BACKUP.
 *
 * @throws InvalidParametersError for an unknown host capability or migration type, or a bound that
 *   is not a positive safe integer.
 */
export function resolvePolicy(p: MigrationPolicy = {}, archive = false): ResolvedPolicy {
  const caps = p.capabilities ?? HOST_CAPABILITIES
  for (const c of caps) if (!HOST_CAPABILITIES.includes(c)) throw new InvalidParametersError(`expected a host capability in ${HOST_CAPABILITIES.join('|')}, got ${describeValue(c)}`)
  const accept = p.accept ?? (archive ? MIGRATION_TYPES : MIGRATION_TYPES.filter((t) => t !== 'backup'))
  for (const t of accept) if (!MIGRATION_TYPES.includes(t)) throw new InvalidParametersError(`expected a migration type, got ${describeValue(t)}`)
  const num = (v: number | undefined, d: number, what: string): number => {
    if (v === undefined) return d
    if (!Number.isSafeInteger(v) || v < 1) throw new InvalidParametersError(`expected ${what} as a positive integer, got ${describeValue(v)}`)
    return v
  }
  return {
    capabilities: new Set(caps),
    tools: new Set(p.tools ?? []),
    maxMemoryBytes: num(p.maxMemoryBytes, 64 * 1024 * 1024, 'maxMemoryBytes'),
    maxCpuBudget: num(p.maxCpuBudget, 1_000_000, 'maxCpuBudget'),
    maxTimeMs: num(p.maxTimeMs, 5_000, 'maxTimeMs'),
    accept: new Set(accept),
  }
}

/**
 * What `grantPermissions` grants an agent: the host capabilities it asked for that the policy
 * allows, and the heap and instruction budget it asked for (within the policy's bounds).
 */
export interface Grant {
  /** Host capabilities granted (requested ∩ policy). */
  capabilities: string[]
  /** Heap of the agent's sandbox, bytes. */
  memoryBytes: number
  /** Interrupt-handler calls allowed per call. */
  cpuBudget: number
}

/**
 * Intersects requested permissions with the policy. Throws PermissionRefusedError listing every
 * unmet need (`reasons`), or returns what is granted.
 */
export function grantPermissions(perms: AgentPermissions, policy: ResolvedPolicy, hostedAgents: readonly string[]): Grant {
  const reasons: string[] = []
  for (const c of perms.required) if (!policy.capabilities.has(c)) reasons.push(`capability ${c} not granted here`)
  for (const t of perms.tools) if (!policy.tools.has(t)) reasons.push(`tool ${t} not offered here`)
  for (const a of perms.agents) if (!hostedAgents.includes(a)) reasons.push(`agent ${a} not hosted here`)
  if (perms.memory_bytes > policy.maxMemoryBytes) reasons.push(`heap of ${perms.memory_bytes} bytes above ${policy.maxMemoryBytes}`)
  if (perms.cpu_budget > policy.maxCpuBudget) reasons.push(`budget of ${perms.cpu_budget} above ${policy.maxCpuBudget}`)
  if (reasons.length > 0) throw new PermissionRefusedError(`expected needs this node can meet, got: ${reasons.join('; ')}`)
  return { capabilities: perms.capabilities.filter((c) => policy.capabilities.has(c)), memoryBytes: perms.memory_bytes, cpuBudget: perms.cpu_budget }
}
