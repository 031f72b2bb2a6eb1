/**
 * transport-tcp benchmarks. Sender in this process, receiver (or echo server) in a child process, over
 * loopback. Every number sits next to a baseline measured in the same run:
 *  - plain node:net with a 4-byte length prefix (no crypto): the ceiling;
 *  - bare node:net + AES-256-GCM per frame (createCipheriv, seq nonce, 16-byte tag, header + ct + tag
 *    written with cork/writev like the transport): the crypto floor.
 * The baselines use the same socket high-water mark as the transport and a reader that, like
 * klp-codec's FrameDecoder, hands out views of a chunk and copies only frames that span chunks.
 *
 * Throughput is measured interleaved: ROUNDS rounds, each streaming one short segment per mode in
 * alternating order (plain gcm klp, klp gcm plain, ...), each segment on a fresh connection to a
 * long-lived child per mode. A ratio is the median of the per-round ratios (a burst of load from other
 * jobs hits the three segments of a round about equally), reported with its min..max over the rounds.
 * Next to wall-clock MB/s the bench records the CPU time (process.cpuUsage, user + system) of the
 * sender and of the receiver per MB: the per-byte cost that does not depend on how busy the machine is.
 *
 * Run: npx tsx bench/index.ts   (BENCH_SECONDS=1 for a quick run; BENCH_ONLY=64k|1k prints only that
 * throughput comparison; BENCH_ROUNDS=<n> rounds; BENCH_HWM=<bytes> sets sendBufferBytes, and the same
 * high-water mark for the baselines, for tuning)
 */
import { fork, type ChildProcess } from 'node:child_process'
import { connect, createServer, type NetConnectOpts, type Socket } from 'node:net'
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { loadavg } from 'node:os'
import { generateIdentity } from '@kos-mesh/did-security'
import type { Connection } from '@kos-mesh/interface'
import { row, report, type BenchRow } from '../../../scripts/bench-util.js'
import { DEFAULTS, tcp } from '../src/index.js'

type Mode = 'plain' | 'gcm' | 'klp'
const MODES: readonly Mode[] = ['plain', 'gcm', 'klp']
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7)
const KEY = createSecretKey(Buffer.alloc(32, 7)) // a cached KeyObject, as the session uses
const MAX_FRAME = 1024 * 1024
const HWM_BYTES = process.env.BENCH_HWM === undefined ? DEFAULTS.sendBufferBytes : Number(process.env.BENCH_HWM)
const HWM = process.env.BENCH_HWM === undefined ? {} : { sendBufferBytes: HWM_BYTES }

// ------------------------------------------------------------------ bare channels (baselines)

function lpHeader(len: number): Buffer {
  const h = Buffer.allocUnsafe(4)
  h.writeUInt32BE(len, 0)
  return h
}

/** Writes one length-prefixed frame: prefix and body as one writev (no copy), like the transport. */
function writeFrame(socket: Socket, parts: Uint8Array[]): boolean {
  let len = 0
  for (const p of parts) len += p.length
  socket.cork()
  socket.write(lpHeader(len))
  let ok = true
  for (const p of parts) ok = socket.write(p)
  socket.uncork()
  return ok
}

const sealNonce = Buffer.alloc(12)
/** seq (4) | ciphertext | tag: the parts of one bare AES-256-GCM record. */
function gcmSealParts(seq: number, plain: Uint8Array): Uint8Array[] {
  const head = Buffer.allocUnsafe(4)
  head.writeUInt32BE(seq, 0)
  sealNonce.writeUInt32BE(seq, 8)
  const c = createCipheriv('aes-256-gcm', KEY, sealNonce)
  const ct = c.update(plain)
  c.final()
  return [head, ct, c.getAuthTag()]
}

const openNonce = Buffer.alloc(12)
function gcmOpen(body: Uint8Array): Uint8Array {
  openNonce[8] = body[0] as number; openNonce[9] = body[1] as number; openNonce[10] = body[2] as number; openNonce[11] = body[3] as number
  const d = createDecipheriv('aes-256-gcm', KEY, openNonce)
  d.setAuthTag(body.subarray(body.length - 16))
  const out = d.update(body.subarray(4, body.length - 16))
  d.final()
  return out
}

