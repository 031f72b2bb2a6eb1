/**
 * Signed KLP BROADCAST_ANNOUNCE messages over a libp2p gossipsub topic (`/kos/broadcast/1.0.0`), so
 * the router's broadcasts and the trust service's statements and revocations (which travel as
 * BROADCAST_ANNOUNCE) can reach nodes through gossipsub meshes.
 *
 * Every received message passes a gossipsub topic validator before gossipsub delivers or forwards
 * it: size bound, strict klp-codec decode, type BROADCAST_ANNOUNCE, not expired / not from the future,
 * then the KLP signature (klp-codec `verifyMessage` with the given SignatureVerifier). A message that
 * fails is `Reject`ed: not delivered, not forwarded, and gossipsub's peer score counts it against the
 * peer that sent it. Accepted messages reach the handlers once per KLP `message_id` (gossipsub's own
 * id is per publisher, so a message published by two bridges is de-duplicated here).
 *
 * The router: `attach(router)` connects both sides. Outbound, the router's broadcast strategy
 * becomes `bridgeStrategy(inner)`, which publishes this node's own broadcasts to the topic too;
 * inbound, every broadcast the validator accepted goes to `router.deliverBroadcast(bytes, { fromPeer:
 * <the neighbour that propagated it> })`, where it passes the router's own checks (expiry, revoked,
 * replay window shared with the KLP connections, signature, source binding, trust) and reaches the
 * handlers at most once whichever path (gossipsub or KLP links) brought it first; the router does
 * not re-spread it (gossipsub does). A message the validator refuses is also handed to the router,
 * which refuses it by its own checks and counts it among its rejects. The gossipsub-level signature
 * (StrictSign, the publisher's PeerId) is independent of the KLP signer: a node may republish another
 * node's broadcast unchanged.
 */
import { InvalidParametersError, KLPMessageType, systemClock } from '@kos-mesh/interface'
import type { AbortOptions, BroadcastContext, BroadcastStrategy, Clock, KLPMessage, MessageRouter, SignatureVerifier } from '@kos-mesh/interface'
import { decodeMessage, encodeMessage, verifyMessage } from '@kos-mesh/klp-codec'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { GossipSub, Message } from '@libp2p/gossipsub'
import type { Libp2p, PeerId } from '@libp2p/interface'
import { InvalidBroadcastError, MissingServiceError, RevokedSignerError } from './errors.js'
import { didFromPeerId } from '../peer-id.js'

/** The gossipsub topic of KLP broadcasts. */
export const KOS_BROADCAST_TOPIC = '/kos/broadcast/1.0.0'

/** Defaults of `gossipsubBroadcast`. */
export const GOSSIPSUB_BROADCAST_DEFAULTS = Object.freeze({
  topic: KOS_BROADCAST_TOPIC,
  serviceName: 'pubsub',
  maxMessageBytes: 256 * 1024,
  clockSkewMs: 30_000,
  maxAgeMs: 3_600_000,
  dedupeSize: 8192,
})

/**
 * Options of {@link gossipsubBroadcast}: the topic, the gossipsub service, and the bounds of the
 * topic validator (defaults in {@link GOSSIPSUB_BROADCAST_DEFAULTS}).
 */
export interface GossipsubBroadcastInit {
  /** The gossipsub topic. Default `/kos/broadcast/1.0.0` ({@link KOS_BROADCAST_TOPIC}). */
  topic?: string
  /** Name of the gossipsub service on the host. Default `pubsub`. */
  serviceName?: string
  /** Largest encoded message accepted. Default 256 KiB. */
  maxMessageBytes?: number
  /** Allowed clock difference, both ways. Default 30 s. */
  clockSkewMs?: number
  /** A message's lifetime is its ttl capped by this (as the router's `maxMessageAgeSeconds`). Default 1 h. */
  maxAgeMs?: number
  /** KLP message ids remembered for de-duplication. Default 8192. */
  dedupeSize?: number
}

/**
 * What {@link gossipsubBroadcast} runs on: a host with a gossipsub service, the verifier of KLP
 * signatures, and optionally a clock and a revocation check.
 */
