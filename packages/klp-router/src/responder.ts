/**
 * Answers: caches and sends responses without waiting for the peer (a peer that does not read
 * holds no pipeline slot), and turns rejects of verified requests into signed error responses.
 * Internal.
 */
import { KLPMessageType, MessagePriority, type KLPMessage, type KLPValue } from '@kos-mesh/interface'
import { encodeMessage } from '@kos-mesh/klp-codec'
import type { MessageBuilder } from './builder.js'
import type { QueueItem, RouterCore } from './core.js'
import { EnvelopeKind, encodeEnvelope } from './envelope.js'
import { errName } from './messages.js'

export class Responder {
  constructor(
    private readonly core: RouterCore,
    private readonly builder: MessageBuilder,
    /** Delivers a message addressed to this node through the local pipeline. */
    private readonly enqueueLocal: (item: QueueItem) => boolean,
  ) {}

  /** An error response, or undefined when the message must not be answered (responses, broadcasts, a stopped router). */
  async errorResponse(msg: KLPMessage, code: string, message: string, status: 'rejected' | 'deferred', retryAfter?: number): Promise<KLPMessage | undefined> {
    if (msg.metadata.correlation_id !== undefined || msg.type === KLPMessageType.BROADCAST_ANNOUNCE) return undefined
    if (!this.core.started) return undefined
    const data: Record<string, KLPValue> = { status, error: { code, message } }
    if (retryAfter !== undefined) data.retry_after = retryAfter
    try {
      return await this.builder.createResponse(msg, data, { priority: MessagePriority.HIGH })
    } catch (err) {
      this.core.log.warn('error response not signed', { err: errName(err) })
      return undefined
    }
  }

  /** Caches and sends a response (to this node through the local pipeline, else toward its target). */
  respond(request: KLPMessage, response: KLPMessage, expiresAt: number): void {
    const core = this.core
    const frame = encodeEnvelope(EnvelopeKind.MESSAGE, 0, 0, encodeMessage(response))
    core.responses.set(`${core.didOf(request.signer)} ${request.metadata.message_id}`, frame, response.target.authority, expiresAt)
    try {
      if (response.target.authority === core.authority) {
        this.enqueueLocal({ conn: undefined, fromPeer: core.did, hops: 0, flags: 0, frame, msg: response, receivedAt: core.clock.now() })
      } else {
        core.routeFrame(response.target.authority, frame)
      }
    } catch (err) {
      core.log.debug('response not delivered', { err: errName(err) })
    }
  }

  /** Rejects a verified message and answers it with an error response when it is a request. */
  async fail(msg: KLPMessage, fromPeer: string, reason: string, message: string): Promise<void> {
    this.core.reject(reason, fromPeer, msg.metadata.message_id)
    const response = await this.errorResponse(msg, reason, message, 'rejected')
    if (response !== undefined) this.respond(msg, response, this.core.expiryOf(msg))
  }
}
