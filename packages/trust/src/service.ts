/**
 * The trust service: the I/O around the sans-I/O trust engine. It signs this node's statements
 * (attestations, revocations, its own reputation deltas), verifies statements from peers, feeds
 * them to the engine, persists them in a KeyValueStore, spreads the new ones to every neighbour
 * (flooding: a statement already held is never passed on again, so a flood ends) and answers
 * queries for the statements it holds.
 *
 * Written against the interface's `MessageRouter` only, with time and timers from the injected
 * `Clock`, so it runs on any router, over any transport and in the simulator's virtual time.
 *
 * Messages (payloads in protocol.ts), on path `/trust`:
 * - TRUST_ATTESTATION `{ op: 'push', statements }`: attestations and revocations, one-way;
 * - REPUTATION_DELTA `{ op: 'push', statements }`: reputation deltas, one-way;
 * - either type `{ op: 'query', ... }` as a request, answered `{ op: 'answer', statements }`.
 */
import {
  AbortError, InvalidParametersError, KLPMessageType, MessagePriority, ProcessingStatus, UnreachableError, describeValue, didOfKeyId, silentLogger, systemClock, throwIfAborted,
} from '@kos-mesh/interface'
import type {
  AbortOptions, Clock, KLPMessage, Logger, MessageHandler, MessageRouter, PeerInfo, ProcessingResult, Signer, TimerHandle,
} from '@kos-mesh/interface'
import { setMaxListeners } from 'node:events'
import { DAY_MS, attestationBody, intIn, isDid, revocationBody } from './bodies.js'
import { InvalidTrustMessageError, RevokedDidError } from './errors.js'
import { StatementSpreader } from './spread.js'
import { DEFAULT_STORE_PREFIX, PersistedStatements, statementStore } from './persist.js'
import {
  DEFAULT_TRUST_PROTOCOL_LIMITS, INVALID_STATEMENTS, INVALID_TRUST_MESSAGE, TRUST_PATH, batchStatements, parseTrustPayload, trustPayloadValue, type TrustProtocolLimits,
} from './protocol.js'
import { signStatement } from './statement.js'
import { StatementIntake, errName } from './intake.js'
import { NeighbourSync } from './neighbour-sync.js'
import type {
  AddOutcome, AttestInit, AttestationBody, IngestResult, RevocationBody, RevokeInit, SignedStatement, StatementBody, StatementLimits, StatementQuery,
  TrustGraphEngine, TrustService, TrustServiceComponents, TrustServiceCounters, TrustServiceInit,
} from './types.js'

/** The service's counters: the interface's `TrustServiceCounters` and a few more. */
export interface TrustServiceMetrics extends TrustServiceCounters {
  /** Trust messages refused whole (malformed, over the bounds): reason `invalid_trust_message`. */
  invalidMessages: number
  /** Queries answered. */
  queriesServed: number
  /** Statements loaded from the store at `start()`. */
  loaded: number
  /** Persisted entries skipped at `start()` (corrupt, forged, expired, refused) and deleted. */
  loadSkipped: number
  /** Store writes or deletes that failed (the statement stays in memory). */
  persistFailures: number
  /** Messages that could not be handed to a neighbour. */
  sendFailures: number
  /** Syncs with new neighbours started (revocations and own attestations pushed). */
  syncs: number
}

function quiet(signal: AbortSignal): AbortSignal {
  setMaxListeners(Infinity, signal)
  return signal
}

class DefaultTrustService implements TrustService {
  readonly engine: TrustGraphEngine
  readonly counters: TrustServiceMetrics = {
    received: 0,
    added: 0,
    duplicates: 0,
    rejected: {},
    rateLimited: 0,
    sent: 0,
    published: 0,
    invalidMessages: 0,
    queriesServed: 0,
    loaded: 0,
    loadSkipped: 0,
    persistFailures: 0,
    sendFailures: 0,
    syncs: 0,
  }

