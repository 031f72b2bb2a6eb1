import { randomBytes } from 'node:crypto'
import {
  AbortError,
  ConnectionClosedError,
  InvalidParametersError,
  NotStartedError,
  PeerMismatchError,
  UnreachableError,
  isKosMeshError,
  systemClock,
  type AbortOptions,
  type Clock,
  type Connection,
  type ConnectionHandler,
  type DialOptions,
  type Listener,
  type Logger,
  type Transport,
  type TransportAddress,
} from '@kos-mesh/interface'
import type { Identity } from '@kos-mesh/did-security'
import { identify } from '@libp2p/identify'
import type { Connection as P2PConnection, Libp2p, Listener as P2PListener, PeerId, Stream } from '@libp2p/interface'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import type { Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2pOptions } from 'libp2p'
import { formatLibp2pAddress, isDialable, parseLibp2pAddress, withPeerId } from './address.js'
import { Libp2pConnection, type ConnectionLimits } from './connection.js'
import { DialTimeoutError, ListenError, PeerIdConversionError, TooManyConnectionsError } from './errors.js'
import { didFromPeerId, peerIdFromDid, privateKeyFromIdentity } from './peer-id.js'
import { networkInfoOf, type ReachabilityReport } from './reachability/network-info.js'
import { KLP_PROTOCOL } from './protocol.js'

/** The libp2p protocol id KLP streams are opened with. */
export { KLP_PROTOCOL } from './protocol.js'

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
   */
  libp2pOptions?: Omit<Libp2pOptions, 'privateKey'>
  /** Largest application frame accepted by `send()` and from the wire, in bytes. Default 1 MiB. */
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
   * The largest Yamux stream receive window, in bytes: what a paused KLP stream may have to buffer
   * when the consumer lags. For the host the transport creates this is its Yamux
   * `maxStreamWindowSize` (default 4 MiB); with `libp2p`, set it to that host's Yamux setting
   * (default 16 MiB, Yamux's own default).
   */
  streamWindowBytes?: number
}

export interface Libp2pComponents {
  /**
   * The local identity. Its Ed25519 key becomes the host's libp2p key (so its PeerId is the DID).
   * Required unless `init.libp2p` is given; with `init.libp2p` it must match the host's PeerId.
   */
  identity?: Identity
  logger?: Logger
  /** Time and every timer of the transport's connections (stall deadline, close, dial timeout). Default `systemClock`. */
  clock?: Clock
}

export const DEFAULTS = {
  maxFrameSize: 1024 * 1024,
  maxInboundBufferBytes: 1024 * 1024,
  /** The actual default is max(this, maxFrameSize). */
  maxOutboundBufferBytes: 4 * 1024 * 1024,
  sendStallTimeoutMs: 10_000,
  closeTimeoutMs: 5_000,
  dialTimeoutMs: 10_000,
  maxConnections: 1024,
  maxStreamsPerConnection: 1024,
  streamWindowBytes: 4 * 1024 * 1024,
  /** Yamux's default maxStreamWindowSize, assumed for a host passed in. */
  externalStreamWindowBytes: 16 * 1024 * 1024,
} as const

function positive(name: string, v: number | undefined, def: number): number {
  if (v === undefined) return def
  if (typeof v !== 'number' || Number.isNaN(v) || v <= 0) throw new InvalidParametersError(`expected ${name} to be a positive number, got ${String(v)}`)
  return v
}

/** The part of libp2p's internal TransportManager the transport uses to bind addresses on a running host. */
interface TransportManagerView {
  listen(addrs: Multiaddr[]): Promise<void>
  getListeners(): P2PListener[]
}

function transportManagerOf(host: Libp2p): TransportManagerView | undefined {
  // js-libp2p's Libp2p class exposes its components (not part of the Libp2p interface)
  const tm = (host as unknown as { components?: { transportManager?: Partial<TransportManagerView> } }).components?.transportManager
  return typeof tm?.listen === 'function' && typeof tm.getListeners === 'function' ? (tm as TransportManagerView) : undefined
}

