/**
 * The spec's `requestPeerList({ hops })` over the gossip overlay: a random walk over active views
 * that travels at most `hops` hops (`gossip_hops` of DiscoveryConfig); every node on the walk
 * answers the origin directly with a bounded random sample of its views. The origin collects the
 * answers until all `hops` came or its timeout fires. Answers are stateless; only the origin keeps
 * state (at most `maxPending` requests).
 */
import type { Clock, TimerHandle } from '@kos-mesh/interface'
import { InvalidGossipOptionError, PeerListBusyError } from './errors.js'
import { checkInt } from './random.js'
import type { NodeId, PeerListInit, PeerListWireMessage, SendFn } from './types.js'

/** The default peer-list options (each documented on PeerListInit). */
export const PEER_LIST_DEFAULTS: Required<PeerListInit> = { maxHops: 8, maxPeers: 16, maxPending: 16, timeoutMs: 2_000 }

/**
 * What the peer-list walker needs: this node's id, the clock, a send function, randomness and a sampler of
 * known peers.
 */
export interface PeerListComponents {
  self: NodeId
  clock: Clock
  send: SendFn<PeerListWireMessage>
  /** Uniform random numbers in [0, 1) (seed it for reproducible simulations). */
  random: () => number
  /** A random sample of up to `n` known peers, without `exclude`. */
  sample: (n: number, exclude: NodeId | undefined) => NodeId[]
  /** A random active neighbour not in `exclude`, if any. */
  next: (exclude: readonly NodeId[]) => NodeId | undefined
}

/** Options of one peer-list walk. */
export interface PeerListRequestOptions {
  /** Hops the walk travels (clamped to 1..maxHops). */
  hops: number
  /** Peers per answer (clamped to 1..maxPeers). Default maxPeers. */
  max?: number
}

interface Pending { peers: Set<NodeId>; answers: number; hops: number; timer: TimerHandle; resolve: (peers: NodeId[]) => void }

/**
 * Peer-list walks (the spec's `gossip_hops`): a request travels up to `hops` hops and every node on the way
 * answers with a sample of its peers.
 */
export class PeerListWalker {
  readonly options: Required<PeerListInit>
  private readonly c: PeerListComponents
  private readonly pending = new Map<string, Pending>()
  private counter = 0

  constructor(init: PeerListInit, components: PeerListComponents) {
    const o = { ...PEER_LIST_DEFAULTS, ...init }
    checkInt('maxHops', o.maxHops, 1, 255, InvalidGossipOptionError)
    checkInt('maxPeers', o.maxPeers, 1, 64, InvalidGossipOptionError)
    checkInt('maxPending', o.maxPending, 1, 4096, InvalidGossipOptionError)
    this.options = o
    this.c = components
  }

  /** Walks of this node still waiting for answers. */
  pendingCount(): number { return this.pending.size }

  /**
   * Starts a walk and resolves with the distinct peers the walk's nodes returned (never this node),
   * once `hops` answers came or after `timeoutMs`. Rejects with PeerListBusyError when `maxPending`
   * requests are pending.
   */
  request(options: PeerListRequestOptions): Promise<NodeId[]> {
    if (this.pending.size >= this.options.maxPending) return Promise.reject(new PeerListBusyError(`expected at most ${this.options.maxPending} pending peer-list requests, got one more`))
    const hops = Math.max(1, Math.min(this.options.maxHops, Math.floor(options.hops)))
    const max = Math.max(1, Math.min(this.options.maxPeers, Math.floor(options.max ?? this.options.maxPeers)))
    const first = this.c.next([])
    if (first === undefined) return Promise.resolve([])
    const reqId = `${(this.counter++).toString(36)}.${Math.floor(this.c.random() * 2 ** 32).toString(36)}`
    return new Promise((resolve) => {
      const timer = this.c.clock.setTimeout(() => this.finish(reqId), this.options.timeoutMs)
      this.pending.set(reqId, { peers: new Set(), answers: 0, hops, timer, resolve })
      this.c.send(first, { type: 'peer_list_request', reqId, origin: this.c.self, hops, max })
    })
  }

  /**
   * Handles a peer-list message: answers a request with a sample and passes it on, or collects an answer
   * for one of this node's walks.
   */
  handle(from: NodeId, msg: PeerListWireMessage): void {
    if (msg.type === 'peer_list_request') {
      if (msg.origin === this.c.self) return
      const max = Math.max(1, Math.min(this.options.maxPeers, msg.max))
      this.c.send(msg.origin, { type: 'peer_list', reqId: msg.reqId, peers: this.c.sample(max, msg.origin) })
      const hops = Math.min(msg.hops, this.options.maxHops)
      if (hops > 1) {
        const next = this.c.next([from, msg.origin])
        if (next !== undefined) this.c.send(next, { ...msg, hops: hops - 1 })
      }
      return
    }
    const p = this.pending.get(msg.reqId)
    if (p === undefined) return
    p.answers++
    for (const peer of msg.peers.slice(0, this.options.maxPeers)) if (peer !== this.c.self) p.peers.add(peer)
    if (p.answers >= p.hops) this.finish(msg.reqId)
  }

  /** Resolves every pending request with what it has. */
  stop(): void {
    for (const id of [...this.pending.keys()]) this.finish(id)
  }

  private finish(reqId: string): void {
    const p = this.pending.get(reqId)
    if (p === undefined) return
    this.pending.delete(reqId)
    this.c.clock.clearTimeout(p.timer)
    p.resolve([...p.peers])
  }
}
