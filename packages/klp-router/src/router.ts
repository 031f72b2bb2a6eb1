import {
  AbortError,
  ConnectionClosedError,
  InvalidParametersError,
  KLPMessageType,
  KosMeshError,
  MessagePriority,
  ProcessingStatus,
  TimeoutError,
  UnknownKeyError,
  VerificationLevel,
  type AbortOptions,
  type Clock,
  type Connection,
  type KLPAddress,
  type KLPMessage,
  type KLPMessageType as KLPMessageTypeT,
  type KLPValue,
  type Listener,
  type Logger,
  type MessageContext,
  type MessageHandler,
  type ProcessingResult,
  type RoutingHint,
  type SignatureVerifier,
  type Signer,
  type Transport,
  type TransportAddress,
  type TrustEngine,
  type TrustRequirements,
  type UnsignedKLPMessage,
  type HandlerRegistry,
  type Startable,
} from '@kos-mesh/interface'
import { decodeMessage, encodeMessage, parseAddress, signMessage, verifyMessage } from '@kos-mesh/klp-codec'
import type { CodecLimits } from '@kos-mesh/klp-codec'
import {
  DuplicateHandlerError,
  NoRouteError,
  NoTransportError,
  RemoteRejectedError,
  RequestDeferredError,
  RequestTimeoutError,
  RouterNotStartedError,
  TooManyRequestsError,
  AuthorityConflictError,
} from './errors.js'
import { OutboundQueues } from './outbound.js'
import { ENVELOPE_HEADER_BYTES, EnvelopeKind, FLAG_VIA_REACHED, encodeEnvelope, isValidEnvelope, rewrapEnvelope } from './envelope.js'
import { Counters, type RouterMetrics } from './metrics.js'
import { RejectReason } from './reasons.js'
import { ReplayWindow } from './replay-cache.js'
import { ResponseCache } from './response-cache.js'
import { RoutingTable, type AdvertisedRoute, type PinChange, type PinEntry, type PinInit, type Route } from './routing-table.js'
import { FairScheduler } from './scheduler.js'
import { TokenBucket } from './token-bucket.js'
import { localTrustStore } from './trust.js'

// ------------------------------------------------------------------ public types

export interface RateLimitInit {
  /** Messages per second per peer. */
  ratePerSec: number
  /** Burst size per peer. */
  burst: number
}

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
   */
  pipelineSliceMs?: number
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
  trustPolicy?: Partial<Record<KLPMessageTypeT, TrustRequirements>>
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

const VERIFICATION_ORDER: readonly string[] = [VerificationLevel.NONE, VerificationLevel.BASIC, VerificationLevel.STRONG, VerificationLevel.CRYPTOGRAPHIC]

/** The stricter of two trust requirements, field by field. */
export function strictestTrust(a: TrustRequirements, b: TrustRequirements | undefined): TrustRequirements {
  if (b === undefined) return a
  return {
    minimum_trust_score: Math.max(a.minimum_trust_score, b.minimum_trust_score),
    required_endorsements: Math.max(a.required_endorsements, b.required_endorsements),
    verification_level: VERIFICATION_ORDER.indexOf(b.verification_level) > VERIFICATION_ORDER.indexOf(a.verification_level) ? b.verification_level : a.verification_level,
  }
}

export interface RouterComponents {
  /** Signs every message this router creates. Its key id's DID is this node's identity. */
  signer: Signer
  /** Checks signatures of inbound messages. */
  signatureVerifier: SignatureVerifier
  /** Decides trust requirements. Default: an empty `localTrustStore()` (zero trust). */
  trustEngine?: TrustEngine
  transports: Transport[]
  /** Default: `Date.now`. */
  clock?: Clock
  /** Default: silent. */
  logger?: Logger
}

/** What `send`, `request` and `broadcast` accept instead of a ready message. */
export interface MessageInit {
  type: KLPMessageTypeT
  /** `klp://authority/path` or a parsed address. For broadcasts, default `klp://<self>/broadcast`. */
  target?: string | KLPAddress
  /** Source path of this node. Default `/`. */
  sourcePath?: string
  data: KLPValue
  /** Default `application/cbor`. */
  contentType?: string
  /** Default NORMAL. */
  priority?: MessagePriority
  /** Seconds. Default `defaultTtlSeconds`. */
  ttl?: number
  correlationId?: string
  routingHints?: RoutingHint[]
  /** Default: nothing required (score 0, 0 endorsements, level none). */
  trustRequirements?: TrustRequirements
}

export interface RequestOptions extends AbortOptions {
  /** Total time, ms. Default `requestTimeoutMs`. */
  timeoutMs?: number
  /** Retransmissions of the same signed request within the timeout. Default `requestRetries`. */
  retries?: number
  /**
   * The DID that must sign the response. Default: the DID the target authority is pinned to (at
   * send time, else when the response arrives). When neither is known, a response is accepted
   * from any signer the source-binding check accepts (the target authority is unbound).
   */
  expectedSigner?: string
  /**
   * This request relies on the target's authority pin: when the pinned DID answers, the pin
   * becomes firm (never evicted). Default: true, except for PEER_DISCOVERY requests (automatic
   * peer-table exchange must not let any peer that answers make its pin permanent).
   */
  reliesOnPin?: boolean
}

export interface PeerInfo {
  did: string
  /** Known once the peer's hello arrived. */
  authority?: string
  connectionId: string
}

export interface RejectInfo {
  reason: string
  messageId?: string
  fromPeer: string
}

export interface RouterEvents {
  'peer:connect': CustomEvent<PeerInfo>
  'peer:disconnect': CustomEvent<PeerInfo>
  /** The peer's signed hello was accepted (authority <-> DID known). */
  'peer:identify': CustomEvent<PeerInfo>
  'message:rejected': CustomEvent<RejectInfo>
  /** An authority pin was made, became firm, or was evicted (persist it: see `routingTable.pinEntries()`). */
  'pin:change': CustomEvent<PinChange>
}

/** Read-only view of the routing table. */
export interface RoutingTableView {
  lookup(authority: string): Route | undefined
  routes(): Route[]
  didOf(authority: string): string | undefined
  authorityOf(did: string): string | undefined
  /** Every authority -> DID pin (trust on first use and configured). */
  pins(): Record<string, string>
  /** Every pin with its firmness, to persist and pass back as `pinnedAuthorities` (`{ did, firm }`). */
  pinEntries(): PinEntry[]
  /**
   * Makes the pin of `authority` firm (never evicted): call it when something comes to rely on the
   * binding, e.g. an operator trusts the DID. The router does it itself when the authority
   * answers a request. Returns false when the authority is not pinned (to `did`, when given).
   */
  confirmPin(authority: string, did?: string): boolean
}

export interface Router extends HandlerRegistry, Startable {
  readonly authority: string
  /** The DID of this node (from the signer's key id). */
  readonly did: string
  readonly routingTable: RoutingTableView
  isStarted(): boolean
  /** Addresses this router listens on. */
  addrs(): TransportAddress[]
  handle(type: KLPMessageTypeT, handler: MessageHandler): void
  unhandle(type: KLPMessageTypeT): void
  /** Connects to a peer and resolves after its signed hello arrived. */
  dial(addr: TransportAddress, options?: AbortOptions & { remotePeer?: string }): Promise<PeerInfo>
  /** Signs (when given an init) and routes one message; resolves when handed to the next hop. */
  send(message: MessageInit | KLPMessage, options?: AbortOptions): Promise<KLPMessage>
  /** Sends a request and resolves with its response (matched by correlation id). */
  request(init: MessageInit, options?: RequestOptions): Promise<KLPMessage>
  /** Floods a BROADCAST_ANNOUNCE to every reachable node (de-duplicated by message id). */
  broadcast(init: Omit<MessageInit, 'type'> & { type?: KLPMessageTypeT }, options?: AbortOptions): Promise<KLPMessage>
  /** Builds the signed response to `request` (correlation id, target = request source). */
  createResponse(request: KLPMessage, data: KLPValue, options?: { type?: KLPMessageTypeT; priority?: MessagePriority }): Promise<KLPMessage>
  /** Connected peers. */
  peers(): PeerInfo[]
  metrics(): RouterMetrics
  addEventListener<K extends keyof RouterEvents>(type: K, listener: (evt: RouterEvents[K]) => void, options?: { once?: boolean; signal?: AbortSignal }): void
  removeEventListener<K extends keyof RouterEvents>(type: K, listener: (evt: RouterEvents[K]) => void): void
}

// ------------------------------------------------------------------ helpers

/** Response type for a request type: TASK_REQUEST -> TASK_RESPONSE, others answer in their own family. */
export function responseTypeFor(type: KLPMessageTypeT): KLPMessageTypeT {
  return type === KLPMessageType.TASK_REQUEST ? KLPMessageType.TASK_RESPONSE : type
}

/** The DID part of a key id (`did:key:z6Mk...#z6Mk...` -> `did:key:z6Mk...`). */
export function didOfKeyId(keyId: string): string {
  const i = keyId.indexOf('#')
  return i < 0 ? keyId : keyId.slice(0, i)
}