export interface GossipsubBroadcastComponents {
  /** A js-libp2p host with a gossipsub service (`services.pubsub`). */
  libp2p: Libp2p<any> // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Verifies KLP signatures (did-security's `createSignatureVerifier()`). */
  signatureVerifier: SignatureVerifier
  /** Now, for the expiry and clock-skew checks. Default `systemClock`. */
  clock?: Pick<Clock, 'now'>
  /**
   * True for a revoked DID (a TrustEngine's `isRevoked`, bound): broadcasts it signed are refused by
   * the topic validator, so gossipsub neither delivers nor forwards them. Default: none revoked here
   * (an attached router still refuses them).
   */
  isRevoked?: (did: string) => boolean
}

/** A verified broadcast as handlers get it. */
export interface ReceivedBroadcast {
  /** The decoded, signature-checked message (`message.signer` is its KLP author). */
  readonly message: KLPMessage
  /** The bytes as received (forward these unchanged). */
  readonly bytes: Uint8Array
  /** The did:key of the gossipsub publisher (may differ from the KLP signer), when known. */
  readonly publisher?: string
  /** The PeerId of the neighbour that delivered it. */
  readonly receivedFrom?: PeerId
}

/**
 * A handler of verified broadcasts (`GossipsubBroadcast.onBroadcast`): called once per KLP
 * `message_id` (among the last `dedupeSize` ids seen). Handlers run one after another, each awaited;
 * what one throws or rejects with is ignored (the next still runs).
 */
export type BroadcastHandler = (broadcast: ReceivedBroadcast) => void | Promise<void>

/** What `attach` needs of a router (klp-router's Router fits). */
export type BroadcastRouter = Pick<MessageRouter, 'setBroadcastStrategy' | 'deliverBroadcast'>

/** Options of `GossipsubBroadcast.attach`. */
export interface AttachOptions {
  /** How the router relays broadcasts over its KLP links besides gossipsub. Default: flooding. */
  strategy?: BroadcastStrategy
}

/** Counters of a {@link GossipsubBroadcast} since it was created. */
export interface GossipsubBroadcastStats {
  /** Broadcasts this node published to the topic. */
  published: number
  /** Verified broadcasts handed to the handlers (an attached router is one). */
  delivered: number
  /** Broadcasts received again with a KLP `message_id` already seen or published here (not delivered again). */
  duplicates: number
  /** Messages refused by the validator, by error name. */
  rejected: Record<string, number>
}

/**
 * KLP broadcasts over a gossipsub topic (see the module comment), created by
 * {@link gossipsubBroadcast}: publishes signed BROADCAST_ANNOUNCE messages, validates every received
 * one before gossipsub delivers or forwards it, and bridges a KLP router's broadcasts both ways.
 */
export interface GossipsubBroadcast {
  /** The gossipsub topic. */
  readonly topic: string
  /** The counters so far (live, read-only). */
  readonly stats: Readonly<GossipsubBroadcastStats>
  /** Installs the topic validator, subscribes, starts delivering to handlers. Idempotent. */
  start(): void
  /** Unsubscribes and removes the validator and listener. */
  stop(): void
  /**
   * Publishes a signed BROADCAST_ANNOUNCE (message or its encoded bytes), after checking it as a
   * receiver would (the revocation check aside: a node that revoked its own key must still get that
   * out). Resolves with the number of peers gossipsub sent it to; rejects when no peer
   * subscribes to the topic (gossipsub's `NoPeersSubscribedToTopic`).
   */
  publish(message: KLPMessage | Uint8Array, options?: AbortOptions): Promise<{ recipients: number }>
  /** Adds a handler of verified broadcasts; returns its remover. */
  onBroadcast(handler: BroadcastHandler): () => void
  /** Checks bytes as the topic validator does; resolves with the verified message or throws a typed error. */
  verify(bytes: Uint8Array, options?: AbortOptions): Promise<KLPMessage>
  /**
   * A router BroadcastStrategy that publishes this node's own broadcasts (`fromPeer` undefined) to
   * gossipsub too and leaves KLP relaying to `inner` (default: flood to every neighbour).
   */
  bridgeStrategy(inner?: BroadcastStrategy): BroadcastStrategy
  /**
   * Connects a router: its strategy becomes `bridgeStrategy(options.strategy)` and every gossipsub
   * broadcast goes to `router.deliverBroadcast` (its checks, rejects and handlers; no relay by the
   * router). Until detached, a strategy installed later through `router.setBroadcastStrategy` (e.g.
   * peer-discovery's gossip service starting after) is wrapped the same way: attach decorates that
   * method on the router object. A strategy installed before attach is not known to it: pass it as
   * `options.strategy` (or restart its service). Throws InvalidParametersError when the router has
   * no `deliverBroadcast` or one is attached already. Returns the detach function (the last inner
   * strategy installed again, unwrapped; no more deliveries).
   */
  attach(router: BroadcastRouter, options?: AttachOptions): () => void
}

