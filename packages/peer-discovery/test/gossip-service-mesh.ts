/**
 * A virtual-time mesh of klp-routers on the memory transport, each optionally running the gossip
 * service, with per-node counts of broadcast deliveries and of duplicate copies the router rejected.
 */
import { createSignatureVerifier } from '@kos-mesh/did-security'
import { KLPMessageType, ProcessingStatus, type KLPMessage } from '@kos-mesh/interface'
import { createTestnet, type Testnet } from '@kos-mesh/klp-router/testnet'
import { gossipService, type GossipService, type GossipServiceInit } from '../src/index.js'

export const verifier = createSignatureVerifier()

export interface MeshNode {
  index: number
  did: string
  node: Testnet['nodes'][number]
  gossip: GossipService | undefined
  /** message id -> deliveries to the BROADCAST_ANNOUNCE handler */
  delivered: Map<string, number>
  /** message id -> copies rejected as duplicates (`replay`) */
  duplicates: Map<string, number>
}

export interface Mesh {
  net: Testnet
  nodes: MeshNode[]
  run(ms: number): Promise<void>
  stop(): Promise<void>
}

export interface MeshOptions {
  n: number
  seed: number
  loss?: number
  latencyMs?: number
  degree?: number
  /** Run the gossip service (else the routers flood); nodes join one by one (`autoJoin` off). */
  gossip?: GossipServiceInit | false
  /** Time between two joins, ms. Default 50. */
  joinGapMs?: number
}

export async function createMesh(o: MeshOptions): Promise<Mesh> {
  const net = await createTestnet(o.n, {
    time: 'virtual',
    seed: o.seed,
    topology: { random: o.degree ?? 6 },
    link: { latencyMs: o.latencyMs ?? 20, loss: o.loss ?? 0 },
    // the overlay's eager paths may be longer than the mesh's shortest ones
    router: { hopLimit: 32, routeRefreshMs: 0, routeUpdateDelayMs: 1000 },
  })
  const clock = net.network.clock
  const nodes: MeshNode[] = net.nodes.map((node) => {
    const m: MeshNode = { index: node.index, did: node.did, node, gossip: undefined, delivered: new Map(), duplicates: new Map() }
    node.router.handle(KLPMessageType.BROADCAST_ANNOUNCE, (msg: KLPMessage) => {
      const id = msg.metadata.message_id
      m.delivered.set(id, (m.delivered.get(id) ?? 0) + 1)
      return { status: ProcessingStatus.PROCESSED }
    })
    node.router.addEventListener('message:rejected', (e) => {
      const { reason, messageId } = e.detail
      if (reason === 'replay' && messageId !== undefined) m.duplicates.set(messageId, (m.duplicates.get(messageId) ?? 0) + 1)
    })
    if (o.gossip !== false && o.gossip !== undefined) {
      m.gossip = gossipService({ autoJoin: false, ...o.gossip })({ router: node.router, identity: node.identity, signatureVerifier: verifier, clock })
    }
    return m
  })
  const run = (ms: number): Promise<void> => net.network.runFor(ms, { stepMs: 10 }).then(() => undefined)
  // nodes join one after another, each through its ring predecessor (already in the overlay)
  for (const m of nodes) {
    if (m.gossip === undefined) continue
    await net.drive(Promise.resolve(m.gossip.start()))
    if (m.index > 0) await net.drive(m.gossip.join(nodes[m.index - 1]!.did))
    await run(o.joinGapMs ?? 50)
  }
  return {
    net,
    nodes,
    run,
    stop: async () => {
      await Promise.all(nodes.map((m) => m.gossip?.stop()))
      await net.stop()
    },
  }
}

/** A seeded PRNG for the test's own choices (which node broadcasts). */
export function prng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    return s / 4294967296
  }
}
