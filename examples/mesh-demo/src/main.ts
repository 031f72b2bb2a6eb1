/**
 * The kos-mesh demo: a small federated mesh on loopback TCP (or libp2p: `--transport libp2p`).
 *
 * 1. A seed node starts; four nodes start with only the seed's address. Each bootstraps (seed
 *    connection, PEER_DISCOVERY peer table of signed node records), dials the best peers and
 *    ends up knowing every other node.
 * 2. Signed TASK_REQUESTs cross the mesh and are answered by the best eligible agent of the
 *    target node; a task nobody can do is rejected with no_eligible_agents.
 * 3. Zero trust: the `vault` node requires a trust score of 5 for tasks. A task from a node it
 *    trusts is answered; one from a node it does not trust is rejected with insufficient_trust.
 * 4. A forger (Mallory) opens an authenticated connection and sends a task that claims to be
 *    from alpha but is signed with Mallory's key: it is rejected with invalid_signature and no
 *    agent runs.
 *
 * Prints a summary table and exits 0 only when every step behaved as expected.
 * Run: npx -y pnpm@12.21.0 demo   (or: npx -y pnpm@12.21.0 --filter @kos-mesh/example-mesh-demo start)
 * On libp2p (KLP as the libp2p protocol /kos/klp/1.0.0, each node's key its PeerId):
 *   npx -y pnpm@12.21.0 demo --transport libp2p   (or KOS_MESH_DEMO_TRANSPORT=libp2p)
 */
import { generateIdentity, keyIdFromDid } from '@kos-mesh/did-security'
import { KLPMessageType, MessagePriority } from '@kos-mesh/interface'
import { createMessage, encodeMessage, signMessage } from '@kos-mesh/klp-codec'
import { EnvelopeKind, encodeEnvelope } from '@kos-mesh/klp-router'
import { echoAgent, mathAgent, textStatsAgent, createNode, libp2p, silentLogger, type AgentInit, type KosMeshNode, type TransportFactory } from '@kos-mesh/reference-node'
import { libp2pTransport } from '@kos-mesh/transport-libp2p'
import { tcp } from '@kos-mesh/transport-tcp'

