/**
 * What the node tells its operator about its traffic: connections opened and closed, handshakes
 * refused, dials, messages rejected, tasks served and refused (and the latency of those it
 * sends), and the warning when it has no peer; as rate-limited operator events (`EventLog`) and
 * as counters (`NodeStats`).
 */
import { ProcessingStatus, type Clock, type PeerInfo, type ProcessingResult, type RejectInfo, type TimerHandle } from '@kos-mesh/interface'
import type { Router } from '@kos-mesh/klp-router'
import type { EventLog } from './events.js'
import type { NodeStats } from './node-metrics.js'
import type { RouterObserver } from './observe.js'
import type { PeerReconnection } from './node-reconnect.js'
import { errName, reasonOf } from './reasons.js'

/** Router reject reasons that mean a forged, replayed or hostile message (logged at warn). */
const HOSTILE_REASONS = new Set(['invalid_signature', 'unknown_key', 'source_mismatch', 'replay', 'authority_conflict', 'response_mismatch', 'malformed', 'frame_too_large', 'invalid_route', 'expired', 'ttl_too_long'])
/** Dial errors that mean the peer proved another identity than expected. */
const IDENTITY_ERRORS = new Set(['PeerMismatchError', 'AuthorityConflictError', 'TargetConflictError'])

/** What the activity reporting reads of its node. */
export interface ActivityContext {
  clock: Clock
  events: EventLog
  stats: NodeStats
  reconnection: PeerReconnection
  /** The router, while started. */
  router(): Router | undefined
  isStarted(): boolean
  /** How many seeds the node is configured with. */
  seedCount(): number
}

export class NodeActivity {
  /** Set while the node stops (connections closing then are `node_stopping`). */
  stopping = false
  private noPeersTimer: TimerHandle | undefined
  /** Error name of each connection the transport tore down (read at peer:disconnect); bounded. */
  private readonly closeReasons = new Map<string, string>()

  constructor(private readonly c: ActivityContext) {}

  /** The hooks of the transports' logger (see `transportLogger`). */
  transportHooks(): { handshakeRefused: (remote: string, reason: string) => void; connectionAborted: (id: string, reason: string) => void } {
    return {
      handshakeRefused: (remote, reason) => this.handshakeRefused('inbound', remote, reason),
      connectionAborted: (id, reason) => {
        if (this.closeReasons.size >= 1024) this.closeReasons.delete(this.closeReasons.keys().next().value as string)
        this.closeReasons.set(id, reason)
      },
    }
  }

  /** The observer of the router services see (see `observeRouter`). */
  routerObserver(): RouterObserver {
    return {
      dialed: (addr, ms, r) => this.dialed(addr, ms, r),
      taskHandled: (from, capability, ms, r, err) => this.taskHandled(from, capability, ms, r, err),
      discoveryActivity: () => this.c.reconnection.scheduleAddressSync(),
    }
  }

  /** Listens to the router's peer and reject events; resolves with the function that stops listening. */
  listen(router: Router): () => void {
    const onConnect = (e: CustomEvent<PeerInfo>): void => this.peerConnected(e.detail)
    const onIdentified = (e: CustomEvent<PeerInfo>): void => this.peerIdentified(e.detail)
    const onDisconnect = (e: CustomEvent<PeerInfo & { reason?: string }>): void => this.peerDisconnected(e.detail)
    const onRejected = (e: CustomEvent<RejectInfo>): void => this.rejected(e.detail)
    router.addEventListener('peer:connect', onConnect)
    router.addEventListener('peer:identify', onIdentified)
    router.addEventListener('peer:disconnect', onDisconnect)
    router.addEventListener('message:rejected', onRejected)
    return () => {
      router.removeEventListener('peer:connect', onConnect)
      router.removeEventListener('peer:identify', onIdentified)
      router.removeEventListener('peer:disconnect', onDisconnect)
      router.removeEventListener('message:rejected', onRejected)
    }
  }

  private peerConnected(p: PeerInfo): void {
    this.c.stats.connectionsOpened++
    this.c.clock.clearTimeout(this.noPeersTimer)
    this.noPeersTimer = undefined
    this.c.reconnection.connected(p.did)
    this.c.events.emit('connection', 'info', 'connection opened', { peer: p.did, connection: p.connectionId, ...(p.authority === undefined ? {} : { authority: p.authority }) })
  }

  private peerIdentified(p: PeerInfo): void {
    const router = this.c.router()
    if (router === undefined) return
    const authority = p.authority ?? router.routingTable.authorityOf(p.did)
    this.c.events.emit('connection', 'debug', 'peer identified', { peer: p.did, ...(authority === undefined ? {} : { authority }) })
    this.c.reconnection.identified(p.did, authority)
  }

