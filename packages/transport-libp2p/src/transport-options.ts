/**
 * The options of the libp2p transport (`libp2pTransport(init)(components)`), their defaults, and
 * their check: every bound positive, the outbound buffer at least one frame, the stream window at
 * least Yamux's initial window. Internal, but for the types and DEFAULTS (exported by index.ts).
 */
import { InvalidParametersError, type Clock, type Logger } from '@kos-mesh/interface'
import type { Identity } from '@kos-mesh/did-security'
import type { Libp2p } from '@libp2p/interface'
import type { Libp2pOptions } from 'libp2p'
import type { ConnectionLimits } from './connection.js'

/**
 * Options of `libp2pTransport(init)`: the js-libp2p host to run on (or how to create one), the
 * announced addresses, and the bounds of every KLP connection (sizes in bytes, times in ms of the
 * injected clock). Each bound must be a positive number, else the transport's constructor throws
 * InvalidParametersError; omitted ones take the values in `DEFAULTS` (exported).
 */
export interface Libp2pTransportInit {
  /**
   * An existing js-libp2p host to run KLP on, as one more protocol handler. The transport then never
   * starts or stops it (`close()` only removes the handler and closes the KLP streams), and the host's
   * own key is the local identity. Default: the transport creates its own host from
   * `components.identity` at the first `listen()` or `dial()` (TCP + WebSockets, Noise, Yamux,
   * identify, ping) and stops it in `close()`.
   */
  libp2p?: Libp2p
  /**
   * Options merged over the defaults of the host the transport creates (ignored with `libp2p`), e.g.
   * `transports`, `connectionGater`, `services`. `privateKey` always comes from the identity.
   * `addresses` is merged key by key: its `listen` addresses are added to the one of the first
   * `listen()`, its `announce` ones to `announce`, its other keys kept.
   */
  libp2pOptions?: Omit<Libp2pOptions, 'privateKey'>
  /**
   * Multiaddrs the host announces instead of the addresses it listens on (identify, peer records,
   * the DHT, `Listener.addrs()`): the public address of a node behind a port forward or a load
   * balancer, `/dns4/node.example.org/tcp/4747`. Ignored with `libp2p` (configure that host).
   * At most 64, each a valid multiaddr (InvalidParametersError otherwise).
   * Default: none (the listen addresses, as observed).
   */
  announce?: string[]
  /** Largest application frame accepted by `send()` and from the wire, in bytes (below 4 GiB). Default 1 MiB. */
  maxFrameSize?: number
  /**
   * Decoded inbound bytes buffered per connection before the stream is paused (Yamux then stops
   * granting window, so the sender blocks). Default 1 MiB. A larger frame is still taken whole.
   */
  maxInboundBufferBytes?: number
  /**
   * Outbound bytes one connection may hold (frames waiting for their turn plus the libp2p stream's
   * write buffer, each frame with its 8-byte header). A `send()` past it rejects at once with
   * `SendBufferFullError`; a send into an empty buffer always fits. At least `maxFrameSize`.
   * Default max(4 MiB, maxFrameSize).
   */
  maxOutboundBufferBytes?: number
  /**
   * While outbound bytes are held, the peer must take some of them at least this often, otherwise it
   * has stopped reading and the connection is aborted with `SlowPeerError`. `Infinity` disables.
   * Default 10000 ms.
   */
  sendStallTimeoutMs?: number
  /** Time a graceful `close()` may take before the stream is reset. Default 5000 ms. */
  closeTimeoutMs?: number
  /** Time allowed for a dial (libp2p connection + KLP stream). Default 10000 ms. */
  dialTimeoutMs?: number
  /** KLP connections open at once on this transport (both directions); more are refused. Default 1024. */
  maxConnections?: number
  /** KLP streams per libp2p connection and direction (libp2p's per-protocol stream limits). Default 1024. */
  maxStreamsPerConnection?: number
  /**
   * Run KLP on limited connections too (a circuit relay v2 connection with the relay's duration and
   * data limits): inbound KLP streams are accepted there and a dial may use one; every send then
   * checks the relay's data cap and refuses a frame that would pass it (`RelayDataLimitError`).
   * Default false: a dial that only finds a limited connection fails with `LimitedConnectionError`
   * (DCUtR usually upgrades it to a direct one; dial again then).
   */
  allowLimitedConnections?: boolean
  /**
   * The largest Yamux stream receive window, in bytes: what a paused KLP stream may have to buffer
   * when the consumer lags. For the host the transport creates this is its Yamux
   * `maxStreamWindowSize` (default 4 MiB); with `libp2p`, set it to that host's Yamux setting
   * (default 16 MiB, Yamux's own default). At least 262144 (Yamux's initial window).
   */
  streamWindowBytes?: number
}