function positiveInt(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || v <= 0) throw new InvalidParametersError(`${name}: expected a positive integer, got ${String(v)}`)
  return v
}

function isGossipSub(x: unknown): x is GossipSub {
  const g = x as Partial<GossipSub> | undefined
  return typeof g?.subscribe === 'function' && typeof g.publish === 'function' && g.topicValidators instanceof Map && typeof g.addEventListener === 'function'
}

class Broadcast implements GossipsubBroadcast {
  readonly topic: string
  readonly stats: GossipsubBroadcastStats = { published: 0, delivered: 0, duplicates: 0, rejected: {} }
  private readonly pubsub: GossipSub
  private readonly sv: SignatureVerifier
  private readonly clock: Pick<Clock, 'now'>
  private readonly isRevoked: ((did: string) => boolean) | undefined
  private readonly maxBytes: number
  private readonly skew: number
  private readonly maxAge: number
  private readonly dedupeSize: number
  private readonly handlers = new Set<BroadcastHandler>()
  /** gossipsub hands the validator and the `message` event the same data array */
  private readonly verified = new WeakMap<Uint8Array, { message: KLPMessage; via: PeerId }>()
  private readonly seen = new Map<string, true>()
  private started = false
  /** Set by `attach`: hands bytes (accepted, or refused by the validator) to the router. */
  private toRouter: ((bytes: Uint8Array, via: PeerId | undefined, signer?: string) => void) | undefined

  constructor(init: GossipsubBroadcastInit, c: GossipsubBroadcastComponents) {
    if (c?.libp2p === undefined) throw new InvalidParametersError('libp2p: expected a js-libp2p host, got none')
    if (typeof c.signatureVerifier?.verifySignature !== 'function') throw new InvalidParametersError('signatureVerifier: expected a SignatureVerifier, got none')
    const name = init.serviceName ?? GOSSIPSUB_BROADCAST_DEFAULTS.serviceName
    const ps = (c.libp2p.services as Record<string, unknown>)[name]
    if (!isGossipSub(ps)) throw new MissingServiceError(`expected a gossipsub service at libp2p.services.${name}, got ${ps === undefined ? 'none' : typeof ps}`)
    this.pubsub = ps
    this.sv = c.signatureVerifier
    this.clock = c.clock ?? systemClock
    if (c.isRevoked !== undefined && typeof c.isRevoked !== 'function') throw new InvalidParametersError('isRevoked: expected a function')
    this.isRevoked = c.isRevoked
    this.topic = init.topic ?? GOSSIPSUB_BROADCAST_DEFAULTS.topic
    if (typeof this.topic !== 'string' || this.topic.length === 0) throw new InvalidParametersError('topic: expected a non-empty string')
    this.maxBytes = positiveInt('maxMessageBytes', init.maxMessageBytes, GOSSIPSUB_BROADCAST_DEFAULTS.maxMessageBytes)
    this.skew = positiveInt('clockSkewMs', init.clockSkewMs, GOSSIPSUB_BROADCAST_DEFAULTS.clockSkewMs)
    this.maxAge = positiveInt('maxAgeMs', init.maxAgeMs, GOSSIPSUB_BROADCAST_DEFAULTS.maxAgeMs)
    this.dedupeSize = positiveInt('dedupeSize', init.dedupeSize, GOSSIPSUB_BROADCAST_DEFAULTS.dedupeSize)
  }

