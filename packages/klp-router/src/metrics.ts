import type { RouterCore } from './core.js'

/** A snapshot of the router's counters and gauges. */
export interface RouterMetrics {
  messagesIn: number
  bytesIn: number
  messagesOut: number
  bytesOut: number
  /** Messages that passed the pipeline and were dispatched to a handler (status processed). */
  processed: number
  /** Handler results with status deferred. */
  deferred: number
  /** Messages relayed to another node. */
  forwarded: number
  /** Broadcasts delivered locally. */
  broadcastsDelivered: number
  /** Rejected messages by reason code. */
  rejects: Record<string, number>
  /** Duplicate requests answered from the response cache. */
  cachedResponses: number
  /** Responses matched to a pending request. */
  responsesMatched: number
  /** Request retransmissions. */
  retries: number
  /** Inbound queue depth: total and per class. */
  queueDepth: { total: number; critical: number; high: number; normal: number; low: number }
  /** Frame bytes in the inbound queue. */
  queueBytes: number
  /** The outbound queues: bytes waiting, frames dropped (a peer's bound reached), frames lost (its connection failed). */
  outbound: { queuedBytes: number; dropped: number; failed: number }
  /** Connections the transport dropped because the peer stopped reading (SlowPeerError). */
  slowPeers: number
  /**
   * CPU accounting (see `busyCpuShare`): the pipeline's and all strangers' recent share of a core
   * (measured step time, decayed over ~100 ms), and how often a read loop paused for its peer's budget.
   */
  cpu: { pipelineShare: number; strangersShare: number; budgetPauses: number }
  /** Data frames received on handled channels / sent (`sendData`). */
  dataIn: number
  dataOut: number
  /** Replay-window ids held for strangers (signers without trust). */
  replayStrangerSize: number
  /** Provisional pins evicted to make room (disconnected, nothing relied on them). */
  pinEvictions: number
  /** Authority claims refused because the pin table was full of pins that may not go. */
  pinRefusals: number
  pendingRequests: number
  replayCacheSize: number
  replayEvictions: number
  responseCacheSize: number
  peers: number
  routes: number
  /** Authority -> DID pins (trust on first use and configured). */
  pinnedAuthorities: number
}

/** Mutable counters; `snapshot()` adds the gauges. */
export class Counters {
  messagesIn = 0
  bytesIn = 0
  messagesOut = 0
  bytesOut = 0
  processed = 0
  deferred = 0
  forwarded = 0
  broadcastsDelivered = 0
  cachedResponses = 0
  responsesMatched = 0
  retries = 0
  slowPeers = 0
  budgetPauses = 0
  dataIn = 0
  dataOut = 0
  readonly rejects: Record<string, number> = Object.create(null) as Record<string, number>

  reject(reason: string): void {
    this.rejects[reason] = (this.rejects[reason] ?? 0) + 1
  }
}

/** A snapshot of the router's counters and gauges. */
export function metricsOf(core: RouterCore): RouterMetrics {
  const c = core.counters
  const q = core.queue
  const [critical, high, normal, low] = q.depths()
  return {
    messagesIn: c.messagesIn,
    bytesIn: c.bytesIn,
    messagesOut: c.messagesOut,
    bytesOut: c.bytesOut,
    processed: c.processed,
    deferred: c.deferred,
    forwarded: c.forwarded,
    broadcastsDelivered: c.broadcastsDelivered,
    rejects: { ...c.rejects },
    cachedResponses: c.cachedResponses,
    responsesMatched: c.responsesMatched,
    retries: c.retries,
    queueDepth: { total: q.size, critical, high, normal, low },
    queueBytes: q.bytes,
    outbound: core.outbound.stats(),
    slowPeers: c.slowPeers,
    cpu: { pipelineShare: core.shares.totalShare(), strangersShare: core.shares.strangersShare(), budgetPauses: c.budgetPauses },
    dataIn: c.dataIn,
    dataOut: c.dataOut,
    replayStrangerSize: core.replay.strangerSize,
    pinEvictions: core.table.pinEvictions,
    pinRefusals: core.table.pinRefusals,
    pendingRequests: core.pending.size,
    replayCacheSize: core.replay.size,
    replayEvictions: core.replay.evictions,
    responseCacheSize: core.responses.size,
    peers: core.table.peers().length,
    routes: core.table.routes().length,
    pinnedAuthorities: core.table.pinCount,
  }
}
