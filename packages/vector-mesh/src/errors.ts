/**
 * Errors of @kos-mesh/vector-mesh. One class per condition, each with a stable `name` and `code`;
 * assert on those, never on message text. Conditions that cross the wire are reason codes
 * (`VectorRejectReason`), not these classes.
 */
import { DecodeError, InvalidParametersError, InvalidSignatureError, KosMeshError, LimitExceededError, PeerRefusedError } from '@kos-mesh/interface'

/** An entry's bytes or body are malformed: not a COSE_Sign1, wrong fields, types or ranges. */
export class InvalidEntryError extends DecodeError {
  static override readonly code: string = 'ERR_INVALID_ENTRY'
  override name = 'InvalidEntryError'
  override readonly code: string = 'ERR_INVALID_ENTRY'
}

/** An entry (or a VECTOR_SYNC payload, a reconciliation message) is larger than its bound. */
export class VectorTooLargeError extends LimitExceededError {
  static override readonly code: string = 'ERR_VECTOR_TOO_LARGE'
  override name = 'VectorTooLargeError'
  override readonly code: string = 'ERR_VECTOR_TOO_LARGE'
}

/** An entry's signature does not verify under its writer's key (forged or tampered). */
export class InvalidEntrySignatureError extends InvalidSignatureError {
  static override readonly code: string = 'ERR_INVALID_ENTRY_SIGNATURE'
  override name = 'InvalidEntrySignatureError'
  override readonly code: string = 'ERR_INVALID_ENTRY_SIGNATURE'
}

/** An entry is written by a DID that is neither its owner nor delegated by the owner. */
export class ForeignOwnerError extends KosMeshError {
  static override readonly code: string = 'ERR_FOREIGN_OWNER'
  override name = 'ForeignOwnerError'
  override readonly code: string = 'ERR_FOREIGN_OWNER'
}

/** An entry is older than the tombstone horizon (it could resurrect a forgotten delete). */
export class EntryTooOldError extends KosMeshError {
  static override readonly code: string = 'ERR_ENTRY_TOO_OLD'
  override name = 'EntryTooOldError'
  override readonly code: string = 'ERR_ENTRY_TOO_OLD'
}

/** An entry's HLC is too far ahead of this node's clock. */
export class EntryFromFutureError extends KosMeshError {
  static override readonly code: string = 'ERR_ENTRY_FROM_FUTURE'
  override name = 'EntryFromFutureError'
  override readonly code: string = 'ERR_ENTRY_FROM_FUTURE'
}

/** A reconciliation message is malformed. */
export class InvalidReconcileMessageError extends DecodeError {
  static override readonly code: string = 'ERR_INVALID_RECONCILE_MESSAGE'
  override name = 'InvalidReconcileMessageError'
  override readonly code: string = 'ERR_INVALID_RECONCILE_MESSAGE'
}

/** A VECTOR_SYNC payload (request or answer) is malformed. */
export class InvalidVectorMessageError extends DecodeError {
  static override readonly code: string = 'ERR_INVALID_VECTOR_MESSAGE'
  override name = 'InvalidVectorMessageError'
  override readonly code: string = 'ERR_INVALID_VECTOR_MESSAGE'
}

/** A collection's configuration is invalid, or a vector does not fit it (dimensions). */
export class InvalidCollectionError extends InvalidParametersError {
  static override readonly code: string = 'ERR_INVALID_COLLECTION'
  override name = 'InvalidCollectionError'
  override readonly code: string = 'ERR_INVALID_COLLECTION'
}

/** The collection does not exist on this node. */
export class UnknownCollectionError extends KosMeshError {
  static override readonly code: string = 'ERR_UNKNOWN_COLLECTION'
  override name = 'UnknownCollectionError'
  override readonly code: string = 'ERR_UNKNOWN_COLLECTION'
}

/** Two entry keys map to the same 63-bit index label (astronomically rare; the entry is refused). */
export class LabelCollisionError extends KosMeshError {
  static override readonly code: string = 'ERR_LABEL_COLLISION'
  override name = 'LabelCollisionError'
  override readonly code: string = 'ERR_LABEL_COLLISION'
}

/** The on-disk state (index file, records) is inconsistent or unreadable. */
export class VectorStoreCorruptError extends KosMeshError {
  static override readonly code: string = 'ERR_VECTOR_STORE_CORRUPT'
  override name = 'VectorStoreCorruptError'
  override readonly code: string = 'ERR_VECTOR_STORE_CORRUPT'
}

/** A peer refused a VECTOR_SYNC request; `reason` is the wire code. */
export class VectorSyncRejectedError extends PeerRefusedError {
  static override readonly code: string = 'ERR_VECTOR_SYNC_REJECTED'
  override name = 'VectorSyncRejectedError'
  override readonly code: string = 'ERR_VECTOR_SYNC_REJECTED'
}
