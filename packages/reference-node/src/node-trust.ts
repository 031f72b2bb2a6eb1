/**
 * The node's trust-facing operations: the operator's decisions (`trust`, `untrust`), the signed
 * statements (`attest`, `revoke`, `statements`, `reputation`) of the trust runtime, the subjects
 * they name (a DID, or a `klp://` authority pinned to one), and the authority pins that follow
 * trust (restored from the store, firm once trusted).
 */
import { InvalidParametersError, type AbortOptions, type Logger, type PeerInfo } from '@kos-mesh/interface'
import { parseAddress } from '@kos-mesh/klp-codec'
import type { Router } from '@kos-mesh/klp-router'
import type { AttestInit, AttestationBody, ReputationReport, RevocationBody, SignedStatement, StatementQuery } from '@kos-mesh/trust'
import { NodeNotStartedError, UnpinnedAuthorityError } from './errors.js'
import { checkDid } from './did.js'
import type { NodeStore } from './storage/memory.js'
import { TrustRuntime, type PersistentTrustStore, type TrustListEntry, type TrustRuntimeInit } from './trust.js'
import { loadPins, type PinChange, type PinValue, type PinWriter } from './pins.js'
import type { EventLog } from './events.js'
import type { NodeInit, NodeRevokeInit } from './node-types.js'
import type { UndoSteps } from './node-services.js'

/** The router's default `maxPinnedAuthorities`. */
const DEFAULT_MAX_PINS = 65_536

/** What the trust operations read of their node. */
export interface NodeTrustContext {
  trustStore: PersistentTrustStore
  storage: NodeStore
  events: EventLog
  log: Logger
  /** The router of a started node (throws NodeNotStartedError otherwise). */
  router(): Router
}

export class NodeTrust {
  /** The runtime of the current start. */
  private current: TrustRuntime | undefined

  constructor(private readonly c: NodeTrustContext) {}

  /** The trust runtime while started (for status and metrics), else undefined. */
  get runtimeOrUndefined(): TrustRuntime | undefined {
    return this.current
  }

  /** The trust runtime of a started node (throws NodeNotStartedError otherwise). */
  runtime(): TrustRuntime {
    this.c.router()
    if (this.current === undefined) throw new NodeNotStartedError('expected a started node, got a stopped one')
    return this.current
  }

  /** Creates the runtime of this start (its engine decides for the router); stopped by `undo`. */
  createRuntime(init: TrustRuntimeInit, undo: UndoSteps): TrustRuntime {
    const trust = new TrustRuntime(init)
    this.current = trust
    // stopped after the router (undo runs in reverse), before the store
    undo.push(async () => {
      await trust.stop()
      this.current = undefined
    })
    return trust
  }

  /** True when the operator trusts `did` (a trust level above 0). */
  isTrusted(did: string): boolean {
    return (this.c.trustStore.peerScore(did) ?? 0) > 0
  }

  /** Makes the pin of a trusted DID firm (never evicted), when it is pinned. */
  confirmIfTrusted(router: Router, did: string, authority: string | undefined = router.routingTable.authorityOf(did)): void {
    if (authority === undefined || authority === router.authority || !this.isTrusted(did)) return
    router.routingTable.confirmPin(authority, did)
  }

  /**
   * Stored pins with their firmness, merged with the configured ones (`router.pinnedAuthorities`
   * win). Pins of DIDs the operator trusts come back firm. Corrupt entries, this node's own
   * authority or DID, and pins contradicting a configured one are deleted from the store.
   */
  async restorePins(init: Pick<NodeInit, 'router'>, authority: string, did: string, writer: PinWriter, options: AbortOptions): Promise<Record<string, PinValue>> {
    const r = await loadPins(this.c.storage, {
      authority,
      did,
      configured: { ...init.router?.pinnedAuthorities },
      maxPins: init.router?.maxPinnedAuthorities ?? DEFAULT_MAX_PINS,
      trusted: (d) => this.isTrusted(d),
      writer,
    }, options)
    if (r.restored > 0 || r.dropped > 0) {
      this.c.log.info('authority pins restored', { restored: r.restored, firm: r.firm, migrated: r.migrated, confirmed: r.confirmed, dropped: r.dropped })
    }
    return r.pinned
  }