/**
 * Splits a byte stream into length-prefixed bodies: a view of the chunk when the frame lies in one
 * chunk, else one copy into a body buffer (what klp-codec's FrameDecoder does).
 */
function lpReader(socket: Socket, onFrame: (body: Uint8Array) => void): void {
  const head = Buffer.alloc(4)
  let headFill = 0
  let body: Buffer | undefined
  let bodyFill = 0
  socket.on('data', (chunk: Buffer) => {
    let off = 0
    const n = chunk.length
    while (off < n) {
      if (body === undefined) {
        if (headFill === 0 && n - off >= 4) {
          const len = chunk.readUInt32BE(off)
          if (n - off - 4 >= len) { onFrame(chunk.subarray(off + 4, off + 4 + len)); off += 4 + len; continue }
        }
        const take = Math.min(4 - headFill, n - off)
        chunk.copy(head, headFill, off, off + take)
        headFill += take
        off += take
        if (headFill < 4) break
        body = Buffer.allocUnsafe(head.readUInt32BE(0))
        bodyFill = 0
      }
      const take = Math.min(body.length - bodyFill, n - off)
      chunk.copy(body, bodyFill, off, off + take)
      bodyFill += take
      off += take
      if (bodyFill === body.length) { const b = body; body = undefined; headFill = 0; onFrame(b) }
    }
  })
}

// ------------------------------------------------------------------ child side

interface Segment { bytes: number; frames: number; ms: number; cpuUs: number }

function cpuUs(): number {
  const c = process.cpuUsage()
  return c.user + c.system
}

async function child(): Promise<void> {
  const [, , , role, mode] = process.argv as [string, string, string, 'sink' | 'echo', Mode]
  const send = (m: unknown): void => { process.send?.(m) }
  if (mode === 'klp') {
    const identity = generateIdentity()
    const t = tcp({ maxFrameSize: MAX_FRAME, keepAliveIntervalMs: 0, ...HWM })({ identity })
    const l = await t.listen('tcp://127.0.0.1:0', (conn) => { void serveKlp(conn, role, send) })
    send({ addr: l.addrs()[0], did: identity.did })
    return
  }
  const server = createServer({ noDelay: true, highWaterMark: HWM_BYTES }, (socket) => {
    let bytes = 0
    let frames = 0
    let t0 = 0
    let c0 = 0
    let seq = 0
    lpReader(socket, (body) => {
      if (t0 === 0) { t0 = performance.now(); c0 = cpuUs() }
      const plain = mode === 'gcm' ? gcmOpen(body) : body
      bytes += plain.length
      frames++
      if (role === 'echo') writeFrame(socket, mode === 'gcm' ? gcmSealParts(seq++, plain) : [plain])
    })
    socket.on('end', () => { send({ bytes, frames, ms: performance.now() - t0, cpuUs: cpuUs() - c0 } satisfies Segment); socket.end() })
    socket.on('error', () => {})
  })
  server.listen(0, '127.0.0.1', () => { send({ addr: `tcp://127.0.0.1:${(server.address() as { port: number }).port}` }) })
}

async function serveKlp(conn: Connection, role: 'sink' | 'echo', send: (m: unknown) => void): Promise<void> {
  let bytes = 0
  let frames = 0
  let t0 = 0
  let c0 = 0
  try {
    for await (const f of conn) {
      if (t0 === 0) { t0 = performance.now(); c0 = cpuUs() }
      bytes += f.length
      frames++
      if (role === 'echo') await conn.send(f)
    }
  } catch { /* reported below */ }
  send({ bytes, frames, ms: performance.now() - t0, cpuUs: cpuUs() - c0 } satisfies Segment)
}

// ------------------------------------------------------------------ parent side

/** A long-lived child serving one mode; `next()` resolves with the report of the next connection. */
interface Peer { proc: ChildProcess; addr: string; did?: string; next(): Promise<Segment> }