const quiet = process.argv.includes('--quiet')
// --transport tcp|libp2p (also --transport=libp2p), else $KOS_MESH_DEMO_TRANSPORT, else tcp
const argAt = process.argv.indexOf('--transport')
const transportArg = argAt >= 0 ? process.argv[argAt + 1] : process.argv.find((a) => a.startsWith('--transport='))?.slice('--transport='.length)
const transportName = transportArg ?? process.env.KOS_MESH_DEMO_TRANSPORT ?? 'tcp'
if (transportName !== 'tcp' && transportName !== 'libp2p') {
  console.error(`mesh demo: expected --transport tcp or libp2p, got ${JSON.stringify(transportName)}`)
  process.exit(2)
}
const onLibp2p = transportName === 'libp2p'
const transport = (): TransportFactory => (onLibp2p ? libp2p() : tcp())
const LISTEN = onLibp2p ? 'libp2p:///ip4/127.0.0.1/tcp/0' : 'tcp://127.0.0.1:0'
const overWhat = onLibp2p ? 'libp2p (TCP, Noise, Yamux; /kos/klp/1.0.0)' : 'TCP'
const say = (line = ''): void => { if (!quiet) console.log(line) }
const started = Date.now()
const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(2)}s`

interface Step { step: string; expected: string; got: string; ok: boolean }
const steps: Step[] = []
function check(step: string, expected: string, got: string): void {
  steps.push({ step, expected, got, ok: expected === got })
  say(`  [${expected === got ? 'ok' : 'FAIL'}] ${step}: ${got}`)
}

async function outcome(fn: () => Promise<unknown>): Promise<string> {
  try { await fn(); return 'accepted' } catch (err) {
    const e = err as { reason?: string; name?: string }
    return `rejected: ${e.reason ?? e.name ?? String(err)}`
  }
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) { say(`  timed out waiting for ${what}`); return false }
    await new Promise((r) => setTimeout(r, 25))
  }
  return true
}

const agents: Record<string, Array<() => AgentInit>> = {
  alpha: [echoAgent],
  beta: [textStatsAgent],
  gamma: [mathAgent, echoAgent],
  vault: [echoAgent, mathAgent],
}

const nodes: Record<string, KosMeshNode> = {}
let exitCode = 1
try {
  say(`kos-mesh demo: a federated mesh on loopback ${overWhat}\n`)
  say('1. bootstrap from one seed')
  const seed = createNode({
    authority: 'seed.mesh.kai',
    nodeType: 'GatewayNode',
    transports: [transport()],
    listen: [LISTEN],
    logger: silentLogger,
  })
  await seed.start()
  nodes.seed = seed
  const seedAddr = seed.addrs()[0]!
  say(`  seed ${seed.did.slice(0, 24)}... listening on ${seedAddr.split('/did:')[0]}`)

  for (const name of ['alpha', 'beta', 'gamma', 'vault'] as const) {
    const node = createNode({
      authority: `${name}.mesh.kai`,
      transports: [transport()],
      listen: [LISTEN],
      seeds: [seedAddr],
      agents: (agents[name] ?? []).map((make) => make()),
      // the vault is closed: tasks need a trust score of 5 here, whatever the sender asks for
      taskMinTrust: name === 'vault' ? 5 : 0,
      logger: silentLogger,
    })
    await node.start()
    nodes[name] = node
    const boot = node.status().bootstrap
    say(`  ${name.padEnd(5)} ${node.did.slice(0, 24)}... bootstrap ${boot?.status ?? '?'}, ${boot?.peer_connections ?? 0} peer connection(s)`)
  }

  const all = Object.values(nodes)
  const knowsEveryone = (n: KosMeshNode): boolean => {
    const known = new Set(n.peers().map((p) => p.did))
    return all.every((m) => m === n || known.has(m.did))
  }
  const found = await waitFor('every node to discover every other', () => all.every(knowsEveryone))
  check('every node discovered the 4 others', 'true', String(found))
  for (const [name, n] of Object.entries(nodes)) {
    const peers = n.peers()
    say(`  ${name.padEnd(5)} knows ${peers.length} peers, ${peers.filter((p) => p.connected).length} connected: ${peers.map((p) => p.authority ?? '?').sort().join(', ')}`)
  }

  say('\n2. signed tasks across the mesh')
  const alpha = nodes.alpha!, beta = nodes.beta!, gamma = nodes.gamma!, vault = nodes.vault!
  const sum = await alpha.task('klp://gamma.mesh.kai/agents/math', { capability: 'math', input: '(17 + 25) * 2 - 4 / 2' })
  check('alpha -> gamma math "(17 + 25) * 2 - 4 / 2"', '82', String((sum.result as { value?: number }).value))
  const stats = await gamma.task('klp://beta.mesh.kai', { capability: 'text-stats', input: 'Agents cooperate across the mesh. The mesh routes signed messages between agents.' })
  const words = (stats.result as { words?: number }).words
  check('gamma -> beta text-stats (word count)', '12', String(words))
  const echo = await beta.task('klp://alpha.mesh.kai/agents/echo', { capability: 'echo', input: 'hello from beta' })
  check('beta -> alpha echo', 'hello from beta', String(echo.result))
  check('alpha -> beta "translate" (no agent has it)', 'rejected: no_eligible_agents',
    await outcome(() => alpha.task('klp://beta.mesh.kai', { capability: 'translate', input: 'hola' })))

  say('\n3. zero trust: vault requires trust >= 5 for tasks')
  await vault.trust(alpha.did, 7)
  check('alpha (trusted at 7) -> vault math', 'accepted',
    await outcome(() => alpha.task('klp://vault.mesh.kai/agents/math', { capability: 'math', input: '2 ^ 10' })))
  check('beta (untrusted) -> vault math', 'rejected: insufficient_trust',
    await outcome(() => beta.task('klp://vault.mesh.kai/agents/math', { capability: 'math', input: '2 ^ 10' })))

  say('\n4. a forged message: Mallory signs a task that claims to be from alpha')
  const mallory = generateIdentity()
  const malloryTransport = onLibp2p ? libp2pTransport()({ identity: mallory }) : tcp()({ identity: mallory })
  const conn = await malloryTransport.dial(gamma.addrs()[0]!.split('/did:')[0]!, { remotePeer: gamma.did })
  say(`  mallory connected to gamma over an authenticated channel as ${mallory.did.slice(0, 24)}...`)
  const hello = await signMessage(createMessage({
    type: KLPMessageType.PEER_DISCOVERY, source: 'klp://mallory.mesh.kai/', target: 'klp://mallory.mesh.kai/.router/hello',
    content_type: 'application/vnd.kos-mesh.router-hello+cbor', priority: MessagePriority.CRITICAL,
    data: { authority: 'mallory.mesh.kai', known: true, routes: [] },
  }), mallory.signer)
  await conn.send(encodeEnvelope(EnvelopeKind.HELLO, 0, 0, encodeMessage(hello)))
  // claims alpha's key id, but signs with mallory's key
  const forgedSigner = { ...mallory.signer, keyId: keyIdFromDid(alpha.did), sign: (d: Uint8Array) => mallory.sign(d) }
  const forged = await signMessage(createMessage({
    type: KLPMessageType.TASK_REQUEST, source: 'klp://alpha.mesh.kai/agents/echo', target: 'klp://gamma.mesh.kai/agents/math',
    data: { capability: 'math', input: '1 + 1' },
  }), forgedSigner)
  const before = gamma.router.metrics().rejects.invalid_signature ?? 0
  await conn.send(encodeEnvelope(EnvelopeKind.MESSAGE, 0, 0, encodeMessage(forged)))
  await waitFor('gamma to reject the forgery', () => (gamma.router.metrics().rejects.invalid_signature ?? 0) > before, 5000)
  check('forged task (claims alpha, signed by mallory)', 'rejected: invalid_signature',
    (gamma.router.metrics().rejects.invalid_signature ?? 0) > before ? 'rejected: invalid_signature' : 'accepted')
  await malloryTransport.close()

  exitCode = steps.every((s) => s.ok) ? 0 : 1
} catch (err) {
  console.error('demo failed:', err)
  steps.push({ step: 'demo ran to the end', expected: 'no error', got: String(err), ok: false })
} finally {
  await Promise.allSettled(Object.values(nodes).map((n) => n.stop()))
}

// Summary
const w = Math.max(...steps.map((s) => s.step.length), 4)
console.log(`\n${'step'.padEnd(w)}  ${'expected'.padEnd(30)}  result`)
console.log('-'.repeat(w + 44))
for (const s of steps) console.log(`${s.step.padEnd(w)}  ${s.expected.padEnd(30)}  ${s.ok ? 'ok' : `FAILED (got ${s.got})`}`)
const failed = steps.filter((s) => !s.ok).length
console.log(`\nmesh demo (${transportName}): ${steps.length - failed} passed, ${failed} failed (${elapsed()})`)
process.exit(failed === 0 && exitCode === 0 ? 0 : 1)
