/**
 * The target side. `preflightIn` refuses, before any transfer, what this node would refuse anyway
 * (type, size, fencing, name, permissions). `receiveIn` verifies a request completely (signature,
 * time, checksum, trail, ownership chain, fencing epoch, permissions, sealed secrets, and the
 * behavioural fingerprint re-run in the sandbox) before it writes anything; then a MOVE is stored
 * `prepared` (not live), every other type is applied at once. `commitIn` activates a prepared
 * MOVE (the agent record first, then the log), `abortIn` drops it; both are idempotent.
 */
import { equalBytes } from '@kos-mesh/interface'
import { appendAudit } from '../audit.js'
import { sha256 } from '../cose.js'
import { AgentStateError, BundleTooLargeError, MigrationRefusedError, StaleMigrationError } from '../errors.js'
import { checkFingerprint } from '../fingerprint.js'
import { grantPermissions } from '../policy.js'
import { openBundle } from '../request.js'
import { openSecrets } from '../seal.js'
import type { AgentRecord, InLog } from '../store.js'
import type { AgentMigrationRequest, AgentPermissions, MigrationType } from '../types.js'
import { recordFields, type Core } from './core.js'

/**
 * The preflight request: what the target needs to refuse a migration before any transfer (type,
 * size, fencing epoch, name clash, permissions).
 */
export interface Preflight {
  /** The migration's id. */
  migration_id: string
  /** The agent's id on the target (a new one for a COPY or CLONE). */
  agent_id: string
  /** Its name on the target. */
  name: string
  /** The migration type. */
  type: MigrationType
  /** The agent's fencing epoch on the target once committed. */
  epoch: number
  /** Whether this restores an archived BACKUP (a live agent, like a MOVE). */
  restore: boolean
  /** Size of the bundle, bytes (at most the target's `maxBundleBytes`). */
  size: number
  /** What the agent needs of the target. */
  permissions: AgentPermissions
}

/** The type a request counts as for the policy (a restore yields a live agent, like a MOVE). */
function policyType(type: MigrationType, restore: boolean): MigrationType {
  return restore ? 'move' : type
}

async function checkAdmission(core: Core, p: Preflight): Promise<void> {
  if (!core.policy.accept.has(policyType(p.type, p.restore))) throw new MigrationRefusedError(`expected a migration type this node accepts, got ${p.type}${p.type === 'backup' ? ' (not an archive node)' : ''}`, 'type_not_accepted')
  if (p.size > core.limits.maxBundleBytes) throw new BundleTooLargeError(`expected a bundle of at most ${core.limits.maxBundleBytes} bytes, got ${p.size}`)
  const existing = await core.store.getAgent(p.agent_id)
  const live = p.type === 'move' || p.restore
  if (existing !== undefined) {
    if (p.type === 'backup' && !p.restore) {
      if (existing.status !== 'archived' || existing.epoch > p.epoch) throw new StaleMigrationError(`expected a backup at least as new as epoch ${existing.epoch} of ${p.agent_id}, got ${p.epoch}`)
    } else if (!live) {
      throw new AgentStateError(`expected a new agent id, got ${p.agent_id} which this node knows`)
    } else if (existing.epoch >= p.epoch) {
      throw new StaleMigrationError(`expected an epoch above ${existing.epoch} for ${p.agent_id}, got ${p.epoch}`)
    } else if (existing.status !== 'gone') {
      throw new AgentStateError(`expected ${p.agent_id} not held here, got it ${existing.status}`)
    }
  }
  if (p.type !== 'backup' || p.restore) {
    if (core.hostedNames().includes(p.name) && existing?.name !== p.name) throw new AgentStateError(`expected a free agent name, got ${p.name} taken here`)
    grantPermissions(p.permissions, core.policy, core.hostedNames())
  }
}

/** Refuses what would be refused after the transfer (typed errors); resolves when it may come. */
export async function preflightIn(core: Core, p: Preflight): Promise<void> {
  const seen = await core.store.getIn(p.migration_id)
  if (seen !== undefined) return
  await checkAdmission(core, p)
}

export type Vote = 'prepared' | 'committed'

