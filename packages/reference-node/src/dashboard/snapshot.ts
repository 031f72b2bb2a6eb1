/**
 * What the dashboard shows, assembled from a running node: the mesh as a graph (this node, its
 * peers, direct and relayed links, node roles), trust (scores, who vouched, revocations), the
 * traffic history and DHT and gossip health. `sections` names what the snapshot carries, so the
 * page draws a panel only for what the node reports (more sections come from `DashboardSection`s).
 */
import type { TrustSummary } from '../trust.js'
import type { MeshSummary } from '../node-mesh.js'
import type { KosMeshNode, NodeStatus } from '../node-types.js'
import type { TrafficRing, TrafficSample } from './samples.js'

/** Most nodes drawn in the graph (this node first, then connected, relayed, known, discovered). */
export const MAX_GRAPH_NODES = 256
/** Most attestations and revocations listed in the trust panel (the newest). */
export const MAX_TRUST_STATEMENTS = 200

/** The sections every started node reports. */
export const CORE_SECTIONS = ['mesh', 'trust', 'traffic', 'discovery'] as const

/** How the node sees another node. */
export type GraphNodeState = 'self' | 'connected' | 'relayed' | 'known' | 'discovered'

/** A node of the mesh graph. */
export interface GraphNode {
  /** The DID, or `authority:<name>` for a routed authority whose DID is not pinned. */
  id: string
  authority?: string
  /** The node type from its signed record (PeerNode, GatewayNode, ArchiveNode, ValidatorNode), when known. */
  role?: string
  state: GraphNodeState
  /** This node's trust score of it, 0..10. */
  trust: number
  /** Hops from this node (0 self, 1 connected), when a route is known. */
  hops?: number
}

/** An edge of the mesh graph: a connection of this node (`direct`), or a route through a neighbour (`relayed`). */
export interface GraphLink {
  from: string
  to: string
  kind: 'direct' | 'relayed'
}

/** A trust statement as the trust panel lists it. */
export interface TrustEdge {
  id: string
  issuer: string
  subject: string
  issued_at: number
  claim?: string
  level?: number
  scope?: string
  reason?: string
}

/** The trust panel: the operator's anchors, scores, who vouched for whom, revocations. */
export interface TrustPanel {
  anchors: Array<{ did: string; level: number; score: number; endorsements: number; revoked: boolean }>
  vouches: TrustEdge[]
  revocations: TrustEdge[]
  summary: TrustSummary | null
}

/** Health of one discovery service: `ok`, `degraded` (running, but alone or not joined) or `off`. */
export type ServiceHealth = 'ok' | 'degraded' | 'off'

/** The DHT and gossip panel. */
export interface DiscoveryPanel {
  dht: MeshSummary['dht']
  gossip: MeshSummary['gossip']
  broadcasts: MeshSummary['broadcasts']
  health: { dht: ServiceHealth; gossip: ServiceHealth }
}

/** The traffic panel: rates and rejects over time, and the totals since the node started. */
export interface TrafficPanel {
  intervalMs: number
  samples: TrafficSample[]
  totals: { messagesIn: number; messagesOut: number; bytesIn: number; bytesOut: number; rejects: Record<string, number> }
}

/** One snapshot of the dashboard (`GET /v1/dashboard`, and each `snapshot` event of the stream). */
export interface DashboardSnapshot {
  /** Format version of this snapshot. */
  version: 1
  /** Clock ms when it was taken. */
  time: number
  /** The sections present, in display order: the core ones and those of the node's `DashboardSection`s. */
  sections: string[]
  self: { did: string; authority: string; nodeType: string; addrs: string[] }
  mesh: { nodes: GraphNode[]; links: GraphLink[] }
  trust: TrustPanel
  traffic: TrafficPanel
  discovery: DiscoveryPanel
  /** The data of further sections, by name (agents and migrations, vector collections, ...). */
  extra: Record<string, unknown>
}

/** A further panel a node reports (a service adds one when it runs): a name and a JSON-able snapshot. */
export interface DashboardSection {
  /** Section name, `[a-z][a-z0-9-]*` (also the panel's id on the page). */
  name: string
  /** Its data now; `undefined` leaves the section out of this snapshot. */
  snapshot(): unknown
}

function healthOf(m: MeshSummary): DiscoveryPanel['health'] {
  const dht: ServiceHealth = m.dht === null ? 'off' : m.dht.joined && m.dht.contacts > 0 ? 'ok' : 'degraded'
  const gossip: ServiceHealth = m.gossip === null ? 'off' : m.gossip.active > 0 ? 'ok' : 'degraded'
  return { dht, gossip }
}

