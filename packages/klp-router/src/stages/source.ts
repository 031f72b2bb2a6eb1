/**
 * Stage 6, source binding: a message whose source authority is bound (pinned) to another DID than
 * its signer is refused before anything about it is recorded; and a response that nobody waits for
 * and nobody handles is refused before it takes room in the replay window.
 */
import type { KLPMessage } from '@kos-mesh/interface'
import type { RouterCore } from '../core.js'
import { REJECT, type Verdict } from './verdict.js'

export function checkSource(core: RouterCore, msg: KLPMessage, signerDid: string): Verdict {
  const source = msg.source.authority
  const bound = source === core.authority ? core.did : core.table.didOf(source)
  if (bound !== undefined && bound !== signerDid) return REJECT.SOURCE_MISMATCH
  const corr = msg.metadata.correlation_id
  if (corr !== undefined && !core.pending.has(corr) && !core.handlers.has(msg.type)) return REJECT.UNSOLICITED_RESPONSE
  return undefined
}
