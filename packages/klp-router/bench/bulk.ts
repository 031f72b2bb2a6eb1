/**
 * Bulk transfer benchmark (issue 9). The sender (a router with the bulk service) runs in this
 * process, the receiver in a child process (this same file with `--receiver`), over loopback TCP
 * (transport-tcp: did-security handshake, AES-256-GCM records).
 *
 *  - baseline: the TCP transport's own throughput, 64 KiB frames sent over one transport-tcp
 *    connection as fast as `send()` takes them, to a bare transport-tcp listener in the child that
 *    counts bytes.
 *  - router data path: the sender's router `sendData`s frames of bulk's size (chunk + 12 bytes, 2 in
 *    flight, as bulk's pump) on another data channel to a handler in the child that counts bytes.
 *  - bulk: BULK_MB (default 100) MB of random bytes offered from memory and pulled by the child
 *    (`receive()` by offer id) into a sink that keeps nothing, so both sides discard the bytes;
 *    each chunk is still checked against its leaf. Twice per round: leaf hashes in the thread pool
 *    (the default) and on the event loop. Timed from the receive command to the sender's `done`.
 *    Ratio = bulk MB/s / baseline MB/s, median of the per-round ratios (target >= 0.8).
 *  - one round = all four, in rotating order. CPU per MB of each side from process.cpuUsage()
 *    (all threads); the receiver's event loop busy time from performance.eventLoopUtilization().
 *  - offer creation: hashing the payload once (leaf hashes), not in the transfer time; its CPU per
 *    MB is H in the CPU budget, from which the upper bound of the ratio on 2 cores is computed.
 *  - memory sink: one pair into a sink that keeps the payload.
 *  - tuning: chunk sizes and windows, one interleaved pair each.
 *  - resume: the child cuts its connection when half the payload is verified; the receiver
 *    re-dials the sender (the address in the offer) and pulls only what is missing. Rows: time
 *    from the cut to the end (against the second half of an uncut transfer in the same run), bytes
 *    the sender sent again (chunks lost in flight with the connection), and chunk bytes that
 *    reached the receiver again after it had verified them (counted at its data channel; 0 expected).
 *
 * Run: npx tsx bench/bulk.ts   (BULK_MB, BULK_ROUNDS (default 5), BULK_CHUNK, BULK_WINDOW, BULK_TUNE=0 to skip the sweep,
 * BULK_TUNE_CONFIGS=262144x16,524288x8 for another sweep, BULK_RAW_FRAME for another baseline frame size,
 * BULK_AB=raw,datax262144,262144x16xpool,262144x16xinline for alternating rounds of just those (no report
 * written), BULK_PROFILE=<dir> for a CPU profile of the receiver (`node --cpu-prof --import tsx` for the
 * sender), BULK_DEBUG=1 to print each BULK_AB round's monotonic start and end in µs, to split profiles by round)
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes, randomFillSync } from 'node:crypto'
import { createInterface } from 'node:readline'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { createSignatureVerifier, generateIdentity } from '@kos-mesh/did-security'
import { KLPMessageType, type Connection } from '@kos-mesh/interface'
import { tcp } from '@kos-mesh/transport-tcp'
import { row, type BenchRow } from '../../../scripts/bench-util.js'
import { bulkTransfer, memorySink, memorySource, type BulkSink, type BulkTransfer } from '../src/bulk/index.js'
import type { LeafHashing } from '../src/bulk/hasher.js'
import { createRouter, type Router } from '../src/index.js'
import { capturing } from '../test/capturing.js'

const KiB = 1024
const MiB = 1024 * 1024
const TYPE = KLPMessageType.VECTOR_SYNC
const SENDER = 'sender.bench.kai'
const RECEIVER = 'receiver.bench.kai'
const THIS_FILE = fileURLToPath(import.meta.url)
/** Data channel of the router-only rounds (not the bulk service's). */
const DATA_CHANNEL = 0x0b02

