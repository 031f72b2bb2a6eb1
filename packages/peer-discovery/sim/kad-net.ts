/**
 * A Kademlia network on SimNet: N KadNodes whose KadRpc sends KadRequest objects over the
 * simulator (request/response matched by a request id, timeouts on the virtual clock), seeded
 * addresses (random /24s), optional malicious behaviour per node, and joins in waves.
 *
 * Not shipped (sim/); used by sim/kad-sim.ts, the CI test and bench/dht-sim.ts.
 */
import { mulberry32, UnreachableError } from '@kos-mesh/interface'
import { SimNet } from './simnet.js'
import { compareDistance, idKey, kadIdOf, KadNode } from '../src/kad/index.js'
import type { Contact, KadId, KadRequest, KadResponse, KadInit } from '../src/kad/index.js'

export type KadSimMessage =
  | { t: 'req'; rid: number; from: Contact; req: KadRequest }
  | { t: 'res'; rid: number; res?: KadResponse; err?: string }

/** `drop`: never answers. `lie`: answers find_node/get_providers with the colluders closest to the target (never the target, no providers). */
export type Misbehaviour = 'drop' | 'lie'

export interface SimPeer {
  readonly index: number
  readonly contact: Contact
  readonly node: KadNode
  misbehaviour?: Misbehaviour
  /** Joined (bootstrap finished). */
  joined: boolean
  /** Left the network (down for good). */
  left: boolean
}

export interface KadNetInit {
  seed?: number
  latencyMs?: number
  jitterMs?: number
  loss?: number
  /** SimNet event batching, ms. Default 1. */
  batchMs?: number
  kad?: KadInit
}

export class KadNet {
  readonly net: SimNet<KadSimMessage>
  readonly peers: SimPeer[] = []
  readonly random: () => number
  private readonly byDid = new Map<string, number>()
  private readonly pending: Array<Map<number, { resolve: (r: KadResponse) => void; reject: (e: unknown) => void }>> = []
  private nextRid = 1
  private readonly seed: number
  private readonly kad: KadInit
  /** Liars' colluders, sorted by id (for "closest colluders" answers). */
  private colluders: Contact[] = []
  /** Requests served by honest nodes, by type. */
  readonly served = { find_node: 0, get_providers: 0, add_provider: 0, ping: 0 }

  constructor(init: KadNetInit = {}) {
    this.seed = init.seed ?? 1
    this.net = new SimNet<KadSimMessage>({ seed: this.seed, latencyMs: init.latencyMs ?? 50, jitterMs: init.jitterMs ?? 20, loss: init.loss ?? 0, batchMs: init.batchMs ?? 1 })
    this.random = mulberry32((this.seed * 2654435761) >>> 0)
    this.kad = init.kad ?? {}
  }

  get clock() { return this.net.clock }

