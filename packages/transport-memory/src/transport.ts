import {
  InvalidAddressError,
  InvalidParametersError,
  throwIfAborted,
  type Connection,
  type ConnectionHandler,
  type DialOptions,
  type AbortOptions,
  type Listener,
  type Transport,
  type TransportAddress,
} from '@kos-mesh/interface'
import { formatMemoryAddress, parseMemoryAddress } from './address.js'
import type { ConnectionLimits, MemoryConnection } from './connection.js'
import { ConnectionResetError, TransportClosedError } from './errors.js'
import { defaultMemoryNetwork, MemoryNetworkImpl, type MemoryNetwork, type NetworkNode } from './network.js'

/** Options of `memory()`: the local DID, the network and the transport's bounds. */
export interface MemoryTransportInit {
  /** The local DID. Remote ends see it as `connection.remotePeer`. Required. */
  peerId: string
  /** The simulator this transport lives in. Default: the process-wide real-time network. */
  network?: MemoryNetwork
  /** Bound of each connection's inbound queue (bytes in flight + not yet read). Default 4 MiB. */
  maxBufferedBytes?: number
  /** Largest frame `send` accepts. Default 1 MiB; at most `maxBufferedBytes`. */
  maxFrameSize?: number
  /** How long `send` waits for room in the remote buffer before SendTimeoutError, in network ms. Default 30,000 (Infinity: wait forever). */
  sendTimeoutMs?: number
  /**
   * Bytes of frames one connection may hold while they wait for room in the remote buffer (copies).
   * A `send()` that would go past it rejects at once with `SendBufferFullError` (nothing queued, the
   * connection stays open); a send into an empty queue always fits. At least `maxFrameSize`.
   * Default max(4 MiB, maxFrameSize).
   */
  maxOutboundBufferBytes?: number
  /**
   * While frames wait for room, the remote must free some (read, or lose frames in flight) at least
   * this often, in network ms; otherwise it has stopped reading and the connection is aborted with
   * `SlowPeerError` (the remote sees a reset). Progress resets the deadline, so a slow but steady
   * reader is kept. Default 10,000 (Infinity disables).
   */
  sendStallTimeoutMs?: number
}

/** Default bound of the bytes a connection buffers for its reader (4 MiB); a sender waits beyond it. */
export const DEFAULT_MAX_BUFFERED_BYTES = 4 * 1024 * 1024
/** Default largest frame a connection accepts (1 MiB). */
export const DEFAULT_MAX_FRAME_SIZE = 1024 * 1024
/** Default time `send()` may wait for room in the peer's buffer before it fails, ms. */
export const DEFAULT_SEND_TIMEOUT_MS = 30_000
/** The actual default is max(this, maxFrameSize). */
export const DEFAULT_MAX_OUTBOUND_BUFFER_BYTES = 4 * 1024 * 1024
/** Default time a peer may leave its buffer full before the connection is aborted with SlowPeerError, ms. */
export const DEFAULT_SEND_STALL_TIMEOUT_MS = 10_000

/** The memory transport: the Transport contract plus a few introspection helpers. */
export interface MemoryTransport extends Transport {
  readonly name: 'memory'
  readonly peerId: string
  readonly network: MemoryNetwork
  readonly maxFrameSize: number
  readonly maxBufferedBytes: number
  readonly maxOutboundBufferBytes: number
  /** Open connections (both directions). */
  getConnections(): Connection[]
  /** Addresses this transport listens on. */
  getListenAddrs(): TransportAddress[]
}

function positiveInt(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw new InvalidParametersError(`expected ${name} to be a positive integer, got ${String(v)}`)
  return v
}

class MemoryTransportImpl implements MemoryTransport, NetworkNode {
  readonly name = 'memory' as const
  readonly peerId: string
  readonly network: MemoryNetwork
  readonly limits: ConnectionLimits
  private readonly net: MemoryNetworkImpl
  private readonly connections = new Set<MemoryConnection>()
  private readonly listening = new Set<string>()
  private closedState = false

  constructor(init: MemoryTransportInit) {
    if (init === null || typeof init !== 'object') throw new InvalidParametersError(`expected an init object, got ${init === null ? 'null' : typeof init}`)
    if (typeof init.peerId !== 'string' || init.peerId.length === 0 || init.peerId.length > 1024) {
      throw new InvalidParametersError(`expected peerId to be a DID string of 1..1024 characters, got ${typeof init.peerId === 'string' ? `${init.peerId.length} characters` : typeof init.peerId}`)
    }
    const network = init.network ?? defaultMemoryNetwork()
    if (!(network instanceof MemoryNetworkImpl)) throw new InvalidParametersError('expected network from createMemoryNetwork(), got another object')
    const maxBufferedBytes = positiveInt('maxBufferedBytes', init.maxBufferedBytes, DEFAULT_MAX_BUFFERED_BYTES)
    const maxFrameSize = positiveInt('maxFrameSize', init.maxFrameSize, Math.min(DEFAULT_MAX_FRAME_SIZE, maxBufferedBytes))
    if (maxFrameSize > maxBufferedBytes) throw new InvalidParametersError(`expected maxFrameSize <= maxBufferedBytes (${maxBufferedBytes}), got ${maxFrameSize}`)
    const sendTimeoutMs = init.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS
    if (typeof sendTimeoutMs !== 'number' || !(sendTimeoutMs > 0)) throw new InvalidParametersError(`expected sendTimeoutMs > 0, got ${String(sendTimeoutMs)}`)
    const maxOutboundBufferBytes = positiveInt('maxOutboundBufferBytes', init.maxOutboundBufferBytes, Math.max(DEFAULT_MAX_OUTBOUND_BUFFER_BYTES, maxFrameSize))
    if (maxOutboundBufferBytes < maxFrameSize) throw new InvalidParametersError(`expected maxOutboundBufferBytes >= maxFrameSize (${maxFrameSize}), got ${maxOutboundBufferBytes}`)
    const sendStallTimeoutMs = init.sendStallTimeoutMs ?? DEFAULT_SEND_STALL_TIMEOUT_MS
    if (typeof sendStallTimeoutMs !== 'number' || !(sendStallTimeoutMs > 0)) throw new InvalidParametersError(`expected sendStallTimeoutMs > 0, got ${String(sendStallTimeoutMs)}`)
    this.peerId = init.peerId
    this.network = network
    this.net = network
    this.limits = { maxBufferedBytes, maxFrameSize, sendTimeoutMs, maxOutboundBufferBytes, sendStallTimeoutMs }
    this.net.register(this)
  }

