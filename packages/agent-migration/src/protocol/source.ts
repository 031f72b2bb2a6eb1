/**
 * The source side. `beginOut` builds the signed request for any type; for a MOVE it first writes
 * the out log `preparing` (one put: the agent is frozen from here, tasks refused). The decision is
 * the source's alone: `commitOut` writes `committed` (the commit point) and then fences the
 * agent record (`gone`, the new epoch); `abortOut` writes `aborted` and the agent is live again.
 * Recovery (`recoverOut`) presumes abort for an undecided MOVE and re-sends COMMIT for a committed
 * one until the target acknowledges (`doneOut`).
 */
import { appendAudit } from '../audit.js'
import { sealChecksum } from '../codec.js'
import { openDelegation, signDelegation } from '../delegation.js'
import { AgentStateError, MigrationBusyError } from '../errors.js'
import { sha256 } from '../cose.js'
import { computeFingerprint } from '../fingerprint.js'
import { buildRequest, handoverEvent } from '../request.js'
import { openSecrets, sealSecrets } from '../seal.js'
import type { AgentRecord, OutLog } from '../store.js'
import type { AgentMigrationRequest, AuditTrail, MigrationType, SerializedAgent } from '../types.js'
import { openAuditEntry } from '../audit.js'
import { currentAgent, newMigrationId, type Core } from './core.js'
import { liveRecord } from './host.js'

/** What a COPY, CLONE or restore may set on the agent it makes, and the migration id. */
export interface OutgoingOptions {
  /** COPY / CLONE: the new agent's id. Default `<id>/copy-<8 chars>` or `<id>/clone-<8 chars>`. */
  newId?: string
  /** COPY / CLONE: its name on the target. Default the same name. */
  name?: string
  /** CLONE: its owner. Default the same owner. */
  owner?: string
  /** Restore an archived BACKUP (on an archive node) instead of migrating a live agent. */
  restore?: boolean
  /** Migration id (tests). Default random. */
  migrationId?: string
}

export interface Outgoing {
  migrationId: string
  bytes: Uint8Array
  request: AgentMigrationRequest
  log?: OutLog
}

async function handoff(core: Core, r: AgentRecord, owner: string, target: string, now: number): Promise<Uint8Array | null> {
  const self = core.identity.did
  const expires = now + core.handoffTtlMs
  if (owner === self) return signDelegation({ issuer: self, delegate: target, agent_id: r.agent_id, actions: ['move', 'copy', 'clone', 'backup'], targets: [], redelegate: true, issued_at: now, expires_at: expires }, core.identity.signer)
  const last = r.delegations.length === 0 ? undefined : openDelegation(r.delegations[r.delegations.length - 1]!, core.limits)
  if (last === undefined || !last.redelegate || last.expires_at <= now || r.delegations.length >= core.limits.maxDelegations) return null
  return signDelegation({ issuer: self, delegate: target, agent_id: last.agent_id === '*' ? r.agent_id : last.agent_id, actions: last.actions, targets: last.targets, redelegate: true, issued_at: now, expires_at: Math.min(expires, last.expires_at) }, core.identity.signer)
}

/** Builds the request (and for a MOVE, freezes the agent with the `preparing` log). */
export async function beginOut(core: Core, agentId: string, type: MigrationType, target: { did: string; authority: string }, o: OutgoingOptions = {}): Promise<Outgoing> {
  return core.lock.run(agentId, async () => {
    const self = core.identity.did
    if (target.did === self) throw new AgentStateError('expected a target other than this node')
    let r: AgentRecord
    if (o.restore === true) {
      const a = await core.store.getAgent(agentId)
      if (a?.status !== 'archived') throw new AgentStateError(`expected an archived backup of ${agentId} here, got ${a?.status ?? 'none'}`)
      r = a
    } else {
      r = await liveRecord(core, agentId)
    }
    if (type === 'move' && (await core.store.pendingOut(agentId)) !== undefined) throw new MigrationBusyError(`expected no migration of ${agentId} in progress`)
    const now = core.clock.now()
    const mid = o.migrationId ?? newMigrationId()
    const cur = await currentAgent(core, r)
    const owner = cur.agent_metadata.owner
    const secrets = cur.agent_state.sealed_secrets === null ? null : openSecrets(cur.agent_state.sealed_secrets, core.identity, agentId)
    let agent: SerializedAgent = cur
    let trail: AuditTrail = r.trail.map((b) => openAuditEntry(b, core.limits))
    const restore = o.restore === true
    let epoch = type === 'backup' && !restore ? r.epoch : r.epoch + 1
    if (type === 'copy' || type === 'clone') {
      const newId = o.newId ?? `${agentId}/${type}-${mid.slice(0, 8)}`
      const newOwner = type === 'clone' ? o.owner ?? owner : owner
      agent = {
        ...cur,
        agent_metadata: { ...cur.agent_metadata, agent_id: newId, name: o.name ?? cur.agent_metadata.name, owner: newOwner, created_at: now, lineage: { parent: agentId, kind: type, parent_epoch: r.epoch, migration_id: mid } },
        agent_state: { ...cur.agent_state, epoch: 0, sealed_secrets: type === 'copy' && secrets !== null ? sealSecrets(secrets, target.did, newId) : null },
      }
      epoch = 0
      if (type === 'clone') trail = []
    } else {
      agent = { ...cur, agent_state: { ...cur.agent_state, sealed_secrets: secrets === null ? null : sealSecrets(secrets, target.did, agentId) } }
    }
    agent = sealChecksum({ ...agent, serialization_timestamp: now }, core.limits)
    const id = agent.agent_metadata.agent_id
    trail = await appendAudit(trail, { agent_id: id, node: self, event: handoverEvent({ migration_type: type, restore_epoch: restore ? r.epoch : -1 }), epoch, at: now, migration_id: mid, peer: target.did, checksum: agent.checksum }, core.identity.signer)
    const fingerprint = await computeFingerprint(agent, { maxMemoryBytes: core.policy.maxMemoryBytes, maxCpuBudget: core.policy.maxCpuBudget })
    const ho = type === 'clone' ? null : await handoff(core, r, owner, target.did, now)
    const { bytes, request } = await buildRequest(
      { migration_id: mid, agent_id: id, owner, source_node: self, target_node: target.did, migration_type: type, epoch, created_at: now, expires_at: now + core.requestTtlMs, fingerprint, delegations: owner === self ? [] : r.delegations, restore_epoch: restore ? r.epoch : -1 },
      agent, trail, core.identity.signer, ho, core.limits,
    )
    if (type !== 'move') return { migrationId: mid, bytes, request }
    const log: OutLog = { migration_id: mid, agent_id: agentId, type, target: target.did, authority: target.authority, phase: 'preparing', epoch, bundle_hash: sha256(request.signature), created_at: now }
    await core.store.putOut(log)
    core.hooks.deactivate(r)
    return { migrationId: mid, bytes, request, log }
  })
}

