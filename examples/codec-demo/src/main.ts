/**
 * KLP codec demo: two did:key identities exchange signed messages through the codec alone.
 *
 * Alice encodes and signs a few messages (one with a gzip + AES-256-GCM payload envelope), frames
 * them, and the bytes are fed to Bob's streaming FrameDecoder in random chunks, as a socket would
 * deliver them. Bob decodes strictly, checks expiry, verifies each signature (did:key resolution),
 * and opens the encrypted payload. Then the demo shows what gets rejected: a flipped bit, a forged
 * signer, an expired message, an oversized frame.
 *
 * Run: npx -y pnpm@12.21.0 --filter @kos-mesh/example-codec-demo start
 * Exits 0 when every check behaved as expected, 1 otherwise.
 */
import { randomBytes } from 'node:crypto'
import { createSignatureVerifier, generateIdentity } from '@kos-mesh/did-security'
import { KLPMessageType, MessagePriority, isKosMeshError } from '@kos-mesh/interface'
import type { KLPMessage } from '@kos-mesh/interface'
import {
  FrameDecoder, checkExpiry, createMessage, decodeMessage, decryptPayload, decompressPayload,
  encodeFrame, encodeMessage, encryptPayload, compressPayload, signMessage, verifyMessage,
} from '@kos-mesh/klp-codec'

const quiet = process.argv.includes('--quiet')
const log = (...args: unknown[]): void => { if (!quiet) console.log(...args) }

interface Check { what: string; expected: string; got: string; ok: boolean }
const checks: Check[] = []
function record(what: string, expected: string, got: string): void {
  checks.push({ what, expected, got, ok: expected === got })
}

async function outcome(fn: () => unknown): Promise<string> {
  try { await fn(); return 'accepted' } catch (err) {
    if (isKosMeshError(err)) return `rejected: ${err.name}`
    return `CRASH: ${String(err)}`
  }
}

const alice = generateIdentity()
const bob = generateIdentity()
const verifier = createSignatureVerifier()
log(`alice ${alice.did}\nbob   ${bob.did}\n`)

// 1. Alice builds and signs three messages.
const sharedKey = randomBytes(32) // in a real mesh: did-security sealed payloads / channel keys
const plain = [
  createMessage({
    type: KLPMessageType.TASK_REQUEST,
    source: 'klp://alice.mesh.kai/agents/planner',
    target: 'klp://bob.mesh.kai/agents/summarizer',
    data: { task: 'summarize', input: 'Federated meshes let agents cooperate without a central server.' },
    priority: MessagePriority.HIGH,
    ttl: 60,
  }),
  createMessage({
    type: KLPMessageType.BROADCAST_ANNOUNCE,
    source: 'klp://alice.mesh.kai/',
    target: 'klp://mesh.kai/broadcast',
    data: { hello: 'world', capabilities: ['agent_hosting', 'vector_storage'] },
  }),
]
const secret = createMessage({
  type: KLPMessageType.TASK_REQUEST,
  source: 'klp://alice.mesh.kai/agents/planner',
  target: 'klp://bob.mesh.kai/agents/vault',
  data: { note: 'the launch code is 0000'.repeat(40) },
})
plain.push({ ...secret, payload: encryptPayload(compressPayload(secret.payload), sharedKey) })

const signed: KLPMessage[] = []
for (const m of plain) signed.push(await signMessage(m, alice.signer))
const wire = signed.map((m) => encodeFrame(encodeMessage(m)))
const stream = Buffer.concat(wire)
log(`encoded ${signed.length} signed messages into ${stream.length} bytes of frames`)

// 2. Bob receives the byte stream in random chunks and decodes every frame.
const decoder = new FrameDecoder()
const received: KLPMessage[] = []
for (let at = 0; at < stream.length;) {
  const n = 1 + Math.floor(Math.random() * 97)
  for (const frame of decoder.push(stream.subarray(at, at + n))) received.push(decodeMessage(frame.body))
  at += n
}
record('frames decoded from random chunks', String(signed.length), String(received.length))

for (const msg of received) {
  const result = await outcome(async () => { checkExpiry(msg); await verifyMessage(msg, verifier) })
  record(`verify ${msg.type} ${msg.metadata.message_id.slice(0, 16)}...`, 'accepted', result)
}
const vault = received[2]
if (vault !== undefined) {
  const opened = decompressPayload(decryptPayload(vault.payload, sharedKey))
  const note = (opened.data as { note?: string }).note ?? ''
  record('encrypted payload opens with the key', 'true', String(note.startsWith('the launch code')))
  record('encrypted payload with a wrong key', 'rejected: AuthenticationFailedError', await outcome(() => decryptPayload(vault.payload, randomBytes(32))))
}

// 3. What gets rejected.
const good = encodeMessage(signed[0]!)
const flipped = good.slice()
flipped[Math.floor(flipped.length / 2)]! ^= 0x01
record('one flipped bit', 'rejected', (await outcome(async () => verifyMessage(decodeMessage(flipped), verifier))).split(':')[0]!)

const mallory = generateIdentity()
const forged = await signMessage(plain[0]!, mallory.signer)
const claimed = { ...forged, signer: alice.keyId } // mallory claims to be alice
record('forged signer (claims alice, signed by mallory)', 'rejected: InvalidSignatureError', await outcome(() => verifyMessage(decodeMessage(encodeMessage(claimed)), verifier)))

const old = await signMessage(createMessage({ type: KLPMessageType.TASK_REQUEST, source: 'klp://alice.mesh.kai/', target: 'klp://bob.mesh.kai/', data: 'late', ttl: 10, timestamp: Date.now() - 3_600_000 }), alice.signer)
record('expired message (1 h old, ttl 10 s)', 'rejected: MessageExpiredError', await outcome(() => checkExpiry(decodeMessage(encodeMessage(old)))))

const big = new FrameDecoder({ maxFrameSize: 1024 })
record('frame over the size limit', 'rejected', (await outcome(() => big.push(encodeFrame(new Uint8Array(4096))))).split(':')[0]!)

// 4. Summary.
const width = Math.max(...checks.map((c) => c.what.length))
log('\n' + 'check'.padEnd(width) + '  expected                           result')
log('-'.repeat(width + 60))
for (const c of checks) log(`${c.what.padEnd(width)}  ${c.expected.padEnd(34)} ${c.ok ? 'ok' : `FAILED (got ${c.got})`}`)
const failed = checks.filter((c) => !c.ok)
console.log(`\ncodec demo: ${checks.length - failed.length} passed, ${failed.length} failed`)
process.exit(failed.length === 0 ? 0 : 1)
