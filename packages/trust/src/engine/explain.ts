/**
 * `explain`: the score of one DID with every piece of evidence behind it (anchor, attestations with
 * their effect and decay, deltas with their weight, revocations, authentication), from the last
 * computed table. Runs off the hot path: it walks the statements about the DID.
 */
import type { NodeTrustProfile } from '@kos-mesh/interface'
import type { Anchor, AttestationBody, Evidence, ReputationReport, SignedStatement } from '../types.js'
import { attestationCounts, attestationDecay, isTrustClaim, type Table } from './compute.js'
import type { EngineConfig } from './config.js'
import { deltaDecay, rawValue, type OwnObservations } from './reputation.js'
import { pathEdges } from './scores.js'
import type { StatementStore } from './store.js'

export interface ExplainInput {
  did: string
  cfg: EngineConfig
  table: Table
  store: StatementStore
  anchors: ReadonlyMap<string, Anchor>
  own: OwnObservations
  revoked: ReadonlySet<string>
  authenticated: boolean
  now: number
  profile: NodeTrustProfile
}

export function explain(input: ExplainInput): ReputationReport {
  const { did, cfg, table, store, anchors, own, revoked, now } = input
  const entry = table.entries.get(did)
  const scoreOf = (d: string): number => table.entries.get(d)?.t ?? 0
  const baseOf = (d: string): number => table.entries.get(d)?.b ?? 0
  const evidence: Evidence[] = []

  // the best chain
  const path: string[] = []
  const bestEdge = new Set<string>()
  const i = table.index.get(did)
  if (i !== undefined && table.prop.best[i] !== -1) {
    const { nodes, edges } = pathEdges(table.prop, i)
    for (const n of nodes) path.push(table.dids[n]!)
    for (const k of edges) bestEdge.add(table.edges[table.graph.ref[k]!]!.id)
  }

  const anchor = anchors.get(did)
  if (anchor !== undefined) {
    evidence.push({ kind: 'anchor', level: anchor.level, effect: anchor.level, note: anchor.validator === true ? 'operator anchor, validator' : 'operator anchor' })
  }

  const capabilities = new Set<string>()
  const roles = new Set<string>()
  const ids = [...(store.bySubject.get(did) ?? [])]
  for (const id of ids) {
    const st = store.get(id)
    if (st === undefined) continue
    const b = st.body
    if (b.kind === 'attestation') {
      const a = st as SignedStatement<AttestationBody>
      const counts = attestationCounts(a, table.withdrawals, revoked, now)
      const issuerScore = scoreOf(b.issuer)
      const d = attestationDecay(b, now, cfg)
      const ev: Evidence = { kind: 'attestation', statement: id, issuer: b.issuer, issuerScore, claim: b.claim, effect: 0, decay: d }
      if (b.level !== undefined) ev.level = b.level
      if (!counts) {
        ev.note = !(b.expires_at > now) ? 'expired' : revoked.has(b.issuer) ? 'issuer revoked' : 'withdrawn by a revocation'
      } else if (isTrustClaim(b, cfg)) {
        const depth = table.entries.get(b.issuer)?.depth ?? -1
        const bi = baseOf(b.issuer)
        if (anchor !== undefined || b.issuer === did) ev.note = 'does not move an anchor or the issuer itself'
        else if (depth < 0 || bi <= 0) ev.note = 'issuer has no score here'
        else if (depth >= cfg.maxDepth) ev.note = `issuer is ${depth} hops away (maxDepth ${cfg.maxDepth})`
        else {
          ev.effect = cfg.beta * Math.min(bi, b.level ?? 0) * d
          ev.note = bestEdge.has(id) ? 'best chain' : 'weaker than the best chain'
        }
      } else if (b.claim === 'trust' || b.claim === 'endorse') {
        ev.note = `context ${b.context} does not count`
      } else if (issuerScore >= cfg.endorserThreshold && !revoked.has(did)) {
        if (b.claim === 'capability' && b.value !== undefined) capabilities.add(b.value)
        if (b.claim === 'role' && b.value !== undefined) roles.add(b.value)
        ev.note = b.claim === 'key' && table.validators.has(b.issuer) ? 'key verified by a validator' : `${b.claim} ${b.value ?? ''}`.trim()
      } else {
        ev.note = `issuer below the endorser threshold (${cfg.endorserThreshold})`
      }
      evidence.push(ev)
    } else if (b.kind === 'delta') {
      const raw = rawValue(b.counts, cfg.deltaWeights)
      const d = deltaDecay(b.window, b.window_ms, now, cfg.deltaHalfLifeMs)
      const ev: Evidence = { kind: 'delta', statement: id, issuer: b.issuer, counts: { ...b.counts }, window: b.window, decay: d, effect: 0 }
      if (b.issuer === cfg.self) {
        ev.issuerScore = 10
        if (!(b.expires_at > now)) ev.note = 'expired'
        else if (own.covers(did, b.window)) ev.note = 'own delta, counted live'
        else {
          ev.effect = raw * d
          ev.note = 'own delta'
        }
      } else {
        const bi = baseOf(b.issuer)
        ev.issuerScore = bi
        if (!(b.expires_at > now)) ev.note = 'expired'
        else if (revoked.has(b.issuer)) ev.note = 'issuer revoked'
        else if (!(bi > 0)) ev.note = 'issuer has no score here'
        else {
          ev.effect = (bi / 10) * raw * d
          ev.note = 'weighted by the issuer score / 10; each issuer -1..+1 in all'
        }
      }
      evidence.push(ev)
    } else {
      const ev: Evidence = { kind: 'revocation', statement: id, issuer: b.issuer, effect: 0, note: `scope ${b.scope}` }
      if (table.revokedBy.get(did) === id || (b.scope === 'key' && b.issuer === b.subject)) {
        ev.effect = -(entry?.b ?? 0)
        ev.note = b.issuer === b.subject ? 'key revoked by its holder' : 'key revoked by a validator'
      } else if (table.caps.get(did)?.id === id) {
        const cap = table.caps.get(did)!
        ev.issuerScore = cap.weight
        ev.note = `validator revocation below the threshold: score capped at ${10 - cap.weight}`
      }
      if (b.reason !== undefined) ev.note += `: ${b.reason}`
      evidence.push(ev)
    }
  }
  const live: Array<{ window: number; counts: Record<string, number>; effect: number; decay: number }> = []
  own.value(did, now, live)
  for (const w of live) {
    evidence.push({ kind: 'delta', issuer: cfg.self, issuerScore: 10, counts: w.counts, window: w.window, effect: w.effect, decay: w.decay, note: Object.keys(w.counts).length === 0 ? 'own observations, older windows folded' : 'own observations (live)' })
  }
  if (input.authenticated) evidence.push({ kind: 'authenticated', effect: 0, note: 'authenticated over a channel with this node' })

  return {
    did,
    trust_score: input.profile.trust_score,
    endorsements: input.profile.endorsements,
    verification_level: input.profile.verification_level,
    revoked: revoked.has(did),
    base: entry?.b ?? 0,
    reputation: entry === undefined ? 0 : entry.own + entry.others,
    path,
    endorsers: revoked.has(did) ? [] : [...(table.endorsers.get(did) ?? [])],
    capabilities: [...capabilities].sort(),
    roles: [...roles].sort(),
    evidence,
    computedAt: table.at,
  }
}
