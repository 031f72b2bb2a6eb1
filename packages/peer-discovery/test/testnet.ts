import { createSignatureVerifier, generateIdentity } from '@kos-mesh/did-security'
import type { Identity } from '@kos-mesh/did-security'
import type { Clock } from '@kos-mesh/interface'
import { createRouter } from '@kos-mesh/klp-router'
import type { Router } from '@kos-mesh/klp-router'
import { createMemoryNetwork, memoryTransport } from '@kos-mesh/transport-memory'
import type { MemoryNetwork } from '@kos-mesh/transport-memory'
import { peerDiscovery } from '../src/index.js'
import type { PeerDiscovery, PeerDiscoveryInit } from '../src/index.js'

export const signatureVerifier = createSignatureVerifier()

export interface TestNode {
  name: string
  identity: Identity
  router: Router
  discovery: PeerDiscovery
}

/** Starts a router and its discovery service; with `clock`, both take their time from it (e.g. `network.clock`). */
export async function startNode(network: MemoryNetwork, name: string, init: PeerDiscoveryInit = {}, clock?: Clock): Promise<TestNode> {
  const identity = generateIdentity()
  const transport = memoryTransport({ network, peerId: identity.did })
  const router = await createRouter({
    authority: `${name}.mesh`,
    listen: [`memory://${name}`],
    identity,
    signatureVerifier,
    transports: [transport],
    requestTimeoutMs: 5000,
    ...(clock === undefined ? {} : { clock }),
  })
  const discovery = peerDiscovery({ refreshIntervalMs: 0, announceIntervalMs: 0, ...init })({ router, signer: identity.signer, signatureVerifier, ...(clock === undefined ? {} : { clock }) })
  await discovery.start()
  return { name, identity, router, discovery }
}

export async function stopAll(nodes: TestNode[]): Promise<void> {
  await Promise.all(nodes.map(async (n) => {
    await n.discovery.stop()
    await n.router.stop()
  }))
}

export function network(): MemoryNetwork {
  return createMemoryNetwork({ seed: 1 })
}
