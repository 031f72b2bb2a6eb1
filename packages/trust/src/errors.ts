/**
 * Errors of @kos-mesh/trust. One class per condition, each with a stable `name` and `code`;
 * assert on those, never on message text.
 */
import { DecodeError, InvalidSignatureError, KosMeshError, LimitExceededError, MessageExpiredError } from '@kos-mesh/interface'

/** A statement's bytes or body are malformed: not a COSE_Sign1, wrong fields, types or ranges. */
export class InvalidStatementError extends DecodeError {
  static override readonly code: string = 'ERR_INVALID_STATEMENT'
  override name = 'InvalidStatementError'
  override readonly code: string = 'ERR_INVALID_STATEMENT'
}

/** A statement is larger than the configured bound. */
export class StatementTooLargeError extends LimitExceededError {
  static override readonly code: string = 'ERR_STATEMENT_TOO_LARGE'
  override name = 'StatementTooLargeError'
  override readonly code: string = 'ERR_STATEMENT_TOO_LARGE'
}

/** A statement's signature does not verify under its issuer's key (forged or tampered). */
export class InvalidStatementSignatureError extends InvalidSignatureError {
  static override readonly code: string = 'ERR_INVALID_STATEMENT_SIGNATURE'
  override name = 'InvalidStatementSignatureError'
  override readonly code: string = 'ERR_INVALID_STATEMENT_SIGNATURE'
}

/** A statement expired, or was issued too far in the future. */
export class StatementExpiredError extends MessageExpiredError {
  static override readonly code: string = 'ERR_STATEMENT_EXPIRED'
  override name = 'StatementExpiredError'
  override readonly code: string = 'ERR_STATEMENT_EXPIRED'
}

/** A TRUST_ATTESTATION or REPUTATION_DELTA payload (push, query, answer) is malformed. */
export class InvalidTrustMessageError extends DecodeError {
  static override readonly code: string = 'ERR_INVALID_TRUST_MESSAGE'
  override name = 'InvalidTrustMessageError'
  override readonly code: string = 'ERR_INVALID_TRUST_MESSAGE'
}

/** The DID is revoked (by its key holder, or by a validator this node trusts enough). */
export class RevokedDidError extends KosMeshError {
  static override readonly code: string = 'ERR_REVOKED_DID'
  override name = 'RevokedDidError'
  override readonly code: string = 'ERR_REVOKED_DID'
}
