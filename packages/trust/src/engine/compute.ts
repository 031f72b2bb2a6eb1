/**
 * One full recompute: revocations, validators, the propagation of base scores (scores.ts), the
 * validators' key revocations, reputation from deltas, final scores, endorsements and
 * verification levels, into a table that reads look up in O(1).
 */
import { ANY_CONTEXT, type Anchor, type AttestationBody, type DeltaBody, type RevocationBody, type SignedStatement } from '../types.js'
import { clamp, decay, type EngineConfig } from './config.js'
import { deltaValue, type OwnObservations } from './reputation.js'
import { buildGraph, propagate, type Graph, type Propagation } from './scores.js'
import type { StatementStore } from './store.js'

export const VALIDATOR_ROLE = 'ValidatorNode'

/** What the table says of one DID. */
export interface Entry {
  /** Final score t(v). */
  t: number
  /** Base score b(v). */
  b: number
  /** Hops of the best chain (-1: none). */
  depth: number
  /** own(v) after its clamp. */
  own: number
  /** Sum of values of held own deltas not counted live (for incremental updates). */
  ownStored: number
  /** others(v) after its clamp. */
  others: number
  /** Largest beta * b(i) over other issuers with a positive net contribution. */
  othersCeil: number
  /** 10 - w of the strongest validator revocation below the threshold, else 10. */
  cap: number
  endorsements: number
  /** Verification rank without markAuthenticated: 0 none, 1 basic, 2 strong, 3 cryptographic. */
  rank: number
  revoked: boolean
}

/** How revocations withdraw statements. */
export interface Withdrawals {
  /** Statement id -> issuer of a `statement`-scope revocation naming it. */
  ids: Map<string, string>
  /** issuer \0 subject -> latest issued_at of an `attestations`-scope (or plain key) revocation. */
  before: Map<string, number>
}

export interface Table {
  at: number
  entries: Map<string, Entry>
  /** Revoked DIDs: by their key holder, or by a validator with weight >= the threshold. */
  revoked: Set<string>
  /** Revoked DID -> the revocation that did it. */
  revokedBy: Map<string, string>
  /** Capped DID -> [validator, weight, revocation id]. */
  caps: Map<string, { issuer: string; weight: number; id: string }>
  validators: Set<string>
  withdrawals: Withdrawals
  /** For explain: the graph, its statements and the propagation. */
  dids: string[]
  index: Map<string, number>
  graph: Graph
  edges: SignedStatement<AttestationBody>[]
  prop: Propagation
  endorsers: Map<string, string[]>
}

export interface ComputeInput {
  cfg: EngineConfig
  store: StatementStore
  anchors: ReadonlyMap<string, Anchor>
  own: OwnObservations
  now: number
}

const pairKey = (issuer: string, subject: string): string => `${issuer}\u0000${subject}`

/** True when a held attestation counts: unexpired, not withdrawn, its issuer not revoked. */
export function attestationCounts(st: SignedStatement<AttestationBody>, w: Withdrawals, revoked: ReadonlySet<string>, now: number): boolean {
  const b = st.body
  if (!(b.expires_at > now) || revoked.has(b.issuer)) return false
  if (w.ids.get(st.id) === b.issuer) return false
  const until = w.before.get(pairKey(b.issuer, b.subject))
  return until === undefined || b.issued_at > until
}

/** Decay factor of an attestation at `now` (1 for one issued in the future). */
export function attestationDecay(b: AttestationBody, now: number, cfg: EngineConfig): number {
  return decay(now - b.issued_at, cfg.attestationHalfLifeMs)
}

export function isTrustClaim(b: AttestationBody, cfg: EngineConfig): boolean {
  return (b.claim === 'trust' || b.claim === 'endorse') && (b.context === ANY_CONTEXT || cfg.contexts.has(b.context))
}

