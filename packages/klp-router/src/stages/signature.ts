/** Stage 5, signature: verifyMessage under the one verification rule, with the slot's abort signal. */
import type { KLPMessage } from '@kos-mesh/interface'
import { verifyMessage } from '@kos-mesh/klp-codec'
import type { RouterCore, Slot } from '../core.js'
import { verifyReason } from '../messages.js'
import { RejectReason } from '../reasons.js'
import { REJECT, type Verdict } from './verdict.js'

/** Resolves with undefined (valid), a reject, or `null` when the router stopped meanwhile. */
export async function checkSignature(core: RouterCore, msg: KLPMessage, slot: Slot): Promise<Verdict | null> {
  try {
    await verifyMessage(msg, core.verifier, slot.options)
  } catch (err) {
    if (slot.options.signal.aborted) return null
    return verifyReason(err) === RejectReason.UNKNOWN_KEY ? REJECT.UNKNOWN_KEY : REJECT.INVALID_SIGNATURE
  }
  return slot.gen === core.gen ? undefined : null
}
