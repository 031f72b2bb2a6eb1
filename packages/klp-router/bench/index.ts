/**
 * klp-router benchmarks.
 *  1. Pipeline throughput: pre-encoded frames through the whole inbound path (envelope, decode,
 *     expiry, replay window, signature verify, trust check, fair scheduler, dispatch), against the
 *     bare native Ed25519 verify (node:crypto, cached KeyObject) of the same signing inputs.
 *  2. The same on the noble backend against bare noble verify.
 *  3. Request/response latency on loopback TCP (transport-tcp) against a bare node:net echo.
 * Run: npx tsx bench/index.ts   (BENCH_SECONDS=0.5 for a quick run)
 */
import { createPublicKey, verify as nodeVerify } from 'node:crypto'
import { createServer, connect, type Socket } from 'node:net'
import { createSignatureVerifier, ed25519Verify, generateIdentity } from '@kos-mesh/did-security'
import { KLPMessageType, ProcessingStatus, type Connection, type Transport } from '@kos-mesh/interface'
import { createMessage, getSigningInput, signMessage, encodeMessage, decodeMessage, verifyMessage } from '@kos-mesh/klp-codec'
import { tcp } from '@kos-mesh/transport-tcp'
import { createRouter, klpRouter, type Router } from '../src/router.js'
import { EnvelopeKind, encodeEnvelope } from '../src/envelope.js'
import { measure, report, row, type BenchRow } from '../../../scripts/bench-util.js'

const BATCH = 64

/** A connection fed by the benchmark: frames pushed in are read by the router. */
class FeedConnection implements Connection {
  readonly id = 'bench-feed'
  readonly direction = 'inbound' as const
  readonly remoteAddr = 'bench://feed'
  status: 'open' | 'closing' | 'closed' = 'open'
  readonly closed: Promise<void>
  private closeResolve!: () => void
  private queue: Uint8Array[] = []
  private wake: (() => void) | undefined
  constructor(readonly remotePeer: string) {
    this.closed = new Promise((r) => { this.closeResolve = r })
  }
  push(frames: Uint8Array[]): void {
    for (const f of frames) this.queue.push(f)
    this.wake?.()
  }
  async send(): Promise<void> {}
  async close(): Promise<void> { this.abort() }
  abort(): void {
    this.status = 'closed'
    this.wake?.()
    this.closeResolve()
  }
  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      while (this.queue.length > 0) yield this.queue.shift()!
      if (this.status !== 'open') return
      await new Promise<void>((r) => { this.wake = r })
      this.wake = undefined
    }
  }
}

function feedTransport(onListen: (h: (c: Connection) => void) => void): Transport {
  return {
    name: 'bench',
    canDial: (a) => a.startsWith('bench://'),
    dial: async () => { throw new Error('not dialable') },
    listen: async (_a, handler) => { onListen(handler); return { addrs: () => ['bench://feed'], close: async () => {} } },
    close: async () => {},
  }
}

interface Pipeline {
  /** Pushes one batch of frames and resolves when all were dispatched. */
  step(): Promise<void>
  stop(): Promise<void>
}

async function pipeline(backend: 'native' | 'noble', frames: Uint8Array[], senderDid: string): Promise<Pipeline> {
  let handler!: (c: Connection) => void
  const node = generateIdentity()
  const router = klpRouter({ authority: 'bench.mesh.kai', listen: ['bench://feed'], rateLimit: false, maxQueuePerPeer: 4096, maxQueueTotal: 8192, replayCacheSize: 1_000_000 })({
    signer: node.signer,
    signatureVerifier: createSignatureVerifier({ backend }),
    transports: [feedTransport((h) => { handler = h })],
  })
  let processed = 0
  let waiter: (() => void) | undefined
  let target = 0
  router.handle(KLPMessageType.VECTOR_SYNC, () => {
    processed++
    if (processed >= target && waiter !== undefined) waiter()
    return { status: ProcessingStatus.PROCESSED }
  })
  await router.start()
  const conn = new FeedConnection(senderDid)
  handler(conn)
  let next = 0
  return {
    async step() {
      if (next + BATCH > frames.length) throw new Error(`frame pool of ${frames.length} exhausted; raise POOL`)
      target = processed + BATCH
      const done = new Promise<void>((r) => { waiter = r })
      conn.push(frames.slice(next, next + BATCH))
      next += BATCH
      await done
      waiter = undefined
    },
    async stop() {
      const m = router.metrics()
      const rejected = Object.values(m.rejects).reduce((a, b) => a + b, 0)
      if (rejected > 0) throw new Error(`pipeline rejected ${rejected} frames: ${JSON.stringify(m.rejects)}`)
      await router.stop()
    },
  }
}

