/**
 * The router's I/O shell: it owns the transports, listeners and connections, reads each
 * connection into the inbound stages, and wires the modules together (pipeline and its stages,
 * hellos and routing, requests, forwarding and broadcast, outbound queues, data channels). The
 * protocol logic lives in those modules; this class holds no message logic of its own.
 */
import {
  ConnectionClosedError,
  InvalidParametersError,
  silentLogger,
  systemClock,
  TrustObservation,
  type AbortOptions,
  type BroadcastStrategy,
  type Clock,
  type Connection,
  type DeliverBroadcastOptions,
  type HandleOptions,
  type KLPMessage,
  type KLPMessageType,
  type KLPValue,
  type Listener,
  type Logger,
  type MessageHandler,
  type MessageInit,
  type MessagePriority,
  type PeerInfo,
  type RequestOptions,
  type SignatureVerifier,
  type Signer,
  type Transport,
  type TransportAddress,
  type TrustEngine,
} from '@kos-mesh/interface'
import { parseAddress } from '@kos-mesh/klp-codec'
import { staticTrustEngine } from '@kos-mesh/trust'
import { MessageBuilder } from './builder.js'
import { RouterCore, type QueueItem } from './core.js'
import { DataFrames } from './data-out.js'
import { NoRouteError, NoTransportError, PeerRevokedError, RouterNotStartedError } from './errors.js'
import { Forwarding, floodingStrategy } from './forwarding.js'
import { Hellos } from './hello.js'
import { Inbound } from './inbound.js'
import { didOfKeyId, errName } from './messages.js'
import { metricsOf, type RouterMetrics } from './metrics.js'
import { resolveConfig, type RouterInit } from './options.js'
import { RejectReason } from './reasons.js'
import { OutboundQueues } from './outbound.js'
import { Pipeline } from './pipeline.js'
import { ReplayWindow } from './replay-cache.js'
import { Requests } from './requests.js'
import { Responder } from './responder.js'
import { ResponseCache } from './response-cache.js'
import { RoutingTable } from './routing-table.js'
import { FairScheduler } from './scheduler.js'
import { Slicer, yieldToEventLoop } from './slicer.js'
import type { DataHandler, Router, RouterComponents, RouterEvents, RoutingTableView } from './types.js'

// the public surface that lived in this module before it was split
export type { RouterInit, RateLimitInit } from './options.js'
export type { Router, RouterComponents, RouterEvents, RoutingTableView, DataHandler, MessageInit, RequestOptions, PeerInfo, RejectInfo } from './types.js'
export { responseTypeFor, didOfKeyId, errorOf } from './messages.js'

class KLPRouter implements Router {
  readonly authority: string
  readonly did: string
  readonly routingTable: RoutingTableView
  private readonly core: RouterCore
  private readonly init: RouterInit
  private readonly transports: Transport[]
  private readonly slicer: Slicer
  private readonly builder: MessageBuilder
  private readonly forwarding: Forwarding
  private readonly pipeline: Pipeline
  private readonly hellos: Hellos
  private readonly inbound: Inbound
  private readonly requests: Requests
  private readonly connections = new Set<Connection>()
  private listeners: Listener[] = []
  private readonly dataFrames = new DataFrames((conn, frame, signal) => this.core.outbound.deliver(conn, frame, signal))

