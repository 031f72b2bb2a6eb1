/**
 * A libp2p stream's error as the Transport contract's typed error: a reset or aborted stream (or
 * its connection or muxer gone) is ConnectionResetError, anything else ConnectionClosedError.
 * Internal.
 */
import { ConnectionClosedError } from '@kos-mesh/interface'
import { ConnectionResetError } from './errors.js'

/** Maps an error of a libp2p stream (found by its name) to ConnectionResetError or ConnectionClosedError. */
export function mapStreamError(err: unknown): Error {
  const e = err as { name?: unknown; message?: unknown }
  const msg = typeof e?.message === 'string' ? e.message : String(err)
  if (e?.name === 'StreamResetError' || e?.name === 'StreamAbortedError' || e?.name === 'ConnectionClosedError' || e?.name === 'MuxerClosedError') {
    return new ConnectionResetError(`the remote reset the stream: ${msg}`, { cause: err })
  }
  return new ConnectionClosedError(`stream closed: ${msg}`, { cause: err })
}
