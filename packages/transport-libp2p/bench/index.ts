/**
 * transport-libp2p benchmarks, one process, loopback. Three paths measured in the same run:
 *  - KLP over @kos-mesh/transport-tcp (did-security handshake, AES-256-GCM records);
 *  - KLP over this transport (a /kos/klp/1.0.0 stream on js-libp2p: TCP + Noise + Yamux);
 *  - a bare libp2p stream (TCP + Noise + Yamux, no KLP framing or bounds): the floor of this transport.
 * Sender and receiver share this process (and its one JS thread), so absolute numbers are lower than
 * transport-tcp's two-process bench; the ratios are what matter. Throughput streams frames for
 * BENCH_SECONDS per path and size (fresh connection each) and counts bytes at the receiver;
 * request/response is a 64-byte echo, sequential round trips, p50/p99 over BENCH_RTT round trips.
 *
 * Run: npx tsx bench/index.ts   (BENCH_SECONDS=1 default; BENCH_RTT=2000 default)
 */
import { generateIdentity } from '@kos-mesh/did-security'
import type { Connection, Transport } from '@kos-mesh/interface'
import { tcp as kosTcp } from '@kos-mesh/transport-tcp'
import { libp2pTransport } from '../src/index.js'
import type { Libp2p, Stream } from '@libp2p/interface'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { loadavg } from 'node:os'
import { row, report, type BenchRow } from '../../../scripts/bench-util.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 1)
const RTT_N = Number(process.env.BENCH_RTT ?? 2000)
const MAX_FRAME = 1024 * 1024
const SIZES = [1024, 64 * 1024] as const

/** One direction of bytes plus an echo: what each path gives the measurements. */
interface Path {
  name: string
  /** Opens a fresh sender; `onBytes` counts what the receiver got. */
  open(): Promise<{ send(frame: Uint8Array): Promise<void>; request(frame: Uint8Array): Promise<void>; close(): Promise<void> }>
  received(): number
  resetReceived(): void
  stop(): Promise<void>
}

// ------------------------------------------------------------------ KLP over a kos-mesh Transport

async function klpPath(name: string, a: Transport, b: Transport, listenAddr: string, bDid: string): Promise<Path> {
  let got = 0
  const listener = await b.listen(listenAddr, (conn) => {
    void (async () => {
      for await (const f of conn) {
        got += f.byteLength
        if (f.byteLength > 0 && f[0] === 0xee) await conn.send(f) // echo requests
      }
    })().catch(() => {})
  })
  const addr = listener.addrs()[0] as string
  return {
    name,
    async open() {
      const conn: Connection = await a.dial(addr, { remotePeer: bDid })
      const it = conn[Symbol.asyncIterator]()
      return {
        send: (f) => conn.send(f),
        request: async (f) => { await conn.send(f); await it.next() },
        close: () => conn.close(),
      }
    },
    received: () => got,
    resetReceived: () => { got = 0 },
    stop: async () => { await Promise.all([a.close(), b.close()]) },
  }
}

// ------------------------------------------------------------------ bare libp2p stream

const BARE = '/bench/bare/1.0.0'

function bareNode(listen: string[]): Promise<Libp2p> {
  return createLibp2p({ addresses: { listen }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
}

async function barePath(): Promise<Path> {
  const a = await bareNode([])
  const b = await bareNode(['/ip4/127.0.0.1/tcp/0'])
  let got = 0
  await b.handle(BARE, (stream: Stream) => {
    // requests are marked by their first byte 0xee and are 64 bytes: echo them back
    let pending = 0
    stream.addEventListener('message', (evt) => {
      got += evt.data.byteLength
      const first = evt.data instanceof Uint8Array ? evt.data[0] : evt.data.get(0)
      if (pending > 0 || first === 0xee) {
        pending += evt.data.byteLength
        while (pending >= 64) { pending -= 64; stream.send(REQ) }
      }
    })
  }, { maxInboundStreams: 64 })
  const target = b.getMultiaddrs()[0]
  if (target === undefined) throw new Error('expected a listen address')
  return {
    name: 'bare libp2p stream',
    async open() {
      const stream = await a.dialProtocol(target, BARE)
      let waiter: (() => void) | undefined
      let back = 0
      stream.addEventListener('message', (evt) => {
        back += evt.data.byteLength
        if (back >= 64 && waiter !== undefined) { back -= 64; const w = waiter; waiter = undefined; w() }
      })
      return {
        // send() can return true while bytes pile up in the stream's write buffer (e.g. behind lazy
        // protocol negotiation): bound it like the KLP transport does (4 MiB), waiting for 'idle'
        send: async (f) => {
          if (!stream.send(f)) await stream.onDrain()
          while (stream.writeBufferLength > 4 * 1024 * 1024) {
            await new Promise<void>((resolve) => { stream.addEventListener('idle', () => { resolve() }, { once: true }); setTimeout(resolve, 2) })
          }
        },
        request: (f) => new Promise<void>((resolve) => { waiter = resolve; stream.send(f) }),
        close: () => stream.close(),
      }
    },
    received: () => got,
    resetReceived: () => { got = 0 },
    stop: async () => { await Promise.all([a.stop(), b.stop()]) },
  }
}

// ------------------------------------------------------------------ measurements

const REQ = new Uint8Array(64).fill(0xee)

async function throughput(path: Path, size: number): Promise<number> {
  const s = await path.open()
  const frame = new Uint8Array(size).fill(0x11)
  // warm-up
  for (let i = 0; i < 50; i++) await s.send(frame)
  await waitFor(() => path.received() >= 50 * size)
  path.resetReceived()
  let sent = 0
  const t0 = performance.now()
  const end = t0 + SECONDS * 1000
  while (performance.now() < end) {
    for (let i = 0; i < 16; i++) { await s.send(frame); sent += size }
  }
  await waitFor(() => path.received() >= sent)
  const secs = (performance.now() - t0) / 1000
  await s.close().catch(() => {})
  path.resetReceived()
  return sent / secs / 1e6
}

async function latency(path: Path): Promise<{ p50: number; p99: number }> {
  const s = await path.open()
  for (let i = 0; i < 100; i++) await s.request(REQ)
  const times: number[] = []
  for (let i = 0; i < RTT_N; i++) {
    const t0 = performance.now()
    await s.request(REQ)
    times.push((performance.now() - t0) * 1000)
  }
  await s.close().catch(() => {})
  path.resetReceived()
  times.sort((x, y) => x - y)
  return { p50: times[Math.floor(times.length * 0.5)] ?? 0, p99: times[Math.floor(times.length * 0.99)] ?? 0 }
}

async function waitFor(cond: () => boolean): Promise<void> {
  const deadline = performance.now() + 30_000
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`bench: the receiver did not get every byte within 30 s`)
    await new Promise((r) => setTimeout(r, 1))
  }
}

