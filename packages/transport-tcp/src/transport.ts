/**
 * The TCP transport: checks its options, dials (connect, handshake, peer check), listens (each
 * listener's sockets go to the inbound handshake slots, slots.ts), tracks every connection against
 * the connection limits and runs the channel handshake of each socket under its timeout.
 */
import { connect, type NetConnectOpts, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import {
  AbortError,
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
import { formatTcpAddress, ipKey, parseTcpAddress } from './address.js'
import { TcpConnection } from './connection.js'
import { HandshakeError, HandshakeTimeoutError, performHandshake, type Identity } from '@kos-mesh/did-security'
import { DialTimeoutError, TooManyConnectionsError } from './errors.js'
import { TcpListener } from './listener.js'
import { DEFAULTS, positive, type TcpComponents, type TcpInit } from './options.js'
import type { ConnectionLimits } from './record.js'
import type { HandshakeFn, SecureSession } from './security.js'
import { HandshakeSlots, bump, type SlotsHost } from './slots.js'

export class TcpTransport<Id = Identity> implements Transport, SlotsHost {
  readonly name = 'tcp'
  private readonly identity: Id
  // members marked @internal are not private because the handshake slots (slots.ts) use them
  /** @internal */
  readonly log: Logger | undefined
  /** @internal */
  readonly clock: Clock
  private readonly handshake: HandshakeFn<Id>
  private readonly limits: ConnectionLimits
  private readonly maxHandshakeFrameSize: number
  /** @internal */
  readonly handshakeTimeoutMs: number
  private readonly dialTimeoutMs: number
  /** @internal */
  readonly firstMessageTimeoutMs: number
  /** @internal */
  readonly maxInboundHandshakes: number
  /** @internal */
  readonly maxInboundHandshakesPerIp: number
  /** @internal */
  readonly maxConnections: number
  /** @internal */
  readonly maxConnectionsPerIp: number
  /** @internal */
  readonly handshakeStallMs: number
  private readonly backlog: number
  /** @internal */
  readonly sendBufferBytes: number
  private readonly idPrefix = randomBytes(4).toString('hex')
  private nextId = 0
  /**
   * Connections handshaking or open (both directions); counted against maxConnections.
   * @internal
   */
  readonly connections = new Set<TcpConnection>()
  /**
   * The ipKey each tracked connection is counted under, with its direction.
   * @internal
   */
  readonly peers = new Map<TcpConnection, { key: string; direction: 'inbound' | 'outbound' }>()
  /** @internal */
  readonly inboundPerIp = new Map<string, number>()
  private readonly outboundPerIp = new Map<string, number>()
  /** @internal */
  readonly listeners = new Set<TcpListener>()
  /** @internal */
  closing = false
  /** Admission of inbound sockets to their handshake (slots.ts). */
  private readonly slots = new HandshakeSlots(this)

  constructor(init: TcpInit<Id>, components: TcpComponents<Id>) {
    if (components?.identity === undefined) throw new InvalidParametersError('expected components.identity, got undefined')
    this.identity = components.identity
    this.log = components.logger
    this.clock = components.clock ?? systemClock
    if (typeof this.clock?.now !== 'function' || typeof this.clock.setTimeout !== 'function' || typeof this.clock.clearTimeout !== 'function') {
      throw new InvalidParametersError('expected components.clock to be a Clock (now, setTimeout, clearTimeout), got something else')
    }
    const hs = init.handshake ?? (performHandshake as unknown as HandshakeFn<Id>)
    if (typeof hs !== 'function') throw new InvalidParametersError(`expected init.handshake to be a function, got ${typeof hs}`)
    this.handshake = hs
    this.limits = {
      maxFrameSize: positive('maxFrameSize', init.maxFrameSize, DEFAULTS.maxFrameSize),
      maxInboundBufferBytes: positive('maxInboundBufferBytes', init.maxInboundBufferBytes, DEFAULTS.maxInboundBufferBytes),
      keepAliveIntervalMs: positive('keepAliveIntervalMs', init.keepAliveIntervalMs, DEFAULTS.keepAliveIntervalMs, true),
      maxMissedPongs: positive('maxMissedPongs', init.maxMissedPongs, DEFAULTS.maxMissedPongs),
      closeTimeoutMs: positive('closeTimeoutMs', init.closeTimeoutMs, DEFAULTS.closeTimeoutMs),
      maxOutboundBufferBytes: 0,
      sendStallTimeoutMs: positive('sendStallTimeoutMs', init.sendStallTimeoutMs, DEFAULTS.sendStallTimeoutMs),
    }
    if (this.limits.maxFrameSize > 0xffffffff - 1024) {
      throw new InvalidParametersError(`expected maxFrameSize below 4 GiB, got ${this.limits.maxFrameSize}`)
    }
    const maxOut = positive('maxOutboundBufferBytes', init.maxOutboundBufferBytes, Math.max(DEFAULTS.maxOutboundBufferBytes, this.limits.maxFrameSize))
    if (maxOut < this.limits.maxFrameSize) {
      throw new InvalidParametersError(`expected maxOutboundBufferBytes of at least maxFrameSize (${this.limits.maxFrameSize}), got ${maxOut}`)
    }
    this.limits.maxOutboundBufferBytes = maxOut
    this.maxHandshakeFrameSize = positive('maxHandshakeFrameSize', init.maxHandshakeFrameSize, DEFAULTS.maxHandshakeFrameSize)
    this.handshakeTimeoutMs = positive('handshakeTimeoutMs', init.handshakeTimeoutMs, DEFAULTS.handshakeTimeoutMs)
    this.dialTimeoutMs = positive('dialTimeoutMs', init.dialTimeoutMs, DEFAULTS.dialTimeoutMs)
    this.firstMessageTimeoutMs = positive('firstMessageTimeoutMs', init.firstMessageTimeoutMs, DEFAULTS.firstMessageTimeoutMs)
    this.maxInboundHandshakes = positive('maxInboundHandshakes', init.maxInboundHandshakes, DEFAULTS.maxInboundHandshakes)
    this.maxInboundHandshakesPerIp = positive('maxInboundHandshakesPerIp', init.maxInboundHandshakesPerIp, DEFAULTS.maxInboundHandshakesPerIp)
    this.maxConnections = positive('maxConnections', init.maxConnections, DEFAULTS.maxConnections)
    this.maxConnectionsPerIp = positive('maxConnectionsPerIp', init.maxConnectionsPerIp, DEFAULTS.maxConnectionsPerIp)
    this.handshakeStallMs = positive('handshakeStallMs', init.handshakeStallMs, DEFAULTS.handshakeStallMs)
    this.backlog = positive('backlog', init.backlog, DEFAULTS.backlog)
    this.sendBufferBytes = positive('sendBufferBytes', init.sendBufferBytes, DEFAULTS.sendBufferBytes)
  }

  canDial(addr: TransportAddress): boolean {
    try {
      const a = parseTcpAddress(addr)
      return a.port !== 0
    } catch {
      return false
    }
  }

  /** Number of connections handshaking or open. */
  get connectionCount(): number {
    return this.connections.size
  }

  async dial(addr: TransportAddress, options: DialOptions = {}): Promise<Connection> {
    if (this.closing) throw new NotStartedError('expected an open transport, got a closed one')
    const a = parseTcpAddress(addr)
    if (a.port === 0) throw new InvalidParametersError(`expected a non-zero port to dial, got ${addr}`)
    if (options.remotePeer !== undefined && a.peer !== undefined && options.remotePeer !== a.peer) {
      throw new InvalidParametersError(`expected options.remotePeer to match the address DID ${a.peer}, got ${options.remotePeer}`)
    }
    const expected = options.remotePeer ?? a.peer
    const signal = options.signal
    if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason })
    const key = ipKey(a.host)
    const toHost = this.outboundPerIp.get(key) ?? 0
    if (toHost >= this.maxConnectionsPerIp) {
      throw new TooManyConnectionsError(`expected fewer than ${this.maxConnectionsPerIp} outbound connections to ${key}, got ${toHost}`)
    }
    // a stalled inbound handshake gives way to our own dial
    if (this.connections.size >= this.maxConnections) {
      const victim = this.slots.pickVictim(this.listeners, undefined, this.clock.now())
      if (victim === undefined) throw new TooManyConnectionsError(`expected fewer than ${this.maxConnections} connections, got ${this.connections.size}`)
      this.slots.evict(victim)
    }
    const socket = await this.connectSocket(a.host, a.port, signal)
    const conn = this.track(socket, 'outbound', formatTcpAddress(a.host, a.port), key)
    const session = await this.runHandshake(conn, 'initiator', expected, signal)
    if (expected !== undefined && session.remoteDid !== expected) {
      const err = new PeerMismatchError(`expected remote peer ${expected}, got ${session.remoteDid}`)
      conn.abort(err)
      throw err
    }
    conn.establish(session)
    return conn
  }

  private connectSocket(host: string, port: number, signal: AbortSignal | undefined): Promise<Socket> {
    return new Promise<Socket>((resolve, reject) => {
      // writableHighWaterMark is honoured by net.Socket (a Duplex option) but missing from NetConnectOpts
      const opts: NetConnectOpts & { writableHighWaterMark: number } = { host, port, noDelay: true, writableHighWaterMark: this.sendBufferBytes }
      const socket = connect(opts)
      const cleanup = (): void => {
        this.clock.clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        socket.off('connect', onConnect)
        socket.off('error', onError)
      }
      const onConnect = (): void => { cleanup(); resolve(socket) }
      const onError = (err: Error): void => {
        cleanup()
        socket.destroy()
        reject(new UnreachableError(`expected to connect to ${host}:${port}, got ${(err as NodeJS.ErrnoException).code ?? err.message}`, { cause: err }))
      }
      const onAbort = (): void => { cleanup(); socket.destroy(); reject(new AbortError(undefined, { cause: signal?.reason })) }
      const timer = this.clock.setTimeout(() => {
        cleanup()
        socket.destroy()
        reject(new DialTimeoutError(`expected to connect to ${host}:${port} within ${this.dialTimeoutMs} ms`))
      }, this.dialTimeoutMs)
      socket.once('connect', onConnect)
      socket.once('error', onError)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** @internal */
  track(socket: Socket, direction: 'inbound' | 'outbound', remoteAddr: string, key: string, onFirstHandshakeMessage?: () => void): TcpConnection {
    const conn = new TcpConnection({
      id: `tcp-${this.idPrefix}-${++this.nextId}`,
      socket,
      direction,
      remoteAddr,
      maxHandshakeFrameSize: this.maxHandshakeFrameSize,
      limits: this.limits,
      clock: this.clock,
      ...(this.log === undefined ? {} : { logger: this.log }),
      ...(onFirstHandshakeMessage === undefined ? {} : { onFirstHandshakeMessage }),
    })
    this.connections.add(conn)
    this.peers.set(conn, { key, direction })
    bump(direction === 'inbound' ? this.inboundPerIp : this.outboundPerIp, key, 1)
    void conn.closed.then(() => {
      this.untrack(conn)
      // a connection slot (total or per address) may have freed for a waiting socket
      for (const l of this.listeners) if (l.waiting.length > 0) this.slots.serveWaiting(l)
    })
    return conn
  }

  /**
   * Stops counting `conn` (idempotent; runs synchronously on eviction, again when it has closed).
   * @internal
   */
  untrack(conn: TcpConnection): void {
    this.connections.delete(conn)
    const p = this.peers.get(conn)
    if (p === undefined) return
    this.peers.delete(conn)
    bump(p.direction === 'inbound' ? this.inboundPerIp : this.outboundPerIp, p.key, -1)
  }

  /** Runs the handshake under the handshake timeout and the caller's signal; aborts `conn` on failure. */
  async runHandshake(conn: TcpConnection, role: 'initiator' | 'responder', expected: string | undefined, signal?: AbortSignal): Promise<SecureSession> {
    const timeout = new AbortController()
    const timer = this.clock.setTimeout(() => {
      timeout.abort(new HandshakeTimeoutError(`expected the handshake to finish within ${this.handshakeTimeoutMs} ms`))
    }, this.handshakeTimeoutMs)
    const combined = signal === undefined ? timeout.signal : AbortSignal.any([timeout.signal, signal])
    let onAbort: (() => void) | undefined
    const aborted = new Promise<never>((_resolve, reject) => {
      onAbort = (): void => {
        const reason: unknown = combined.reason
        const err = reason instanceof HandshakeTimeoutError ? reason : new AbortError(undefined, { cause: reason })
        conn.abort(err)
        reject(err)
      }
      if (combined.aborted) onAbort()
      else combined.addEventListener('abort', onAbort, { once: true })
    })
    aborted.catch(() => {})
    try {
      const session = await Promise.race([
        this.handshake(conn.handshakeIo(), {
          identity: this.identity,
          role,
          ...(expected === undefined ? {} : { expectedRemoteDid: expected }),
          timeoutMs: this.handshakeTimeoutMs,
          clock: this.clock,
          maxRecordSize: this.limits.maxFrameSize + 1,
          signal: combined,
        }),
        aborted,
      ])
      if (session === null || typeof session !== 'object' || typeof session.remoteDid !== 'string' ||
        typeof session.encrypt !== 'function' || typeof session.decrypt !== 'function') {
        throw new HandshakeError('expected the handshake to return a SecureSession, got something else')
      }
      return session
    } catch (err) {
      const mapped = mapHandshakeError(err, combined)
      conn.abort(mapped)
      throw mapped
    } finally {
      this.clock.clearTimeout(timer)
      if (onAbort !== undefined) combined.removeEventListener('abort', onAbort)
    }
  }

  async listen(addr: TransportAddress, onConnection: ConnectionHandler, options: AbortOptions = {}): Promise<Listener> {
    if (this.closing) throw new NotStartedError('expected an open transport, got a closed one')
    if (typeof onConnection !== 'function') throw new InvalidParametersError(`expected onConnection to be a function, got ${typeof onConnection}`)
    const a = parseTcpAddress(addr)
    if (options.signal?.aborted === true) throw new AbortError(undefined, { cause: options.signal.reason })
    const listener = new TcpListener((socket, l) => { this.slots.accept(socket, l, onConnection) }, this.clock)
    await listener.listen(a.host, a.port, this.backlog, this.sendBufferBytes, options.signal)
    this.listeners.add(listener)
    void listener.closedPromise.then(() => { this.listeners.delete(listener) })
    return listener
  }

  async close(): Promise<void> {
    this.closing = true
    await Promise.all([...this.listeners].map(async (l) => { await l.close() }))
    await Promise.all([...this.connections].map(async (c) => { await c.close().catch(() => {}) }))
  }
}

function mapHandshakeError(err: unknown, signal: AbortSignal): Error {
  if (signal.aborted) {
    const reason: unknown = signal.reason
    if (reason instanceof HandshakeTimeoutError) return reason
    if (err instanceof AbortError) return err
    return new AbortError(undefined, { cause: reason })
  }
  const e = err as { name?: unknown }
  if (e?.name === 'PeerMismatchError') {
    return err instanceof PeerMismatchError ? err : new PeerMismatchError((err as Error).message, { cause: err })
  }
  if (isKosMeshError(err)) return err
  return new HandshakeError(`handshake failed: ${(err as Error)?.message ?? String(err)}`, { cause: err })
}
