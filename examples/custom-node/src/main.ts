/**
 * A custom node assembled from the packages, without the reference node.
 *
 * Each node is: a did:key identity (did-security) + the memory transport on a seeded network
 * simulator (20 ms +- 5 ms links, 3 % loss, 1 % duplication, reordering) + a KLP router +
 * peer discovery + one custom service: a tiny replicated key-value store that answers
 * TASK_REQUESTs `{ op: 'get' | 'put', key, value? }`. Nodes that host the store advertise the
 * `archive_services` capability in their signed node record, so clients find them by capability.
 *
 * The run: a seed and 5 nodes bootstrap, a client discovers the archive nodes through the
 * registry (ranked), writes a value to each over the lossy network (the router retransmits;
 * the responder's response cache makes the retries idempotent), reads them back, and the
 * network is partitioned and healed to show a clean typed failure and recovery.
 *
 * Run: npx -y pnpm@12.21.0 --filter @kos-mesh/example-custom-node start
 */
import { createSignatureVerifier, generateIdentity, type Identity } from '@kos-mesh/did-security'
import { KLPMessageType, ProcessingStatus, type KLPValue } from '@kos-mesh/interface'
import { createRouter, type Router } from '@kos-mesh/klp-router'
import { peerDiscovery, type PeerDiscovery } from '@kos-mesh/peer-discovery'
import { createMemoryNetwork, memoryTransport } from '@kos-mesh/transport-memory'

const quiet = process.argv.includes('--quiet')
const say = (s = ''): void => { if (!quiet) console.log(s) }
let passed = 0
let failed = 0
function expect(what: string, ok: boolean, detail = ''): void {
  if (ok) passed++; else failed++
  say(`  [${ok ? 'ok' : 'FAIL'}] ${what}${detail === '' ? '' : `: ${detail}`}`)
}

const network = createMemoryNetwork({ seed: 42, defaults: { latencyMs: 20, jitterMs: 5, loss: 0.03, duplicate: 0.01, reorder: 0.02 } })
const signatureVerifier = createSignatureVerifier()

interface MeshNode { name: string; identity: Identity; router: Router; discovery: PeerDiscovery; store?: Map<string, KLPValue> }

/** The custom service: a key-value store behind the router's TASK_REQUEST handler. */
function kvService(router: Router): Map<string, KLPValue> {
  const store = new Map<string, KLPValue>()
  router.handle(KLPMessageType.TASK_REQUEST, async (msg) => {
    const req = msg.payload.data as { op?: string; key?: unknown; value?: KLPValue }
    if (typeof req?.key !== 'string' || req.key.length > 256) return { status: ProcessingStatus.REJECTED, reason: 'invalid_task' }
    if (req.op === 'put' && req.value !== undefined) {
      if (store.size >= 10_000) return { status: ProcessingStatus.DEFERRED, reason: 'store_full', retry_after: 1 }
      store.set(req.key, req.value)
      return { status: ProcessingStatus.PROCESSED, response: await router.createResponse(msg, { ok: true }) }
    }
    if (req.op === 'get') {
      return { status: ProcessingStatus.PROCESSED, response: await router.createResponse(msg, { value: store.get(req.key) ?? null }) }
    }
    return { status: ProcessingStatus.REJECTED, reason: 'invalid_task' }
  })
  return store
}

async function startNode(name: string, archive: boolean): Promise<MeshNode> {
  const identity = generateIdentity()
  const router = await createRouter({
    authority: `${name}.mesh.kai`,
    listen: [`memory://${name}`],
    identity,
    signatureVerifier,
    transports: [memoryTransport({ network, peerId: identity.did })],
    requestTimeoutMs: 4000,
    requestRetries: 6,
  })
  const store = archive ? kvService(router) : undefined
  const discovery = peerDiscovery({ targetPeers: 3, node: { capabilities: { archive_services: archive, storage_gb: archive ? 64 : 0 } } })({
    router, signer: identity.signer, signatureVerifier,
  })
  await discovery.start()
  return { name, identity, router, discovery, ...(store !== undefined ? { store } : {}) }
}

const nodes: MeshNode[] = []
try {
  say('custom node: router + peer discovery + a kv service on a lossy simulated network (seed 42)\n')
  const seed = await startNode('seed', false)
  nodes.push(seed)
  const seeds = [{ address: 'memory://seed', did: seed.identity.did }]
  for (const [name, archive] of [['vault-1', true], ['vault-2', true], ['vault-3', true], ['relay', false], ['client', false]] as const) {
    const n = await startNode(name, archive)
    nodes.push(n)
    const r = await n.discovery.bootstrap(seeds, { signal: AbortSignal.timeout(20_000) })
    say(`  ${name.padEnd(7)} bootstrap ${r.status}: discovered ${r.discovered}, ${r.peer_connections} connection(s)`)
  }
  const client = nodes.find((n) => n.name === 'client')!
  await client.discovery.refresh?.()

  const archives = await client.discovery.discoverPeers({ required_capabilities: ['archive_services'], max_peers: 5 })
  const archiveDids = new Set(nodes.filter((n) => n.store !== undefined).map((n) => n.identity.did))
  expect('client finds the 3 archive nodes by capability', archives.length === 3 && archives.every((p) => archiveDids.has(p.peer_id)), `${archives.length} found`)

  const authorityOf = (did: string): string => nodes.find((n) => n.identity.did === did)!.router.authority
  say('\n  writes and reads over 20 ms links with 3 % loss, duplication and reordering:')
  for (const [i, peer] of archives.entries()) {
    const target = `klp://${authorityOf(peer.peer_id)}/services/kv`
    await client.router.request({ type: KLPMessageType.TASK_REQUEST, target, data: { op: 'put', key: `k${i}`, value: { n: i, text: `hello ${i}` } } })
    const got = await client.router.request({ type: KLPMessageType.TASK_REQUEST, target, data: { op: 'get', key: `k${i}` } })
    const value = (got.payload.data as { value?: { n?: number } }).value
    expect(`put + get k${i} on ${authorityOf(peer.peer_id)}`, value?.n === i, JSON.stringify(value))
  }
  const stored = nodes.filter((n) => n.store !== undefined).reduce((s, n) => s + n.store!.size, 0)
  expect('each put applied exactly once despite retransmissions', stored === archives.length, `${stored} entries`)

  say('\n  partition the client away, then heal:')
  const target = `klp://${authorityOf(archives[0]!.peer_id)}/services/kv`
  network.isolate(client.identity.did)
  const cut = await client.router.request({ type: KLPMessageType.TASK_REQUEST, target, data: { op: 'get', key: 'k0' } }, { timeoutMs: 1500 })
    .then(() => 'answered', (e: Error) => e.name)
  expect('request across a partition fails with a typed error', cut === 'RequestTimeoutError', cut)
  network.heal()
  const back = await client.router.request({ type: KLPMessageType.TASK_REQUEST, target, data: { op: 'get', key: 'k0' } })
  expect('after heal the same request succeeds', (back.payload.data as { value?: { n?: number } }).value?.n === 0)
  const m = network.metrics
  say(`\n  simulator: ${JSON.stringify(m)}`)
} catch (err) {
  failed++
  console.error('custom node example failed:', err)
} finally {
  for (const n of nodes.reverse()) { await n.discovery.stop(); await n.router.stop() }
}
console.log(`custom node: ${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