/**
 * The machine is shared and noisy: the pipeline and its baseline are measured in alternating short
 * rounds, and the medians (and the median of the per-round ratios) are reported.
 */
async function interleaved(rounds: number, seconds: number, a: () => unknown, b: () => unknown): Promise<{ a: number; b: number; ratio: number }> {
  const as: number[] = []
  const bs: number[] = []
  const ratios: number[] = []
  for (let i = 0; i < rounds; i++) {
    const ra = await measure(a, { seconds, warmupSeconds: 0.1 })
    const rb = await measure(b, { seconds, warmupSeconds: 0.1 })
    as.push(ra)
    bs.push(rb)
    ratios.push(rb / ra)
  }
  const med = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!
  return { a: med(as), b: med(bs), ratio: med(ratios) }
}

async function makeFrames(n: number): Promise<{ frames: Uint8Array[]; did: string; inputs: Uint8Array[]; sigs: Uint8Array[]; publicKey: Uint8Array }> {
  const id = generateIdentity()
  const frames: Uint8Array[] = []
  const inputs: Uint8Array[] = []
  const sigs: Uint8Array[] = []
  const now = Date.now()
  for (let i = 0; i < n; i++) {
    const msg = await signMessage(createMessage({
      type: KLPMessageType.VECTOR_SYNC,
      source: 'klp://sender.mesh.kai/agents/a',
      target: 'klp://bench.mesh.kai/services/vector',
      data: { seq: i, text: 'x'.repeat(300), vec: new Uint8Array(64) },
      timestamp: now,
      ttl: 3600,
    }), id.signer)
    const body = encodeMessage(msg)
    frames.push(encodeEnvelope(EnvelopeKind.MESSAGE, 0, 0, body))
    if (i < 4096) {
      inputs.push(getSigningInput(decodeMessage(body)))
      sigs.push(msg.signature)
    }
  }
  return { frames, did: id.did, inputs, sigs, publicKey: id.publicKey }
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}

async function tcpLatency(n: number): Promise<{ p50: number; p99: number; size: number }> {
  const ia = generateIdentity()
  const ib = generateIdentity()
  const verifier = createSignatureVerifier()
  const a = await createRouter({ authority: 'a.mesh.kai', identity: ia, signatureVerifier: verifier, transports: [tcp()({ identity: ia })], listen: ['tcp://127.0.0.1:0'] })
  const b = await createRouter({ authority: 'b.mesh.kai', identity: ib, signatureVerifier: verifier, transports: [tcp()({ identity: ib })], listen: ['tcp://127.0.0.1:0'] })
  b.handle(KLPMessageType.TASK_REQUEST, async (msg) => ({ status: ProcessingStatus.PROCESSED, response: await b.createResponse(msg, msg.payload.data) }))
  await a.dial(b.addrs()[0]!, { remotePeer: ib.did })
  const data = { blob: new Uint8Array(1024) }
  let size = 0
  const times: number[] = []
  for (let i = 0; i < n + 200; i++) {
    const t0 = performance.now()
    const r = await a.request({ type: KLPMessageType.TASK_REQUEST, target: 'klp://b.mesh.kai/', data })
    if (i >= 200) times.push(performance.now() - t0)
    size = encodeMessage(r).byteLength
  }
  await a.stop()
  await b.stop()
  return { p50: percentile(times, 50), p99: percentile(times, 99), size }
}

async function rawEcho(n: number, size: number): Promise<{ p50: number; p99: number }> {
  const server = createServer((s) => s.pipe(s))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  const sock: Socket = connect(port, '127.0.0.1')
  sock.setNoDelay(true)
  await new Promise<void>((r) => sock.once('connect', r))
  const payload = Buffer.alloc(size + 4)
  payload.writeUInt32BE(size, 0)
  let got = 0
  let resolve: (() => void) | undefined
  sock.on('data', (d) => {
    got += d.length
    if (got >= payload.length && resolve !== undefined) {
      got -= payload.length
      const r = resolve
      resolve = undefined
      r()
    }
  })
  const times: number[] = []
  for (let i = 0; i < n + 200; i++) {
    const t0 = performance.now()
    await new Promise<void>((r) => { resolve = r; sock.write(payload) })
    if (i >= 200) times.push(performance.now() - t0)
  }
  sock.destroy()
  server.close()
  return { p50: percentile(times, 50), p99: percentile(times, 99) }
}

