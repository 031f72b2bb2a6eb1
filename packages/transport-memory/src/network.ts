/**
 * The network simulator shared by the memory transports of one process: listener registry, link
 * conditions (defaults + per directed link), partitions, crashes, metrics, and the clock.
 * The link model is in links.ts, the counters and trace events in metrics.ts; this module holds
 * the network object: registry, dialing, the frame path (`Wire`) and the clock.
 */
import { InvalidParametersError, PeerMismatchError, UnreachableError, type Clock } from '@kos-mesh/interface'
import { formatMemoryAddress } from './address.js'
import { MemoryConnection, type ConnectionLimits, type Wire } from './connection.js'
import { AddressInUseError, ConnectionResetError } from './errors.js'
import { LinkTable, type LinkConditions, type LinkState } from './links.js'
import { zeroMetrics, type NetworkMetrics, type TraceEvent } from './metrics.js'
import { Scheduler, type RunOptions, type TimeMode } from './scheduler.js'

export { PERFECT_LINK, type LinkConditions } from './links.js'
export type { NetworkMetrics, TraceEvent } from './metrics.js'

/** Options of `createMemoryNetwork`. */
export interface MemoryNetworkInit {
  /** Seed of every link's PRNG. Default 0. */
  seed?: number | string
  /** Conditions of every link without an override. Default: a perfect link (no loss, no delay). */
  defaults?: Partial<LinkConditions>
  /** `real` (wall clock, timers) or `virtual` (discrete events, advanced by `runFor`/`advance`). Default `real`. */
  time?: TimeMode
  /** Virtual time at start, ms since the epoch. Default 1767225600000 (2026-01-01T00:00:00Z). */
  startTime?: number
}

/**
 * The simulated network that memory transports attach to: per-link conditions from a seeded PRNG (latency,
 * loss, duplication, reordering, bandwidth), partitions and crashes, real or virtual time, traces and
 * counters.
 */
export interface MemoryNetwork {
  readonly seed: string
  readonly time: TimeMode
  /**
   * Network time and timers (virtual in virtual mode): the interface `Clock`, to hand to routers,
   * discovery and services so that they run in the network's time.
   */
  readonly clock: Clock
  /** A snapshot of the counters. */
  readonly metrics: NetworkMetrics
  /** Scheduled events (deliveries, timers) not yet run. */
  readonly pendingEvents: number
  /** Replaces the default conditions (missing fields keep the perfect-link values). */
  setDefaults(conditions: Partial<LinkConditions>): void
  /** Overrides the conditions of the directed link `from` -> `to` (peer ids). Missing fields come from the defaults. */
  setLink(from: string, to: string, conditions: Partial<LinkConditions>): void
  /** Removes the override of `from` -> `to`. */
  clearLink(from: string, to: string): void
  /** The effective conditions of `from` -> `to`. */
  getLink(from: string, to: string): LinkConditions
  /** Cuts every link between a member of `groupA` and a member of `groupB`, both ways, until `heal()`. */
  partition(groupA: Iterable<string>, groupB: Iterable<string>): void
  /** Cuts every link of `peer`, both ways, until `heal()`. */
  isolate(peer: string): void
  /** Removes every partition and isolation. */
  heal(): void
  /** Whether frames from `from` to `to` pass now (no partition or isolation cuts the link). */
  isReachable(from: string, to: string): boolean
  /** Crashes a node: every transport with this peer id loses its listeners and connections (the remotes see a reset) and is closed. */
  crash(peer: string): void
  /** Virtual time: advance `ms`, yielding to the event loop between event times (or `stepMs` windows). */
  runFor(ms: number, options?: RunOptions): Promise<number>
  /** Virtual time: advance `ms` synchronously (promise callbacks do not run in between). */
  advance(ms: number): number
  /** Virtual time: run until no event is pending (at most `maxMs`, default 1 h). Returns virtual ms elapsed. */
  runUntilIdle(options?: RunOptions & { maxMs?: number }): Promise<number>
  /** Subscribes to deliveries, drops and duplicates. Returns an unsubscribe function. */
  onTrace(listener: (event: TraceEvent) => void): () => void
  /** Sets every counter of `metrics()` back to zero. */
  resetMetrics(): void
}