  constructor(init: RouterInit, components: RouterComponents) {
    if (typeof init.authority !== 'string' || init.authority.length === 0) {
      throw new InvalidParametersError(`expected authority to be a non-empty string, got ${String(init.authority)}`)
    }
    const authority = parseAddress(`klp://${init.authority}/`).authority
    const did = didOfKeyId(components.signer.keyId)
    const cfg = resolveConfig(init)
    const clock: Clock = components.clock ?? systemClock
    const log = components.logger ?? silentLogger
    const now = (): number => clock.now()
    const pinned = init.pinnedAuthorities ?? {}
    for (const [a, v] of Object.entries(pinned)) {
      const d = typeof v === 'string' ? v : v?.did
      if (a === authority && d !== did) throw new InvalidParametersError(`expected the pin of this node's own authority ${a} to be ${did}, got ${String(d)}`)
    }
    let core: RouterCore | undefined
    const table = new RoutingTable({
      now,
      maxHops: cfg.hopLimit,
      maxRoutes: init.maxRoutes,
      ...(init.maxTotalRoutes === undefined ? {} : { maxTotalRoutes: init.maxTotalRoutes }),
      ...(init.maxPinnedAuthorities === undefined ? {} : { maxPins: init.maxPinnedAuthorities }),
      pinned,
      onPinChange: (change) => {
        if (change.kind === 'evicted') log.warn('authority pin evicted (provisional, disconnected, least recently seen)', { authority: change.pin.authority, did: change.pin.did })
        core?.emit('pin:change', change)
      },
    })
    core = new RouterCore({
      authority,
      signer: components.signer,
      verifier: components.signatureVerifier,
      // zero trust by default: only messages that ask for nothing pass
      trust: components.trustEngine ?? staticTrustEngine(),
      clock,
      log,
      cfg,
      table,
      replay: new ReplayWindow({
        maxEntries: init.replayCacheSize ?? 100_000,
        ...(init.replayQuotaPerSigner === undefined ? {} : { maxPerOwner: init.replayQuotaPerSigner }),
        ...(init.replayStrangerEntries === undefined ? {} : { maxStrangerEntries: init.replayStrangerEntries }),
        ...(init.replayQuotaPerStranger === undefined ? {} : { maxPerStranger: init.replayQuotaPerStranger }),
        now,
      }),
      responses: new ResponseCache({ maxEntries: init.responseCacheSize, maxBytes: init.responseCacheBytes, now }),
      queue: new FairScheduler<QueueItem>({
        maxPerPeer: init.maxQueuePerPeer,
        maxTotal: init.maxQueueTotal,
        maxBytesPerPeer: init.maxQueueBytesPerPeer,
        maxBytesTotal: init.maxQueueBytesTotal,
        maxStrangers: init.maxQueueStrangers,
        maxBytesStrangers: init.maxQueueBytesStrangers,
        strangersHardFactor: cfg.backpressure ? 2 : 1,
        sizeOf: (item) => item.frame.byteLength,
        weights: init.priorityWeights,
        usage: (peer) => core?.shares.share(peer) ?? 0,
        strangersUsage: () => core?.shares.strangersShare() ?? 0,
      }),
      outbound: new OutboundQueues({ maxBytesPerConnection: init.maxOutboundBytesPerPeer, maxBytesTotal: init.maxOutboundBytesTotal }),
    })
    core.outbound.onSent = (frame) => {
      this.core.counters.messagesOut++
      this.core.counters.bytesOut += frame.byteLength
    }
    this.core = core
    this.authority = authority
    this.did = did
    this.init = init
    this.transports = components.transports
    this.slicer = new Slicer(cfg.sliceMs, core.shares)
    this.builder = new MessageBuilder(core)
    const enqueueLocal = (item: QueueItem): boolean => this.pipeline.enqueue(item)
    const responder = new Responder(core, this.builder, enqueueLocal)
    this.forwarding = new Forwarding(core, responder, { maxEntries: init.broadcastCacheSize, maxBytes: init.broadcastCacheBytes })
    this.pipeline = new Pipeline(core, this.slicer, this.forwarding, responder)
    const pipeline = this.pipeline
    core.shares.backlog = (peer) => core.queue.peerDepth(peer) + pipeline.inFlightOf(peer)
    this.hellos = new Hellos(core, this.builder, (c) => this.peerInfo(c))
    this.inbound = new Inbound(core, this.pipeline, this.hellos)
    this.requests = new Requests(core, this.builder, this.forwarding, enqueueLocal)
    this.routingTable = {
      lookup: (a) => table.lookup(a),
      routes: () => table.routes(),
      didOf: (a) => this.didOf(a),
      authorityOf: (d) => this.authorityOf(d),
      pins: () => table.pins(),
      pinEntries: () => table.pinEntries(),
      confirmPin: (a, d) => table.confirm(a, d),
    }
  }

  // ---------------------------------------------------------------- lifecycle

  isStarted(): boolean {
    return this.core.started
  }

  async start(): Promise<void> {
    const core = this.core
    if (core.started) return
    core.started = true
    core.startedAt ??= core.clock.now()
    core.stopController = new AbortController()
    core.gen++
    this.hellos.start()
    try {
      for (const addr of this.init.listen ?? []) {
        const t = this.transportFor(addr, true)
        this.listeners.push(await t.listen(addr, (conn) => this.onConnection(conn)))
      }
    } catch (err) {
      await this.stop()
      throw err
    }
  }