  /** Creates a node (not joined). */
  addPeer(): SimPeer {
    const index = this.peers.length
    const did = `did:key:zSim${this.seed.toString(36)}x${index.toString(36)}`
    const r = this.random
    const ip = `10.${Math.floor(r() * 256)}.${Math.floor(r() * 256)}.${1 + Math.floor(r() * 254)}`
    const contact: Contact = { id: kadIdOf(did), did, addrs: [`tcp://${ip}:4001`] }
    const pending = new Map<number, { resolve: (r: KadResponse) => void; reject: (e: unknown) => void }>()
    this.pending.push(pending)
    const node = new KadNode({
      ...this.kad,
      self: contact,
      clock: this.net.clock,
      random: mulberry32((this.seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0),
      rpc: (to, req, { signal }) => this.rpc(index, to, req, signal),
    })
    const peer: SimPeer = { index, contact, node, joined: false, left: false }
    this.peers.push(peer)
    this.byDid.set(did, index)
    this.net.attach(index, (from, msg) => this.receive(index, from, msg))
    return peer
  }

  /** Makes `peers` misbehave; liars answer with the liars closest to the target. */
  setMisbehaviour(list: ReadonlyArray<{ peer: SimPeer; misbehaviour: Misbehaviour }>): void {
    for (const { peer, misbehaviour } of list) peer.misbehaviour = misbehaviour
    this.colluders = this.peers.filter((p) => p.misbehaviour !== undefined).map((p) => p.contact)
    this.colluders.sort((a, b) => (idKey(a.id) < idKey(b.id) ? -1 : 1))
  }

  /** Takes a node down for good (no goodbye). */
  leave(peer: SimPeer): void {
    peer.left = true
    this.net.setDown(peer.index, true)
    for (const p of this.pending[peer.index]!.values()) p.reject(new UnreachableError('node left'))
    this.pending[peer.index]!.clear()
  }

  /** Bootstraps `peer` from `seeds` (lookup of its own id, then a refresh of every bucket). */
  async join(peer: SimPeer, seeds: readonly Contact[]): Promise<void> {
    await peer.node.bootstrap(seeds)
    peer.joined = true
  }

  /**
   * Builds a network of `n` nodes: `initial` seeds that know each other, then joins in waves
   * (each wave at most the size of the network so far and at most `maxWave`), each node
   * bootstrapping from `seedsPerJoin` random joined nodes.
   */
  async build(n: number, options: { initial?: number; maxWave?: number; seedsPerJoin?: number; onWave?: (joined: number) => void } = {}): Promise<void> {
    const initial = Math.min(n, options.initial ?? 8)
    const maxWave = options.maxWave ?? 1_000
    const seedsPerJoin = options.seedsPerJoin ?? 3
    for (let i = 0; i < n; i++) this.addPeer()
    const now = this.clock.now()
    for (let i = 0; i < initial; i++) {
      const p = this.peers[i]!
      for (let j = 0; j < initial; j++) if (j !== i) p.node.table.add(this.peers[j]!.contact, now, false)
      p.joined = true
    }
    let joined = initial
    while (joined < n) {
      const wave = Math.min(maxWave, joined, n - joined)
      const jobs: Array<Promise<void>> = []
      for (let i = joined; i < joined + wave; i++) jobs.push(this.join(this.peers[i]!, this.randomJoined(seedsPerJoin, joined)))
      let done = 0
      for (const j of jobs) void j.then(() => { done++ }, () => { done++ })
      await this.net.runUntil(() => done === jobs.length, 600_000, 100)
      joined += wave
      options.onWave?.(joined)
    }
  }

  /** `count` distinct random contacts among the first `limit` peers that are joined and up. */
  randomJoined(count: number, limit = this.peers.length): Contact[] {
    const out = new Set<number>()
    for (let tries = 0; out.size < count && tries < count * 50; tries++) {
      const i = Math.floor(this.random() * limit)
      const p = this.peers[i]!
      if (p.joined && !p.left) out.add(i)
    }
    return [...out].map((i) => this.peers[i]!.contact)
  }

  indexOf(did: string): number | undefined { return this.byDid.get(did) }

  /** The live honest node closest to `target` other than `except` (brute force). */
  trueClosest(target: KadId, except?: SimPeer): SimPeer | undefined {
    let best: SimPeer | undefined
    for (const p of this.peers) {
      if (!p.joined || p.left || p.misbehaviour !== undefined || p === except) continue
      if (best === undefined || compareDistance(p.contact.id, best.contact.id, target) < 0) best = p
    }
    return best
  }

  private rpc(from: number, to: Contact, req: KadRequest, signal: AbortSignal): Promise<KadResponse> {
    const j = this.byDid.get(to.did)
    if (j === undefined || this.peers[from]!.left) return Promise.reject(new UnreachableError(`unknown or gone: ${to.did}`))
    return new Promise<KadResponse>((resolve, reject) => {
      const rid = this.nextRid++
      const pending = this.pending[from]!
      const onAbort = (): void => { if (pending.delete(rid)) reject(signal.reason) }
      pending.set(rid, {
        resolve: (r) => { signal.removeEventListener('abort', onAbort); resolve(r) },
        reject: (e) => { signal.removeEventListener('abort', onAbort); reject(e) },
      })
      signal.addEventListener('abort', onAbort, { once: true })
      this.net.send(from, j, { t: 'req', rid, from: this.peers[from]!.contact, req })
    })
  }

  private receive(self: number, from: number, msg: KadSimMessage): void {
    const peer = this.peers[self]!
    if (msg.t === 'res') {
      const p = this.pending[self]!.get(msg.rid)
      if (p === undefined) return
      this.pending[self]!.delete(msg.rid)
      if (msg.res !== undefined) p.resolve(msg.res)
      else p.reject(new UnreachableError(msg.err ?? 'error'))
      return
    }
    if (peer.misbehaviour === 'drop') return
    if (peer.misbehaviour === 'lie' && msg.req.type !== 'ping' && msg.req.type !== 'add_provider') {
      const target = msg.req.type === 'find_node' ? msg.req.target : msg.req.key
      const closer = this.colludersNear(target, peer.node.k)
      const res: KadResponse = msg.req.type === 'find_node' ? { type: 'nodes', closer } : { type: 'providers', providers: [], closer }
      this.net.send(self, from, { t: 'res', rid: msg.rid, res })
      return
    }
    let res: KadResponse | undefined
    let err: string | undefined
    try {
      res = peer.node.handle(msg.from, msg.req)
      this.served[msg.req.type]++
    } catch (e) {
      err = e instanceof Error ? e.name : 'error'
    }
    this.net.send(self, from, res === undefined ? { t: 'res', rid: msg.rid, err: err ?? 'error' } : { t: 'res', rid: msg.rid, res })
  }

  /** The k colluders closest to `target` (a window around its place in id order, sorted by XOR), never the target. */
  private colludersNear(target: KadId, k: number): Contact[] {
    const list = this.colluders
    const t = idKey(target)
    let lo = 0
    let hi = list.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (idKey(list[mid]!.id) < t) lo = mid + 1
      else hi = mid
    }
    const window = list.slice(Math.max(0, lo - 2 * k), lo + 2 * k).filter((c) => idKey(c.id) !== t)
    window.sort((a, b) => compareDistance(a.id, b.id, target))
    return window.slice(0, k)
  }
}