/** What the network needs from a transport. */
export interface NetworkNode {
  readonly peerId: string
  readonly limits: ConnectionLimits
  adopt(conn: MemoryConnection): void
  crashed(): void
}

interface ListenerEntry {
  node: NetworkNode
  onConnection: (conn: MemoryConnection) => void
}

export class MemoryNetworkImpl implements MemoryNetwork, Wire {
  readonly seed: string
  readonly time: TimeMode
  readonly clock: Scheduler
  private readonly links: LinkTable
  private readonly listeners = new Map<string, ListenerEntry>()
  private readonly nodes = new Map<string, Set<NetworkNode>>()
  private m = zeroMetrics()
  private readonly tracers = new Set<(e: TraceEvent) => void>()
  private nextConnId = 0
  private nextName = 0

  constructor(init: MemoryNetworkInit = {}) {
    this.seed = String(init.seed ?? 0)
    this.time = init.time ?? 'real'
    if (this.time !== 'real' && this.time !== 'virtual') throw new InvalidParametersError(`expected time 'real' or 'virtual', got ${String(this.time)}`)
    const startTime = init.startTime ?? Date.UTC(2026, 0, 1)
    this.clock = new Scheduler(this.time, startTime)
    this.links = new LinkTable(this.seed, init.defaults)
  }

  get metrics(): NetworkMetrics {
    return { ...this.m, droppedByReason: { ...this.m.droppedByReason } }
  }

  get pendingEvents(): number {
    return this.clock.pending
  }

  resetMetrics(): void {
    const open = this.m.openConnectionEnds
    this.m = zeroMetrics()
    this.m.openConnectionEnds = open
  }

  onTrace(listener: (event: TraceEvent) => void): () => void {
    this.tracers.add(listener)
    return () => { this.tracers.delete(listener) }
  }

  private trace(e: TraceEvent): void {
    for (const t of this.tracers) t(e)
  }

  // ---------------------------------------------------------------- conditions (the link model: links.ts)

  setDefaults(conditions: Partial<LinkConditions>): void { this.links.setDefaults(conditions) }
  setLink(from: string, to: string, conditions: Partial<LinkConditions>): void { this.links.setLink(from, to, conditions) }
  clearLink(from: string, to: string): void { this.links.clearLink(from, to) }
  getLink(from: string, to: string): LinkConditions { return this.links.getLink(from, to) }
  partition(groupA: Iterable<string>, groupB: Iterable<string>): void { this.links.partition(groupA, groupB) }
  isolate(peer: string): void { this.links.isolate(peer) }
  heal(): void { this.links.heal() }
  isReachable(from: string, to: string): boolean { return this.links.isReachable(from, to) }

  crash(peer: string): void {
    const nodes = this.nodes.get(peer)
    if (nodes === undefined) return
    for (const node of [...nodes]) node.crashed()
  }

  // ---------------------------------------------------------------- virtual time

  runFor(ms: number, options?: RunOptions): Promise<number> {
    return this.clock.runFor(ms, options)
  }

  advance(ms: number): number {
    return this.clock.advance(ms)
  }

  runUntilIdle(options?: RunOptions & { maxMs?: number }): Promise<number> {
    return this.clock.runUntilIdle(options)
  }

  // ---------------------------------------------------------------- registry (used by transports)

  register(node: NetworkNode): void {
    let set = this.nodes.get(node.peerId)
    if (set === undefined) {
      set = new Set()
      this.nodes.set(node.peerId, set)
    }
    set.add(node)
  }

  unregister(node: NetworkNode): void {
    const set = this.nodes.get(node.peerId)
    set?.delete(node)
    if (set?.size === 0) this.nodes.delete(node.peerId)
  }

  listen(name: string, node: NetworkNode, onConnection: (conn: MemoryConnection) => void): string {
    if (name === '') {
      do name = `auto-${++this.nextName}`
      while (this.listeners.has(name))
    }
    if (this.listeners.has(name)) throw new AddressInUseError(`expected a free name, got "${name}" already listening`)
    this.listeners.set(name, { node, onConnection })
    return name
  }