export class Libp2pTransport implements Transport {
  readonly name = 'libp2p'
  /** The protocol id of KLP streams. */
  readonly protocol = KLP_PROTOCOL
  private readonly init: Libp2pTransportInit
  private readonly identity: Identity | undefined
  private readonly log: Logger | undefined
  private readonly clock: Clock
  private readonly limits: ConnectionLimits
  private readonly dialTimeoutMs: number
  private readonly maxConnections: number
  private readonly maxStreams: number
  private readonly streamWindowBytes: number
  private readonly owned: boolean
  private host: Libp2p | undefined
  private hostPromise: Promise<Libp2p> | undefined
  private handlerRegistered = false
  private readonly listeners: Libp2pListener[] = []
  private readonly connections = new Set<Libp2pConnection>()
  private readonly idPrefix = randomBytes(4).toString('hex')
  private nextId = 0
  private closing = false

  constructor(init: Libp2pTransportInit, components: Libp2pComponents) {
    this.init = init
    this.identity = components?.identity
    this.log = components?.logger
    this.clock = components?.clock ?? systemClock
    this.owned = init.libp2p === undefined
    if (this.owned && this.identity === undefined) throw new InvalidParametersError('expected components.identity (or init.libp2p), got neither')
    if (init.libp2p !== undefined) {
      const hostDid = didFromPeerId(init.libp2p.peerId)
      if (this.identity !== undefined && this.identity.did !== hostDid) {
        throw new InvalidParametersError(`expected the libp2p host's PeerId to be the identity's key (${this.identity.did}), got ${hostDid}`)
      }
      this.host = init.libp2p
    }
    const maxFrameSize = positive('maxFrameSize', init.maxFrameSize, DEFAULTS.maxFrameSize)
    if (maxFrameSize > 0xffffffff - 1024) throw new InvalidParametersError(`expected maxFrameSize below 4 GiB, got ${maxFrameSize}`)
    const maxOut = positive('maxOutboundBufferBytes', init.maxOutboundBufferBytes, Math.max(DEFAULTS.maxOutboundBufferBytes, maxFrameSize))
    if (maxOut < maxFrameSize) throw new InvalidParametersError(`expected maxOutboundBufferBytes of at least maxFrameSize (${maxFrameSize}), got ${maxOut}`)
    this.streamWindowBytes = positive('streamWindowBytes', init.streamWindowBytes, this.owned ? DEFAULTS.streamWindowBytes : DEFAULTS.externalStreamWindowBytes)
    if (this.streamWindowBytes < 256 * 1024) throw new InvalidParametersError(`expected streamWindowBytes of at least 262144 (Yamux's initial window), got ${this.streamWindowBytes}`)
    this.limits = {
      maxFrameSize,
      maxInboundBufferBytes: positive('maxInboundBufferBytes', init.maxInboundBufferBytes, DEFAULTS.maxInboundBufferBytes),
      maxOutboundBufferBytes: maxOut,
      sendStallTimeoutMs: positive('sendStallTimeoutMs', init.sendStallTimeoutMs, DEFAULTS.sendStallTimeoutMs),
      closeTimeoutMs: positive('closeTimeoutMs', init.closeTimeoutMs, DEFAULTS.closeTimeoutMs),
      // a paused stream holds at most the window the muxer granted, plus one frame in flight
      streamReadBufferBytes: this.streamWindowBytes + maxFrameSize + 64 * 1024,
    }
    this.dialTimeoutMs = positive('dialTimeoutMs', init.dialTimeoutMs, DEFAULTS.dialTimeoutMs)
    this.maxConnections = positive('maxConnections', init.maxConnections, DEFAULTS.maxConnections)
    this.maxStreams = positive('maxStreamsPerConnection', init.maxStreamsPerConnection, DEFAULTS.maxStreamsPerConnection)
  }

  /** The libp2p host: the one passed in, or the one created at the first listen/dial (undefined before). */
  get libp2p(): Libp2p | undefined {
    return this.host
  }

  /** The local DID (the host's PeerId as did:key). */
  get did(): string {
    return this.identity?.did ?? didFromPeerId((this.host as Libp2p).peerId)
  }