  verify(bytes: Uint8Array, options: AbortOptions = {}): Promise<KLPMessage> {
    return this.check(bytes, options, true)
  }

  /** `verify`; `revocation` false for this node's own messages (a node that revoked itself must still get that out). */
  private async check(bytes: Uint8Array, options: AbortOptions, revocation: boolean): Promise<KLPMessage> {
    if (!(bytes instanceof Uint8Array)) throw new InvalidBroadcastError(`expected message bytes, got ${typeof bytes}`)
    if (bytes.length > this.maxBytes) throw new InvalidBroadcastError(`expected at most ${this.maxBytes} bytes, got ${bytes.length}`)
    const msg = decodeMessage(bytes) // typed klp-codec errors (DecodeError family)
    if (msg.type !== KLPMessageType.BROADCAST_ANNOUNCE) throw new InvalidBroadcastError(`expected a BROADCAST_ANNOUNCE, got ${String(msg.type).slice(0, 40)}`)
    const now = this.clock.now()
    if (msg.timestamp > now + this.skew) throw new InvalidBroadcastError(`expected a timestamp <= ${now + this.skew}, got ${msg.timestamp}`)
    const expiry = msg.timestamp + Math.min(msg.metadata.ttl * 1000, this.maxAge) + this.skew
    if (now > expiry) throw new InvalidBroadcastError(`expected a message valid until after ${now}, got one that expired at ${expiry}`)
    // a revoked signer costs one lookup, before the signature (as in the router)
    const signer = msg.signer.split('#')[0] as string
    if (revocation && this.isRevoked?.(signer) === true) throw new RevokedSignerError(`expected a broadcast from a DID that is not revoked, got one signed by ${signer.slice(0, 80)}`)
    await verifyMessage(msg, this.sv, options) // InvalidSignatureError / UnknownKeyError
    return msg
  }

  private readonly validator = async (peer: PeerId, m: Message): Promise<TopicValidatorResult> => {
    try {
      this.verified.set(m.data, { message: await this.verify(m.data), via: peer })
      return TopicValidatorResult.Accept
    } catch (err) {
      const name = err instanceof Error ? err.name : 'Error'
      this.stats.rejected[name] = (this.stats.rejected[name] ?? 0) + 1
      // an attached router counts the refusal among its rejects (it refuses it by its own checks)
      this.toRouter?.(m.data, peer)
      return TopicValidatorResult.Reject
    }
  }

  private readonly onMessage = (evt: CustomEvent<Message>): void => {
    const m = evt.detail
    if (m.topic !== this.topic) return
    void this.deliver(m).catch(() => {})
  }

