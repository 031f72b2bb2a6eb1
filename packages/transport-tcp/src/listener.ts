/**
 * One listening socket of the TCP transport: the node:net server (sockets accepted paused, handed to
 * the transport's handshake slots), the inbound handshakes in progress and the sockets waiting for a
 * slot, and the listener's counters. Internal (callers see the `Listener` contract).
 */
import { createServer, type Server, type Socket } from 'node:net'
import {
  AbortError,
  ConnectionClosedError,
  systemClock,
  type Clock,
  type ConnectionHandler,
  type Listener,
  type TimerHandle,
  type TransportAddress,
} from '@kos-mesh/interface'
import { formatTcpAddress } from './address.js'
import type { TcpConnection } from './connection.js'
import { ListenError } from './errors.js'

/** An accepted socket waiting (unread, paused) for an inbound handshake slot. */
export interface WaitingSocket {
  socket: Socket
  key: string
  since: number
  onConnection: ConnectionHandler
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