  /** The local PeerId (the identity's key). */
  get peerId(): PeerId {
    return this.host?.peerId ?? peerIdFromDid(this.did)
  }

  /** KLP connections open (both directions). */
  get connectionCount(): number {
    return this.connections.size
  }

  /** The spec's NetworkInfo of the host now, once it runs (undefined before the first listen/dial). */
  networkInfo(): ReachabilityReport | undefined {
    return this.host === undefined ? undefined : networkInfoOf(this.host)
  }

  canDial(addr: TransportAddress): boolean {
    try {
      const a = parseLibp2pAddress(addr)
      return a.multiaddr !== undefined && isDialable(a.multiaddr)
    } catch {
      return false
    }
  }

  // ------------------------------------------------------------------ host

  /** The host, created and started (owned) on first use; listenAddrs only matter at creation. */
  private async ensureHost(listenAddrs: Multiaddr[] = []): Promise<{ host: Libp2p; created: boolean }> {
    if (this.host !== undefined) {
      if (this.host.status !== 'started') throw new NotStartedError(`expected a started libp2p host, got status ${this.host.status}`)
      return { host: this.host, created: false }
    }
    if (this.hostPromise !== undefined) return { host: await this.hostPromise, created: false }
    const identity = this.identity as Identity
    const p = createLibp2p({
      addresses: { listen: listenAddrs.map((m) => m.toString()) },
      transports: [tcp(), webSockets()],
      connectionEncrypters: [noise()],
      // maxEarlyStreams: a dialer may open many KLP streams at once on a fresh connection, before this
      // side's upgrade has attached its stream listener (Yamux's default of 10 resets the connection)
      streamMuxers: [yamux({ maxEarlyStreams: this.maxStreams, streamOptions: { maxStreamWindowSize: this.streamWindowBytes } })],
      services: { identify: identify(), ping: ping() },
      ...this.init.libp2pOptions,
      privateKey: privateKeyFromIdentity(identity),
    })
    this.hostPromise = p
    try {
      const host = await p
      this.host = host
      return { host, created: true }
    } catch (err) {
      this.hostPromise = undefined
      throw err
    }
  }

  private async ensureHandler(host: Libp2p): Promise<void> {
    if (this.handlerRegistered) return
    try {
      await host.handle(KLP_PROTOCOL, (stream, connection) => { this.onInboundStream(stream, connection) }, {
        maxInboundStreams: this.maxStreams,
        maxOutboundStreams: this.maxStreams,
      })
    } catch (err) {
      throw new ListenError(`expected to register the ${KLP_PROTOCOL} handler on the libp2p host, got ${(err as Error)?.name ?? String(err)}: ${(err as Error)?.message ?? ''}`, { cause: err })
    }
    this.handlerRegistered = true
  }

  private async removeHandler(): Promise<void> {
    if (!this.handlerRegistered) return
    this.handlerRegistered = false
    try { await this.host?.unhandle(KLP_PROTOCOL) } catch { /* host stopping */ }
  }

  // ------------------------------------------------------------------ listen

  async listen(addr: TransportAddress, onConnection: ConnectionHandler, options: AbortOptions = {}): Promise<Listener> {
    if (this.closing) throw new NotStartedError('expected an open transport, got a closed one')
    if (typeof onConnection !== 'function') throw new InvalidParametersError(`expected onConnection to be a function, got ${typeof onConnection}`)
    const a = parseLibp2pAddress(addr)
    if (options.signal?.aborted === true) throw new AbortError(undefined, { cause: options.signal.reason })
    const ma = a.multiaddr
    let host: Libp2p
    let mine: P2PListener[] | undefined
    try {
      if (this.owned && this.host === undefined && this.hostPromise === undefined && ma !== undefined) {
        // the first use: the host starts listening on exactly this address
        host = (await this.ensureHost([ma])).host
        mine = transportManagerOf(host)?.getListeners() ?? []
      } else {
        host = (await this.ensureHost()).host
        if (ma !== undefined) {
          const tm = transportManagerOf(host)
          if (tm === undefined) throw new ListenError(`expected a js-libp2p host that can add listen addresses, got one without components.transportManager; listen on 'libp2p://' to use the host's own addresses`)
          const before = new Set(tm.getListeners())
          await tm.listen([ma])
          mine = tm.getListeners().filter((l) => !before.has(l))
        }
      }
    } catch (err) {
      if (isKosMeshError(err)) throw err
      throw new ListenError(`expected to listen on ${addr}, got ${(err as Error)?.name ?? String(err)}: ${(err as Error)?.message ?? ''}`, { cause: err })
    }
    if (this.closing) {
      await Promise.all((mine ?? []).map(async (l) => { await l.close().catch(() => {}) }))
      throw new NotStartedError('expected an open transport, got a closed one')
    }
    await this.ensureHandler(host)
    const listener = new Libp2pListener(this, host, mine, onConnection)
    this.listeners.push(listener)
    return listener
  }