  unlisten(name: string, node: NetworkNode): void {
    if (this.listeners.get(name)?.node === node) this.listeners.delete(name)
  }

  async dial(dialer: NetworkNode, name: string, expectedPeer: string | undefined, signal: AbortSignal | undefined): Promise<MemoryConnection> {
    this.m.dials++
    try {
      let entry = this.reachableListener(dialer, name)
      // The connection request travels one way, the answer the other way (one round trip).
      await this.clock.sleep(this.links.link(dialer.peerId, entry.node.peerId).override?.latencyMs ?? this.links.defaults.latencyMs, { signal })
      entry = this.reachableListener(dialer, name)
      const listenerPeer = entry.node.peerId
      if (expectedPeer !== undefined && expectedPeer !== listenerPeer) {
        throw new PeerMismatchError(`expected remote peer ${expectedPeer}, got ${listenerPeer}`)
      }
      const n = ++this.nextConnId
      const dialerAddr = formatMemoryAddress(`~${n}`)
      const listenAddr = formatMemoryAddress(name)
      const outbound = new MemoryConnection({
        id: `mem-${n}-out`, localPeer: dialer.peerId, remotePeer: listenerPeer, localAddr: dialerAddr, remoteAddr: listenAddr,
        direction: 'outbound', wire: this, limits: dialer.limits,
      })
      const inbound = new MemoryConnection({
        id: `mem-${n}-in`, localPeer: listenerPeer, remotePeer: dialer.peerId, localAddr: listenAddr, remoteAddr: dialerAddr,
        direction: 'inbound', wire: this, limits: entry.node.limits,
      })
      outbound.peer = inbound
      inbound.peer = outbound
      this.m.openConnectionEnds += 2
      entry.node.adopt(inbound)
      try {
        entry.onConnection(inbound)
      } catch (err) {
        inbound.abort(err instanceof Error ? err : new Error(String(err)))
      }
      try {
        await this.clock.sleep(this.links.link(listenerPeer, dialer.peerId).override?.latencyMs ?? this.links.defaults.latencyMs, { signal })
      } catch (err) {
        outbound.abort(err as Error)
        throw err
      }
      dialer.adopt(outbound)
      return outbound
    } catch (err) {
      this.m.dialFailures++
      throw err
    }
  }

  private reachableListener(dialer: NetworkNode, name: string): ListenerEntry {
    const entry = this.listeners.get(name)
    if (entry === undefined) throw new UnreachableError(`expected a listener at ${formatMemoryAddress(name)}, got none`)
    if (!this.links.isReachable(dialer.peerId, entry.node.peerId)) {
      throw new UnreachableError(`expected a route from ${dialer.peerId} to ${formatMemoryAddress(name)}, got a partition`)
    }
    return entry
  }

  // ---------------------------------------------------------------- wire

  private drop(src: MemoryConnection, bytes: number, reason: 'loss' | 'partition' | 'closed'): void {
    this.m.framesDropped++
    this.m.bytesDropped += bytes
    this.m.droppedByReason[reason]++
    if (this.tracers.size > 0) {
      this.trace({ type: 'drop', at: this.clock.now(), from: src.localPeer, to: src.remotePeer, connectionId: src.id, bytes, reason })
    }
  }

  private arrive(src: MemoryConnection, frame: Uint8Array, accounted: number, ordered: boolean): void {
    const dst = src.peer
    src.out.pending--
    if (!this.links.isReachable(src.localPeer, src.remotePeer)) {
      dst.release(accounted)
      this.drop(src, frame.byteLength, 'partition')
      return
    }
    if (!dst.deliver(frame, accounted)) {
      this.drop(src, frame.byteLength, 'closed')
      return
    }
    this.m.framesDelivered++
    this.m.bytesDelivered += frame.byteLength
    if (this.tracers.size > 0) {
      this.trace({ type: 'deliver', at: this.clock.now(), from: src.localPeer, to: src.remotePeer, connectionId: src.id, bytes: frame.byteLength })
    }
    void ordered
  }

