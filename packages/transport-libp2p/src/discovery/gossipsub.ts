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
 * Seam for the router (another change): outbound, `bridgeStrategy(inner)` is a BroadcastStrategy
 * that also publishes this node's own broadcasts; inbound, a handler must hand the verified message
 * to the router's delivery path (the MessageRouter interface has no public "deliver a received
 * broadcast" entry yet; the router also applies its own replay, revocation and trust checks there).
 * The gossipsub-level signature (StrictSign, the publisher's PeerId) is independent of the KLP
 * signer: a node may republish another node's broadcast unchanged.
 */
import { InvalidParametersError, KLPMessageType, systemClock } from '@kos-mesh/interface'
import type { AbortOptions, BroadcastContext, BroadcastStrategy, Clock, KLPMessage, SignatureVerifier } from '@kos-mesh/interface'
import { decodeMessage, encodeMessage, verifyMessage } from '@kos-mesh/klp-codec'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { GossipSub, Message } from '@libp2p/gossipsub'
import type { Libp2p, PeerId } from '@libp2p/interface'
import { InvalidBroadcastError, MissingServiceError } from './errors.js'
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

export interface GossipsubBroadcastInit {
  /** Default `/kos/broadcast/1.0.0`. */
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

export interface GossipsubBroadcastComponents {
  /** A js-libp2p host with a gossipsub service (`services.pubsub`). */
  libp2p: Libp2p<any> // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Verifies KLP signatures (did-security's `createSignatureVerifier()`). */
  signatureVerifier: SignatureVerifier
  clock?: Pick<Clock, 'now'>
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

export type BroadcastHandler = (broadcast: ReceivedBroadcast) => void | Promise<void>

export interface GossipsubBroadcastStats {
  published: number
  delivered: number
  duplicates: number
  /** Messages refused by the validator, by error name. */
  rejected: Record<string, number>
}

export interface GossipsubBroadcast {
  readonly topic: string
  readonly stats: Readonly<GossipsubBroadcastStats>
  /** Installs the topic validator, subscribes, starts delivering to handlers. Idempotent. */
  start(): void
  /** Unsubscribes and removes the validator and listener. */
  stop(): void
  /**
   * Publishes a signed BROADCAST_ANNOUNCE (message or its encoded bytes), after checking it as a
   * receiver would. Resolves with the number of peers gossipsub sent it to; rejects when no peer
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
  private readonly maxBytes: number
  private readonly skew: number
  private readonly maxAge: number
  private readonly dedupeSize: number
  private readonly handlers = new Set<BroadcastHandler>()
  /** gossipsub hands the validator and the `message` event the same data array */
  private readonly verified = new WeakMap<Uint8Array, KLPMessage>()
  private readonly seen = new Map<string, true>()
  private started = false

  constructor(init: GossipsubBroadcastInit, c: GossipsubBroadcastComponents) {
    if (c?.libp2p === undefined) throw new InvalidParametersError('libp2p: expected a js-libp2p host, got none')
    if (typeof c.signatureVerifier?.verifySignature !== 'function') throw new InvalidParametersError('signatureVerifier: expected a SignatureVerifier, got none')
    const name = init.serviceName ?? GOSSIPSUB_BROADCAST_DEFAULTS.serviceName
    const ps = (c.libp2p.services as Record<string, unknown>)[name]
    if (!isGossipSub(ps)) throw new MissingServiceError(`expected a gossipsub service at libp2p.services.${name}, got ${ps === undefined ? 'none' : typeof ps}`)
    this.pubsub = ps
    this.sv = c.signatureVerifier
    this.clock = c.clock ?? systemClock
    this.topic = init.topic ?? GOSSIPSUB_BROADCAST_DEFAULTS.topic
    if (typeof this.topic !== 'string' || this.topic.length === 0) throw new InvalidParametersError('topic: expected a non-empty string')
    this.maxBytes = positiveInt('maxMessageBytes', init.maxMessageBytes, GOSSIPSUB_BROADCAST_DEFAULTS.maxMessageBytes)
    this.skew = positiveInt('clockSkewMs', init.clockSkewMs, GOSSIPSUB_BROADCAST_DEFAULTS.clockSkewMs)
    this.maxAge = positiveInt('maxAgeMs', init.maxAgeMs, GOSSIPSUB_BROADCAST_DEFAULTS.maxAgeMs)
    this.dedupeSize = positiveInt('dedupeSize', init.dedupeSize, GOSSIPSUB_BROADCAST_DEFAULTS.dedupeSize)
  }

  async verify(bytes: Uint8Array, options: AbortOptions = {}): Promise<KLPMessage> {
    if (!(bytes instanceof Uint8Array)) throw new InvalidBroadcastError(`expected message bytes, got ${typeof bytes}`)
    if (bytes.length > this.maxBytes) throw new InvalidBroadcastError(`expected at most ${this.maxBytes} bytes, got ${bytes.length}`)
    const msg = decodeMessage(bytes) // typed klp-codec errors (DecodeError family)
    if (msg.type !== KLPMessageType.BROADCAST_ANNOUNCE) throw new InvalidBroadcastError(`expected a BROADCAST_ANNOUNCE, got ${String(msg.type).slice(0, 40)}`)
    const now = this.clock.now()
    if (msg.timestamp > now + this.skew) throw new InvalidBroadcastError(`expected a timestamp <= ${now + this.skew}, got ${msg.timestamp}`)
    const expiry = msg.timestamp + Math.min(msg.metadata.ttl * 1000, this.maxAge) + this.skew
    if (now > expiry) throw new InvalidBroadcastError(`expected a message valid until after ${now}, got one that expired at ${expiry}`)
    await verifyMessage(msg, this.sv, options) // InvalidSignatureError / UnknownKeyError
    return msg
  }

  private readonly validator = async (_peer: PeerId, m: Message): Promise<TopicValidatorResult> => {
    try {
      this.verified.set(m.data, await this.verify(m.data))
      return TopicValidatorResult.Accept
    } catch (err) {
      const name = err instanceof Error ? err.name : 'Error'
      this.stats.rejected[name] = (this.stats.rejected[name] ?? 0) + 1
      return TopicValidatorResult.Reject
    }
  }

  private readonly onMessage = (evt: CustomEvent<Message>): void => {
    const m = evt.detail
    if (m.topic !== this.topic) return
    void this.deliver(m).catch(() => {})
  }

  private async deliver(m: Message): Promise<void> {
    const message = this.verified.get(m.data) ?? await this.verify(m.data)
    const id = message.metadata.message_id
    if (this.seen.has(id)) { this.stats.duplicates++; return }
    this.seen.set(id, true)
    if (this.seen.size > this.dedupeSize) this.seen.delete(this.seen.keys().next().value as string)
    let publisher: string | undefined
    if (m.type === 'signed') { try { publisher = didFromPeerId(m.from) } catch { /* not an Ed25519 PeerId */ } }
    // gossipsub hands a Buffer: give handlers a plain Uint8Array view of the same bytes
    const bytes = new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.byteLength)
    const b: ReceivedBroadcast = { message, bytes, ...(publisher === undefined ? {} : { publisher }), ...(m.type === 'signed' ? { receivedFrom: m.from } : {}) }
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
    const msg = await this.verify(bytes, options)
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
}

/** `gossipsubBroadcast(init)(components)`: KLP broadcasts over the host's gossipsub. Call `start()`. */
export function gossipsubBroadcast(init: GossipsubBroadcastInit = {}): (components: GossipsubBroadcastComponents) => GossipsubBroadcast {
  return (components) => new Broadcast(init, components)
}
