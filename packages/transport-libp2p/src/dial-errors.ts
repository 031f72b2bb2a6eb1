/**
 * Dial errors of the libp2p transport: libp2p's errors (found by name in the error, its causes and
 * aggregated errors) mapped to the typed errors of the Transport contract, and the `announce` check.
 * Internal.
 */
import { AbortError, InvalidParametersError, isKosMeshError, PeerMismatchError, UnreachableError } from '@kos-mesh/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { DialTimeoutError, PeerIdConversionError, TooManyConnectionsError } from './errors.js'
import { LimitedConnectionError } from './limited.js'
import { KLP_PROTOCOL } from './protocol.js'

/** The `announce` option checked: a list of multiaddr strings (InvalidParametersError otherwise). */
export function checkAnnounce(v: unknown): string[] {
  if (v === undefined) return []
  if (!Array.isArray(v) || v.length > 64) throw new InvalidParametersError(`expected announce to be a list of at most 64 multiaddrs, got ${Array.isArray(v) ? v.length : typeof v}`)
  for (const a of v) {
    try {
      if (typeof a !== 'string') throw new TypeError(typeof a)
      multiaddr(a)
    } catch {
      throw new InvalidParametersError(`expected announce to hold multiaddrs like /dns4/node.example.org/tcp/4747, got ${JSON.stringify(String(a).slice(0, 120))}`)
    }
  }
  return v as string[]
}

/** Walks an error, its causes and aggregated errors, looking for libp2p error names. */
function errorNames(err: unknown, depth = 0, out: string[] = []): string[] {
  if (err === null || typeof err !== 'object' || depth > 6) return out
  const e = err as { name?: unknown; code?: unknown; cause?: unknown; errors?: unknown }
  if (typeof e.name === 'string') out.push(e.name)
  if (typeof e.code === 'string') out.push(e.code)
  if (e.cause !== undefined) errorNames(e.cause, depth + 1, out)
  if (Array.isArray(e.errors)) for (const x of e.errors) errorNames(x, depth + 1, out)
  return out
}

export function mapDialError(err: unknown, signal: AbortSignal, addr: string): Error {
  if (signal.aborted) {
    const reason: unknown = signal.reason
    if (reason instanceof DialTimeoutError || reason instanceof AbortError) return reason
    return new AbortError(undefined, { cause: reason })
  }
  if (isKosMeshError(err) && !(err instanceof PeerIdConversionError)) return err
  const names = errorNames(err)
  const msg = (err as Error)?.message ?? String(err)
  // libp2p's upgrader rethrows Noise's UnexpectedPeerError as EncryptionFailedError with only the
  // message kept ("Payload identity key X does not match expected remote identity key Y")
  const unexpectedPeer = names.includes('UnexpectedPeerError') ||
    (names.includes('EncryptionFailedError') && /does not match expected|unexpected peer/i.test(msg))
  if (unexpectedPeer || err instanceof PeerIdConversionError) {
    return new PeerMismatchError(`expected the remote to prove the peer of the address, got another: ${msg}`, { cause: err })
  }
  if (names.includes('TooManyOutboundProtocolStreamsError')) {
    return new TooManyConnectionsError(`expected room for another ${KLP_PROTOCOL} stream, got ${msg}`, { cause: err })
  }
  if (names.includes('LimitedConnectionError')) {
    return new LimitedConnectionError(`expected a direct connection, got only a limited (relayed) one: ${msg}`, { cause: err })
  }
  if (names.includes('AbortError')) return new AbortError(undefined, { cause: err })
  // refused / no route / no listener / the peer does not speak KLP (any more)
  return new UnreachableError(`expected to reach ${addr} over libp2p, got ${names[0] ?? 'Error'}: ${msg}`, { cause: err })
}
