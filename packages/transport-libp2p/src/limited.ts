/**
 * KLP on limited connections (a circuit relay v2 connection with the relay's duration and data
 * limits; js-libp2p defaults: 2 minutes and 128 KiB, both directions together).
 *
 * By default KLP does not run on them: a dial that only finds a limited connection fails with
 * `LimitedConnectionError` (wait for DCUtR to upgrade it to a direct one, or dial a direct
 * address), and inbound KLP streams are not accepted there (libp2p does not call the handler).
 * With `allowLimitedConnections` the operator opts in: KLP runs there, and every `send()` first
 * checks the relay's data cap (the live `limits.bytes` of the libp2p connection, which counts the
 * encrypted bytes both ways): a frame whose bytes on the wire, with what the connection still
 * holds and a reserve, would pass what is left is refused with `RelayDataLimitError` and nothing is
 * sent, so the relay never has to cut the connection for exceeding its cap. The duration limit
 * still ends the connection; the router dials again (by then often directly).
 */
import { QueueFullError, UnreachableError } from '@kos-mesh/interface'
import type { Connection as P2PConnection } from '@libp2p/interface'

/**
 * The only connection to the peer is limited (a relayed one) and KLP is not allowed on it
 * (`allowLimitedConnections` is false), or the peer refused KLP there.
 */
export class LimitedConnectionError extends UnreachableError {
  static override readonly code: string = 'ERR_LIMITED_CONNECTION'
  override name = 'LimitedConnectionError'
  override readonly code: string = 'ERR_LIMITED_CONNECTION'
}

/** A frame would pass the data limit the relay set on the connection: not sent. */
export class RelayDataLimitError extends QueueFullError {
  static override readonly code: string = 'ERR_RELAY_DATA_LIMIT'
  override name = 'RelayDataLimitError'
  override readonly code: string = 'ERR_RELAY_DATA_LIMIT'
}

/**
 * Bytes kept free of the relay's data cap for what is not KLP frames: Yamux window updates and
 * close frames, identify and ping on the same connection.
 */
export const LIMITED_RESERVE_BYTES = 4096

/**
 * The bytes `n` bytes of KLP frames cost on a relayed connection, at most: each Noise message
 * (up to 65,535 bytes) adds a 2-byte length and a 16-byte tag, each Yamux frame a 12-byte header
 * (a frame per write, more when the window splits it: counted per 16 KiB to stay on the safe side).
 */
export function wireBytes(n: number): number {
  return n + 18 * Math.ceil((n + 1) / 65_519) + 12 * Math.ceil((n + 1) / 16_384)
}

/**
 * The budget check of a limited connection: a function that throws RelayDataLimitError when
 * sending `bytes` more (with `held` bytes not yet on the wire) would pass the relay's data limit;
 * undefined for a connection without a data limit.
 */
export function relayBudget(connection: P2PConnection): ((bytes: number, held: number) => void) | undefined {
  if (connection.limits?.bytes === undefined) return undefined
  return (bytes, held) => {
    const left = connection.limits?.bytes
    if (left === undefined) return
    const need = wireBytes(bytes + held) + LIMITED_RESERVE_BYTES
    if (BigInt(need) > left) {
      throw new RelayDataLimitError(`expected ${need} bytes (a frame of ${bytes}, ${held} held, ${LIMITED_RESERVE_BYTES} reserved) to fit the relay's data limit, got ${left.toString()} bytes left on the limited connection`)
    }
  }
}
