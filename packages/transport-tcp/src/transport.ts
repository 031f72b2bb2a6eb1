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
  systemClock,
  type AbortOptions,
  type Clock,
  type Connection,
  type ConnectionHandler,
  type DialOptions,
  type Listener,
  type Logger,
  type TimerHandle,
  type Transport,
  type TransportAddress,
} from '@kos-mesh/interface'
import { formatTcpAddress, parseTcpAddress } from './address.js'
import { TcpConnection, type ConnectionLimits } from './connection.js'
import { HandshakeError, HandshakeTimeoutError, performHandshake, type Identity } from '@kos-mesh/did-security'
import { DialTimeoutError, ListenError, TooManyConnectionsError } from './errors.js'
import type { HandshakeFn, SecureSession } from './security.js'

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

/** Shortest delay between two looks at the waiting sockets (timer granularity). */
const MIN_WAIT_TICK_MS = 5

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

/** An accepted socket waiting (unread, paused) for an inbound handshake slot. */
interface WaitingSocket {
  socket: Socket
  key: string
  since: number
  onConnection: ConnectionHandler
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
  private readonly clock: Clock
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
  private readonly handshakeStallMs: number
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
      const victim = this.pickVictim(this.listeners, undefined, this.clock.now())
      if (victim === undefined) throw new TooManyConnectionsError(`expected fewer than ${this.maxConnections} connections, got ${this.connections.size}`)
      this.evict(victim)
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

