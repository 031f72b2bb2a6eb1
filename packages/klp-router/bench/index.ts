/**
 * klp-router benchmarks.
 *  1. Pipeline throughput: pre-encoded frames through the whole inbound path (read loop, envelope,
 *     decode, fair scheduler, expiry, replay window, signature verify, trust check, dispatch),
 *     against the bare native Ed25519 verify (node:crypto, cached KeyObject) of the very same
 *     signing inputs (checked byte for byte against what the pipeline's verifier is given).
 *     Pipeline and baseline run in interleaved ~4 ms batches on CPU time (`paired` from
 *     scripts/bench-paired.ts); the ratio is the median of the per-pair ratios, with its
 *     interquartile range.
 *  2. The split of the pipeline's cost: codec decode, verifyMessage (did-security), router code.
 *  3. The same pipeline on the noble backend against bare noble verify.
 *  4. Request/response latency on loopback TCP (transport-tcp) against a bare node:net echo.
 *  5. Under attack (bench/attack.ts, in a fresh process, written to
 *     bench-results/klp-router-attack.json), the trust check's overhead (bench/trust-overhead.ts, also
 *     written to bench-results/trust.json) and bulk transfer (bench/bulk.ts); BENCH_ATTACK=0,
 *     BENCH_TRUST=0, BENCH_BULK=0 skip them.
 * Run: npx tsx bench/index.ts   (BENCH_SECONDS=1 for a quick run; default 4 s per pairing)
 */
import { execFileSync } from 'node:child_process'
import { createPublicKey, verify as nodeVerify } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { createServer, connect, type Socket } from 'node:net'
import { createSignatureVerifier, ed25519Verify, generateIdentity } from '@kos-mesh/did-security'
import { KLPMessageType, ProcessingStatus, type SignatureVerifier } from '@kos-mesh/interface'
import { encodeMessage, decodeMessage, verifyMessage } from '@kos-mesh/klp-codec'
import { tcp } from '@kos-mesh/transport-tcp'
import { createRouter } from '../src/index.js'
import { ENVELOPE_HEADER_BYTES } from '../src/envelope.js'
import { BATCH, POOL, makeFrames, pipeline, type Pool } from './harness.js'
import { measure, report, row, type BenchRow } from '../../../scripts/bench-util.js'
import { clockName, paired, quantile, type PairedOptions, type PairedResult, type Side } from '../../../scripts/bench-paired.js'

/** Paired batches of ~4 ms (the pipeline side runs BATCH messages per call). */
const PAIRED: PairedOptions = { batchMs: 4 }

/**
 * Checks that the baseline verifies exactly the bytes the pipeline verifies: runs one batch
 * through a router whose verifier records what it is asked to verify.
 */
async function checkBaselineBytes(pool: Pool): Promise<number> {
  const seen = new Map<string, number>()
  const inner = createSignatureVerifier()
  const recording: SignatureVerifier = {
    verifySignature(keyId, data, signature, options) {
      seen.set(Buffer.from(signature).toString('hex'), data.byteLength)
      return inner.verifySignature(keyId, data, signature, options)
    },
  }
  const p = await pipeline(recording, pool.frames.slice(0, BATCH), pool.did)
  await p.step()
  await p.stop()
  let total = 0
  for (let i = 0; i < BATCH; i++) {
    const got = seen.get(Buffer.from(pool.sigs[i]!).toString('hex'))
    if (got !== pool.inputs[i]!.byteLength) throw new Error(`baseline input ${i}: expected ${got} bytes (what the pipeline verifies), got ${pool.inputs[i]!.byteLength}`)
    total += got
  }
  return total / BATCH
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
  return { p50: quantile(times, 0.5), p99: quantile(times, 0.99), size }
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
  return { p50: quantile(times, 0.5), p99: quantile(times, 0.99) }
}

