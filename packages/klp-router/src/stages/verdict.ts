/**
 * What a pipeline stage decides about a message: continue (`undefined`), or reject with a stable
 * reason code, answering a request with a signed error response when `answer` is set. Stages are
 * plain functions over a message and the router's core; they do no I/O of their own.
 */
import { RejectReason } from '../reasons.js'

export interface Reject {
  readonly reason: string
  /** Answer a request with a signed error response (verified requests only). */
  readonly answer: boolean
  /** Human text of the error response. */
  readonly message: string
}

export type Verdict = Reject | undefined

export function rejectWith(reason: string, answer = false, message = ''): Reject {
  return Object.freeze({ reason, answer, message })
}

/** The rejects that need no message of their own (preallocated: the hot path allocates nothing). */
export const REJECT = Object.freeze({
  FRAME_TOO_LARGE: rejectWith(RejectReason.FRAME_TOO_LARGE),
  RATE_LIMITED: rejectWith(RejectReason.RATE_LIMITED),
  MALFORMED: rejectWith(RejectReason.MALFORMED),
  TTL_TOO_LONG: rejectWith(RejectReason.TTL_TOO_LONG),
  EXPIRED: rejectWith(RejectReason.EXPIRED),
  REVOKED: rejectWith(RejectReason.REVOKED),
  REPLAY: rejectWith(RejectReason.REPLAY),
  SOURCE_MISMATCH: rejectWith(RejectReason.SOURCE_MISMATCH),
  UNSOLICITED_RESPONSE: rejectWith(RejectReason.UNSOLICITED_RESPONSE),
  RESPONSE_MISMATCH: rejectWith(RejectReason.RESPONSE_MISMATCH),
  UNKNOWN_KEY: rejectWith(RejectReason.UNKNOWN_KEY),
  INVALID_SIGNATURE: rejectWith(RejectReason.INVALID_SIGNATURE),
  INSUFFICIENT_TRUST: rejectWith(RejectReason.INSUFFICIENT_TRUST, true, 'sender does not meet the trust requirements'),
  HANDLER_ERROR: rejectWith(RejectReason.HANDLER_ERROR, true, 'the handler failed'),
})