function withdrawalsOf(store: StatementStore, blocked: ReadonlySet<string>, validators: ReadonlySet<string> | undefined): { w: Withdrawals; keyRevs: SignedStatement<RevocationBody>[] } {
  const w: Withdrawals = { ids: new Map(), before: new Map() }
  const keyRevs: SignedStatement<RevocationBody>[] = []
  const withdrawBefore = (b: RevocationBody): void => {
    const k = pairKey(b.issuer, b.subject)
    const prev = w.before.get(k)
    if (prev === undefined || b.issued_at > prev) w.before.set(k, b.issued_at)
  }
  for (const st of store.revocations.values()) {
    const b = st.body
    if (blocked.has(b.issuer)) continue
    if (b.scope === 'statement') {
      if (b.statement !== undefined) w.ids.set(b.statement, b.issuer)
    } else if (b.scope === 'attestations') {
      withdrawBefore(b)
    } else if (b.scope === 'key' && b.issuer !== b.subject && validators !== undefined) {
      if (validators.has(b.issuer)) keyRevs.push(st)
      else withdrawBefore(b)
    }
  }
  return { w, keyRevs }
}

/** Validators: anchors flagged so, and subjects of a counting `role: ValidatorNode` attestation by this node or a trusted anchor. */
function validatorsOf(input: ComputeInput, w: Withdrawals, blocked: ReadonlySet<string>): Set<string> {
  const { cfg, store, anchors, now } = input
  const out = new Set<string>()
  const issuers = [cfg.self]
  for (const a of anchors.values()) {
    if (blocked.has(a.did)) continue
    if (a.validator === true) out.add(a.did)
    if (a.level >= cfg.endorserThreshold) issuers.push(a.did)
  }
  for (const issuer of issuers) {
    for (const st of store.byIssuer.get(issuer)?.values() ?? []) {
      const b = st.body
      if (b.kind !== 'attestation' || b.claim !== 'role' || b.value !== VALIDATOR_ROLE) continue
      if (attestationCounts(st as SignedStatement<AttestationBody>, w, blocked, now) && !blocked.has(b.subject)) out.add(b.subject)
    }
  }
  return out
}

interface Pass {
  dids: string[]
  index: Map<string, number>
  graph: Graph
  edges: SignedStatement<AttestationBody>[]
  prop: Propagation
  w: Withdrawals
  keyRevs: SignedStatement<RevocationBody>[]
  validators: Set<string>
}

function runPass(input: ComputeInput, blocked: ReadonlySet<string>, caps: ReadonlyMap<string, { weight: number }>): Pass {
  const { cfg, store, anchors, now } = input
  const first = withdrawalsOf(store, blocked, undefined)
  const validators = validatorsOf(input, first.w, blocked)
  const { w, keyRevs } = withdrawalsOf(store, blocked, validators)
  const dids: string[] = []
  const index = new Map<string, number>()
  const idx = (did: string): number => {
    let i = index.get(did)
    if (i === undefined) {
      i = dids.length
      dids.push(did)
      index.set(did, i)
    }
    return i
  }
  const sources = new Map<number, number>()
  sources.set(idx(cfg.self), 10)
  for (const a of anchors.values()) {
    if (a.did === cfg.self) continue
    const cap = caps.get(a.did)
    sources.set(idx(a.did), cap === undefined ? a.level : Math.min(a.level, 10 - cap.weight))
  }
  const from: number[] = []
  const to: number[] = []
  const level: number[] = []
  const dec: number[] = []
  const edges: SignedStatement<AttestationBody>[] = []
  for (const st of store.byId.values()) {
    const b = st.body
    if (b.kind !== 'attestation' || !isTrustClaim(b, cfg) || b.issuer === b.subject) continue
    const a = st as SignedStatement<AttestationBody>
    if (!attestationCounts(a, w, blocked, now) || !((b.level ?? 0) > 0)) continue
    from.push(idx(b.issuer))
    to.push(idx(b.subject))
    level.push(b.level!)
    dec.push(attestationDecay(b, now, cfg))
    edges.push(a)
  }
  const n = dids.length
  const graph = buildGraph(n, from, to, level, dec)
  const blockedArr = new Uint8Array(n)
  for (const d of blocked) {
    const i = index.get(d)
    if (i !== undefined && d !== cfg.self) blockedArr[i] = 1
  }
  let ceiling: Float64Array | undefined
  if (caps.size > 0) {
    ceiling = new Float64Array(n).fill(NaN)
    for (const [d, c] of caps) {
      const i = index.get(d)
      if (i !== undefined) ceiling[i] = 10 - c.weight
    }
  }
  const prop = propagate({ graph, sources, blocked: blockedArr, ceiling, beta: cfg.beta, maxDepth: cfg.maxDepth })
  return { dids, index, graph, edges, prop, w, keyRevs, validators }
}

