/**
 * The router's options (`RouterInit`, every field with its default) and their resolution into a
 * validated, immutable configuration.
 */
import { InvalidParametersError, type KLPMessageType, type TrustRequirements, type TransportAddress } from '@kos-mesh/interface'
import type { CodecLimits } from '@kos-mesh/klp-codec'
import type { PinInit } from './routing-table.js'

/**
 * A per-peer token bucket (`RouterInit.rateLimit`): every frame a peer sends (messages and hellos;
 * data frames are not counted) takes one token; the bucket starts full, holds at most `burst` tokens
 * and refills at `ratePerSec`. With an empty bucket, `overload: 'backpressure'` (the default) stops
 * reading that peer until tokens come back; `overload: 'reject'` drops its frames as `rate_limited`.
 */
export interface RateLimitInit {
  /** Tokens added per second per peer, i.e. the sustained rate in frames/s; must be > 0. */
  ratePerSec: number
  /** Largest number of tokens a peer's bucket holds (frames it may send at once after a quiet spell); must be >= 1. */
  burst: number
}

/**
 * The router's options (the first call of `klpRouter(init)(components)`; {@link createRouter} takes
 * them too). Only `authority` is required; every other field has the default its comment gives (the
 * README's "Limits and defaults" table lists them all). Sizes are in bytes, times in the unit their
 * name says. Out-of-range values (e.g. `hopLimit` outside 1..255, a non-integer `concurrency`, a
 * negative `clockSkewMs`, a CPU share outside (0, 1]), an empty `authority` or a pin of this node's
 * own authority to another DID make `klpRouter(init)(components)` throw `InvalidParametersError`; an
 * authority that is not a valid `klp://` authority makes it throw `InvalidAddressError`.
 */
