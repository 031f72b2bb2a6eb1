/**
 * `createTestnet(n)`: a ready mesh of n started routers on the memory transport, for tests,
 * examples and simulations (subpath `@kos-mesh/klp-router/testnet`, so the router itself does not
 * depend on the memory transport). With `time: 'virtual'` the whole mesh runs in the network's
 * virtual time, deterministically for a seed (identities are derived from it too), and faster than
 * real time: `drive()` advances the network until a promise settles.
 */
import { createHash } from 'node:crypto'
import { generateIdentity, identityFromSeed, createSignatureVerifier, type Identity } from '@kos-mesh/did-security'
import { AbortError, InvalidParametersError, TimeoutError, mulberry32, systemClock, type AbortOptions, type Clock, type TrustEngine } from '@kos-mesh/interface'
import { createMemoryNetwork, memoryTransport, type LinkConditions, type MemoryNetwork, type MemoryTransport } from '@kos-mesh/transport-memory'
import { staticTrustEngine, type StaticTrustEngine } from '@kos-mesh/trust'
import { klpRouter, type Router, type RouterInit } from '../router.js'

export type TestnetTopology = 'full' | 'ring' | 'line' | { random: number }

/** What a testnet's trust-engine factory is given for node `index`. */
export interface TestnetTrustContext {
  index: number
  identity: Identity
  /** The network's clock (virtual in virtual time). */
  clock: Clock
}

export interface TestnetOptions<T extends TrustEngine = StaticTrustEngine> {
  /**
   * Makes each node's trust engine (e.g. `({ identity, clock }) => createTrustEngine({ self:
   * identity.did }, { clock })` from @kos-mesh/trust). Default: an operator-set `staticTrustEngine()`.
   */
  trustEngine?: (context: TestnetTrustContext) => T
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
  /** Time allowed for building the mesh, ms (network time). Default 30,000. */
  timeoutMs?: number
  /**
   * `real` (default) or `virtual`: the network and every router run on the network's virtual clock;
   * routers do not slice their work by wall time, identities derive from `seed`, and the testnet
   * drives virtual time itself while it builds the mesh. Use `testnet.drive(promise)` afterwards.
   */
  time?: 'real' | 'virtual'
  /** Derive node identities from the seed (deterministic DIDs). Default: true in virtual time, else false. */
  deterministicIdentities?: boolean
}

export interface TestnetNode<T extends TrustEngine = StaticTrustEngine> {
  index: number
  authority: string
  did: string
  /** `memory://node-<i>` */
  address: string
  identity: Identity
  router: Router
  transport: MemoryTransport
  /** This node's trust engine (the router's TrustEngine): the option's, else an operator-set `staticTrustEngine()`. */
  trust: T
}

export interface Testnet<T extends TrustEngine = StaticTrustEngine> {
  nodes: Array<TestnetNode<T>>
  network: MemoryNetwork
  /** The edges dialled, as node index pairs. */
  edges: Array<[number, number]>
  /** Resolves once every node can route to every other one. */
  waitForRoutes(options?: AbortOptions & { timeoutMs?: number }): Promise<void>
  /**
   * Resolves with `p`'s value; in virtual time it advances the network (in steps of `stepMs`,
   * default 10 ms of network time) until `p` settles or `timeoutMs` of network time passed.
   */
  drive<T>(p: Promise<T>, options?: { stepMs?: number; timeoutMs?: number }): Promise<T>
  stop(): Promise<void>
}

/** The identity of node `i` of a deterministic testnet. */
export function testnetIdentity(seed: number, i: number, backend: 'native' | 'noble' = 'native'): Identity {
  const bytes = createHash('sha256').update(`kos-mesh testnet ${seed} ${i}`).digest()
  return identityFromSeed(new Uint8Array(bytes), { backend })
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
    const rnd = mulberry32((seed ^ 0x9e3779b9) >>> 0)
    const extra = Math.max(0, Math.floor((n * (d - 2)) / 2))
    for (let k = 0; k < extra; k++) add(Math.floor(rnd() * n), Math.floor(rnd() * n))
  }
  return [...edges].map((e) => e.split(',').map(Number) as [number, number])
}

