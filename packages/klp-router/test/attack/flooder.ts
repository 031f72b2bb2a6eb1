/**
 * An attacker process (spawned by the attack harness, so that its CPU is not the target's):
 *   node --import tsx flooder.ts <mode> <targetAddr> <targetDid> <count> <bytes> <ttlSeconds> [dids]
 * mode `flood`: a router that reads normally and sends `count` pre-signed tasks as fast as the
 * connection takes them; mode `noread`: a bare transport connection that sends the tasks and
 * never reads a byte (its socket is paused once its inbound buffer is full). With `dids` > 1 the
 * tasks are signed by that many throw-away DIDs, each on a connection of its own (one process, so
 * the attack does not take more CPU than one attacker machine). Prints `ready`, waits for a line
 * on stdin, floods, prints `done <sent>` and stays connected until killed.
 */
import { createInterface } from 'node:readline'
import { createSignatureVerifier, generateIdentity, type Identity } from '@kos-mesh/did-security'
import { KLPMessageType, MessagePriority, type KLPMessage } from '@kos-mesh/interface'
import { createMessage, encodeMessage, signMessage } from '@kos-mesh/klp-codec'
import { tcp } from '@kos-mesh/transport-tcp'
import { createRouter } from '../../src/index.js'
import { EnvelopeKind, encodeEnvelope } from '../../src/envelope.js'

const [mode, addr, targetDid, countS, bytesS, ttlS, didsS] = process.argv.slice(2) as [string, string, string, string, string, string, string | undefined]
const count = Number(countS)
const bytes = Number(bytesS)
const ttl = Number(ttlS)
const dids = Number(didsS ?? 1)
const signers: Identity[] = Array.from({ length: dids }, () => generateIdentity())
const authorityOf = (i: Identity): string => `flood-${i.did.slice(-10).toLowerCase()}.mesh.kai`

const msgs: KLPMessage[] = []
const now = Date.now()
const payload = bytes > 0 ? new Uint8Array(bytes) : undefined
for (let i = 0; i < (mode === 'honest' ? 0 : count); i++) {
  const signer = signers[i % signers.length]!
  const source = authorityOf(signer)
  msgs.push(await signMessage(createMessage({
    type: KLPMessageType.TASK_REQUEST,
    source: `klp://${source}/`,
    target: 'klp://target.mesh.kai/echo',
    data: payload ?? `flood-${i}`,
    ttl,
    timestamp: now + Math.floor(i / 8),
  }), signer.signer))
}

if (mode === 'honest') {
  // sequential echo requests; prints their latencies (ms) as JSON
  const id = signers[0]!
  const router = await createRouter({ authority: authorityOf(id), identity: id, signatureVerifier: createSignatureVerifier(), transports: [tcp()({ identity: id })] })
  await router.dial(addr, { remotePeer: targetDid })
  process.stdout.write(`ready ${signers[0]!.did}\n`)
  const rl = createInterface({ input: process.stdin })
  rl.on('line', async (line) => {
    const n = Number(line) > 0 ? Number(line) : count
    const lat: number[] = []
    // per request: [message id, wall-clock ms at send, at answer] (performance.timeOrigin-based, comparable across processes)
    const trace: Array<[string, number, number]> = []
    let failed = 0
    for (let i = 0; i < n; i++) {
      const t0 = performance.now()
      try {
        const res = await router.request({ type: KLPMessageType.TASK_REQUEST, target: 'klp://target.mesh.kai/echo', data: payload ?? `honest-${i}`, ttl }, { timeoutMs: 30_000 })
        const t1 = performance.now()
        lat.push(t1 - t0)
        trace.push([res.metadata.correlation_id ?? '', performance.timeOrigin + t0, performance.timeOrigin + t1])
      } catch {
        failed++
      }
    }
    process.stdout.write(`done ${JSON.stringify({ lat, failed, trace })}\n`)
  })
  rl.on('close', () => process.exit(0))
  await new Promise(() => {})
}

const senders: Array<(m: KLPMessage) => Promise<void>> = []
for (const id of signers) {
  const authority = authorityOf(id)
  if (mode === 'flood') {
    const router = await createRouter({ authority, identity: id, signatureVerifier: createSignatureVerifier(), transports: [tcp()({ identity: id })] })
    await router.dial(addr, { remotePeer: targetDid })
    senders.push(async (m) => { await router.send(m) })
    continue
  }
  const conn = await tcp()({ identity: id }).dial(addr, { remotePeer: targetDid })
  const hello = await signMessage(createMessage({
    type: KLPMessageType.PEER_DISCOVERY,
    source: `klp://${authority}/.router/hello`,
    target: `klp://${authority}/.router/hello`,
    content_type: 'application/vnd.kos-mesh.router-hello+cbor',
    priority: MessagePriority.CRITICAL,
    data: { authority, known: true, routes: [] },
  }), id.signer)
  await conn.send(encodeEnvelope(EnvelopeKind.HELLO, 0, 0, encodeMessage(hello)))
  senders.push((m) => conn.send(encodeEnvelope(EnvelopeKind.MESSAGE, 0, 0, encodeMessage(m))))
}
process.stdout.write(`ready ${signers[0]!.did}\n`)
const rl = createInterface({ input: process.stdin })
await new Promise<void>((resolve) => rl.once('line', () => resolve()))
let sent = 0
// one sending loop per connection, all at once
await Promise.all(senders.map(async (send, k) => {
  for (let i = k; i < msgs.length; i += senders.length) {
    for (;;) {
      try {
        await send(msgs[i]!)
        sent++
        break
      } catch (err) {
        // the transport's outbound bound: the target stopped reading us for now, try again
        if ((err as Error).name !== 'SendBufferFullError') return
        await new Promise((r) => setTimeout(r, 5))
      }
    }
  }
}))
process.stdout.write(`done ${sent}\n`)
rl.on('close', () => process.exit(0))
