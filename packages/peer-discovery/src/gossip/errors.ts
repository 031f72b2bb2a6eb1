/**
 * Errors of the gossip core. One class per condition, with a stable `name` and `code`.
 */
import { DecodeError, InvalidParametersError, QueueFullError } from '@kos-mesh/interface'

/** A gossip message is malformed or exceeds a bound (unknown type, wrong field shape, too many ids). */
export class InvalidGossipMessageError extends DecodeError {
  static override readonly code: string = 'ERR_INVALID_GOSSIP_MESSAGE'
  override name = 'InvalidGossipMessageError'
  override readonly code: string = 'ERR_INVALID_GOSSIP_MESSAGE'
}

/** A gossip option is out of range (expected X, got Y). */
export class InvalidGossipOptionError extends InvalidParametersError {
  static override readonly code: string = 'ERR_INVALID_GOSSIP_OPTION'
  override name = 'InvalidGossipOptionError'
  override readonly code: string = 'ERR_INVALID_GOSSIP_OPTION'
}

/** Too many of this node's peer-list requests are pending (bounded by `maxPending`). */
export class PeerListBusyError extends QueueFullError {
  static override readonly code: string = 'ERR_PEER_LIST_BUSY'
  override name = 'PeerListBusyError'
  override readonly code: string = 'ERR_PEER_LIST_BUSY'
}
