/**
 * The gossip service: runs the sans-I/O gossip core (HyParView membership, Plumtree broadcast,
 * the `gossip_hops` peer-list walk; src/gossip) over a MessageRouter.
 *
 * - Control messages travel as PEER_DISCOVERY messages on `klp://<peer>/gossip` (wire.ts), peers
 *   as their own signed node records (records.ts), verified by every receiver.
 * - The active view is the set of router neighbours the overlay uses: a peer that must become
 *   active is dialled from its record; a neighbour whose connection closes (`peer:disconnect`) is
 *   reported down, and the core refills its view from the passive one.
 * - Broadcasts are the router's own signed BROADCAST_ANNOUNCE messages: the service installs a
 *   BroadcastStrategy, so each broadcast the router accepts is relayed only to the Plumtree eager
 *   peers of the message (IHAVEs go to the lazy ones); a duplicate the router rejects
 *   (`message:rejected`, `replay`) PRUNEs its sender; a GRAFT is answered with the router's
 *   `relayBroadcast` (the same signed bytes).
 * - `source` is a DiscoverySource (method `gossip`) whose findPeers walks at most `gossipHops`.
 *
 * Time and timers come only from the injected Clock.
 */
import { DiscoveryMethod, InvalidParametersError, KLPMessageType, ProcessingStatus, silentLogger, systemClock, throwIfAborted } from '@kos-mesh/interface'
import type { AbortOptions, BroadcastStrategy, Clock, KLPMessage, Logger, MessageHandler, MessageRouter, PeerInfo, RejectInfo } from '@kos-mesh/interface'
import { gossipCore, type GossipCore, type GossipWireMessage, type NodeId } from '../gossip/index.js'
import { hasCapabilities } from '../validate.js'
import type { DiscoverySource, NodeRecord } from '../types.js'
import { approximateSize, errName, raceAbort, type GossipPeerQuery, type GossipService, type GossipServiceStats } from './api.js'
import { GossipNotStartedError } from './errors.js'
import { GOSSIP_PATH, resolveOptions, type GossipServiceComponents, type GossipServiceInit, type Resolved } from './options.js'
import { RecordBook } from './records.js'
import { DIRECT_ONLY, fromWire, toWire } from './translate.js'
import { gossipPayloadValue, parseGossipPayload, type GossipWire } from './wire.js'

type CoreMessage = GossipWireMessage<KLPMessage>

/** Messages answered to a walk's origin: routed through the mesh when no direct link exists. */
const ROUTABLE = new Set<CoreMessage['type']>(['shuffle_reply', 'peer_list', 'disconnect'])

class DefaultGossipService implements GossipService {
  readonly core: GossipCore<KLPMessage>
  readonly source: DiscoverySource
  private readonly router: MessageRouter
  private readonly clock: Clock
  private readonly log: Logger
  private readonly o: Resolved
  private readonly book: RecordBook
  private readonly connected = new Set<string>()
  private readonly dialing = new Map<string, Promise<boolean>>()
  private started = false
  private stopController = new AbortController()
  private inflight = 0
  private joining = false
  private readonly n = { sent: 0, received: 0, invalid: 0, dropped: 0, dials: 0, dialFailures: 0, duplicates: 0, grafted: 0, graftFailures: 0, peerListServed: 0, rejoins: 0 }

  constructor(init: GossipServiceInit, components: GossipServiceComponents) {
    if (components?.router === undefined) throw new InvalidParametersError('router: expected a MessageRouter, got undefined')
    this.router = components.router
    this.clock = components.clock ?? systemClock
    this.log = components.logger ?? silentLogger
    this.o = resolveOptions(init, components, this.clock)
    const self = this.router.did
    this.book = new RecordBook({
      self,
      verify: this.o.verifyRecord,
      peek: this.o.peekRecord,
      maxEntries: this.o.maxRecords,
      inView: (did) => this.core.membership.isActive(did) || this.core.membership.passive().includes(did),
      toTransportAddress: this.o.toTransportAddress,
      log: this.log,
    })
    this.core = gossipCore<KLPMessage>({ membership: this.o.membership, broadcast: { ...this.o.broadcast, sizeOf: approximateSize }, peerList: this.o.peerList })({
      self,
      clock: this.clock,
      random: this.o.random,
      send: (to, m) => this.post(to, m),
    })
    this.source = {
      method: DiscoveryMethod.GOSSIP,
      name: 'gossip',
      findPeers: async (query: GossipPeerQuery, options?: AbortOptions) => {
        const records = await this.requestPeerList({ hops: query.hops ?? query.gossipHops ?? this.o.gossipHops, ...(query.maxPeers === undefined ? {} : { max: query.maxPeers }) }, options)
        const required = query.requiredCapabilities ?? []
        return records.filter((r) => hasCapabilities(r.node.capabilities, [...required])).map((r) => r.bytes)
      },
    }
  }