function spawnPeer(role: 'sink' | 'echo', mode: Mode): Promise<Peer> {
  const proc = fork(fileURLToPath(import.meta.url), ['child', role, mode], { stdio: 'inherit' })
  const results: Segment[] = []
  const waiting: Array<(s: Segment) => void> = []
  return new Promise((resolve, reject) => {
    proc.once('error', reject)
    proc.on('message', (m: { addr?: string; did?: string } & Segment) => {
      if (m.addr !== undefined) {
        resolve({
          proc, addr: m.addr, ...(m.did === undefined ? {} : { did: m.did }),
          next: () => { const r = results.shift(); return r !== undefined ? Promise.resolve(r) : new Promise((res) => { waiting.push(res) }) },
        })
        return
      }
      const w = waiting.shift()
      if (w !== undefined) w(m)
      else results.push(m)
    })
  })
}

function hostPort(addr: string): { host: string; port: number } {
  const m = /^tcp:\/\/([^:]+):(\d+)$/.exec(addr) as RegExpExecArray
  return { host: m[1] as string, port: Number(m[2]) }
}

async function rawSocket(addr: string): Promise<Socket> {
  // writableHighWaterMark is a Duplex option net.Socket honours but NetConnectOpts does not declare
  const opts: NetConnectOpts & { writableHighWaterMark: number } = { ...hostPort(addr), noDelay: true, writableHighWaterMark: HWM_BYTES }
  const s = connect(opts)
  await new Promise((r) => s.once('connect', r))
  return s
}

interface Throughput { mbps: number; fps: number; sendCpuPerMB: number; recvCpuPerMB: number }

/** Streams `payload` frames for `seconds` on a fresh connection to `peer`; the receiver's rate, both CPUs. */
async function segment(mode: Mode, peer: Peer, payload: Uint8Array, seconds: number): Promise<Throughput> {
  const end = performance.now() + seconds * 1000
  let c0: number
  if (mode === 'klp') {
    const t = tcp({ maxFrameSize: MAX_FRAME, keepAliveIntervalMs: 0, ...HWM })({ identity: generateIdentity() })
    const conn = await t.dial(peer.addr, { remotePeer: peer.did as string })
    c0 = cpuUs()
    let n = 0
    while ((n++ & 63) !== 0 || performance.now() < end) await conn.send(payload)
    await conn.close()
    await t.close()
  } else {
    const s = await rawSocket(peer.addr)
    c0 = cpuUs()
    let seq = 0
    while ((seq & 63) !== 0 || performance.now() < end) {
      if (!writeFrame(s, mode === 'gcm' ? gcmSealParts(seq, payload) : [payload])) await new Promise((r) => s.once('drain', r))
      seq++
    }
    s.end()
    await new Promise((r) => s.once('close', r))
  }
  const sendCpu = cpuUs() - c0
  const r = await peer.next()
  const mb = r.bytes / 1e6
  return { mbps: mb / (r.ms / 1000), fps: r.frames / (r.ms / 1000), sendCpuPerMB: sendCpu / mb, recvCpuPerMB: r.cpuUs / mb }
}

const median = (a: number[]): number => { const b = [...a].sort((x, y) => x - y); const m = b.length >> 1; return b.length % 2 === 1 ? (b[m] as number) : ((b[m - 1] as number) + (b[m] as number)) / 2 }

interface Comparison {
  /** Median over rounds of each mode's value. */
  med: Record<Mode, Throughput>
  /** Per-round ratios a/b of a metric, for `pairs`. */
  ratios: (metric: (t: Throughput) => number, a: Mode, b: Mode) => { median: number; min: number; max: number }
  rounds: number
}

