/**
 * The notes service's errors: one class per condition, a stable `name` and `code` (callers and
 * tests assert on those, never on message text), built on the interface's base classes.
 */
import { InvalidParametersError, KosMeshError, LimitExceededError, PeerRefusedError } from '@kos-mesh/interface'

/** A key or text this service does not accept ("expected X, got Y"). */
export class InvalidNoteError extends InvalidParametersError {
  static override readonly code: string = 'ERR_INVALID_NOTE'
  override name = 'InvalidNoteError'
  override readonly code: string = 'ERR_INVALID_NOTE'
}

/** This node already stores `maxNotes` notes. */
export class NotesFullError extends LimitExceededError {
  static override readonly code: string = 'ERR_NOTES_FULL'
  override name = 'NotesFullError'
  override readonly code: string = 'ERR_NOTES_FULL'
}

/** The note belongs to another DID. */
export class NotOwnerError extends KosMeshError {
  static override readonly code: string = 'ERR_NOT_OWNER'
  override name = 'NotOwnerError'
  override readonly code: string = 'ERR_NOT_OWNER'
}

/**
 * A peer refused a request. `reason` is the wire code: one of `NotesRejectReason`, or a code of
 * the peer's router (e.g. `insufficient_trust`, `unsupported_message_type`).
 */
export class NoteRejectedError extends PeerRefusedError {
  static override readonly code: string = 'ERR_NOTE_REJECTED'
  override name = 'NoteRejectedError'
  override readonly code: string = 'ERR_NOTE_REJECTED'
}
