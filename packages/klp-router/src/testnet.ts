/**
 * `createTestnet(n)`: a ready mesh of n started routers on the memory transport, with fresh
 * did:key identities, for tests, examples and simulations.
 */
import { generateIdentity, createSignatureVerifier, type Identity } from '@kos-mesh/did-security'
import { AbortError, InvalidParametersError, TimeoutError, type AbortOptions } from '@kos-mesh/interface'
import { createMemoryNetwork, memoryTransport, type LinkConditions, type MemoryNetwork, type MemoryTransport } from '@kos-mesh/transport-memory'
import { klpRouter, type Router, type RouterInit } from './router.js'
import { localTrustStore, type LocalTrustStore } from './trust.js'

export type TestnetTopology = 'full' | 'ring' | 'line' | { random: number }

export interface TestnetOptions {
  /** How nodes are connected. Default `'full'`. `{ random: d }`: a ring plus random links up to degree ~d. */
  topology?: TestnetTopology
  /** Seed of the network simulator and of the random topology. Default 0. */
  seed?: number
  /** Link conditions of every link. Default: perfect links. */
  link?: Partial<LinkConditions>
  /** Use this network instead of a new one. */
  network?: MemoryNetwork
  /** Authority suffix: node i is `node-<i>.<domain>`. Default `mesh.kai`. */
  domain?: string
  /** Router settings applied to every node (authority and listen are set by the testnet). */
  router?: Omit<RouterInit, 'authority' | 'listen'>
  /** Signature backend of the verifiers. Default `'native'`. */
  backend?: 'native' | 'noble'
  /** Wait until every node has a route to every other node. Default true. */
  waitForRoutes?: boolean
  /** Time allowed for building the mesh, ms. Default 30,000. */
  timeoutMs?: number
}

export interface TestnetNode {
  index: number
  authority: string
  did: string
  /** `memory://node-<i>` */
  address: string
  identity: Identity
  router: Router
  transport: MemoryTransport
  /** This node's trust store (the router's TrustEngine). */
  trust: LocalTrustStore
}

export interface Testnet {
  nodes: TestnetNode[]
  network: MemoryNetwork
  /** The edges dialled, as node index pairs. */
  edges: Array<[number, number]>
  /** Resolves once every node can route to every other one. */
  waitForRoutes(options?: AbortOptions & { timeoutMs?: number }): Promise<void>
  stop(): Promise<void>
}

function edgesOf(n: number, topology: TestnetTopology, seed: number): Array<[number, number]> {
  const edges = new Set<string>()
  const add = (a: number, b: number): void => {
    if (a !== b) edges.add(a < b ? `${a},${b}` : `${b},${a}`)
  }
  if (topology === 'full') {
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) add(i, j)
  } else if (topology === 'line') {
    for (let i = 0; i + 1 < n; i++) add(i, i + 1)
  } else if (topology === 'ring') {
    for (let i = 0; i + 1 < n; i++) add(i, i + 1)
    if (n > 2) add(n - 1, 0)
  } else {
    const d = topology.random
    if (!Number.isInteger(d) || d < 2) throw new InvalidParametersError(`expected a random degree >= 2, got ${d}`)
    for (let i = 0; i + 1 < n; i++) add(i, i + 1)
    if (n > 2) add(n - 1, 0)
    let s = (seed ^ 0x9e3779b9) >>> 0
    const rnd = (): number => {
      s = (s + 0x6d2b79f5) >>> 0
      let t = s
      t = Math.imul(t ^ (t >>> 15), t | 1)
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
    const extra = Math.max(0, Math.floor((n * (d - 2)) / 2))
    for (let k = 0; k < extra; k++) add(Math.floor(rnd() * n), Math.floor(rnd() * n))
  }
  return [...edges].map((e) => e.split(',').map(Number) as [number, number])
}

async function until(check: () => boolean, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason })
    if (Date.now() > deadline) throw new TimeoutError(`expected the mesh to converge within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

/** Builds, connects and starts `n` routers on a memory network. */
export async function createTestnet(n: number, options: TestnetOptions = {}): Promise<Testnet> {
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new InvalidParametersError(`expected n in 1..10000, got ${n}`)
  const seed = options.seed ?? 0
  const domain = options.domain ?? 'mesh.kai'
  const network = options.network ?? createMemoryNetwork({ seed, defaults: options.link ?? {} })
  const verifier = createSignatureVerifier({ backend: options.backend ?? 'native' })
  const timeoutMs = options.timeoutMs ?? 30_000
  const nodes: TestnetNode[] = []
  for (let i = 0; i < n; i++) {
    const identity = generateIdentity()
    const address = `memory://node-${i}`
    const authority = `node-${i}.${domain}`
    const transport = memoryTransport({ peerId: identity.did, network })
    const trust = localTrustStore()
    const router = klpRouter({ ...options.router, authority, listen: [address] })({
      signer: identity.signer,
      signatureVerifier: verifier,
      trustEngine: trust,
      transports: [transport],
      clock: network.clock,
    })
    nodes.push({ index: i, authority, did: identity.did, address, identity, router, transport, trust })
  }
  const stop = async (): Promise<void> => {
    await Promise.allSettled(nodes.map((x) => x.router.stop()))
    await Promise.allSettled(nodes.map((x) => x.transport.close()))
  }
  const edges = edgesOf(n, options.topology ?? 'full', seed)
  const waitForRoutes = async (o: AbortOptions & { timeoutMs?: number } = {}): Promise<void> => {
    await until(() => nodes.every((a) => nodes.every((b) => a === b || a.router.routingTable.lookup(b.authority) !== undefined)), o.timeoutMs ?? timeoutMs, o.signal)
  }
  try {
    await Promise.all(nodes.map((x) => x.router.start()))
    const signal = AbortSignal.timeout(timeoutMs)
    const byNode = new Map<number, Array<[number, number]>>()
    for (const e of edges) byNode.set(e[0], [...(byNode.get(e[0]) ?? []), e])
    // dial in parallel per dialling node, sequentially within one node
    await Promise.all([...byNode.values()].map(async (list) => {
      for (const [a, b] of list) await nodes[a]!.router.dial(nodes[b]!.address, { remotePeer: nodes[b]!.did, signal })
    }))
    if (options.waitForRoutes !== false) await waitForRoutes()
  } catch (err) {
    await stop()
    throw err
  }
  return { nodes, network, edges, waitForRoutes, stop }
}
