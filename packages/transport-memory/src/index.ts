/**
 * @kos-mesh/transport-memory: an in-process implementation of the kos-mesh Transport contract,
 * with a seeded network simulator (latency, jitter, bandwidth, loss, duplication, reordering,
 * partitions, crashes) that runs on the wall clock or in virtual time.
 *
 * @packageDocumentation
 */
export {
  memoryTransport, DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_FRAME_SIZE, DEFAULT_SEND_TIMEOUT_MS, DEFAULT_MAX_OUTBOUND_BUFFER_BYTES, DEFAULT_SEND_STALL_TIMEOUT_MS,
} from './transport.js'
export type { MemoryTransport, MemoryTransportInit } from './transport.js'
export { createMemoryNetwork, defaultMemoryNetwork, PERFECT_LINK } from './network.js'
export type { LinkConditions, MemoryNetwork, MemoryNetworkInit, NetworkMetrics, TraceEvent } from './network.js'
export type { RunOptions, SimClock, TimeMode } from './scheduler.js'
/** @deprecated import `TimerHandle` from `@kos-mesh/interface`. */
export type { TimerHandle } from '@kos-mesh/interface'
export { parseMemoryAddress, formatMemoryAddress, MAX_ADDRESS_LENGTH } from './address.js'
export type { MemoryAddress } from './address.js'
export { sfc32, seededRandom } from './prng.js'
export type { Random } from './prng.js'
export * from './errors.js'
