/**
 * Helpers for the engine's tests: a manual clock, and statements built as SignedStatement objects
 * with made-up ids and empty bytes (signatures are not the engine's concern).
 */
import { mulberry32, type AbortOptions, type Clock, type TimerHandle } from '@kos-mesh/interface'
import { createTrustEngine } from '../src/engine/index.js'
import type { AttestationBody, ClaimType, DeltaBody, Observation, RevocationBody, RevocationScope, SignedStatement, TrustEngineInit, TrustGraphEngine } from '../src/types.js'

export const DAY = 86_400_000
export const HOUR = 3_600_000
export const T0 = Date.UTC(2030, 0, 1)

/** A clock that moves only when told to. Timers run when `advance` passes them. */
export class ManualClock implements Clock {
  private timers: Array<{ at: number; fn: () => void; handle: TimerHandle }> = []
  constructor(public t = T0) {}
  now(): number {
    return this.t
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle: TimerHandle = { at: this.t + Math.max(0, ms) }
    this.timers.push({ at: handle.at, fn, handle })
    return handle
  }
  clearTimeout(handle: TimerHandle | undefined): void {
    this.timers = this.timers.filter((t) => t.handle !== handle)
  }
  sleep(ms: number, _options?: AbortOptions): Promise<void> {
    return new Promise((resolve) => this.setTimeout(resolve, ms))
  }
  advance(ms: number): void {
    this.t += ms
    const due = this.timers.filter((t) => t.at <= this.t).sort((a, b) => a.at - b.at)
    this.timers = this.timers.filter((t) => t.at > this.t)
    for (const t of due) t.fn()
  }
}

export const did = (name: string): string => `did:test:${name}`
export const SELF = did('self')

let seq = 0
const nextId = (): string => `st-${++seq}`

function signed<B extends AttestationBody | DeltaBody | RevocationBody>(body: B, id?: string): SignedStatement<B> {
  return { id: id ?? nextId(), body, bytes: new Uint8Array(0) }
}

export interface AttOptions {
  claim?: ClaimType
  value?: string
  context?: string
  issuedAt?: number
  expiresAt?: number
  id?: string
}

/** An attestation `issuer -> subject` (default: `trust`, context `*`, issued at T0, valid 10 years). */
export function att(issuer: string, subject: string, level: number | undefined, o: AttOptions = {}): SignedStatement<AttestationBody> {
  const claim = o.claim ?? 'trust'
  const body: AttestationBody = {
    v: 1,
    kind: 'attestation',
    issuer,
    subject,
    issued_at: o.issuedAt ?? T0,
    claim,
    context: o.context ?? '*',
    expires_at: o.expiresAt ?? (o.issuedAt ?? T0) + 3650 * DAY,
  }
  if (claim === 'trust' || claim === 'endorse') body.level = level ?? 7
  if (o.value !== undefined) body.value = o.value
  return signed(body, o.id)
}

export interface DeltaOptions {
  window?: number
  windowMs?: number
  issuedAt?: number
  expiresAt?: number
  id?: string
}

/** A delta `issuer -> subject` for the window containing T0 (1 h windows). */
export function delta(issuer: string, subject: string, counts: Partial<Record<Observation, number>>, o: DeltaOptions = {}): SignedStatement<DeltaBody> {
  const windowMs = o.windowMs ?? HOUR
  const window = o.window ?? Math.floor(T0 / windowMs) * windowMs
  return signed(
    {
      v: 1,
      kind: 'delta',
      issuer,
      subject,
      issued_at: o.issuedAt ?? window + windowMs,
      window,
      window_ms: windowMs,
      counts,
      expires_at: o.expiresAt ?? window + windowMs + 4 * 7 * DAY,
    },
    o.id,
  )
}

export function revoke(issuer: string, subject: string, scope: RevocationScope, o: { statement?: string; issuedAt?: number; id?: string; reason?: string } = {}): SignedStatement<RevocationBody> {
  const body: RevocationBody = { v: 1, kind: 'revocation', issuer, subject, issued_at: o.issuedAt ?? T0, scope }
  if (o.statement !== undefined) body.statement = o.statement
  if (o.reason !== undefined) body.reason = o.reason
  return signed(body, o.id)
}

/** An engine of SELF on a manual clock at T0. */
export function mkEngine(init: Partial<TrustEngineInit> = {}, clock = new ManualClock()): { engine: TrustGraphEngine; clock: ManualClock } {
  const engine = createTrustEngine({ self: SELF, ...init }, { clock })
  return { engine, clock }
}

/** Seeded PRNG (mulberry32, from @kos-mesh/interface). */
export const prng = mulberry32

/** Adds every statement, failing on any outcome but `added`/`superseded`. */
export function addAll(engine: TrustGraphEngine, statements: SignedStatement[]): void {
  for (const st of statements) {
    const r = engine.add(st)
    if (r !== 'added' && r !== 'superseded') throw new Error(`add ${st.id}: ${r}`)
  }
}