/** ROUNDS rounds of one segment per mode, order alternating, after one warm-up segment per mode. */
async function interleaved(size: number, totalSeconds: number): Promise<Comparison> {
  const peers = {} as Record<Mode, Peer>
  for (const m of MODES) peers[m] = await spawnPeer('sink', m)
  const payload = randomBytes(size)
  const seg = Math.max(0.1, totalSeconds / ROUNDS / MODES.length)
  for (const m of MODES) await segment(m, peers[m], payload, Math.min(0.3, seg)) // warm-up (JIT, sockets)
  const runs: Array<Record<Mode, Throughput>> = []
  for (let r = 0; r < ROUNDS; r++) {
    const cur = {} as Record<Mode, Throughput>
    for (const m of r % 2 === 0 ? MODES : [...MODES].reverse()) cur[m] = await segment(m, peers[m], payload, seg)
    runs.push(cur)
  }
  for (const m of MODES) peers[m].proc.kill()
  const med = {} as Record<Mode, Throughput>
  for (const m of MODES) {
    const pick = (f: (t: Throughput) => number): number => median(runs.map((x) => f(x[m])))
    med[m] = { mbps: pick((t) => t.mbps), fps: pick((t) => t.fps), sendCpuPerMB: pick((t) => t.sendCpuPerMB), recvCpuPerMB: pick((t) => t.recvCpuPerMB) }
  }
  return {
    med,
    rounds: runs.length,
    ratios: (metric, a, b) => {
      const rs = runs.map((x) => metric(x[a]) / metric(x[b]))
      return { median: median(rs), min: Math.min(...rs), max: Math.max(...rs) }
    },
  }
}

type Row = BenchRow & { ratioMin?: number; ratioMax?: number; rounds?: number }

/** A row whose ratio is the median of per-round ratios (not value / baseline of two medians). */
function roundRow(name: string, unit: string, value: number, baseline: { name: string; value: number }, r: { median: number; min: number; max: number }, rounds: number, extra: Partial<BenchRow> = {}): Row {
  const q = (x: number): number => Math.round(x * 1000) / 1000
  return { ...row(name, unit, value, baseline, extra), ratio: q(r.median), ratioMin: q(r.min), ratioMax: q(r.max), rounds }
}

/** Sequential 1 KiB request/response for SECONDS; returns p50/p99 in µs. */
async function rtt(mode: Mode): Promise<{ p50: number; p99: number; rps: number }> {
  const peer = await spawnPeer('echo', mode)
  const payload = randomBytes(1024)
  const samples: number[] = []
  const end = performance.now() + SECONDS * 1000
  if (mode === 'klp') {
    const t = tcp({ keepAliveIntervalMs: 0 })({ identity: generateIdentity() })
    const conn = await t.dial(peer.addr, { remotePeer: peer.did as string })
    const it = conn[Symbol.asyncIterator]()
    while (performance.now() < end) {
      const t0 = performance.now()
      await conn.send(payload)
      await it.next()
      samples.push(performance.now() - t0)
    }
    await conn.close()
    await t.close()
  } else {
    const s = await rawSocket(peer.addr)
    let waiting: (() => void) | undefined
    let seq = 0
    lpReader(s, (body) => { if (mode === 'gcm') gcmOpen(body); waiting?.() })
    while (performance.now() < end) {
      const t0 = performance.now()
      const got = new Promise<void>((r) => { waiting = r })
      writeFrame(s, mode === 'gcm' ? gcmSealParts(seq++, payload) : [payload])
      await got
      samples.push(performance.now() - t0)
    }
    s.end()
  }
  await peer.next()
  peer.proc.kill()
  samples.sort((a, b) => a - b)
  const q = (p: number): number => (samples[Math.min(samples.length - 1, Math.floor(p * samples.length))] ?? 0) * 1000
  return { p50: q(0.5), p99: q(0.99), rps: samples.length / SECONDS }
}

/** Median time of dial (TCP connect + handshake) vs a bare TCP connect, in µs. */
async function dialCost(): Promise<{ klp: number; plain: number }> {
  const peer = await spawnPeer('sink', 'klp')
  const t = tcp({ keepAliveIntervalMs: 0 })({ identity: generateIdentity() })
  const k: number[] = []
  const p: number[] = []
  const end = performance.now() + Math.min(SECONDS, 2) * 1000
  while (performance.now() < end) {
    let t0 = performance.now()
    const c = await t.dial(peer.addr, { remotePeer: peer.did as string })
    k.push(performance.now() - t0)
    c.abort(new Error('bench'))
    t0 = performance.now()
    const s = await rawSocket(peer.addr)
    p.push(performance.now() - t0)
    s.destroy()
  }
  await t.close()
  peer.proc.kill()
  return { klp: median(k) * 1000, plain: median(p) * 1000 }
}