  async stop(): Promise<void> {
    const core = this.core
    if (!core.started) return
    core.started = false
    const stopped = new RouterNotStartedError('router stopped')
    core.stopController.abort(stopped)
    core.gen++
    this.pipeline.stop(stopped)
    this.hellos.stop(stopped)
    for (const p of core.pending.values()) p.reject(new RouterNotStartedError('router stopped'))
    core.pending.clear()
    core.queue.clear()
    this.inbound.stop()
    core.outbound.clear(new ConnectionClosedError('router stopped'))
    const listeners = this.listeners
    this.listeners = []
    await Promise.allSettled(listeners.map((l) => l.close()))
    await Promise.allSettled([...this.connections].map((c) => c.close().catch(() => c.abort(new ConnectionClosedError('router stopped')))))
    this.connections.clear()
    core.table.clear()
    core.buckets.clear()
    this.forwarding.held.clear()
  }

  addrs(): TransportAddress[] {
    return this.listeners.flatMap((l) => l.addrs())
  }

  private assertStarted(): void {
    if (!this.core.started) throw new RouterNotStartedError('expected a started router, got a stopped one')
  }

  private transportFor(addr: TransportAddress, listen = false): Transport {
    // a listen address (port 0...) may not be dialable: match it by scheme too
    const t = this.transports.find((x) => x.canDial(addr)) ?? (listen ? this.transports.find((x) => addr.startsWith(`${x.name}://`)) : undefined)
    if (t === undefined) throw new NoTransportError(`expected a transport for ${addr}, got none of [${this.transports.map((x) => x.name).join(', ')}]`)
    return t
  }

  // ---------------------------------------------------------------- handlers and data channels

  handle(type: KLPMessageType, handler: MessageHandler, options?: HandleOptions): void {
    this.core.handlers.set(type, handler, options)
  }

  unhandle(type: KLPMessageType, options?: HandleOptions): void {
    this.core.handlers.delete(type, options)
  }

  handleData(channel: number, handler: DataHandler): void {
    this.inbound.handleData(channel, handler)
  }

  unhandleData(channel: number): void {
    this.inbound.unhandleData(channel)
  }

  async sendData(peer: string, channel: number, data: Uint8Array, options: AbortOptions = {}): Promise<void> {
    this.assertStarted()
    if (!Number.isInteger(channel) || channel < 0 || channel > 0xffff) throw new InvalidParametersError(`expected a channel in 0..65535, got ${channel}`)
    const conn = this.core.table.connection(peer)
    if (conn === undefined) throw new NoRouteError(`expected a connection to ${peer}, got none`)
    await this.dataFrames.send(conn, channel, data, options.signal)
    this.core.counters.dataOut++
  }

  setBroadcastStrategy(strategy: BroadcastStrategy | undefined): void {
    this.forwarding.strategy = strategy ?? floodingStrategy
  }

  async relayBroadcast(peer: string, message: KLPMessage, options: AbortOptions = {}): Promise<void> {
    this.assertStarted()
    await this.forwarding.relayTo(peer, message, options.signal)
  }

  async deliverBroadcast(message: KLPMessage | Uint8Array, options: DeliverBroadcastOptions): Promise<boolean> {
    this.assertStarted()
    options?.signal?.throwIfAborted()
    return this.forwarding.deliverExternal(message, options?.fromPeer, (item) => this.pipeline.enqueue(item))
  }

  // ---------------------------------------------------------------- connections

  async dial(addr: TransportAddress, options: AbortOptions & { remotePeer?: string } = {}): Promise<PeerInfo> {
    this.assertStarted()
    const t = this.transportFor(addr)
    const conn = await t.dial(addr, options)
    if (this.core.isRevoked?.(conn.remotePeer) === true) {
      this.core.reject(RejectReason.REVOKED, conn.remotePeer)
      const err = new PeerRevokedError(`expected a peer whose DID is not revoked, got ${conn.remotePeer}`)
      conn.abort(err)
      throw err
    }
    const identified = this.hellos.waitFor(conn, options.signal)
    this.onConnection(conn)
    await identified
    return this.peerInfo(conn)
  }

  private peerInfo(conn: Connection): PeerInfo {
    const authority = this.core.table.authorityOf(conn.remotePeer)
    return { did: conn.remotePeer, connectionId: conn.id, ...(authority === undefined ? {} : { authority }) }
  }

  peers(): PeerInfo[] {
    const out: PeerInfo[] = []
    const table = this.core.table
    for (const did of table.peers()) {
      const c = table.connection(did)
      if (c !== undefined) out.push(this.peerInfo(c))
    }
    return out
  }

  didOf(authority: string): string | undefined {
    return authority === this.authority ? this.did : this.core.table.didOf(authority)
  }