  isStarted(): boolean {
    return this.started
  }

  async start(): Promise<void> {
    if (this.started) return
    this.stopController = new AbortController()
    this.book.own = await this.o.ownRecord(this.router)
    this.router.handle(KLPMessageType.PEER_DISCOVERY, this.onMessage, { path: GOSSIP_PATH })
    this.router.addEventListener('peer:identify', this.onIdentify)
    this.router.addEventListener('peer:disconnect', this.onDisconnect)
    this.router.addEventListener('message:rejected', this.onRejected)
    this.router.setBroadcastStrategy(this.strategy)
    this.started = true
    for (const p of this.router.peers()) if (p.authority !== undefined) this.connected.add(p.did)
    this.core.start()
    this.scheduleRecordRefresh()
    this.scheduleRepair()
    if (this.o.autoJoin) this.autoJoin()
  }

  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    this.stopController.abort(new GossipNotStartedError('gossip service stopped'))
    this.core.stop()
    this.clock.clearTimeout(this.refreshTimer)
    this.clock.clearTimeout(this.repairTimer)
    this.router.setBroadcastStrategy(undefined)
    this.router.removeEventListener('peer:identify', this.onIdentify)
    this.router.removeEventListener('peer:disconnect', this.onDisconnect)
    this.router.removeEventListener('message:rejected', this.onRejected)
    this.router.unhandle(KLPMessageType.PEER_DISCOVERY, { path: GOSSIP_PATH })
    this.connected.clear()
  }

  neighbors(): string[] {
    return this.core.neighbors()
  }

  passive(): string[] {
    return this.core.membership.passive()
  }

  localRecord(): NodeRecord | undefined {
    return this.book.own
  }

  stats(): GossipServiceStats {
    return { core: this.core.stats(), ...this.n, records: this.book.size }
  }

  async join(contact: string, options: AbortOptions = {}): Promise<void> {
    this.assertStarted()
    let did = contact
    if (!contact.startsWith('did:')) {
      const i = contact.indexOf('/did:')
      const info = await this.router.dial(i === -1 ? contact : contact.slice(0, i), { ...options, ...(i === -1 ? {} : { remotePeer: contact.slice(i + 1) }) })
      did = info.did
      this.connected.add(did)
    }
    if (!this.connected.has(did)) throw new InvalidParametersError(`expected a connected peer or a transport address, got ${contact.slice(0, 80)}`)
    this.core.join(did)
  }

  async requestPeerList(options: { hops: number; max?: number }, abort: AbortOptions = {}): Promise<NodeRecord[]> {
    this.assertStarted()
    throwIfAborted(abort.signal)
    const walk = this.core.requestPeerList({ hops: options.hops, ...(options.max === undefined ? {} : { max: options.max }) })
    const dids = abort.signal === undefined ? await walk : await raceAbort(walk, abort.signal)
    return dids.map((d) => this.book.get(d)).filter((r): r is NodeRecord => r !== undefined)
  }

  private assertStarted(): void {
    if (!this.started) throw new GossipNotStartedError('expected the gossip service to be started, got stopped')
  }

  // ---------------------------------------------------------------- own record

  private refreshTimer: ReturnType<Clock['setTimeout']> | undefined

  private scheduleRecordRefresh(): void {
    if (this.o.recordRefreshMs <= 0) return
    this.refreshTimer = this.clock.setTimeout(() => {
      if (!this.started) return
      void this.o.ownRecord(this.router).then((r) => { this.book.own = r }, (err: unknown) => this.log.debug('gossip: record refresh failed', { err: errName(err) }))
      this.scheduleRecordRefresh()
    }, this.o.recordRefreshMs, { unref: true })
  }

  // ---------------------------------------------------------------- router events

  private readonly strategy: BroadcastStrategy = {
    relay: (message, ctx) => {
      const from = ctx.fromPeer
      const membership = this.core.membership
      if (from !== undefined && !membership.isActive(from)) membership.notNeighbor(from)
      return this.core.accept(message.metadata.message_id, message, from, ctx.hops)?.eager ?? []
    },
  }

  private readonly onRejected = (evt: CustomEvent<RejectInfo>): void => {
    const { reason, messageId, fromPeer } = evt.detail
    if ((reason !== 'replay' && reason !== 'duplicate') || messageId === undefined || fromPeer === this.router.did) return
    if (!this.core.broadcaster.has(messageId)) return
    this.n.duplicates++
    // a known id: Plumtree only counts the copy against its sender (the payload is not read)
    this.core.accept(messageId, undefined as unknown as KLPMessage, fromPeer, 0)
  }

  private readonly onIdentify = (evt: CustomEvent<PeerInfo>): void => {
    this.connected.add(evt.detail.did)
    if (this.o.autoJoin) this.autoJoin()
  }

  private readonly onDisconnect = (evt: CustomEvent<PeerInfo>): void => {
    const did = evt.detail.did
    this.connected.delete(did)
    if (this.core.membership.isActive(did)) this.core.peerDown(did)
  }

  private repairTimer: ReturnType<Clock['setTimeout']> | undefined
  private shortRounds = 0

  /**
   * A node whose active view stays short (its passive view exhausted or refusing, e.g. a small
   * group cut off from the rest) joins again through a random router neighbour outside its view:
   * the join's random walks reconnect it to the whole overlay.
   */
  private scheduleRepair(): void {
    if (this.o.repairIntervalMs <= 0) return
    this.repairTimer = this.clock.setTimeout(() => {
      if (!this.started) return
      const active = this.core.neighbors()
      if (active.length === 0) {
        // alone (e.g. the peers connected before this service started): join at once
        this.joining = false
        this.autoJoin()
      } else if (active.length >= this.core.membership.options.activeViewSize) this.shortRounds = 0
      else if (++this.shortRounds >= 2) {
        const outside = this.routerNeighbours().filter((d) => !active.includes(d))
        const contact = outside[Math.floor(this.o.random() * outside.length)]
        if (contact !== undefined) {
          this.shortRounds = 0
          this.n.rejoins++
          this.core.join(contact)
        }
      }
      this.scheduleRepair()
    }, this.o.repairIntervalMs, { unref: true })
  }

  /** With an empty overlay, joins through a connected neighbour (the core retries while alone). */
  /** Identified router neighbours: the ones this service heard of, and whatever the router has now. */
  private routerNeighbours(): string[] {
    for (const p of this.router.peers()) if (p.authority !== undefined && p.did !== this.router.did) this.connected.add(p.did)
    return [...this.connected]
  }

  private autoJoin(): void {
    if (this.joining || !this.started || this.core.neighbors().length > 0) return
    const peers = this.routerNeighbours()
    const contact = peers[Math.floor(this.o.random() * peers.length)]
    if (contact === undefined) return
    this.joining = true
    this.core.join(contact)
  }

  // ---------------------------------------------------------------- inbound

  private readonly onMessage: MessageHandler = async (msg, ctx) => {
    let w: GossipWire
    try {
      w = parseGossipPayload(msg.payload.data, this.o.limits)
    } catch (err) {
      this.n.invalid++
      this.log.debug('gossip: invalid control message', { from: ctx.fromPeer, err: errName(err) })
      return { status: ProcessingStatus.REJECTED, reason: 'invalid_gossip_message' }
    }
    const from = ctx.signerDid
    if (from === this.router.did || (DIRECT_ONLY.has(w.action) && ctx.fromPeer !== from)) {
      this.n.invalid++
      return { status: ProcessingStatus.REJECTED, reason: 'not_a_neighbour' }
    }
    const m = await fromWire(w, from, this.book, ctx.signal)
    if (m === undefined) {
      this.n.invalid++
      return { status: ProcessingStatus.REJECTED, reason: 'invalid_gossip_record' }
    }
    if (!this.started) return { status: ProcessingStatus.PROCESSED }
    this.n.received++
    if (m.type === 'neighbor_reply' || m.type === 'join' || m.type === 'neighbor') this.connected.add(from)
    if (m.type === 'peer_list_request') this.n.peerListServed++
    this.core.receive(from, m)
    return { status: ProcessingStatus.PROCESSED }
  }

  // ---------------------------------------------------------------- outbound

  /** The core's send: one-way, may be lost. Work is bounded by `maxInflight`. */
  private post(to: NodeId, m: CoreMessage): void {
    if (!this.started) return
    if (this.inflight >= this.o.maxInflight) {
      this.n.dropped++
      return
    }
    this.inflight++
    void this.deliver(to, m)
      .catch((err: unknown) => {
        this.n.dropped++
        this.log.debug('gossip: control message not sent', { to, type: m.type, err: errName(err) })
      })
      .finally(() => { this.inflight-- })
  }

  private async deliver(to: NodeId, m: CoreMessage): Promise<void> {
    const signal = this.stopController.signal
    if (m.type === 'gossip') return this.graft(to, m.payload, signal)
    const w = toWire(m, this.book, this.o.limits.maxRecords)
    if (w === undefined) {
      this.n.dropped++
      return
    }
    if (!this.connected.has(to) && !ROUTABLE.has(m.type) && !(await this.connect(to))) {
      // a peer the overlay needs but cannot reach: the core replaces it
      this.core.peerDown(to)
      return
    }
    await this.send(to, w, signal).catch(async (err: unknown) => {
      if (errName(err) !== 'NoRouteError' || !ROUTABLE.has(m.type) || !(await this.connect(to))) throw err
      await this.send(to, w, signal)
    })
  }

  private async send(to: NodeId, w: GossipWire, signal: AbortSignal): Promise<void> {
    const authority = this.router.authorityOf(to) ?? this.book.authorityOf(to)
    if (authority === undefined) {
      this.n.dropped++
      return
    }
    await this.router.send({ type: KLPMessageType.PEER_DISCOVERY, target: `klp://${authority}${GOSSIP_PATH}`, sourcePath: GOSSIP_PATH, data: gossipPayloadValue(w, this.o.limits) }, { signal })
    this.n.sent++
  }

  /** A GRAFT asked for `message`: the router sends its held signed bytes to the neighbour. */
  private async graft(to: NodeId, message: KLPMessage, signal: AbortSignal): Promise<void> {
    if (this.router.relayBroadcast === undefined) {
      this.n.graftFailures++
      return
    }
    try {
      await this.router.relayBroadcast(to, message, { signal })
      this.n.grafted++
    } catch (err) {
      this.n.graftFailures++
      this.log.debug('gossip: graft not served', { to, err: errName(err) })
    }
  }

  /** Dials a peer from its record (one dial per peer at once, bounded); true once connected. */
  private connect(did: NodeId): Promise<boolean> {
    if (this.connected.has(did)) return Promise.resolve(true)
    const pending = this.dialing.get(did)
    if (pending !== undefined) return pending
    const addrs = this.book.addressesOf(did)
    if (addrs.length === 0 || this.dialing.size >= this.o.maxDials) return Promise.resolve(false)
    const p = (async (): Promise<boolean> => {
      for (const addr of addrs) {
        this.n.dials++
        const ac = new AbortController()
        const timer = this.clock.setTimeout(() => ac.abort(), this.o.dialTimeoutMs, { unref: true })
        try {
          await this.router.dial(addr, { remotePeer: did, signal: AbortSignal.any([ac.signal, this.stopController.signal]) })
          this.connected.add(did)
          return true
        } catch (err) {
          this.n.dialFailures++
          this.log.debug('gossip: dial failed', { did, addr, err: errName(err) })
        } finally {
          this.clock.clearTimeout(timer)
        }
      }
      return false
    })()
    this.dialing.set(did, p)
    void p.finally(() => this.dialing.delete(did))
    return p
  }
}

/**
 * js-libp2p style factory: `gossipService(init)(components)`. Nothing happens before `start()`,
 * which signs (or takes) this node's record, registers the handler on `klp://<self>/gossip`,
 * installs the broadcast strategy and, by default, joins through a connected neighbour.
 */
export function gossipService(init: GossipServiceInit = {}): (components: GossipServiceComponents) => GossipService {
  return (components) => new DefaultGossipService(init, components)
}
