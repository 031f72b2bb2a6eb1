/**
 * The node's router: its options (the receiver-side trust policy with `taskMinTrust` folded in),
 * listening (an address in use becomes AddressInUseError), and the router as services see it.
 */
import { KLPMessageType, VerificationLevel, type TrustRequirements } from '@kos-mesh/interface'
import { klpRouter, type RouterComponents, type Router, type RouterInit } from '@kos-mesh/klp-router'
import { strictestTrust } from '@kos-mesh/trust'
import { AddressInUseError } from './errors.js'
import type { NodeInit } from './node-types.js'
import { errName } from './reasons.js'

/** The router's trust policy: `router.trustPolicy` with `taskMinTrust` folded into TASK_REQUEST. */
export function routerTrustPolicy(init: Pick<NodeInit, 'router' | 'taskMinTrust'>): RouterInit['trustPolicy'] {
  const base = init.router?.trustPolicy
  const min = init.taskMinTrust ?? 0
  if (min <= 0) return base
  const own: TrustRequirements = { minimum_trust_score: min, required_endorsements: 0, verification_level: VerificationLevel.NONE }
  const cur = base?.[KLPMessageType.TASK_REQUEST]
  return { ...base, [KLPMessageType.TASK_REQUEST]: cur === undefined ? own : strictestTrust(cur, own) }
}

/** The router of a start: `init.router` with the node's authority, listen addresses, pins and trust policy. */
export function createRouter(init: NodeInit, authority: string, pinnedAuthorities: RouterInit['pinnedAuthorities'], components: RouterComponents): Router {
  const trustPolicy = routerTrustPolicy(init)
  return klpRouter({
    ...init.router,
    authority,
    listen: init.listen ?? [],
    pinnedAuthorities,
    ...(trustPolicy === undefined ? {} : { trustPolicy }),
  })(components)
}

/** Starts `router` (it listens); an address already in use throws AddressInUseError. */
export async function startRouter(router: Router): Promise<void> {
  try {
    await router.start()
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause
    if (errName(err) === 'ListenError' && cause?.code === 'EADDRINUSE') throw new AddressInUseError((err as Error).message.replace(/^expected to listen on /, '').replace(/, got EADDRINUSE$/, ''), { cause: err })
    throw err
  }
}
