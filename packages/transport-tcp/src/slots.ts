/**
 * The inbound handshake slots of the TCP transport: which accepted socket may start its handshake
 * now, which waits (unread) and which is refused, and which stalled pending handshake is evicted to
 * make room (also for our own dials). Internal.
 */
import type { Socket } from 'node:net'
import type { Clock, ConnectionHandler, Logger, TimerHandle } from '@kos-mesh/interface'
import { HandshakeTimeoutError } from '@kos-mesh/did-security'
import { formatTcpAddress, ipKey } from './address.js'
import type { TcpConnection } from './connection.js'
import { TooManyConnectionsError } from './errors.js'
import type { TcpListener, WaitingSocket } from './listener.js'
import type { TcpInit } from './options.js'
import type { SecureSession } from './security.js'

/** Shortest delay between two looks at the waiting sockets (timer granularity). */
const MIN_WAIT_TICK_MS = 5

export function bump(m: Map<string, number>, key: string, by: number): void {
  const n = (m.get(key) ?? 0) + by
  if (n <= 0) m.delete(key)
  else m.set(key, n)
}

/** The limits the slots apply: these TcpInit fields, as the transport checked them (defaults applied). */
type SlotLimits = Readonly<Required<Pick<TcpInit<unknown>, 'handshakeTimeoutMs' | 'firstMessageTimeoutMs' | 'maxInboundHandshakes' |
  'maxInboundHandshakesPerIp' | 'maxConnections' | 'maxConnectionsPerIp' | 'handshakeStallMs'>>>

/** What the handshake slots use of their transport (TcpTransport). */
export interface SlotsHost extends SlotLimits {
  readonly clock: Clock
  readonly log: Logger | undefined
  readonly closing: boolean
  /** Connections handshaking or open (both directions). */
  readonly connections: ReadonlySet<TcpConnection>
  /** The ipKey each tracked connection is counted under, with its direction. */
  readonly peers: ReadonlyMap<TcpConnection, { key: string; direction: 'inbound' | 'outbound' }>
  readonly inboundPerIp: ReadonlyMap<string, number>
  readonly listeners: ReadonlySet<TcpListener>
  track(socket: Socket, direction: 'inbound' | 'outbound', remoteAddr: string, key: string, onFirstHandshakeMessage?: () => void): TcpConnection
  untrack(conn: TcpConnection): void
  runHandshake(conn: TcpConnection, role: 'initiator' | 'responder', expected: string | undefined, signal?: AbortSignal): Promise<SecureSession>
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
export class HandshakeSlots {
  constructor(private readonly transport: SlotsHost) {}

  /** Whether pending handshake `c` has gone long enough without progress to be evicted. */
  private isStalled(c: TcpConnection, now: number): boolean {
    return now - c.handshakeProgressAt >= this.stallAfter(c)
  }

  /** A socket that has sent nothing is stalled at once (an honest initiator sends right after connecting). */
  private stallAfter(c: TcpConnection): number {
    return c.handshakeMessages === 0 ? 0 : this.transport.handshakeStallMs
  }

