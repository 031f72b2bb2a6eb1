/**
 * The peer registry's ranking: the score of a peer (trust, latency, capabilities, role; stale peers
 * at half), the trust it is ranked by, the per-node tie order among equal scores, and the spec's
 * DiscoveredPeer view of an entry.
 */
import type { DiscoveredPeer } from '@kos-mesh/interface'
import type { PeerEntry, RankingWeights } from './registry-types.js'

/** FNV-1a (32-bit) of `local` + NUL + `peer`. */
export function tieKey(local: string, peer: string): number {
  let h = 0x811c9dc5
  const s = `${local}\u0000${peer}`
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

/** Order of equal-score peers: by tie key, then peer id. */
export function compareTie(a: PeerEntry, b: PeerEntry): number {
  return a.tieKey - b.tieKey || (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)
}

/** The scorer's settings (validated options of the registry). */
export interface PeerScorerInit {
  weights: RankingWeights
  /** Latency (ms) that scores 0.5. */
  latencyRef: number
  /** Capabilities that count for the capability score. */
  preferred: readonly string[]
  /** Cap of the self-asserted trust (0..10). */
  maxSelfTrust: number
  /** A peer silent for this long (ms) ranks as stale. */
  staleAfter: number
  trustScoreOf: ((did: string) => number | undefined) | undefined
}

/** Scores registry entries for ranking and eviction. */
export class PeerScorer {
  /** The registry's ranking weights (a query may override some). */
  readonly weights: RankingWeights
  readonly #latencyRef: number
  readonly #preferred: readonly string[]
  readonly #maxSelfTrust: number
  readonly #staleAfter: number
  readonly #trustScoreOf: ((did: string) => number | undefined) | undefined

  /** The engine's score, clamped to 0..10; undefined when there is no engine, it knows nothing, or it failed. */
  #engineScore(did: string): number | undefined {
    if (this.#trustScoreOf === undefined) return undefined
    try {
      const s = this.#trustScoreOf(did)
      return typeof s === 'number' && Number.isFinite(s) ? Math.min(10, Math.max(0, s)) : undefined
    } catch {
      return undefined
    }
  }

  constructor(init: PeerScorerInit) {
    this.weights = init.weights
    this.#latencyRef = init.latencyRef
    this.#preferred = init.preferred
    this.#maxSelfTrust = init.maxSelfTrust
    this.#staleAfter = init.staleAfter
    this.#trustScoreOf = init.trustScoreOf
  }

  /** The trust score used for ranking (0..10). */
  trustOf(entry: PeerEntry): number {
    const engine = this.#engineScore(entry.record.peerId)
    if (engine !== undefined) return engine
    return entry.trustOverride ?? Math.min(entry.record.node.trust_profile.trust_score, this.#maxSelfTrust)
  }

  /** The rank score of `e` at `now` under weights `w` (the registry's by default), `roles` scoring for `role`. */
  score(e: PeerEntry, now: number, w: RankingWeights = this.weights, roles?: readonly string[]): number {
    const trust = this.trustOf(e) / 10
    const latency = e.latencyMs === undefined ? 0.5 : this.#latencyRef / (this.#latencyRef + e.latencyMs)
    let caps = 1
    if (this.#preferred.length > 0) {
      let have = 0
      const c = e.record.node.capabilities as unknown as Record<string, unknown>
      for (const name of this.#preferred) if (c[name] === true) have++
      caps = have / this.#preferred.length
    }
    const role = roles !== undefined && roles.includes(e.record.node.node_type) ? 1 : 0
    const score = w.trust * trust + w.latency * latency + w.capabilities * caps + w.role * role
    const stale = e.stale || now - e.lastSeen >= this.#staleAfter
    return stale ? score / 2 : score
  }
}

/** The spec's DiscoveredPeer of a registry entry, with the trust score given. */
export function toDiscoveredPeer(e: PeerEntry, trustScore: number): DiscoveredPeer {
  const node = e.record.node
  return {
    peer_id: e.peerId,
    addresses: node.network_info.addresses.map((a) => ({ ...a })),
    capabilities: { ...node.capabilities },
    trust_score: trustScore,
    discovery_method: e.discoveryMethod,
    discovery_timestamp: e.discoveredAt,
  }
}