  private async deliver(m: Message): Promise<void> {
    const v = this.verified.get(m.data)
    const message = v?.message ?? await this.verify(m.data)
    const id = message.metadata.message_id
    if (this.seen.has(id)) {
      this.stats.duplicates++
      // the same broadcast published again (by another bridge, or replayed): the router refuses it as a replay
      this.toRouter?.(m.data, v?.via ?? (m.type === 'signed' ? m.from : undefined), message.signer)
      return
    }
    this.seen.set(id, true)
    if (this.seen.size > this.dedupeSize) this.seen.delete(this.seen.keys().next().value as string)
    let publisher: string | undefined
    if (m.type === 'signed') { try { publisher = didFromPeerId(m.from) } catch { /* not an Ed25519 PeerId */ } }
    // gossipsub hands a Buffer: give handlers a plain Uint8Array view of the same bytes
    const bytes = new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.byteLength)
    const receivedFrom = v?.via ?? (m.type === 'signed' ? m.from : undefined)
    const b: ReceivedBroadcast = { message, bytes, ...(publisher === undefined ? {} : { publisher }), ...(receivedFrom === undefined ? {} : { receivedFrom }) }
    this.stats.delivered++
    for (const h of [...this.handlers]) {
      try { await h(b) } catch { /* a handler's failure is its own */ }
    }
  }

  start(): void {
    if (this.started) return
    this.started = true
    this.pubsub.topicValidators.set(this.topic, this.validator)
    this.pubsub.addEventListener('message', this.onMessage)
    this.pubsub.subscribe(this.topic)
  }

  stop(): void {
    if (!this.started) return
    this.started = false
    this.pubsub.unsubscribe(this.topic)
    this.pubsub.removeEventListener('message', this.onMessage)
    if (this.pubsub.topicValidators.get(this.topic) === this.validator) this.pubsub.topicValidators.delete(this.topic)
  }

  async publish(message: KLPMessage | Uint8Array, options: AbortOptions = {}): Promise<{ recipients: number }> {
    const bytes = message instanceof Uint8Array ? message : encodeMessage(message)
    const msg = await this.check(bytes, options, false)
    // our own message is not delivered back to us by gossipsub: remember it so a copy relayed back is a duplicate
    this.seen.set(msg.metadata.message_id, true)
    const r = await this.pubsub.publish(this.topic, bytes)
    this.stats.published++
    return { recipients: r.recipients.length }
  }

  onBroadcast(handler: BroadcastHandler): () => void {
    if (typeof handler !== 'function') throw new InvalidParametersError('handler: expected a function')
    this.handlers.add(handler)
    return () => { this.handlers.delete(handler) }
  }

  bridgeStrategy(inner?: BroadcastStrategy): BroadcastStrategy {
    return {
      relay: (message: KLPMessage, ctx: BroadcastContext): readonly string[] => {
        if (ctx.fromPeer === undefined) void this.publish(message).catch(() => {})
        return inner === undefined ? ctx.neighbours : inner.relay(message, ctx)
      },
    }
  }

  attach(router: BroadcastRouter, options: AttachOptions = {}): () => void {
    const deliver = router?.deliverBroadcast
    if (typeof deliver !== 'function') throw new InvalidParametersError('router: expected a MessageRouter with deliverBroadcast, got one without')
    if (this.toRouter !== undefined) throw new InvalidParametersError('router: expected one router per gossipsub bridge, got a second attach')
    const own = Object.prototype.hasOwnProperty.call(router, 'setBroadcastStrategy')
    const before = router.setBroadcastStrategy
    const set = before.bind(router)
    let inner = options.strategy
    const wrapped = (s: BroadcastStrategy | undefined): void => {
      inner = s
      set(this.bridgeStrategy(s))
    }
    router.setBroadcastStrategy = wrapped
    set(this.bridgeStrategy(inner))
    const toRouter = (bytes: Uint8Array, via: PeerId | undefined, signer?: string): void => {
      let fromPeer: string | undefined
      try { fromPeer = via === undefined ? undefined : didFromPeerId(via) } catch { /* not an Ed25519 PeerId */ }
      fromPeer ??= signer?.split('#')[0] ?? 'gossipsub'
      const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      void deliver.call(router, view, { fromPeer }).catch(() => false)
    }
    this.toRouter = toRouter
    const remove = this.onBroadcast((b) => { toRouter(b.bytes, b.receivedFrom, b.message.signer) })
    return () => {
      remove()
      if (this.toRouter === toRouter) this.toRouter = undefined
      // the own property, not `router.setBroadcastStrategy`: a Proxy around the router may hand out bound copies
      if (Object.getOwnPropertyDescriptor(router, 'setBroadcastStrategy')?.value === wrapped) {
        if (own) router.setBroadcastStrategy = before
        else delete (router as Partial<BroadcastRouter>).setBroadcastStrategy
      }
      set(inner)
    }
  }
}

/** `gossipsubBroadcast(init)(components)`: KLP broadcasts over the host's gossipsub. Call `start()`. */
export function gossipsubBroadcast(init: GossipsubBroadcastInit = {}): (components: GossipsubBroadcastComponents) => GossipsubBroadcast {
  return (components) => new Broadcast(init, components)
}
