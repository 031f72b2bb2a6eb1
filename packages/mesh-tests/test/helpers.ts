/**
 * A mesh of real klp-routers on the memory transport's simulator in virtual time, each with a
 * trust engine (`createTrustEngine`) as the router's TrustEngine and a trust service on it.
 *
 * Why not `createTestnet`: it builds every router with its own `localTrustStore()` as the router's
 * `trustEngine` component and offers no option to pass another one, so a router built there can
 * never ask a TrustGraphEngine (trust requirements, revocation). This helper does what the testnet
 * does (deterministic identities from `testnetIdentity`, `pipelineSliceMs: Infinity` in virtual
 * time, dial per edge, `drive`) with the engine passed in.
 */
import { createSignatureVerifier, type Identity } from '@kos-mesh/did-security'
import { TimeoutError, type AbortOptions, type KeyValueStore } from '@kos-mesh/interface'
import { klpRouter, type Router, type RouterInit } from '@kos-mesh/klp-router'
import { testnetIdentity } from '@kos-mesh/klp-router/testnet'
import { createMemoryNetwork, memoryTransport, type LinkConditions, type MemoryNetwork, type MemoryTransport } from '@kos-mesh/transport-memory'
import { createTrustEngine, trustService, type TrustEngineInit, type TrustGraphEngine, type TrustService, type TrustServiceInit } from '@kos-mesh/trust'

/** A KeyValueStore on a Map (keys in order on query), enough for persistence tests. */
export class MapStore implements KeyValueStore {
  readonly map = new Map<string, Uint8Array>()
  async get(key: string): Promise<Uint8Array | undefined> {
    return this.map.get(key)?.slice()
  }
  async put(key: string, value: Uint8Array): Promise<void> {
    this.map.set(key, value.slice())
  }
  async delete(key: string): Promise<void> {
    this.map.delete(key)
  }
  async has(key: string): Promise<boolean> {
    return this.map.has(key)
  }
  async *query(prefix: string, options: AbortOptions & { limit?: number } = {}): AsyncIterable<{ key: string; value: Uint8Array }> {
    const keys = [...this.map.keys()].filter((k) => k.startsWith(prefix)).sort()
    let n = 0
    for (const key of keys) {
      options.signal?.throwIfAborted()
      if (options.limit !== undefined && n++ >= options.limit) return
      const value = this.map.get(key)
      if (value !== undefined) yield { key, value: value.slice() }
    }
  }
}

export interface MeshNode {
  index: number
  authority: string
  did: string
  address: string
  identity: Identity
  router: Router
  transport: MemoryTransport
  engine: TrustGraphEngine
  service: TrustService
  store: MapStore
}

export interface TrustMeshOptions {
  seed?: number
  link?: Partial<LinkConditions>
  /** Edges to dial (node index pairs). */
  edges: Array<[number, number]>
  /** Per node router settings (authority and listen are set here). */
  router?: (i: number) => Omit<RouterInit, 'authority' | 'listen'>
  engine?: (i: number) => Omit<TrustEngineInit, 'self'>
  service?: (i: number) => TrustServiceInit
}

export interface TrustMesh {
  nodes: MeshNode[]
  network: MemoryNetwork
  /** Advances virtual time until `p` settles (steps of `stepMs`, default 5 ms). */
  drive<T>(p: Promise<T>, o?: { stepMs?: number; timeoutMs?: number }): Promise<T>
  /** Advances virtual time until `check()` holds; resolves with the virtual time it took. */
  until(check: () => boolean, o?: { stepMs?: number; timeoutMs?: number }): Promise<number>
  /** Dials node `b` from node `a` (virtual time driven). */
  connect(a: number, b: number): Promise<void>
  stop(): Promise<void>
}

