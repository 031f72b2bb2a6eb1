/**
 * Errors of the DHT service (@kos-mesh/peer-discovery). One class per condition, each with a
 * stable `name` and `code`; assert on those, never on message text. Size bounds of DHT payloads
 * raise the package's `RecordLimitExceededError`.
 */
import { DecodeError, InvalidSignatureError, MessageExpiredError, NotStartedError, KosMeshError, UnreachableError } from '@kos-mesh/interface'

/** A DHT payload (`dht_find_node`, `dht_nodes`, ...) is malformed: unknown action or field, wrong type. */
export class InvalidDhtMessageError extends DecodeError {
  static override readonly code: string = 'ERR_INVALID_DHT_MESSAGE'
  override name = 'InvalidDhtMessageError'
  override readonly code: string = 'ERR_INVALID_DHT_MESSAGE'
}

/**
 * A signed provider record is malformed (message type, action, fields, key != sha256(name)).
 * (Not `InvalidProviderRecordError`: the Kademlia core uses that name for an add_provider whose
 * provider is not its sender.)
 */
export class MalformedProviderRecordError extends DecodeError {
  static override readonly code: string = 'ERR_MALFORMED_PROVIDER_RECORD'
  override name = 'MalformedProviderRecordError'
  override readonly code: string = 'ERR_MALFORMED_PROVIDER_RECORD'
}

/** A provider record's signature does not verify (forged or tampered bytes). */
export class InvalidProviderSignatureError extends InvalidSignatureError {
  static override readonly code: string = 'ERR_INVALID_PROVIDER_SIGNATURE'
  override name = 'InvalidProviderSignatureError'
  override readonly code: string = 'ERR_INVALID_PROVIDER_SIGNATURE'
}

/** A provider record is past `timestamp + ttl` (beyond the clock-skew window). */
export class ProviderRecordExpiredError extends MessageExpiredError {
  static override readonly code: string = 'ERR_PROVIDER_RECORD_EXPIRED'
  override name = 'ProviderRecordExpiredError'
  override readonly code: string = 'ERR_PROVIDER_RECORD_EXPIRED'
}

/** A provider record's timestamp is in the future beyond the clock-skew window. */
export class ProviderRecordFromFutureError extends MessageExpiredError {
  static override readonly code: string = 'ERR_PROVIDER_RECORD_FROM_FUTURE'
  override name = 'ProviderRecordFromFutureError'
  override readonly code: string = 'ERR_PROVIDER_RECORD_FROM_FUTURE'
}

/** A record in a DHT message is not the one it claims to be (e.g. a `sender` record of another DID). */
export class DhtRecordMismatchError extends InvalidSignatureError {
  static override readonly code: string = 'ERR_DHT_RECORD_MISMATCH'
  override name = 'DhtRecordMismatchError'
  override readonly code: string = 'ERR_DHT_RECORD_MISMATCH'
}

/** A contact cannot be reached: no authority known for its DID and no address that dials. */
export class ContactUnreachableError extends UnreachableError {
  static override readonly code: string = 'ERR_CONTACT_UNREACHABLE'
  override name = 'ContactUnreachableError'
  override readonly code: string = 'ERR_CONTACT_UNREACHABLE'
}

/** A node lookup ended without finding the node's verified record. */
export class NodeNotFoundError extends KosMeshError {
  static override readonly code: string = 'ERR_NODE_NOT_FOUND'
  override name = 'NodeNotFoundError'
  override readonly code: string = 'ERR_NODE_NOT_FOUND'
}

/** The DHT service was used before `start()` or after `stop()`. */
export class DhtNotStartedError extends NotStartedError {
  static override readonly code: string = 'ERR_DHT_NOT_STARTED'
  override name = 'DhtNotStartedError'
  override readonly code: string = 'ERR_DHT_NOT_STARTED'
}