export interface RouterInit {
  /** This node's KLP authority, e.g. `node-a.mesh.kai` (required). */
  authority: string
  /** Transport addresses to listen on at `start()`. Default: none. */
  listen?: TransportAddress[]
  /** Largest number of hops a message may travel. Default 8. */
  hopLimit?: number
  /** Largest accepted frame (envelope + message), bytes. Default 1 MiB + 5. */
  maxFrameBytes?: number
  /** Limits passed to the codec's decoder. Default: the codec's DEFAULT_LIMITS. */
  codecLimits?: Partial<CodecLimits>
  /** Accepted clock skew when checking expiry, ms. Default 30,000. */
  clockSkewMs?: number
  /** Longest accepted ttl (it bounds the replay window), seconds. Default 86,400. */
  maxTtlSeconds?: number
  /** ttl of messages this router creates, seconds. Default 60. */
  defaultTtlSeconds?: number
  /** Message ids remembered for replay suppression, for known signers (trust score > 0). Default 100,000. */
  replayCacheSize?: number
  /**
   * Recent broadcasts (their signed frames) held for `relayBroadcast`, while a broadcast strategy is
   * installed (none are held under flooding). Default 1,024.
   */
  broadcastCacheSize?: number
  /** Bytes of held broadcast frames (see `broadcastCacheSize`). Default 16 MiB. */
  broadcastCacheBytes?: number
  /** Responses kept for duplicate requests (count). Default 10,000. */
  responseCacheSize?: number
  /** Responses kept for duplicate requests (bytes). Default 16 MiB. */
  responseCacheBytes?: number
  /** Inbound queue bound per peer, in messages. Default 256. */
  maxQueuePerPeer?: number
  /** Inbound queue bound for all peers, in messages. Default 8,192. */
  maxQueueTotal?: number
  /** Inbound queue bound per peer, in frame bytes. Default 4 MiB (one frame always fits an empty queue). */
  maxQueueBytesPerPeer?: number
  /** Inbound queue bound for all peers, in frame bytes. Default 64 MiB. */
  maxQueueBytesTotal?: number
  /**
   * Inbound queue bound for all strangers (untrusted DIDs) together, in messages: they share one
   * peer's queue as they share one turn. Default `maxQueuePerPeer` (a stranger with nothing queued
   * may always queue one message).
   */
  maxQueueStrangers?: number
  /** Inbound queue bound for all strangers together, in frame bytes. Default `maxQueueBytesPerPeer`. */
  maxQueueBytesStrangers?: number
  /**
   * Outbound bytes waiting for one connection (responses, forwards, floods, hellos, sends). The
   * pipeline never waits for a peer: beyond this bound its frames are dropped (counted in
   * `outbound.dropped`), and `send()`/`request()` wait for room. Default 4 MiB.
   */
  maxOutboundBytesPerPeer?: number
  /** Outbound bytes waiting over all connections. Default 64 MiB. */
  maxOutboundBytesTotal?: number
  /**
   * Oldest message this node accepts, seconds after its timestamp, whatever its ttl asks for
   * (receiver policy). It bounds how long the replay window must remember an id, so long ttls
   * cannot pin memory. Older messages are rejected as `expired`. Default 600.
   */
  maxMessageAgeSeconds?: number
  /** Replay-window ids kept for strangers (signers without trust), all together. Default 16,384. */
  replayStrangerEntries?: number
  /** Replay-window ids one stranger may hold. Default 1/16 of `replayStrangerEntries`. */
  replayQuotaPerStranger?: number
  /**
   * Longest run of pipeline work (ms) before the router yields to the event loop so other
   * connections' I/O is read: a flood from one peer cannot starve the others' sockets. Default 1.
   * `Infinity` disables slicing (virtual-time simulations, where nothing may depend on wall time).
   */
  pipelineSliceMs?: number
  /**
   * CPU budget (measured time of each peer's pipeline steps, decayed over ~100 ms), applied while
   * more than one peer is active: when the pipeline used more than this share of a core, peers
   * above the max-min fair level of it are not read until their share decays. A peer with at most
   * one message in the node (one that waits for its answers) is never held. Default 0.5.
   */
  busyCpuShare?: number
  /**
   * Share of a core that all strangers (untrusted DIDs) together may use while a peer it protects
   * is active (a known peer, or any peer with at most one message in the node); beyond it,
   * strangers above the max-min fair level of it are not read. Default 0.15.
   */
  strangerCpuShare?: number
  /** Weighted round-robin weights for CRITICAL, HIGH, NORMAL, LOW. Default [8, 4, 2, 1]. */
  priorityWeights?: readonly [number, number, number, number]
  /** Messages in the pipeline at once (verification and handlers overlap). Default 32. */
  concurrency?: number
  /** Per-peer token bucket, or `false` for none. Default `{ ratePerSec: 2000, burst: 4000 }`. */
  rateLimit?: RateLimitInit | false
  /**
   * What a peer over its rate or its queue bound gets. `backpressure` (default): the router stops
   * reading that peer's connection until it has tokens and its queue drained to half, so the
   * transport's flow control slows the sender and nothing is lost or decrypted in vain.
   * `reject`: frames are read and dropped (`rate_limited`, `queue_full`).
   */
  overload?: 'backpressure' | 'reject'
  /** Total time a `request()` may take, ms. Default 10,000. */
  requestTimeoutMs?: number
  /** Retransmissions of a request within its timeout. Default 3. */
  requestRetries?: number
  /** Requests pending at once. Default 10,000. */
  maxPendingRequests?: number
  /** Time a handler may take before the router answers `handler_error`, ms. Default 30,000. */
  handlerTimeoutMs?: number
  /** Time `dial()` waits for the remote hello, ms. Default 10,000. */
  helloTimeoutMs?: number
  /** Delay before a route change is advertised to neighbours (coalesces changes), ms. Default 20. */
  routeUpdateDelayMs?: number
  /** Hello retransmission interval until the neighbour's hello arrived (lossy links), ms. Default 250. */
  helloRetryMs?: number
  /** Periodic re-advertisement of routes to every neighbour, ms; 0 disables. Default 30,000. */
  routeRefreshMs?: number
  /** Routes per advertisement and per neighbour. Default 4,096. */
  maxRoutes?: number
  /**
   * This node's own minimum trust requirements per message type, applied on top of what each
   * message asks for (the stricter of the two wins, field by field). The sender chooses a
   * message's `trust_requirements`; the policy is what the receiver insists on whatever the
   * sender wrote. Default: none (only the message's own requirements apply).
   */
  trustPolicy?: Partial<Record<KLPMessageType, TrustRequirements>>
  /**
   * Authority -> DID pins to start with (e.g. `routingTable.pins()` saved by an earlier run, or
   * configured). Pinned authorities are never rebound: a hello claiming one from another DID is
   * rejected with `authority_conflict`. Unpinned authorities are pinned on first use (the first
   * accepted signed hello) for the router's lifetime. Default: none.
   */
  pinnedAuthorities?: Record<string, string | PinInit>
  /** Largest number of pins (configured ones included). Default 65,536. */
  maxPinnedAuthorities?: number
  /**
   * Replay-window entries one known signer DID may hold. Default 10 % of `replayCacheSize`. Beyond
   * it, that signer's oldest id is evicted and its messages expiring at or before it count as replays.
   */
  replayQuotaPerSigner?: number
  /**
   * Accept messages timestamped before this router's start minus `clockSkewMs`. The replay window
   * lives in memory only, so after a restart such a message may be a replay of one processed
   * before. Default false (they are rejected as `replay`).
   */
  acceptBeforeStart?: boolean
  /** Advertised routes kept over all neighbours together. Default 4 x `maxRoutes` (16,384). */
  maxTotalRoutes?: number
  /**
   * Route-set changes accepted per neighbour per minute (a token bucket with this burst); further
   * changing advertisements are damped (`route_damped`): only the neighbour's latest one is kept
   * and applied once the bucket has a token again. 0 disables damping. Default 6.
   */
  maxRouteChangesPerMinute?: number
}

