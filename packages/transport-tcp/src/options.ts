/**
 * The options of {@link tcp} (`TcpInit`), what the host provides (`TcpComponents`), their defaults
 * (`DEFAULTS`) and the check of each configured limit.
 */
import type { Identity } from '@kos-mesh/did-security'
import { InvalidParametersError, type Clock, type Logger } from '@kos-mesh/interface'
import type { HandshakeFn } from './security.js'

/**
 * Options of {@link tcp}: the limits and timeouts of the transport and of every connection it makes.
 * Every field is optional; an omitted one takes its value from {@link DEFAULTS}. Sizes are in bytes,
 * times in milliseconds (measured on `components.clock`). A value that is not a number, is NaN or
 * negative, or is 0 where only `keepAliveIntervalMs` may be 0, or `maxOutboundBufferBytes` below
 * `maxFrameSize`, or `maxFrameSize` of 4 GiB or more, makes `tcp(init)(components)` throw
 * `InvalidParametersError`.
 *
 * @typeParam Id - the identity type the handshake takes (a did-security `Identity` by default).
 */
export interface TcpInit<Id = Identity> {
  /** Largest application frame accepted by `send()` and from the wire, in bytes. Default 1 MiB. */
  maxFrameSize?: number
  /**
   * Decrypted inbound bytes buffered per connection before the socket is paused. Default 1 MiB: a
   * small buffer keeps a fast sender from making us decrypt a large burst in one turn of the event
   * loop (the consumer paces the reads). A larger frame is still taken whole.
   */
  maxInboundBufferBytes?: number
  /** Largest single handshake message. Default 4 KiB (did:key handshakes use < 700 bytes). */
  maxHandshakeFrameSize?: number
  /** Time allowed for the secure handshake, both directions. Default 5000 ms. */
  handshakeTimeoutMs?: number
  /** Time allowed for the TCP connect of a dial. Default 10000 ms. */
  dialTimeoutMs?: number
  /** Idle time before a ping; 0 disables keep-alive. Default 15000 ms. */
  keepAliveIntervalMs?: number
  /** Consecutive unanswered keep-alive intervals before the connection is closed. Default 2. */
  maxMissedPongs?: number
  /** Time a graceful `close()` may take before the socket is destroyed. Default 5000 ms. */
  closeTimeoutMs?: number
  /**
   * Time an inbound socket has to deliver its first complete handshake message; a silent or slow
   * socket is dropped after it (it also stops counting against the handshake limits). Default 1000 ms.
   */
  firstMessageTimeoutMs?: number
  /**
   * Inbound handshakes running at once per listener. When all slots are taken, a new socket waits
   * (unread) until a slot frees or a pending handshake stalls (see `handshakeStallMs`), which is then
   * evicted for it: from the address holding the most slots first, the one without progress for the
   * longest. Only a completed handshake is safe from eviction. At most this many sockets wait per
   * listener (and `maxInboundHandshakesPerIp` per address); more are dropped. Default 64.
   */
  maxInboundHandshakes?: number
  /**
   * Inbound handshakes running at once per listener from one remote IP (IPv6: one /64); a new socket
   * from a full address evicts a stalled handshake of that same address. Default 8.
   */
  maxInboundHandshakesPerIp?: number
  /**
   * A pending inbound handshake that has gone this long without progress (no complete handshake
   * message from the peer, none written by us) is stalled: when the handshake slots are full it is
   * evicted for a waiting socket, whatever stage it reached. A socket that has sent nothing at all is
   * evictable at once. Must cover an honest peer's round trip plus its handshake CPU. Default 1000 ms.
   */
  handshakeStallMs?: number
  /** Open connections (both directions) per transport; more are refused. Default 1024. */
  maxConnections?: number
  /**
   * Connections (handshaking or open) per remote IP (IPv6: one /64), counted separately for inbound
   * and outbound, so inbound sockets from an address never block our own dials to it. Default 64.
   */
  maxConnectionsPerIp?: number
  /**
   * Bytes the socket's write buffer may hold before `send()` waits for 'drain' (the node:net
   * writable high-water mark). Default 128 KiB.
   */
  sendBufferBytes?: number
  /**
   * Outbound bytes one connection may hold: copies of frames waiting for their turn plus the socket's
   * write buffer (each frame counted with 64 bytes of record overhead). A `send()` that would go past
   * it rejects at once with `SendBufferFullError` (nothing queued, the connection stays open); a send
   * into an empty buffer always fits. At least `maxFrameSize`. Default max(4 MiB, maxFrameSize).
   */
  maxOutboundBufferBytes?: number
  /**
   * While outbound bytes are held, the peer must drain some of them (the kernel accepts bytes of our
   * writes) at least this often; otherwise it has stopped reading and the connection is aborted with
   * `SlowPeerError`. Progress resets the deadline, so a slow but steady reader is kept. Checked every
   * quarter of it (at most every second). `Infinity` disables. Default 10000 ms.
   */
  sendStallTimeoutMs?: number
  /** Listen backlog passed to node:net. Default 511. */
  backlog?: number
  /** The channel handshake (default: did-security's `performHandshake`). */
  handshake?: HandshakeFn<Id>
}

/**
 * What the host gives the transport (js-libp2p component style): the identity every handshake proves,
 * and optionally a logger and a clock. `tcp(init)(components)` throws `InvalidParametersError` when
 * `identity` is missing or `clock` lacks `now` / `setTimeout` / `clearTimeout`.
 *
 * @typeParam Id - the identity type the handshake takes (a did-security `Identity` by default).
 */
export interface TcpComponents<Id = Identity> {
  /** The local identity the handshake proves (a did-security Identity for the default handshake). */
  identity: Id
  /** Receives debug/warn lines about refused sockets, failed handshakes and throwing handlers. Default: none. */
  logger?: Logger
  /**
   * Time and every timer of the transport and its connections (dial, handshake, first-message and
   * close timeouts, keep-alive, send stall deadlines, handshake slot ages, session expiry); also given
   * to the handshake. Default `systemClock` from @kos-mesh/interface.
   */
  clock?: Clock
}

/**
 * The default of each {@link TcpInit} limit (bytes and milliseconds), used when the field is omitted.
 * `maxOutboundBufferBytes` is the exception: its actual default is the larger of this value and the
 * configured `maxFrameSize`.
 */
export const DEFAULTS = {
  maxFrameSize: 1024 * 1024,
  maxInboundBufferBytes: 1024 * 1024,
  maxHandshakeFrameSize: 4 * 1024,
  handshakeTimeoutMs: 5_000,
  dialTimeoutMs: 10_000,
  keepAliveIntervalMs: 15_000,
  maxMissedPongs: 2,
  closeTimeoutMs: 5_000,
  firstMessageTimeoutMs: 1_000,
  maxInboundHandshakes: 64,
  maxInboundHandshakesPerIp: 8,
  maxConnections: 1024,
  maxConnectionsPerIp: 64,
  backlog: 511,
  sendBufferBytes: 128 * 1024,
  /** The actual default is max(this, maxFrameSize). */
  maxOutboundBufferBytes: 4 * 1024 * 1024,
  sendStallTimeoutMs: 10_000,
  handshakeStallMs: 1_000,
} as const

export function positive(name: string, v: number | undefined, def: number, allowZero = false): number {
  if (v === undefined) return def
  if (typeof v !== 'number' || Number.isNaN(v) || v < 0 || (!allowZero && v === 0)) {
    throw new InvalidParametersError(`expected ${name} to be a ${allowZero ? 'non-negative' : 'positive'} number, got ${String(v)}`)
  }
  return v
}
