/**
 * The intake of statements from outside (peers, files, the CLI): cheap checks before the
 * signature, verification, the engine's verdict, persistence of the new ones, and the counters and
 * neighbour observations that go with them.
 */
import { KLPMessageType, throwIfAborted, type Clock, type Logger, type SignatureVerifier, type TrustObservation } from '@kos-mesh/interface'
import { InvalidTrustMessageError } from './errors.js'
import type { PersistedStatements } from './persist.js'
import { decodeStatement, verifyStatement } from './statement.js'
import type { AddOutcome, IngestResult, SignedStatement, StatementLimits, TrustGraphEngine, TrustServiceCounters } from './types.js'

/** What the intake counts (a view of the service's counters). */
export type IntakeCounters = Pick<TrustServiceCounters, 'received' | 'added' | 'duplicates' | 'rejected' | 'rateLimited'>

/** The name of an error (or the type of a thrown non-error), for logs and counters. */
export function errName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err
}

/** Which statements' failures say something about the neighbour that passed them on. */
function observationOf(err: unknown): TrustObservation | undefined {
  switch (errName(err)) {
    case 'InvalidStatementSignatureError':
      return 'forged_message'
    case 'InvalidStatementError':
    case 'StatementTooLargeError':
      return 'invalid_message'
    default:
      return undefined // expired, or refused by the engine: an honest neighbour may pass those on
  }
}

/** Verifies statements and feeds them to the engine, persisting the ones it takes. */
export class StatementIntake {
  constructor(
    private readonly engine: TrustGraphEngine,
    private readonly verifier: SignatureVerifier,
    private readonly limits: StatementLimits | undefined,
    private readonly clock: Clock,
    private readonly counters: IntakeCounters,
    private readonly persisted: PersistedStatements,
    private readonly log: Logger,
  ) {}

  verify(bytes: Uint8Array, signal: AbortSignal): Promise<SignedStatement> {
    return verifyStatement(bytes, this.verifier, { now: this.clock.now(), signal, ...(this.limits === undefined ? {} : { limits: this.limits }) })
  }

  #reject(key: string): void {
    this.counters.rejected[key] = (this.counters.rejected[key] ?? 0) + 1
  }

  /**
   * Verifies statements one after the other (abortable), adds them to the engine, persists the
   * new ones. `type`: the message type they came in (a statement of another kind is refused).
   */
  async take(list: readonly Uint8Array[], fromPeer: string | undefined, type: KLPMessageType | undefined, signal: AbortSignal): Promise<{ result: IngestResult; fresh: SignedStatement[] }> {
    const result: IngestResult = { added: 0, duplicates: 0, rejected: 0, rateLimited: 0 }
    const fresh: SignedStatement[] = []
    for (const bytes of list) {
      throwIfAborted(signal)
      this.counters.received++
      // a statement already held is not verified again (flooding brings each one from every side),
      // nor one its issuer's rate would refuse anyway (a flood must not buy signature checks)
      const pre = this.#precheck(bytes)
      if (pre === 'held') {
        result.duplicates++
        this.counters.duplicates++
        continue
      }
      if (pre === 'rate_limited') {
        result.rateLimited++
        this.counters.rateLimited++
        continue
      }
      let s: SignedStatement
      try {
        s = await this.verify(bytes, signal)
        if (type !== undefined && (s.body.kind === 'delta') !== (type === KLPMessageType.REPUTATION_DELTA)) {
          throw new InvalidTrustMessageError(`expected ${type === KLPMessageType.REPUTATION_DELTA ? 'a delta' : 'an attestation or a revocation'} in ${type}, got a ${s.body.kind}`)
        }
      } catch (err) {
        if (signal.aborted) throw err
        result.rejected++
        this.#reject(errName(err))
        const obs = fromPeer === undefined ? undefined : observationOf(err)
        if (obs !== undefined && fromPeer !== undefined) this.observe(fromPeer, obs)
        this.log.debug('rejected a trust statement', { from: fromPeer, err: errName(err) })
        continue
      }
      let outcome: AddOutcome
      try {
        outcome = this.engine.add(s)
      } catch (err) {
        result.rejected++
        this.#reject(errName(err))
        continue
      }
      switch (outcome) {
        case 'added':
        case 'superseded':
          result.added++
          this.counters.added++
          fresh.push(s)
          await this.persisted.persist(s, signal)
          break
        case 'duplicate':
          result.duplicates++
          this.counters.duplicates++
          break
        case 'rate_limited':
          result.rateLimited++
          this.counters.rateLimited++
          break
        default:
          // stale, revoked_issuer, expired: counted by the engine's outcome
          result.rejected++
          this.#reject(outcome)
      }
    }
    return { result, fresh }
  }

  /** Cheap checks before the signature: held already, or over its issuer's rate (`undefined`: go on). */
  #precheck(bytes: Uint8Array): 'held' | 'rate_limited' | undefined {
    let d
    try {
      d = decodeStatement(bytes, this.limits)
    } catch {
      return undefined // malformed: verifyStatement says why
    }
    if (this.engine.has(d.id)) return 'held'
    return this.engine.admits(d.body.issuer) ? undefined : 'rate_limited'
  }

  observe(did: string, outcome: TrustObservation): void {
    try {
      this.engine.observe(did, outcome)
    } catch {
      // observe must never throw; an engine that does is not this service's failure
    }
  }
}
