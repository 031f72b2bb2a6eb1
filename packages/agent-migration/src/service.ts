/**
 * The migration service over a MessageRouter: `agentMigration(init)(components)`. It hosts agents
 * (registered in the agents package's AgentRegistry so they answer tasks), and runs the protocol
 * of protocol/*: preflight, prepare (inline, or by klp-router's bulk transfer for large bundles,
 * with progress and an AbortSignal), and for a MOVE the commit or abort, with durable logs and a
 * recovery loop on the injected clock (re-sent commits, decisions asked from the source).
 */
import {
  AbortError, InvalidParametersError, KLPMessageType, ProcessingStatus, TrustObservation, every, silentLogger, systemClock,
  type AbortOptions, type KLPMessage, type KLPValue, type MessageContext, type MessageRouter, type ProcessingResult,
} from '@kos-mesh/interface'
import type { AgentInit } from '@kos-mesh/agents'
import { memorySink, memorySource } from '@kos-mesh/klp-router'
import { MigrationFailedError, MigrationRefusedError, StaleMigrationError } from './errors.js'
import { resolveMigrationLimits } from './limits.js'
import { resolvePolicy } from './policy.js'
import { BundleCache, KeyedLock, loadAgent, newMigrationId, type Core } from './protocol/core.js'
import { createAgent, instanceOf, listAgents, liveRecord, runAgent, type CreateAgentInit } from './protocol/host.js'
import { abortOut, beginOut, commitOut, decisionOf, doneOut, recoverOut } from './protocol/source.js'
import { abortIn, commitIn, pendingIn, preflightIn, receiveIn } from './protocol/target.js'
import { openRequest } from './request.js'
import type { AgentMigrationComponents, AgentMigrationInit, AgentMigrationService, ExportOptions, MigrateOptions, MigrationStats } from './service-types.js'
import { MigrationStore, memoryKeyValueStore, type AgentRecord } from './store.js'
import { MigrationStatus, type AgentInstance, type AgentMigrationRequest, type MigrationResult, type MigrationType } from './types.js'
import { MIGRATION_PATH, parseWireRequest, reasonOf } from './wire.js'

export type { AgentMigrationComponents, AgentMigrationInit, AgentMigrationService, ExportOptions, MigrateOptions, MigrationStats } from './service-types.js'

class MigrationService implements AgentMigrationService {
  private readonly core: Core
  private readonly router: MessageRouter
  private readonly path: string
  private readonly inlineMax: number
  private readonly requestTimeoutMs: number
  private readonly prepareTimeoutMs: number
  private readonly recoveryMs: number
  private readonly pollMs: number
  private readonly retentionMs: number
  private readonly maxReceiving: number
  /** Bulk bundles being pulled: migration id -> the settled vote or error. */
  private readonly receiving = new Map<string, { from: string; vote?: string; error?: unknown; done: boolean }>()
  private readonly c: AgentMigrationComponents
  private controller = new AbortController()
  private stopLoop?: () => void
  private started = false
  private recovering?: Promise<void>

  constructor(init: AgentMigrationInit, c: AgentMigrationComponents) {
    this.c = c
    this.router = c.router
    this.path = init.path ?? MIGRATION_PATH
    this.inlineMax = init.inlineMaxBytes ?? 512 * 1024
    this.requestTimeoutMs = init.requestTimeoutMs ?? 10_000
    this.prepareTimeoutMs = init.prepareTimeoutMs ?? 120_000
    this.recoveryMs = init.recoveryIntervalMs ?? 5_000
    this.pollMs = init.pollMs ?? 20
    this.retentionMs = init.logRetentionMs ?? 86_400_000
    if (this.retentionMs <= (init.requestTtlMs ?? 600_000)) throw new InvalidParametersError(`expected logRetentionMs above requestTtlMs, got ${this.retentionMs}`)
    this.maxReceiving = init.maxReceiving ?? 4
    const registry = c.registry
    this.core = {
      store: new MigrationStore(c.store ?? memoryKeyValueStore()),
      identity: c.identity,
      clock: c.clock ?? systemClock,
      limits: resolveMigrationLimits(init.limits),
      policy: resolvePolicy(init.policy, init.archive === true),
      archive: init.archive === true,
      logger: c.logger ?? silentLogger,
      requestTtlMs: init.requestTtlMs ?? 600_000,
      handoffTtlMs: init.handoffTtlMs ?? 30 * 24 * 3600 * 1000,
      lock: new KeyedLock(),
      cache: new BundleCache(),
      hostedNames: () => [...this.hosted.keys()],
      authority: () => this.router.authority,
      hooks: {
        activate: (r) => this.host(r),
        deactivate: (r) => {
          if (this.hosted.get(r.name) !== r.agent_id) return
          this.hosted.delete(r.name)
          if (registry?.get(r.name) !== undefined) registry.unregister(r.name)
        },
      },
    }
  }

