import { connect, createServer, isIPv4, isIPv6, type NetConnectOpts, type Server, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import {
  AbortError,
  ConnectionClosedError,
  InvalidParametersError,
  NotStartedError,
  PeerMismatchError,
  UnreachableError,
  isKosMeshError,
  type AbortOptions,
  type Connection,
  type ConnectionHandler,
  type DialOptions,
  type Listener,
  type Logger,
  type Transport,
  type TransportAddress,
} from '@kos-mesh/interface'
import { formatTcpAddress, parseTcpAddress } from './address.js'
import { TcpConnection, type ConnectionLimits } from './connection.js'
import { HandshakeError, HandshakeTimeoutError, performHandshake, type Identity } from '@kos-mesh/did-security'
import { DialTimeoutError, ListenError, TooManyConnectionsError } from './errors.js'
import type { HandshakeFn, SecureSession } from './security.js'

export interface TcpInit<Id = Identity> {
  /** Largest application frame accepted by `send()` and from the wire, in bytes. Default 1 MiB. */
  maxFrameSize?: number
  /** Decoded inbound bytes buffered per connection before the socket is paused. Default 4 MiB. */
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
   * Inbound handshakes running at once per listener. When all slots are taken, the oldest pending
   * handshake that has not yet delivered its first message is dropped to make room; when every
   * pending handshake has, the new socket is dropped. Default 64.
   */
  maxInboundHandshakes?: number
  /**
   * Inbound handshakes running at once per listener from one remote IP (IPv6: one /64), with the
   * same eviction rule as `maxInboundHandshakes`. Default 8.
   */
  maxInboundHandshakesPerIp?: number
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
  /** Listen backlog passed to node:net. Default 511. */
  backlog?: number
  /** The channel handshake (default: did-security's `performHandshake`). */
  handshake?: HandshakeFn<Id>
}

export interface TcpComponents<Id = Identity> {
  /** The local identity the handshake proves (a did-security Identity for the default handshake). */
  identity: Id
  logger?: Logger
}

export const DEFAULTS = {
  maxFrameSize: 1024 * 1024,
  maxInboundBufferBytes: 4 * 1024 * 1024,
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
} as const

function positive(name: string, v: number | undefined, def: number, allowZero = false): number {
  if (v === undefined) return def
  if (typeof v !== 'number' || Number.isNaN(v) || v < 0 || (!allowZero && v === 0)) {
    throw new InvalidParametersError(`expected ${name} to be a ${allowZero ? 'non-negative' : 'positive'} number, got ${String(v)}`)
  }
  return v
}

/**
 * The key remote addresses are counted under: the IPv4 address (IPv4-mapped IPv6 unwrapped), the /64
 * of an IPv6 address (one host usually owns a whole /64), or the lower-cased host name of a dial.
 */
export function ipKey(address: string | undefined): string {
  if (address === undefined || address === '') return '?'
  let a = address.toLowerCase()
  const zone = a.indexOf('%')
  if (zone >= 0) a = a.slice(0, zone)
  if (a.startsWith('::ffff:') && isIPv4(a.slice(7))) return a.slice(7)
  if (!isIPv6(a)) return a
  const gap = a.indexOf('::')
  const head = (gap >= 0 ? a.slice(0, gap) : a).split(':').filter((g) => g !== '')
  const tail = gap >= 0 ? a.slice(gap + 2).split(':').filter((g) => g !== '') : []
  const tailGroups = tail.length + (tail.length > 0 && (tail[tail.length - 1] as string).includes('.') ? 1 : 0)
  const groups = [...head, ...(Array(Math.max(0, 8 - head.length - tailGroups)).fill('0') as string[]), ...tail]
  return `${groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`
}

function bump(m: Map<string, number>, key: string, by: number): void {
  const n = (m.get(key) ?? 0) + by
  if (n <= 0) m.delete(key)
  else m.set(key, n)
}

export class TcpTransport<Id = Identity> implements Transport {
  readonly name = 'tcp'
  private readonly identity: Id
  private readonly log: Logger | undefined
  private readonly handshake: HandshakeFn<Id>
  private readonly limits: ConnectionLimits
  private readonly maxHandshakeFrameSize: number
  private readonly handshakeTimeoutMs: number
  private readonly dialTimeoutMs: number
  private readonly firstMessageTimeoutMs: number
  private readonly maxInboundHandshakes: number
  private readonly maxInboundHandshakesPerIp: number
  private readonly maxConnections: number
  private readonly maxConnectionsPerIp: number
  private readonly backlog: number
  /** @internal */
  readonly sendBufferBytes: number
  private readonly idPrefix = randomBytes(4).toString('hex')
  private nextId = 0
  /** Connections handshaking or open (both directions); counted against maxConnections. */
  private readonly connections = new Set<TcpConnection>()
  /** The ipKey each tracked connection is counted under, with its direction. */
  private readonly peers = new Map<TcpConnection, { key: string; direction: 'inbound' | 'outbound' }>()
  private readonly inboundPerIp = new Map<string, number>()
  private readonly outboundPerIp = new Map<string, number>()
  private readonly listeners = new Set<TcpListener>()
  private closing = false

  constructor(init: TcpInit<Id>, components: TcpComponents<Id>) {
    if (components?.identity === undefined) throw new InvalidParametersError('expected components.identity, got undefined')
    this.identity = components.identity
    this.log = components.logger
    const hs = init.handshake ?? (performHandshake as unknown as HandshakeFn<Id>)
    if (typeof hs !== 'function') throw new InvalidParametersError(`expected init.handshake to be a function, got ${typeof hs}`)
    this.handshake = hs
    this.limits = {
      maxFrameSize: positive('maxFrameSize', init.maxFrameSize, DEFAULTS.maxFrameSize),
      maxInboundBufferBytes: positive('maxInboundBufferBytes', init.maxInboundBufferBytes, DEFAULTS.maxInboundBufferBytes),
      keepAliveIntervalMs: positive('keepAliveIntervalMs', init.keepAliveIntervalMs, DEFAULTS.keepAliveIntervalMs, true),
      maxMissedPongs: positive('maxMissedPongs', init.maxMissedPongs, DEFAULTS.maxMissedPongs),
      closeTimeoutMs: positive('closeTimeoutMs', init.closeTimeoutMs, DEFAULTS.closeTimeoutMs),
    }
    if (this.limits.maxFrameSize > 0xffffffff - 1024) {
      throw new InvalidParametersError(`expected maxFrameSize below 4 GiB, got ${this.limits.maxFrameSize}`)
    }
    this.maxHandshakeFrameSize = positive('maxHandshakeFrameSize', init.maxHandshakeFrameSize, DEFAULTS.maxHandshakeFrameSize)
    this.handshakeTimeoutMs = positive('handshakeTimeoutMs', init.handshakeTimeoutMs, DEFAULTS.handshakeTimeoutMs)
    this.dialTimeoutMs = positive('dialTimeoutMs', init.dialTimeoutMs, DEFAULTS.dialTimeoutMs)
    this.firstMessageTimeoutMs = positive('firstMessageTimeoutMs', init.firstMessageTimeoutMs, DEFAULTS.firstMessageTimeoutMs)
    this.maxInboundHandshakes = positive('maxInboundHandshakes', init.maxInboundHandshakes, DEFAULTS.maxInboundHandshakes)
    this.maxInboundHandshakesPerIp = positive('maxInboundHandshakesPerIp', init.maxInboundHandshakesPerIp, DEFAULTS.maxInboundHandshakesPerIp)
    this.maxConnections = positive('maxConnections', init.maxConnections, DEFAULTS.maxConnections)
    this.maxConnectionsPerIp = positive('maxConnectionsPerIp', init.maxConnectionsPerIp, DEFAULTS.maxConnectionsPerIp)
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
    // an inbound socket that has not even sent its first handshake message gives way to our own dial
    if (this.connections.size >= this.maxConnections && !this.evictIdleHandshake(undefined, undefined)) {
      throw new TooManyConnectionsError(`expected fewer than ${this.maxConnections} connections, got ${this.connections.size}`)
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
        clearTimeout(timer)
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
      const timer = setTimeout(() => {
        cleanup()
        socket.destroy()
        reject(new DialTimeoutError(`expected to connect to ${host}:${port} within ${this.dialTimeoutMs} ms`))
      }, this.dialTimeoutMs)
      socket.once('connect', onConnect)
      socket.once('error', onError)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  private track(socket: Socket, direction: 'inbound' | 'outbound', remoteAddr: string, key: string, onFirstHandshakeMessage?: () => void): TcpConnection {
    const conn = new TcpConnection({
      id: `tcp-${this.idPrefix}-${++this.nextId}`,
      socket,
      direction,
      remoteAddr,
      maxHandshakeFrameSize: this.maxHandshakeFrameSize,
      limits: this.limits,
      ...(this.log === undefined ? {} : { logger: this.log }),
      ...(onFirstHandshakeMessage === undefined ? {} : { onFirstHandshakeMessage }),
    })
    this.connections.add(conn)
    this.peers.set(conn, { key, direction })
    bump(direction === 'inbound' ? this.inboundPerIp : this.outboundPerIp, key, 1)
    void conn.closed.then(() => { this.untrack(conn) })
    return conn
  }

  /** Stops counting `conn` (idempotent; runs synchronously on eviction, again when it has closed). */
  private untrack(conn: TcpConnection): void {
    this.connections.delete(conn)
    const p = this.peers.get(conn)
    if (p === undefined) return
    this.peers.delete(conn)
    bump(p.direction === 'inbound' ? this.inboundPerIp : this.outboundPerIp, p.key, -1)
  }

  /**
   * Drops the oldest pending inbound handshake (of `listener`, or of any listener) that has not yet
   * delivered its first message (from `key` only, when given). Returns false when there is none.
   */
  private evictIdleHandshake(listener: TcpListener | undefined, key: string | undefined): boolean {
    for (const l of listener === undefined ? this.listeners : [listener]) {
      for (const c of l.pending) {
        if (c.receivedHandshakeMessage) continue
        if (key !== undefined && this.peers.get(c)?.key !== key) continue
        l.pending.delete(c)
        l.evicted++
        this.untrack(c)
        c.abort(new TooManyConnectionsError('expected a first handshake message before the inbound handshake slots ran out, got none (evicted)'))
        return true
      }
    }
    return false
  }

  /** Makes room for one more inbound socket from `key`, evicting an idle handshake if needed. */
  private admitInbound(listener: TcpListener, key: string): boolean {
    let fromKey = 0
    for (const c of listener.pending) if (this.peers.get(c)?.key === key) fromKey++
    const keyFull = fromKey >= this.maxInboundHandshakesPerIp || (this.inboundPerIp.get(key) ?? 0) >= this.maxConnectionsPerIp
    const globalFull = listener.pending.size >= this.maxInboundHandshakes || this.connections.size >= this.maxConnections
    // evicting a socket from the same address frees a per-address and a global slot at once
    if (keyFull) {
      if (!this.evictIdleHandshake(listener, key)) return false
    } else if (globalFull) {
      if (!this.evictIdleHandshake(listener, undefined)) return false
    }
    return listener.pending.size < this.maxInboundHandshakes && this.connections.size < this.maxConnections &&
      (this.inboundPerIp.get(key) ?? 0) < this.maxConnectionsPerIp
  }

  /** Runs the handshake under the handshake timeout and the caller's signal; aborts `conn` on failure. */
  async runHandshake(conn: TcpConnection, role: 'initiator' | 'responder', expected: string | undefined, signal?: AbortSignal): Promise<SecureSession> {
    const timeout = new AbortController()
    const timer = setTimeout(() => {
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
      clearTimeout(timer)
      if (onAbort !== undefined) combined.removeEventListener('abort', onAbort)
    }
  }

  async listen(addr: TransportAddress, onConnection: ConnectionHandler, options: AbortOptions = {}): Promise<Listener> {
    if (this.closing) throw new NotStartedError('expected an open transport, got a closed one')
    if (typeof onConnection !== 'function') throw new InvalidParametersError(`expected onConnection to be a function, got ${typeof onConnection}`)
    const a = parseTcpAddress(addr)
    if (options.signal?.aborted === true) throw new AbortError(undefined, { cause: options.signal.reason })
    const listener = new TcpListener((socket, l) => { this.accept(socket, l, onConnection) })
    await listener.listen(a.host, a.port, this.backlog, this.sendBufferBytes, options.signal)
    this.listeners.add(listener)
    void listener.closedPromise.then(() => { this.listeners.delete(listener) })
    return listener
  }

  /** Called by a listener for each accepted socket. */
  accept(socket: Socket, listener: TcpListener, onConnection: ConnectionHandler): void {
    const key = ipKey(socket.remoteAddress)
    if (this.closing || !this.admitInbound(listener, key)) {
      this.log?.debug('tcp inbound socket refused by limits', { remote: key, handshaking: listener.handshaking, connections: this.connections.size })
      listener.refused++
      socket.on('error', () => {})
      socket.destroy()
      return
    }
    const remote = formatTcpAddress(socket.remoteAddress ?? '0.0.0.0', socket.remotePort ?? 0)
    let firstTimer: ReturnType<typeof setTimeout> | undefined
    const conn = this.track(socket, 'inbound', remote, key, () => { clearTimeout(firstTimer) })
    firstTimer = setTimeout(() => {
      if (!conn.receivedHandshakeMessage) {
        conn.abort(new HandshakeTimeoutError(`expected the first handshake message within ${this.firstMessageTimeoutMs} ms`))
      }
    }, this.firstMessageTimeoutMs)
    listener.pending.add(conn)
    this.runHandshake(conn, 'responder', undefined, listener.signal)
      .then((session) => {
        conn.establish(session)
        listener.accepted++
        try {
          onConnection(conn)
        } catch (err) {
          this.log?.warn('tcp onConnection handler threw', { error: (err as Error)?.message })
        }
      })
      .catch((err: unknown) => {
        listener.failed++
        this.log?.debug('tcp inbound handshake failed', { remote, error: (err as Error)?.name })
      })
      .finally(() => {
        clearTimeout(firstTimer)
        listener.pending.delete(conn)
      })
  }

  async close(): Promise<void> {
    this.closing = true
    await Promise.all([...this.listeners].map(async (l) => { await l.close() }))
    await Promise.all([...this.connections].map(async (c) => { await c.close().catch(() => {}) }))
  }
}

export class TcpListener implements Listener {
  private server: Server | undefined
  private bound: string[] = []
  private readonly controller = new AbortController()
  readonly signal: AbortSignal = this.controller.signal
  /** Inbound handshakes in progress, oldest first. */
  readonly pending = new Set<TcpConnection>()
  accepted = 0
  failed = 0
  refused = 0
  evicted = 0
  private resolveClosed!: () => void
  readonly closedPromise = new Promise<void>((resolve) => { this.resolveClosed = resolve })

  constructor(private readonly onSocket: (socket: Socket, listener: TcpListener) => void) {}

  listen(host: string, port: number, backlog: number, highWaterMark: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const server = createServer({ noDelay: true, highWaterMark }, (socket) => { this.onSocket(socket, this) })
      this.server = server
      const onAbort = (): void => { server.close(); reject(new AbortError(undefined, { cause: signal?.reason })) }
      server.once('error', (err) => {
        signal?.removeEventListener('abort', onAbort)
        reject(new ListenError(`expected to listen on ${host}:${port}, got ${(err as NodeJS.ErrnoException).code ?? err.message}`, { cause: err }))
      })
      signal?.addEventListener('abort', onAbort, { once: true })
      server.listen({ host, port, backlog }, () => {
        signal?.removeEventListener('abort', onAbort)
        server.on('error', () => {})
        const addr = server.address()
        if (addr !== null && typeof addr === 'object') this.bound = [formatTcpAddress(addr.address, addr.port)]
        resolve()
      })
    })
  }

  addrs(): TransportAddress[] {
    return [...this.bound]
  }

  /** Inbound handshakes in progress. */
  get handshaking(): number {
    return this.pending.size
  }

  /**
   * Counters: accepted (handshake ok), failed (handshake failed, including evicted ones), refused
   * (dropped at once by the limits), evicted (idle handshakes dropped to make room for a new socket).
   */
  stats(): { handshaking: number; accepted: number; failed: number; refused: number; evicted: number } {
    return { handshaking: this.handshaking, accepted: this.accepted, failed: this.failed, refused: this.refused, evicted: this.evicted }
  }

  /** Stops accepting; handshakes in progress are aborted. Established connections stay open. */
  async close(): Promise<void> {
    const server = this.server
    if (server === undefined) return
    this.server = undefined
    this.controller.abort(new ConnectionClosedError('listener closed'))
    for (const c of this.pending) c.abort(new ConnectionClosedError('listener closed'))
    // server.close()'s callback waits for every accepted socket; established connections outlive
    // the listener, so only wait for the listening handle itself
    server.close()
    await new Promise<void>((resolve) => { setImmediate(resolve) })
    this.resolveClosed()
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