/** RouterInit with every default applied and checked. */
export interface RouterConfig {
  readonly hopLimit: number
  readonly maxFrameBytes: number
  readonly clockSkewMs: number
  readonly maxTtlSeconds: number
  readonly maxAgeMs: number
  readonly defaultTtlSeconds: number
  readonly concurrency: number
  readonly rateLimit: RateLimitInit | false
  readonly backpressure: boolean
  readonly sliceMs: number
  readonly busyCpuShare: number
  readonly strangerCpuShare: number
  readonly requestTimeoutMs: number
  readonly requestRetries: number
  readonly maxPendingRequests: number
  readonly handlerTimeoutMs: number
  readonly helloTimeoutMs: number
  readonly routeUpdateDelayMs: number
  readonly helloRetryMs: number
  readonly routeRefreshMs: number
  readonly maxRouteChangesPerMinute: number
  readonly acceptBeforeStart: boolean
  readonly decodeOptions: { limits?: Partial<CodecLimits> }
  readonly trustPolicy: Partial<Record<KLPMessageType, TrustRequirements>> | undefined
}

function finiteAtLeast(name: string, v: number, min: number): number {
  if (!(v >= min) || !Number.isFinite(v)) throw new InvalidParametersError(`expected ${name} to be a finite number >= ${min}, got ${v}`)
  return v
}

function share(name: string, v: number): number {
  if (!(v > 0 && v <= 1)) throw new InvalidParametersError(`expected ${name} in (0, 1], got ${v}`)
  return v
}

/** Applies the defaults documented on RouterInit and checks every value ("expected X, got Y"). */
export function resolveConfig(init: RouterInit): RouterConfig {
  const hopLimit = init.hopLimit ?? 8
  if (!Number.isInteger(hopLimit) || hopLimit < 1 || hopLimit > 255) throw new InvalidParametersError(`expected hopLimit in 1..255, got ${init.hopLimit}`)
  const concurrency = init.concurrency ?? 32
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new InvalidParametersError(`expected concurrency to be an integer >= 1, got ${init.concurrency}`)
  const maxAgeSeconds = init.maxMessageAgeSeconds ?? 600
  if (!(maxAgeSeconds > 0) || !Number.isFinite(maxAgeSeconds)) throw new InvalidParametersError(`expected maxMessageAgeSeconds to be a finite number > 0, got ${init.maxMessageAgeSeconds}`)
  const sliceMs = init.pipelineSliceMs ?? 1
  if (!(sliceMs > 0)) throw new InvalidParametersError(`expected pipelineSliceMs > 0, got ${init.pipelineSliceMs}`)
  const maxRouteChanges = init.maxRouteChangesPerMinute ?? 6
  if (!(maxRouteChanges === 0 || maxRouteChanges >= 1) || !Number.isFinite(maxRouteChanges)) {
    throw new InvalidParametersError(`expected maxRouteChangesPerMinute to be a finite number >= 0, got ${init.maxRouteChangesPerMinute}`)
  }
  return {
    hopLimit,
    maxFrameBytes: init.maxFrameBytes ?? 1024 * 1024 + 5,
    clockSkewMs: finiteAtLeast('clockSkewMs', init.clockSkewMs ?? 30_000, 0),
    maxTtlSeconds: init.maxTtlSeconds ?? 86_400,
    maxAgeMs: maxAgeSeconds * 1000,
    defaultTtlSeconds: init.defaultTtlSeconds ?? 60,
    concurrency,
    rateLimit: init.rateLimit ?? { ratePerSec: 2000, burst: 4000 },
    backpressure: (init.overload ?? 'backpressure') === 'backpressure',
    sliceMs,
    busyCpuShare: share('busyCpuShare', init.busyCpuShare ?? 0.5),
    strangerCpuShare: share('strangerCpuShare', init.strangerCpuShare ?? 0.15),
    requestTimeoutMs: init.requestTimeoutMs ?? 10_000,
    requestRetries: init.requestRetries ?? 3,
    maxPendingRequests: init.maxPendingRequests ?? 10_000,
    handlerTimeoutMs: init.handlerTimeoutMs ?? 30_000,
    helloTimeoutMs: init.helloTimeoutMs ?? 10_000,
    routeUpdateDelayMs: init.routeUpdateDelayMs ?? 20,
    helloRetryMs: init.helloRetryMs ?? 250,
    routeRefreshMs: init.routeRefreshMs ?? 30_000,
    maxRouteChangesPerMinute: maxRouteChanges,
    acceptBeforeStart: init.acceptBeforeStart ?? false,
    decodeOptions: init.codecLimits === undefined ? {} : { limits: init.codecLimits },
    trustPolicy: init.trustPolicy,
  }
}
