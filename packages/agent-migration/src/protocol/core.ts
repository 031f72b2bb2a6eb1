/**
 * What the protocol parts share: the store, this node's identity, the injected clock, limits and
 * policy, hooks into the agent runtime, and a per-agent lock (tasks and migrations of one agent
 * never interleave).
 */
import type { Clock, KLPValue, Logger, Signer } from '@kos-mesh/interface'
import { decodeAgent } from '../codec.js'
import { CorruptStoreError } from '../errors.js'
import type { MigrationLimits } from '../limits.js'
import type { ResolvedPolicy } from '../policy.js'
import type { SealIdentity } from '../seal.js'
import type { AgentRecord, MigrationStore } from '../store.js'
import type { SerializedAgent } from '../types.js'

/** A node identity: did:key, signer and key agreement (a did-security Identity fits). */
export interface NodeIdentity extends SealIdentity {
  readonly signer: Signer
}

export interface CoreHooks {
  /** The agent became live here (register it for tasks). */
  activate(record: AgentRecord): void
  /** The agent stopped being live here (frozen, moved away). */
  deactivate(record: AgentRecord): void
}

export interface Core {
  readonly store: MigrationStore
  readonly identity: NodeIdentity
  readonly clock: Clock
  readonly limits: Readonly<MigrationLimits>
  readonly policy: ResolvedPolicy
  readonly archive: boolean
  readonly logger: Logger
  readonly hooks: CoreHooks
  /** This node's KLP authority (agents' addresses are `klp://<authority>/agents/<name>`). */
  authority(): string
  /** Names of the agents this node hosts (for `permissions.agents` and name clashes). */
  hostedNames(): string[]
  /** How long a signed request stays valid, ms. */
  readonly requestTtlMs: number
  /** Lifetime of a hand-off delegation to the target, ms. */
  readonly handoffTtlMs: number
  /** Serializes work on one agent. */
  readonly lock: KeyedLock
  /** Decoded bundles by checksum (a 10 MB bundle is decoded once, not per task). */
  readonly cache: BundleCache
}

/** Runs functions one at a time per key. */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>()

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve()
    const next = prev.then(fn, fn)
    const tail = next.catch(() => {})
    this.tails.set(key, tail)
    try {
      return await next
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key)
    }
  }
}

/** Keeps the last decoded bundle per agent, keyed by its checksum (a 10 MB bundle is decoded once, not per task). */
export class BundleCache {
  private readonly m = new Map<string, SerializedAgent>()
  constructor(private readonly max = 16) {}

  get(agentId: string, checksum: string): SerializedAgent | undefined {
    const a = this.m.get(agentId)
    return a?.checksum === checksum ? a : undefined
  }

  set(agentId: string, agent: SerializedAgent): void {
    this.m.delete(agentId)
    if (this.m.size >= this.max) this.m.delete(this.m.keys().next().value as string)
    this.m.set(agentId, agent)
  }

  drop(agentId: string): void {
    this.m.delete(agentId)
  }
}

/** The record's bundle, decoded (from the cache, or the store: CorruptStoreError when missing or not the record's). */
export async function loadAgent(core: Core, r: AgentRecord): Promise<SerializedAgent> {
  const hit = core.cache.get(r.agent_id, r.checksum)
  if (hit !== undefined) return hit
  const bytes = await core.store.getBundle(r.agent_id)
  if (bytes === undefined) throw new CorruptStoreError(`expected the bundle of ${r.agent_id} in the store, got none`)
  let a: SerializedAgent
  try {
    a = decodeAgent(bytes, core.limits)
  } catch (err) {
    throw new CorruptStoreError(`expected the stored bundle of ${r.agent_id} to decode, got ${(err as Error).name}`, { cause: err })
  }
  if (a.checksum !== r.checksum) throw new CorruptStoreError(`expected the stored bundle of ${r.agent_id} with checksum ${r.checksum}, got ${a.checksum}`)
  core.cache.set(r.agent_id, a)
  return a
}

/** The record's agent with its current state and this epoch (checksum not recomputed). */
export async function currentAgent(core: Core, r: AgentRecord): Promise<SerializedAgent> {
  const a = await loadAgent(core, r)
  return { ...a, agent_state: { ...a.agent_state, epoch: r.epoch, data: r.data as KLPValue } }
}

/** The small record fields that come from a bundle. */
export function recordFields(a: SerializedAgent): Pick<AgentRecord, 'checksum' | 'owner' | 'capabilities' | 'description' | 'lineage'> {
  const m = a.agent_metadata
  return { checksum: a.checksum, owner: m.owner, capabilities: m.capabilities, description: m.description, lineage: m.lineage }
}

/** A migration id: 16 random bytes, base64url (22 chars). */
export function newMigrationId(): string {
  return Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(16))).toString('base64url')
}