/** Verifies a request and applies it (MOVE: prepared). `from` is the authenticated sender and its authority. */
export async function receiveIn(core: Core, bytes: Uint8Array, from: { did: string; authority: string }): Promise<{ vote: Vote; request?: AgentMigrationRequest }> {
  const { request: req, agentBytes } = openBundle(bytes, { now: core.clock.now(), self: core.identity.did, limits: core.limits })
  // the signed header covers every byte of the bundle (checksum, trail head, hand-off hash)
  const hash = sha256(req.signature)
  const h = req.header
  if (h.source_node !== from.did) throw new MigrationRefusedError(`expected a request signed by its sender ${from.did}, got one by ${h.source_node}`, 'not_sender')
  return core.lock.run(h.agent_id, async () => {
    const seen = await core.store.getIn(h.migration_id)
    if (seen !== undefined) {
      if (!equalBytes(seen.bundle_hash, hash) || seen.source !== from.did) throw new StaleMigrationError(`expected a new migration id, got ${h.migration_id} again with other content`)
      // a retransmission while prepared gets the same vote; a replay of a finished migration is refused
      if (seen.phase !== 'prepared') throw new StaleMigrationError(`expected a new migration, got ${h.migration_id} replayed (${seen.phase})`)
      return { vote: 'prepared' }
    }
    const a = req.agent_data
    const restore = h.restore_epoch >= 0
    if ((h.migration_type === 'move' || restore) && h.epoch !== a.agent_state.epoch + 1) throw new StaleMigrationError(`expected epoch ${a.agent_state.epoch + 1}, got ${h.epoch}`)
    await checkAdmission(core, { migration_id: h.migration_id, agent_id: h.agent_id, name: a.agent_metadata.name, type: h.migration_type, epoch: h.epoch, restore, size: bytes.length, permissions: a.permissions })
    if (a.agent_state.sealed_secrets !== null) openSecrets(a.agent_state.sealed_secrets, core.identity, h.agent_id)
    if (h.migration_type !== 'backup' || restore) await checkFingerprint(h.fingerprint, a, { maxMemoryBytes: core.policy.maxMemoryBytes, maxCpuBudget: core.policy.maxCpuBudget })
    const log: InLog = { migration_id: h.migration_id, agent_id: h.agent_id, type: h.migration_type, source: from.did, authority: from.authority, phase: 'prepared', epoch: h.epoch, bundle: bytes, bundle_hash: hash, created_at: core.clock.now() }
    if (h.migration_type === 'move') {
      await core.store.putIn(log)
      return { vote: 'prepared', request: req }
    }
    await apply(core, log, req, agentBytes)
    return { vote: 'committed', request: req }
  })
}

/** Makes the agent record of a verified request (live, or archived for a BACKUP) and then logs `committed`. */
async function apply(core: Core, log: InLog, req: AgentMigrationRequest, agentBytes: Uint8Array): Promise<AgentRecord> {
  const h = req.header
  const a = req.agent_data
  const now = core.clock.now()
  const archived = h.migration_type === 'backup' && h.restore_epoch < 0
  const trail = archived ? req.audit_trail : await appendAudit(req.audit_trail, { agent_id: h.agent_id, node: core.identity.did, event: 'migrated_in', epoch: h.epoch, at: now, migration_id: h.migration_id, peer: h.source_node, checksum: a.checksum }, core.identity.signer)
  const owner = a.agent_metadata.owner
  const delegations = owner === core.identity.did || req.handoff === null ? [] : [...(owner === h.source_node ? [] : h.delegations), req.handoff]
  const record: AgentRecord = { agent_id: h.agent_id, name: a.agent_metadata.name, status: archived ? 'archived' : 'active', epoch: h.epoch, ...recordFields(a), size: agentBytes.length, data: a.agent_state.data, trail: trail.map((e) => e.bytes), delegations, moved_to: '', migration_id: h.migration_id, updated_at: now }
  // the bundle first: a crash between the two leaves the old record (never live here) and an unused bundle
  await core.store.putBundle(h.agent_id, agentBytes)
  core.cache.set(h.agent_id, a)
  await core.store.putAgent(record)
  await core.store.putIn({ ...log, phase: 'committed', bundle: new Uint8Array(0) })
  if (!archived) core.hooks.activate(record)
  return record
}

/** The source committed: activate the prepared MOVE (idempotent). */
export async function commitIn(core: Core, mid: string, from: string): Promise<void> {
  const l = await core.store.getIn(mid)
  if (l === undefined || l.source !== from) throw new AgentStateError(`expected a migration ${mid} prepared here by ${from}, got none`)
  await core.lock.run(l.agent_id, async () => {
    const cur = (await core.store.getIn(mid))!
    if (cur.phase === 'committed') return
    if (cur.phase === 'aborted') throw new AgentStateError(`expected migration ${mid} prepared, got it aborted`)
    const r = await core.store.getAgent(cur.agent_id)
    if (r !== undefined && r.migration_id === mid && r.status === 'active') {
      await core.store.putIn({ ...cur, phase: 'committed', bundle: new Uint8Array(0) })
      return
    }
    // verified when prepared; decoded again without the time check (the commit may come late)
    const { request: req, agentBytes } = openBundle(cur.bundle, { now: Math.min(core.clock.now(), cur.created_at), self: core.identity.did, limits: core.limits, stored: true })
    await apply(core, cur, req, agentBytes)
  })
}

/** The source aborted (or never decided and said so): drop the prepared MOVE. Refused once committed. */
export async function abortIn(core: Core, mid: string, from: string): Promise<void> {
  const l = await core.store.getIn(mid)
  if (l === undefined || l.source !== from) return
  await core.lock.run(l.agent_id, async () => {
    const cur = (await core.store.getIn(mid))!
    if (cur.phase === 'aborted') return
    if (cur.phase === 'committed') throw new AgentStateError(`expected migration ${mid} not committed, got it committed`)
    await core.store.putIn({ ...cur, phase: 'aborted', bundle: new Uint8Array(0) })
  })
}

/** Prepared MOVEs whose decision this node must learn from their source (after a restart, or a lost COMMIT). */
export async function pendingIn(core: Core): Promise<InLog[]> {
  const out: InLog[] = []
  for await (const l of core.store.ins()) if (l.phase === 'prepared') out.push(l)
  return out
}