  private readonly counters: MigrationStats = { started: 0, completed: 0, failed: 0, cancelled: 0, received: 0, refused: {} }
  /** Migrations this instance is running (the recovery loop leaves their logs alone). */
  private readonly inFlight = new Set<string>()
  /** name -> agent id of the live agents hosted here. */
  private readonly hosted = new Map<string, string>()

  private host(r: AgentRecord): void {
    this.hosted.set(r.name, r.agent_id)
    const reg = this.c.registry
    if (reg === undefined) return
    if (reg.get(r.name) !== undefined) reg.unregister(r.name)
    const def: AgentInit = { name: r.name, id: r.agent_id, capabilities: r.capabilities.length > 0 ? r.capabilities : ['agent'], maxConcurrent: 1, description: r.description, handle: (input, ctx) => this.run(r.agent_id, input, { signal: ctx.signal }) }
    reg.register(def)
  }

  async start(): Promise<void> {
    if (this.started) return
    this.started = true
    this.controller = new AbortController()
    this.router.handle(KLPMessageType.AGENT_MIGRATION, this.onMessage, { path: this.path })
    for await (const r of this.core.store.agents()) if (r.status === 'active' && (await this.core.store.pendingOut(r.agent_id)) === undefined) this.host(r)
    await this.recover().catch((err) => this.core.logger.warn('migration recovery failed', { error: String(err) }))
    this.stopLoop = every(this.core.clock, this.recoveryMs, () => { void this.recover().catch(() => {}) }, { unref: true })
  }

  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    this.stopLoop?.()
    this.controller.abort(new AbortError('the migration service stopped'))
    this.router.unhandle(KLPMessageType.AGENT_MIGRATION, { path: this.path })
    for (const name of [...this.hosted.keys()]) if (this.c.registry?.get(name) !== undefined) this.c.registry.unregister(name)
    this.hosted.clear()
  }

  stats(): MigrationStats {
    return { ...this.counters, refused: { ...this.counters.refused } }
  }

  async create(init: CreateAgentInit): Promise<AgentInstance> {
    return instanceOf(this.core, await createAgent(this.core, init))
  }

  list(): Promise<AgentInstance[]> {
    return listAgents(this.core)
  }

  run(agentId: string, input: KLPValue, options?: AbortOptions): Promise<KLPValue> {
    return runAgent(this.core, agentId, input, options)
  }

  private signal(options?: AbortOptions): AbortSignal {
    return options?.signal === undefined ? this.controller.signal : AbortSignal.any([this.controller.signal, options.signal])
  }

  private async ask(authority: string, to: string, data: KLPValue, timeoutMs: number, signal: AbortSignal): Promise<Record<string, KLPValue>> {
    try {
      const res = await this.router.request({ type: KLPMessageType.AGENT_MIGRATION, target: `klp://${authority}${this.path}`, data }, { timeoutMs, expectedSigner: to, signal })
      return res.payload.data as Record<string, KLPValue>
    } catch (err) {
      const e = err as { name?: string; reason?: unknown }
      if (e?.name === 'RemoteRejectedError' && typeof e.reason === 'string') throw new MigrationRefusedError(`${to.slice(0, 60)} refused: ${e.reason}`, e.reason, { cause: err })
      if (signal.aborted) throw new AbortError('the migration was cancelled', { cause: err })
      throw new MigrationFailedError(`expected an answer from ${to.slice(0, 60)}, got ${e?.name ?? 'an error'}`, { cause: err })
    }
  }

  async migrate(agentId: string, o: MigrateOptions): Promise<MigrationResult> {
    return this.out(agentId, o.type, o, false)
  }

  async restore(agentId: string, o: Omit<MigrateOptions, 'type'>): Promise<MigrationResult> {
    return this.out(agentId, 'backup', { ...o, type: 'backup' }, true)
  }

  private async out(agentId: string, type: MigrationType, o: MigrateOptions, restore: boolean): Promise<MigrationResult> {
    const authority = o.authority ?? this.router.authorityOf(o.to)
    if (authority === undefined) throw new MigrationFailedError(`expected a known authority for ${o.to.slice(0, 60)}, got none`)
    const signal = this.signal(o)
    signal.throwIfAborted()
    const mid = o.migrationId ?? newMigrationId()
    this.inFlight.add(mid)
    this.counters.started++
    try {
      const r = await this.outRun(agentId, type, o, restore, mid, authority, signal)
      this.counters.completed++
      return r
    } catch (err) {
      if ((err as { name?: string })?.name === 'AbortError') this.counters.cancelled++
      else this.counters.failed++
      throw err
    } finally {
      this.inFlight.delete(mid)
    }
  }

  private async outRun(agentId: string, type: MigrationType, o: MigrateOptions, restore: boolean, mid: string, authority: string, signal: AbortSignal): Promise<MigrationResult> {
    const rec = restore ? await this.core.store.getAgent(agentId) : await liveRecord(this.core, agentId)
    const a = rec === undefined ? undefined : await loadAgent(this.core, rec)
    if (rec !== undefined && a !== undefined) {
      const newId = type === 'copy' || type === 'clone' ? o.newId ?? `${agentId}/${type}-${mid.slice(0, 8)}` : agentId
      const epoch = type === 'copy' || type === 'clone' ? 0 : type === 'backup' && !restore ? rec.epoch : rec.epoch + 1
      await this.ask(authority, o.to, { op: 'preflight', migration_id: mid, agent_id: newId, name: o.name ?? rec.name, type, epoch, restore, size: rec.size, permissions: a.permissions as unknown as KLPValue }, this.requestTimeoutMs, signal).catch((err) => { this.observe(o.to, err); throw err })
    }
    const out = await beginOut(this.core, agentId, type, { did: o.to, authority }, { ...o, migrationId: mid, restore })
    try {
      const vote = await this.prepare(out.bytes, mid, o, authority, signal)
      if (type === 'move') {
        if (vote !== 'prepared' && vote !== 'committed') throw new MigrationFailedError(`expected the target's vote, got ${String(vote)}`)
        await commitOut(this.core, mid)
        await this.ask(authority, o.to, { op: 'commit', migration_id: mid }, this.requestTimeoutMs, this.controller.signal).then(() => doneOut(this.core, mid), () => {})
      }
    } catch (err) {
      if (type === 'move') {
        const l = await abortOut(this.core, mid)
        if (l?.phase === 'aborted') void this.ask(authority, o.to, { op: 'abort', migration_id: mid }, this.requestTimeoutMs, this.controller.signal).catch(() => {})
        else if (l?.phase === 'committed' || l?.phase === 'done') return this.result(mid, out.request, authority)
      }
      this.observe(o.to, err)
      throw err
    }
    this.c.trust?.observe?.(o.to, TrustObservation.TASK_OK)
    return this.result(mid, out.request, authority)
  }

  /** The result of a decided migration, with the instance the target now holds. */
  private result(mid: string, req: AgentMigrationRequest, authority: string): MigrationResult {
    const a = req.agent_data.agent_metadata
    const archived = req.migration_type === 'backup' && req.header.restore_epoch < 0
    const instance: AgentInstance = { agent_id: req.agent_id, name: a.name, owner: a.owner, epoch: req.header.epoch, status: archived ? 'archived' : 'active', address: archived ? '' : `klp://${authority}/agents/${a.name}`, lineage: a.lineage }
    return { migration_id: mid, agent_id: req.agent_id, status: MigrationStatus.COMPLETED, new_agent_instance: instance, migration_timestamp: this.core.clock.now(), verification_hash: req.agent_data.checksum }
  }

  private observe(peer: string, err: unknown): void {
    const e = err as { name?: string; reason?: string }
    if (e?.name === 'AbortError') return
    this.c.trust?.observe?.(peer, e?.name === 'MigrationFailedError' ? TrustObservation.TIMEOUT : TrustObservation.TASK_FAILED)
  }

  async exportAgent(agentId: string, o: ExportOptions): Promise<Uint8Array> {
    if ((o.type as string) === 'move') throw new MigrationRefusedError('expected copy, clone or backup for an export (a MOVE needs both nodes online)', 'type_not_accepted')
    const out = await beginOut(this.core, agentId, o.type, { did: o.to, authority: '' }, { ...(o.newId === undefined ? {} : { newId: o.newId }), ...(o.name === undefined ? {} : { name: o.name }), ...(o.owner === undefined ? {} : { owner: o.owner }) })
    return out.bytes
  }

  async importAgent(bytes: Uint8Array, options: AbortOptions = {}): Promise<AgentInstance> {
    options.signal?.throwIfAborted()
    const req = openRequest(bytes, { now: this.core.clock.now(), self: this.core.identity.did, limits: this.core.limits })
    if (req.migration_type === 'move') throw new MigrationRefusedError('expected an exported copy, clone or backup, got a MOVE', 'type_not_accepted')
    await receiveIn(this.core, bytes, { did: req.source_node, authority: '' })
    const r = await this.core.store.getAgent(req.agent_id)
    return instanceOf(this.core, r!)
  }

  private async prepare(bytes: Uint8Array, mid: string, o: MigrateOptions, authority: string, signal: AbortSignal): Promise<KLPValue | undefined> {
    if (bytes.length <= this.inlineMax) return (await this.ask(authority, o.to, { op: 'prepare', migration_id: mid, bundle: bytes }, this.prepareTimeoutMs, signal)).vote
    if (this.c.bulk === undefined) throw new MigrationFailedError(`expected a bulk transfer for a bundle of ${bytes.length} bytes (above ${this.inlineMax}), got none`)
    const offer = await this.c.bulk.offer(memorySource(bytes), { to: o.to, meta: { migration_id: mid }, signal, ...(o.onProgress === undefined ? {} : { onProgress: o.onProgress }) })
    try {
      const deadline = this.core.clock.now() + this.prepareTimeoutMs
      let vote = (await this.ask(authority, o.to, { op: 'prepare', migration_id: mid, offer: offer.id, size: bytes.length }, this.requestTimeoutMs, signal)).vote
      while (vote === 'receiving') {
        if (this.core.clock.now() > deadline) throw new MigrationFailedError(`expected the target's vote within ${this.prepareTimeoutMs} ms, got none`)
        await this.core.clock.sleep(this.pollMs, { signal })
        vote = (await this.ask(authority, o.to, { op: 'status', migration_id: mid }, this.requestTimeoutMs, signal)).vote
      }
      return vote
    } finally {
      offer.done.catch(() => {})
      await offer.cancel().catch(() => {})
    }
  }

  private readonly onMessage = async (message: KLPMessage, context: MessageContext): Promise<ProcessingResult> => {
    const from = context.signerDid
    try {
      const req = parseWireRequest(message.payload.data, this.core.limits.maxBundleBytes)
      if (req.op === 'preflight') {
        await preflightIn(this.core, req)
        return await this.answer(message, { status: 'ok' })
      }
      if (req.op === 'prepare') {
        if ('bundle' in req) return await this.answer(message, { status: 'ok', vote: await this.accept(req.bundle, req.migration_id, from, message.source.authority) })
        this.pull(req.migration_id, req.offer, from, message.source.authority)
        return await this.answer(message, { status: 'ok', vote: 'receiving' })
      }
      if (req.op === 'status') {
        const found = this.receiving.get(req.migration_id)
        const r = found?.from === from ? found : undefined
        if (r === undefined) {
          const l = await this.core.store.getIn(req.migration_id)
          if (l === undefined || l.source !== from || l.phase === 'aborted') throw new MigrationRefusedError(`expected a migration ${req.migration_id} received here, got none`, 'unknown_migration')
          return await this.answer(message, { status: 'ok', vote: l.phase })
        }
        if (!r.done) return await this.answer(message, { status: 'ok', vote: 'receiving' })
        this.receiving.delete(req.migration_id)
        if (r.error !== undefined) throw r.error
        return await this.answer(message, { status: 'ok', vote: r.vote! })
      }
      if (req.op === 'commit') await commitIn(this.core, req.migration_id, from)
      else if (req.op === 'abort') await abortIn(this.core, req.migration_id, from)
      else return await this.answer(message, { status: 'ok', decision: await decisionOf(this.core, req.migration_id, from) })
      return await this.answer(message, { status: 'ok' })
    } catch (err) {
      const code = reasonOf(err)
      this.counters.refused[code] = (this.counters.refused[code] ?? 0) + 1
      if ((err as { name?: string })?.name !== 'MigrationRefusedError' || code === 'not_sender') this.observeRefusal(from, err)
      const msg = code === 'internal' ? 'the migration failed' : (err as Error).message.slice(0, 300)
      if (code === 'internal') this.core.logger.warn('migration handler failed', { error: String(err) })
      return { status: ProcessingStatus.REJECTED, reason: code, response: await this.router.createResponse(message, { status: 'rejected', error: { code, message: msg } }) }
    }
  }

  /** Verifies and applies a bundle of `from` (the target's part of prepare). */
  private async accept(bytes: Uint8Array, mid: string, from: string, authority: string): Promise<string> {
    const { vote, request } = await receiveIn(this.core, bytes, { did: from, authority })
    if (request !== undefined && request.header.migration_id !== mid) throw new StaleMigrationError('expected the bundle of the migration named in the message')
    this.c.trust?.observe?.(from, TrustObservation.TASK_OK)
    this.counters.received++
    return vote
  }

  /** Pulls a bulk bundle in the background (the handler answers at once; the source polls `status`). */
  private pull(mid: string, offer: string, from: string, authority: string): void {
    if (this.receiving.has(mid)) return
    if (this.c.bulk === undefined) throw new MigrationRefusedError('expected an inline bundle, this node has no bulk transfer', 'too_large')
    if (this.receiving.size >= this.maxReceiving) throw new MigrationRefusedError(`expected at most ${this.maxReceiving} bundles at once, got one more`, 'busy')
    const entry: { from: string; vote?: string; error?: unknown; done: boolean } = { from, done: false }
    this.receiving.set(mid, entry)
    const sink = memorySink()
    const bulk = this.c.bulk
    void (async () => {
      try {
        await bulk.receive(authority, offer, { sink, maxBytes: this.core.limits.maxBundleBytes, signal: this.controller.signal })
        entry.vote = await this.accept(sink.bytes!, mid, from, authority)
      } catch (err) {
        entry.error = err
        this.observeRefusal(from, err)
      } finally {
        entry.done = true
        // forgotten if the source never asks
        this.core.clock.setTimeout(() => { if (this.receiving.get(mid) === entry) this.receiving.delete(mid) }, this.prepareTimeoutMs, { unref: true })
      }
    })()
  }

  private observeRefusal(from: string, err: unknown): void {
    const code = reasonOf(err)
    if (code === 'bad_signature') this.c.trust?.observe?.(from, TrustObservation.FORGED_MESSAGE)
    else if (code === 'invalid_bundle' || code === 'checksum_mismatch' || code === 'audit_trail' || code === 'fingerprint_mismatch' || code === 'transfer_failed') this.c.trust?.observe?.(from, TrustObservation.INVALID_MESSAGE)
  }

  private async answer(request: KLPMessage, data: KLPValue): Promise<ProcessingResult> {
    return { status: ProcessingStatus.PROCESSED, response: await this.router.createResponse(request, data) }
  }

  private async prune(): Promise<void> {
    await this.core.store.prune(this.core.clock.now() - this.retentionMs)
  }

  recover(options?: AbortOptions): Promise<void> {
    this.recovering ??= this.recoverOnce(options).finally(() => { this.recovering = undefined })
    return this.recovering
  }

  private async recoverOnce(options?: AbortOptions): Promise<void> {
    const signal = this.signal(options)
    const { commit, aborted } = await recoverOut(this.core, (mid) => this.inFlight.has(mid))
    for (const l of aborted) void this.ask(l.authority, l.target, { op: 'abort', migration_id: l.migration_id }, this.requestTimeoutMs, signal).catch(() => {})
    for (const l of commit) {
      await this.ask(l.authority, l.target, { op: 'commit', migration_id: l.migration_id }, this.requestTimeoutMs, signal).then(() => doneOut(this.core, l.migration_id), () => {})
    }
    await this.prune()
    for (const l of await pendingIn(this.core)) {
      const res = await this.ask(l.authority, l.source, { op: 'query', migration_id: l.migration_id }, this.requestTimeoutMs, signal).catch(() => undefined)
      const d = res?.decision
      if (d === 'committed') await commitIn(this.core, l.migration_id, l.source)
      else if (d === 'aborted' || d === 'unknown') await abortIn(this.core, l.migration_id, l.source)
    }
  }
}

/** The agent migration service (js-libp2p module shape). */
export function agentMigration(init: AgentMigrationInit = {}): (components: AgentMigrationComponents) => AgentMigrationService {
  return (components) => new MigrationService(init, components)
}
