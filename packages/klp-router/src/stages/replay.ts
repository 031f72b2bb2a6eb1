/**
 * Stage 4, replay: the window is keyed by signer DID + message id (the id covers the body only, so
 * somebody re-signing another's body must not pre-empt the genuine message). `seen` runs before the
 * signature (a replay costs no verify) and answers a duplicate request from the response cache;
 * `record` runs after it, so only verified messages take room.
 */
import type { RouterCore } from '../core.js'
import { REJECT, type Verdict } from './verdict.js'

export function checkSeen(core: RouterCore, key: string): Verdict {
  if (!core.replay.has(key)) return undefined
  const cached = core.responses.get(key)
  if (cached !== undefined) {
    core.counters.cachedResponses++
    try {
      core.routeFrame(cached.target, cached.frame)
    } catch {}
  }
  return REJECT.REPLAY
}

export function record(core: RouterCore, key: string, expiresAt: number, signerDid: string): Verdict {
  return core.replay.checkAndRecord(key, expiresAt, signerDid, !core.isKnown(signerDid)) ? undefined : REJECT.REPLAY
}