  /**
   * Listens to the router's pin changes (each persisted through `pins`, when given) and
   * identifications (a DID the operator trusts gets its pin firm as soon as it identifies);
   * resolves with the function that stops listening.
   */
  listen(router: Router, pins: PinWriter | undefined): () => void {
    // every pin change is one store write (evicted: one delete), in order
    const onPinChange = (e: CustomEvent<PinChange>): void => pins?.change(e.detail)
    const onIdentify = (e: CustomEvent<PeerInfo>): void => this.confirmIfTrusted(router, e.detail.did, e.detail.authority)
    if (pins !== undefined) router.addEventListener('pin:change', onPinChange)
    router.addEventListener('peer:identify', onIdentify)
    return () => {
      router.removeEventListener('pin:change', onPinChange)
      router.removeEventListener('peer:identify', onIdentify)
    }
  }

  async trust(subject: string, level: number, options: AbortOptions & { validator?: boolean } = {}): Promise<TrustListEntry> {
    const router = this.c.router()
    if (typeof subject !== 'string') throw new InvalidParametersError(`expected a DID or klp:// address, got ${typeof subject}`)
    if (typeof level !== 'number' || !Number.isInteger(level) || level < 0 || level > 10) throw new InvalidParametersError(`expected a trust level, an integer in 0..10, got ${String(level)}`)
    const { did, authority } = this.resolveSubject(router, subject)
    const store = this.c.trustStore
    const previous = store.peerScore(did) ?? null
    const entry = await store.trust(did, level, subject, options)
    // the operator relies on this DID now: its pin (if any) is never evicted
    this.confirmIfTrusted(router, did, authority)
    this.c.events.emit('trust', 'info', 'trust changed', { did, trust_level: level, previous, subject, ...(entry.validator ? { validator: true } : {}) })
    return entry
  }

  async untrust(subject: string, options: AbortOptions = {}): Promise<{ did: string; removed: boolean }> {
    const router = this.c.router()
    const { did } = this.resolveSubject(router, subject)
    const store = this.c.trustStore
    const previous = store.peerScore(did)
    const removed = store.list().some((e) => e.did === did)
    await store.untrust(did, options)
    if (removed) this.c.events.emit('trust', 'info', 'trust removed', { did, previous: previous ?? null, subject })
    return { did, removed }
  }

  async attest(init: AttestInit, options: AbortOptions = {}): Promise<SignedStatement<AttestationBody>> {
    if (init === null || typeof init !== 'object') throw new InvalidParametersError(`expected an AttestInit, got ${init === null ? 'null' : typeof init}`)
    const { did } = this.resolveSubject(this.c.router(), init.subject)
    const s = await this.runtime().attest({ ...init, subject: did }, options)
    const b = s.body
    this.c.events.emit('trust', 'info', 'attestation signed', { subject: did, claim: b.claim, ...(b.level === undefined ? {} : { level: b.level }), ...(b.value === undefined ? {} : { value: b.value }), context: b.context, statement: s.id })
    return s
  }

  async revoke(init: NodeRevokeInit, options: AbortOptions = {}): Promise<SignedStatement<RevocationBody>> {
    if (init === null || typeof init !== 'object') throw new InvalidParametersError(`expected a NodeRevokeInit, got ${init === null ? 'null' : typeof init}`)
    const subject = init.subject === undefined ? undefined : this.resolveSubject(this.c.router(), init.subject).did
    const s = await this.runtime().revoke({ ...init, ...(subject === undefined ? {} : { subject }) }, options)
    const b = s.body
    this.c.events.emit('trust', b.scope === 'key' ? 'warn' : 'info', 'revocation signed', { subject: b.subject, scope: b.scope, ...(b.statement === undefined ? {} : { revoked: b.statement }), statement: s.id })
    return s
  }

  reputation(subject: string): ReputationReport {
    const { did } = this.resolveSubject(this.c.router(), subject)
    return this.runtime().engine.explain(did)
  }

  statements(query: StatementQuery = {}): SignedStatement[] {
    return this.runtime().statements(query)
  }

  /** The DID of a `trust` subject: a valid DID, or the DID a pinned klp:// authority is bound to. */
  private resolveSubject(router: Router, subject: string): { did: string; authority?: string } {
    if (typeof subject !== 'string') throw new InvalidParametersError(`expected a DID or klp:// address, got ${typeof subject}`)
    if (subject.startsWith('did:')) {
      checkDid(subject)
      return { did: subject }
    }
    if (!subject.startsWith('klp://')) throw new InvalidParametersError(`expected a DID or klp:// address, got ${JSON.stringify(subject.slice(0, 80))}`)
    const { authority } = parseAddress(subject)
    // only an authenticated binding: the pin of a signed hello on an authenticated connection
    const did = router.routingTable.didOf(authority)
    if (did === undefined) throw new UnpinnedAuthorityError(authority)
    return { did, authority }
  }
}
