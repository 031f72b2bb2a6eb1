/**
 * transport-tcp benchmarks. The receiver (or echo server) runs in a child process, the sender in
 * this process, over loopback. Every number is printed next to a baseline measured in the same run:
 *  - plain node:net with a 4-byte length prefix (no crypto): the ceiling;
 *  - bare node:net + AES-256-GCM per frame (createCipheriv, seq nonce, 16-byte tag): the crypto floor.
 *
 * Run: npx tsx bench/index.ts   (BENCH_SECONDS=1 for a quick run; BENCH_ONLY=64k|1k prints only that
 * throughput comparison; BENCH_HWM=<bytes> overrides sendBufferBytes for tuning)
 */
import { fork, type ChildProcess } from 'node:child_process'
import { connect, createServer, type Socket } from 'node:net'
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { generateIdentity } from '@kos-mesh/did-security'
import type { Connection } from '@kos-mesh/interface'
import { row, report, type BenchRow } from '../../../scripts/bench-util.js'
import { tcp } from '../src/index.js'

type Mode = 'plain' | 'gcm' | 'klp'
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
/** Throughput modes run interleaved in this many rounds (median kept): the machine is shared and noisy. */
const ROUNDS = 3
const KEY = Buffer.alloc(32, 7)
const MAX_FRAME = 1024 * 1024
const HWM = process.env.BENCH_HWM === undefined ? {} : { sendBufferBytes: Number(process.env.BENCH_HWM) }

// ------------------------------------------------------------------ bare channels (baselines)

function lpEncode(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + body.length)
  out.writeUInt32BE(body.length, 0)
  out.set(body, 4)
  return out
}

function gcmSeal(seq: number, plain: Uint8Array): Buffer {
  const nonce = Buffer.alloc(12)
  nonce.writeUInt32BE(seq, 8)
  const c = createCipheriv('aes-256-gcm', KEY, nonce)
  const out = Buffer.allocUnsafe(4 + 4 + plain.length + 16)
  out.writeUInt32BE(4 + plain.length + 16, 0)
  out.writeUInt32BE(seq, 4)
  out.set(c.update(plain), 8)
  c.final()
  out.set(c.getAuthTag(), 8 + plain.length)
  return out
}

function gcmOpen(body: Uint8Array): Uint8Array {
  const seq = Buffer.from(body.buffer, body.byteOffset, 4).readUInt32BE(0)
  const nonce = Buffer.alloc(12)
  nonce.writeUInt32BE(seq, 8)
  const d = createDecipheriv('aes-256-gcm', KEY, nonce)
  d.setAuthTag(body.subarray(body.length - 16))
  const out = d.update(body.subarray(4, body.length - 16))
  d.final()
  return out
}

/** Splits a byte stream into length-prefixed bodies. */
function lpReader(socket: Socket, onFrame: (body: Uint8Array) => void): void {
  let buf: Buffer = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
    let off = 0
    while (buf.length - off >= 4) {
      const len = buf.readUInt32BE(off)
      if (buf.length - off - 4 < len) break
      onFrame(buf.subarray(off + 4, off + 4 + len))
      off += 4 + len
    }
    buf = buf.subarray(off)
  })
}

async function writeBackpressured(socket: Socket, bytes: Uint8Array): Promise<void> {
  if (!socket.write(bytes)) await new Promise((r) => socket.once('drain', r))
}

// ------------------------------------------------------------------ child side

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
  const server = createServer({ noDelay: true }, (socket) => {
    let bytes = 0
    let frames = 0
    let t0 = 0
    let seq = 0
    lpReader(socket, (body) => {
      if (t0 === 0) t0 = performance.now()
      const plain = mode === 'gcm' ? gcmOpen(body) : body
      bytes += plain.length
      frames++
      if (role === 'echo') socket.write(mode === 'gcm' ? gcmSeal(seq++, plain) : lpEncode(plain))
    })
    socket.on('end', () => { send({ bytes, frames, ms: performance.now() - t0 }); socket.end() })
    socket.on('error', () => {})
  })
  server.listen(0, '127.0.0.1', () => { send({ addr: `tcp://127.0.0.1:${(server.address() as { port: number }).port}` }) })
}

