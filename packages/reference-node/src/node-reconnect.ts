/**
 * The node's reconnection glue: the peers it remembers (`KnownPeers`, in the store) and the
 * redialing of those peers and of its seeds (`Redialer`), fed by what the router and discovery
 * see (connections, dials, the addresses peers publish in their signed records).
 */
import type { AbortOptions, Clock, Logger, TimerHandle, Transport } from '@kos-mesh/interface'
import type { Router } from '@kos-mesh/klp-router'
import type { PeerDiscovery } from '@kos-mesh/peer-discovery'
import { fromRecordAddress, isUnspecifiedLibp2pHost, parseLibp2pAddress, toRecordAddress } from './addresses.js'
import { NodeNotStartedError } from './errors.js'
import { isUnspecifiedHost } from './config.js'
import type { NodeStore } from './storage/memory.js'
import type { EventLog } from './events.js'
import { KnownPeers, type KnownPeer } from './known-peers.js'
import { Redialer, type ReconnectInit, type RedialState } from './redial.js'
import type { NodeStats } from './node-metrics.js'
import type { UndoSteps } from './node-services.js'
import { errName, reasonOf } from './reasons.js'

/** What the reconnection glue reads of its node. */
export interface ReconnectionContext {
  storage: NodeStore
  log: Logger
  clock: Clock
  events: EventLog
  stats: NodeStats
  /** The node's transports (of the current start). */
  transports(): Transport[]
  /** The router, while started. */
  router(): Router | undefined
  /** The router as services see it (dials timed and reported), while started. */
  dialer(): Router | undefined
  discovery(): PeerDiscovery | undefined
  isStarted(): boolean
  /** True when the operator trusts `did` (its known peer entry is kept over others). */
  isTrusted(did: string): boolean
}

export class PeerReconnection {
  private knownPeers: KnownPeers | undefined
  private redialer: Redialer | undefined
  private addrSyncTimer: TimerHandle | undefined

  constructor(private readonly c: ReconnectionContext) {}

  /** Peers remembered from earlier connections. */
  get knownCount(): number {
    return this.knownPeers?.size ?? 0
  }

  knownList(): KnownPeer[] {
    return this.knownPeers?.list() ?? []
  }

  /** Targets being redialled (not connected). */
  pending(): number {
    return this.redialer?.pending() ?? 0
  }

  redialStates(): RedialState[] {
    return this.redialer?.states() ?? []
  }

  /**
   * Loads the peers this node knew (unless `persistPeers` is false); they are flushed to the
   * store by `undo`.
   */
  async loadKnown(init: { persistPeers?: boolean | undefined; reconnect?: ReconnectInit | undefined }, self: string, undo: UndoSteps, options: AbortOptions): Promise<void> {
    const known =
      init.persistPeers === false
        ? undefined
        : new KnownPeers(this.c.storage, { max: init.reconnect?.maxKnownPeers ?? 256, self, usable: (a) => this.usableAddress(a), protect: (d) => this.c.isTrusted(d), logger: this.c.log })
    if (known !== undefined) {
      const r = await known.load(options)
      if (r.loaded > 0 || r.dropped > 0) this.c.log.info('known peers restored', { known: r.loaded, dropped: r.dropped })
      undo.push(() => known.flush())
    }
    this.knownPeers = known
  }

  /** Starts redialing the known peers and `seeds` (backoff and jitter on the clock); stopped by `undo`. */
  startRedial(reconnect: ReconnectInit, seeds: readonly string[], self: string, router: Router, undo: UndoSteps): void {
    const c = this.c
    const known = this.knownPeers
    const redialer = new Redialer(reconnect, {
      clock: c.clock,
      dial: (addr, did, signal) => this.dialQuiet(addr, did, signal),
      isConnected: (did) => router.peers().some((p) => p.did === did),
      onRedialed: (did, target, attempts) => {
        c.stats.redials++
        c.events.emit('redial', 'info', 'peer redialed', { peer: did, attempts, addr: target.addrs[0], seed: target.seed })
        // pull its table: the rest of the mesh comes back through it
        const discovery = c.discovery()
        if (discovery?.isStarted() === true) void discovery.refresh().catch((err: unknown) => c.log.debug('refresh after redial failed', { err: errName(err) }))
      },
      onFailed: (target, attempts, delayMs, err) => {
        c.stats.redialFailures++
        c.events.emit('redial', attempts >= redialer.settings.maxAttempts ? 'warn' : 'info', 'redial failed', {
          peer: target.did ?? null,
          addrs: target.addrs,
          attempts,
          next_in_ms: delayMs,
          reason: reasonOf(errName(err)),
        })
      },
    })
    for (const p of known?.list() ?? []) if (p.addrs.length > 0) redialer.set({ did: p.did, addrs: p.addrs, seed: false })
    for (const seed of seeds) {
      const i = seed.indexOf('/did:')
      const did = i < 0 ? undefined : seed.slice(i + 1)
      if (did === self) continue
      // with its DID known, the seed is one target with the known peer of that DID
      redialer.set({ ...(did === undefined ? {} : { did }), addrs: [i < 0 ? seed : seed.slice(0, i)], seed: true })
    }
    this.redialer = redialer
    undo.push(() => {
      redialer.stop()
      this.redialer = undefined
    })
    redialer.start()
    const n = redialer.pending()
    if (n > 0) c.events.emit('redial', 'info', 'redialing known peers and seeds', { targets: n, known: known?.size ?? 0, seeds: seeds.length })
  }

