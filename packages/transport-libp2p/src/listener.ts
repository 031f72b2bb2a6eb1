/**
 * The Listener of the libp2p transport: the addresses it bound (or the host's, or the announced ones)
 * and closing them. Internal; created by `Libp2pTransport.listen()`.
 */
import type { ConnectionHandler, Listener, TransportAddress } from '@kos-mesh/interface'
import type { Libp2p, Listener as P2PListener } from '@libp2p/interface'
import { formatLibp2pAddress, withPeerId } from './address.js'

/** What the listener needs of its transport. */
export interface ListenerOwner {
  removeListener(listener: Libp2pListener): Promise<void>
}

/**
 * A listener of the libp2p transport, returned by `listen()`: the addresses KLP connections reach
 * it at, and its counters. Inbound KLP streams go to the first open listener's `onConnection`.
 * Closing the last listener removes the KLP protocol handler from the host.
 */
export class Libp2pListener implements Listener {
  /** Inbound KLP connections handed to `onConnection`. */
  accepted = 0
  /** Inbound KLP streams refused because the transport had `maxConnections` open. */
  refused = 0
  private closedFlag = false

  constructor(
    private readonly transport: ListenerOwner,
    private readonly host: Libp2p,
    /** The libp2p listeners this listener bound (closed with it); undefined: the host's own addresses. */
    private readonly bound: P2PListener[] | undefined,
    readonly onConnection: ConnectionHandler,
    /** The host announces configured addresses: those are this listener's addresses. */
    private readonly announced = false,
  ) {}

  addrs(): TransportAddress[] {
    if (this.closedFlag) return []
    const id = this.host.peerId.toString()
    const mas = this.announced || this.bound === undefined || this.bound.length === 0
      ? this.host.getMultiaddrs()
      : this.bound.flatMap((l) => l.getAddrs())
    return [...new Set(mas.map((m) => formatLibp2pAddress(withPeerId(m, id))))]
  }

  /**
   * Stops accepting KLP connections: the libp2p listeners this listener bound are closed (libp2p
   * also closes the sockets they accepted), and the KLP handler is removed with the last listener.
   */
  async close(): Promise<void> {
    if (this.closedFlag) return
    this.closedFlag = true
    await this.transport.removeListener(this)
    await Promise.all((this.bound ?? []).map(async (l) => { await l.close().catch(() => {}) }))
  }

  /** The counters since `listen()`: connections accepted, and streams refused at `maxConnections`. */
  stats(): { accepted: number; refused: number } {
    return { accepted: this.accepted, refused: this.refused }
  }
}