export async function createTrustMesh(n: number, o: TrustMeshOptions): Promise<TrustMesh> {
  const seed = o.seed ?? 0
  const network = createMemoryNetwork({ seed, defaults: o.link ?? {}, time: 'virtual' })
  const clock = network.clock
  const verifier = createSignatureVerifier()
  const nodes: MeshNode[] = []
  for (let i = 0; i < n; i++) {
    const identity = testnetIdentity(seed, i)
    const address = `memory://node-${i}`
    const authority = `node-${i}.mesh.kai`
    const transport = memoryTransport({ peerId: identity.did, network })
    const engine = createTrustEngine({ ...o.engine?.(i), self: identity.did }, { clock })
    const router = klpRouter({ pipelineSliceMs: Infinity, ...o.router?.(i), authority, listen: [address] })({
      signer: identity.signer,
      signatureVerifier: verifier,
      trustEngine: engine,
      transports: [transport],
      clock,
    })
    const store = new MapStore()
    const service = trustService(o.service?.(i) ?? {})({ router, engine, signer: identity.signer, verifier, store, clock })
    nodes.push({ index: i, authority, did: identity.did, address, identity, router, transport, engine, service, store })
  }
  const drive = async <T>(p: Promise<T>, d: { stepMs?: number; timeoutMs?: number } = {}): Promise<T> => {
    let settled = false
    const out = p.finally(() => {
      settled = true
    })
    out.catch(() => {})
    const deadline = clock.now() + (d.timeoutMs ?? 120_000)
    while (!settled) {
      if (clock.now() > deadline) throw new TimeoutError(`expected the promise to settle within ${d.timeoutMs ?? 120_000} ms of network time`)
      await network.runFor(d.stepMs ?? 5)
    }
    return out
  }
  const until = async (check: () => boolean, d: { stepMs?: number; timeoutMs?: number } = {}): Promise<number> => {
    const t0 = clock.now()
    const deadline = t0 + (d.timeoutMs ?? 60_000)
    while (!check()) {
      if (clock.now() > deadline) throw new TimeoutError(`expected the condition within ${d.timeoutMs ?? 60_000} ms of network time`)
      await network.runFor(d.stepMs ?? 5)
    }
    return clock.now() - t0
  }
  const connect = async (a: number, b: number): Promise<void> => {
    const x = nodes[a]!
    const y = nodes[b]!
    await drive(x.router.dial(y.address, { remotePeer: y.did }).then(() => undefined))
  }
  const stop = async (): Promise<void> => {
    await Promise.allSettled(nodes.map((x) => x.service.stop()))
    await Promise.allSettled(nodes.map((x) => x.router.stop()))
    await Promise.allSettled(nodes.map((x) => x.transport.close()))
  }
  try {
    await drive(Promise.all(nodes.map((x) => x.router.start())))
    await drive(Promise.all(nodes.map((x) => x.service.start())))
    const byNode = new Map<number, Array<[number, number]>>()
    for (const e of o.edges) byNode.set(e[0], [...(byNode.get(e[0]) ?? []), e])
    await drive(
      Promise.all(
        [...byNode.values()].map(async (list) => {
          for (const [a, b] of list) await nodes[a]!.router.dial(nodes[b]!.address, { remotePeer: nodes[b]!.did })
        }),
      ),
    )
  } catch (err) {
    await stop()
    throw err
  }
  return { nodes, network, drive, until, connect, stop }
}

/** A ring plus seeded random chords, up to about `degree` links per node (connected). */
export function randomTopology(n: number, degree: number, seed: number): Array<[number, number]> {
  const edges = new Set<string>()
  const add = (a: number, b: number): void => {
    if (a !== b) edges.add(a < b ? `${a},${b}` : `${b},${a}`)
  }
  for (let i = 0; i + 1 < n; i++) add(i, i + 1)
  if (n > 2) add(n - 1, 0)
  let s = (seed * 2654435761) >>> 0
  const rnd = (): number => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    return s / 4294967296
  }
  const extra = Math.max(0, Math.floor((n * (degree - 2)) / 2))
  for (let k = 0; k < extra; k++) add(Math.floor(rnd() * n), Math.floor(rnd() * n))
  return [...edges].map((e) => e.split(',').map(Number) as [number, number])
}

/** Hop distances from `from` over undirected `edges` (BFS). */
export function hopsFrom(n: number, edges: Array<[number, number]>, from: number): number[] {
  const adj: number[][] = Array.from({ length: n }, () => [])
  for (const [a, b] of edges) {
    adj[a]!.push(b)
    adj[b]!.push(a)
  }
  const dist = new Array<number>(n).fill(-1)
  dist[from] = 0
  const queue = [from]
  for (let q = 0; q < queue.length; q++) {
    const x = queue[q]!
    for (const y of adj[x]!) {
      if (dist[y] === -1) {
        dist[y] = dist[x]! + 1
        queue.push(y)
      }
    }
  }
  return dist
}
