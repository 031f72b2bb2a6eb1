/**
 * Durable state of the migration service in a KeyValueStore (the node's datastore), under
 * `/agent-migration/`:
 *   agents/<key>  AgentRecord: one per agent this node knows (live, frozen, prepared, gone, archived)
 *   bundles/<key> the agent's bundle (SerializedAgent bytes, secrets sealed to this node); written
 *                 before the record that names its checksum, so a task's state update is a small write
 *   out/<mid>     OutLog: the source's log of a migration it started (its commit decision)
 *   in/<mid>      InLog: the target's log of a migration it received (prepared, committed, aborted)
 * Every state change is one `put` of one record, so a crash leaves either the old or the new
 * record; the protocol orders its puts so that every prefix is recoverable (docs/MIGRATION.md).
 * Records are DAG-CBOR; reading a record this version cannot decode throws CorruptStoreError.
 */
import { AbortError, describeValue, InvalidParametersError, type AbortOptions, type KeyValueStore, type KLPValue } from '@kos-mesh/interface'
import { decodeValue, encodeValue } from '@kos-mesh/klp-codec'
import { isObj } from './check.js'
import { CorruptStoreError } from './errors.js'
import type { AgentLineage, AgentRecordStatus, MigrationType } from './types.js'

/** The default key prefix of a {@link MigrationStore} in the node's KeyValueStore. */
export const STORE_PREFIX = '/agent-migration/'

/**
 * What this node knows of one agent, stored under `agents/<agentKey(id)>`: its status here, its
 * fencing epoch, the bundle stored for it, listing fields, its current state, audit trail and
 * delegation chain.
 */
export interface AgentRecord {
  /** The agent's id. */
  agent_id: string
  /** Its name on this node (see `AGENT_NAME_RE`). */
  name: string
  /** Where it stands on this node. */
  status: AgentRecordStatus
  /** Fencing epoch this node knows for the agent. */
  epoch: number
  /** Checksum and size (bytes) of the bundle stored under `bundles/<key>` for this record. */
  checksum: string
  size: number
  /** From the bundle, for listings and the registry without reading the bundle. */
  owner: string
  capabilities: string[]
  description: string
  lineage: AgentLineage | null
  /** The agent's current state (newer than the bundle's after tasks ran). */
  data: KLPValue
  /** Signed audit entries. */
  trail: Uint8Array[]
  /** The delegation chain that lets this node act for the agent ([] when it is the owner). */
  delegations: Uint8Array[]
  /** Where it went (status `gone`), or ''. */
  moved_to: string
  /** The migration that last changed this record, or ''. */
  migration_id: string
  /** When this record was last written, ms since the Unix epoch (the node clock). */
  updated_at: number
}

/**
 * Phase of an outgoing migration on the source: `preparing` (a MOVE undecided, the agent frozen),
 * `committed` (the commit point: the agent is the target's), `aborted`, or `done` (the target
 * acknowledged the commit). Recovery aborts a `preparing` MOVE and re-sends a `committed` one.
 */
export type OutPhase = 'preparing' | 'committed' | 'aborted' | 'done'
/**
 * The source's durable log of a migration it started, under `out/<migration id>`: the decision of
 * a MOVE lives here. Finished logs are pruned after `AgentMigrationInit.logRetentionMs`.
 */
export interface OutLog {
  /** The migration's id. */
  migration_id: string
  /** The agent migrated (its id on this node). */
  agent_id: string
  /** The migration type. */
  type: MigrationType
  /** The target node's DID. */
  target: string
  /** The target's KLP authority. */
  authority: string
  phase: OutPhase
  /** The epoch the agent gets on the target. */
  epoch: number
  /** SHA-256 of the signed header, which covers the whole bundle (the bundle itself is never needed again: recovery aborts or commits by id). */
  bundle_hash: Uint8Array
  /** When the log was written, ms since the Unix epoch (the node clock). */
  created_at: number
}

/**
 * Phase of an incoming migration on the target: `prepared` (a MOVE verified and stored, not live),
 * `committed` (live here) or `aborted` (dropped). Only a MOVE stays `prepared`; other types are
 * applied at once.
 */
export type InPhase = 'prepared' | 'committed' | 'aborted'
/**
 * The target's durable log of a migration it received, under `in/<migration id>`: it keeps the
 * verified bundle of a prepared MOVE until the source's decision, and refuses replays of the id.
 * Finished logs are pruned after `AgentMigrationInit.logRetentionMs`.
 */
