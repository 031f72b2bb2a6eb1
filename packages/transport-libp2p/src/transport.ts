/**
 * The libp2p transport: KLP connections as `/kos/klp/1.0.0` streams on a js-libp2p host, the one
 * passed in or one it creates at first use (host.ts). `listen()` registers the KLP protocol handler
 * (and binds the address on the host), `dial()` opens a libp2p connection to the peer the address
 * names (Noise proves its PeerId) and a KLP stream on it, `close()` closes the listeners and
 * connections and stops an owned host. Options and defaults: transport-options.ts.
 */
import { randomBytes } from 'node:crypto'
import {
  AbortError,
  ConnectionClosedError,
  InvalidParametersError,
  NotStartedError,
  PeerMismatchError,
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
import type { Connection as P2PConnection, Libp2p, Listener as P2PListener, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { formatLibp2pAddress, isDialable, parseLibp2pAddress, withPeerId } from './address.js'
import { Libp2pConnection, type ConnectionLimits } from './connection.js'
import { DialTimeoutError, ListenError, TooManyConnectionsError } from './errors.js'
import { createOwnedHost, transportManagerOf } from './host.js'
import { didFromPeerId, peerIdFromDid } from './peer-id.js'
import { networkInfoOf, type ReachabilityReport } from './reachability/network-info.js'
import { KLP_PROTOCOL } from './protocol.js'
import { LimitedConnectionError, relayBudget } from './limited.js'
import { checkAnnounce, mapDialError } from './dial-errors.js'
import { Libp2pListener } from './listener.js'
import { resolveOptions, type Libp2pComponents, type Libp2pTransportInit } from './transport-options.js'

export { Libp2pListener } from './listener.js'
export { DEFAULTS, type Libp2pComponents, type Libp2pTransportInit } from './transport-options.js'

/** The libp2p protocol id KLP streams are opened with. */
export { KLP_PROTOCOL } from './protocol.js'

/**
 * The libp2p transport (see the module comment); `libp2pTransport(init)(components)` creates one.
 * Throws InvalidParametersError from its constructor for a bad option, a missing identity, or a
 * host whose PeerId is not the identity's key.
 */
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
  /** The host announces configured addresses: listeners report those. */
  private readonly announcing: boolean
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
    const o = resolveOptions(init, this.owned)
    this.streamWindowBytes = o.streamWindowBytes
    this.limits = o.limits
    this.dialTimeoutMs = o.dialTimeoutMs
    this.maxConnections = o.maxConnections
    this.maxStreams = o.maxStreams
    this.announcing = checkAnnounce(init.announce).length > 0 || (init.libp2pOptions?.addresses?.announce?.length ?? 0) > 0
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
    const p = createOwnedHost(this.init, { identity: this.identity as Identity, listenAddrs, maxStreams: this.maxStreams, streamWindowBytes: this.streamWindowBytes })
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
        runOnLimitedConnection: this.init.allowLimitedConnections === true,
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
    const listener = new Libp2pListener(this, host, mine, onConnection, this.announcing && this.owned)
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
      budget: relayBudget(connection),
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
      const limited = this.init.allowLimitedConnections === true
      if (p2p.limits !== undefined && !limited) {
        throw new LimitedConnectionError(`expected a direct connection to ${remotePeer}, got only a limited (relayed) one; set allowLimitedConnections to run KLP on it within the relay's limits, or dial again once DCUtR upgraded it`)
      }
      stream = await p2p.newStream(KLP_PROTOCOL, { signal: ctl.signal, maxOutboundStreams: this.maxStreams, runOnLimitedConnection: limited })
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