  get maxFrameSize(): number { return this.limits.maxFrameSize }
  get maxBufferedBytes(): number { return this.limits.maxBufferedBytes }
  get maxOutboundBufferBytes(): number { return this.limits.maxOutboundBufferBytes }

  canDial(addr: TransportAddress): boolean {
    try {
      const { name } = parseMemoryAddress(addr)
      return name.length > 0 && !name.startsWith('~')
    } catch {
      return false
    }
  }

  async dial(addr: TransportAddress, options: DialOptions = {}): Promise<Connection> {
    if (this.closedState) throw new TransportClosedError(`expected an open transport, got closed (${this.peerId})`)
    throwIfAborted(options.signal)
    const parsed = parseMemoryAddress(addr)
    if (parsed.name.length === 0 || parsed.name.startsWith('~')) throw new InvalidAddressError(`expected a listener name in the address, got "${addr.slice(0, 64)}"`)
    if (options.remotePeer !== undefined && parsed.peer !== undefined && options.remotePeer !== parsed.peer) {
      throw new InvalidParametersError(`expected options.remotePeer to equal the address's DID ${parsed.peer}, got ${options.remotePeer}`)
    }
    return this.net.dial(this, parsed.name, options.remotePeer ?? parsed.peer, options.signal)
  }

  adopt(conn: MemoryConnection): void {
    if (this.closedState) {
      conn.abort(new TransportClosedError(`expected an open transport, got closed (${this.peerId})`))
      return
    }
    this.connections.add(conn)
    void conn.closed.then(() => this.connections.delete(conn))
  }

  async listen(addr: TransportAddress, onConnection: ConnectionHandler, options: AbortOptions = {}): Promise<Listener> {
    if (this.closedState) throw new TransportClosedError(`expected an open transport, got closed (${this.peerId})`)
    throwIfAborted(options.signal)
    if (typeof onConnection !== 'function') throw new InvalidParametersError(`expected onConnection to be a function, got ${typeof onConnection}`)
    const parsed = parseMemoryAddress(addr)
    if (parsed.name.startsWith('~')) throw new InvalidAddressError(`expected a name not starting with "~" (reserved for dialers), got "${parsed.name}"`)
    if (parsed.peer !== undefined && parsed.peer !== this.peerId) throw new InvalidAddressError(`expected the address's DID to be this transport's ${this.peerId}, got ${parsed.peer}`)
    const name = this.net.listen(parsed.name, this, onConnection)
    this.listening.add(name)
    const addrs = [formatMemoryAddress(name)]
    let open = true
    return {
      addrs: () => (open ? [...addrs] : []),
      close: async () => {
        if (!open) return
        open = false
        this.listening.delete(name)
        this.net.unlisten(name, this)
      },
    }
  }

  getConnections(): Connection[] {
    return [...this.connections]
  }

  getListenAddrs(): TransportAddress[] {
    return [...this.listening].map(formatMemoryAddress)
  }

  private stopListening(): void {
    for (const name of this.listening) this.net.unlisten(name, this)
    this.listening.clear()
  }

  async close(): Promise<void> {
    if (this.closedState) return
    this.closedState = true
    this.stopListening()
    const conns = [...this.connections]
    await Promise.all(conns.map((c) => c.close()))
    this.net.unregister(this)
  }

  crashed(): void {
    if (this.closedState) return
    this.closedState = true
    this.stopListening()
    for (const c of [...this.connections]) c.abort(new ConnectionResetError(`expected a running node, got ${this.peerId} crashed`))
    this.net.unregister(this)
  }
}

/**
 * Creates an in-process transport. Connections are authenticated by construction: the remote's
 * `remotePeer` is this transport's `peerId`.
 *
 * @example
 * const network = createMemoryNetwork({ seed: 1 })
 * const a = memoryTransport({ peerId: 'did:key:alice', network })
 * const b = memoryTransport({ peerId: 'did:key:bob', network })
 * await b.listen('memory://bob', (conn) => { void echo(conn) })
 * const conn = await a.dial('memory://bob', { remotePeer: 'did:key:bob' })
 */
export function memoryTransport(init: MemoryTransportInit): MemoryTransport {
  return new MemoryTransportImpl(init)
}