  /** @internal */
  async removeListener(listener: Libp2pListener): Promise<void> {
    const i = this.listeners.indexOf(listener)
    if (i >= 0) this.listeners.splice(i, 1)
    if (this.listeners.length === 0) await this.removeHandler()
  }

  private onInboundStream(stream: Stream, connection: P2PConnection): void {
    const listener = this.listeners[0]
    if (this.closing || listener === undefined) {
      stream.abort(new ConnectionClosedError('not listening'))
      return
    }
    let remotePeer: string
    try {
      remotePeer = didFromPeerId(connection.remotePeer)
    } catch (err) {
      this.log?.debug('libp2p inbound stream from a PeerId without a did:key refused', { peer: connection.remotePeer.toString() })
      stream.abort(err as Error)
      return
    }
    if (this.connections.size >= this.maxConnections) {
      listener.refused++
      stream.abort(new TooManyConnectionsError(`expected fewer than ${this.maxConnections} connections, got ${this.connections.size}`))
      return
    }
    const conn = this.track(stream, connection, 'inbound', remotePeer)
    listener.accepted++
    try {
      listener.onConnection(conn)
    } catch (err) {
      this.log?.warn('libp2p onConnection handler threw', { error: (err as Error)?.message })
    }
  }

  private track(stream: Stream, connection: P2PConnection, direction: 'inbound' | 'outbound', remotePeer: string): Libp2pConnection {
    const conn = new Libp2pConnection({
      id: `${this.idPrefix}-${this.nextId++}`,
      stream,
      direction,
      remotePeer,
      remoteAddr: formatLibp2pAddress(withPeerId(connection.remoteAddr, connection.remotePeer.toString())),
      limits: this.limits,
      clock: this.clock,
      ...(this.log === undefined ? {} : { logger: this.log }),
    })
    this.connections.add(conn)
    void conn.closed.then(() => { this.connections.delete(conn) })
    return conn
  }

  // ------------------------------------------------------------------ dial