  readonly #router: MessageRouter
  readonly #signer: Signer
  readonly #limits: StatementLimits | undefined
  readonly #persisted: PersistedStatements
  readonly #intake: StatementIntake
  readonly #clock: Clock
  readonly #log: Logger
  readonly #self: string
  readonly #flood: boolean
  readonly #publishMs: number
  readonly #neighbours: NeighbourSync
  readonly #queryTimeoutMs: number
  /** Bounds of what this node accepts from peers. */
  readonly #inLimits: TrustProtocolLimits = DEFAULT_TRUST_PROTOCOL_LIMITS
  /** Bounds of what this node sends (at most `maxStatementsPerMessage` per message). */
  readonly #spreader: StatementSpreader
  readonly #mode: 'push' | 'broadcast'
  #started = false
  #stop = new AbortController()
  #timer: TimerHandle | undefined

  constructor(init: TrustServiceInit, components: TrustServiceComponents) {
    if (init === null || typeof init !== 'object') throw new InvalidParametersError(`init: expected an object, got ${init === null ? 'null' : typeof init}`)
    const c = components
    if (c?.router === undefined) throw new InvalidParametersError('router: expected a MessageRouter, got undefined')
    if (c.engine === undefined) throw new InvalidParametersError('engine: expected a TrustGraphEngine, got undefined')
    if (c.signer === undefined) throw new InvalidParametersError('signer: expected a Signer, got undefined')
    if (c.verifier === undefined) throw new InvalidParametersError('verifier: expected a SignatureVerifier, got undefined')
    this.#self = didOfKeyId(c.signer.keyId)
    if (this.#self !== c.router.did) {
      throw new InvalidParametersError(`signer: expected a key of the router's DID ${c.router.did.slice(0, 80)}, got ${c.signer.keyId.slice(0, 80)}`)
    }
    this.engine = c.engine
    this.#router = c.router
    this.#signer = c.signer
    this.#limits = init.limits
    this.#clock = c.clock ?? systemClock
    this.#log = c.logger ?? silentLogger
    this.#persisted = new PersistedStatements(c.store === undefined ? undefined : statementStore(c.store, init.storePrefix ?? DEFAULT_STORE_PREFIX), this.counters, this.#log)
    this.#intake = new StatementIntake(this.engine, c.verifier, this.#limits, this.#clock, this.counters, this.#persisted, this.#log)
    this.#flood = init.flood ?? true
    this.#mode = init.spread ?? 'push'
    if (this.#mode !== 'push' && this.#mode !== 'broadcast') throw new InvalidParametersError(`spread: expected 'push' or 'broadcast', got ${describeValue(this.#mode)}`)
    if (typeof this.#flood !== 'boolean') throw new InvalidParametersError(`flood: expected a boolean, got ${typeof this.#flood}`)
    const perMessage = intIn('maxStatementsPerMessage', init.maxStatementsPerMessage, DEFAULT_TRUST_PROTOCOL_LIMITS.maxStatementsPerMessage, 1, DEFAULT_TRUST_PROTOCOL_LIMITS.maxStatementsPerMessage)
    this.#spreader = new StatementSpreader(this.#router, this.#self, { ...DEFAULT_TRUST_PROTOCOL_LIMITS, maxStatementsPerMessage: perMessage }, this.counters, this.#log)
    this.#publishMs = intIn('publishIntervalMs', init.publishIntervalMs, 5 * 60_000, 0, 30 * DAY_MS)
    this.#neighbours = new NeighbourSync(this.engine, this.#spreader, this.#self, intIn('syncOnConnect', init.syncOnConnect, 1024, 0, 1_000_000), this.counters, this.#log)
    this.#queryTimeoutMs = intIn('queryTimeoutMs', init.queryTimeoutMs, 10_000, 1, 3_600_000)
  }

  isStarted(): boolean {
    return this.#started
  }

  // ---------------------------------------------------------------- lifecycle

  async start(): Promise<void> {
    if (this.#started) return
    this.#stop = new AbortController()
    quiet(this.#stop.signal)
    await this.#persisted.load(this.engine, (bytes, signal) => this.#intake.verify(bytes, signal), this.#stop.signal)
    this.#router.handle(KLPMessageType.TRUST_ATTESTATION, this.#onMessage, { path: TRUST_PATH })
    try {
      this.#router.handle(KLPMessageType.REPUTATION_DELTA, this.#onMessage, { path: TRUST_PATH })
    } catch (err) {
      this.#router.unhandle(KLPMessageType.TRUST_ATTESTATION, { path: TRUST_PATH }) // all or nothing
      throw err
    }
    if (this.#mode === 'broadcast') {
      try {
        this.#router.handle(KLPMessageType.BROADCAST_ANNOUNCE, this.#onBroadcast, { path: TRUST_PATH })
      } catch (err) {
        this.#router.unhandle(KLPMessageType.TRUST_ATTESTATION, { path: TRUST_PATH })
        this.#router.unhandle(KLPMessageType.REPUTATION_DELTA, { path: TRUST_PATH })
        throw err
      }
    }
    this.#router.addEventListener('peer:identify', this.#onIdentify)
    this.#started = true
    // neighbours identified before this service started
    for (const p of this.#spreader.neighbours(undefined)) this.#identified(p)
    this.#schedule()
  }

  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    this.#stop.abort(new AbortError('the trust service stopped'))
    this.#clock.clearTimeout(this.#timer)
    this.#timer = undefined
    this.#router.removeEventListener('peer:identify', this.#onIdentify)
    this.#router.unhandle(KLPMessageType.TRUST_ATTESTATION, { path: TRUST_PATH })
    this.#router.unhandle(KLPMessageType.REPUTATION_DELTA, { path: TRUST_PATH })
    if (this.#mode === 'broadcast') this.#router.unhandle(KLPMessageType.BROADCAST_ANNOUNCE, { path: TRUST_PATH })
    this.#neighbours.clear()
  }

  #schedule(): void {
    if (this.#publishMs === 0) return
    const tick = (): void => {
      if (!this.#started) return
      void this.publishDeltas()
        .catch((err: unknown) => this.#log.debug('publishing deltas failed', { err: errName(err) }))
        .then(() => this.#persisted.sweep(this.engine))
        .catch((err: unknown) => this.#log.debug('sweeping the store failed', { err: errName(err) }))
        .finally(() => {
          if (this.#started) this.#timer = this.#clock.setTimeout(tick, this.#publishMs, { unref: true })
        })
    }
    this.#timer = this.#clock.setTimeout(tick, this.#publishMs, { unref: true })
  }

  #signal(options: AbortOptions | undefined, extra?: AbortSignal): AbortSignal {
    const list = [this.#stop.signal, ...(options?.signal === undefined ? [] : [options.signal]), ...(extra === undefined ? [] : [extra])]
    return list.length === 1 ? this.#stop.signal : quiet(AbortSignal.any(list))
  }

  // ---------------------------------------------------------------- ingest and spread

  async ingest(statements: readonly Uint8Array[], options: AbortOptions & { fromPeer?: string } = {}): Promise<IngestResult> {
    if (!Array.isArray(statements)) throw new InvalidParametersError(`statements: expected an array of bytes, got ${typeof statements}`)
    for (const s of statements) if (!(s instanceof Uint8Array)) throw new InvalidParametersError(`statements: expected an array of bytes, got an element of type ${typeof s}`)
    const signal = this.#signal(options)
    const { result, fresh } = await this.#intake.take(statements, options.fromPeer, undefined, signal)
    await this.#spreadIfFlooding(fresh, options.fromPeer, signal)
    return result
  }

  async #spreadIfFlooding(fresh: readonly SignedStatement[], fromPeer: string | undefined, signal: AbortSignal): Promise<void> {
    if (!this.#flood || fresh.length === 0 || !this.#started) return
    if (this.#mode === 'broadcast') await this.#spreader.broadcast(fresh, signal)
    else await this.#spreader.spread(fresh, fromPeer, signal)
  }

  /** This node's own new statements go out whatever `flood` says: to the neighbours, or as a broadcast. */
  async #spreadOwn(statements: readonly SignedStatement[], signal: AbortSignal): Promise<void> {
    if (this.#mode === 'broadcast') await this.#spreader.broadcast(statements, signal)
    else await this.#spreader.spread(statements, undefined, signal)
  }

  /** Statements that came in a broadcast: taken, never re-sent (the router relays the broadcast itself). */
  readonly #onBroadcast: MessageHandler = async (msg: KLPMessage, ctx): Promise<ProcessingResult> => {
    let payload
    try {
      payload = parseTrustPayload(msg.payload.data, this.#inLimits)
      if (payload.op !== 'push') throw new InvalidTrustMessageError(`expected a push in a broadcast, got ${payload.op}`)
    } catch (err) {
      this.counters.invalidMessages++
      this.#log.debug('invalid trust broadcast', { from: ctx.fromPeer, err: errName(err) })
      return { status: ProcessingStatus.REJECTED, reason: INVALID_TRUST_MESSAGE }
    }
    try {
      // the broadcast's signer vouches for nothing: every statement is checked on its own; a forged
      // one is held against the broadcast's signer, who made the message
      const { result } = await this.#intake.take(payload.statements, ctx.signerDid, undefined, this.#signal(undefined, ctx.signal))
      if (result.rejected > 0 && result.added + result.duplicates + result.rateLimited === 0) return { status: ProcessingStatus.REJECTED, reason: INVALID_STATEMENTS }
      return { status: ProcessingStatus.PROCESSED }
    } catch (err) {
      this.#log.debug('trust broadcast not processed', { from: ctx.fromPeer, err: errName(err) })
      return { status: ProcessingStatus.REJECTED, reason: err instanceof Error && (err.name === 'AbortError' || this.#stop.signal.aborted) ? 'shutting_down' : 'trust_service_error' }
    }
  }

  // ---------------------------------------------------------------- inbound

  readonly #onMessage: MessageHandler = async (msg: KLPMessage, ctx): Promise<ProcessingResult> => {
    let payload
    try {
      payload = parseTrustPayload(msg.payload.data, this.#inLimits)
    } catch (err) {
      this.counters.invalidMessages++
      this.#intake.observe(ctx.fromPeer, 'invalid_message')
      this.#log.debug('invalid trust message', { from: ctx.fromPeer, err: errName(err) })
      return { status: ProcessingStatus.REJECTED, reason: INVALID_TRUST_MESSAGE }
    }
    try {
      if (payload.op === 'query') {
        const answer = this.#answer(payload.query)
        this.counters.queriesServed++
        return { status: ProcessingStatus.PROCESSED, response: await this.#router.createResponse(msg, trustPayloadValue({ op: 'answer', statements: answer }, this.#inLimits)) }
      }
      // a push (or a late answer: worth the same)
      const signal = this.#signal(undefined, ctx.signal)
      const { result, fresh } = await this.#intake.take(payload.statements, ctx.fromPeer, msg.type, signal)
      await this.#spreadIfFlooding(fresh, ctx.fromPeer, signal)
      if (result.rejected > 0 && result.added + result.duplicates + result.rateLimited === 0) return { status: ProcessingStatus.REJECTED, reason: INVALID_STATEMENTS }
      return { status: ProcessingStatus.PROCESSED }
    } catch (err) {
      // never throw out of a handler: aborted (stop, router timeout) or a bug, logged
      this.#log.debug('trust message not processed', { from: ctx.fromPeer, err: errName(err) })
      return { status: ProcessingStatus.REJECTED, reason: err instanceof Error && (err.name === 'AbortError' || this.#stop.signal.aborted) ? 'shutting_down' : 'trust_service_error' }
    }
  }

  /** The statements matching a query, bounded by count and bytes. */
  #answer(query: StatementQuery): Uint8Array[] {
    const max = this.#inLimits.maxStatementsPerMessage
    const list = this.engine.statements({ ...query, limit: Math.min(query.limit ?? max, max) })
    const first = batchStatements(list.map((s) => s.bytes), this.#inLimits)[0]
    return first ?? []
  }

  readonly #onIdentify = (evt: CustomEvent<PeerInfo>): void => {
    this.#identified(evt.detail)
  }

  #identified(peer: PeerInfo): void {
    if (this.#started) this.#neighbours.identified(peer, this.#stop.signal)
  }

  // ---------------------------------------------------------------- outbound

  async fetch(peer: string, query: StatementQuery, options: AbortOptions = {}): Promise<IngestResult> {
    if (!isDid(peer)) throw new InvalidParametersError(`peer: expected a DID, got ${describeValue(peer)}`)
    if (query === null || typeof query !== 'object') throw new InvalidParametersError(`query: expected a StatementQuery, got ${query === null ? 'null' : typeof query}`)
    const max = this.#inLimits.maxStatementsPerMessage
    const q: StatementQuery = { ...query, limit: Math.min(query.limit ?? max, max) }
    let data
    try {
      data = trustPayloadValue({ op: 'query', query: q }, this.#inLimits)
    } catch (err) {
      throw new InvalidParametersError(`query: ${(err as Error).message}`, { cause: err })
    }
    const authority = this.#router.authorityOf(peer)
    if (authority === undefined) throw new UnreachableError(`expected the authority of ${peer.slice(0, 80)} to be known, got none`)
    const signal = this.#signal(options)
    const type = q.kind === 'delta' ? KLPMessageType.REPUTATION_DELTA : KLPMessageType.TRUST_ATTESTATION
    const response = await this.#router.request(
      { type, target: `klp://${authority}${TRUST_PATH}`, sourcePath: TRUST_PATH, priority: MessagePriority.LOW, data },
      { signal, timeoutMs: this.#queryTimeoutMs, expectedSigner: peer },
    )
    const payload = parseTrustPayload(response.payload.data, this.#inLimits)
    if (payload.op !== 'answer') throw new InvalidTrustMessageError(`expected op answer, got ${payload.op}`)
    const { result, fresh } = await this.#intake.take(payload.statements, peer, undefined, signal)
    await this.#spreadIfFlooding(fresh, peer, signal)
    return result
  }

  async #publish<B extends StatementBody>(body: B, signal: AbortSignal): Promise<SignedStatement<B>> {
    const s = (await signStatement(body, this.#signer, this.#limits === undefined ? {} : { limits: this.#limits })) as SignedStatement<B>
    throwIfAborted(signal)
    const outcome = this.engine.add(s)
    if (outcome === 'revoked_issuer') throw new RevokedDidError(`expected ${this.#self.slice(0, 80)} not to be revoked, got revoked`)
    if (outcome === 'added' || outcome === 'superseded') {
      this.counters.published++
      await this.#persisted.persist(s, signal)
      if (this.#started) await this.#spreadOwn([s], signal)
    } else {
      this.#log.info('the engine did not take an own statement', { outcome, kind: body.kind })
    }
    return s
  }

  #assertNotRevoked(): void {
    if (this.engine.isRevoked(this.#self)) throw new RevokedDidError(`expected this node's DID ${this.#self.slice(0, 80)} not to be revoked, got revoked`)
  }

  async attest(init: AttestInit, options: AbortOptions = {}): Promise<SignedStatement<AttestationBody>> {
    const body = attestationBody(init, this.#self, Math.floor(this.#clock.now()))
    this.#assertNotRevoked()
    return await this.#publish(body, this.#signal(options))
  }

  async revoke(init: RevokeInit, options: AbortOptions = {}): Promise<SignedStatement<RevocationBody>> {
    const body = revocationBody(init, this.#self, Math.floor(this.#clock.now()))
    this.#assertNotRevoked()
    return await this.#publish(body, this.#signal(options))
  }

  async publishDeltas(options: AbortOptions = {}): Promise<number> {
    if (this.engine.isRevoked(this.#self)) return 0
    const signal = this.#signal(options)
    const bodies = this.engine.takeOwnDeltas()
    const signed: SignedStatement[] = []
    for (const body of bodies) {
      throwIfAborted(signal)
      const s = await signStatement(body, this.#signer, this.#limits === undefined ? {} : { limits: this.#limits })
      let outcome: AddOutcome
      try {
        outcome = this.engine.add(s)
      } catch (err) {
        this.#log.warn('the engine refused an own delta', { err: errName(err) })
        continue
      }
      if (outcome !== 'added' && outcome !== 'superseded') continue
      await this.#persisted.persist(s, signal)
      signed.push(s)
    }
    this.counters.published += signed.length
    if (this.#started && signed.length > 0) await this.#spreadOwn(signed, signal)
    return signed.length
  }
}

/**
 * js-libp2p style factory: `trustService(init)(components)`. Nothing happens before `start()`,
 * which loads the persisted statements, registers the handlers on `/trust` and starts the
 * publish timer.
 */
export function trustService(init: TrustServiceInit = {}): (components: TrustServiceComponents) => TrustService {
  return (components) => new DefaultTrustService(init, components)
}
