/**
 * Stage 9, dispatch: the handler of the message's type and target path runs (with the slot's
 * signal and `handlerTimeoutMs` on the router's clock); its ProcessingResult, or the reject when
 * there is no handler or it failed.
 */
import {
  TimeoutError,
  type KLPMessage,
  type MessageContext,
  type MessageHandler,
  type ProcessingResult,
} from '@kos-mesh/interface'
import type { RouterCore } from '../core.js'
import { errName } from '../messages.js'
import { RejectReason } from '../reasons.js'
import { REJECT, rejectWith, type Reject } from './verdict.js'

export function findHandler(core: RouterCore, msg: KLPMessage): MessageHandler | Reject {
  const handler = core.handlers.find(msg.type, msg.target.path)
  if (handler !== undefined) return handler
  if (msg.metadata.correlation_id !== undefined) return REJECT.UNSOLICITED_RESPONSE
  return rejectWith(RejectReason.UNSUPPORTED_MESSAGE_TYPE, true, `expected a handled message type, got ${msg.type} at ${msg.target.path}`)
}

export async function runHandler(core: RouterCore, handler: MessageHandler, msg: KLPMessage, ctx: MessageContext): Promise<ProcessingResult | Reject> {
  try {
    const r = handler(msg, ctx)
    // a synchronous handler needs no timer
    const result = r instanceof Promise ? await withTimeout(core, r) : r
    if (result === null || typeof result !== 'object') throw new TypeError('expected a ProcessingResult from the handler')
    return result
  } catch (err) {
    core.log.warn('handler failed', { type: msg.type, err: errName(err) })
    return REJECT.HANDLER_ERROR
  }
}

function withTimeout(core: RouterCore, p: Promise<ProcessingResult>): Promise<ProcessingResult> {
  const ms = core.cfg.handlerTimeoutMs
  return new Promise<ProcessingResult>((resolve, reject) => {
    const timer = core.clock.setTimeout(() => reject(new TimeoutError(`expected the handler to finish within ${ms} ms`)), ms)
    p.then(
      (r) => {
        core.clock.clearTimeout(timer)
        resolve(r)
      },
      (e: unknown) => {
        core.clock.clearTimeout(timer)
        reject(e instanceof Error ? e : new Error(String(e)))
      },
    )
  })
}