async function main(): Promise<void> {
  const rows: BenchRow[] = []
  const secs = Number(process.env.BENCH_SECONDS ?? 1.5)
  const POOL = Math.ceil(Math.max(12_000, 16_000 * (Math.max(0.2, secs / 4) + 0.15) * 5 + 4_000))
  console.log(`signing ${POOL} frames...`)
  const { frames, did, inputs, sigs, publicKey } = await makeFrames(POOL)

  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') }, format: 'jwk' })
  const ROUNDS = 5
  const roundSecs = Math.max(0.2, secs / 4)
  let j = 0
  const bareNativeFn = (): void => {
    const k = j++ % inputs.length
    if (!nodeVerify(null, inputs[k]!, key, sigs[k]!)) throw new Error('bad signature')
  }
  const pn = await pipeline('native', frames, did)
  const native = await interleaved(ROUNDS, roundSecs, bareNativeFn, () => pn.step())
  await pn.stop()
  // the floor without the router: the codec's decode + verifyMessage through the same verifier
  const sv = createSignatureVerifier()
  let q = 0
  const floor = await interleaved(ROUNDS, roundSecs, bareNativeFn, async () => {
    const m = decodeMessage(frames[q++ % 4096]!.subarray(5))
    await verifyMessage(m, sv)
  })
  rows.push(row('bare native verify (node:crypto, cached KeyObject)', 'msg/s', native.a))
  rows.push(row('pipeline, native backend (decode+replay+verify+trust+dispatch)', 'msg/s', native.b * BATCH, { name: 'bare native verify', value: native.a }, { higherIsBetter: true, target: '>= 0.85' }))
  rows[rows.length - 1]!.ratio = Math.round(native.ratio * BATCH * 1e4) / 1e4
  rows.push(row('codec decode + verifyMessage alone, no router (floor)', 'msg/s', floor.b, { name: 'bare native verify', value: floor.a }, { higherIsBetter: true }))
  rows[rows.length - 1]!.ratio = Math.round(floor.ratio * 1e4) / 1e4

  let k2 = 0
  const bareNobleFn = (): void => {
    const k = k2++ % inputs.length
    if (!ed25519Verify(publicKey, inputs[k]!, sigs[k]!, { backend: 'noble' })) throw new Error('bad signature')
  }
  const pb = await pipeline('noble', frames, did)
  const noble = await interleaved(3, roundSecs, bareNobleFn, () => pb.step())
  await pb.stop()
  rows.push(row('bare noble verify (did-security rule)', 'msg/s', noble.a))
  rows.push(row('pipeline, noble backend', 'msg/s', noble.b * BATCH, { name: 'bare noble verify', value: noble.a }, { higherIsBetter: true, target: '>= 0.85' }))
  rows[rows.length - 1]!.ratio = Math.round(noble.ratio * BATCH * 1e4) / 1e4

  const n = Math.max(300, Math.round(1500 * Math.min(1, secs / 1.5)))
  const lat = await tcpLatency(n)
  const raw = await rawEcho(n, lat.size)
  // the crypto floor of one request/response: 2 signs + 2 verifies (node:crypto)
  const ic = generateIdentity()
  const data = inputs[0]!
  const sigC = ic.sign(data)
  const keyC = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(ic.publicKey).toString('base64url') }, format: 'jwk' })
  const cryptoFloor = await measure(() => {
    ic.sign(data); ic.sign(data)
    nodeVerify(null, data, keyC, sigC); nodeVerify(null, data, keyC, sigC)
  }, { seconds: 0.5 })
  rows.push(row('request/response p50, loopback TCP (signed, ~1 KiB)', 'ms', lat.p50, { name: 'bare node:net echo p50, same process', value: raw.p50 }, { higherIsBetter: false }))
  rows.push(row('request/response p50 vs its crypto floor', 'ms', lat.p50, { name: '2 sign + 2 verify', value: 1000 / cryptoFloor }, { higherIsBetter: false }))
  rows.push(row('request/response p99, loopback TCP', 'ms', lat.p99, { name: 'bare node:net echo p99', value: raw.p99 }, { higherIsBetter: false }))
  rows.push(row('request/response throughput (sequential), loopback TCP', 'req/s', 1000 / lat.p50, { name: 'bare node:net echo', value: 1000 / raw.p50 }, { higherIsBetter: true }))
  report('klp-router', rows, { batch: BATCH, framePool: POOL, responseBytes: lat.size, requests: n, method: 'pipeline and baseline measured in 5 alternating rounds; medians and median per-round ratio' })
}

await main()
