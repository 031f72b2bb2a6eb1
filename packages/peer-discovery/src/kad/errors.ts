/**
 * Errors of the Kademlia core. One class per condition with a stable `name` and `code`; assert on
 * those, never on message text.
 */
import { InvalidParametersError, KosMeshError, TimeoutError, UnreachableError } from '@kos-mesh/interface'

/** A KadId is not 32 bytes, or a contact's id is not sha256 of its DID. */
export class InvalidKadIdError extends InvalidParametersError {
  static override readonly code: string = 'ERR_INVALID_KAD_ID'
  override name = 'InvalidKadIdError'
  override readonly code: string = 'ERR_INVALID_KAD_ID'
}

/** A Kademlia request did not get an answer within `requestTimeoutMs`. */
export class KadRequestTimeoutError extends TimeoutError {
  static override readonly code: string = 'ERR_KAD_REQUEST_TIMEOUT'
  override name = 'KadRequestTimeoutError'
  override readonly code: string = 'ERR_KAD_REQUEST_TIMEOUT'
}

/** A lookup could not start: the routing table is empty (bootstrap first). */
export class KadNoContactsError extends UnreachableError {
  static override readonly code: string = 'ERR_KAD_NO_CONTACTS'
  override name = 'KadNoContactsError'
  override readonly code: string = 'ERR_KAD_NO_CONTACTS'
}

/** An `add_provider` record names another provider than the sender, or has a malformed key. */
export class InvalidProviderRecordError extends KosMeshError {
  static override readonly code: string = 'ERR_INVALID_PROVIDER_RECORD'
  override name = 'InvalidProviderRecordError'
  override readonly code: string = 'ERR_INVALID_PROVIDER_RECORD'
}

/** A peer answered a Kademlia request with a response of the wrong type. */
export class UnexpectedKadResponseError extends KosMeshError {
  static override readonly code: string = 'ERR_UNEXPECTED_KAD_RESPONSE'
  override name = 'UnexpectedKadResponseError'
  override readonly code: string = 'ERR_UNEXPECTED_KAD_RESPONSE'
}