  private peerDisconnected(p: PeerInfo & { reason?: string }): void {
    const fromTransport = this.closeReasons.get(p.connectionId)
    this.closeReasons.delete(p.connectionId)
    // the router names the error that ended the read loop (`ConnectionResetError`), or `closed`
    const fromRouter = typeof p.reason === 'string' && p.reason !== 'closed' ? reasonOf(p.reason) : undefined
    const reason = fromRouter ?? (fromTransport !== undefined ? reasonOf(fromTransport) : this.stopping ? 'node_stopping' : 'closed')
    const stats = this.c.stats
    stats.connectionsClosed.set(reason, (stats.connectionsClosed.get(reason) ?? 0) + 1)
    const router = this.c.router()
    const authority = p.authority ?? router?.routingTable.authorityOf(p.did)
    const redialing = this.c.reconnection.disconnected(p.did)
    this.c.events.emit('connection', 'info', 'connection closed', { peer: p.did, connection: p.connectionId, reason, redialing, ...(authority === undefined ? {} : { authority }) })
    if (router !== undefined && router.peers().length === 0 && !this.stopping) this.warnNoPeers()
  }

  private rejected(r: RejectInfo): void {
    const hostile = HOSTILE_REASONS.has(r.reason)
    this.c.events.emit(`message_rejected.${r.reason}`, hostile ? 'warn' : 'info', hostile ? 'message rejected (forged, replayed or invalid)' : 'message rejected', {
      reason: r.reason,
      from: r.fromPeer,
      ...(r.messageId === undefined ? {} : { message_id: r.messageId }),
    })
  }

  private handshakeRefused(direction: 'inbound' | 'outbound', remote: string, reason: string): void {
    const r = reasonOf(reason)
    this.c.stats.handshakesRefused.set(r, (this.c.stats.handshakesRefused.get(r) ?? 0) + 1)
    this.c.events.emit('handshake_refused', 'warn', 'handshake refused', { direction, remote, reason: r })
  }

  private dialed(addr: string, ms: number, r: { info: PeerInfo } | { error: unknown }): void {
    if ('info' in r) {
      this.c.stats.dials.observe(ms / 1000)
      this.c.reconnection.dialed(r.info.did, addr)
      return
    }
    const name = errName(r.error)
    if (name === 'AbortError') return
    const reason = reasonOf(name)
    this.c.stats.dialsFailed.set(reason, (this.c.stats.dialsFailed.get(reason) ?? 0) + 1)
    if (IDENTITY_ERRORS.has(name)) this.handshakeRefused('outbound', addr, name)
    else this.c.events.emit('dial_failed', 'debug', 'dial failed', { addr, reason })
  }

  private taskHandled(from: string, capability: string | undefined, ms: number, r: ProcessingResult | undefined, err?: unknown): void {
    if (r !== undefined && r.status === ProcessingStatus.PROCESSED) {
      this.c.stats.tasksServed++
      const data = r.response?.payload.data as { agent?: unknown } | undefined
      this.c.events.emit('task_served', 'info', 'task served', { from, capability, agent: typeof data?.agent === 'string' ? data.agent : undefined, duration_ms: ms })
      return
    }
    const reason = r?.reason ?? (err === undefined ? 'rejected' : 'handler_error')
    this.c.stats.tasksRefused.set(reason, (this.c.stats.tasksRefused.get(reason) ?? 0) + 1)
    this.c.events.emit('task_refused', 'info', 'task refused', { from, capability, reason, duration_ms: ms })
  }

  /** Runs `send` (a task this node sends) and observes its latency by outcome. */
  async timeTask<T>(send: () => Promise<T>): Promise<T> {
    const { clock, stats } = this.c
    const t0 = clock.now()
    try {
      const r = await send()
      stats.tasks.observe((clock.now() - t0) / 1000, { outcome: 'completed' })
      return r
    } catch (err) {
      const name = errName(err)
      const outcome = name === 'RemoteRejectedError' ? 'rejected' : /Timeout/.test(name) ? 'timeout' : 'failed'
      // a request refused before it was sent (bad input) is not a request latency
      if (!['InvalidTaskError', 'TaskTooLargeError', 'InvalidParametersError', 'InvalidDidError', 'InvalidAddressError'].includes(name)) {
        stats.tasks.observe((clock.now() - t0) / 1000, { outcome })
      }
      throw err
    }
  }

  /** Warns, some time after start, when the node still has no peer. */
  scheduleNoPeersCheck(): void {
    this.c.clock.clearTimeout(this.noPeersTimer)
    this.noPeersTimer = this.c.clock.setTimeout(() => {
      this.noPeersTimer = undefined
      if (this.c.isStarted() && !this.stopping && (this.c.router()?.peers().length ?? 0) === 0) this.warnNoPeers()
    }, 10_000, { unref: true })
  }

  /** Cancels the pending no-peers check (the node stops). */
  cancelNoPeersCheck(): void {
    this.c.clock.clearTimeout(this.noPeersTimer)
    this.noPeersTimer = undefined
  }

  warnNoPeers(): void {
    const redialing = this.c.reconnection.pending()
    const known = this.c.reconnection.knownCount
    const seeds = this.c.seedCount()
    const hint =
      redialing > 0
        ? 'redialing known peers and seeds with backoff; `kos-mesh status` shows the attempts'
        : known + seeds === 0
          ? 'no seeds and no known peers: give a seed (start --seed tcp://host:port/did:key:...) or `kos-mesh connect` to a peer'
          : 'nothing to redial (no usable address saved); `kos-mesh connect` to a peer'
    this.c.events.emit('no_peers', 'warn', 'no peers connected', { known, seeds, redialing, hint })
  }
}
