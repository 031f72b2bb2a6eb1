/**
 * What a node reports: its peers (connected, discovered, known from earlier connections, being
 * redialled) and its status. Pure assembly from the node's parts.
 */
import { KLPMessageType, NodeType, type NetworkInfo, type Transport } from '@kos-mesh/interface'
import type { Router } from '@kos-mesh/klp-router'
import type { BootstrapResult, PeerDiscovery } from '@kos-mesh/peer-discovery'
import type { AgentRegistry } from '@kos-mesh/agents'
import type { PersistentTrustStore, TrustRuntime } from './trust.js'
import type { PeerReconnection } from './node-reconnect.js'
import { routerTrustPolicy } from './node-router.js'
import type { NodeInit, NodePeer, NodeStatus } from './node-types.js'
import type { NodeMesh } from './node-mesh.js'
import { fromRecordAddress } from './addresses.js'

/** Connected and discovered peers, and those known from earlier connections, with their redial state. */
export function listPeers(router: Router, trustStore: PersistentTrustStore, discovery: PeerDiscovery | undefined, reconnection: PeerReconnection): NodePeer[] {
  const out = new Map<string, NodePeer>()
  for (const p of router.peers()) {
    const authority = p.authority ?? router.routingTable.authorityOf(p.did)
    out.set(p.did, {
      did: p.did,
      ...(authority === undefined ? {} : { authority }),
      connected: true,
      addresses: [],
      trust_score: trustStore.get(p.did).trust_score,
    })
  }
  for (const d of discovery?.getPeers() ?? []) {
    const cur = out.get(d.peer_id)
    const entry = discovery?.registry.get(d.peer_id)
    const authority = cur?.authority ?? entry?.record.address?.authority ?? router.routingTable.authorityOf(d.peer_id)
    out.set(d.peer_id, {
      did: d.peer_id,
      ...(authority === undefined ? {} : { authority }),
      connected: cur?.connected ?? false,
      addresses: d.addresses.map((a) => fromRecordAddress(a) ?? (a.port > 0 ? `${a.protocol}://${a.address}:${a.port}` : `${a.protocol}://${a.address}`)),
      ...(entry === undefined ? {} : { node_type: entry.record.node.node_type, last_seen: entry.record.node.last_seen }),
      trust_score: trustStore.get(d.peer_id).trust_score,
      discovery_method: d.discovery_method,
    })
  }
  // peers known from earlier connections (saved in the store), with their redial state
  for (const k of reconnection.knownList()) {
    const cur = out.get(k.did)
    const authority = cur?.authority ?? k.authority ?? router.routingTable.authorityOf(k.did)
    out.set(k.did, {
      did: k.did,
      ...(authority === undefined ? {} : { authority }),
      connected: cur?.connected ?? false,
      addresses: [...new Set([...(cur?.addresses ?? []), ...k.addrs])],
      ...(cur?.node_type === undefined ? {} : { node_type: cur.node_type }),
      ...(cur?.last_seen === undefined ? {} : { last_seen: cur.last_seen }),
      trust_score: trustStore.get(k.did).trust_score,
      ...(cur?.discovery_method === undefined ? {} : { discovery_method: cur.discovery_method }),
      known: true,
      last_connected: k.lastConnected,
    })
  }
  for (const r of reconnection.redialStates()) {
    if (r.did === undefined || (r.state !== 'waiting' && r.state !== 'dialing')) continue
    const cur = out.get(r.did)
    if (cur === undefined || cur.connected) continue
    cur.redial = { state: r.state, attempts: r.attempts, ...(r.nextAt === undefined ? {} : { nextAt: r.nextAt }), ...(r.lastError === undefined ? {} : { lastError: r.lastError }) }
  }
  return [...out.values()].sort((a, b) => Number(b.connected) - Number(a.connected) || (a.authority ?? '~').localeCompare(b.authority ?? '~') || (a.did < b.did ? -1 : 1))
}

/** The parts of a node its status is assembled from. */
export interface StatusSource {
  init: Pick<NodeInit, 'authority' | 'nodeType' | 'publish' | 'taskMinTrust' | 'router'>
  /** The node DID, once its identity is known. */
  did: string | undefined
  /** Started, with a router. */
  started: boolean
  authority(): string
  addrs(): string[]
  router(): Router
  agents: AgentRegistry
  reconnection: PeerReconnection
  trust: TrustRuntime | undefined
  bootstrap: BootstrapResult | undefined
  mesh: Pick<NodeMesh, 'summary'>
  transports?: readonly Transport[]
  /** The migration and vector services' counters (those the node runs). */
  services?: () => Pick<NodeStatus, 'migration' | 'vectors'>
}

/** The NetworkInfo of the first transport that reports one (transport-libp2p's `networkInfo()`). */
function networkInfoOf(transports: readonly Transport[] | undefined): NetworkInfo | undefined {
  for (const t of transports ?? []) {
    const f = (t as { networkInfo?: () => NetworkInfo | undefined }).networkInfo
    if (typeof f !== 'function') continue
    try {
      const info = f.call(t)
      if (info !== undefined) return info
    } catch {
      // a transport that cannot tell reports nothing
    }
  }
  return undefined
}

function optionalNetwork(network: NetworkInfo | undefined): { network?: NetworkInfo } {
  return network === undefined ? {} : { network }
}

export function nodeStatus(s: StatusSource): NodeStatus {
  const started = s.started
  const reconnection = s.reconnection
  return {
    did: s.did ?? '',
    authority: s.did === undefined && s.init.authority === undefined ? '' : s.authority(),
    nodeType: s.init.nodeType ?? NodeType.PEER_NODE,
    started,
    addrs: started ? s.addrs() : [],
    agents: s.agents.list().map((a) => ({ name: a.name, address: a.address, capabilities: a.capabilities, description: a.description })),
    peers: started ? s.router().peers().length : 0,
    peersKnown: reconnection.knownCount,
    published: started ? (s.init.publish ?? []).map((a) => `${a}/${s.did as string}`) : [],
    redial: { pending: reconnection.pending(), targets: reconnection.redialStates().filter((t) => t.state !== 'connected') },
    taskMinTrust: s.init.taskMinTrust ?? 0,
    taskEndorsements: routerTrustPolicy(s.init)?.[KLPMessageType.TASK_REQUEST]?.required_endorsements ?? 0,
    ...(started && s.trust !== undefined ? { trust: s.trust.summary() } : {}),
    ...(started ? { mesh: s.mesh.summary() } : {}),
    ...(started ? optionalNetwork(networkInfoOf(s.transports)) : {}),
    ...(started && s.services !== undefined ? s.services() : {}),
    bootstrap: s.bootstrap,
  }
}