/** The error object of an error response, if `message` is one. */
export function errorOf(message: KLPMessage): { code: string; message: string; status?: string; retry_after?: number } | undefined {
  const data = message.payload.data
  if (data === null || typeof data !== 'object' || data instanceof Uint8Array || Array.isArray(data)) return undefined
  const err = (data as Record<string, KLPValue>).error
  if (err === null || typeof err !== 'object' || err instanceof Uint8Array || Array.isArray(err)) return undefined
  const e = err as Record<string, KLPValue>
  if (typeof e.code !== 'string') return undefined
  const d = data as Record<string, KLPValue>
  return {
    code: e.code,
    message: typeof e.message === 'string' ? e.message : '',
    ...(typeof d.status === 'string' ? { status: d.status } : {}),
    ...(typeof d.retry_after === 'number' ? { retry_after: d.retry_after } : {}),
  }
}

const NO_TRUST: TrustRequirements = { minimum_trust_score: 0, required_endorsements: 0, verification_level: VerificationLevel.NONE }
const HELLO_CONTENT_TYPE = 'application/vnd.kos-mesh.router-hello+cbor'
const HELLO_PATH = '/.router/hello'

const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} }

/** One inbound (or locally delivered) message waiting in the fair scheduler. */
interface QueueItem {
  /** Undefined for messages of this node (already trusted, not verified again). */
  conn: Connection | undefined
  fromPeer: string
  /** Envelope hop count and flags, read from the frame header. */
  hops: number
  flags: number
  frame: Uint8Array
  msg: KLPMessage
  receivedAt: number
}

/**
 * A pipeline slot: each of the `concurrency` messages in flight owns one, with its own abort
 * signal (aborted on stop) handed to the verifier, the trust engine and the handler. A resolver
 * that adds an abort listener per call then sees at most one listener per signal, where one
 * shared stop signal would collect one per concurrent message (MaxListenersExceededWarning).
 * Slots are reused, so the hot path allocates no AbortController.
 */
interface Slot {
  readonly controller: AbortController
  readonly options: { signal: AbortSignal }
  /** The router generation (start/stop cycle) the slot belongs to. */
  readonly gen: number
}

const DID_CACHE_SIZE = 1024
const ADDRESS_CACHE_SIZE = 256

interface Pending {
  resolve: (m: KLPMessage) => void
  reject: (e: Error) => void
  /** The request's target authority: the response must come from it. */
  target: string
  /** The response type (`responseTypeFor(request.type)`). */
  responseType: string
  /** The DID that must sign the response, when known (explicit or pinned). */
  expectedSigner: string | undefined
  /** `expectedSigner` was given by the caller (always wins). */
  explicitSigner: boolean
  /** An answer makes the target's pin firm. */
  reliesOnPin: boolean
}

/** Error codes a forwarder (not the target) answers with; accepted from another source than the target. */
const ROUTING_ERRORS: ReadonlySet<string> = new Set([RejectReason.NO_ROUTE, RejectReason.HOP_LIMIT])

/** Shortest `retry_after` honoured, ms: a `retry_after` of 0 must not turn into a resend loop. */
const MIN_RETRY_AFTER_MS = 100
/** Neighbours whose route-change buckets are remembered (across reconnects). */
const ROUTE_BUCKETS = 4096

interface Outcome {
  reason: string
  message: string
}

function errName(err: unknown): string {
  return err instanceof Error ? err.name : ''
}

/** The message bytes of an enveloped frame (a view; cheaper than subarray's species lookup). */
function bodyOf(frame: Uint8Array): Uint8Array {
  return new Uint8Array(frame.buffer, frame.byteOffset + ENVELOPE_HEADER_BYTES, frame.byteLength - ENVELOPE_HEADER_BYTES)
}

/** Reject reason for a failed verifyMessage. */
function verifyReason(err: unknown): string {
  return err instanceof UnknownKeyError || errName(err) === 'UnknownKeyError' ? RejectReason.UNKNOWN_KEY : RejectReason.INVALID_SIGNATURE
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) return reject(new AbortError(undefined, { cause: signal.reason }))
    const onAbort = (): void => {
      clearTimeout(t)
      reject(new AbortError(undefined, { cause: signal?.reason }))
    }
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Resolves after the event loop's next I/O phase. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

// ------------------------------------------------------------------ the router

class KLPRouter implements Router {
  private readonly events = new EventTarget()
  readonly authority: string
  readonly did: string
  private readonly signer: Signer
  private readonly verifier: SignatureVerifier
  private readonly trust: TrustEngine
  private readonly transports: Transport[]
  private readonly clock: Clock
  private readonly log: Logger
  private readonly init: RouterInit

  private readonly hopLimit: number
  private readonly maxFrameBytes: number
  private readonly clockSkewMs: number
  private readonly maxTtl: number
  private readonly defaultTtl: number
  private readonly concurrency: number
  private readonly rateLimit: RateLimitInit | false
  private readonly backpressure: boolean
  /** Read loops waiting for a peer's queue (or the total) to drain, by peer DID. */
  private readonly drainWaiters = new Map<string, Array<() => void>>()
  private readonly requestTimeoutMs: number
  private readonly requestRetries: number
  private readonly maxPending: number
  private readonly handlerTimeoutMs: number
  private readonly helloTimeoutMs: number
  private readonly routeUpdateDelayMs: number
  private readonly helloRetryMs: number
  private readonly routeRefreshMs: number
  private refreshTimer: ReturnType<typeof setInterval> | undefined
  /** Connection ids whose remote hello was accepted. */
  private readonly identified = new Set<string>()
  private readonly decodeOptions: { limits?: Partial<CodecLimits> }

  private readonly handlers = new Map<string, MessageHandler>()
  private readonly counters = new Counters()
  private readonly replay: ReplayWindow
  private readonly responses: ResponseCache
  private readonly table: RoutingTable
  private readonly queue: FairScheduler<QueueItem>
  private readonly outbound: OutboundQueues
  private readonly maxAgeMs: number
  private readonly sliceMs: number
  /** Start of the current run of pipeline work (performance.now()), or -1 between runs. */
  private sliceBegin = -1
  /** A pump was cut short by the slice and waits for the next turn of the event loop. */
  private pumpDeferred = false
  /** Pipeline steps waiting for time in a slice: per peer in order, peers in round robin (see `turn()`). */
  private readonly gate = new Map<string, Array<() => void>>()
  private readonly gateRing: string[] = []
  private gateHead = 0
  private gateSize = 0
  private readonly buckets = new Map<string, TokenBucket>()
  private readonly pending = new Map<string, Pending>()
  private readonly lastHello = new Map<string, number>()
  private readonly helloWaiters = new Map<string, Array<(err?: Error) => void>>()
  /** Per neighbour DID: route-set changes allowed (damping). Kept across reconnects, bounded. */
  private readonly routeBuckets = new Map<string, TokenBucket>()
  private readonly maxRouteChanges: number
  /** The latest damped advertisement per neighbour, applied when its bucket refills. */
  private readonly dampedRoutes = new Map<string, AdvertisedRoute[]>()
  private readonly dampTimers = new Set<ReturnType<typeof setTimeout>>()
  private readonly acceptBeforeStart: boolean
  /** Time of the first start (clock ms): older messages may be replays of a previous run. */
  private startedAt: number | undefined
  private readonly connections = new Set<Connection>()
  private listeners: Listener[] = []
  private active = 0
  private started = false
  private routeTimer: ReturnType<typeof setTimeout> | undefined
  private stopController = new AbortController()
  /** Free pipeline slots of the current generation, and all of them (aborted on stop). */
  private freeSlots: Slot[] = []
  private allSlots: Slot[] = []
  private gen = 0
  /** Per-call controllers of hellos being verified (aborted on stop, removed when done). */
  private readonly helloControllers = new Set<AbortController>()
  /** key id -> DID (bounded): saves the string slice per message. */
  private readonly didCache = new Map<string, string>()
  /** Parsed outbound target addresses (bounded, frozen). */
  private readonly addressCache = new Map<string, KLPAddress>()
  private readonly sourceAddresses = new Map<string, KLPAddress>()
  private readonly trustPolicy: Partial<Record<KLPMessageTypeT, TrustRequirements>> | undefined
  private idMs = -1
  private readonly idsThisMs = new Set<string>()
  private nonce = 0

  readonly routingTable: RoutingTableView

