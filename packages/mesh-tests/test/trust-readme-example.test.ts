/**
 * The usage example of packages/trust/README.md, verbatim inside `example()`, so it runs.
 */
import { expect, it } from 'vitest'

async function example(): Promise<{ endorsements: number; held: boolean }> {
  // ---- README example starts here
  const { createSignatureVerifier, generateIdentity } = await import('@kos-mesh/did-security')
  const { createRouter } = await import('@kos-mesh/klp-router')
  const { createMemoryNetwork, memoryTransport } = await import('@kos-mesh/transport-memory')
  const { createTrustEngine, trustService } = await import('@kos-mesh/trust')

  const network = createMemoryNetwork({ seed: 1 })
  const verifier = createSignatureVerifier()

  async function startNode(name: string) {
    const identity = generateIdentity()
    // the engine is the router's TrustEngine: trust requirements and revocation are asked of it
    const engine = createTrustEngine({ self: identity.did })
    const router = await createRouter({
      authority: `${name}.mesh`,
      listen: [`memory://${name}`],
      identity,
      signatureVerifier: verifier,
      trustEngine: engine,
      transports: [memoryTransport({ network, peerId: identity.did })],
    })
    // the service spreads and serves signed statements over the router (add `store` to persist them)
    const trust = trustService({ publishIntervalMs: 60_000 })({ router, engine, signer: identity.signer, verifier })
    await trust.start()
    return { identity, router, engine, trust }
  }

  const alice = await startNode('alice')
  const bob = await startNode('bob')
  const carol = await startNode('carol')
  await bob.router.dial('memory://alice', { remotePeer: alice.identity.did })
  await carol.router.dial('memory://bob', { remotePeer: bob.identity.did })

  // Carol trusts Alice directly (an operator decision): Alice's endorsements count at Carol's
  carol.engine.setAnchor({ did: alice.identity.did, level: 8 })

  // Alice endorses Bob; the signed attestation floods alice -> bob -> carol
  const statement = await alice.trust.attest({ subject: bob.identity.did })
  while (!carol.engine.has(statement.id)) await new Promise((resolve) => setTimeout(resolve, 5))
  console.log(carol.engine.profile(bob.identity.did)) // { trust_score: ..., endorsements: 1, verification_level: ... }

  // Carol can also ask a neighbour for what it holds
  await carol.trust.fetch(bob.identity.did, { issuer: alice.identity.did })

  const result = { endorsements: carol.engine.profile(bob.identity.did).endorsements, held: bob.engine.has(statement.id) }
  for (const n of [alice, bob, carol]) {
    await n.trust.stop()
    await n.router.stop()
  }
  // ---- README example ends here
  return result
}

it('the README example runs', async () => {
  const r = await example()
  expect(r).toEqual({ endorsements: 1, held: true })
})