/** The commit point of a MOVE: `committed`, then the agent record fenced at the new epoch. */
export async function commitOut(core: Core, mid: string): Promise<OutLog> {
  const log = await core.store.getOut(mid)
  if (log === undefined) throw new AgentStateError(`expected a migration ${mid} started here, got none`)
  return core.lock.run(log.agent_id, async () => {
    const l = (await core.store.getOut(mid))!
    if (l.phase === 'aborted') throw new AgentStateError(`expected migration ${mid} undecided, got it aborted`)
    const committed: OutLog = l.phase === 'preparing' ? { ...l, phase: 'committed' } : l
    if (l.phase === 'preparing') await core.store.putOut(committed)
    await fence(core, committed)
    return committed
  })
}

async function fence(core: Core, l: OutLog): Promise<void> {
  const r = await core.store.getAgent(l.agent_id)
  if (r === undefined || (r.status === 'gone' && r.epoch >= l.epoch)) return
  const gone: AgentRecord = { ...r, status: 'gone', epoch: l.epoch, moved_to: l.target, migration_id: l.migration_id, data: null, updated_at: core.clock.now() }
  await core.store.putAgent(gone)
  core.cache.drop(l.agent_id)
  // the bundle stays under bundles/<key> until the agent comes back (it is overwritten then)
  core.hooks.deactivate(gone)
}

/** Aborts an undecided MOVE: the agent is live here again, as it was. */
export async function abortOut(core: Core, mid: string): Promise<OutLog | undefined> {
  const log = await core.store.getOut(mid)
  if (log === undefined) return undefined
  return core.lock.run(log.agent_id, async () => {
    const l = (await core.store.getOut(mid))!
    if (l.phase !== 'preparing') return l
    const aborted: OutLog = { ...l, phase: 'aborted' }
    await core.store.putOut(aborted)
    const r = await core.store.getAgent(l.agent_id)
    if (r !== undefined && r.status === 'active') core.hooks.activate(r)
    return aborted
  })
}

/** The target acknowledged the commit: the log is finished. */
export async function doneOut(core: Core, mid: string): Promise<void> {
  const l = await core.store.getOut(mid)
  if (l === undefined || l.phase !== 'committed') return
  await core.store.putOut({ ...l, phase: 'done' })
}

/** The source's answer to "what did you decide for `mid`?" (`unknown`: never started here = abort). */
export async function decisionOf(core: Core, mid: string, asker: string): Promise<'preparing' | 'committed' | 'aborted' | 'unknown'> {
  const l = await core.store.getOut(mid)
  if (l === undefined || l.target !== asker) return 'unknown'
  return l.phase === 'done' ? 'committed' : l.phase
}

/**
 * After a restart (or for logs no running migration of this process owns): undecided MOVEs are
 * aborted (presumed abort); committed ones need their COMMIT re-sent.
 */
export async function recoverOut(core: Core, inFlight: (mid: string) => boolean = () => false): Promise<{ commit: OutLog[]; aborted: OutLog[] }> {
  const commit: OutLog[] = []
  const aborted: OutLog[] = []
  for await (const l of core.store.outs()) {
    if (inFlight(l.migration_id)) continue
    if (l.phase === 'preparing') {
      const a = await abortOut(core, l.migration_id)
      if (a !== undefined) aborted.push({ ...l, phase: 'aborted' })
    } else if (l.phase === 'committed') {
      await core.lock.run(l.agent_id, () => fence(core, l))
      commit.push(l)
    }
  }
  return { commit, aborted }
}

