/**
 * Stage 3b, revocation: a message signed by a DID the trust engine says is revoked is refused
 * right after the expiry check, before the replay window, the signature or anything else that
 * costs, whether it is for this node, to forward or to relay. One call of the engine's
 * `isRevoked` (a set lookup) per message; engines without it revoke nobody. Messages this node
 * makes itself are not checked (a node that revoked its own key still sends that revocation).
 */
import type { RouterCore } from '../core.js'
import { REJECT, type Verdict } from './verdict.js'

export function checkRevoked(core: RouterCore, signerDid: string): Verdict {
  const revoked = core.isRevoked
  return revoked !== undefined && revoked(signerDid) ? REJECT.REVOKED : undefined
}