function printComparison(label: string, c: Comparison): void {
  const f = (r: { median: number; min: number; max: number }): string => `${r.median.toFixed(3)} (${r.min.toFixed(2)}..${r.max.toFixed(2)})`
  console.log(label, Object.fromEntries(MODES.map((m) => [m, { MBps: Math.round(c.med[m].mbps), sendCpuUsPerMB: Math.round(c.med[m].sendCpuPerMB), recvCpuUsPerMB: Math.round(c.med[m].recvCpuPerMB) }])))
  console.log(`  klp/plain ${f(c.ratios((t) => t.mbps, 'klp', 'plain'))}  klp/gcm ${f(c.ratios((t) => t.mbps, 'klp', 'gcm'))}  gcm/plain ${f(c.ratios((t) => t.mbps, 'gcm', 'plain'))}`)
  console.log(`  CPU per byte, plain/klp: send ${f(c.ratios((t) => 1 / t.sendCpuPerMB, 'klp', 'plain'))} recv ${f(c.ratios((t) => 1 / t.recvCpuPerMB, 'klp', 'plain'))}`)
}

async function main(): Promise<void> {
  if (process.env.BENCH_ONLY === '64k') { printComparison('64 KiB', await interleaved(64 * 1024, SECONDS * 3)); return }
  if (process.env.BENCH_ONLY === '1k') { printComparison('1 KiB', await interleaved(1024, SECONDS * 2)); return }
  const rows: Row[] = []
  const mbps = (t: Throughput): number => t.mbps
  const fps = (t: Throughput): number => t.fps
  // CPU rows: value = MB per CPU-second (higher is better), so the ratios read like throughput ratios
  const sendEff = (t: Throughput): number => 1e6 / t.sendCpuPerMB
  const recvEff = (t: Throughput): number => 1e6 / t.recvCpuPerMB
  const c64 = await interleaved(64 * 1024, SECONDS * 3)
  const { plain: p64, gcm: g64, klp: k64 } = c64.med
  const n = c64.rounds
  rows.push(roundRow('64 KiB frames, klp tcp vs plain tcp', 'MB/s', k64.mbps, { name: 'plain node:net', value: p64.mbps }, c64.ratios(mbps, 'klp', 'plain'), n, { higherIsBetter: true, target: '>= 0.80' }))
  rows.push(roundRow('64 KiB frames, klp tcp vs bare tcp+aes-gcm', 'MB/s', k64.mbps, { name: 'node:net + AES-256-GCM', value: g64.mbps }, c64.ratios(mbps, 'klp', 'gcm'), n, { higherIsBetter: true, target: '>= 0.90' }))
  rows.push(roundRow('64 KiB frames, bare tcp+aes-gcm vs plain tcp', 'MB/s', g64.mbps, { name: 'plain node:net', value: p64.mbps }, c64.ratios(mbps, 'gcm', 'plain'), n, { higherIsBetter: true }))
  rows.push(roundRow('64 KiB sender CPU efficiency, klp vs plain', 'MB/CPU-s', sendEff(k64), { name: 'plain node:net', value: sendEff(p64) }, c64.ratios(sendEff, 'klp', 'plain'), n, { higherIsBetter: true }))
  rows.push(roundRow('64 KiB sender CPU efficiency, klp vs bare aes-gcm', 'MB/CPU-s', sendEff(k64), { name: 'node:net + AES-256-GCM', value: sendEff(g64) }, c64.ratios(sendEff, 'klp', 'gcm'), n, { higherIsBetter: true }))
  rows.push(roundRow('64 KiB receiver CPU efficiency, klp vs plain', 'MB/CPU-s', recvEff(k64), { name: 'plain node:net', value: recvEff(p64) }, c64.ratios(recvEff, 'klp', 'plain'), n, { higherIsBetter: true }))
  rows.push(roundRow('64 KiB receiver CPU efficiency, klp vs bare aes-gcm', 'MB/CPU-s', recvEff(k64), { name: 'node:net + AES-256-GCM', value: recvEff(g64) }, c64.ratios(recvEff, 'klp', 'gcm'), n, { higherIsBetter: true }))
  // CPU-bound projections per round (robust to load): one core per side -> the slower side sets the
  // rate; both sides sharing the cores -> the sum of both sides' CPU per byte sets it
  const oneCoreEach = (t: Throughput): number => Math.min(sendEff(t), recvEff(t))
  const sharedCores = (t: Throughput): number => 1e6 / (t.sendCpuPerMB + t.recvCpuPerMB)
  rows.push(roundRow('64 KiB CPU-bound rate, one core per side, klp vs plain', 'MB/CPU-s', oneCoreEach(k64), { name: 'plain node:net', value: oneCoreEach(p64) }, c64.ratios(oneCoreEach, 'klp', 'plain'), n, { higherIsBetter: true, target: '>= 0.80' }))
  rows.push(roundRow('64 KiB CPU-bound rate, one core per side, klp vs bare aes-gcm', 'MB/CPU-s', oneCoreEach(k64), { name: 'node:net + AES-256-GCM', value: oneCoreEach(g64) }, c64.ratios(oneCoreEach, 'klp', 'gcm'), n, { higherIsBetter: true, target: '>= 0.90' }))
  rows.push(roundRow('64 KiB CPU-bound rate, sides share cores, klp vs plain', 'MB/CPU-s', sharedCores(k64), { name: 'plain node:net', value: sharedCores(p64) }, c64.ratios(sharedCores, 'klp', 'plain'), n, { higherIsBetter: true }))
  rows.push(roundRow('64 KiB CPU-bound rate, sides share cores, klp vs bare aes-gcm', 'MB/CPU-s', sharedCores(k64), { name: 'node:net + AES-256-GCM', value: sharedCores(g64) }, c64.ratios(sharedCores, 'klp', 'gcm'), n, { higherIsBetter: true }))
  const c1 = await interleaved(1024, SECONDS * 2)
  const { plain: p1, gcm: g1, klp: k1 } = c1.med
  rows.push(roundRow('1 KiB frames, klp tcp vs plain tcp', 'frames/s', k1.fps, { name: 'plain node:net', value: p1.fps }, c1.ratios(fps, 'klp', 'plain'), c1.rounds, { higherIsBetter: true }))
  rows.push(roundRow('1 KiB frames, klp tcp vs bare tcp+aes-gcm', 'frames/s', k1.fps, { name: 'node:net + AES-256-GCM', value: g1.fps }, c1.ratios(fps, 'klp', 'gcm'), c1.rounds, { higherIsBetter: true, target: '>= 75k/s' }))
  const rp = await rtt('plain')
  const rg = await rtt('gcm')
  const rk = await rtt('klp')
  rows.push(row('1 KiB echo p50, klp tcp vs bare tcp+aes-gcm', 'µs', rk.p50, { name: 'node:net + AES-256-GCM', value: rg.p50 }, { higherIsBetter: false, target: '<= 150 µs' }))
  rows.push(row('1 KiB echo p99, klp tcp vs bare tcp+aes-gcm', 'µs', rk.p99, { name: 'node:net + AES-256-GCM', value: rg.p99 }, { higherIsBetter: false }))
  rows.push(row('1 KiB echo p50, klp tcp vs plain tcp', 'µs', rk.p50, { name: 'plain node:net', value: rp.p50 }, { higherIsBetter: false }))
  rows.push(row('1 KiB echo p99, klp tcp vs plain tcp', 'µs', rk.p99, { name: 'plain node:net', value: rp.p99 }, { higherIsBetter: false }))
  const d = await dialCost()
  rows.push(row('dial: connect + handshake vs bare connect', 'µs', d.klp, { name: 'node:net connect', value: d.plain }, { higherIsBetter: false }))
  for (const r of rows) {
    if (r.ratioMin !== undefined) console.log(`  ${r.name}: ratio ${r.ratio} (rounds ${r.ratioMin}..${r.ratioMax})`)
  }
  report('transport-tcp', rows, {
    seconds: SECONDS, rounds: ROUNDS, sendBufferBytes: HWM_BYTES, loadavg: loadavg(),
    method: 'sender in this process, receiver/echo in a child process; throughput rows interleaved (one segment per mode per round, alternating order, fresh connection per segment), ratio = median of per-round ratios with ratioMin/ratioMax; CPU rows = MB per CPU-second (user+system) of the sending / receiving process',
  })
}

if (process.argv[2] === 'child') await child()
else await main()