  private linkOf(src: MemoryConnection): LinkState {
    let link = src.out.link as LinkState | undefined
    if (link === undefined) {
      link = this.links.link(src.localPeer, src.remotePeer)
      src.out.link = link
    }
    return link
  }

  transmit(src: MemoryConnection, frame: Uint8Array): void {
    const link = this.linkOf(src)
    const c = link.override ?? this.links.defaults
    const r = link.random
    // Always five draws per frame, so one frame's fate never shifts the stream of the next ones.
    const uLoss = r()
    const uDup = r()
    const uReorder = r()
    const uJitter = r()
    const uExtra = r()
    const bytes = frame.byteLength
    this.m.framesSent++
    this.m.bytesSent += bytes
    const now = this.clock.now()
    let sent = now
    if (c.bandwidthBytesPerSec !== Infinity) {
      sent = Math.max(now, link.busyUntil) + (bytes * 1000) / c.bandwidthBytesPerSec
      link.busyUntil = sent
    }
    if (!this.links.isReachable(src.localPeer, src.remotePeer)) {
      this.drop(src, bytes, 'partition')
      return
    }
    if (uLoss < c.loss) {
      this.drop(src, bytes, 'loss')
      return
    }
    const dst = src.peer
    const ch = src.out
    dst.inboundBytes += bytes
    const arrival = sent + c.latencyMs + uJitter * c.jitterMs
    const holdBack = Math.max(1, c.latencyMs + c.jitterMs)
    let at: number
    if (uReorder < c.reorder) {
      this.m.framesReordered++
      at = arrival + holdBack * (1 + uExtra)
      ch.pending++
      this.clock.at(at, () => this.arrive(src, frame, bytes, false))
    } else {
      at = Math.max(arrival, ch.lastOrderedAt)
      ch.lastOrderedAt = at
      if (at <= now && ch.pending === 0) {
        ch.pending++
        this.arrive(src, frame, bytes, true)
      } else {
        ch.pending++
        this.clock.at(at, () => this.arrive(src, frame, bytes, true))
      }
    }
    if (at > ch.maxScheduledAt) ch.maxScheduledAt = at
    if (uDup < c.duplicate) {
      this.m.framesDuplicated++
      this.m.bytesDuplicated += bytes
      const copy = frame.slice()
      const dupAt = at + holdBack * uExtra
      if (dupAt > ch.maxScheduledAt) ch.maxScheduledAt = dupAt
      ch.pending++
      if (this.tracers.size > 0) {
        this.trace({ type: 'duplicate', at: now, from: src.localPeer, to: src.remotePeer, connectionId: src.id, bytes })
      }
      this.clock.at(dupAt, () => this.arrive(src, copy, 0, false))
    }
  }

  control(src: MemoryConnection, kind: 'fin' | 'rst'): void {
    const c = this.linkOf(src).override ?? this.links.defaults
    const now = this.clock.now()
    const dst = src.peer
    if (kind === 'rst') {
      if (c.latencyMs <= 0) dst.reset(new ConnectionResetError(`expected an open connection, got reset by the remote (${dst.id})`))
      else this.clock.at(now + c.latencyMs, () => dst.reset(new ConnectionResetError(`expected an open connection, got reset by the remote (${dst.id})`)))
      return
    }
    const ch = src.out
    const at = Math.max(now + c.latencyMs, ch.maxScheduledAt, ch.lastOrderedAt)
    if (at <= now && ch.pending === 0) dst.remoteClosed()
    else this.clock.at(at, () => dst.remoteClosed())
  }

  ended(_conn: MemoryConnection): void {
    this.m.openConnectionEnds--
  }

  /** Stops the wall-clock timer of a real-time network. */
  dispose(): void {
    this.clock.dispose()
  }
}

/** Creates a network simulator. Transports given the same network can reach each other. */
export function createMemoryNetwork(init: MemoryNetworkInit = {}): MemoryNetwork {
  return new MemoryNetworkImpl(init)
}

let globalNetwork: MemoryNetworkImpl | undefined

/** The process-wide real-time network used by transports created without `network`. */
export function defaultMemoryNetwork(): MemoryNetwork {
  globalNetwork ??= new MemoryNetworkImpl()
  return globalNetwork
}
