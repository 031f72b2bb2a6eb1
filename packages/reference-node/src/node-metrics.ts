/**
 * The node's Prometheus exposition: the router's metrics, and the counters and histograms of what
 * the node itself observes (connections, handshakes, dials, redials, tasks), and those of its agent
 * migration and vector services when it runs them. Pure: the node hands in a snapshot.
 */
import type { RouterMetrics } from '@kos-mesh/klp-router'
import { Histogram, LATENCY_BUCKETS, renderPrometheus, type MetricFamily } from './metrics.js'
import type { TrustSummary } from './trust.js'
import type { MeshSummary } from './node-mesh.js'
import type { MigrationMetrics } from './node-migration.js'
import type { VectorMetrics } from './node-vectors.js'

/** What the node counts itself (the router counts the rest). */
export class NodeStats {
  readonly dials = new Histogram(LATENCY_BUCKETS)
  readonly tasks = new Histogram(LATENCY_BUCKETS)
  readonly dialsFailed = new Map<string, number>()
  tasksServed = 0
  readonly tasksRefused = new Map<string, number>()
  connectionsOpened = 0
  readonly connectionsClosed = new Map<string, number>()
  readonly handshakesRefused = new Map<string, number>()
  redials = 0
  redialFailures = 0
}

export interface NodeMetricsInput {
  did: string
  authority: string
  nodeType: string
  router: RouterMetrics
  knownPeers: number
  redialing: number
  trustedDids: number
  /** The trust engine's and service's counters (a started node). */
  trust?: TrustSummary
  suppressed: Record<string, number>
  stats: NodeStats
  /** DHT, gossip and broadcast counters. */
  mesh?: MeshSummary
  /** The agent migration service's counters (when the node runs it). */
  migration?: MigrationMetrics
  /** The vector service's counters (when the node runs it). */
  vectors?: VectorMetrics
}

/** The counters of the node's migration and vector services, those it runs (`service` looks a started one up by name). */
export function serviceMetrics(service: (name: string) => unknown): Pick<NodeMetricsInput, 'migration' | 'vectors'> {
  const migration = service('migration') as { metrics?: () => MigrationMetrics } | undefined
  const vectors = service('vectors') as { metrics?: () => VectorMetrics } | undefined
  return {
    ...(typeof migration?.metrics === 'function' ? { migration: migration.metrics() } : {}),
    ...(typeof vectors?.metrics === 'function' ? { vectors: vectors.metrics() } : {}),
  }
}

