/**
 * Hellos and routing: each neighbour's signed hello binds its authority to its DID (trust on first
 * use, refused when it conflicts with a pin) and carries its routes (distance vector, damped per
 * neighbour). Hellos are resent until the neighbour's arrived, re-advertised periodically, and
 * after route changes (coalesced). Internal.
 */
import {
  AbortError,
  ConnectionClosedError,
  KLPMessageType,
  MessagePriority,
  TimeoutError,
  TrustObservation,
  type Connection,
  type KLPMessage,
  type KLPValue,
  type PeerInfo,
  type TimerHandle,
} from '@kos-mesh/interface'
import { decodeMessage, encodeMessage, verifyMessage } from '@kos-mesh/klp-codec'
import type { MessageBuilder } from './builder.js'
import type { RouterCore } from './core.js'
import { EnvelopeKind, encodeEnvelope } from './envelope.js'
import { AuthorityConflictError } from './errors.js'
import { bodyOf, errName, verifyReason } from './messages.js'
import { RejectReason } from './reasons.js'
import type { AdvertisedRoute } from './routing-table.js'
import { TokenBucket } from './token-bucket.js'

/** Routes as the hello carries them: `[authority, hops, authority, hops, ...]`. */
function flatRoutes(routes: readonly AdvertisedRoute[]): KLPValue[] {
  const out: KLPValue[] = new Array(routes.length * 2)
  for (let i = 0; i < routes.length; i++) {
    out[2 * i] = routes[i]!.authority
    out[2 * i + 1] = routes[i]!.hops
  }
  return out
}

const HELLO_CONTENT_TYPE = 'application/vnd.kos-mesh.router-hello+cbor'
const HELLO_PATH = '/.router/hello'
/** Neighbours whose route-change buckets are remembered (across reconnects). */
const ROUTE_BUCKETS = 4096

export class Hellos {
  /** Connection ids whose remote hello was accepted. */
  readonly identified = new Set<string>()
  private readonly lastHello = new Map<string, number>()
  private readonly waiters = new Map<string, Array<(err?: Error) => void>>()
  /** Per neighbour DID: route-set changes allowed (damping). Kept across reconnects, bounded. */
  private readonly routeBuckets = new Map<string, TokenBucket>()
  /** The latest damped advertisement per neighbour, applied when its bucket refills. */
  private readonly dampedRoutes = new Map<string, AdvertisedRoute[]>()
  private readonly timers = new Set<TimerHandle>()
  private routeTimer: TimerHandle | undefined
  private refreshTimer: TimerHandle | undefined
  /** Per-call controllers of hellos being verified (aborted on stop, removed when done). */
  private readonly controllers = new Set<AbortController>()

  constructor(
    private readonly core: RouterCore,
    private readonly builder: MessageBuilder,
    private readonly peerInfo: (conn: Connection) => PeerInfo,
  ) {}

  start(): void {
    const every = this.core.cfg.routeRefreshMs
    if (every <= 0) return
    const tick = (): void => {
      this.refreshTimer = this.core.clock.setTimeout(tick, every, { unref: true })
      this.advertiseAll()
    }
    this.refreshTimer = this.core.clock.setTimeout(tick, every, { unref: true })
  }

  stop(reason: Error): void {
    const clock = this.core.clock
    for (const c of this.controllers) c.abort(reason)
    this.controllers.clear()
    clock.clearTimeout(this.routeTimer)
    this.routeTimer = undefined
    clock.clearTimeout(this.refreshTimer)
    this.refreshTimer = undefined
    for (const t of this.timers) clock.clearTimeout(t)
    this.timers.clear()
    this.dampedRoutes.clear()
    this.identified.clear()
    this.lastHello.clear()
  }

  /** A neighbour left (its last connection closed). */
  forget(did: string): void {
    this.lastHello.delete(did)
    this.dampedRoutes.delete(did)
  }

  /** A new connection: send the hello now and until the neighbour's arrived. */
  greet(conn: Connection): void {
    void this.send(conn)
    const clock = this.core.clock
    const deadline = clock.now() + this.core.cfg.helloTimeoutMs
    const retry = (): void => {
      this.timers.delete(handle)
      if (!this.core.started || conn.status !== 'open' || this.identified.has(conn.id) || clock.now() > deadline) return
      void this.send(conn)
      handle = clock.setTimeout(retry, this.core.cfg.helloRetryMs, { unref: true })
      this.timers.add(handle)
    }
    let handle = clock.setTimeout(retry, this.core.cfg.helloRetryMs, { unref: true })
    this.timers.add(handle)
  }

