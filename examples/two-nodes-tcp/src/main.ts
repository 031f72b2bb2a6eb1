/**
 * Two nodes talking over TCP, assembled from the packages with no reference node:
 * did-security identities, the TCP transport (authenticated, encrypted channel), and two KLP
 * routers. Bob serves a `word-count` handler; Alice dials Bob (refusing any other DID), sends
 * signed requests, and shows a priority request, a typed remote rejection and a timeout.
 *
 * Run: npx -y pnpm@12.21.0 --filter @kos-mesh/example-two-nodes-tcp start
 */
import { createSignatureVerifier, generateIdentity } from '@kos-mesh/did-security'
import { KLPMessageType, MessagePriority, ProcessingStatus } from '@kos-mesh/interface'
import { createRouter } from '@kos-mesh/klp-router'
import { tcp } from '@kos-mesh/transport-tcp'

const quiet = process.argv.includes('--quiet')
const say = (s = ''): void => { if (!quiet) console.log(s) }
let failures = 0
let passes = 0
function expect(what: string, ok: boolean, detail: string): void {
  if (ok) passes++; else failures++
  say(`  [${ok ? 'ok' : 'FAIL'}] ${what}: ${detail}`)
}

const verifier = createSignatureVerifier() // did:key resolution + the Ed25519 rule on node:crypto
const aliceId = generateIdentity()
const bobId = generateIdentity()

const bob = await createRouter({
  authority: 'bob.mesh.kai',
  identity: bobId,
  signatureVerifier: verifier,
  transports: [tcp()({ identity: bobId })],
  listen: ['tcp://127.0.0.1:0'],
  // no trustEngine: the router's default, an empty staticTrustEngine() of @kos-mesh/trust (zero
  // trust: only messages that ask for nothing pass), which is all this example needs
})
bob.handle(KLPMessageType.TASK_REQUEST, async (msg) => {
  const data = msg.payload.data as { text?: unknown }
  if (typeof data?.text !== 'string') {
    return { status: ProcessingStatus.REJECTED, reason: 'invalid_task' }
  }
  const words = data.text.split(/\s+/).filter(Boolean).length
  return { status: ProcessingStatus.PROCESSED, response: await bob.createResponse(msg, { words }) }
})

const alice = await createRouter({
  authority: 'alice.mesh.kai',
  identity: aliceId,
  signatureVerifier: verifier,
  transports: [tcp()({ identity: aliceId })],
  requestTimeoutMs: 2000,
})

try {
  const bobAddr = bob.addrs()[0]!
  say(`bob listens on ${bobAddr}`)

  // A dial that expects some other DID is refused by the handshake.
  const stranger = generateIdentity().did
  const refused = await alice.dial(bobAddr, { remotePeer: stranger }).then(() => 'connected', (e: Error) => e.name)
  expect('dial expecting another DID', refused === 'PeerMismatchError', refused)

  const peer = await alice.dial(bobAddr, { remotePeer: bobId.did })
  expect('dial bob (authenticated + signed hello)', peer.did === bobId.did, `${peer.authority} ${peer.did.slice(0, 24)}...`)

  const res = await alice.request({ type: KLPMessageType.TASK_REQUEST, target: 'klp://bob.mesh.kai/agents/word-count', data: { text: 'two nodes talking over tcp' } })
  expect('signed request -> signed response', (res.payload.data as { words?: number }).words === 5, JSON.stringify(res.payload.data))

  const urgent = await alice.request({ type: KLPMessageType.TASK_REQUEST, target: 'klp://bob.mesh.kai/agents/word-count', priority: MessagePriority.CRITICAL, data: { text: 'urgent' } })
  expect('CRITICAL priority request', (urgent.payload.data as { words?: number }).words === 1, JSON.stringify(urgent.payload.data))

  const bad = await alice.request({ type: KLPMessageType.TASK_REQUEST, target: 'klp://bob.mesh.kai/agents/word-count', data: { nope: true } })
    .then(() => 'accepted', (e: { name: string; reason?: string }) => `${e.name}:${e.reason}`)
  expect('malformed task -> typed remote rejection', bad === 'RemoteRejectedError:invalid_task', bad)

  const unknown = await alice.request({ type: KLPMessageType.VECTOR_SYNC, target: 'klp://bob.mesh.kai/services/vector', data: {} })
    .then(() => 'accepted', (e: { reason?: string }) => String(e.reason))
  expect('unhandled message type', unknown === 'unsupported_message_type', unknown)

  const m = bob.metrics()
  say(`\nbob metrics: messages in ${m.messagesIn}, out ${m.messagesOut}, bytes in ${m.bytesIn}, rejects ${JSON.stringify(m.rejects)}`)
} finally {
  await alice.stop()
  await bob.stop()
}
console.log(`two nodes over tcp: ${passes} passed, ${failures} failed`)
process.exit(failures === 0 ? 0 : 1)
