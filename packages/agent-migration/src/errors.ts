/**
 * Errors of @kos-mesh/agent-migration. One class per condition, each with a stable `name` and
 * `code`; assert on those, never on message text. Conditions that cross the wire travel as reason
 * codes (`MigrationRejectReason`): a refusal from the other node arrives as `MigrationRefusedError`
 * whose `reason` is that code.
 */
import { DecodeError, InvalidSignatureError, KosMeshError, LimitExceededError, MessageExpiredError, PeerRefusedError, ReplayError } from '@kos-mesh/interface'

/** Bytes of a bundle, request, delegation, audit entry or sealed box are malformed. */
export class InvalidBundleError extends DecodeError {
  static override readonly code: string = 'ERR_INVALID_BUNDLE'
  override name = 'InvalidBundleError'
  override readonly code: string = 'ERR_INVALID_BUNDLE'
}

/** Input is larger than a configured bound (bytes, depth, count). */
export class BundleTooLargeError extends LimitExceededError {
  static override readonly code: string = 'ERR_BUNDLE_TOO_LARGE'
  override name = 'BundleTooLargeError'
  override readonly code: string = 'ERR_BUNDLE_TOO_LARGE'
}

/** A bundle's checksum does not match its content (tampered or corrupted). */
export class ChecksumMismatchError extends KosMeshError {
  static override readonly code: string = 'ERR_CHECKSUM_MISMATCH'
  override name = 'ChecksumMismatchError'
  override readonly code: string = 'ERR_CHECKSUM_MISMATCH'
}

/** A signature (request, delegation, audit entry, vote) does not verify. */
export class MigrationSignatureError extends InvalidSignatureError {
  static override readonly code: string = 'ERR_MIGRATION_SIGNATURE'
  override name = 'MigrationSignatureError'
  override readonly code: string = 'ERR_MIGRATION_SIGNATURE'
}

/** A request or delegation has expired or claims a time too far in the future. */
export class MigrationExpiredError extends MessageExpiredError {
  static override readonly code: string = 'ERR_MIGRATION_EXPIRED'
  override name = 'MigrationExpiredError'
  override readonly code: string = 'ERR_MIGRATION_EXPIRED'
}

/** A migration id seen before, or an epoch at or below one this node already knows (fencing). */
export class StaleMigrationError extends ReplayError {
  static override readonly code: string = 'ERR_STALE_MIGRATION'
  override name = 'StaleMigrationError'
  override readonly code: string = 'ERR_STALE_MIGRATION'
}

/** The signer is neither the agent's owner nor holds a valid delegation chain from it. */
export class OwnershipError extends KosMeshError {
  static override readonly code: string = 'ERR_OWNERSHIP'
  override name = 'OwnershipError'
  override readonly code: string = 'ERR_OWNERSHIP'
}

/** A delegation chain is malformed, widens its parent's scope, or does not cover the action. */
export class DelegationError extends KosMeshError {
  static override readonly code: string = 'ERR_DELEGATION'
  override name = 'DelegationError'
  override readonly code: string = 'ERR_DELEGATION'
}

/** The audit trail was edited, cut, or does not end at the sending node. */
export class AuditTrailError extends KosMeshError {
  static override readonly code: string = 'ERR_AUDIT_TRAIL'
  override name = 'AuditTrailError'
  override readonly code: string = 'ERR_AUDIT_TRAIL'
}

/** The behavioural fingerprint re-run by the target differs from the claimed one. */
export class FingerprintMismatchError extends KosMeshError {
  static override readonly code: string = 'ERR_FINGERPRINT_MISMATCH'
  override name = 'FingerprintMismatchError'
  override readonly code: string = 'ERR_FINGERPRINT_MISMATCH'
}

/** Sealed secrets could not be opened (wrong recipient, tampered box). */
export class SealError extends KosMeshError {
  static override readonly code: string = 'ERR_SEAL'
  override name = 'SealError'
  override readonly code: string = 'ERR_SEAL'
}

/** The agent's code exceeded its memory, time or stack limit in the sandbox. */
export class SandboxLimitError extends KosMeshError {
  static override readonly code: string = 'ERR_SANDBOX_LIMIT'
  override name = 'SandboxLimitError'
  override readonly code: string = 'ERR_SANDBOX_LIMIT'
}

/** The agent's code called a host function its granted permissions do not allow. */
export class CapabilityNotGrantedError extends KosMeshError {
  static override readonly code: string = 'ERR_CAPABILITY_NOT_GRANTED'
  override name = 'CapabilityNotGrantedError'
  override readonly code: string = 'ERR_CAPABILITY_NOT_GRANTED'
}

/** The agent's code threw, or returned something that is not `{ output, state }`. */
export class AgentCodeError extends KosMeshError {
  static override readonly code: string = 'ERR_AGENT_CODE'
  override name = 'AgentCodeError'
  override readonly code: string = 'ERR_AGENT_CODE'
}

/** The target's policy cannot meet the agent's needs (capabilities, tools, agents, limits). */
export class PermissionRefusedError extends KosMeshError {
  static override readonly code: string = 'ERR_PERMISSION_REFUSED'
  override name = 'PermissionRefusedError'
  override readonly code: string = 'ERR_PERMISSION_REFUSED'
}

/** The agent is unknown here, or not in a state that allows the operation. */
export class AgentStateError extends KosMeshError {
  static override readonly code: string = 'ERR_AGENT_STATE'
  override name = 'AgentStateError'
  override readonly code: string = 'ERR_AGENT_STATE'
}

/** This node gave the agent up (moved away) or holds a fenced, older epoch: it may never act for it. */
export class FencedAgentError extends AgentStateError {
  static override readonly code: string = 'ERR_FENCED_AGENT'
  override name = 'FencedAgentError'
  override readonly code: string = 'ERR_FENCED_AGENT'
}

/** The migration was refused by the other node; `reason` is its wire code. */
export class MigrationRefusedError extends PeerRefusedError {
  static override readonly code: string = 'ERR_MIGRATION_REFUSED'
  override name = 'MigrationRefusedError'
  override readonly code: string = 'ERR_MIGRATION_REFUSED'
}
/** The migration could not complete (lost peer, timeout); the source was left as it was. */
export class MigrationFailedError extends KosMeshError {
  static override readonly code: string = 'ERR_MIGRATION_FAILED'
  override name = 'MigrationFailedError'
  override readonly code: string = 'ERR_MIGRATION_FAILED'
}

/** A migration of this agent is already in progress. */
export class MigrationBusyError extends KosMeshError {
  static override readonly code: string = 'ERR_MIGRATION_BUSY'
  override name = 'MigrationBusyError'
  override readonly code: string = 'ERR_MIGRATION_BUSY'
}

/** A stored record could not be read back (the store holds bytes this version cannot decode). */
export class CorruptStoreError extends KosMeshError {
  static override readonly code: string = 'ERR_CORRUPT_STORE'
  override name = 'CorruptStoreError'
  override readonly code: string = 'ERR_CORRUPT_STORE'
}

