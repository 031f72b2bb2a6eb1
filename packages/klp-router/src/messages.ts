/** Small pure helpers about messages that services and the router share. */
import { KLPMessageType, VerificationLevel, UnknownKeyError, type KLPMessage, type KLPValue, type TrustRequirements } from '@kos-mesh/interface'
import { ENVELOPE_HEADER_BYTES } from './envelope.js'
import { RejectReason } from './reasons.js'

/** Response type for a request type: TASK_REQUEST -> TASK_RESPONSE, others answer in their own family. */
export function responseTypeFor(type: KLPMessageType): KLPMessageType {
  return type === KLPMessageType.TASK_REQUEST ? KLPMessageType.TASK_RESPONSE : type
}

export { didOfKeyId } from '@kos-mesh/interface'

/** The error object of an error response, if `message` is one. */
export function errorOf(message: KLPMessage): { code: string; message: string; status?: string; retry_after?: number } | undefined {
  const data = message.payload.data
  if (data === null || typeof data !== 'object' || data instanceof Uint8Array || Array.isArray(data)) return undefined
  const err = (data as Record<string, KLPValue>).error
  if (err === null || typeof err !== 'object' || err instanceof Uint8Array || Array.isArray(err)) return undefined
  const e = err as Record<string, KLPValue>
  if (typeof e.code !== 'string') return undefined
  const d = data as Record<string, KLPValue>
  return {
    code: e.code,
    message: typeof e.message === 'string' ? e.message : '',
    ...(typeof d.status === 'string' ? { status: d.status } : {}),
    ...(typeof d.retry_after === 'number' ? { retry_after: d.retry_after } : {}),
  }
}

export const NO_TRUST: TrustRequirements = { minimum_trust_score: 0, required_endorsements: 0, verification_level: VerificationLevel.NONE }

export function errName(err: unknown): string {
  return err instanceof Error ? err.name : ''
}

/** The message bytes of an enveloped frame (a view; cheaper than subarray's species lookup). */
export function bodyOf(frame: Uint8Array): Uint8Array {
  return new Uint8Array(frame.buffer, frame.byteOffset + ENVELOPE_HEADER_BYTES, frame.byteLength - ENVELOPE_HEADER_BYTES)
}

/** Reject reason for a failed verifyMessage. */
export function verifyReason(err: unknown): string {
  return err instanceof UnknownKeyError || errName(err) === 'UnknownKeyError' ? RejectReason.UNKNOWN_KEY : RejectReason.INVALID_SIGNATURE
}
