import { expect, it } from 'vitest'

// The README's usage example (static imports turned into dynamic ones), so it keeps working.
it('README example runs', async () => {
  // --- README example start
  const { createSignatureVerifier, generateIdentity } = await import('@kos-mesh/did-security')
  const { createRouter } = await import('@kos-mesh/klp-router')
  const { createMemoryNetwork, memoryTransport } = await import('@kos-mesh/transport-memory')
  const { peerDiscovery } = await import('@kos-mesh/peer-discovery')

  const network = createMemoryNetwork({ seed: 1 })
  const signatureVerifier = createSignatureVerifier()

  async function startNode(name: string, capabilities = {}) {
    const identity = generateIdentity()
    const router = await createRouter({
      authority: `${name}.mesh`,
      listen: [`memory://${name}`],
      identity,
      signatureVerifier,
      transports: [memoryTransport({ network, peerId: identity.did })],
    })
    const discovery = peerDiscovery({ targetPeers: 4, node: { capabilities } })({
      router,
      signer: identity.signer,
      signatureVerifier,
    })
    await discovery.start()
    return { identity, router, discovery }
  }

  const seed = await startNode('seed')
  const host = await startNode('host', { agent_hosting: true })
  const me = await startNode('me')

  const seeds = [{ address: 'memory://seed', did: seed.identity.did }]
  await host.discovery.bootstrap(seeds)
  const result = await me.discovery.bootstrap(seeds, { signal: AbortSignal.timeout(10_000) })
  console.log(result.status, result.discovered, result.peer_connections) // completed 2 2

  const hosts = await me.discovery.discoverPeers({ required_capabilities: ['agent_hosting'], max_peers: 5 })
  console.log(hosts.map((p) => p.peer_id)) // [ host's DID ]

  for (const n of [me, host, seed]) {
    await n.discovery.stop()
    await n.router.stop()
  }
  // --- README example end
  expect(result.status).toBe('completed')
  expect(result.discovered).toBe(2)
  expect(result.peer_connections).toBe(2)
  expect(hosts.map((p) => p.peer_id)).toEqual([host.identity.did])
})
