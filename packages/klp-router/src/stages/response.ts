/**
 * Stage 8, response matching: a message carrying the correlation id of a pending request resolves
 * it only when it comes from the request's target authority, has the expected type and is signed
 * by the expected DID (explicit, or the DID the target is pinned to); anything else is refused and
 * the request stays pending. A forwarder on the way may answer `no_route` / `hop_limit`.
 */
import type { KLPMessage } from '@kos-mesh/interface'
import type { Pending, RouterCore } from '../core.js'
import { errorOf } from '../messages.js'
import { RejectReason } from '../reasons.js'
import { REJECT, type Reject } from './verdict.js'

/** Error codes a forwarder (not the target) answers with; accepted from another source than the target. */
const ROUTING_ERRORS: ReadonlySet<string> = new Set([RejectReason.NO_ROUTE, RejectReason.HOP_LIMIT])

/** True when `msg` (signed by `signerDid`) may resolve the pending request `p`. */
export function isResponseTo(core: RouterCore, p: Pending, msg: KLPMessage, signerDid: string): boolean {
  if (msg.type !== p.responseType) return false
  if (msg.source.authority !== p.target) {
    const err = errorOf(msg)
    return err !== undefined && ROUTING_ERRORS.has(err.code)
  }
  let expected = p.expectedSigner
  if (!p.explicitSigner) expected ??= p.target === core.authority ? core.did : core.table.didOf(p.target)
  // nothing known: the source-binding check already required the source to be unbound or bound to the signer
  return expected === undefined || expected === signerDid
}

/** `matched` (the pending request was resolved), `none` (no pending request), or the reject. */
export function matchResponse(core: RouterCore, msg: KLPMessage, signerDid: string): 'matched' | 'none' | Reject {
  const corr = msg.metadata.correlation_id
  if (corr === undefined) return 'none'
  const p = core.pending.get(corr)
  if (p === undefined) return 'none'
  if (!isResponseTo(core, p, msg, signerDid)) return REJECT.RESPONSE_MISMATCH
  const source = msg.source.authority
  // the authority answered as the DID it is pinned to: something relies on that pin now
  if (p.reliesOnPin && source === p.target && source !== core.authority) core.table.confirm(source, signerDid)
  core.pending.delete(corr)
  core.counters.responsesMatched++
  p.resolve(msg)
  return 'matched'
}