  /**
   * The stalled pending handshake to evict: from `key` only when given, else from the address with
   * the most pending handshakes; among those, the one without progress for the longest.
   */
  pickVictim(listeners: Iterable<TcpListener>, key: string | undefined, now: number): { conn: TcpConnection; listener: TcpListener } | undefined {
    let best: { conn: TcpConnection; listener: TcpListener } | undefined
    let bestLoad = -1
    let bestAt = Infinity
    for (const l of listeners) {
      let load: Map<string, number> | undefined
      if (key === undefined) {
        load = new Map()
        for (const c of l.pending) bump(load, this.transport.peers.get(c)?.key ?? '?', 1)
      }
      for (const c of l.pending) {
        const k = this.transport.peers.get(c)?.key ?? '?'
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

  evict(v: { conn: TcpConnection; listener: TcpListener }): void {
    v.listener.pending.delete(v.conn)
    v.listener.evicted++
    this.transport.untrack(v.conn)
    v.conn.abort(new TooManyConnectionsError(`expected the inbound handshake to progress within ${this.stallAfter(v.conn)} ms while the handshake slots were full, got none (evicted)`))
  }

  private pendingFrom(listener: TcpListener, key: string): number {
    let n = 0
    for (const c of listener.pending) if (this.transport.peers.get(c)?.key === key) n++
    return n
  }

  /** Makes room for one more inbound handshake from `key`, evicting stalled ones if needed. */
  private tryAdmit(listener: TcpListener, key: string, now: number): boolean {
    for (;;) {
      const keyFull = this.pendingFrom(listener, key) >= this.transport.maxInboundHandshakesPerIp || (this.transport.inboundPerIp.get(key) ?? 0) >= this.transport.maxConnectionsPerIp
      const listenerFull = listener.pending.size >= this.transport.maxInboundHandshakes
      const totalFull = this.transport.connections.size >= this.transport.maxConnections
      if (!keyFull && !listenerFull && !totalFull) return true
      // evicting a handshake of the same address frees a per-address and a global slot at once
      const victim = keyFull
        ? this.pickVictim([listener], key, now)
        : this.pickVictim(listenerFull ? [listener] : this.transport.listeners, undefined, now)
      if (victim === undefined) return false
      this.evict(victim)
    }
  }

  /** True when established connections alone fill a limit: waiting could not help, refuse at once. */
  private hopeless(key: string): boolean {
    let pendingTotal = 0
    let pendingKey = 0
    for (const l of this.transport.listeners) {
      pendingTotal += l.pending.size
      pendingKey += this.pendingFrom(l, key)
    }
    return this.transport.connections.size - pendingTotal >= this.transport.maxConnections ||
      (this.transport.inboundPerIp.get(key) ?? 0) - pendingKey >= this.transport.maxConnectionsPerIp
  }

  /** Called by a listener for each accepted socket (paused: nothing is read until it has a slot). */
  accept(socket: Socket, listener: TcpListener, onConnection: ConnectionHandler): void {
    socket.on('error', () => {})
    const key = ipKey(socket.remoteAddress)
    if (this.transport.closing || listener.signal.aborted || this.hopeless(key)) {
      this.refuse(listener, socket, key)
      return
    }
    const w: WaitingSocket = { socket, key, since: this.transport.clock.now(), onConnection }
    listener.waiting.push(w)
    this.serveWaiting(listener)
    if (!listener.waiting.includes(w)) return
    // bound the waiting room: per address, then per listener (the address with most waiting gives way)
    let fromKey = 0
    for (const o of listener.waiting) if (o.key === key) fromKey++
    if (fromKey > this.transport.maxInboundHandshakesPerIp) {
      this.dropWaiting(listener, w)
    } else if (listener.waiting.length > this.transport.maxInboundHandshakes) {
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
    this.transport.log?.debug('tcp inbound socket refused by limits', { remote: key, handshaking: listener.handshaking, waiting: listener.waiting.length, connections: this.transport.connections.size })
    listener.refused++
    socket.destroy()
  }

  private dropWaiting(listener: TcpListener, w: WaitingSocket): void {
    const i = listener.waiting.indexOf(w)
    if (i >= 0) listener.waiting.splice(i, 1)
    this.refuse(listener, w.socket, w.key)
  }

  /** Gives waiting sockets a slot, oldest first (no head-of-line blocking across addresses). */
  serveWaiting(listener: TcpListener): void {
    if (listener.serving) return
    listener.serving = true
    try {
      const now = this.transport.clock.now()
      for (let i = 0; i < listener.waiting.length;) {
        const w = listener.waiting[i] as WaitingSocket
        if (this.transport.closing || listener.signal.aborted || now - w.since >= this.transport.handshakeTimeoutMs || w.socket.destroyed) {
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
    this.transport.clock.clearTimeout(listener.waitTimer)
    listener.waitTimer = undefined
    if (listener.waiting.length === 0 || listener.signal.aborted) return
    const now = this.transport.clock.now()
    let next = Infinity
    for (const w of listener.waiting) next = Math.min(next, w.since + this.transport.handshakeTimeoutMs)
    for (const l of this.transport.listeners) {
      for (const c of l.pending) {
        const at = c.handshakeProgressAt + this.stallAfter(c)
        if (at > now) next = Math.min(next, at)
      }
    }
    listener.waitTimer = this.transport.clock.setTimeout(() => {
      listener.waitTimer = undefined
      this.serveWaiting(listener)
    }, Math.max(MIN_WAIT_TICK_MS, Math.ceil(next - now)), { unref: true })
  }

  /** Starts the responder handshake of an admitted socket. */
  private startInbound(socket: Socket, listener: TcpListener, key: string, onConnection: ConnectionHandler): void {
    const remote = formatTcpAddress(socket.remoteAddress ?? '0.0.0.0', socket.remotePort ?? 0)
    let firstTimer: TimerHandle | undefined
    const conn = this.transport.track(socket, 'inbound', remote, key, () => { this.transport.clock.clearTimeout(firstTimer) })
    socket.resume() // accepted paused (pauseOnConnect); the connection reads from now on
    firstTimer = this.transport.clock.setTimeout(() => {
      if (!conn.receivedHandshakeMessage) {
        conn.abort(new HandshakeTimeoutError(`expected the first handshake message within ${this.transport.firstMessageTimeoutMs} ms`))
      }
    }, this.transport.firstMessageTimeoutMs)
    listener.pending.add(conn)
    // a socket that closes gives its slot back at once, even if the handshake code is still waiting
    void conn.closed.then(() => {
      if (listener.pending.delete(conn) && listener.waiting.length > 0) this.serveWaiting(listener)
    })
    this.transport.runHandshake(conn, 'responder', undefined, listener.signal)
      .then((session) => {
        conn.establish(session)
        listener.accepted++
        try {
          onConnection(conn)
        } catch (err) {
          this.transport.log?.warn('tcp onConnection handler threw', { error: (err as Error)?.message })
        }
      })
      .catch((err: unknown) => {
        listener.failed++
        this.transport.log?.debug('tcp inbound handshake failed', { remote, error: (err as Error)?.name })
      })
      .finally(() => {
        this.transport.clock.clearTimeout(firstTimer)
        listener.pending.delete(conn)
        if (listener.waiting.length > 0) this.serveWaiting(listener)
      })
  }
}
