/**
 * What the discovery service's parts share: the context they run in (router, registry, injected
 * clock, logger, limits, counters, the local record), the PEER_DISCOVERY path, and small helpers
 * for signals, clock-driven timeouts and error names.
 */
import { TimeoutError } from '@kos-mesh/interface'
import type { Clock, Logger, MessageRouter } from '@kos-mesh/interface'
import { setMaxListeners } from 'node:events'
import type { ProtocolLimits } from './protocol.js'
import type { PeerRegistry } from './registry.js'
import type { PeerDiscoveryStats } from './service-api.js'
import type { NodeRecord } from './types.js'

/** The discovery service's own counters (its stats without the registry's). */
export type DiscoveryCounters = Omit<PeerDiscoveryStats, 'registry'>

/** What the service shares with its inbound handler, peer-table pulls and dialer. */
export interface DiscoveryContext {
  readonly router: MessageRouter
  readonly registry: PeerRegistry
  readonly clock: Clock
  readonly log: Logger
  readonly limits: ProtocolLimits
  /** Mutable: every part counts into the service's counters. */
  readonly counters: DiscoveryCounters
  /** This node's current signed record (undefined before `start()`). */
  localRecord(): NodeRecord | undefined
}

export const DISCOVERY_PATH = '/peer-discovery'

/** Many concurrent dials and requests listen on one signal: that is expected, not a leak. */
export function quiet(signal: AbortSignal): AbortSignal {
  setMaxListeners(Infinity, signal)
  return signal
}

/**
 * A signal aborted with a TimeoutError after `ms` of `clock` time (AbortSignal.timeout on the
 * injected clock). Call `clear()` once done so no timer outlives the operation.
 */
export function clockTimeout(clock: Clock, ms: number, what: string): { signal: AbortSignal; clear(): void } {
  const ac = new AbortController()
  const handle = clock.setTimeout(() => { ac.abort(new TimeoutError(`expected ${what} within ${ms} ms`)) }, ms, { unref: true })
  return { signal: ac.signal, clear: () => { clock.clearTimeout(handle) } }
}

export function errName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err
}
