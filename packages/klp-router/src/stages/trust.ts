/**
 * Stage 7, trust: the message's own requirements combined with this node's `trustPolicy` for its
 * type (the stricter wins, field by field), checked against the signer by the trust engine. A
 * synchronous engine costs no promise. An engine that throws counts as a failed check.
 */
import type { KLPMessage, TrustCheck } from '@kos-mesh/interface'
import type { RouterCore, Slot } from '../core.js'
import { strictestTrust } from '@kos-mesh/trust'
import { errName } from '../messages.js'
import { REJECT, type Verdict } from './verdict.js'

export function checkTrust(core: RouterCore, msg: KLPMessage, signerDid: string, slot: Slot): Verdict | Promise<Verdict> {
  let pending: TrustCheck | Promise<TrustCheck>
  try {
    const policy = core.cfg.trustPolicy?.[msg.type]
    const required = policy === undefined ? msg.metadata.trust_requirements : strictestTrust(msg.metadata.trust_requirements, policy)
    pending = core.trust.check(signerDid, required, slot.options)
  } catch (err) {
    core.log.warn('trust engine failed', { err: errName(err) })
    return REJECT.INSUFFICIENT_TRUST
  }
  if (!(pending instanceof Promise)) return pending.passed === true ? undefined : REJECT.INSUFFICIENT_TRUST
  return pending.then(
    (r) => (r.passed === true ? undefined : REJECT.INSUFFICIENT_TRUST),
    (err: unknown) => {
      core.log.warn('trust engine failed', { err: errName(err) })
      return REJECT.INSUFFICIENT_TRUST
    },
  )
}