const cpuNow = (): number => {
  const c = process.cpuUsage()
  return (c.user + c.system) / 1000
}


// ------------------------------------------------------------------ the receiver process

async function receiverMain(): Promise<void> {
  const out = (s: string): void => void process.stdout.write(`${s}\n`)
  const id = generateIdentity()
  const rawId = generateIdentity()
  const conns: Connection[] = []
  const router = await createRouter({
    authority: RECEIVER,
    identity: id,
    signatureVerifier: createSignatureVerifier(),
    transports: [capturing(tcp()({ identity: id }), conns)],
    listen: ['tcp://127.0.0.1:0'],
  })
  // the baseline's receiver: a bare transport-tcp listener that counts bytes
  let rawTarget = 0
  let rawGot = 0
  let rawCpu0 = 0
  const rawT = tcp()({ identity: rawId })
  const rawL = await rawT.listen('tcp://127.0.0.1:0', (conn) => {
    void (async () => {
      for await (const f of conn) {
        rawGot += f.byteLength
        if (rawTarget > 0 && rawGot >= rawTarget) {
          rawTarget = 0
          out(`raw-done ${cpuNow() - rawCpu0}`)
        }
      }
    })().catch(() => {})
  })

  // frames of chunks this receiver had already verified are counted at the data channel
  let verified = new Uint8Array(0)
  let chunkSize = 1
  let resentVerified = 0
  const observed: Router = new Proxy(router, {
    get(target, prop) {
      if (prop === 'handleData') {
        return (ch: number, h: (peer: string, data: Uint8Array) => void) =>
          target.handleData(ch, (peer, data) => {
            if (data.byteLength >= 12) {
              const index = new DataView(data.buffer, data.byteOffset).getUint32(8)
              if ((verified[index >> 3]! & (1 << (index & 7))) !== 0) resentVerified += data.byteLength - 12
            }
            h(peer, data)
          })
      }
      const v = Reflect.get(target, prop) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
  // one service at a time, made again when a round asks for the other leaf hashing
  const makeService = (leafHashing: LeafHashing): BulkTransfer => {
    const s = bulkTransfer({ type: TYPE, maxBytes: 4 * 1024 * MiB, maxTransfers: 4, leafHashing })({ router: observed })
    s.start()
    return s
  }
  let hashing: LeafHashing = 'pool'
  let svc = makeService(hashing)
  // the router's own data path (no bulk): frames on another data channel, counted
  let dataTarget = 0
  let dataGot = 0
  let dataCpu0 = 0
  router.handleData(DATA_CHANNEL, (_peer, data) => {
    dataGot += data.byteLength
    if (dataTarget > 0 && dataGot >= dataTarget) {
      dataTarget = 0
      out(`data-done ${cpuNow() - dataCpu0}`)
    }
  })
  out(`ready ${rawL.addrs()[0]} ${rawId.did} ${router.addrs()[0]} ${id.did}`)

  const rl = createInterface({ input: process.stdin })
  rl.on('close', () => process.exit(0))
  rl.on('line', (line) => {
    const [cmd, ...args] = line.split(' ')
    if (cmd === 'data') {
      dataGot = 0
      dataTarget = Number(args[0])
      dataCpu0 = cpuNow()
      out('ok')
      return
    }
    if (cmd === 'raw') {
      rawGot = 0
      rawTarget = Number(args[0])
      rawCpu0 = cpuNow()
      out('ok')
      return
    }
    if (cmd === 'recv') {
      const [from, offerId, windowS, cutS, sinkKind, hashingS] = args as [string, string, string, string, string, LeafHashing]
      if (hashingS !== hashing) {
        svc.stop()
        hashing = hashingS
        svc = makeService(hashing)
      }
      const cut = cutS === '1'
      resentVerified = 0
      let cutAt = 0
      let halfAt = 0
      const t0 = performance.now()
      const c0 = cpuNow()
      const e0 = performance.eventLoopUtilization()
      const nullSink: BulkSink = {
        open: (info) => {
          verified = new Uint8Array(Math.ceil(info.chunks / 8))
          chunkSize = info.chunkSize
          return undefined
        },
        write: (index) => {
          verified[index >> 3]! |= 1 << (index & 7)
        },
        commit: () => {},
        abort: () => {},
      }
      const mem = memorySink()
      const sink: BulkSink = sinkKind === 'memory'
        ? { open: (info) => { nullSink.open!(info); return mem.open(info) }, write: (i, b) => { nullSink.write(i, b); mem.write(i, b) }, commit: () => mem.commit(), abort: () => mem.abort() }
        : nullSink
      svc.receive(from, offerId, {
        sink,
        window: Number(windowS),
        onProgress: (p) => {
          if (halfAt === 0 && p.bytes >= p.total / 2) {
            halfAt = performance.now()
            if (cut) {
              cutAt = halfAt
              const senderDid = router.didOf(from)
              for (const c of conns) if (c.remotePeer === senderDid && c.status === 'open') c.abort(new Error('cut by the bench'))
            }
          }
        },
      }).then(
        (r) => {
          const end = performance.now()
          out(`done ${JSON.stringify({ ok: true, ms: end - t0, cpuMs: cpuNow() - c0, loopMs: performance.eventLoopUtilization(e0).active, secondHalfMs: end - halfAt, afterCutMs: cut ? end - cutAt : 0, reconnects: r.reconnects, chunksFetched: r.chunksFetched, resentVerifiedBytes: resentVerified, framesIgnored: svc.stats().framesIgnored, chunkSize })}`)
        },
        (err: unknown) => out(`done ${JSON.stringify({ ok: false, err: String(err) })}`),
      )
    }
  })
}

// ------------------------------------------------------------------ the sender (this process)

interface Child {
  proc: ChildProcess
  next(): Promise<string>
  send(line: string): void
}

function spawnReceiver(): Child {
  // BULK_PROFILE=<dir>: the receiver writes a V8 CPU profile there
  const prof = process.env.BULK_PROFILE === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.BULK_PROFILE}`]
  const proc = spawn(process.execPath, [...prof, '--import', 'tsx', THIS_FILE, '--receiver'], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: proc.stdout! })
  const queue: string[] = []
  let waiter: ((l: string) => void) | undefined
  lines.on('line', (l) => {
    if (waiter !== undefined) {
      const w = waiter
      waiter = undefined
      w(l)
    } else queue.push(l)
  })
  return {
    proc,
    next: () => new Promise((resolve, reject) => {
      if (queue.length > 0) return resolve(queue.shift()!)
      const onExit = (code: number | null): void => reject(new Error(`receiver exited with ${code}`))
      proc.once('exit', onExit)
      waiter = (l) => {
        proc.off('exit', onExit)
        resolve(l)
      }
    }),
    send: (line) => void proc.stdin!.write(`${line}\n`),
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

interface RoundResult {
  mbps: number
  senderCpuPerMB: number
  receiverCpuPerMB: number
}

interface BulkRound extends RoundResult {
  hashMs: number
  /** Sender CPU of making the offer (the leaf hashes of the payload). */
  hashCpuMs: number
  /** The receiver's event loop busy time during the transfer (performance.eventLoopUtilization). */
  receiverLoopMs: number
  secondHalfMs: number
  afterCutMs: number
  reconnects: number
  resentVerifiedBytes: number
  resentBytes: number
}

/** How the last `bulkRows()` run was made (sizes, rounds, per-round ratios, load): the report's metadata. */
export let bulkMeta: Record<string, unknown> = {}

/** Runs the benchmark (spawns the receiver process) and returns its rows. */
export async function bulkRows(): Promise<BenchRow[]> {
  const SIZE = Math.round(Number(process.env.BULK_MB ?? 100) * MiB)
  const ROUNDS = Number(process.env.BULK_ROUNDS ?? 5)
  const CHUNK = Number(process.env.BULK_CHUNK ?? 256 * KiB)
  const WINDOW = Number(process.env.BULK_WINDOW ?? 16)
  const TUNE = process.env.BULK_TUNE !== '0'
  const FRAME = Number(process.env.BULK_RAW_FRAME ?? 64 * KiB)
  const child = spawnReceiver()
  const rows: BenchRow[] = []
  try {
    const [ready, rawAddr, rawDid, routerAddr, did] = (await child.next()).split(' ') as [string, string, string, string, string]
    if (ready !== 'ready') throw new Error(`expected ready from the receiver, got ${ready}`)
    const id = generateIdentity()
    const router = await createRouter({ authority: SENDER, identity: id, signatureVerifier: createSignatureVerifier(), transports: [tcp()({ identity: id })], listen: ['tcp://127.0.0.1:0'] })
    await router.dial(routerAddr, { remotePeer: did })
    const sa = bulkTransfer({ type: TYPE, maxOffers: 4 })({ router })
    sa.start()
    // filled in place: no 100 MB of garbage whose late collection changes the GC heuristics between rounds
    const payload = randomFillSync(new Uint8Array(SIZE))
    const rawTransport = tcp()({ identity: generateIdentity() })
    const rawConn = await rawTransport.dial(rawAddr, { remotePeer: rawDid })
    const frame = new Uint8Array(randomBytes(FRAME))

    const rawRound = async (): Promise<RoundResult> => {
      child.send(`raw ${SIZE}`)
      if ((await child.next()) !== 'ok') throw new Error('expected ok')
      const t0 = performance.now()
      const c0 = cpuNow()
      for (let sent = 0; sent < SIZE; sent += FRAME) await rawConn.send(frame)
      const done = await child.next()
      const ms = performance.now() - t0
      const [tag, cpu] = done.split(' ')
      if (tag !== 'raw-done') throw new Error(`expected raw-done, got ${done}`)
      return { mbps: SIZE / 1e6 / (ms / 1000), senderCpuPerMB: (cpuNow() - c0) / (SIZE / 1e6), receiverCpuPerMB: Number(cpu) / (SIZE / 1e6) }
    }

    // the router's data path alone: sendData of chunk-sized frames (with the bulk header's 12 bytes), as fast as it takes them
    const dataRound = async (chunkSize: number): Promise<RoundResult> => {
      const frame = new Uint8Array(randomBytes(chunkSize + 12))
      const n = Math.ceil(SIZE / chunkSize)
      child.send(`data ${n * frame.byteLength}`)
      if ((await child.next()) !== 'ok') throw new Error('expected ok')
      const t0 = performance.now()
      const c0 = cpuNow()
      const inflight: Array<Promise<void>> = []
      for (let i = 0; i < n; i++) {
        inflight.push(router.sendData(did, DATA_CHANNEL, frame))
        if (inflight.length >= 2) await inflight.shift()
      }
      await Promise.all(inflight)
      const done = await child.next()
      const ms = performance.now() - t0
      const [tag, cpu] = done.split(' ')
      if (tag !== 'data-done') throw new Error(`expected data-done, got ${done}`)
      return { mbps: SIZE / 1e6 / (ms / 1000), senderCpuPerMB: (cpuNow() - c0) / (SIZE / 1e6), receiverCpuPerMB: Number(cpu) / (SIZE / 1e6) }
    }

    const bulkRound = async (chunkSize: number, window: number, cut = false, sink = 'null', leafHashing: LeafHashing = 'pool'): Promise<BulkRound> => {
      const h0 = performance.now()
      const hc0 = cpuNow()
      const offer = await sa.offer(memorySource(payload), { chunkSize, to: did })
      const hashMs = performance.now() - h0
      const hashCpuMs = cpuNow() - hc0
      const sent0 = sa.stats().bytesSent
      const t0 = performance.now()
      const c0 = cpuNow()
      child.send(`recv ${SENDER} ${offer.id} ${window} ${cut ? 1 : 0} ${sink} ${leafHashing}`)
      const [res, line] = await Promise.all([offer.done, child.next()])
      const ms = performance.now() - t0
      const senderCpu = cpuNow() - c0
      const r = JSON.parse(line.slice(5)) as { ok: boolean; err?: string; cpuMs: number; loopMs: number; secondHalfMs: number; afterCutMs: number; reconnects: number; resentVerifiedBytes: number }
      if (!r.ok) throw new Error(`bulk receive failed: ${r.err}`)
      void res
      return {
        hashCpuMs,
        receiverLoopMs: r.loopMs,
        mbps: SIZE / 1e6 / (ms / 1000),
        senderCpuPerMB: senderCpu / (SIZE / 1e6),
        receiverCpuPerMB: r.cpuMs / (SIZE / 1e6),
        hashMs,
        secondHalfMs: r.secondHalfMs,
        afterCutMs: r.afterCutMs,
        reconnects: r.reconnects,
        resentVerifiedBytes: r.resentVerifiedBytes,
        resentBytes: sa.stats().bytesSent - sent0 - SIZE,
      }
    }

    // warm-up (JIT, connections, buffers)
    await rawRound()
    await bulkRound(CHUNK, WINDOW)

    // BULK_AB=raw,datax262144,262144x16xpool,262144x16xinline: alternating rounds (ABBA...) of these
    // configurations (raw: the transport; datax<chunk>: the router data path; <chunk>x<window>[x<hashing>]: bulk), medians per configuration
    if (process.env.BULK_AB !== undefined) {
      const cfgs = process.env.BULK_AB.split(',')
      const res = new Map<string, RoundResult[]>(cfgs.map((c) => [c, []]))
      for (let r = 0; r < ROUNDS; r++) {
        const order = r % 2 === 0 ? cfgs : [...cfgs].reverse()
        for (const c of order) {
          const [chunk, window, mode] = c.split('x') as [string, string, string | undefined]
          const r0 = process.hrtime.bigint() / 1000n
          const x = c === 'raw' ? await rawRound() : chunk === 'data' ? await dataRound(Number(window)) : await bulkRound(Number(chunk), Number(window), false, 'null', (mode ?? 'pool') as LeafHashing)
          res.get(c)!.push(x)
          // BULK_DEBUG: round boundaries on the monotonic clock in µs (to split a --cpu-prof profile by round)
          if (process.env.BULK_DEBUG !== undefined) console.log(`round ${c} ${r0} ${process.hrtime.bigint() / 1000n} ${x.mbps.toFixed(0)} MB/s, sender ${x.senderCpuPerMB.toFixed(2)} ms/MB, heap ${(process.memoryUsage().heapUsed / MiB).toFixed(1)} MiB, external ${(process.memoryUsage().external / MiB).toFixed(1)} MiB`)
        }
      }
      // BULK_DEBUG: the sender's router CPU accounting (did it hold the receiver's pulls back?)
      if (process.env.BULK_DEBUG !== undefined) console.log(`  sender router cpu ${JSON.stringify(router.metrics().cpu)}`)
      for (const [c, xs] of res) console.log(`  AB ${c}: ${median(xs.map((x) => x.mbps)).toFixed(0)} MB/s [${xs.map((x) => x.mbps.toFixed(0)).join(' ')}]; CPU ms/MB sender ${median(xs.map((x) => x.senderCpuPerMB)).toFixed(3)}, receiver ${median(xs.map((x) => x.receiverCpuPerMB)).toFixed(3)}`)
      return rows
    }

    // the main comparison: per round, in rotating order, the transport alone, the router's data path
    // alone (same frame size as bulk's), bulk with the leaf hashes in the thread pool (the default) and
    // bulk with them on the event loop
    type Kind = 'raw' | 'data' | 'pool' | 'inline'
    const kinds: Kind[] = ['raw', 'pool', 'data', 'inline']
    const got: Record<Kind, Array<RoundResult & { hashCpuMs?: number; receiverLoopMs?: number }>> = { raw: [], data: [], pool: [], inline: [] }
    const ratios: number[] = []
    for (let r = 0; r < ROUNDS; r++) {
      const order = kinds.map((_, k) => kinds[(k + r) % kinds.length]!)
      for (const kind of order) {
        const x = kind === 'raw' ? await rawRound() : kind === 'data' ? await dataRound(CHUNK) : await bulkRound(CHUNK, WINDOW, false, 'null', kind)
        got[kind].push(x)
      }
      const [a, b, c, d] = [got.raw.at(-1)!, got.pool.at(-1)!, got.inline.at(-1)!, got.data.at(-1)!]
      ratios.push(b.mbps / a.mbps)
      console.log(`  round ${r + 1}: transport ${a.mbps.toFixed(0)} MB/s, router data path ${d.mbps.toFixed(0)}, bulk ${b.mbps.toFixed(0)} (ratio ${(b.mbps / a.mbps).toFixed(3)}), bulk inline hashing ${c.mbps.toFixed(0)}; CPU ms/MB sender ${b.senderCpuPerMB.toFixed(2)} vs ${a.senderCpuPerMB.toFixed(2)}, receiver ${b.receiverCpuPerMB.toFixed(2)} vs ${a.receiverCpuPerMB.toFixed(2)}`)
    }
    const med = (k: Kind, f: (x: RoundResult & { hashCpuMs?: number; receiverLoopMs?: number }) => number): number => Math.round(median(got[k].map(f)) * 1000) / 1000
    const rawMbps = med('raw', (x) => x.mbps)
    const bulkMbps = med('pool', (x) => x.mbps)
    const mb = Math.round(SIZE / MiB)
    const perMB = SIZE / 1e6
    rows.push(row('transport-tcp alone, 64 KiB frames, one connection (baseline)', 'MB/s', rawMbps))
    rows.push(row(`bulk ${mb} MiB, ${CHUNK / KiB} KiB chunks, window ${WINDOW}, every chunk verified against the signed tree root, loopback TCP`, 'MB/s', bulkMbps, { name: 'transport-tcp 64 KiB frames, same run', value: rawMbps }, {
      higherIsBetter: true,
      target: '>= 0.8',
      ratio: Math.round(median(ratios) * 1e4) / 1e4,
      ratioMin: Math.round(Math.min(...ratios) * 1e4) / 1e4,
      ratioMax: Math.round(Math.max(...ratios) * 1e4) / 1e4,
      rounds: ROUNDS,
    } as Partial<BenchRow>))
    rows.push(row(`bulk ${mb} MiB, same settings, leaf hashes on the event loop (leafHashing: 'inline')`, 'MB/s', med('inline', (x) => x.mbps), { name: 'transport-tcp 64 KiB frames, same run', value: rawMbps }, { higherIsBetter: true }))
    rows.push(row(`router data path alone: sendData of ${CHUNK / KiB} KiB + 12 B frames, 2 in flight (what bulk sends, without bulk)`, 'MB/s', med('data', (x) => x.mbps), { name: 'transport-tcp 64 KiB frames, same run', value: rawMbps }, { higherIsBetter: true }))
    // the CPU budget, all from the rounds above (process CPU: user + sys, all threads)
    const S0 = med('raw', (x) => x.senderCpuPerMB)
    const R0 = med('raw', (x) => x.receiverCpuPerMB)
    const H = Math.round(median(got.pool.concat(got.inline).map((x) => x.hashCpuMs! / perMB)) * 1000) / 1000
    rows.push(row('bulk receiver CPU per MB (process, user+sys)', 'ms/MB', med('pool', (x) => x.receiverCpuPerMB), { name: 'transport-tcp receiver CPU per MB', value: R0 }, { higherIsBetter: false }))
    rows.push(row('bulk sender CPU per MB (process, user+sys)', 'ms/MB', med('pool', (x) => x.senderCpuPerMB), { name: 'transport-tcp sender CPU per MB', value: S0 }, { higherIsBetter: false }))
    rows.push(row("bulk receiver event loop busy per MB (wall time in callbacks: inflated when the machine is busy)", 'ms/MB', med('pool', (x) => x.receiverLoopMs! / perMB), { name: "the same with leafHashing: 'inline'", value: med('inline', (x) => x.receiverLoopMs! / perMB) }, { higherIsBetter: false }))
    rows.push(row("bulk receiver CPU per MB, leafHashing: 'inline'", 'ms/MB', med('inline', (x) => x.receiverCpuPerMB), { name: 'transport-tcp receiver CPU per MB', value: R0 }, { higherIsBetter: false }))
    rows.push(row('router data path CPU per MB: sender / receiver', 'ms/MB', med('data', (x) => x.senderCpuPerMB), { name: 'router data path receiver CPU per MB', value: med('data', (x) => x.receiverCpuPerMB) }, { higherIsBetter: false }))
    rows.push(row('leaf SHA-256 of the payload (the offer), CPU per MB, one core', 'ms/MB', H, undefined, { higherIsBetter: false }))
    // the offer's hashing pass is the very work a receiver does per byte (leaf SHA-256)
    rows.push(row(`offer creation = the receiver's verification work (leaf SHA-256; the offer has no whole-payload hash by default), ${mb} MiB on one core (not in the transfer time)`, 'MB/s', SIZE / 1e6 / (median(got.pool.map((x) => (x as BulkRound).hashMs)) / 1000), { name: 'transport-tcp 64 KiB frames, same run', value: rawMbps }, { higherIsBetter: true }))
    // the bound: bulk does at least the transport's work on both sides plus H on the receiver. On an
    // idle 2-core machine the transport alone runs at 1 MB per max(S0, R0) (each process has a core);
    // bulk needs at least max(S0, receiver event loop, (S0 + R0 + H) / 2) per MB (the pool's threads
    // share the same 2 cores). CPU figures, not wall times: other load on the machine cancels out.
    const T0 = Math.max(S0, R0)
    const boundInline = T0 / Math.max(S0, R0 + H, (S0 + R0 + H) / 2)
    const boundPool = T0 / Math.max(S0, R0, (S0 + R0 + H) / 2)
    rows.push(row('upper bound of the ratio on 2 cores, leaf hashes on the receiver\'s event loop: max(S0, R0) / max(S0, R0 + H, (S0 + R0 + H) / 2)', 'ratio', Math.round(boundInline * 1000) / 1000, undefined, { higherIsBetter: true }))
    rows.push(row('upper bound of the ratio on 2 cores, leaf hashes in the pool: max(S0, R0) / max(S0, R0, (S0 + R0 + H) / 2)', 'ratio', Math.round(boundPool * 1000) / 1000, undefined, { higherIsBetter: true }))
    console.log(`  budget (ms/MB): transport send S0 ${S0}, receive R0 ${R0}, leaf SHA-256 H ${H}; bound inline ${boundInline.toFixed(3)}, pool ${boundPool.toFixed(3)}`)

    // into a memory sink (the payload kept in one buffer), one pair
    {
      const a = await rawRound()
      const b = await bulkRound(CHUNK, WINDOW, false, 'memory')
      rows.push(row(`bulk ${mb} MiB into a memory sink (same settings), one pair`, 'MB/s', b.mbps, { name: 'transport-tcp 64 KiB frames, same pair', value: a.mbps }, { higherIsBetter: true }))
    }

    if (TUNE) {
      // BULK_TUNE_CONFIGS=262144x16,524288x8 replaces the sweep (chunk bytes x window)
      const configs: Array<[number, number]> = process.env.BULK_TUNE_CONFIGS !== undefined
        ? process.env.BULK_TUNE_CONFIGS.split(',').map((c) => c.split('x').map(Number) as [number, number])
        : [[64 * KiB, 16], [128 * KiB, 16], [512 * KiB, 16], [1024 * KiB - 64, 8], [256 * KiB, 4], [256 * KiB, 8], [256 * KiB, 32], [256 * KiB - 64, 16]]
      for (const [chunk, window] of configs) {
        const a = await rawRound()
        const b = await bulkRound(chunk, window)
        const label = chunk % KiB === 0 || chunk === 1024 * KiB - 64 ? `${Math.round(chunk / KiB)} KiB` : `${chunk} B`
        console.log(`  tuning ${label} x ${window}: bulk ${b.mbps.toFixed(0)} MB/s vs transport ${a.mbps.toFixed(0)} MB/s (${(b.mbps / a.mbps).toFixed(3)})`)
        rows.push(row(`tuning: ${label} chunks, window ${window}, one pair`, 'MB/s', b.mbps, { name: 'transport-tcp 64 KiB frames, same pair', value: a.mbps }, { higherIsBetter: true }))
      }
    }

    // resume after a cut at 50 %
    const cuts: BulkRound[] = []
    const halves: number[] = []
    for (let r = 0; r < 3; r++) {
      const plain = await bulkRound(CHUNK, WINDOW)
      halves.push(plain.secondHalfMs)
      const c = await bulkRound(CHUNK, WINDOW, true)
      if (c.reconnects !== 1) throw new Error(`expected one reconnect, got ${c.reconnects}`)
      cuts.push(c)
      console.log(`  resume ${r + 1}: cut -> done ${c.afterCutMs.toFixed(0)} ms (second half uncut ${plain.secondHalfMs.toFixed(0)} ms), sent again ${c.resentBytes} B, verified chunk bytes received again ${c.resentVerifiedBytes}`)
    }
    rows.push(row(`resume after a cut at 50 %: cut -> done (re-dial + missing half of ${mb} MiB)`, 'ms', median(cuts.map((x) => x.afterCutMs)), { name: 'second half of an uncut transfer', value: median(halves) }, { higherIsBetter: false }))
    rows.push(row('resume: bytes the sender sent again (chunks lost in flight with the connection)', 'bytes', median(cuts.map((x) => x.resentBytes)), undefined, { higherIsBetter: false, target: `<= window x chunk = ${WINDOW * CHUNK}` }))
    rows.push(row('resume: chunk bytes received again after they were verified (max over runs)', 'bytes', Math.max(...cuts.map((x) => x.resentVerifiedBytes)), undefined, { higherIsBetter: false, target: '= 0' }))
    sa.stop()
    await rawConn.close().catch(() => {})
    await rawTransport.close()
    await router.stop()
    bulkMeta = {
      bytes: SIZE,
      rounds: ROUNDS,
      chunkSize: CHUNK,
      window: WINDOW,
      baselineFrame: FRAME,
      loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
      ratios: ratios.map((x) => Math.round(x * 1000) / 1000),
      method: "sender (router + bulk service, memory source) in this process, receiver (router + bulk service, sink that keeps nothing; baseline: bare transport-tcp listener; router data path: a data channel handler that counts bytes) in a child process; loopback TCP; per round, in rotating order: transport alone, router data path, bulk (leafHashing 'pool', the default), bulk (leafHashing 'inline'); ratio = median of per-round ratios; CPU = process.cpuUsage (user + sys, all threads) per MB; event loop busy = performance.eventLoopUtilization().active",
    }
    return rows
  } finally {
    // a profiled receiver must exit by itself to write its profile
    if (process.env.BULK_PROFILE !== undefined) child.proc.stdin!.end()
    else child.proc.kill()
  }
}

if (process.argv[2] === '--receiver') {
  await receiverMain()
} else if (import.meta.url === `file://${process.argv[1]}`) {
  const { report } = await import('../../../scripts/bench-util.js')
  const rows = await bulkRows()
  if (process.env.BULK_AB === undefined) report('klp-router-bulk', rows, bulkMeta)
  process.exit(0)
}