function edge(s: { id: string; body: unknown }): TrustEdge {
  const b = s.body as Record<string, unknown>
  const str = (k: string): Record<string, string> => (typeof b[k] === 'string' ? { [k]: b[k] as string } : {})
  return {
    id: s.id,
    issuer: String(b.issuer),
    subject: String(b.subject),
    issued_at: Number(b.issued_at),
    ...str('claim'),
    ...(typeof b.level === 'number' ? { level: b.level } : {}),
    ...str('scope'),
    ...str('reason'),
  }
}

const STATE_ORDER: Record<GraphNodeState, number> = { self: 0, connected: 1, relayed: 2, known: 3, discovered: 4 }

/** The mesh graph of a started node (`status`: its `node.status()`, when the caller has it). */
export function meshGraph(node: KosMeshNode, status: NodeStatus = node.status()): DashboardSnapshot['mesh'] {
  const router = node.router
  const nodes = new Map<string, GraphNode>()
  const links: GraphLink[] = []
  nodes.set(node.did, { id: node.did, authority: node.authority, role: status.nodeType, state: 'self', trust: 10, hops: 0 })
  const peers = node.peers()
  const byDid = new Map(peers.map((p) => [p.did, p]))
  for (const p of peers) {
    const state: GraphNodeState = p.connected ? 'connected' : p.known === true ? 'known' : 'discovered'
    nodes.set(p.did, {
      id: p.did,
      ...(p.authority === undefined ? {} : { authority: p.authority }),
      ...(p.node_type === undefined ? {} : { role: p.node_type }),
      state,
      trust: p.trust_score,
      ...(p.connected ? { hops: 1 } : {}),
    })
    if (p.connected) links.push({ from: node.did, to: p.did, kind: 'direct' })
  }
  for (const r of router.routingTable.routes()) {
    if (r.hops <= 1 || r.authority === node.authority) continue
    const id = router.routingTable.didOf(r.authority) ?? `authority:${r.authority}`
    const cur = nodes.get(id)
    if (cur?.state === 'connected' || cur?.state === 'self') continue
    const p = byDid.get(id)
    nodes.set(id, {
      id,
      authority: r.authority,
      ...(cur?.role === undefined ? {} : { role: cur.role }),
      state: 'relayed',
      trust: p?.trust_score ?? cur?.trust ?? 0,
      hops: r.hops,
    })
    links.push({ from: r.nextHop, to: id, kind: 'relayed' })
  }
  const kept = [...nodes.values()].sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state]).slice(0, MAX_GRAPH_NODES)
  const ids = new Set(kept.map((n) => n.id))
  return { nodes: kept, links: links.filter((l) => ids.has(l.from) && ids.has(l.to)) }
}

/** The trust panel of a started node (`status`: its `node.status()`, when the caller has it). */
export function trustPanel(node: KosMeshNode, status: NodeStatus = node.status()): TrustPanel {
  const anchors = node.trustStore.list().map((e) => ({ did: e.did, level: e.trust_score, score: e.score, endorsements: e.endorsements, revoked: e.revoked }))
  return {
    anchors,
    vouches: node.statements({ kind: 'attestation', limit: MAX_TRUST_STATEMENTS }).map(edge),
    revocations: node.statements({ kind: 'revocation', limit: MAX_TRUST_STATEMENTS }).map(edge),
    summary: status.trust ?? null,
  }
}

/** A whole snapshot of a started node. */
export function dashboardSnapshot(node: KosMeshNode, ring: TrafficRing, intervalMs: number, now: number, sections: readonly DashboardSection[] = []): DashboardSnapshot {
  const status = node.status()
  const m = node.router.metrics()
  const mesh: MeshSummary = status.mesh ?? { dht: null, gossip: null, broadcasts: { sent: 0, received: 0 } }
  const extra: Record<string, unknown> = {}
  for (const s of sections) {
    const data = s.snapshot()
    if (data !== undefined) extra[s.name] = data
  }
  return {
    version: 1,
    time: now,
    sections: [...CORE_SECTIONS, ...Object.keys(extra)],
    self: { did: status.did, authority: status.authority, nodeType: status.nodeType, addrs: status.addrs },
    mesh: meshGraph(node, status),
    trust: trustPanel(node, status),
    traffic: {
      intervalMs,
      samples: ring.samples(),
      totals: { messagesIn: m.messagesIn, messagesOut: m.messagesOut, bytesIn: m.bytesIn, bytesOut: m.bytesOut, rejects: { ...m.rejects } },
    },
    discovery: { dht: mesh.dht, gossip: mesh.gossip, broadcasts: mesh.broadcasts, health: healthOf(mesh) },
    extra,
  }
}