export interface InLog {
  /** The migration's id. */
  migration_id: string
  /** The agent received (its id on this node). */
  agent_id: string
  /** The migration type. */
  type: MigrationType
  /** The source node's DID. */
  source: string
  /** The source's KLP authority (to ask it for the decision). */
  authority: string
  phase: InPhase
  /** The agent's fencing epoch here once committed. */
  epoch: number
  /** The verified request bundle until committed or aborted. */
  bundle: Uint8Array
  /** SHA-256 of the signed header, which covers the whole bundle (a replay with other bytes under the same id is refused). */
  bundle_hash: Uint8Array
  /** When the log was written, ms since the Unix epoch (the node clock). */
  created_at: number
}

/** A KeyValueStore in memory (tests, examples, volatile nodes); keys in UTF-8 byte order. */
export function memoryKeyValueStore(): KeyValueStore & { readonly size: number } {
  const m = new Map<string, Uint8Array>()
  const key = (k: unknown): string => {
    if (typeof k !== 'string' || k.length === 0) throw new InvalidParametersError(`expected a non-empty string key, got ${describeValue(k)}`)
    return k
  }
  const aborted = (o?: AbortOptions): void => {
    if (o?.signal?.aborted === true) throw new AbortError(undefined, { cause: o.signal.reason })
  }
  return {
    get size() { return m.size },
    async get(k, o) { key(k); aborted(o); const v = m.get(k); return v === undefined ? undefined : v.slice() },
    async put(k, v, o) {
      key(k)
      if (!(v instanceof Uint8Array)) throw new InvalidParametersError(`expected a Uint8Array value, got ${describeValue(v)}`)
      aborted(o)
      m.set(k, v.slice())
    },
    async delete(k, o) { key(k); aborted(o); m.delete(k) },
    async has(k, o) { key(k); aborted(o); return m.has(k) },
    async *query(prefix, o) {
      if (typeof prefix !== 'string') throw new InvalidParametersError(`expected a string prefix, got ${describeValue(prefix)}`)
      const limit = o?.limit
      if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0)) throw new InvalidParametersError(`expected a non-negative integer limit, got ${describeValue(limit)}`)
      aborted(o)
      const keys = [...m.keys()].filter((k) => k.startsWith(prefix)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
      let n = 0
      for (const k of keys) {
        aborted(o)
        if (limit !== undefined && n++ >= limit) return
        const v = m.get(k)
        if (v !== undefined) yield { key: k, value: v.slice() }
      }
    },
  }
}

/** A store key for an agent id (ids may hold any character): base64url of its UTF-8. */
export function agentKey(agentId: string): string {
  return Buffer.from(agentId, 'utf8').toString('base64url')
}

const LIMITS = { maxBytesLength: 256 * 1024 * 1024, maxMessageSize: 256 * 1024 * 1024, maxFrameSize: 256 * 1024 * 1024, maxItems: 1_000_000, maxDepth: 64 }

function enc(v: object): Uint8Array {
  return encodeValue({ v: 1, ...v } as unknown as KLPValue, { limits: LIMITS })
}

function dec<T>(b: Uint8Array | undefined, what: string, fields: readonly string[]): T | undefined {
  if (b === undefined) return undefined
  let v: KLPValue
  try {
    v = decodeValue(b, { limits: LIMITS })
  } catch (err) {
    throw new CorruptStoreError(`expected a stored ${what}, got bytes that do not decode`, { cause: err })
  }
  if (!isObj(v) || v.v !== 1 || !fields.every((f) => f in v)) throw new CorruptStoreError(`expected a stored ${what} of version 1`)
  const { v: _v, ...rest } = v as Record<string, KLPValue>
  return rest as unknown as T
}

const AGENT_FIELDS = ['agent_id', 'name', 'status', 'epoch', 'checksum', 'size', 'owner', 'capabilities', 'description', 'lineage', 'data', 'trail', 'delegations', 'moved_to', 'migration_id', 'updated_at']
const OUT_FIELDS = ['migration_id', 'agent_id', 'type', 'target', 'authority', 'phase', 'epoch', 'bundle_hash', 'created_at']
const IN_FIELDS = ['migration_id', 'agent_id', 'type', 'source', 'authority', 'phase', 'epoch', 'bundle', 'bundle_hash', 'created_at']

/** Typed access to the records. */
export class MigrationStore {
  constructor(readonly kv: KeyValueStore, readonly prefix = STORE_PREFIX) {}