  async dial(addr: TransportAddress, options: DialOptions = {}): Promise<Connection> {
    if (this.closing) throw new NotStartedError('expected an open transport, got a closed one')
    const a = parseLibp2pAddress(addr)
    if (a.multiaddr === undefined || !isDialable(a.multiaddr)) throw new InvalidParametersError(`expected a dialable libp2p address (tcp port 1..65535 or dns), got ${addr}`)
    if (options.remotePeer !== undefined && a.peer !== undefined && options.remotePeer !== a.peer) {
      throw new InvalidParametersError(`expected options.remotePeer to match the address DID ${a.peer}, got ${options.remotePeer}`)
    }
    const expected = options.remotePeer ?? a.peer
    const signal = options.signal
    if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason })
    let ma = a.multiaddr
    if (expected !== undefined) {
      let expectedId: PeerId
      try {
        expectedId = peerIdFromDid(expected)
      } catch (err) {
        // no libp2p peer can prove a DID that is not an Ed25519 did:key
        throw new PeerMismatchError(`expected remote peer ${expected}, which no libp2p peer can prove (not an Ed25519 did:key)`, { cause: err })
      }
      if (a.peerId !== undefined && a.peerId !== expectedId.toString()) {
        throw new PeerMismatchError(`expected remote peer ${expected} (${expectedId.toString()}), got an address of ${a.peerId}`)
      }
      // libp2p's Noise handshake then refuses any other peer
      ma = withPeerId(ma, expectedId.toString())
    }
    if (this.connections.size >= this.maxConnections) {
      throw new TooManyConnectionsError(`expected fewer than ${this.maxConnections} connections, got ${this.connections.size}`)
    }
    const ctl = new AbortController()
    const timeout = new DialTimeoutError(`expected the dial of ${addr} to complete within ${this.dialTimeoutMs} ms`)
    const timer = this.clock.setTimeout(() => { ctl.abort(timeout) }, this.dialTimeoutMs, { unref: true })
    const onAbort = (): void => { ctl.abort(new AbortError(undefined, { cause: signal?.reason })) }
    signal?.addEventListener('abort', onAbort, { once: true })
    let stream: Stream | undefined
    try {
      const { host } = await this.ensureHost()
      if (this.closing) throw new NotStartedError('expected an open transport, got a closed one')
      const p2p = await host.dial(ma, { signal: ctl.signal })
      const remotePeer = didFromPeerId(p2p.remotePeer)
      if (expected !== undefined && remotePeer !== expected) {
        throw new PeerMismatchError(`expected remote peer ${expected}, got ${remotePeer}`)
      }
      stream = await p2p.newStream(KLP_PROTOCOL, { signal: ctl.signal, maxOutboundStreams: this.maxStreams })
      ctl.signal.throwIfAborted()
      if (this.closing) throw new NotStartedError('expected an open transport, got a closed one')
      return this.track(stream, p2p, 'outbound', remotePeer)
    } catch (err) {
      const mapped = mapDialError(err, ctl.signal, addr)
      stream?.abort(mapped)
      throw mapped
    } finally {
      this.clock.clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
  }

  // ------------------------------------------------------------------ close

  async close(): Promise<void> {
    if (this.closing) {
      await this.stopped
      return
    }
    this.closing = true
    this.stopped = (async () => {
      await Promise.all([...this.listeners].map(async (l) => { await l.close() }))
      await Promise.all([...this.connections].map(async (c) => { await c.close().catch(() => {}) }))
      await this.removeHandler()
      if (this.owned) {
        const host = this.host ?? (this.hostPromise === undefined ? undefined : await this.hostPromise.catch(() => undefined))
        await host?.stop()
      }
    })()
    await this.stopped
  }

  private stopped: Promise<void> = Promise.resolve()
}

export class Libp2pListener implements Listener {
  accepted = 0
  refused = 0
  private closedFlag = false

  constructor(
    private readonly transport: Libp2pTransport,
    private readonly host: Libp2p,
    /** The libp2p listeners this listener bound (closed with it); undefined: the host's own addresses. */
    private readonly bound: P2PListener[] | undefined,
    readonly onConnection: ConnectionHandler,
  ) {}

  addrs(): TransportAddress[] {
    if (this.closedFlag) return []
    const id = this.host.peerId.toString()
    const mas = this.bound === undefined || this.bound.length === 0
      ? this.host.getMultiaddrs()
      : this.bound.flatMap((l) => l.getAddrs())
    return [...new Set(mas.map((m) => formatLibp2pAddress(withPeerId(m, id))))]
  }

  /**
   * Stops accepting KLP connections: the libp2p listeners this listener bound are closed (libp2p
   * also closes the sockets they accepted), and the KLP handler is removed with the last listener.
   */
  async close(): Promise<void> {
    if (this.closedFlag) return
    this.closedFlag = true
    await this.transport.removeListener(this)
    await Promise.all((this.bound ?? []).map(async (l) => { await l.close().catch(() => {}) }))
  }

  stats(): { accepted: number; refused: number } {
    return { accepted: this.accepted, refused: this.refused }
  }
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

function mapDialError(err: unknown, signal: AbortSignal, addr: string): Error {
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
  if (names.includes('AbortError')) return new AbortError(undefined, { cause: err })
  // refused / no route / no listener / the peer does not speak KLP (any more)
  return new UnreachableError(`expected to reach ${addr} over libp2p, got ${names[0] ?? 'Error'}: ${msg}`, { cause: err })
}
