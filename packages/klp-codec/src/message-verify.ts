/**
 * What a receiver checks on a message: verifyMessage (the signature over the COSE Sig_structure,
 * through a SignatureVerifier) and expiry (expiresAt, checkExpiry).
 */
import { describeValue, InvalidSignatureError, MessageExpiredError, systemClock, throwIfAborted } from '@kos-mesh/interface'
import type { AbortOptions, KLPMessage, SignatureVerifier } from '@kos-mesh/interface'
import { DEFAULT_CLOCK_SKEW_MS, SIGNATURE_LENGTH, failParam } from './message-schema.js'
import { sigStructure, signedOf } from './message-sign.js'

/**
 * Verifies the signature of a message through a SignatureVerifier, over the COSE Sig_structure
 * `["Signature1", protected, h'', body]`. On a message from decodeMessage or signMessage the exact
 * signed / received bytes are used; otherwise the body is re-encoded and its id checked. Throws InvalidSignatureError (and whatever the verifier throws,
 * e.g. UnknownKeyError).
 */
export async function verifyMessage(msg: KLPMessage, verifier: SignatureVerifier, options?: AbortOptions): Promise<void> {
  throwIfAborted(options?.signal)
  if (msg === null || typeof msg !== 'object') failParam(`expected a KLPMessage, got ${describeValue(msg)}`)
  if (typeof msg.signer !== 'string' || msg.signer.length === 0) throw new InvalidSignatureError(`expected a signer key id, got ${describeValue(msg.signer)}`)
  if (!(msg.signature instanceof Uint8Array) || msg.signature.length !== SIGNATURE_LENGTH) {
    throw new InvalidSignatureError(`expected a signature of exactly ${SIGNATURE_LENGTH} bytes, got ${describeValue(msg.signature)}`)
  }
  const s = signedOf(msg)
  // internal: not handed to callers, only to the verifier; built from the received bytes when decoded
  const input = s.input ?? sigStructure(s.protectedBstr, s.payloadBstr)
  const ok = await verifier.verifySignature(msg.signer, input, msg.signature, options?.signal === undefined ? undefined : { signal: options.signal })
  throwIfAborted(options?.signal)
  if (ok !== true) throw new InvalidSignatureError(`expected a valid signature by ${msg.signer} on message ${msg.metadata.message_id}, got an invalid one`)
}

/** Options of `checkExpiry`. */
export interface ExpiryOptions {
  /** Current time, ms since the epoch. Default `systemClock.now()` (the wall clock). */
  now?: number
  /** Tolerated clock difference in ms, both directions. Default 30,000. */
  clockSkewMs?: number
}

/** The instant (ms) after which a message is expired, without skew: `timestamp + ttl * 1000`. */
export function expiresAt(msg: Pick<KLPMessage, 'timestamp' | 'metadata'>): number {
  return msg.timestamp + msg.metadata.ttl * 1000
}

/**
 * Throws MessageExpiredError when `now > timestamp + ttl*1000 + clockSkewMs`, or when the message
 * claims a time more than `clockSkewMs` in the future.
 */
export function checkExpiry(msg: Pick<KLPMessage, 'timestamp' | 'metadata'>, options?: ExpiryOptions): void {
  const now = options?.now ?? systemClock.now()
  const skew = options?.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS
  if (!Number.isFinite(now)) failParam(`expected now to be a finite number, got ${describeValue(now)}`)
  if (!Number.isFinite(skew) || skew < 0) failParam(`expected clockSkewMs >= 0, got ${describeValue(skew)}`)
  const exp = expiresAt(msg)
  if (now > exp + skew) {
    throw new MessageExpiredError(`expected a message valid until ${exp} (+${skew} ms skew), got now ${now}`)
  }
  if (msg.timestamp > now + skew) {
    throw new MessageExpiredError(`expected a timestamp at most ${skew} ms in the future, got ${msg.timestamp - now} ms ahead`)
  }
}