  /** The record of an agent, or undefined when this node knows none. @throws CorruptStoreError for an undecodable record. */
  async getAgent(agentId: string): Promise<AgentRecord | undefined> {
    return dec<AgentRecord>(await this.kv.get(`${this.prefix}agents/${agentKey(agentId)}`), 'agent record', AGENT_FIELDS)
  }

  /** Writes (replaces) an agent's record in one `put`, so a crash leaves the old or the new record. */
  async putAgent(r: AgentRecord): Promise<void> {
    await this.kv.put(`${this.prefix}agents/${agentKey(r.agent_id)}`, enc(r))
  }

  /** The stored bundle bytes of an agent (raw: the caller decodes and checks them). */
  async getBundle(agentId: string): Promise<Uint8Array | undefined> {
    return this.kv.get(`${this.prefix}bundles/${agentKey(agentId)}`)
  }

  /** Writes an agent's bundle bytes (before the record that names their checksum). */
  async putBundle(agentId: string, bytes: Uint8Array): Promise<void> {
    await this.kv.put(`${this.prefix}bundles/${agentKey(agentId)}`, bytes)
  }

  /** Every agent record, in the store's key order. @throws CorruptStoreError for an undecodable record. */
  async *agents(): AsyncIterable<AgentRecord> {
    for await (const { value } of this.kv.query(`${this.prefix}agents/`)) {
      const r = dec<AgentRecord>(value, 'agent record', AGENT_FIELDS)
      if (r !== undefined) yield r
    }
  }

  /** The outgoing log of a migration id, or undefined. @throws CorruptStoreError for an undecodable log. */
  async getOut(mid: string): Promise<OutLog | undefined> {
    return dec<OutLog>(await this.kv.get(`${this.prefix}out/${mid}`), 'outgoing log', OUT_FIELDS)
  }

  /** Writes (replaces) an outgoing log in one `put`. */
  async putOut(l: OutLog): Promise<void> {
    await this.kv.put(`${this.prefix}out/${l.migration_id}`, enc(l))
  }

  /** Every outgoing log, in the store's key order. @throws CorruptStoreError for an undecodable log. */
  async *outs(): AsyncIterable<OutLog> {
    for await (const { value } of this.kv.query(`${this.prefix}out/`)) {
      const l = dec<OutLog>(value, 'outgoing log', OUT_FIELDS)
      if (l !== undefined) yield l
    }
  }

  /** The incoming log of a migration id, or undefined. @throws CorruptStoreError for an undecodable log. */
  async getIn(mid: string): Promise<InLog | undefined> {
    return dec<InLog>(await this.kv.get(`${this.prefix}in/${mid}`), 'incoming log', IN_FIELDS)
  }

  /** Writes (replaces) an incoming log in one `put`. */
  async putIn(l: InLog): Promise<void> {
    await this.kv.put(`${this.prefix}in/${l.migration_id}`, enc(l))
  }

  /** Every incoming log, in the store's key order. @throws CorruptStoreError for an undecodable log. */
  async *ins(): AsyncIterable<InLog> {
    for await (const { value } of this.kv.query(`${this.prefix}in/`)) {
      const l = dec<InLog>(value, 'incoming log', IN_FIELDS)
      if (l !== undefined) yield l
    }
  }

  /** Deletes an outgoing log (nothing when there is none). */
  async deleteOut(mid: string): Promise<void> {
    await this.kv.delete(`${this.prefix}out/${mid}`)
  }

  /** Deletes an incoming log (nothing when there is none). */
  async deleteIn(mid: string): Promise<void> {
    await this.kv.delete(`${this.prefix}in/${mid}`)
  }

  /** Deletes finished logs written before `before` (out: done, aborted; in: committed, aborted); returns how many. */
  async prune(before: number): Promise<number> {
    const outs: string[] = []
    const ins: string[] = []
    for await (const l of this.outs()) if ((l.phase === 'done' || l.phase === 'aborted') && l.created_at < before) outs.push(l.migration_id)
    for await (const l of this.ins()) if (l.phase !== 'prepared' && l.created_at < before) ins.push(l.migration_id)
    for (const mid of outs) await this.deleteOut(mid)
    for (const mid of ins) await this.deleteIn(mid)
    return outs.length + ins.length
  }

  /** The out log of an undecided or committed-but-unacknowledged migration of the agent, if any. */
  async pendingOut(agentId: string): Promise<OutLog | undefined> {
    for await (const l of this.outs()) if (l.agent_id === agentId && (l.phase === 'preparing' || l.phase === 'committed')) return l
    return undefined
  }
}