async function serveKlp(conn: Connection, role: 'sink' | 'echo', send: (m: unknown) => void): Promise<void> {
  let bytes = 0
  let frames = 0
  let t0 = 0
  try {
    for await (const f of conn) {
      if (t0 === 0) t0 = performance.now()
      bytes += f.length
      frames++
      if (role === 'echo') await conn.send(f)
    }
  } catch { /* reported below */ }
  send({ bytes, frames, ms: performance.now() - t0 })
}

// ------------------------------------------------------------------ parent side

interface Peer { proc: ChildProcess; addr: string; did?: string; result: Promise<{ bytes: number; frames: number; ms: number }> }

function spawnPeer(role: 'sink' | 'echo', mode: Mode): Promise<Peer> {
  const proc = fork(fileURLToPath(import.meta.url), ['child', role, mode], { stdio: 'inherit' })
  return new Promise((resolve, reject) => {
    let resolveResult!: (v: { bytes: number; frames: number; ms: number }) => void
    const result = new Promise<{ bytes: number; frames: number; ms: number }>((r) => { resolveResult = r })
    proc.once('error', reject)
    proc.on('message', (m: { addr?: string; did?: string; bytes?: number; frames: number; ms: number }) => {
      if (m.addr !== undefined) resolve({ proc, addr: m.addr, ...(m.did === undefined ? {} : { did: m.did }), result })
      else resolveResult(m as { bytes: number; frames: number; ms: number })
    })
  })
}

function hostPort(addr: string): { host: string; port: number } {
  const m = /^tcp:\/\/([^:]+):(\d+)$/.exec(addr) as RegExpExecArray
  return { host: m[1] as string, port: Number(m[2]) }
}

async function rawSocket(addr: string): Promise<Socket> {
  const s = connect({ ...hostPort(addr), noDelay: true })
  await new Promise((r) => s.once('connect', r))
  return s
}

/** Streams `size`-byte frames for SECONDS; returns the receiver's MB/s and frames/s. */
async function throughput(mode: Mode, size: number, seconds: number): Promise<{ mbps: number; fps: number }> {
  const peer = await spawnPeer('sink', mode)
  const payload = randomBytes(size)
  const end = performance.now() + seconds * 1000
  if (mode === 'klp') {
    const identity = generateIdentity()
    const t = tcp({ maxFrameSize: MAX_FRAME, keepAliveIntervalMs: 0, ...HWM })({ identity })
    const conn = await t.dial(peer.addr, { remotePeer: peer.did as string })
    let n = 0
    while ((n++ & 63) !== 0 || performance.now() < end) await conn.send(payload)
    await conn.close()
    await t.close()
  } else {
    const s = await rawSocket(peer.addr)
    let seq = 0
    const plainFrame = lpEncode(payload)
    while ((seq & 63) !== 0 || performance.now() < end) {
      await writeBackpressured(s, mode === 'gcm' ? gcmSeal(seq, payload) : plainFrame)
      seq++
    }
    s.end()
  }
  const r = await peer.result
  peer.proc.kill()
  return { mbps: r.bytes / 1e6 / (r.ms / 1000), fps: r.frames / (r.ms / 1000) }
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
      s.write(mode === 'gcm' ? gcmSeal(seq++, payload) : lpEncode(payload))
      await got
      samples.push(performance.now() - t0)
    }
    s.end()
  }
  await peer.result
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
  const med = (a: number[]): number => a.sort((x, y) => x - y)[Math.floor(a.length / 2)] ?? 0
  return { klp: med(k) * 1000, plain: med(p) * 1000 }
}