  /** Resolves once the connection's hello was accepted; rejects (and aborts it) on timeout, abort, close or conflict. */
  waitFor(conn: Connection, signal?: AbortSignal): Promise<void> {
    const clock = this.core.clock
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        clock.clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        const list = this.waiters.get(conn.id)
        if (list !== undefined) {
          const i = list.indexOf(ok)
          if (i >= 0) list.splice(i, 1)
          if (list.length === 0) this.waiters.delete(conn.id)
        }
        if (err === undefined) resolve()
        else {
          conn.abort(err)
          reject(err)
        }
      }
      const ok = (err?: Error): void => done(err)
      const onAbort = (): void => done(new AbortError(undefined, { cause: signal?.reason }))
      const ms = this.core.cfg.helloTimeoutMs
      const timer = clock.setTimeout(() => done(new TimeoutError(`expected a hello within ${ms} ms, got none`)), ms)
      signal?.addEventListener('abort', onAbort, { once: true })
      const list = this.waiters.get(conn.id) ?? []
      list.push(ok)
      this.waiters.set(conn.id, list)
      conn.closed.then(() => {
        if (this.waiters.get(conn.id)?.includes(ok) === true) done(new ConnectionClosedError('connection closed before the hello'))
      }, () => {})
    })
  }

  advertiseAll(): void {
    const table = this.core.table
    for (const did of table.peers()) {
      const c = table.connection(did)
      if (c !== undefined) void this.send(c)
    }
  }

  private async send(conn: Connection): Promise<void> {
    const core = this.core
    try {
      const routes = core.table.advertisement(core.authority, conn.remotePeer)
      const msg = await this.builder.build({
        type: KLPMessageType.PEER_DISCOVERY,
        target: { scheme: 'klp', authority: core.authority, path: HELLO_PATH },
        sourcePath: HELLO_PATH,
        contentType: HELLO_CONTENT_TYPE,
        priority: MessagePriority.CRITICAL,
        data: {
          authority: core.authority,
          known: this.identified.has(conn.id),
          routes: flatRoutes(routes),
        },
      })
      core.post(conn, encodeEnvelope(EnvelopeKind.HELLO, 0, 0, encodeMessage(msg)))
    } catch (err) {
      core.log.debug('hello not sent', { peer: conn.remotePeer, err: errName(err) })
    }
  }

  scheduleRouteUpdate(): void {
    const core = this.core
    if (this.routeTimer !== undefined || !core.started) return
    this.routeTimer = core.clock.setTimeout(() => {
      this.routeTimer = undefined
      this.advertiseAll()
    }, core.cfg.routeUpdateDelayMs, { unref: true })
  }

  /** A hello frame from a neighbour. */
  async receive(conn: Connection, frame: Uint8Array): Promise<void> {
    const core = this.core
    let msg: KLPMessage
    try {
      msg = decodeMessage(bodyOf(frame), core.cfg.decodeOptions)
    } catch {
      core.observe(conn.remotePeer, TrustObservation.INVALID_MESSAGE)
      return core.reject(RejectReason.MALFORMED, conn.remotePeer)
    }
    const id = msg.metadata.message_id
    if (core.isExpired(msg, core.clock.now())) return core.reject(RejectReason.EXPIRED, conn.remotePeer, id)
    if (core.didOf(msg.signer) !== conn.remotePeer) return core.reject(RejectReason.SOURCE_MISMATCH, conn.remotePeer, id)
    const last = this.lastHello.get(conn.remotePeer)
    if (last !== undefined && msg.timestamp < last) return core.reject(RejectReason.REPLAY, conn.remotePeer, id)
    // a per-call signal (aborted on stop, dropped afterwards): many concurrent hellos must not
    // pile listeners onto one long-lived signal
    const controller = new AbortController()
    this.controllers.add(controller)
    let bad: string | undefined
    try {
      await verifyMessage(msg, core.verifier, { signal: controller.signal })
    } catch (err) {
      bad = controller.signal.aborted ? '' : verifyReason(err)
    } finally {
      this.controllers.delete(controller)
    }
    if (bad === '' || !core.started) return // stopped meanwhile
    if (bad !== undefined) {
      if (bad === RejectReason.INVALID_SIGNATURE) core.observe(conn.remotePeer, TrustObservation.FORGED_MESSAGE)
      return core.reject(bad, conn.remotePeer, id)
    }
    // hellos are verified concurrently: a newer one may have been applied meanwhile
    const latest = this.lastHello.get(conn.remotePeer)
    if (latest !== undefined && msg.timestamp < latest) return core.reject(RejectReason.REPLAY, conn.remotePeer, id)
    const data = msg.payload.data as Record<string, KLPValue> | null
    const authority = data?.authority
    const routesIn = data?.routes
    if (typeof authority !== 'string' || authority !== msg.source.authority || !Array.isArray(routesIn)) {
      core.observe(conn.remotePeer, TrustObservation.INVALID_MESSAGE)
      return core.reject(RejectReason.MALFORMED, conn.remotePeer, id)
    }
    const peer = conn.remotePeer
    // trust on first use: the authority is pinned to the first DID that claims it; a claim from
    // another DID is refused and changes nothing
    const claim = authority === core.authority ? { ok: false as const, reason: 'authority_pinned' as const, pinnedTo: core.did } : core.table.claim(authority, peer)
    if (!claim.ok) {
      core.reject(RejectReason.AUTHORITY_CONFLICT, peer, id)
      core.log.warn('hello refused: authority conflict', { authority, did: peer, reason: claim.reason, pinnedTo: claim.pinnedTo })
      const err = new AuthorityConflictError(claim.reason === 'did_pinned'
        ? `expected ${peer} to claim ${claim.pinnedTo ?? 'its pinned authority'}, got ${authority}`
        : claim.reason === 'pins_full'
          ? `expected room for a new authority pin, got ${core.table.pinCount} pins and none evictable`
          : `expected ${authority} to be claimed by ${claim.pinnedTo ?? 'its pinned DID'}, got ${peer}`)
      const waiters = this.waiters.get(conn.id)
      if (waiters !== undefined) for (const w of [...waiters]) w(err)
      if (conn.status === 'open') conn.abort(err)
      return
    }
    // routes travel flat: [authority, hops, authority, hops, ...] (half the CBOR of a map per
    // route); a list of { authority, hops } maps (the first format) is still read
    const routes: AdvertisedRoute[] = []
    let invalidRoutes = 0
    const list = routesIn as KLPValue[]
    const asMaps = list.length > 0 && list[0] !== null && typeof list[0] === 'object'
    if (!asMaps && list.length % 2 !== 0) {
      core.observe(conn.remotePeer, TrustObservation.INVALID_MESSAGE)
      return core.reject(RejectReason.MALFORMED, conn.remotePeer, id)
    }
    const step = asMaps ? 1 : 2
    for (let i = 0; i < list.length; i += step) {
      let a: KLPValue | undefined
      let hops: KLPValue | undefined
      if (asMaps) {
        const o = list[i] as Record<string, KLPValue> | null
        if (o === null || typeof o !== 'object') continue
        a = o.authority
        hops = o.hops
      } else {
        a = list[i]
        hops = list[i + 1]
      }
      if (typeof a !== 'string' || typeof hops !== 'number' || !Number.isInteger(hops) || hops < 0) continue
      if (a === core.authority) continue
      // only the neighbour itself is 0 hops away from the neighbour
      if (hops === 0 && a !== authority) {
        invalidRoutes++
        continue
      }
      routes.push({ authority: a, hops })
    }
    if (invalidRoutes > 0) core.reject(RejectReason.INVALID_ROUTE, peer, id)
    this.lastHello.set(peer, msg.timestamp)
    // the first hello on a connection identifies the peer, even when its authority was already
    // bound (a pin restored after a restart): services wait for this event
    const firstOnConnection = !this.identified.has(conn.id)
    this.identified.add(conn.id)
    if (data?.known !== true) void this.send(conn)
    const before = core.table.authorityOf(peer)
    let changed = false
    const next = core.table.filterAdvertised(peer, routes)
    if (!core.table.differs(peer, next)) {
      this.dampedRoutes.delete(peer) // the newest advertisement is the current one
    } else if (this.routeChangeAllowed(peer)) {
      this.dampedRoutes.delete(peer)
      changed = core.table.applyAdvertised(peer, next)
    } else {
      this.damp(peer, routes, id)
    }
    if (firstOnConnection || before !== authority || claim.pinned) {
      core.emit('peer:identify', this.peerInfo(conn))
      this.scheduleRouteUpdate()
    } else if (changed) {
      this.scheduleRouteUpdate()
    }
    const waiters = this.waiters.get(conn.id)
    if (waiters !== undefined) for (const w of [...waiters]) w()
  }

  /**
   * A damped advertisement: counted, and only the neighbour's latest one is kept and applied
   * when its bucket has a token again (so a flapping neighbour changes routes at most
   * `maxRouteChangesPerMinute` times a minute, and an honest one still converges).
   */
  private damp(peer: string, routes: AdvertisedRoute[], id: string): void {
    const core = this.core
    core.reject(RejectReason.ROUTE_DAMPED, peer, id)
    const had = this.dampedRoutes.has(peer)
    this.dampedRoutes.set(peer, routes)
    if (had) return
    const b = this.routeBuckets.get(peer)
    const wait = Math.max(1, b === undefined ? 0 : b.waitTime(core.clock.now()))
    const gen = core.gen
    const handle = core.clock.setTimeout(() => {
      this.timers.delete(handle)
      const latest = this.dampedRoutes.get(peer)
      this.dampedRoutes.delete(peer)
      if (latest === undefined || gen !== core.gen || !core.started || core.table.connection(peer) === undefined) return
      const next = core.table.filterAdvertised(peer, latest)
      if (!core.table.differs(peer, next)) return
      if (!this.routeChangeAllowed(peer)) return this.damp(peer, latest, id)
      if (core.table.applyAdvertised(peer, next)) this.scheduleRouteUpdate()
    }, wait, { unref: true })
    this.timers.add(handle)
  }

  /** Route-flap damping: one token per route-set change of a neighbour. */
  private routeChangeAllowed(did: string): boolean {
    const max = this.core.cfg.maxRouteChangesPerMinute
    if (max === 0) return true
    const now = this.core.clock.now()
    let b = this.routeBuckets.get(did)
    if (b === undefined) {
      if (this.routeBuckets.size >= ROUTE_BUCKETS) this.routeBuckets.delete(this.routeBuckets.keys().next().value as string)
      b = new TokenBucket({ ratePerSec: max / 60, burst: max }, now)
      this.routeBuckets.set(did, b)
    }
    return b.take(now)
  }
}
