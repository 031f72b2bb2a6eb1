/**
 * Errors of @kos-mesh/transport-memory. One class per condition, each extending the matching class
 * of `@kos-mesh/interface`, so callers can test the specific `name`/`code` or the family
 * (`instanceof ConnectionClosedError`, ...). Assert on `name`/`code`, never on message text.
 *
 * Contract conditions that the interface already names (a dial to an unknown address or across a
 * partition, a peer mismatch, an aborted call, a send on a closed connection) are thrown as the
 * interface classes themselves: `UnreachableError`, `PeerMismatchError`, `AbortError`,
 * `ConnectionClosedError`.
 */
import {
  ConnectionClosedError,
  InvalidAddressError,
  InvalidParametersError,
  LimitExceededError,
  NotStartedError,
  QueueFullError,
  TimeoutError,
} from '@kos-mesh/interface'

/** A frame is larger than the connection's `maxFrameSize`. Nothing was sent. */
export class FrameTooLargeError extends LimitExceededError {
  static override readonly code: string = 'ERR_FRAME_TOO_LARGE'
  override name = 'FrameTooLargeError'
  override readonly code: string = 'ERR_FRAME_TOO_LARGE'
}

/** Another listener on the same network already uses this `memory://` name. */
export class AddressInUseError extends InvalidAddressError {
  static override readonly code: string = 'ERR_ADDRESS_IN_USE'
  override name = 'AddressInUseError'
  override readonly code: string = 'ERR_ADDRESS_IN_USE'
}

/** The transport was closed (or its node crashed in the simulator) and cannot dial or listen. */
export class TransportClosedError extends NotStartedError {
  static override readonly code: string = 'ERR_TRANSPORT_CLOSED'
  override name = 'TransportClosedError'
  override readonly code: string = 'ERR_TRANSPORT_CLOSED'
}

/** A `send` waited longer than `sendTimeoutMs` for room in the remote's inbound buffer. */
export class SendTimeoutError extends TimeoutError {
  static override readonly code: string = 'ERR_SEND_TIMEOUT'
  override name = 'SendTimeoutError'
  override readonly code: string = 'ERR_SEND_TIMEOUT'
}



/** The remote side aborted the connection (or its node crashed); pending frames were dropped. */
export class ConnectionResetError extends ConnectionClosedError {
  static override readonly code: string = 'ERR_CONNECTION_RESET'
  override name = 'ConnectionResetError'
  override readonly code: string = 'ERR_CONNECTION_RESET'
}

/** A virtual-time call on a real-time network, or a second `runFor` while one is running. */
export class VirtualTimeError extends InvalidParametersError {
  static override readonly code: string = 'ERR_VIRTUAL_TIME'
  override name = 'VirtualTimeError'
  override readonly code: string = 'ERR_VIRTUAL_TIME'
}

/** The transport errors every transport shares (interface). */
export { SendBufferFullError, SlowPeerError } from '@kos-mesh/interface'
