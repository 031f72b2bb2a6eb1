/**
 * Outbound messages of this node: `send` (routed, waiting only for room in the next hop's
 * outbound queue), `broadcast`, and `request` with a correlation id, retransmission of the same
 * signed request within its deadline, `retry_after` deferrals, and response binding (see the
 * response stage). All waits use the router's clock. Internal.
 */
import {
  AbortError,
  InvalidParametersError,
  KLPMessageType,
  TrustObservation,
  type AbortOptions,
  type KLPMessage,
  type KLPMessageType as KLPMessageTypeT,
  type MessageInit,
  type RequestOptions,
} from '@kos-mesh/interface'
import { encodeMessage } from '@kos-mesh/klp-codec'
import type { MessageBuilder } from './builder.js'
import type { QueueItem, RouterCore } from './core.js'
import { EnvelopeKind, encodeEnvelope } from './envelope.js'
import { NoRouteError, RemoteRejectedError, RequestDeferredError, RequestTimeoutError, TooManyRequestsError } from './errors.js'
import type { Forwarding } from './forwarding.js'
import { errName, errorOf, responseTypeFor } from './messages.js'

/** Shortest `retry_after` honoured, ms: a `retry_after` of 0 must not turn into a resend loop. */
const MIN_RETRY_AFTER_MS = 100

export class Requests {
  constructor(
    private readonly core: RouterCore,
    private readonly builder: MessageBuilder,
    private readonly forwarding: Forwarding,
    private readonly enqueueLocal: (item: QueueItem) => boolean,
  ) {}

  private toMessage(m: MessageInit | KLPMessage): Promise<KLPMessage> | KLPMessage {
    return 'signature' in m && m.signature instanceof Uint8Array ? m : this.builder.build(m as MessageInit)
  }

  async send(m: MessageInit | KLPMessage, options: AbortOptions = {}): Promise<KLPMessage> {
    const msg = await this.toMessage(m)
    await this.dispatch(msg, options.signal)
    return msg
  }

  /** To this node through the local pipeline, else to the next hop (waiting for room in its queue). */
  async dispatch(msg: KLPMessage, signal?: AbortSignal): Promise<void> {
    const core = this.core
    const frame = encodeEnvelope(EnvelopeKind.MESSAGE, 0, 0, encodeMessage(msg))
    if (msg.type === KLPMessageType.BROADCAST_ANNOUNCE || msg.target.authority === core.authority) {
      const item: QueueItem = { conn: undefined, fromPeer: core.did, hops: 0, flags: 0, frame, msg, receivedAt: core.clock.now() }
      if (!this.enqueueLocal(item)) throw new TooManyRequestsError('expected room in the local queue, got a full queue')
      return
    }
    const via = this.forwarding.viaHint(msg, 0)
    const conn = (via === undefined ? undefined : core.nextHop(via)) ?? core.nextHop(msg.target.authority)
    if (conn === undefined) throw new NoRouteError(`expected a route to ${msg.target.authority}, got none`)
    await core.outbound.deliver(conn, frame, signal)
  }

  async broadcast(init: Omit<MessageInit, 'type'> & { type?: KLPMessageTypeT }, options: AbortOptions = {}): Promise<KLPMessage> {
    const msg = await this.builder.build({
      ...init,
      type: KLPMessageType.BROADCAST_ANNOUNCE,
      target: init.target ?? { scheme: 'klp', authority: this.core.authority, path: '/broadcast' },
    })
    await this.dispatch(msg, options.signal)
    return msg
  }

  async request(init: MessageInit, options: RequestOptions = {}): Promise<KLPMessage> {
    const core = this.core
    const clock = core.clock
    const timeoutMs = options.timeoutMs ?? core.cfg.requestTimeoutMs
    const retries = options.retries ?? core.cfg.requestRetries
    if (!(timeoutMs > 0)) throw new InvalidParametersError(`expected timeoutMs > 0, got ${timeoutMs}`)
    if (!Number.isInteger(retries) || retries < 0) throw new InvalidParametersError(`expected retries to be an integer >= 0, got ${retries}`)
    const signal = options.signal
    if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason })
    const expectedSigner = options.expectedSigner
    if (expectedSigner !== undefined && (typeof expectedSigner !== 'string' || !expectedSigner.startsWith('did:'))) {
      throw new InvalidParametersError(`expected expectedSigner to be a DID, got ${String(expectedSigner)}`)
    }
    const deadline = clock.now() + timeoutMs
    const interval = timeoutMs / (retries + 1)
    let lastNoRoute: Error | undefined
    let deferrals = 0
    for (;;) {
      const msg = await this.builder.build(init)
      const id = msg.metadata.message_id
      if (core.pending.size >= core.cfg.maxPendingRequests) throw new TooManyRequestsError(`expected fewer than ${core.cfg.maxPendingRequests} pending requests`)
      let resolveP!: (m: KLPMessage) => void
      let rejectP!: (e: Error) => void
      const responded = new Promise<KLPMessage>((res, rej) => {
        resolveP = res
        rejectP = rej
      })
      responded.catch(() => {})
      const target = msg.target.authority
      // the DID the request is bound to (explicit, or the target's pin), if known
      const boundTo = expectedSigner ?? (target === core.authority ? core.did : core.table.didOf(target))
      core.pending.set(id, {
        resolve: resolveP,
        reject: rejectP,
        target,
        responseType: responseTypeFor(msg.type),
        expectedSigner: boundTo,
        explicitSigner: expectedSigner !== undefined,
        reliesOnPin: options.reliesOnPin ?? msg.type !== KLPMessageType.PEER_DISCOVERY,
      })
      let response: KLPMessage | undefined
      try {
        for (let attempt = 0; attempt <= retries && response === undefined; attempt++) {
          const left = deadline - clock.now()
          if (left <= 0) break
          if (attempt > 0) core.counters.retries++
          try {
            await this.dispatch(msg, signal)
            lastNoRoute = undefined
          } catch (err) {
            if (errName(err) === 'NoRouteError') lastNoRoute = err as Error
            else throw err
          }
          const wait = attempt === retries ? left : Math.min(left, interval)
          response = await this.race(responded, wait, signal)
        }
      } finally {
        core.pending.delete(id)
      }
      if (response === undefined) {
        if (lastNoRoute !== undefined) throw lastNoRoute
        // the target did not answer in time: reported against the DID the request was bound to
        if (boundTo !== undefined) core.observe(boundTo, TrustObservation.TIMEOUT)
        throw new RequestTimeoutError(`expected a response within ${timeoutMs} ms, got none after ${retries + 1} attempts`)
      }
      const err = errorOf(response)
      if (err === undefined) return response
      if (err.status === 'deferred' && err.retry_after !== undefined) {
        // at least MIN_RETRY_AFTER_MS (a 0 must not force immediate resends), at most `retries` deferrals
        const waitMs = Math.max(MIN_RETRY_AFTER_MS, err.retry_after * 1000)
        if (deferrals < retries && clock.now() + waitMs < deadline) {
          deferrals++
          await clock.sleep(waitMs, signal === undefined ? undefined : { signal })
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
    const clock = this.core.clock
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        clock.clearTimeout(t)
        signal?.removeEventListener('abort', onAbort)
      }
      const onAbort = (): void => {
        cleanup()
        reject(new AbortError(undefined, { cause: signal?.reason }))
      }
      const t = clock.setTimeout(() => {
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
}