async function main(): Promise<void> {
  const ta = generateIdentity(), tb = generateIdentity(), la = generateIdentity(), lb = generateIdentity()
  const paths = {
    tcp: await klpPath('klp over transport-tcp', kosTcp({ maxFrameSize: MAX_FRAME })({ identity: ta }), kosTcp({ maxFrameSize: MAX_FRAME })({ identity: tb }), 'tcp://127.0.0.1:0', tb.did),
    libp2p: await klpPath('klp over transport-libp2p', libp2pTransport({ maxFrameSize: MAX_FRAME })({ identity: la }), libp2pTransport({ maxFrameSize: MAX_FRAME })({ identity: lb }), 'libp2p:///ip4/127.0.0.1/tcp/0', lb.did),
    bare: await barePath(),
  }
  const rows: BenchRow[] = []
  for (const size of SIZES) {
    const label = size === 1024 ? '1 KiB' : '64 KiB'
    const mb: Record<string, number> = {}
    for (const [k, p] of Object.entries(paths)) mb[k] = await throughput(p, size)
    const v = mb as { tcp: number; libp2p: number; bare: number }
    rows.push(row(`${label} frames, klp libp2p vs bare libp2p stream`, 'MB/s', v.libp2p, { name: 'bare libp2p stream (tcp+noise+yamux)', value: v.bare }, { higherIsBetter: true }))
    rows.push(row(`${label} frames, klp libp2p vs klp tcp`, 'MB/s', v.libp2p, { name: 'klp over transport-tcp', value: v.tcp }, { higherIsBetter: true }))
    rows.push(row(`${label} frames, klp tcp vs bare libp2p stream`, 'MB/s', v.tcp, { name: 'bare libp2p stream (tcp+noise+yamux)', value: v.bare }, { higherIsBetter: true, target: '>= 2.0 (DESIGN 4)' }))
  }
  const lat: Record<string, { p50: number; p99: number }> = {}
  for (const [k, p] of Object.entries(paths)) lat[k] = await latency(p)
  const l = lat as Record<'tcp' | 'libp2p' | 'bare', { p50: number; p99: number }>
  for (const q of ['p50', 'p99'] as const) {
    rows.push(row(`64 B request/response ${q}, klp libp2p vs bare libp2p stream`, 'us', l.libp2p[q], { name: 'bare libp2p stream', value: l.bare[q] }, { higherIsBetter: false }))
    rows.push(row(`64 B request/response ${q}, klp libp2p vs klp tcp`, 'us', l.libp2p[q], { name: 'klp over transport-tcp', value: l.tcp[q] }, { higherIsBetter: false }))
    rows.push(row(`64 B request/response ${q}, klp tcp vs bare libp2p stream`, 'us', l.tcp[q], { name: 'bare libp2p stream', value: l.bare[q] }, { higherIsBetter: false, target: '< 1.0 (DESIGN 4)' }))
  }
  for (const p of Object.values(paths)) await p.stop()
  report('transport-libp2p', rows, {
    seconds: SECONDS,
    roundTrips: RTT_N,
    loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
    method: 'one process, loopback; sender and receiver share the JS thread; throughput = bytes counted at the receiver over BENCH_SECONDS of sending (fresh connection per path and size, 50-frame warm-up); latency = sequential 64 B echo round trips',
  })
}

await main()
process.exit(0)