  /** Stops redialing at once (a failed start). */
  abortRedial(): void {
    this.redialer?.stop()
    this.redialer = undefined
  }

  /** A connection opened: the peer's target is reset. */
  connected(did: string): void {
    this.redialer?.connected(did)
  }

  /** A peer identified: remembered, with the addresses it publishes. */
  identified(did: string, authority: string | undefined): void {
    const known = this.knownPeers
    if (known === undefined) return
    known.connected(did, this.c.clock.now(), authority, this.recordAddresses(did))
    this.syncRedialTarget(did)
  }

  /** A connection closed: resolves with whether the peer is being redialled. */
  disconnected(did: string): boolean {
    // its latest published addresses, in case no address sync ran since they arrived
    const published = this.recordAddresses(did)
    if (published.length > 0) this.knownPeers?.addAddresses(did, published)
    this.syncRedialTarget(did)
    return this.redialer?.disconnected(did) ?? false
  }

  /** A dial to `addr` reached `did`: the address is remembered. */
  dialed(did: string, addr: string): void {
    this.knownPeers?.addAddresses(did, [addr], true)
    this.syncRedialTarget(did)
  }

  /** An address worth remembering: a transport can dial it and it is not 0.0.0.0 / ::. */
  private usableAddress(addr: string): boolean {
    if (typeof addr !== 'string' || addr.includes('/did:')) return false
    const na = toRecordAddress(addr)
    if (na === undefined || (na.protocol !== 'memory' && na.protocol !== 'libp2p' && isUnspecifiedHost(na.address))) return false
    if (na.protocol === 'libp2p' && isUnspecifiedLibp2pHost(parseLibp2pAddress(addr))) return false
    return this.c.transports().some((t) => t.canDial(addr))
  }

  /** Dials for the redialer: `addr` may end with the DID; resolves with the DID reached. */
  private async dialQuiet(addr: string, did: string | undefined, signal: AbortSignal): Promise<{ did: string }> {
    const router = this.c.dialer()
    if (router === undefined) throw new NodeNotStartedError('expected a started node, got a stopped one')
    const i = addr.indexOf('/did:')
    const base = i < 0 ? addr : addr.slice(0, i)
    const expected = did ?? (i < 0 ? undefined : addr.slice(i + 1))
    const info = await router.dial(base, { signal, ...(expected === undefined ? {} : { remotePeer: expected }) })
    return { did: info.did }
  }

  /** Transport addresses a peer publishes in its signed record (usable ones). */
  private recordAddresses(did: string): string[] {
    const entry = this.c.discovery()?.registry?.get(did)
    const out: string[] = []
    for (const a of entry?.record.node.network_info.addresses ?? []) {
      const t = fromRecordAddress(a)
      if (t !== undefined && this.usableAddress(t)) out.push(t)
    }
    return out
  }

  /** After discovery traffic: the records of connected peers may carry (new) addresses. */
  scheduleAddressSync(): void {
    if (this.addrSyncTimer !== undefined || this.knownPeers === undefined) return
    this.addrSyncTimer = this.c.clock.setTimeout(() => {
      this.addrSyncTimer = undefined
      if (this.c.isStarted()) this.syncAddresses()
    }, 100, { unref: true })
  }

  /** Saves the addresses connected peers publish in their records. */
  syncAddresses(): void {
    for (const p of this.c.router()?.peers() ?? []) {
      const addrs = this.recordAddresses(p.did)
      if (addrs.length === 0) continue
      this.knownPeers?.addAddresses(p.did, addrs)
      this.syncRedialTarget(p.did)
    }
  }

  /** Cancels a pending address sync (the node stops). */
  cancelAddressSync(): void {
    this.c.clock.clearTimeout(this.addrSyncTimer)
    this.addrSyncTimer = undefined
  }

  private syncRedialTarget(did: string): void {
    const p = this.knownPeers?.get(did)
    if (p !== undefined && p.addrs.length > 0) this.redialer?.set({ did, addrs: p.addrs, seed: false })
  }
}