  private track(socket: Socket, direction: 'inbound' | 'outbound', remoteAddr: string, key: string, onFirstHandshakeMessage?: () => void): TcpConnection {
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
      for (const l of this.listeners) if (l.waiting.length > 0) this.serveWaiting(l)
    })
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
    const listener = new TcpListener((socket, l) => { this.accept(socket, l, onConnection) }, this.clock)
    await listener.listen(a.host, a.port, this.backlog, this.sendBufferBytes, options.signal)
    this.listeners.add(listener)
    void listener.closedPromise.then(() => { this.listeners.delete(listener) })
    return listener
  }

  // ------------------------------------------------------------------ inbound handshake slots
  //
  // An inbound socket first waits, unread (the server pauses it on accept), until it gets a handshake
  // slot. It gets one at once while the limits have room; otherwise it takes the slot of a *stalled*
  // pending handshake (no progress for handshakeStallMs, or nothing at all for a short grace), whatever
  // stage that handshake reached: only a completed handshake holds its place for good, so holding a
  // slot for longer than handshakeStallMs costs a full handshake. Victims come from the new socket's
  // own address when that address is full, otherwise from the address holding the most slots, and
  // among those the one without progress for the longest. Nothing stalled: the socket keeps waiting.

  /** Whether pending handshake `c` has gone long enough without progress to be evicted. */
  private isStalled(c: TcpConnection, now: number): boolean {
    return now - c.handshakeProgressAt >= this.stallAfter(c)
  }

  /** A socket that has sent nothing is stalled at once (an honest initiator sends right after connecting). */
  private stallAfter(c: TcpConnection): number {
    return c.handshakeMessages === 0 ? 0 : this.handshakeStallMs
  }

  /**
   * The stalled pending handshake to evict: from `key` only when given, else from the address with
   * the most pending handshakes; among those, the one without progress for the longest.
   */
  private pickVictim(listeners: Iterable<TcpListener>, key: string | undefined, now: number): { conn: TcpConnection; listener: TcpListener } | undefined {
    let best: { conn: TcpConnection; listener: TcpListener } | undefined
    let bestLoad = -1
    let bestAt = Infinity
    for (const l of listeners) {
      let load: Map<string, number> | undefined
      if (key === undefined) {
        load = new Map()
        for (const c of l.pending) bump(load, this.peers.get(c)?.key ?? '?', 1)
      }
      for (const c of l.pending) {
        const k = this.peers.get(c)?.key ?? '?'
        if (key !== undefined && k !== key) continue
        if (!this.isStalled(c, now)) continue
        const n = load?.get(k) ?? 0
        if (n > bestLoad || (n === bestLoad && c.handshakeProgressAt < bestAt)) {
          best = { conn: c, listener: l }
          bestLoad = n
          bestAt = c.handshakeProgressAt
        }
      }
    }
    return best
  }

  private evict(v: { conn: TcpConnection; listener: TcpListener }): void {
    v.listener.pending.delete(v.conn)
    v.listener.evicted++
    this.untrack(v.conn)
    v.conn.abort(new TooManyConnectionsError(`expected the inbound handshake to progress within ${this.stallAfter(v.conn)} ms while the handshake slots were full, got none (evicted)`))
  }

  private pendingFrom(listener: TcpListener, key: string): number {
    let n = 0
    for (const c of listener.pending) if (this.peers.get(c)?.key === key) n++
    return n
  }

  /** Makes room for one more inbound handshake from `key`, evicting stalled ones if needed. */
  private tryAdmit(listener: TcpListener, key: string, now: number): boolean {
    for (;;) {
      const keyFull = this.pendingFrom(listener, key) >= this.maxInboundHandshakesPerIp || (this.inboundPerIp.get(key) ?? 0) >= this.maxConnectionsPerIp
      const listenerFull = listener.pending.size >= this.maxInboundHandshakes
      const totalFull = this.connections.size >= this.maxConnections
      if (!keyFull && !listenerFull && !totalFull) return true
      // evicting a handshake of the same address frees a per-address and a global slot at once
      const victim = keyFull
        ? this.pickVictim([listener], key, now)
        : this.pickVictim(listenerFull ? [listener] : this.listeners, undefined, now)
      if (victim === undefined) return false
      this.evict(victim)
    }
  }

  /** True when established connections alone fill a limit: waiting could not help, refuse at once. */
  private hopeless(key: string): boolean {
    let pendingTotal = 0
    let pendingKey = 0
    for (const l of this.listeners) {
      pendingTotal += l.pending.size
      pendingKey += this.pendingFrom(l, key)
    }
    return this.connections.size - pendingTotal >= this.maxConnections ||
      (this.inboundPerIp.get(key) ?? 0) - pendingKey >= this.maxConnectionsPerIp
  }

  /** Called by a listener for each accepted socket (paused: nothing is read until it has a slot). */
  accept(socket: Socket, listener: TcpListener, onConnection: ConnectionHandler): void {
    socket.on('error', () => {})
    const key = ipKey(socket.remoteAddress)
    if (this.closing || listener.signal.aborted || this.hopeless(key)) {
      this.refuse(listener, socket, key)
      return
    }
    const w: WaitingSocket = { socket, key, since: this.clock.now(), onConnection }
    listener.waiting.push(w)
    this.serveWaiting(listener)
    if (!listener.waiting.includes(w)) return
    // bound the waiting room: per address, then per listener (the address with most waiting gives way)
    let fromKey = 0
    for (const o of listener.waiting) if (o.key === key) fromKey++
    if (fromKey > this.maxInboundHandshakesPerIp) {
      this.dropWaiting(listener, w)
    } else if (listener.waiting.length > this.maxInboundHandshakes) {
      const counts = new Map<string, number>()
      for (const o of listener.waiting) bump(counts, o.key, 1)
      let heavy: string | undefined
      for (const [k, n] of counts) if (n > (counts.get(heavy ?? key) ?? 0)) heavy = k
      let drop = w
      if (heavy !== undefined && heavy !== key) {
        for (const o of listener.waiting) if (o.key === heavy) drop = o // the newest of that address
      }
      this.dropWaiting(listener, drop)
    }
    this.scheduleWaiting(listener)
  }

  private refuse(listener: TcpListener, socket: Socket, key: string): void {
    this.log?.debug('tcp inbound socket refused by limits', { remote: key, handshaking: listener.handshaking, waiting: listener.waiting.length, connections: this.connections.size })
    listener.refused++
    socket.destroy()
  }

  private dropWaiting(listener: TcpListener, w: WaitingSocket): void {
    const i = listener.waiting.indexOf(w)
    if (i >= 0) listener.waiting.splice(i, 1)
    this.refuse(listener, w.socket, w.key)
  }

  /** Gives waiting sockets a slot, oldest first (no head-of-line blocking across addresses). */
  private serveWaiting(listener: TcpListener): void {
    if (listener.serving) return
    listener.serving = true
    try {
      const now = this.clock.now()
      for (let i = 0; i < listener.waiting.length;) {
        const w = listener.waiting[i] as WaitingSocket
        if (this.closing || listener.signal.aborted || now - w.since >= this.handshakeTimeoutMs || w.socket.destroyed) {
          listener.waiting.splice(i, 1)
          this.refuse(listener, w.socket, w.key)
          continue
        }
        if (this.tryAdmit(listener, w.key, now)) {
          listener.waiting.splice(i, 1)
          this.startInbound(w.socket, listener, w.key, w.onConnection)
          continue
        }
        i++
      }
    } finally {
      listener.serving = false
    }
    this.scheduleWaiting(listener)
  }

  /** Arms the listener's timer for the next moment a waiting socket may get a slot or expire. */
  private scheduleWaiting(listener: TcpListener): void {
    this.clock.clearTimeout(listener.waitTimer)
    listener.waitTimer = undefined
    if (listener.waiting.length === 0 || listener.signal.aborted) return
    const now = this.clock.now()
    let next = Infinity
    for (const w of listener.waiting) next = Math.min(next, w.since + this.handshakeTimeoutMs)
    for (const l of this.listeners) {
      for (const c of l.pending) {
        const at = c.handshakeProgressAt + this.stallAfter(c)
        if (at > now) next = Math.min(next, at)
      }
    }
    listener.waitTimer = this.clock.setTimeout(() => {
      listener.waitTimer = undefined
      this.serveWaiting(listener)
    }, Math.max(MIN_WAIT_TICK_MS, Math.ceil(next - now)), { unref: true })
  }

  /** Starts the responder handshake of an admitted socket. */
  private startInbound(socket: Socket, listener: TcpListener, key: string, onConnection: ConnectionHandler): void {
    const remote = formatTcpAddress(socket.remoteAddress ?? '0.0.0.0', socket.remotePort ?? 0)
    let firstTimer: TimerHandle | undefined
    const conn = this.track(socket, 'inbound', remote, key, () => { this.clock.clearTimeout(firstTimer) })
    socket.resume() // accepted paused (pauseOnConnect); the connection reads from now on
    firstTimer = this.clock.setTimeout(() => {
      if (!conn.receivedHandshakeMessage) {
        conn.abort(new HandshakeTimeoutError(`expected the first handshake message within ${this.firstMessageTimeoutMs} ms`))
      }
    }, this.firstMessageTimeoutMs)
    listener.pending.add(conn)
    // a socket that closes gives its slot back at once, even if the handshake code is still waiting
    void conn.closed.then(() => {
      if (listener.pending.delete(conn) && listener.waiting.length > 0) this.serveWaiting(listener)
    })
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
        this.clock.clearTimeout(firstTimer)
        listener.pending.delete(conn)
        if (listener.waiting.length > 0) this.serveWaiting(listener)
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
  /** Accepted sockets waiting (unread) for a handshake slot, oldest first. */
  readonly waiting: WaitingSocket[] = []
  /** @internal */
  waitTimer: TimerHandle | undefined
  /** @internal */
  serving = false
  accepted = 0
  failed = 0
  refused = 0
  evicted = 0
  private resolveClosed!: () => void
  readonly closedPromise = new Promise<void>((resolve) => { this.resolveClosed = resolve })

  constructor(private readonly onSocket: (socket: Socket, listener: TcpListener) => void, private readonly clock: Clock = systemClock) {}

  listen(host: string, port: number, backlog: number, highWaterMark: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      // pauseOnConnect: nothing is read from a socket until it has a handshake slot
      const server = createServer({ noDelay: true, highWaterMark, pauseOnConnect: true }, (socket) => { this.onSocket(socket, this) })
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
   * (dropped without a handshake slot: limits, full waiting room, waited too long), evicted (stalled
   * handshakes dropped to make room for a waiting socket); handshaking and waiting are current counts.
   */
  stats(): { handshaking: number; waiting: number; accepted: number; failed: number; refused: number; evicted: number } {
    return { handshaking: this.handshaking, waiting: this.waiting.length, accepted: this.accepted, failed: this.failed, refused: this.refused, evicted: this.evicted }
  }

  /** Stops accepting; handshakes in progress are aborted, waiting sockets dropped. Established connections stay open. */
  async close(): Promise<void> {
    const server = this.server
    if (server === undefined) return
    this.server = undefined
    this.controller.abort(new ConnectionClosedError('listener closed'))
    this.clock.clearTimeout(this.waitTimer)
    this.waitTimer = undefined
    for (const w of this.waiting.splice(0)) w.socket.destroy()
    for (const c of this.pending) c.abort(new ConnectionClosedError('listener closed'))
    // server.close()'s callback waits for every accepted socket; established connections outlive
    // the listener, so only wait for the listening handle itself
    server.close()
    await new Promise<void>((resolve) => { setImmediate(resolve) }) // clock-exempt: yields one turn to node:net's I/O, not protocol time
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
