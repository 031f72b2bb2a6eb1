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
    if (errName(err) === 'ListenError' && addressInUse((err as { cause?: unknown }).cause)) {
      // transport-tcp: "expected to listen on tcp://..., got EADDRINUSE"; transport-libp2p: "..., got <libp2p error>: <message>"
      throw new AddressInUseError((err as Error).message.replace(/^expected to listen on /, '').replace(/, got [\s\S]*$/, ''), { cause: err })
    }
    throw err
  }
}

/** An EADDRINUSE somewhere in an error's causes (libp2p wraps the socket error a few times). */
function addressInUse(err: unknown, depth = 0): boolean {
  if (err === null || typeof err !== 'object' || depth > 6) return false
  const e = err as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown }
  if (e.code === 'EADDRINUSE' || (typeof e.message === 'string' && /\bEADDRINUSE\b/.test(e.message))) return true
  if (Array.isArray(e.errors) && e.errors.some((x) => addressInUse(x, depth + 1))) return true
  return addressInUse(e.cause, depth + 1)
}
