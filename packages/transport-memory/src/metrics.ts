/**
 * What the network simulator reports: its counters (NetworkMetrics) and the events it traces.
 */

/** Counters of the network since it was created or `resetMetrics()` was called. */
export interface NetworkMetrics {
  /** Frames admitted by `send` (before loss and duplication). */
  framesSent: number
  bytesSent: number
  /** Frames put in a receiver's queue (duplicates included). */
  framesDelivered: number
  bytesDelivered: number
  /** Frames not delivered, for any reason. */
  framesDropped: number
  bytesDropped: number
  /** Frames dropped, by reason: link loss, partition or crash, receiver closed. */
  droppedByReason: { loss: number; partition: number; closed: number }
  /** Extra copies created by `duplicate`. */
  framesDuplicated: number
  bytesDuplicated: number
  /** Frames held back by `reorder`. */
  framesReordered: number
  dials: number
  dialFailures: number
  /** Connection ends currently not closed (two per connection). */
  openConnectionEnds: number
}

/** One observable network event, for traces (`onTrace`). */
export interface TraceEvent {
  type: 'deliver' | 'drop' | 'duplicate'
  /** Network time (ms). */
  at: number
  from: string
  to: string
  connectionId: string
  bytes: number
  reason?: 'loss' | 'partition' | 'closed'
}

/** Counters at zero. */
export function zeroMetrics(): NetworkMetrics {
  return {
    framesSent: 0, bytesSent: 0, framesDelivered: 0, bytesDelivered: 0, framesDropped: 0, bytesDropped: 0,
    droppedByReason: { loss: 0, partition: 0, closed: 0 }, framesDuplicated: 0, bytesDuplicated: 0,
    framesReordered: 0, dials: 0, dialFailures: 0, openConnectionEnds: 0,
  }
}