  authorityOf(did: string): string | undefined {
    return did === this.did ? this.authority : this.core.table.authorityOf(did)
  }

  private onConnection(conn: Connection): void {
    const core = this.core
    if (!core.started) {
      conn.abort(new RouterNotStartedError('router stopped'))
      return
    }
    // a revoked DID gets no connection: closed before its hello, counted as a `revoked` reject
    if (core.isRevoked?.(conn.remotePeer) === true) {
      core.reject(RejectReason.REVOKED, conn.remotePeer)
      conn.abort(new PeerRevokedError(`expected a peer whose DID is not revoked, got ${conn.remotePeer}`))
      return
    }
    this.connections.add(conn)
    if (core.table.addConnection(conn)) core.emit('peer:connect', this.peerInfo(conn))
    this.hellos.greet(conn)
    void this.readLoop(conn)
  }

  private async readLoop(conn: Connection): Promise<void> {
    const core = this.core
    const inbound = this.inbound
    const peer = conn.remotePeer
    let reason = 'closed'
    try {
      let n = 0
      for await (const frame of conn) {
        if (!core.started) break
        // a peer revoked while connected: its connection closes at its next frame
        if (core.isRevoked?.(peer) === true) {
          reason = RejectReason.REVOKED
          core.reject(RejectReason.REVOKED, peer)
          conn.abort(new PeerRevokedError(`expected a peer whose DID is not revoked, got ${peer}`))
          break
        }
        inbound.onFrame(conn, frame)
        // a connection with a long backlog is read in slices too: other sockets get their turn
        if ((++n & 15) === 0 && this.slicer.spent()) await yieldToEventLoop()
        if (core.cfg.backpressure) await inbound.roomToRead(conn.remotePeer)
      }
    } catch (err) {
      reason = errName(err) || 'error'
      if (errName(err) === 'SlowPeerError') {
        core.counters.slowPeers++
        core.log.warn('peer disconnected: it stopped reading', { peer: conn.remotePeer })
        // it did not take what it was sent within the transport's deadline
        core.observe(conn.remotePeer, TrustObservation.TIMEOUT)
      } else {
        core.log.debug('connection read failed', { peer: conn.remotePeer, err: errName(err) })
      }
    } finally {
      core.outbound.remove(conn, new ConnectionClosedError('connection closed'))
      this.connections.delete(conn)
      this.hellos.identified.delete(conn.id)
      const info = this.peerInfo(conn)
      if (core.table.removeConnection(conn)) {
        core.buckets.delete(conn.remotePeer)
        this.hellos.forget(conn.remotePeer)
        if (core.started) {
          core.emit('peer:disconnect', { ...info, reason })
          this.hellos.scheduleRouteUpdate()
        }
      }
      if (conn.status === 'open') conn.abort(new ConnectionClosedError('read loop ended'))
    }
  }

  // ---------------------------------------------------------------- outbound

  createResponse(request: KLPMessage, data: KLPValue, options?: { type?: KLPMessageType; priority?: MessagePriority }): Promise<KLPMessage> {
    return this.builder.createResponse(request, data, options)
  }

  async send(m: MessageInit | KLPMessage, options?: AbortOptions): Promise<KLPMessage> {
    this.assertStarted()
    return this.requests.send(m, options)
  }

  async broadcast(init: Omit<MessageInit, 'type'> & { type?: KLPMessageType }, options?: AbortOptions): Promise<KLPMessage> {
    this.assertStarted()
    return this.requests.broadcast(init, options)
  }

  async request(init: MessageInit, options?: RequestOptions): Promise<KLPMessage> {
    this.assertStarted()
    return this.requests.request(init, options)
  }

  // ---------------------------------------------------------------- observability

  metrics(): RouterMetrics {
    return metricsOf(this.core)
  }

  addEventListener<K extends keyof RouterEvents>(type: K, listener: (evt: RouterEvents[K]) => void, options?: { once?: boolean; signal?: AbortSignal }): void {
    this.core.events.addEventListener(type, listener as (evt: Event) => void, options)
  }

  removeEventListener<K extends keyof RouterEvents>(type: K, listener: (evt: RouterEvents[K]) => void): void {
    this.core.events.removeEventListener(type, listener as (evt: Event) => void)
  }
}

// ------------------------------------------------------------------ factories

/** js-libp2p style factory: `klpRouter(init)(components)`. No I/O happens before `start()`. */
export function klpRouter(init: RouterInit): (components: RouterComponents) => Router {
  return (components) => new KLPRouter(init, components)
}
