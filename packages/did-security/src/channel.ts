/**
 * The KLP secure channel: a sans-I/O mutual-authentication handshake that binds both sides' DIDs to
 * the session, then per-direction AES-256-GCM record protection with 64-bit record numbers, automatic
 * in-band rekeying, a 24-hour lifetime and replay / reorder protection.
 *
 * Modules: channel-handshake.ts (handshake messages, transcript, key schedule and state machine),
 * channel-session.ts (the established session: record numbering, rekeying, lifetime, replay checks),
 * channel-record.ts (per-epoch record keys and the replay window); this module runs a handshake
 * over a transport (performHandshake).
 */
import { AbortError, systemClock } from '@kos-mesh/interface'
import { HandshakeTimeoutError } from './errors.js'
import { createHandshake, type HandshakeOptions } from './channel-handshake.js'
import type { SecureSession } from './channel-session.js'

export { CHANNEL_PROTOCOL, MAX_HANDSHAKE_MESSAGE, createHandshake, type Handshake, type HandshakeOptions, type HandshakeStep } from './channel-handshake.js'
export { RECORD_OVERHEAD, type HandshakeRole, type SecureSession, type SessionOptions } from './channel-session.js'

/** What performHandshake needs from a transport: whole handshake messages in and out. */
export interface HandshakeIO {
  /** Sends one handshake message to the peer. */
  write(msg: Uint8Array): Promise<void> | void
  /** Resolves with the next handshake message from the peer. */
  read(options?: { signal?: AbortSignal }): Promise<Uint8Array>
}

/**
 * Runs the handshake over `io` (the caller frames messages). Resolves with the session; rejects with
 * HandshakeTimeoutError after `timeoutMs` (default 10 s), AbortError on `signal`, PeerMismatchError,
 * HandshakeError, TruncatedRecordError or RecordTooLargeError.
 */
export async function performHandshake(io: HandshakeIO, options: HandshakeOptions): Promise<SecureSession> {
  const timeoutMs = options.timeoutMs ?? 10_000
  const ac = new AbortController()
  const outer = options.signal
  if (outer?.aborted === true) throw new AbortError(undefined, { cause: outer.reason })
  const clock = options.clock ?? systemClock
  const timer = clock.setTimeout(() => { ac.abort(new HandshakeTimeoutError(`the handshake did not finish within ${timeoutMs} ms`)) }, timeoutMs)
  const onAbort = (): void => { ac.abort(new AbortError(undefined, { cause: outer?.reason })) }
  outer?.addEventListener('abort', onAbort, { once: true })
  const aborted = new Promise<never>((_resolve, reject) => {
    ac.signal.addEventListener('abort', () => { reject(ac.signal.reason as Error) }, { once: true })
  })
  aborted.catch(() => {})
  const guard = <T>(p: Promise<T> | T): Promise<T> => Promise.race([Promise.resolve(p), aborted])
  try {
    const hs = createHandshake(options)
    const first = hs.start()
    if (first !== undefined) await guard(io.write(first))
    for (;;) {
      const msg = await guard(io.read({ signal: ac.signal }))
      const step = await guard(hs.receive(msg, { signal: ac.signal }))
      if (step.reply !== undefined) await guard(io.write(step.reply))
      if (step.session !== undefined) return step.session
    }
  } finally {
    clock.clearTimeout(timer)
    outer?.removeEventListener('abort', onAbort)
    if (!ac.signal.aborted) ac.abort(new AbortError('handshake finished'))
  }
}