/** Waits (in the network's time) until `check()` holds; in virtual time it advances the network. */
async function until(network: MemoryNetwork, check: () => boolean, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const clock = network.time === 'virtual' ? network.clock : systemClock
  const deadline = clock.now() + timeoutMs
  while (!check()) {
    if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason })
    if (clock.now() > deadline) throw new TimeoutError(`expected the mesh to converge within ${timeoutMs} ms`)
    if (network.time === 'virtual') await network.runFor(5)
    else await systemClock.sleep(5)
  }
}

async function driveNetwork<T>(network: MemoryNetwork, p: Promise<T>, stepMs = 10, timeoutMs = 600_000): Promise<T> {
  if (network.time !== 'virtual') return p
  let settled = false
  const out = p.finally(() => { settled = true })
  out.catch(() => {})
  const deadline = network.clock.now() + timeoutMs
  while (!settled) {
    if (network.clock.now() > deadline) throw new TimeoutError(`expected the promise to settle within ${timeoutMs} ms of network time`)
    await network.runFor(stepMs)
  }
  return out
}

/** Builds, connects and starts `n` routers on a memory network. */
export async function createTestnet<T extends TrustEngine = StaticTrustEngine>(n: number, options: TestnetOptions<T> = {}): Promise<Testnet<T>> {
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new InvalidParametersError(`expected n in 1..10000, got ${n}`)
  const seed = options.seed ?? 0
  const domain = options.domain ?? 'mesh.kai'
  const virtual = options.time === 'virtual' || options.network?.time === 'virtual'
  const network = options.network ?? createMemoryNetwork({ seed, defaults: options.link ?? {}, time: virtual ? 'virtual' : 'real' })
  const backend = options.backend ?? 'native'
  const verifier = createSignatureVerifier({ backend })
  const deterministic = options.deterministicIdentities ?? virtual
  const timeoutMs = options.timeoutMs ?? 30_000
  const nodes: Array<TestnetNode<T>> = []
  for (let i = 0; i < n; i++) {
    const identity = deterministic ? testnetIdentity(seed, i, backend) : generateIdentity({ backend })
    const address = `memory://node-${i}`
    const authority = `node-${i}.${domain}`
    const transport = memoryTransport({ peerId: identity.did, network })
    const trust = options.trustEngine === undefined ? (staticTrustEngine() as unknown as T) : options.trustEngine({ index: i, identity, clock: network.clock })
    // in virtual time nothing may depend on wall time: no pipeline slices
    const router = klpRouter({ ...(virtual ? { pipelineSliceMs: Infinity } : {}), ...options.router, authority, listen: [address] })({
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
  const drive = <T>(p: Promise<T>, o: { stepMs?: number; timeoutMs?: number } = {}): Promise<T> => driveNetwork(network, p, o.stepMs, o.timeoutMs)
  const waitForRoutes = async (o: AbortOptions & { timeoutMs?: number } = {}): Promise<void> => {
    await until(network, () => nodes.every((a) => nodes.every((b) => a === b || a.router.routingTable.lookup(b.authority) !== undefined)), o.timeoutMs ?? timeoutMs, o.signal)
  }
  try {
    await Promise.all(nodes.map((x) => x.router.start()))
    // real time: dials give up after `timeoutMs` (virtual time: `drive` bounds the network time)
    const ac = new AbortController()
    const timer = virtual ? undefined : systemClock.setTimeout(() => ac.abort(new TimeoutError(`expected the mesh to form within ${timeoutMs} ms`)), timeoutMs, { unref: true })
    const signal = virtual ? undefined : ac.signal
    const byNode = new Map<number, Array<[number, number]>>()
    for (const e of edges) byNode.set(e[0], [...(byNode.get(e[0]) ?? []), e])
    // dial in parallel per dialling node, sequentially within one node
    await drive(Promise.all([...byNode.values()].map(async (list) => {
      for (const [a, b] of list) await nodes[a]!.router.dial(nodes[b]!.address, { remotePeer: nodes[b]!.did, ...(signal === undefined ? {} : { signal }) })
    })), { timeoutMs }).finally(() => systemClock.clearTimeout(timer))
    if (options.waitForRoutes !== false) await waitForRoutes()
  } catch (err) {
    await stop()
    throw err
  }
  return { nodes, network, edges, waitForRoutes, drive, stop }
}