/**
 * What the transport gets from its node (js-libp2p module shape): the identity that becomes the
 * host's key, a logger and the clock of every timer.
 */
export interface Libp2pComponents {
  /**
   * The local identity. Its Ed25519 key becomes the host's libp2p key (so its PeerId is the DID).
   * Required unless `init.libp2p` is given; with `init.libp2p` it must match the host's PeerId.
   */
  identity?: Identity
  /** Where refused inbound streams, aborted connections and throwing handlers are reported. Default none. */
  logger?: Logger
  /** Time and every timer of the transport's connections (stall deadline, close, dial timeout). Default `systemClock`. */
  clock?: Clock
}

/** The defaults of {@link Libp2pTransportInit} (sizes in bytes, times in ms). */
export const DEFAULTS = {
  /** Largest application frame. */
  maxFrameSize: 1024 * 1024,
  /** Inbound bytes queued per connection before its stream is paused. */
  maxInboundBufferBytes: 1024 * 1024,
  /** The actual default is max(this, maxFrameSize). */
  maxOutboundBufferBytes: 4 * 1024 * 1024,
  /** Longest time without outbound progress while bytes are held. */
  sendStallTimeoutMs: 10_000,
  /** Longest graceful close. */
  closeTimeoutMs: 5_000,
  /** Longest dial. */
  dialTimeoutMs: 10_000,
  /** KLP connections open at once. */
  maxConnections: 1024,
  /** KLP streams per libp2p connection and direction. */
  maxStreamsPerConnection: 1024,
  /** Yamux's maxStreamWindowSize of the host the transport creates. */
  streamWindowBytes: 4 * 1024 * 1024,
  /** Yamux's default maxStreamWindowSize, assumed for a host passed in. */
  externalStreamWindowBytes: 16 * 1024 * 1024,
} as const

/** The options resolved: every default filled in, every bound checked. */
export interface ResolvedOptions {
  limits: ConnectionLimits
  dialTimeoutMs: number
  maxConnections: number
  maxStreams: number
  streamWindowBytes: number
}

function positive(name: string, v: number | undefined, def: number): number {
  if (v === undefined) return def
  if (typeof v !== 'number' || Number.isNaN(v) || v <= 0) throw new InvalidParametersError(`expected ${name} to be a positive number, got ${String(v)}`)
  return v
}

/**
 * Fills in the defaults of the bounds and checks them (`owned`: the transport creates its own host,
 * which decides the default stream window). Throws InvalidParametersError for the first bad one.
 */
export function resolveOptions(init: Libp2pTransportInit, owned: boolean): ResolvedOptions {
  const maxFrameSize = positive('maxFrameSize', init.maxFrameSize, DEFAULTS.maxFrameSize)
  if (maxFrameSize > 0xffffffff - 1024) throw new InvalidParametersError(`expected maxFrameSize below 4 GiB, got ${maxFrameSize}`)
  const maxOut = positive('maxOutboundBufferBytes', init.maxOutboundBufferBytes, Math.max(DEFAULTS.maxOutboundBufferBytes, maxFrameSize))
  if (maxOut < maxFrameSize) throw new InvalidParametersError(`expected maxOutboundBufferBytes of at least maxFrameSize (${maxFrameSize}), got ${maxOut}`)
  const streamWindowBytes = positive('streamWindowBytes', init.streamWindowBytes, owned ? DEFAULTS.streamWindowBytes : DEFAULTS.externalStreamWindowBytes)
  if (streamWindowBytes < 256 * 1024) throw new InvalidParametersError(`expected streamWindowBytes of at least 262144 (Yamux's initial window), got ${streamWindowBytes}`)
  const limits: ConnectionLimits = {
    maxFrameSize,
    maxInboundBufferBytes: positive('maxInboundBufferBytes', init.maxInboundBufferBytes, DEFAULTS.maxInboundBufferBytes),
    maxOutboundBufferBytes: maxOut,
    sendStallTimeoutMs: positive('sendStallTimeoutMs', init.sendStallTimeoutMs, DEFAULTS.sendStallTimeoutMs),
    closeTimeoutMs: positive('closeTimeoutMs', init.closeTimeoutMs, DEFAULTS.closeTimeoutMs),
    // a paused stream holds at most the window the muxer granted, plus one frame in flight
    streamReadBufferBytes: streamWindowBytes + maxFrameSize + 64 * 1024,
  }
  return {
    limits,
    streamWindowBytes,
    dialTimeoutMs: positive('dialTimeoutMs', init.dialTimeoutMs, DEFAULTS.dialTimeoutMs),
    maxConnections: positive('maxConnections', init.maxConnections, DEFAULTS.maxConnections),
    maxStreams: positive('maxStreamsPerConnection', init.maxStreamsPerConnection, DEFAULTS.maxStreamsPerConnection),
  }
}
