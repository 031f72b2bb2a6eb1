/**
 * The state the router's modules share (one per router): identity, configuration, the tables and
 * queues, counters and events, and the few operations every module needs. Internal.
 */
import {
  type Clock,
  type Connection,
  type KLPMessage,
  type Logger,
  type SignatureVerifier,
  type Signer,
  type TrustEngine,
  type TrustObservation,
} from '@kos-mesh/interface'
import { NoRouteError } from './errors.js'
import { HandlerTable } from './handlers.js'
import { didOfKeyId, errName } from './messages.js'
import { Counters } from './metrics.js'
import type { RouterConfig } from './options.js'
import { OutboundQueues } from './outbound.js'
import { ReplayWindow } from './replay-cache.js'
import { ResponseCache } from './response-cache.js'
import { RoutingTable } from './routing-table.js'
import { FairScheduler } from './scheduler.js'
import type { TokenBucket } from './token-bucket.js'
import { CpuShares } from './usage.js'
import type { RouterEvents } from './types.js'

/** One inbound (or locally delivered) message waiting in the fair scheduler. */
export interface QueueItem {
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
 * signal (aborted on stop) handed to the verifier, the trust engine and the handler. Slots are
 * reused, so the hot path allocates no AbortController.
 */
export interface Slot {
  readonly controller: AbortController
  readonly options: { signal: AbortSignal }
  /** The router generation (start/stop cycle) the slot belongs to. */
  readonly gen: number
}

export interface Pending {
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

export interface CoreComponents {
  authority: string
  signer: Signer
  verifier: SignatureVerifier
  trust: TrustEngine
  clock: Clock
  log: Logger
  cfg: RouterConfig
  table: RoutingTable
  replay: ReplayWindow
  responses: ResponseCache
  queue: FairScheduler<QueueItem>
  outbound: OutboundQueues
}

const DID_CACHE_SIZE = 1024

export class RouterCore {
  readonly authority: string
  readonly did: string
  readonly signer: Signer
  readonly verifier: SignatureVerifier
  readonly trust: TrustEngine
  /**
   * The engine's `isRevoked` bound to it, or undefined when it has none: the pipeline calls it once
   * per message (and the read loop once per frame), so it must be a cheap lookup.
   */
  readonly isRevoked: ((did: string) => boolean) | undefined
  readonly clock: Clock
  readonly log: Logger
  readonly cfg: RouterConfig
  readonly table: RoutingTable
  readonly replay: ReplayWindow
  readonly responses: ResponseCache
  readonly queue: FairScheduler<QueueItem>
  readonly outbound: OutboundQueues
  /** Each peer's recent CPU share of the pipeline, and the budget on it. */
  readonly shares: CpuShares
  readonly counters = new Counters()
  readonly events = new EventTarget()
  readonly handlers = new HandlerTable()
  readonly pending = new Map<string, Pending>()
  /** Per-peer token buckets (rate limit). */
  readonly buckets = new Map<string, TokenBucket>()
  started = false
  /** Start/stop generation: work of an older generation stops where it is. */
  gen = 0
  /** Time of the first start (clock ms): older messages may be replays of a previous run. */
  startedAt: number | undefined
  stopController = new AbortController()
  /** key id -> DID (bounded): saves the string slice per message. */
  private readonly didCache = new Map<string, string>()

  constructor(c: CoreComponents) {
    this.authority = c.authority
    this.signer = c.signer
    this.did = didOfKeyId(c.signer.keyId)
    this.verifier = c.verifier
    this.trust = c.trust
    this.isRevoked = typeof c.trust.isRevoked === 'function' ? c.trust.isRevoked.bind(c.trust) : undefined
    this.clock = c.clock
    this.log = c.log
    this.cfg = c.cfg
    this.table = c.table
    this.replay = c.replay
    this.responses = c.responses
    this.queue = c.queue
    this.outbound = c.outbound
    this.shares = new CpuShares({ busyShare: c.cfg.busyCpuShare, strangerShare: c.cfg.strangerCpuShare, isStranger: (peer) => !this.isKnown(peer) })
  }

  emit<K extends keyof RouterEvents>(type: K, detail: RouterEvents[K]['detail']): void {
    this.events.dispatchEvent(new CustomEvent(type, { detail }))
  }

  /** Counts a reject and emits `message:rejected`. */
  reject(reason: string, fromPeer: string, messageId?: string): void {
    this.counters.reject(reason)
    this.emit('message:rejected', messageId === undefined ? { reason, fromPeer } : { reason, fromPeer, messageId })
  }

  /** Reports an outcome observed of a DID to the trust engine (`observe`), which must never break the router. */
  observe(did: string, outcome: TrustObservation): void {
    const trust = this.trust
    if (trust.observe === undefined || did === this.did) return
    try {
      trust.observe(did, outcome)
    } catch (err) {
      this.log.debug('trust engine observe failed', { outcome, err: errName(err) })
    }
  }

  /** The DID of a key id (cached, bounded). */
  didOf(keyId: string): string {
    let did = this.didCache.get(keyId)
    if (did === undefined) {
      did = didOfKeyId(keyId)
      if (this.didCache.size >= DID_CACHE_SIZE) this.didCache.delete(this.didCache.keys().next().value as string)
      this.didCache.set(keyId, did)
    }
    return did
  }

  /**
   * A known peer or signer: this node, or trusted (score > 0) by the trust engine. Others are
   * strangers: they share one scheduler turn and the replay window's stranger pool.
   */
  isKnown(did: string): boolean {
    if (did === this.did) return true
    const score = this.trust.peerScore?.(did)
    return score !== undefined && score > 0
  }

  /** When the message stops being accepted: its ttl, capped by `maxMessageAgeSeconds`, plus the skew. */
  expiryOf(msg: KLPMessage): number {
    return msg.timestamp + Math.min(msg.metadata.ttl * 1000, this.cfg.maxAgeMs) + this.cfg.clockSkewMs
  }

  /** Past its expiry (see `expiryOf`) or too far in the future. */
  isExpired(msg: KLPMessage, now: number): boolean {
    return now > this.expiryOf(msg) || msg.timestamp > now + this.cfg.clockSkewMs
  }

  /** Queues a frame for a connection without waiting; a full outbound queue drops it (counted). */
  post(conn: Connection, frame: Uint8Array): boolean {
    if (this.outbound.post(conn, frame)) return true
    this.log.debug('outbound frame dropped: the peer\'s queue is full', { peer: conn.remotePeer, bytes: this.outbound.queuedBytes(conn) })
    return false
  }

  /** The connection of the next hop toward an authority, if any. */
  nextHop(authority: string, avoid?: string): Connection | undefined {
    const route = this.table.lookup(authority, avoid)
    return route === undefined ? undefined : this.table.connection(route.nextHop)
  }

  /** Routes an already enveloped frame (hop 0) toward an authority, without waiting. */
  routeFrame(authority: string, frame: Uint8Array): void {
    const conn = this.nextHop(authority)
    if (conn === undefined) throw new NoRouteError(`expected a route to ${authority}, got none`)
    this.post(conn, frame)
  }
}
