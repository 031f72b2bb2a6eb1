/** Stage 2, decode: the strict, bounded codec decoder over the envelope's body. */
import { KosMeshError, type KLPMessage } from '@kos-mesh/interface'
import { decodeMessage } from '@kos-mesh/klp-codec'
import type { RouterCore } from '../core.js'
import { bodyOf, errName } from '../messages.js'
import { REJECT, type Reject } from './verdict.js'

/** The decoded message (its byte strings are views into `frame`), or the reject. */
export function decodeFrame(core: RouterCore, frame: Uint8Array): KLPMessage | Reject {
  try {
    return decodeMessage(bodyOf(frame), core.cfg.decodeOptions)
  } catch (err) {
    // the codec only throws typed errors (DecodeError...); anything else is a codec bug: still a reject
    if (!(err instanceof KosMeshError)) core.log.error('decoder threw an untyped error', { err: errName(err) })
    return REJECT.MALFORMED
  }
}