  constructor(init: RouterInit, components: RouterComponents) {
    if (typeof init.authority !== 'string' || init.authority.length === 0) {
      throw new InvalidParametersError(`expected authority to be a non-empty string, got ${String(init.authority)}`)
    }
    this.authority = parseAddress(`klp://${init.authority}/`).authority
    this.init = init
    this.signer = components.signer
    this.did = didOfKeyId(components.signer.keyId)
    this.verifier = components.signatureVerifier
    this.trust = components.trustEngine ?? localTrustStore()
    this.transports = components.transports
    this.clock = components.clock ?? { now: Date.now }
    this.log = components.logger ?? silentLogger
    this.hopLimit = init.hopLimit ?? 8
    if (!Number.isInteger(this.hopLimit) || this.hopLimit < 1 || this.hopLimit > 255) {
      throw new InvalidParametersError(`expected hopLimit in 1..255, got ${init.hopLimit}`)
    }
    this.maxFrameBytes = init.maxFrameBytes ?? 1024 * 1024 + 5
    this.clockSkewMs = init.clockSkewMs ?? 30_000
    if (!(this.clockSkewMs >= 0) || !Number.isFinite(this.clockSkewMs)) {
      throw new InvalidParametersError(`expected clockSkewMs to be a finite number >= 0, got ${init.clockSkewMs}`)
    }
    this.trustPolicy = init.trustPolicy
    this.maxTtl = init.maxTtlSeconds ?? 86_400
    this.maxAgeMs = (init.maxMessageAgeSeconds ?? 600) * 1000
    if (!(this.maxAgeMs > 0) || !Number.isFinite(this.maxAgeMs)) {
      throw new InvalidParametersError(`expected maxMessageAgeSeconds to be a finite number > 0, got ${init.maxMessageAgeSeconds}`)
    }
    this.sliceMs = init.pipelineSliceMs ?? 1
    if (!(this.sliceMs > 0)) throw new InvalidParametersError(`expected pipelineSliceMs > 0, got ${init.pipelineSliceMs}`)
    this.defaultTtl = init.defaultTtlSeconds ?? 60
    this.concurrency = init.concurrency ?? 32
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) {
      throw new InvalidParametersError(`expected concurrency to be an integer >= 1, got ${init.concurrency}`)
    }
    this.rateLimit = init.rateLimit ?? { ratePerSec: 2000, burst: 4000 }
    this.backpressure = (init.overload ?? 'backpressure') === 'backpressure'
    this.requestTimeoutMs = init.requestTimeoutMs ?? 10_000
    this.requestRetries = init.requestRetries ?? 3
    this.maxPending = init.maxPendingRequests ?? 10_000
    this.handlerTimeoutMs = init.handlerTimeoutMs ?? 30_000
    this.helloTimeoutMs = init.helloTimeoutMs ?? 10_000
    this.routeUpdateDelayMs = init.routeUpdateDelayMs ?? 20
    this.helloRetryMs = init.helloRetryMs ?? 250
    this.routeRefreshMs = init.routeRefreshMs ?? 30_000
    this.decodeOptions = init.codecLimits === undefined ? {} : { limits: init.codecLimits }
    const now = (): number => this.clock.now()
    this.maxRouteChanges = init.maxRouteChangesPerMinute ?? 6
    if (!(this.maxRouteChanges === 0 || this.maxRouteChanges >= 1) || !Number.isFinite(this.maxRouteChanges)) {
      throw new InvalidParametersError(`expected maxRouteChangesPerMinute to be a finite number >= 0, got ${init.maxRouteChangesPerMinute}`)
    }
    this.acceptBeforeStart = init.acceptBeforeStart ?? false
    this.replay = new ReplayWindow({
      maxEntries: init.replayCacheSize ?? 100_000,
      ...(init.replayQuotaPerSigner === undefined ? {} : { maxPerOwner: init.replayQuotaPerSigner }),
      ...(init.replayStrangerEntries === undefined ? {} : { maxStrangerEntries: init.replayStrangerEntries }),
      ...(init.replayQuotaPerStranger === undefined ? {} : { maxPerStranger: init.replayQuotaPerStranger }),
      now,
    })
    this.responses = new ResponseCache({ maxEntries: init.responseCacheSize, maxBytes: init.responseCacheBytes, now })
    const pinned = init.pinnedAuthorities ?? {}
    for (const [a, v] of Object.entries(pinned)) {
      const d = typeof v === 'string' ? v : v?.did
      if (a === this.authority && d !== this.did) {
        throw new InvalidParametersError(`expected the pin of this node's own authority ${a} to be ${this.did}, got ${String(d)}`)
      }
    }
    this.table = new RoutingTable({
      now,
      maxHops: this.hopLimit,
      maxRoutes: init.maxRoutes,
      ...(init.maxTotalRoutes === undefined ? {} : { maxTotalRoutes: init.maxTotalRoutes }),
      ...(init.maxPinnedAuthorities === undefined ? {} : { maxPins: init.maxPinnedAuthorities }),
      pinned,
      onPinChange: (change) => {
        if (change.kind === 'evicted') this.log.warn('authority pin evicted (provisional, disconnected, least recently seen)', { authority: change.pin.authority, did: change.pin.did })
        this.emit('pin:change', change)
      },
    })
    this.queue = new FairScheduler<QueueItem>({
      maxPerPeer: init.maxQueuePerPeer,
      maxTotal: init.maxQueueTotal,
      maxBytesPerPeer: init.maxQueueBytesPerPeer,
      maxBytesTotal: init.maxQueueBytesTotal,
      sizeOf: (item) => item.frame.byteLength,
      weights: init.priorityWeights,
    })
    this.outbound = new OutboundQueues({ maxBytesPerConnection: init.maxOutboundBytesPerPeer, maxBytesTotal: init.maxOutboundBytesTotal })
    this.outbound.onSent = (frame) => {
      this.counters.messagesOut++
      this.counters.bytesOut += frame.byteLength
    }
    const table = this.table
    this.routingTable = {
      lookup: (a) => table.lookup(a),
      routes: () => table.routes(),
      didOf: (a) => (a === this.authority ? this.did : table.didOf(a)),
      authorityOf: (d) => (d === this.did ? this.authority : table.authorityOf(d)),
      pins: () => table.pins(),
      pinEntries: () => table.pinEntries(),
      confirmPin: (a, d) => table.confirm(a, d),
    }
  }

  // ---------------------------------------------------------------- lifecycle

  isStarted(): boolean {
    return this.started
  }

  async start(): Promise<void> {
    if (this.started) return
    this.started = true
    this.startedAt ??= this.clock.now()
    this.stopController = new AbortController()
    this.gen++
    this.freeSlots = []
    this.allSlots = []
    if (this.routeRefreshMs > 0) {
      this.refreshTimer = setInterval(() => this.advertiseAll(), this.routeRefreshMs)
      this.refreshTimer.unref?.()
    }
    try {
      for (const addr of this.init.listen ?? []) {
        const t = this.transportFor(addr, true)
        this.listeners.push(await t.listen(addr, (conn) => this.onConnection(conn)))
      }
    } catch (err) {
      await this.stop()
      throw err
    }
  }

  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    const stopped = new RouterNotStartedError('router stopped')
    this.stopController.abort(stopped)
    for (const slot of this.allSlots) slot.controller.abort(stopped)
    this.allSlots = []
    this.freeSlots = []
    this.gen++
    for (const c of this.helloControllers) c.abort(stopped)
    this.helloControllers.clear()
    if (this.routeTimer !== undefined) clearTimeout(this.routeTimer)
    this.routeTimer = undefined
    for (const t of this.dampTimers) clearTimeout(t)
    this.dampTimers.clear()
    this.dampedRoutes.clear()
    if (this.refreshTimer !== undefined) clearInterval(this.refreshTimer)
    this.refreshTimer = undefined
    this.identified.clear()
    for (const p of this.pending.values()) p.reject(new RouterNotStartedError('router stopped'))
    this.pending.clear()
    this.queue.clear()
    for (const list of this.drainWaiters.values()) for (const w of list) w()
    this.drainWaiters.clear()
    this.outbound.clear(new ConnectionClosedError('router stopped'))
    const listeners = this.listeners
    this.listeners = []
    await Promise.allSettled(listeners.map((l) => l.close()))
    await Promise.allSettled([...this.connections].map((c) => c.close().catch(() => c.abort(new ConnectionClosedError('router stopped')))))
    this.connections.clear()
    this.table.clear()
    this.buckets.clear()
    this.lastHello.clear()
  }

  addrs(): TransportAddress[] {
    return this.listeners.flatMap((l) => l.addrs())
  }

  private assertStarted(): void {
    if (!this.started) throw new RouterNotStartedError('expected a started router, got a stopped one')
  }

  private transportFor(addr: TransportAddress, listen = false): Transport {
    // a listen address (port 0...) may not be dialable: match it by scheme too
    const t = this.transports.find((x) => x.canDial(addr)) ?? (listen ? this.transports.find((x) => addr.startsWith(`${x.name}://`)) : undefined)
    if (t === undefined) throw new NoTransportError(`expected a transport for ${addr}, got none of [${this.transports.map((x) => x.name).join(', ')}]`)
    return t
  }

  // ---------------------------------------------------------------- handlers

  handle(type: KLPMessageTypeT, handler: MessageHandler): void {
    if (this.handlers.has(type)) throw new DuplicateHandlerError(`expected no handler for ${type}, got one already registered`)
    this.handlers.set(type, handler)
  }

  unhandle(type: KLPMessageTypeT): void {
    this.handlers.delete(type)
  }

  // ---------------------------------------------------------------- connections

  async dial(addr: TransportAddress, options: AbortOptions & { remotePeer?: string } = {}): Promise<PeerInfo> {
    this.assertStarted()
    const t = this.transportFor(addr)
    const conn = await t.dial(addr, options)
    const identified = this.waitForHello(conn, options.signal)
    this.onConnection(conn)
    await identified
    return this.peerInfo(conn)
  }

  private waitForHello(conn: Connection, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        const list = this.helloWaiters.get(conn.id)
        if (list !== undefined) {
          const i = list.indexOf(ok)
          if (i >= 0) list.splice(i, 1)
          if (list.length === 0) this.helloWaiters.delete(conn.id)
        }
        if (err === undefined) resolve()
        else {
          conn.abort(err)
          reject(err)
        }
      }
      const ok = (err?: Error): void => done(err)
      const onAbort = (): void => done(new AbortError(undefined, { cause: signal?.reason }))
      const timer = setTimeout(() => done(new TimeoutError(`expected a hello within ${this.helloTimeoutMs} ms, got none`)), this.helloTimeoutMs)
      signal?.addEventListener('abort', onAbort, { once: true })
      const list = this.helloWaiters.get(conn.id) ?? []
      list.push(ok)
      this.helloWaiters.set(conn.id, list)
      conn.closed.then(() => {
        if (this.helloWaiters.get(conn.id)?.includes(ok) === true) done(new ConnectionClosedError('connection closed before the hello'))
      }, () => {})
    })
  }

  private peerInfo(conn: Connection): PeerInfo {
    const authority = this.table.authorityOf(conn.remotePeer)
    return { did: conn.remotePeer, connectionId: conn.id, ...(authority === undefined ? {} : { authority }) }
  }

  peers(): PeerInfo[] {
    const out: PeerInfo[] = []
    for (const did of this.table.peers()) {
      const c = this.table.connection(did)
      if (c !== undefined) out.push(this.peerInfo(c))
    }
    return out
  }

  private onConnection(conn: Connection): void {
    if (!this.started) {
      conn.abort(new RouterNotStartedError('router stopped'))
      return
    }
    this.connections.add(conn)
    const first = this.table.addConnection(conn)
    if (first) this.emit('peer:connect', this.peerInfo(conn))
    void this.sendHello(conn)
    this.retryHello(conn)
    void this.readLoop(conn)
  }

  /** Resends the hello until the neighbour's hello arrived (a lost hello must not strand a link). */
  private retryHello(conn: Connection): void {
    const deadline = Date.now() + this.helloTimeoutMs
    const timer = setInterval(() => {
      if (!this.started || conn.status !== 'open' || this.identified.has(conn.id) || Date.now() > deadline) {
        clearInterval(timer)
        return
      }
      void this.sendHello(conn)
    }, this.helloRetryMs)
    timer.unref?.()
  }

  private advertiseAll(): void {
    for (const did of this.table.peers()) {
      const c = this.table.connection(did)
      if (c !== undefined) void this.sendHello(c)
    }
  }

  private async readLoop(conn: Connection): Promise<void> {
    try {
      let n = 0
      for await (const frame of conn) {
        if (!this.started) break
        this.onFrame(conn, frame)
        // a connection with a long backlog is read in slices too: other sockets get their turn
        if ((++n & 15) === 0 && this.sliceSpent()) await yieldToEventLoop()
        if (this.backpressure) await this.roomToRead(conn.remotePeer)
      }
    } catch (err) {
      if (errName(err) === 'SlowPeerError') {
        this.counters.slowPeers++
        this.log.warn('peer disconnected: it stopped reading', { peer: conn.remotePeer })
      } else {
        this.log.debug('connection read failed', { peer: conn.remotePeer, err: errName(err) })
      }
    } finally {
      this.outbound.remove(conn, new ConnectionClosedError('connection closed'))
      this.connections.delete(conn)
      this.identified.delete(conn.id)
      const info = this.peerInfo(conn)
      if (this.table.removeConnection(conn)) {
        this.buckets.delete(conn.remotePeer)
        this.lastHello.delete(conn.remotePeer)
        this.dampedRoutes.delete(conn.remotePeer)
        if (this.started) {
          this.emit('peer:disconnect', info)
          this.scheduleRouteUpdate()
        }
      }
      if (conn.status === 'open') conn.abort(new ConnectionClosedError('read loop ended'))
    }
  }

  // ---------------------------------------------------------------- hello & route updates

  private async sendHello(conn: Connection): Promise<void> {
    try {
      const routes = this.table.advertisement(this.authority, conn.remotePeer)
      const msg = await this.build({
        type: KLPMessageType.PEER_DISCOVERY,
        target: { scheme: 'klp', authority: this.authority, path: HELLO_PATH },
        sourcePath: HELLO_PATH,
        contentType: HELLO_CONTENT_TYPE,
        priority: MessagePriority.CRITICAL,
        data: {
          authority: this.authority,
          known: this.identified.has(conn.id),
          routes: routes.map((r) => ({ authority: r.authority, hops: r.hops })),
        },
      })
      this.post(conn, encodeEnvelope(EnvelopeKind.HELLO, 0, 0, encodeMessage(msg)))
    } catch (err) {
      this.log.debug('hello not sent', { peer: conn.remotePeer, err: errName(err) })
    }
  }

  private scheduleRouteUpdate(): void {
    if (this.routeTimer !== undefined || !this.started) return
    this.routeTimer = setTimeout(() => {
      this.routeTimer = undefined
      this.advertiseAll()
    }, this.routeUpdateDelayMs)
    this.routeTimer.unref?.()
  }

  private async onHello(conn: Connection, frame: Uint8Array): Promise<void> {
    let msg: KLPMessage
    try {
      msg = decodeMessage(bodyOf(frame), this.decodeOptions)
    } catch {
      return this.reject(RejectReason.MALFORMED, conn.remotePeer)
    }
    const id = msg.metadata.message_id
    if (this.isExpired(msg, this.clock.now())) return this.reject(RejectReason.EXPIRED, conn.remotePeer, id)
    if (this.didOf(msg.signer) !== conn.remotePeer) return this.reject(RejectReason.SOURCE_MISMATCH, conn.remotePeer, id)
    const last = this.lastHello.get(conn.remotePeer)
    if (last !== undefined && msg.timestamp < last) return this.reject(RejectReason.REPLAY, conn.remotePeer, id)
    // a per-call signal (aborted on stop, dropped afterwards): many concurrent hellos must not
    // pile listeners onto one long-lived signal
    const controller = new AbortController()
    this.helloControllers.add(controller)
    let bad: string | undefined
    try {
      await verifyMessage(msg, this.verifier, { signal: controller.signal })
    } catch (err) {
      bad = controller.signal.aborted ? '' : verifyReason(err)
    } finally {
      this.helloControllers.delete(controller)
    }
    if (bad === '' || !this.started) return // stopped meanwhile
    if (bad !== undefined) return this.reject(bad, conn.remotePeer, id)
    // hellos are verified concurrently: a newer one may have been applied meanwhile
    const latest = this.lastHello.get(conn.remotePeer)
    if (latest !== undefined && msg.timestamp < latest) return this.reject(RejectReason.REPLAY, conn.remotePeer, id)
    const data = msg.payload.data as Record<string, KLPValue> | null
    const authority = data?.authority
    const routesIn = data?.routes
    if (typeof authority !== 'string' || authority !== msg.source.authority || !Array.isArray(routesIn)) {
      return this.reject(RejectReason.MALFORMED, conn.remotePeer, id)
    }
    // trust on first use: the authority is pinned to the first DID that claims it, for the
    // router's lifetime; a claim from another DID is refused and changes nothing
    const peer = conn.remotePeer
    const claim = authority === this.authority ? { ok: false as const, reason: 'authority_pinned' as const, pinnedTo: this.did } : this.table.claim(authority, peer)
    if (!claim.ok) {
      this.reject(RejectReason.AUTHORITY_CONFLICT, peer, id)
      this.log.warn('hello refused: authority conflict', { authority, did: peer, reason: claim.reason, pinnedTo: claim.pinnedTo })
      const err = new AuthorityConflictError(claim.reason === 'did_pinned'
        ? `expected ${peer} to claim ${claim.pinnedTo ?? 'its pinned authority'}, got ${authority}`
        : claim.reason === 'pins_full'
          ? `expected room for a new authority pin, got ${this.table.pinCount} pins and none evictable`
          : `expected ${authority} to be claimed by ${claim.pinnedTo ?? 'its pinned DID'}, got ${peer}`)
      const waiters = this.helloWaiters.get(conn.id)
      if (waiters !== undefined) for (const w of [...waiters]) w(err)
      if (conn.status === 'open') conn.abort(err)
      return
    }
    const routes: AdvertisedRoute[] = []
    let invalidRoutes = 0
    for (const r of routesIn as KLPValue[]) {
      const o = r as Record<string, KLPValue> | null
      if (o !== null && typeof o === 'object' && typeof o.authority === 'string' && typeof o.hops === 'number' && Number.isInteger(o.hops) && o.hops >= 0) {
        if (o.authority === this.authority) continue
        // only the neighbour itself is 0 hops away from the neighbour
        if (o.hops === 0 && o.authority !== authority) {
          invalidRoutes++
          continue
        }
        routes.push({ authority: o.authority, hops: o.hops })
      }
    }
    if (invalidRoutes > 0) this.reject(RejectReason.INVALID_ROUTE, peer, id)
    this.lastHello.set(peer, msg.timestamp)
    this.identified.add(conn.id)
    if (data?.known !== true) void this.sendHello(conn)
    const before = this.table.authorityOf(peer)
    let changed = false
    if (!this.table.wouldChange(peer, routes)) {
      this.dampedRoutes.delete(peer) // the newest advertisement is the current one
    } else if (this.routeChangeAllowed(peer)) {
      this.dampedRoutes.delete(peer)
      changed = this.table.setAdvertised(peer, routes)
    } else {
      this.dampRoutes(peer, routes, id)
    }
    if (before !== authority || claim.pinned) {
      this.emit('peer:identify', this.peerInfo(conn))
      this.scheduleRouteUpdate()
    } else if (changed) {
      this.scheduleRouteUpdate()
    }
    const waiters = this.helloWaiters.get(conn.id)
    if (waiters !== undefined) for (const w of [...waiters]) w()
  }

  /**
   * A damped advertisement: counted, and only the neighbour's latest one is kept and applied
   * when its bucket has a token again (so a flapping neighbour changes routes at most
   * `maxRouteChangesPerMinute` times a minute, and an honest one still converges).
   */
  private dampRoutes(peer: string, routes: AdvertisedRoute[], id: string): void {
    this.reject(RejectReason.ROUTE_DAMPED, peer, id)
    const had = this.dampedRoutes.has(peer)
    this.dampedRoutes.set(peer, routes)
    if (had) return
    const b = this.routeBuckets.get(peer)
    const wait = Math.max(1, b === undefined ? 0 : b.waitTime(this.clock.now()))
    const gen = this.gen
    const timer = setTimeout(() => {
      this.dampTimers.delete(timer)
      const latest = this.dampedRoutes.get(peer)
      this.dampedRoutes.delete(peer)
      if (latest === undefined || gen !== this.gen || !this.started || this.table.connection(peer) === undefined) return
      if (!this.table.wouldChange(peer, latest)) return
      if (!this.routeChangeAllowed(peer)) return this.dampRoutes(peer, latest, id)
      if (this.table.setAdvertised(peer, latest)) this.scheduleRouteUpdate()
    }, wait)
    timer.unref?.()
    this.dampTimers.add(timer)
  }

  /** Route-flap damping: one token per route-set change of a neighbour. */
  private routeChangeAllowed(did: string): boolean {
    if (this.maxRouteChanges === 0) return true
    const now = this.clock.now()
    let b = this.routeBuckets.get(did)
    if (b === undefined) {
      if (this.routeBuckets.size >= ROUTE_BUCKETS) this.routeBuckets.delete(this.routeBuckets.keys().next().value as string)
      b = new TokenBucket({ ratePerSec: this.maxRouteChanges / 60, burst: this.maxRouteChanges }, now)
      this.routeBuckets.set(did, b)
    }
    return b.take(now)
  }

  // ---------------------------------------------------------------- inbound

  /**
   * Entry point of every inbound frame: size, rate limit, envelope header, decode, then the fair
   * queue. Synchronous and exception-free: anything wrong is a typed reject in the metrics.
   */
  private onFrame(conn: Connection, frame: Uint8Array): void {
    const c = this.counters
    c.messagesIn++
    c.bytesIn += frame.byteLength
    const from = conn.remotePeer
    if (frame.byteLength > this.maxFrameBytes) return this.reject(RejectReason.FRAME_TOO_LARGE, from)
    const now = this.clock.now()
    if (this.rateLimit !== false) {
      let b = this.buckets.get(from)
      if (b === undefined) {
        b = new TokenBucket(this.rateLimit, now)
        this.buckets.set(from, b)
      }
      if (!b.take(now)) return this.reject(RejectReason.RATE_LIMITED, from)
    }
    if (!isValidEnvelope(frame)) return this.reject(RejectReason.MALFORMED, from)
    if (frame[2] === EnvelopeKind.HELLO) {
      void this.onHello(conn, frame).catch((err: unknown) => this.log.error('hello failure', { err: errName(err) }))
      return
    }
    let msg: KLPMessage
    try {
      msg = decodeMessage(bodyOf(frame), this.decodeOptions)
    } catch (err) {
      // the codec only throws typed errors (DecodeError...); anything else is a codec bug: still a reject
      if (!(err instanceof KosMeshError)) this.log.error('decoder threw an untyped error', { err: errName(err) })
      return this.reject(RejectReason.MALFORMED, from)
    }
    this.enqueue({ conn, fromPeer: from, hops: frame[3]!, flags: frame[4]!, frame, msg, receivedAt: now })
  }

  /**
   * Backpressure: waits (not reading the peer's connection) while the peer has no token left or
   * its queue, or the whole queue, is at its bound; the transport then stops reading the socket.
   */
  private async roomToRead(peer: string): Promise<void> {
    for (;;) {
      if (!this.started) return
      if (this.rateLimit !== false) {
        const b = this.buckets.get(peer)
        const wait = b === undefined ? 0 : b.waitTime(this.clock.now())
        if (wait > 0) {
          await sleep(wait, this.stopController.signal).catch(() => {})
          continue
        }
      }
      const q = this.queue
      const full = q.peerDepth(peer) >= q.maxPerPeer || q.peerBytes(peer) + this.maxFrameBytes > q.maxBytesPerPeer ||
        q.size >= q.maxTotal || q.bytes + this.maxFrameBytes > q.maxBytesTotal
      if (!full || q.peerDepth(peer) === 0) return
      await new Promise<void>((resolve) => {
        const list = this.drainWaiters.get(peer) ?? []
        list.push(resolve)
        this.drainWaiters.set(peer, list)
      })
    }
  }

  /** Wakes the read loops of peers whose queue drained to half (and the total to 3/4). */
  private wakeReaders(): void {
    if (this.drainWaiters.size === 0) return
    const q = this.queue
    if (q.size > (q.maxTotal * 3) / 4 || q.bytes > (q.maxBytesTotal * 3) / 4) return
    for (const [peer, list] of this.drainWaiters) {
      if (q.peerDepth(peer) > q.maxPerPeer / 2 || q.peerBytes(peer) > q.maxBytesPerPeer / 2) continue
      this.drainWaiters.delete(peer)
      for (const w of list) w()
    }
  }

  /** Queues a message (or starts it at once when nothing waits, a slot is free and the slice has time). */
  private enqueue(item: QueueItem): boolean {
    if (this.queue.size === 0 && this.active < this.concurrency && !this.sliceSpent()) {
      this.start1(item)
      return true
    }
    const r = this.queue.push(item.fromPeer, item.msg.metadata.priority, item, item.conn !== undefined && !this.isKnown(item.fromPeer))
    if (r !== 'ok') {
      if (item.conn !== undefined) this.reject(RejectReason.QUEUE_FULL, item.fromPeer, item.msg.metadata.message_id)
      return false
    }
    this.pump()
    return true
  }

  /**
   * A known peer or signer: this node, or trusted (score > 0) by the trust engine. Others are
   * strangers: they share one scheduler turn and the replay window's stranger pool.
   */
  private isKnown(did: string): boolean {
    if (did === this.did) return true
    const score = this.trust.peerScore?.(did)
    return score !== undefined && score > 0
  }

  /**
   * True when the current run of pipeline work has used its slice: the verify, handlers and
   * signing all run in microtasks, so without a cut a backlog would be worked off in one go while
   * no socket is read. A run starts with the first work after the event loop came round; a
   * `setImmediate` (after the loop's I/O phase) ends it and resumes a deferred pump.
   */
  private sliceSpent(): boolean {
    const now = performance.now()
    if (this.sliceBegin < 0) {
      this.sliceBegin = now
      setImmediate(this.endSlice)
      return false
    }
    return now - this.sliceBegin > this.sliceMs
  }

  private readonly endSlice = (): void => {
    this.sliceBegin = -1
    this.drainGate()
    if (this.pumpDeferred) {
      this.pumpDeferred = false
      this.pump()
    }
  }

  /**
   * Time for the next expensive step of a message (signature verify, handler and response
   * signing): undefined when the slice has time and nobody waits (no promise, no cost), else a
   * promise that resolves in a later slice, in order. Each step, once it ran, lets the next one
   * in while the slice lasts (`drainGate`), so one turn of the event loop does at most about
   * `pipelineSliceMs` of pipeline work plus one step.
   */
  private turn(peer: string): Promise<void> | undefined {
    if (this.gateSize === 0 && !this.sliceSpent()) return undefined
    return new Promise<void>((resolve) => {
      let q = this.gate.get(peer)
      if (q === undefined) {
        q = []
        this.gate.set(peer, q)
        this.gateRing.push(peer)
      }
      q.push(resolve)
      this.gateSize++
      if (this.sliceBegin < 0) this.sliceSpent() // make sure a slice end is scheduled
    })
  }

  /**
   * Lets the next waiting step in when the slice has time (it calls this again when it is done).
   * Peers take turns: a peer with many messages in flight delays another's step by at most one
   * of its own steps per round, whatever the pipeline's concurrency.
   */
  private drainGate(): void {
    if (this.gateSize === 0 || this.sliceSpent()) return
    const ring = this.gateRing
    const peer = ring[this.gateHead]!
    const q = this.gate.get(peer)!
    const next = q.shift()!
    this.gateSize--
    if (q.length === 0) {
      this.gate.delete(peer)
      ring.splice(this.gateHead, 1)
      if (this.gateHead >= ring.length) this.gateHead = 0
    } else {
      this.gateHead = (this.gateHead + 1) % ring.length
    }
    next()
  }

  private pump(): void {
    if (this.pumpDeferred) return
    while (this.active < this.concurrency && this.queue.size > 0) {
      if (this.sliceSpent()) {
        this.pumpDeferred = true
        return
      }
      const item = this.queue.shift()
      if (item === undefined) break
      this.start1(item)
    }
    this.wakeReaders()
  }

  private start1(item: QueueItem): void {
    let slot = this.freeSlots.pop()
    if (slot === undefined) {
      const controller = new AbortController()
      slot = { controller, options: { signal: controller.signal }, gen: this.gen }
      this.allSlots.push(slot)
    }
    this.active++
    void this.process(item, slot)
  }

  private release(slot: Slot): void {
    this.active--
    if (slot.gen === this.gen) this.freeSlots.push(slot)
    this.drainGate()
    if (this.queue.size > 0) this.pump()
  }

  /** Waits for a turn (see `turn()`); false when the router stopped meanwhile. */
  private async waitTurn(t: Promise<void>, slot: Slot): Promise<boolean> {
    await t
    this.drainGate()
    return slot.gen === this.gen
  }

  private reject(reason: string, fromPeer: string, messageId?: string): void {
    this.counters.reject(reason)
    this.emit('message:rejected', messageId === undefined ? { reason, fromPeer } : { reason, fromPeer, messageId })
  }

  /** The DID of a key id (cached, bounded). */
  private didOf(keyId: string): string {
    let did = this.didCache.get(keyId)
    if (did === undefined) {
      did = didOfKeyId(keyId)
      if (this.didCache.size >= DID_CACHE_SIZE) this.didCache.delete(this.didCache.keys().next().value as string)
      this.didCache.set(keyId, did)
    }
    return did
  }

  /**
   * The codec's checkExpiry rule, without its options object: past expiry or too far in the
   * future; and older than `maxMessageAgeSeconds` whatever the ttl (receiver policy).
   */
  private isExpired(msg: KLPMessage, now: number): boolean {
    return now > this.expiryOf(msg) || msg.timestamp > now + this.clockSkewMs
  }

  /**
   * The pipeline for one queued message: expiry, replay, signature, routing, trust, dispatch.
   * Never rejects (a failure is logged); releases its slot at the end.
   */
  private async process(item: QueueItem, slot: Slot): Promise<void> {
    try {
      const msg = item.msg
      const fromPeer = item.fromPeer
      const meta = msg.metadata
      const id = meta.message_id
      if (meta.ttl > this.maxTtl) return this.reject(RejectReason.TTL_TOO_LONG, fromPeer, id)
      if (this.isExpired(msg, this.clock.now())) return this.reject(RejectReason.EXPIRED, fromPeer, id)
      const isBroadcast = msg.type === KLPMessageType.BROADCAST_ANNOUNCE
      const isLocal = msg.target.authority === this.authority
      if (!isBroadcast && !isLocal) {
        // forwarders do not suppress duplicates: a retried request must reach its target, which answers from its cache
        if (item.conn !== undefined) {
          const t = this.turn(fromPeer)
          if (t !== undefined && !(await this.waitTurn(t, slot))) return
          try {
            await verifyMessage(msg, this.verifier, slot.options)
          } catch (err) {
            if (slot.options.signal.aborted) return
            return this.reject(verifyReason(err), fromPeer, id)
          }
          if (slot.gen !== this.gen) return
        }
        return await this.forward(item)
      }
      // the replay window only lives in memory: a message older than this router's start may
      // be a replay of one a previous run processed
      if (item.conn !== undefined && !this.acceptBeforeStart && msg.timestamp < (this.startedAt ?? 0) - this.clockSkewMs) {
        return this.reject(RejectReason.REPLAY, fromPeer, id)
      }
      // replay window and response cache are keyed by signer DID + message id: the id covers the
      // body only, so somebody re-signing another's body must not pre-empt the genuine message
      const signerDid = this.didOf(msg.signer)
      const key = `${signerDid} ${id}`
      if (this.replay.has(key)) {
        const cached = this.responses.get(key)
        if (cached !== undefined) {
          this.counters.cachedResponses++
          try {
            this.routeFrame(cached.target, cached.frame)
          } catch {}
        }
        return this.reject(RejectReason.REPLAY, fromPeer, id)
      }
      if (item.conn !== undefined) {
        const t = this.turn(fromPeer)
        if (t !== undefined && !(await this.waitTurn(t, slot))) return
        try {
          await verifyMessage(msg, this.verifier, slot.options)
        } catch (err) {
          if (slot.options.signal.aborted) return
          return this.reject(verifyReason(err), fromPeer, id)
        }
        if (slot.gen !== this.gen) return // stopped while verifying
      }
      // source binding before anything is recorded
      const sourceAuthority = msg.source.authority
      const bound = sourceAuthority === this.authority ? this.did : this.table.didOf(sourceAuthority)
      if (bound !== undefined && bound !== signerDid) return this.reject(RejectReason.SOURCE_MISMATCH, fromPeer, id)
      const corr = meta.correlation_id
      // a response nobody waits for and nobody handles has no effect: it takes no room in the window
      if (corr !== undefined && !this.pending.has(corr) && !this.handlers.has(msg.type)) {
        return this.reject(RejectReason.UNSOLICITED_RESPONSE, fromPeer, id)
      }
      const expiresAt = this.expiryOf(msg)
      if (!this.replay.checkAndRecord(key, expiresAt, signerDid, !this.isKnown(signerDid))) return this.reject(RejectReason.REPLAY, fromPeer, id)
      if (item.conn !== undefined && sourceAuthority !== this.authority) {
        this.table.learn(sourceAuthority, fromPeer, item.hops + 1)
      }
      if (isBroadcast) {
        this.flood(item)
        if (sourceAuthority === this.authority) return
      }
      // trust requirements of the message (and this node's policy), checked against its signer;
      // a synchronous engine (localTrustStore) costs no promise
      let trustOk: boolean
      try {
        const policy = this.trustPolicy?.[msg.type]
        const required = policy === undefined ? meta.trust_requirements : strictestTrust(meta.trust_requirements, policy)
        const pending = this.trust.check(signerDid, required, slot.options)
        trustOk = (pending instanceof Promise ? await pending : pending).passed === true
      } catch (err) {
        this.log.warn('trust engine failed', { err: errName(err) })
        trustOk = false
      }
      if (slot.gen !== this.gen) return
      if (!trustOk) return await this.fail(msg, fromPeer, expiresAt, { reason: RejectReason.INSUFFICIENT_TRUST, message: 'sender does not meet the trust requirements' })
      if (corr !== undefined) {
        const p = this.pending.get(corr)
        if (p !== undefined) {
          // only the request's target, with the expected type and signer, answers it; anything
          // else is refused and the request stays pending
          if (!this.isResponseTo(p, msg, signerDid)) return this.reject(RejectReason.RESPONSE_MISMATCH, fromPeer, id)
          // the authority answered as the DID it is pinned to: something relies on that pin now
          if (p.reliesOnPin && sourceAuthority === p.target && sourceAuthority !== this.authority) this.table.confirm(sourceAuthority, signerDid)
          this.pending.delete(corr)
          this.counters.responsesMatched++
          p.resolve(msg)
          return
        }
      }
      const handler = this.handlers.get(msg.type)
      if (handler === undefined) {
        if (corr !== undefined) return this.reject(RejectReason.UNSOLICITED_RESPONSE, fromPeer, id)
        return await this.fail(msg, fromPeer, expiresAt, { reason: RejectReason.UNSUPPORTED_MESSAGE_TYPE, message: `expected a handled message type, got ${msg.type}` })
      }
      if (isBroadcast) this.counters.broadcastsDelivered++
      const t = this.turn(fromPeer)
      if (t !== undefined && !(await this.waitTurn(t, slot))) return
      const ctx: MessageContext = { fromPeer, signerDid, receivedAt: item.receivedAt, signal: slot.options.signal }
      let result: ProcessingResult
      try {
        const r = this.runHandler(handler, msg, ctx)
        result = r instanceof Promise ? await r : r
        if (result === null || typeof result !== 'object') throw new TypeError('expected a ProcessingResult from the handler')
      } catch (err) {
        this.log.warn('handler failed', { type: msg.type, err: errName(err) })
        return await this.fail(msg, fromPeer, expiresAt, { reason: RejectReason.HANDLER_ERROR, message: 'the handler failed' })
      }
      if (result.status === ProcessingStatus.PROCESSED) {
        this.counters.processed++
        if (result.response !== undefined) this.respond(msg, result.response, expiresAt)
      } else if (result.status === ProcessingStatus.DEFERRED) {
        this.counters.deferred++
        const reason = result.reason ?? 'deferred'
        const response = result.response ?? (await this.errorResponse(msg, reason, 'try again later', 'deferred', result.retry_after))
        if (response !== undefined) this.respond(msg, response, expiresAt)
      } else {
        const reason = result.reason ?? 'rejected'
        this.counters.reject(reason)
        this.emit('message:rejected', { reason, fromPeer, messageId: id })
        const response = result.response ?? (await this.errorResponse(msg, reason, `rejected: ${reason}`, 'rejected'))
        if (response !== undefined) this.respond(msg, response, expiresAt)
      }
    } catch (err) {
      this.log.error('pipeline failure', { err: errName(err) })
    } finally {
      this.release(slot)
    }
  }

  /** True when `msg` (signed by `signerDid`) may resolve the pending request `p`. */
  private isResponseTo(p: Pending, msg: KLPMessage, signerDid: string): boolean {
    if (msg.type !== p.responseType) return false
    if (msg.source.authority !== p.target) {
      // a forwarder on the way may answer no_route / hop_limit (it could as well drop the request)
      const err = errorOf(msg)
      return err !== undefined && ROUTING_ERRORS.has(err.code)
    }
    let expected = p.expectedSigner
    if (!p.explicitSigner) expected ??= p.target === this.authority ? this.did : this.table.didOf(p.target)
    // nothing known: the source-binding check already required the source to be unbound or bound to the signer
    return expected === undefined || expected === signerDid
  }

  private runHandler(handler: MessageHandler, msg: KLPMessage, ctx: MessageContext): ProcessingResult | Promise<ProcessingResult> {
    // a synchronous handler needs no timer
    const r = handler(msg, ctx)
    if (!(r instanceof Promise)) return r
    return new Promise<ProcessingResult>((resolve, reject) => {
      const timer = setTimeout(() => reject(new TimeoutError(`expected the handler to finish within ${this.handlerTimeoutMs} ms`)), this.handlerTimeoutMs)
      r.then(
          (r) => {
            clearTimeout(timer)
            resolve(r)
          },
          (e: unknown) => {
            clearTimeout(timer)
            reject(e instanceof Error ? e : new Error(String(e)))
          },
        )
    })
  }

  /** Rejects a verified message and answers it with an error response when it is a request. */
  private async fail(msg: KLPMessage, fromPeer: string, expiresAt: number, o: Outcome): Promise<void> {
    this.reject(o.reason, fromPeer, msg.metadata.message_id)
    const response = await this.errorResponse(msg, o.reason, o.message, 'rejected')
    if (response !== undefined) this.respond(msg, response, expiresAt)
  }

  /** An error response, or undefined when the message must not be answered (responses, broadcasts, own messages). */
  private async errorResponse(msg: KLPMessage, code: string, message: string, status: 'rejected' | 'deferred', retryAfter?: number): Promise<KLPMessage | undefined> {
    if (msg.metadata.correlation_id !== undefined || msg.type === KLPMessageType.BROADCAST_ANNOUNCE) return undefined
    if (!this.started) return undefined
    const data: Record<string, KLPValue> = { status, error: { code, message } }
    if (retryAfter !== undefined) data.retry_after = retryAfter
    try {
      return await this.createResponse(msg, data, { priority: MessagePriority.HIGH })
    } catch (err) {
      this.log.warn('error response not signed', { err: errName(err) })
      return undefined
    }
  }

  /** Caches and sends a response without waiting for the peer (a peer that does not read holds no slot). */
  private respond(request: KLPMessage, response: KLPMessage, expiresAt: number): void {
    const frame = encodeEnvelope(EnvelopeKind.MESSAGE, 0, 0, encodeMessage(response))
    this.responses.set(`${this.didOf(request.signer)} ${request.metadata.message_id}`, frame, response.target.authority, expiresAt)
    try {
      if (response.target.authority === this.authority) {
        const item: QueueItem = { conn: undefined, fromPeer: this.did, hops: 0, flags: 0, frame, msg: response, receivedAt: this.clock.now() }
        this.enqueue(item)
      } else {
        this.routeFrame(response.target.authority, frame)
      }
    } catch (err) {
      this.log.debug('response not delivered', { err: errName(err) })
    }
  }

  // ---------------------------------------------------------------- forwarding

  private async forward(item: QueueItem): Promise<void> {
    const { msg, fromPeer } = item
    const hops = item.hops + 1
    if (hops > this.hopLimit) {
      return this.fail(msg, fromPeer, this.expiryOf(msg), { reason: RejectReason.HOP_LIMIT, message: `expected at most ${this.hopLimit} hops` })
    }
    let flags = item.flags
    const via = this.viaHint(msg, flags)
    if (via === this.authority) flags |= FLAG_VIA_REACHED
    const target = via !== undefined && via !== this.authority ? via : msg.target.authority
    const route = this.table.lookup(target, fromPeer) ?? this.table.lookup(msg.target.authority, fromPeer)
    const conn = route === undefined ? undefined : this.table.connection(route.nextHop)
    if (conn === undefined) {
      return this.fail(msg, fromPeer, this.expiryOf(msg), { reason: RejectReason.NO_ROUTE, message: `expected a route to ${msg.target.authority}` })
    }
    this.counters.forwarded++
    this.post(conn, rewrapEnvelope(item.frame, hops, flags))
  }

  private viaHint(msg: KLPMessage, flags: number): string | undefined {
    if ((flags & FLAG_VIA_REACHED) !== 0) return undefined
    for (const h of msg.metadata.routing_hints) if (h.kind === 'via') return h.value
    return undefined
  }

  /** When the message stops being accepted: its ttl, capped by `maxMessageAgeSeconds`, plus the skew. */
  private expiryOf(msg: KLPMessage): number {
    return msg.timestamp + Math.min(msg.metadata.ttl * 1000, this.maxAgeMs) + this.clockSkewMs
  }

  private flood(item: QueueItem): void {
    const hops = item.hops + 1
    if (hops > this.hopLimit && item.conn !== undefined) return
    const frame = item.conn === undefined ? item.frame : rewrapEnvelope(item.frame, hops, item.flags)
    for (const did of this.table.peers()) {
      if (did === item.fromPeer) continue
      const c = this.table.connection(did)
      if (c === undefined) continue
      this.counters.forwarded += item.conn === undefined ? 0 : 1
      this.post(c, frame)
    }
  }

  /** Queues a frame for a connection without waiting; a full outbound queue drops it (counted). */
  private post(conn: Connection, frame: Uint8Array): boolean {
    if (this.outbound.post(conn, frame)) return true
    this.log.debug('outbound frame dropped: the peer\'s queue is full', { peer: conn.remotePeer, bytes: this.outbound.queuedBytes(conn) })
    return false
  }

  /** Routes an already enveloped frame (hop 0) toward an authority, without waiting. */
  private routeFrame(authority: string, frame: Uint8Array): void {
    const route = this.table.lookup(authority)
    const conn = route === undefined ? undefined : this.table.connection(route.nextHop)
    if (conn === undefined) throw new NoRouteError(`expected a route to ${authority}, got none`)
    this.post(conn, frame)
  }

  // ---------------------------------------------------------------- outbound

  /** A target address; strings are parsed once and cached (bounded, frozen). */
  private address(a: string | KLPAddress): KLPAddress {
    if (typeof a !== 'string') return a
    let parsed = this.addressCache.get(a)
    if (parsed === undefined) {
      parsed = Object.freeze(parseAddress(a))
      if (this.addressCache.size >= ADDRESS_CACHE_SIZE) this.addressCache.delete(this.addressCache.keys().next().value as string)
      this.addressCache.set(a, parsed)
    }
    return parsed
  }

  /** This node's address with a path (cached, bounded, frozen). */
  private sourceAddress(path: string): KLPAddress {
    let a = this.sourceAddresses.get(path)
    if (a === undefined) {
      a = Object.freeze({ scheme: 'klp', authority: this.authority, path })
      if (this.sourceAddresses.size >= ADDRESS_CACHE_SIZE) this.sourceAddresses.delete(this.sourceAddresses.keys().next().value as string)
      this.sourceAddresses.set(path, a)
    }
    return a
  }

  private async build(init: MessageInit): Promise<KLPMessage> {
    if (init.target === undefined) throw new InvalidParametersError('expected a target address, got undefined')
    const unsigned: UnsignedKLPMessage = {
      version: '1.0',
      type: init.type,
      source: this.sourceAddress(init.sourcePath ?? '/'),
      target: this.address(init.target),
      payload: {
        content_type: init.contentType ?? 'application/cbor',
        data: init.data,
        encryption: { enabled: false },
        compression: { enabled: false },
      },
      metadata: {
        priority: init.priority ?? MessagePriority.NORMAL,
        ttl: init.ttl ?? this.defaultTtl,
        routing_hints: init.routingHints ?? [],
        trust_requirements: init.trustRequirements ?? NO_TRUST,
        ...(init.correlationId === undefined ? {} : { correlation_id: init.correlationId }),
      },
      timestamp: Math.floor(this.clock.now()),
    }
    let msg = await signMessage(unsigned, this.signer)
    // Ids are content addresses: the same content built twice in one millisecond would get the same
    // id (and the second copy would be dropped as a replay). Make such a message unique with a
    // `nonce` routing hint (only on collision, so ordinary messages carry nothing extra).
    if (unsigned.timestamp !== this.idMs) {
      this.idMs = unsigned.timestamp
      this.idsThisMs.clear()
    }
    while (this.idsThisMs.has(msg.metadata.message_id)) {
      const hints = unsigned.metadata.routing_hints.filter((h) => h.kind !== 'nonce')
      hints.push({ kind: 'nonce', value: (++this.nonce).toString(36) })
      unsigned.metadata.routing_hints = hints
      msg = await signMessage(unsigned, this.signer)
    }
    this.idsThisMs.add(msg.metadata.message_id)
    return msg
  }

  private async toMessage(m: MessageInit | KLPMessage): Promise<KLPMessage> {
    return 'signature' in m && m.signature instanceof Uint8Array ? m : this.build(m as MessageInit)
  }

  async createResponse(request: KLPMessage, data: KLPValue, options: { type?: KLPMessageTypeT; priority?: MessagePriority } = {}): Promise<KLPMessage> {
    return this.build({
      type: options.type ?? responseTypeFor(request.type),
      target: request.source,
      sourcePath: request.target.path,
      data,
      priority: options.priority ?? request.metadata.priority,
      correlationId: request.metadata.message_id,
    })
  }

  async send(m: MessageInit | KLPMessage, options: AbortOptions = {}): Promise<KLPMessage> {
    this.assertStarted()
    const msg = await this.toMessage(m)
    await this.dispatchOutbound(msg, options.signal)
    return msg
  }

  private async dispatchOutbound(msg: KLPMessage, signal?: AbortSignal): Promise<void> {
    const frame = encodeEnvelope(EnvelopeKind.MESSAGE, 0, 0, encodeMessage(msg))
    if (msg.type === KLPMessageType.BROADCAST_ANNOUNCE || msg.target.authority === this.authority) {
      const item: QueueItem = { conn: undefined, fromPeer: this.did, hops: 0, flags: 0, frame, msg, receivedAt: this.clock.now() }
      if (!this.enqueue(item)) throw new TooManyRequestsError('expected room in the local queue, got a full queue')
      return
    }
    const via = this.viaHint(msg, 0)
    const route = (via === undefined ? undefined : this.table.lookup(via)) ?? this.table.lookup(msg.target.authority)
    const conn = route === undefined ? undefined : this.table.connection(route.nextHop)
    if (conn === undefined) throw new NoRouteError(`expected a route to ${msg.target.authority}, got none`)
    await this.outbound.deliver(conn, frame, signal)
  }

  async broadcast(init: Omit<MessageInit, 'type'> & { type?: KLPMessageTypeT }, options: AbortOptions = {}): Promise<KLPMessage> {
    this.assertStarted()
    const msg = await this.build({
      ...init,
      type: KLPMessageType.BROADCAST_ANNOUNCE,
      target: init.target ?? { scheme: 'klp', authority: this.authority, path: '/broadcast' },
    })
    await this.dispatchOutbound(msg, options.signal)
    return msg
  }

  async request(init: MessageInit, options: RequestOptions = {}): Promise<KLPMessage> {
    this.assertStarted()
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs
    const retries = options.retries ?? this.requestRetries
    if (!(timeoutMs > 0)) throw new InvalidParametersError(`expected timeoutMs > 0, got ${timeoutMs}`)
    if (!Number.isInteger(retries) || retries < 0) throw new InvalidParametersError(`expected retries to be an integer >= 0, got ${retries}`)
    const signal = options.signal
    if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason })
    const expectedSigner = options.expectedSigner
    if (expectedSigner !== undefined && (typeof expectedSigner !== 'string' || !expectedSigner.startsWith('did:'))) {
      throw new InvalidParametersError(`expected expectedSigner to be a DID, got ${String(expectedSigner)}`)
    }
    const deadline = Date.now() + timeoutMs
    const interval = timeoutMs / (retries + 1)
    let lastNoRoute: Error | undefined
    let deferrals = 0
    for (;;) {
      const msg = await this.build(init)
      const id = msg.metadata.message_id
      if (this.pending.size >= this.maxPending) throw new TooManyRequestsError(`expected fewer than ${this.maxPending} pending requests`)
      let resolveP!: (m: KLPMessage) => void
      let rejectP!: (e: Error) => void
      const responded = new Promise<KLPMessage>((res, rej) => {
        resolveP = res
        rejectP = rej
      })
      responded.catch(() => {})
      const target = msg.target.authority
      this.pending.set(id, {
        resolve: resolveP,
        reject: rejectP,
        target,
        responseType: responseTypeFor(msg.type),
        expectedSigner: expectedSigner ?? (target === this.authority ? this.did : this.table.didOf(target)),
        explicitSigner: expectedSigner !== undefined,
        reliesOnPin: options.reliesOnPin ?? msg.type !== KLPMessageType.PEER_DISCOVERY,
      })
      let response: KLPMessage | undefined
      try {
        for (let attempt = 0; attempt <= retries && response === undefined; attempt++) {
          const left = deadline - Date.now()
          if (left <= 0) break
          if (attempt > 0) this.counters.retries++
          try {
            await this.dispatchOutbound(msg, signal)
            lastNoRoute = undefined
          } catch (err) {
            if (errName(err) === 'NoRouteError') lastNoRoute = err as Error
            else throw err
          }
          const wait = attempt === retries ? left : Math.min(left, interval)
          response = await this.race(responded, wait, signal)
        }
      } finally {
        this.pending.delete(id)
      }
      if (response === undefined) {
        if (lastNoRoute !== undefined) throw lastNoRoute
        throw new RequestTimeoutError(`expected a response within ${timeoutMs} ms, got none after ${retries + 1} attempts`)
      }
      const err = errorOf(response)
      if (err === undefined) return response
      if (err.status === 'deferred' && err.retry_after !== undefined) {
        // at least MIN_RETRY_AFTER_MS (a 0 must not force immediate resends), at most `retries` deferrals
        const waitMs = Math.max(MIN_RETRY_AFTER_MS, err.retry_after * 1000)
        if (deferrals < retries && Date.now() + waitMs < deadline) {
          deferrals++
          await sleep(waitMs, signal)
          continue
        }
        const e = new RequestDeferredError(`deferred by the remote (${err.code}), retry after ${err.retry_after} s`, err.code, response)
        e.retryAfter = err.retry_after
        throw e
      }
      throw new RemoteRejectedError(`rejected by the remote: ${err.code}`, err.code, response)
    }
  }

  /** Resolves with the response, or undefined after `ms`; rejects on abort or stop. */
  private race(p: Promise<KLPMessage>, ms: number, signal?: AbortSignal): Promise<KLPMessage | undefined> {
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(t)
        signal?.removeEventListener('abort', onAbort)
      }
      const onAbort = (): void => {
        cleanup()
        reject(new AbortError(undefined, { cause: signal?.reason }))
      }
      const t = setTimeout(() => {
        cleanup()
        resolve(undefined)
      }, Math.max(0, ms))
      signal?.addEventListener('abort', onAbort, { once: true })
      p.then(
        (m) => {
          cleanup()
          resolve(m)
        },
        (e: unknown) => {
          cleanup()
          reject(e instanceof Error ? e : new Error(String(e)))
        },
      )
    })
  }

  // ---------------------------------------------------------------- observability

  metrics(): RouterMetrics {
    const c = this.counters
    const [critical, high, normal, low] = this.queue.depths()
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
      queueDepth: { total: this.queue.size, critical, high, normal, low },
      queueBytes: this.queue.bytes,
      outbound: this.outbound.stats(),
      slowPeers: c.slowPeers,
      replayStrangerSize: this.replay.strangerSize,
      pinEvictions: this.table.pinEvictions,
      pinRefusals: this.table.pinRefusals,
      pendingRequests: this.pending.size,
      replayCacheSize: this.replay.size,
      replayEvictions: this.replay.evictions,
      responseCacheSize: this.responses.size,
      peers: this.table.peers().length,
      routes: this.table.routes().length,
      pinnedAuthorities: this.table.pinCount,
    }
  }

  addEventListener<K extends keyof RouterEvents>(type: K, listener: (evt: RouterEvents[K]) => void, options?: { once?: boolean; signal?: AbortSignal }): void {
    this.events.addEventListener(type, listener as (evt: Event) => void, options)
  }

  removeEventListener<K extends keyof RouterEvents>(type: K, listener: (evt: RouterEvents[K]) => void): void {
    this.events.removeEventListener(type, listener as (evt: Event) => void)
  }

  private emit<K extends keyof RouterEvents>(type: K, detail: RouterEvents[K]['detail']): void {
    this.events.dispatchEvent(new CustomEvent(type, { detail }))
  }
}

// ------------------------------------------------------------------ factories

/** js-libp2p style factory: `klpRouter(init)(components)`. No I/O happens before `start()`. */
export function klpRouter(init: RouterInit): (components: RouterComponents) => Router {
  return (components) => new KLPRouter(init, components)
}

export interface CreateRouterOptions extends RouterInit {
  /** The node identity: anything with a `signer` (a did-security Identity fits). */
  identity: { signer: Signer }
  signatureVerifier: SignatureVerifier
  transports: Transport[]
  trustEngine?: TrustEngine
  clock?: Clock
  logger?: Logger
  /** Start the router before returning. Default true. */
  start?: boolean
}

/** Convenience: builds (and by default starts) a router. */
export async function createRouter(options: CreateRouterOptions): Promise<Router> {
  const { identity, signatureVerifier, transports, trustEngine, clock, logger, start, ...init } = options
  const router = klpRouter(init)({
    signer: identity.signer,
    signatureVerifier,
    transports,
    ...(trustEngine === undefined ? {} : { trustEngine }),
    ...(clock === undefined ? {} : { clock }),
    ...(logger === undefined ? {} : { logger }),
  })
  if (start !== false) await router.start()
  return router
}
