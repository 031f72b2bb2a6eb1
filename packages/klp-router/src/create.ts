/**
 * `createRouter`: the convenience constructor (identity and components in one object, started by
 * default) over the `klpRouter(init)(components)` factory.
 */
import type { Clock, Logger, SignatureVerifier, Signer, Transport, TrustEngine } from '@kos-mesh/interface'
import type { RouterInit } from './options.js'
import { klpRouter } from './router.js'
import type { Router } from './types.js'

/**
 * Options of {@link createRouter}: the {@link RouterInit} options plus the components
 * ({@link RouterComponents}) in one object, with an identity in place of the signer.
 */
export interface CreateRouterOptions extends RouterInit {
  /** The node identity: anything with a `signer` (a did-security Identity fits). */
  identity: { signer: Signer }
  /** Checks the signatures of inbound messages (e.g. did-security's `createSignatureVerifier()`). */
  signatureVerifier: SignatureVerifier
  /** Transports to dial and listen with (see `RouterComponents.transports`). */
  transports: Transport[]
  /** Trust requirements, revocation and observations. Default: an empty `staticTrustEngine()` (zero trust). */
  trustEngine?: TrustEngine
  /** Time and timers. Default: `systemClock`. */
  clock?: Clock
  /** Default: silent. */
  logger?: Logger
  /** Start the router before returning. Default true. */
  start?: boolean
}

/**
 * Convenience: builds a router with `klpRouter` and, unless `start: false`, starts it (listening on
 * `listen`). Rejects with what `klpRouter(init)(components)` throws for bad options, and with what
 * `start()` rejects with (e.g. `NoTransportError` for a listen address no transport takes, `ListenError`
 * of the transport), after stopping the router again.
 */
export async function createRouter(options: CreateRouterOptions): Promise<Router> {
  const { identity, signatureVerifier, transports, trustEngine, clock, logger, start, ...init } = options
  const router = klpRouter(init)({
    signer: identity.signer,
    signatureVerifier,
    transports,
    ...(trustEngine === undefined ? {} : { trustEngine }),
    ...(clock === undefined ? {} : { clock }),
    ...(logger === undefined ? {} : { logger }),
  })
  if (start !== false) await router.start()
  return router
}