/** Runs the three modes interleaved ROUNDS times; returns the median of each. */
async function interleaved(size: number): Promise<Record<Mode, { mbps: number; fps: number }>> {
  const runs: Record<Mode, Array<{ mbps: number; fps: number }>> = { plain: [], gcm: [], klp: [] }
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of ['plain', 'gcm', 'klp'] as const) runs[mode].push(await throughput(mode, size, SECONDS / ROUNDS))
  }
  const med = (a: Array<{ mbps: number; fps: number }>): { mbps: number; fps: number } =>
    a.sort((x, y) => x.mbps - y.mbps)[Math.floor(a.length / 2)] as { mbps: number; fps: number }
  return { plain: med(runs.plain), gcm: med(runs.gcm), klp: med(runs.klp) }
}

async function main(): Promise<void> {
  if (process.env.BENCH_ONLY === '64k') { console.log(await interleaved(64 * 1024)); return }
  if (process.env.BENCH_ONLY === '1k') { console.log(await interleaved(1024)); return }
  const rows: BenchRow[] = []
  const big = 64 * 1024
  const r64 = await interleaved(big)
  const plain64 = r64.plain
  const gcm64 = r64.gcm
  const klp64 = r64.klp
  rows.push(row('64 KiB frames, klp tcp vs plain tcp', 'MB/s', klp64.mbps, { name: 'plain node:net', value: plain64.mbps }, { higherIsBetter: true, target: '>= 0.80' }))
  rows.push(row('64 KiB frames, klp tcp vs bare tcp+aes-gcm', 'MB/s', klp64.mbps, { name: 'node:net + AES-256-GCM', value: gcm64.mbps }, { higherIsBetter: true, target: '>= 0.90' }))
  rows.push(row('64 KiB frames, bare tcp+aes-gcm vs plain', 'MB/s', gcm64.mbps, { name: 'plain node:net', value: plain64.mbps }, { higherIsBetter: true }))
  const r1 = await interleaved(1024)
  const plain1 = r1.plain
  const gcm1 = r1.gcm
  const klp1 = r1.klp
  rows.push(row('1 KiB frames, klp tcp vs plain tcp', 'frames/s', klp1.fps, { name: 'plain node:net', value: plain1.fps }, { higherIsBetter: true }))
  rows.push(row('1 KiB frames, klp tcp vs bare tcp+aes-gcm', 'frames/s', klp1.fps, { name: 'node:net + AES-256-GCM', value: gcm1.fps }, { higherIsBetter: true, target: '>= 75k/s' }))
  const rp = await rtt('plain')
  const rg = await rtt('gcm')
  const rk = await rtt('klp')
  rows.push(row('1 KiB echo p50, klp tcp vs bare tcp+aes-gcm', 'µs', rk.p50, { name: 'node:net + AES-256-GCM', value: rg.p50 }, { higherIsBetter: false, target: '<= 150 µs' }))
  rows.push(row('1 KiB echo p99, klp tcp vs bare tcp+aes-gcm', 'µs', rk.p99, { name: 'node:net + AES-256-GCM', value: rg.p99 }, { higherIsBetter: false }))
  rows.push(row('1 KiB echo p50, klp tcp vs plain tcp', 'µs', rk.p50, { name: 'plain node:net', value: rp.p50 }, { higherIsBetter: false }))
  rows.push(row('1 KiB echo p99, klp tcp vs plain tcp', 'µs', rk.p99, { name: 'plain node:net', value: rp.p99 }, { higherIsBetter: false }))
  const d = await dialCost()
  rows.push(row('dial: connect + handshake vs bare connect', 'µs', d.klp, { name: 'node:net connect', value: d.plain }, { higherIsBetter: false }))
  report('transport-tcp', rows, { seconds: SECONDS, rounds: ROUNDS, loadavg: (await import('node:os')).loadavg(), processes: 'sender in parent, receiver/echo in a child process' })
}

if (process.argv[2] === 'child') await child()
else await main()