/** The Prometheus text of a node. */
export function nodeMetricsText(s: NodeMetricsInput): string {
  const m = s.router
  const families: MetricFamily[] = []
  const counter = (name: string, help: string, samples: MetricFamily['samples']): void => void families.push({ name, help, type: 'counter', samples })
  const gauge = (name: string, help: string, samples: MetricFamily['samples']): void => void families.push({ name, help, type: 'gauge', samples })
  const byLabel = (label: string, values: Iterable<[string, number]>): NonNullable<MetricFamily['samples']> => [...values].map(([k, v]) => ({ labels: { [label]: k }, value: v }))
  gauge('kos_mesh_node_info', 'The node: DID, authority and node type (always 1).', [{ labels: { did: s.did, authority: s.authority, node_type: s.nodeType }, value: 1 }])
  counter('kos_mesh_messages_total', 'KLP messages received (in) and sent (out) by the router, all types.', [
    { labels: { direction: 'in' }, value: m.messagesIn },
    { labels: { direction: 'out' }, value: m.messagesOut },
  ])
  counter('kos_mesh_bytes_total', 'Frame bytes received (in) and sent (out) by the router, all types.', [
    { labels: { direction: 'in' }, value: m.bytesIn },
    { labels: { direction: 'out' }, value: m.bytesOut },
  ])
  counter('kos_mesh_messages_processed_total', 'Messages that passed the pipeline and were handled.', [{ value: m.processed }])
  counter('kos_mesh_messages_forwarded_total', 'Messages relayed to another node.', [{ value: m.forwarded }])
  counter('kos_mesh_rejects_total', 'Messages rejected by the router, by reason (replay, invalid_signature, insufficient_trust, no_eligible_agents, ...).', byLabel('reason', Object.entries(m.rejects)))
  counter('kos_mesh_request_retries_total', 'Request retransmissions.', [{ value: m.retries }])
  gauge('kos_mesh_inbound_queue_depth', 'Messages waiting in the inbound queue, by priority class.', byLabel('class', Object.entries(m.queueDepth).filter(([k]) => k !== 'total')))
  gauge('kos_mesh_inbound_queue_bytes', 'Frame bytes waiting in the inbound queue.', [{ value: m.queueBytes }])
  gauge('kos_mesh_outbound_queue_bytes', 'Bytes waiting in the outbound queues of all peers.', [{ value: m.outbound.queuedBytes }])
  counter('kos_mesh_outbound_frames_dropped_total', 'Outbound frames dropped because a peer\'s queue was full.', [{ value: m.outbound.dropped }])
  counter('kos_mesh_slow_peers_total', 'Connections dropped because the peer stopped reading.', [{ value: m.slowPeers }])
  gauge('kos_mesh_peers', 'Peers: connected now, known from earlier connections, being redialled.', [
    { labels: { state: 'connected' }, value: m.peers },
    { labels: { state: 'known' }, value: s.knownPeers },
    { labels: { state: 'redialing' }, value: s.redialing },
  ])
  gauge('kos_mesh_routes', 'Routes in the routing table.', [{ value: m.routes }])
  gauge('kos_mesh_pending_requests', 'Requests of this node waiting for their response.', [{ value: m.pendingRequests }])
  gauge('kos_mesh_replay_window_entries', 'Message ids held by the replay window (all, and the strangers\' pool).', [
    { labels: { pool: 'all' }, value: m.replayCacheSize },
    { labels: { pool: 'strangers' }, value: m.replayStrangerSize },
  ])
  counter('kos_mesh_replay_window_evictions_total', 'Replay-window ids evicted to make room.', [{ value: m.replayEvictions }])
  gauge('kos_mesh_response_cache_entries', 'Responses cached for duplicate requests.', [{ value: m.responseCacheSize }])
  gauge('kos_mesh_pinned_authorities', 'Authority -> DID pins.', [{ value: m.pinnedAuthorities }])
  counter('kos_mesh_pin_evictions_total', 'Provisional pins evicted to make room.', [{ value: m.pinEvictions }])
  counter('kos_mesh_pin_refusals_total', 'Authority claims refused because the pin table was full.', [{ value: m.pinRefusals }])
  counter('kos_mesh_connections_opened_total', 'Connections opened (either direction).', [{ value: s.stats.connectionsOpened }])
  counter('kos_mesh_connections_closed_total', 'Connections closed, by reason.', byLabel('reason', s.stats.connectionsClosed))
  counter('kos_mesh_handshakes_refused_total', 'Handshakes refused (inbound failures and limits, outbound identity mismatches), by reason.', byLabel('reason', s.stats.handshakesRefused))
  counter('kos_mesh_dials_failed_total', 'Dials that failed, by reason.', byLabel('reason', s.stats.dialsFailed))
  counter('kos_mesh_redials_total', 'Redials of known peers and seeds that connected.', [{ value: s.stats.redials }])
  counter('kos_mesh_redial_failures_total', 'Redial attempts that failed.', [{ value: s.stats.redialFailures }])
  families.push({ name: 'kos_mesh_handshake_duration_seconds', help: 'Time of this node\'s successful dials: TCP connect, secure handshake and signed hello.', type: 'histogram', histograms: s.stats.dials.snapshot() })
  families.push({ name: 'kos_mesh_task_request_duration_seconds', help: 'Time of this node\'s own task requests until the answer, by outcome.', type: 'histogram', histograms: s.stats.tasks.snapshot() })
  counter('kos_mesh_tasks_served_total', 'Tasks this node\'s agents completed for peers.', [{ value: s.stats.tasksServed }])
  counter('kos_mesh_tasks_refused_total', 'Tasks the task service refused, by reason (router refusals such as insufficient_trust are in kos_mesh_rejects_total).', byLabel('reason', s.stats.tasksRefused))
  gauge('kos_mesh_trusted_dids', 'DIDs with an operator trust decision.', [{ value: s.trustedDids }])
  const t = s.trust
  if (t !== undefined) {
    gauge('kos_mesh_trust_statements', 'Signed trust statements the engine holds, by kind.', byLabel('kind', Object.entries(t.byKind)))
    gauge('kos_mesh_trust_revoked_dids', 'DIDs revoked here (by their key holder, or by a validator trusted enough).', [{ value: t.revokedDids }])
    counter('kos_mesh_trust_statements_received_total', 'Trust statements received from peers (before checks; duplicates included).', [{ value: t.received }])
    counter('kos_mesh_trust_statements_added_total', 'Trust statements from peers that were new and taken.', [{ value: t.added }])
    counter('kos_mesh_trust_statements_rejected_total', 'Trust statements refused, by reason (InvalidStatementSignatureError, StatementExpiredError, rate_limited, revoked_issuer, ...).', byLabel('reason', Object.entries({ ...t.rejected, ...(t.rateLimited > 0 ? { rate_limited: t.rateLimited } : {}) })))
    counter('kos_mesh_trust_statements_published_total', 'Trust statements this node signed (attestations, revocations, its reputation deltas).', [{ value: t.published }])
    counter('kos_mesh_trust_messages_sent_total', 'TRUST_ATTESTATION and REPUTATION_DELTA messages sent to neighbours.', [{ value: t.sent }])
  }
  const mesh = s.mesh
  if (mesh !== undefined) {
    if (mesh.dht !== null) {
      gauge('kos_mesh_dht_contacts', 'Contacts in the DHT routing table.', [{ value: mesh.dht.contacts }])
      gauge('kos_mesh_dht_providers_stored', 'Provider records this node holds for others (and itself).', [{ value: mesh.dht.providersStored }])
      gauge('kos_mesh_dht_provided_names', 'Names this node provides and republishes (capability:<flag>, ...).', [{ value: mesh.dht.provided.length }])
      counter('kos_mesh_dht_requests_total', 'DHT requests sent by this node and served for others.', [
        { labels: { direction: 'sent' }, value: mesh.dht.requestsSent },
        { labels: { direction: 'served' }, value: mesh.dht.requestsServed },
      ])
    }
    if (mesh.gossip !== null) {
      gauge('kos_mesh_gossip_view_size', 'Peers in the gossip overlay\'s active and passive views.', [
        { labels: { view: 'active' }, value: mesh.gossip.active },
        { labels: { view: 'passive' }, value: mesh.gossip.passive },
      ])
    }
    counter('kos_mesh_broadcasts_total', 'BROADCAST_ANNOUNCE messages this node sent and received.', [
      { labels: { direction: 'sent' }, value: mesh.broadcasts.sent },
      { labels: { direction: 'received' }, value: mesh.broadcasts.received },
    ])
  }
  const mig = s.migration
  if (mig !== undefined) {
    const types = Object.entries(mig.byType)
    counter('kos_mesh_agent_migrations_started_total', 'Agent migrations this node started as source, by type (move, copy, clone, backup, restore).', types.map(([type, c]) => ({ labels: { type }, value: c.started })))
    counter('kos_mesh_agent_migrations_committed_total', 'Agent migrations this node started that the target verified and committed, by type.', types.map(([type, c]) => ({ labels: { type }, value: c.committed })))
    counter('kos_mesh_agent_migrations_aborted_total', 'Agent migrations this node started that failed or were cancelled (this node left as it was), by type and outcome.', types.flatMap(([type, c]) => Object.entries(c.aborted).map(([outcome, value]) => ({ labels: { type, outcome }, value }))))
    counter('kos_mesh_agent_migrations_refused_total', 'Agent migrations of this node refused, by type and reason: the target\'s reason code, or busy (too many at once here, never started).', types.flatMap(([type, c]) => Object.entries(c.refused).map(([reason, value]) => ({ labels: { type, reason }, value }))))
    gauge('kos_mesh_agent_migrations_in_progress', 'Agent migrations this node runs as source now.', [{ value: mig.inProgress }])
    counter('kos_mesh_agent_migrations_received_total', 'Agent bundles this node accepted as target (prepared or applied).', [{ value: mig.received }])
    counter('kos_mesh_agent_migration_refusals_sent_total', 'Agent migrations this node refused as target, by reason code.', byLabel('reason', Object.entries(mig.refusalsSent)))
    gauge('kos_mesh_agents', 'Sandboxed agents this node knows, by status (active: live here, answering tasks; migrating, prepared, gone, archived), as last listed.', byLabel('status', Object.entries(mig.agents)))
  }
  const vec = s.vectors
  if (vec !== undefined) {
    gauge('kos_mesh_vector_collections', 'Vector collections on this node.', [{ value: vec.collections }])
    gauge('kos_mesh_vector_entries', 'Live vector entries in the shards this node holds, by collection, as last counted (at most 2 s old).', byLabel('collection', Object.entries(vec.entries)))
    counter('kos_mesh_vector_syncs_total', 'Vector syncs this node ran to their end, by outcome (completed: every peer; partial: some; failed: none, or an error).', byLabel('outcome', Object.entries(vec.syncs)))
    gauge('kos_mesh_vector_syncs_running', 'Vector syncs running now.', [{ value: vec.syncsRunning }])
    counter('kos_mesh_vector_requests_total', 'VECTOR_SYNC and announce messages this node received.', [{ value: vec.requests }])
    counter('kos_mesh_vector_entries_received_total', 'Vector entries accepted from peers (their pushes, and fetched by syncs).', [{ value: vec.entriesReceived }])
    counter('kos_mesh_vector_entries_rejected_total', 'Vector entries from peers refused (bad signature, foreign owner, too old, ...).', [{ value: vec.entriesRejected }])
    counter('kos_mesh_vector_requests_rejected_total', 'Vector requests this node refused, by reason code.', byLabel('reason', Object.entries(vec.rejected)))
  }
  counter('kos_mesh_log_events_suppressed_total', 'Operator log lines suppressed by the per-kind rate limit, by kind.', byLabel('kind', Object.entries(s.suppressed)))
  gauge('process_resident_memory_bytes', 'Resident memory size of the process in bytes.', [{ value: process.memoryUsage.rss() }])
  return renderPrometheus(families)
}
