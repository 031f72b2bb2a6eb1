/**
 * What the node watches without changing the packages it wires: the router as services see it (a
 * proxy that times dials and sees the task handler's results), and the logger handed to the
 * transports (their debug lines about refused handshakes and aborted connections become
 * operator events).
 */
import { KLPMessageType, type AbortOptions, type Logger, type MessageHandler, type PeerInfo, type ProcessingResult } from '@kos-mesh/interface'
import type { HandleOptions, Router } from '@kos-mesh/klp-router'

export interface RouterObserver {
  /** A dial (handshake and signed hello) finished: `ms` of the clock, the DID reached or the error. */
  dialed(addr: string, ms: number, result: { info: PeerInfo } | { error: unknown }): void
  /** The TASK_REQUEST handler answered a request from `from` (`result.status`, `result.reason`) after `ms`. */
  taskHandled(from: string, capability: string | undefined, ms: number, result: ProcessingResult | undefined, error?: unknown): void
  /** A PEER_DISCOVERY exchange finished (the registry may hold new records). */
  discoveryActivity(): void
}

/**
 * The router as the node's services see it: every call goes to `router`, except that `dial` is
 * timed and reported, a TASK_REQUEST handler's results are reported, and the end of a
 * PEER_DISCOVERY request or handler is reported.
 */
export function observeRouter(router: Router, observer: RouterObserver, now: () => number): Router {
  const dial = async (addr: string, options?: AbortOptions & { remotePeer?: string }): Promise<PeerInfo> => {
    const t0 = now()
    try {
      const info = await router.dial(addr, options)
      observer.dialed(addr, now() - t0, { info })
      return info
    } catch (error) {
      observer.dialed(addr, now() - t0, { error })
      throw error
    }
  }
  const handle = (type: KLPMessageType, handler: MessageHandler, options?: HandleOptions): void => {
    if (type === KLPMessageType.TASK_REQUEST) {
      const wrapped: MessageHandler = async (msg, ctx) => {
        const t0 = now()
        const data = msg.payload.data as { capability?: unknown } | null
        const capability = data !== null && typeof data === 'object' && typeof data.capability === 'string' ? data.capability.slice(0, 128) : undefined
        try {
          const r = await handler(msg, ctx)
          observer.taskHandled(ctx.signerDid, capability, now() - t0, r)
          return r
        } catch (err) {
          observer.taskHandled(ctx.signerDid, capability, now() - t0, undefined, err)
          throw err
        }
      }
      router.handle(type, wrapped, options)
      return
    }
    if (type === KLPMessageType.PEER_DISCOVERY) {
      const wrapped: MessageHandler = async (msg, ctx) => {
        try {
          return await handler(msg, ctx)
        } finally {
          observer.discoveryActivity()
        }
      }
      router.handle(type, wrapped, options)
      return
    }
    router.handle(type, handler, options)
  }
  const request: Router['request'] = async (init, options) => {
    try {
      return await router.request(init, options)
    } finally {
      if (init.type === KLPMessageType.PEER_DISCOVERY) observer.discoveryActivity()
    }
  }
  const overrides: Record<string | symbol, unknown> = { dial, handle, request }
  return new Proxy(router, {
    get(target, prop) {
      if (Object.prototype.hasOwnProperty.call(overrides, prop)) return overrides[prop]
      const v: unknown = Reflect.get(target, prop, target)
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
}

/** What the transports' log lines tell the node. */
export interface TransportObserver {
  /** An inbound handshake failed or a socket was refused by the connection limits. */
  handshakeRefused(remote: string, reason: string): void
  /** A connection was torn down with an error (its id, the error name). */
  connectionAborted(id: string, reason: string): void
}

/**
 * The logger handed to the transports: passes every line on to `log`, and reports the lines about
 * refused handshakes and aborted connections to `observer` (whatever the log level).
 */
export function transportLogger(log: Logger, observer: TransportObserver): Logger {
  const str = (v: unknown): string => (typeof v === 'string' ? v.slice(0, 200) : typeof v === 'number' ? String(v) : '')
  return {
    debug: (msg, fields) => {
      if (msg === 'tcp inbound handshake failed') observer.handshakeRefused(str(fields?.remote), str(fields?.error) || 'HandshakeError')
      else if (msg === 'tcp inbound socket refused by limits') observer.handshakeRefused(str(fields?.remote), 'connection_limits')
      else if (msg === 'tcp connection aborted') observer.connectionAborted(str(fields?.id), str(fields?.error) || 'Error')
      log.debug(msg, fields)
    },
    info: (msg, fields) => log.info(msg, fields),
    warn: (msg, fields) => log.warn(msg, fields),
    error: (msg, fields) => log.error(msg, fields),
  }
}