export function compute(input: ComputeInput): Table {
  const { cfg, store, anchors, own, now } = input
  const self = cfg.self
  // 1. key holders' own revocations: absolute
  const revoked = new Set<string>()
  const revokedBy = new Map<string, string>()
  for (const st of store.revocations.values()) {
    const b = st.body
    if (b.scope === 'key' && b.issuer === b.subject && !revoked.has(b.subject)) {
      revoked.add(b.subject)
      revokedBy.set(b.subject, st.id)
    }
  }
  // 2. base scores without the validators' revocations, which weigh by those scores
  let pass = runPass(input, revoked, new Map())
  const caps = new Map<string, { issuer: string; weight: number; id: string }>()
  const weightOf = (did: string): number => {
    const i = pass.index.get(did)
    return i === undefined ? 0 : pass.prop.score[i]!
  }
  const decisions = pass.keyRevs
    .filter((st) => pass.w.ids.get(st.id) !== st.body.issuer)
    .map((st) => ({ st, weight: weightOf(st.body.issuer) }))
    .sort((a, b) => b.weight - a.weight || a.st.body.issued_at - b.st.body.issued_at || (a.st.id < b.st.id ? -1 : 1))
  let byValidators = 0
  for (const { st, weight } of decisions) {
    const b = st.body
    if (revoked.has(b.issuer) || b.subject === self || revoked.has(b.subject) || !(weight > 0)) continue
    if (weight >= cfg.validatorRevokeThreshold) {
      revoked.add(b.subject)
      revokedBy.set(b.subject, st.id)
      byValidators++
    } else if ((caps.get(b.subject)?.weight ?? 0) < weight) {
      caps.set(b.subject, { issuer: b.issuer, weight, id: st.id })
    }
  }
  // 3. again with them
  if (byValidators > 0 || caps.size > 0) pass = runPass(input, revoked, caps)
  const { dids, index, prop } = pass
  const bOf = (did: string): number => {
    const i = index.get(did)
    return i === undefined ? 0 : prop.score[i]!
  }

  // 4. reputation
  const ownStored = new Map<string, number>()
  const othersSum = new Map<string, number>()
  for (const id of store.deltas.values()) {
    const st = store.get(id) as SignedStatement<DeltaBody> | undefined
    if (st === undefined) continue
    const b = st.body
    if (!(b.expires_at > now) || revoked.has(b.issuer) || revoked.has(b.subject)) continue
    if (b.issuer === self) {
      if (own.covers(b.subject, b.window)) continue
      ownStored.set(b.subject, (ownStored.get(b.subject) ?? 0) + deltaValue(b.counts, b.window, b.window_ms, now, cfg))
    } else if (bOf(b.issuer) > 0) {
      const k = pairKey(b.issuer, b.subject)
      othersSum.set(k, (othersSum.get(k) ?? 0) + deltaValue(b.counts, b.window, b.window_ms, now, cfg))
    }
  }
  const others = new Map<string, { sum: number; ceil: number }>()
  for (const [k, sum] of othersSum) {
    const cut = k.indexOf('\u0000')
    const issuer = k.slice(0, cut)
    const subject = k.slice(cut + 1)
    const bi = bOf(issuer)
    const contribution = (bi / 10) * clamp(sum, -1, 1)
    let o = others.get(subject)
    if (o === undefined) others.set(subject, (o = { sum: 0, ceil: 0 }))
    o.sum += contribution
    if (contribution > 0) o.ceil = Math.max(o.ceil, cfg.beta * bi)
  }

  // 5. final scores of every DID known here
  const entries = new Map<string, Entry>()
  const known = new Set<string>()
  for (let i = 0; i < dids.length; i++) if (prop.best[i] !== -1) known.add(dids[i]!)
  for (const d of ownStored.keys()) known.add(d)
  for (const d of own.dids()) known.add(d)
  for (const d of others.keys()) known.add(d)
  for (const d of revoked) known.add(d)
  for (const did of known) {
    const i = index.get(did)
    const o = others.get(did)
    const e: Entry = {
      t: 0,
      b: i === undefined ? 0 : prop.score[i]!,
      depth: i === undefined ? -1 : prop.depth[i]!,
      own: 0,
      ownStored: ownStored.get(did) ?? 0,
      others: o === undefined ? 0 : clamp(o.sum, -cfg.maxOthersPenalty, cfg.maxReputationGain),
      othersCeil: o?.ceil ?? 0,
      cap: 10 - (caps.get(did)?.weight ?? 0),
      endorsements: 0,
      rank: 0,
      revoked: revoked.has(did),
    }
    finalScore(e, did, input)
    entries.set(did, e)
  }

  // 6. endorsements: distinct issuers above the threshold with a counting trust/endorse claim
  const endorsers = new Map<string, string[]>()
  for (const [issuer, e] of entries) {
    if (e.revoked || e.t < cfg.endorserThreshold) continue
    for (const st of store.byIssuer.get(issuer)?.values() ?? []) {
      const b = st.body
      if (b.kind !== 'attestation' || b.subject === issuer || !isTrustClaim(b, cfg) || !((b.level ?? 0) >= 1)) continue
      if (!attestationCounts(st as SignedStatement<AttestationBody>, pass.w, revoked, now)) continue
      let list = endorsers.get(b.subject)
      if (list === undefined) endorsers.set(b.subject, (list = []))
      if (!list.includes(issuer)) list.push(issuer)
    }
  }
  // 7. cryptographic: key attestations by validators above the threshold
  const crypto = new Set<string>()
  for (const v of pass.validators) {
    const e = entries.get(v)
    if (e === undefined || e.revoked || e.t < cfg.endorserThreshold) continue
    for (const st of store.byIssuer.get(v)?.values() ?? []) {
      const b = st.body
      if (b.kind === 'attestation' && b.claim === 'key' && attestationCounts(st as SignedStatement<AttestationBody>, pass.w, revoked, now)) crypto.add(b.subject)
    }
  }
  const entryOf = (did: string): Entry => {
    let e = entries.get(did)
    if (e === undefined) {
      e = { t: 0, b: 0, depth: -1, own: 0, ownStored: 0, others: 0, othersCeil: 0, cap: 10 - (caps.get(did)?.weight ?? 0), endorsements: 0, rank: 0, revoked: revoked.has(did) }
      finalScore(e, did, input)
      entries.set(did, e)
    }
    return e
  }
  for (const did of crypto) entryOf(did)
  for (const [did, list] of endorsers) {
    const e = entryOf(did)
    // an anchor at 0 is the operator's explicit distrust: no endorsement counts for it
    e.endorsements = e.revoked || anchors.get(did)?.level === 0 ? 0 : list.length
  }
  for (const [did, e] of entries) {
    const anchor = anchors.get(did)
    if (e.revoked || anchor?.level === 0) e.rank = 0
    else if (did === self || (anchor !== undefined && anchor.level > 0) || crypto.has(did)) e.rank = 3
    else if (e.endorsements >= cfg.strongEndorsements) e.rank = 2
    else if (e.b > 0) e.rank = 1
    else e.rank = 0
  }
  return { at: now, entries, revoked, revokedBy, caps, validators: pass.validators, withdrawals: pass.w, dids, index, graph: pass.graph, edges: pass.edges, prop, endorsers }
}

/** Sets e.own and e.t from e.b, e.ownStored, e.others, e.othersCeil, e.cap and the live own observations. */
export function finalScore(e: Entry, did: string, input: Pick<ComputeInput, 'cfg' | 'own' | 'now'>): void {
  const { cfg, own, now } = input
  if (did === cfg.self) {
    e.own = 0
    e.t = e.revoked ? 0 : 10
    return
  }
  if (e.revoked) {
    e.own = 0
    e.t = 0
    return
  }
  e.own = clamp(own.value(did, now) + e.ownStored, -cfg.maxOwnPenalty, cfg.maxReputationGain)
  const r = e.own + e.others
  let t = e.b + r
  if (r > 0) {
    const ceiling = Math.max(e.b, e.own > 0 ? cfg.maxReputationGain : 0, e.othersCeil)
    if (t > ceiling) t = ceiling
  }
  t = clamp(t, 0, 10)
  e.t = t > e.cap ? e.cap : t
}