async function main(): Promise<void> {
  const rows: BenchRow[] = []
  const secs = Number(process.env.BENCH_SECONDS ?? 4)
  console.log(`signing ${POOL} frames...`)
  const pool = await makeFrames(POOL)
  const { frames, did, inputs, sigs, publicKey } = pool
  const inputBytes = await checkBaselineBytes(pool)
  const bodies = frames.map((f) => f.subarray(ENVELOPE_HEADER_BYTES))

  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') }, format: 'jwk' })
  let j = 0
  const bareNative: Side = {
    run: () => {
      const k = j++ % POOL
      if (!nodeVerify(null, inputs[k]!, key, sigs[k]!)) throw new Error('bad signature')
    },
  }
  const verifier = createSignatureVerifier()
  const pn = await pipeline(verifier, frames, did)
  if (process.env.BENCH_PROFILE !== undefined) {
    // profiling mode: only the native pipeline, e.g. `BENCH_PROFILE=5 node --cpu-prof --import tsx bench/index.ts`
    const until = performance.now() + Number(process.env.BENCH_PROFILE) * 1000
    let steps = 0
    while (performance.now() < until) { await pn.step(); steps++ }
    await pn.stop()
    console.log(`profiled ${steps * BATCH} messages`)
    return
  }
  const pipeSide: Side = { run: () => pn.step(), ops: BATCH }
  // the floor without the router: the codec's decode + verifyMessage through the same verifier
  let q = 0
  const floorSide: Side = {
    run: async () => {
      const m = decodeMessage(bodies[q++ % POOL]!)
      await verifyMessage(m, verifier)
    },
  }
  let d = 0
  const decodeSide: Side = { run: () => decodeMessage(bodies[d++ % POOL]!) }
  const decoded = bodies.slice(0, 2048).map((b) => decodeMessage(b))
  let v = 0
  const verifySide: Side = { run: () => verifyMessage(decoded[v++ % decoded.length]!, verifier) }

  const native = await paired(bareNative, pipeSide, { ...PAIRED, seconds: secs })
  const floor = await paired(bareNative, floorSide, { ...PAIRED, seconds: secs * 0.6 })
  const router = await paired(floorSide, pipeSide, { ...PAIRED, seconds: secs * 0.6 })
  const dec = await paired(bareNative, decodeSide, { ...PAIRED, seconds: secs * 0.4 })
  const ver = await paired(bareNative, verifySide, { ...PAIRED, seconds: secs * 0.4 })
  await pn.stop()

  const r4 = (x: number): number => Math.round(x * 1e4) / 1e4
  const iqr = (p: PairedResult): string => `${p.ratioQ1.toFixed(3)}-${p.ratioQ3.toFixed(3)}`
  rows.push(row(`bare native verify (node:crypto, cached KeyObject, ${Math.round(inputBytes)} B input)`, 'msg/s', 1e6 / native.aUs))
  rows.push(row(`pipeline, native backend (envelope+decode+replay+verify+trust+dispatch), pair IQR ${iqr(native)}`, 'msg/s', 1e6 / native.bUs, { name: 'bare native verify', value: 1e6 / native.aUs }, { higherIsBetter: true, target: '>= 0.85', ratio: r4(native.ratio) }))
  rows.push(row(`codec decode + verifyMessage, no router (floor), pair IQR ${iqr(floor)}`, 'msg/s', 1e6 / floor.bUs, { name: 'bare native verify', value: 1e6 / floor.aUs }, { higherIsBetter: true, ratio: r4(floor.ratio) }))
  rows.push(row('split: bare native verify', 'us/msg', native.aUs))
  rows.push(row('split: codec decodeMessage', 'us/msg', dec.bUs, { name: 'bare native verify', value: dec.aUs }, { higherIsBetter: false, ratio: r4(1 / dec.ratio) }))
  // diffUs is tA - tB; here A is the baseline, so the path's extra cost is -diffUs
  rows.push(row('split: verifyMessage - bare verify (codec + did-security resolve + rule checks)', 'us/msg', -ver.diffUs, { name: 'bare native verify', value: ver.aUs }, { higherIsBetter: false }))
  rows.push(row(`split: router code (pipeline - floor, paired), pair IQR of ratio ${iqr(router)}`, 'us/msg', -router.diffUs, { name: 'floor', value: router.aUs }, { higherIsBetter: false }))

  // noble backend: bare noble verify of the same inputs vs the pipeline on a noble verifier
  let k2 = 0
  const bareNoble: Side = {
    run: () => {
      const k = k2++ % POOL
      if (!ed25519Verify(publicKey, inputs[k]!, sigs[k]!, { backend: 'noble' })) throw new Error('bad signature')
    },
  }
  const pb = await pipeline(createSignatureVerifier({ backend: 'noble' }), frames, did)
  const noble = await paired(bareNoble, { run: () => pb.step(), ops: BATCH }, { seconds: secs * 0.75, batchMs: 20, minPairs: 10 })
  await pb.stop()
  rows.push(row('bare noble verify (did-security rule)', 'msg/s', 1e6 / noble.aUs))
  rows.push(row(`pipeline, noble backend, pair IQR ${iqr(noble)}`, 'msg/s', 1e6 / noble.bUs, { name: 'bare noble verify', value: 1e6 / noble.aUs }, { higherIsBetter: true, target: '>= 0.85', ratio: r4(noble.ratio) }))

  const n = Math.max(300, Math.round(1500 * Math.min(1, secs / 4)))
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
  rows.push(row('request/response p50, loopback TCP (signed, ~1 KiB), wall', 'ms', lat.p50, { name: 'bare node:net echo p50, same process', value: raw.p50 }, { higherIsBetter: false }))
  rows.push(row('request/response p50 vs its crypto floor', 'ms', lat.p50, { name: '2 sign + 2 verify', value: 1000 / cryptoFloor }, { higherIsBetter: false }))
  rows.push(row('request/response p99, loopback TCP, wall', 'ms', lat.p99, { name: 'bare node:net echo p99', value: raw.p99 }, { higherIsBetter: false }))
  rows.push(row('request/response throughput (sequential), loopback TCP', 'req/s', 1000 / lat.p50, { name: 'bare node:net echo', value: 1000 / raw.p50 }, { higherIsBetter: true }))
  if (process.env.BENCH_ATTACK !== '0') {
    // in a process of its own: the node under attack starts with a fresh heap, not with what the
    // benchmarks above left in this one (their garbage would show as the attack's GC pauses); it
    // writes its own results (bench-results/klp-router-attack.json)
    console.log('under attack (bench/attack.ts in a fresh process; honest peer and attackers in child processes):')
    execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./attack.ts', import.meta.url))], { stdio: 'inherit', env: process.env })
  }
  if (process.env.BENCH_TRUST !== '0') {
    console.log('trust check overhead (static engine vs a 10,000-DID / 100,000-statement graph, same run):')
    const { trustRows } = await import('./trust-overhead.js')
    rows.push(...(await trustRows()))
  }
  if (process.env.BENCH_BULK !== '0') {
    console.log('bulk transfer (100 MiB over loopback TCP, receiver in a child process):')
    const { bulkRows } = await import('./bulk.js')
    rows.push(...(await bulkRows()))
  }
  report('klp-router', rows, {
    batch: BATCH,
    framePool: POOL,
    signingInputBytes: inputBytes,
    responseBytes: lat.size,
    requests: n,
    clock: clockName(),
    pairs: { native: native.pairs, floor: floor.pairs, router: router.pairs, decode: dec.pairs, verify: ver.pairs, noble: noble.pairs },
    ratioIQR: { native: iqr(native), floor: iqr(floor), noble: iqr(noble) },
    method: `A/B batches (~4 ms) interleaved in random order per pair, ${clockName() === 'cpu' ? 'process CPU' : 'wall'} time; medians of per-pair time ratios; the baseline verifies the very signing inputs of the pipeline frames (checked)`,
  })
}

await main()
