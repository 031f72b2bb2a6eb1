/**
 * Gossip simulation: N gossip cores (HyParView + Plumtree) on a SimNet in virtual time, with
 * seeded latency, jitter and loss on every message. Phases: joins through one contact node in
 * waves; membership settles (shuffles, view maintenance); optionally a fraction of nodes crash
 * (their neighbours' drivers report them down after `detectMs`, as a closed connection would) and
 * the views repair; then broadcasts from random live nodes, one at a time, each measured; then
 * the same broadcasts by plain flooding over the same overlay (every node forwards its first copy
 * to all its active neighbours) as the baseline.
 *
 * Deterministic: the same options give the same summary. Run: `npx tsx sim/gossip-sim.ts [nodes]`.
 */
import { mulberry32 } from '@kos-mesh/interface'
import { gossipCore, type GossipCore, type GossipCoreInit, type GossipWireMessage } from '../src/gossip/index.js'
import { SimNet } from './simnet.js'

export interface GossipSimOptions {
  nodes: number
  seed?: number
  /** One-way link latency, ms. Default 100. */
  latencyMs?: number
  /** Extra uniform latency in [0, jitterMs). Default 10. */
  jitterMs?: number
  /** Loss probability of every message. Default 0.05. */
  loss?: number
  broadcasts?: number
  /** Nodes joining per wave and time between waves. Defaults 50, 1,000 ms. */
  waveSize?: number
  waveMs?: number
  /** Settling time after the last wave. Default 360,000 ms (36 shuffle periods, ~6 rewiring periods). */
  settleMs?: number
  /** Fraction of nodes crashing before the broadcasts. Default 0. */
  crashFraction?: number
  /** Delay until a neighbour's driver reports a crashed peer down. Default 1,000 ms. */
  detectMs?: number
  /** Time after the crashes before the broadcasts. Default 15,000 ms. */
  repairMs?: number
  /** Time per broadcast (the next starts after it). Default 3,000 ms. */
  gapMs?: number
  payloadBytes?: number
  /** Also run the flooding baseline. Default true. */
  flood?: boolean
  gossip?: GossipCoreInit
}

export interface BroadcastFigures {
  broadcasts: number
  /** Minimum over broadcasts of the fraction of live nodes (other than the source) that received it. */
  minDelivery: number
  /** All broadcasts reached every live node. */
  allDelivered: boolean
  latencyP50: number
  latencyP95: number
  latencyMax: number
  /** Payload copies received beyond the first, per node and broadcast. */
  duplicatesMean: number
  duplicatesMax: number
  /** Max over nodes and broadcasts of duplicates minus the node's active view size at the end of the broadcast. */
  duplicatesOverDegreeMax: number
  /** Node-broadcasts with more duplicates than the node's active view size then (links in transition). */
  duplicatesOverDegreeCount: number
  /** Max duplicates minus the configured active view size (the mesh degree): <= 0 means bounded by the degree. */
  duplicatesOverMeshDegreeMax: number
  payloadMsgsPerBroadcast: number
  controlMsgsPerBroadcast: number
  payloadMsgsPerNode: number
}

export interface GossipSimSummary {
  nodes: number
  live: number
  seed: number
  degree: { min: number; mean: number; max: number }
  passiveMean: number
  eagerMean: number
  /** Shortest-path hops over active views from 10 random sources. */
  overlayHops: { p50: number; p95: number; max: number }
  /** Active-view entries X -> Y where Y does not have X (at the end). */
  halfOpenLinks: number
  /** Nodes whose active view is empty (isolated). */
  isolated: number
  /** Nodes reachable from node 0 (or the first live node) over active views. */
  connected: number
  membershipMsgsPerNodePerSec: number
  gossip: BroadcastFigures
  flood?: BroadcastFigures
  memory: MemoryFigures
  /** GRAFTs for missing ids (repairs) and GRAFTs that only restored an eager link, summed over nodes. */
  grafts: number
  linkGrafts: number
  givenUp: number
  virtualMs: number
}

export interface MemoryFigures {
  /** Mean entries held per node: active + passive + eager + lazy ids, cache entries, seen ids, missing ids. */
  entriesMean: number
  cacheEntriesMean: number
  cacheBytesMean: number
  /** Estimate: entries x 96 bytes (a short string id in a Set/Map, V8) + cached payload bytes. */
  estimatedBytesMean: number
}

type SimMessage = GossipWireMessage | { type: 'flood'; id: string }

const PAYLOAD_TYPES = new Set(['gossip', 'flood'])
const CONTROL_TYPES = new Set(['ihave', 'graft', 'prune'])

const did = (i: number): string => `n${i}`
const idx = (d: string): number => Number(d.slice(1))

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number
}

const round = (v: number, d = 2): number => Math.round(v * 10 ** d) / 10 ** d

export async function runGossipSim(o: GossipSimOptions): Promise<GossipSimSummary> {
  const n = o.nodes
  const seed = o.seed ?? 1
  const latencyMs = o.latencyMs ?? 100
  const net = new SimNet<SimMessage>({ seed, latencyMs, jitterMs: o.jitterMs ?? 10, loss: o.loss ?? 0.05 })
  const clock = net.clock
  const rnd = mulberry32((seed * 2654435761) >>> 0)
  const start = clock.now()
  const counts = new Map<string, number>()
  const arrival: Float64Array = new Float64Array(n)
  const copies: Uint16Array = new Uint16Array(n)
  let currentId = ''
  const cores: GossipCore[] = []
  const up = new Uint8Array(n)

  const sendFrom = (i: number) => (to: string, m: SimMessage): void => {
    counts.set(m.type, (counts.get(m.type) ?? 0) + 1)
    const j = idx(to)
    if (!net.isUp(j)) {
      // a send on a dead link fails: the driver reports the peer down (after about a round trip)
      const core = cores[i]
      if (core !== undefined && up[i] === 1 && core.membership.isActive(to)) clock.setTimeout(() => { if (up[i] === 1) core.peerDown(to) }, 2 * latencyMs)
    }
    net.send(i, j, m)
  }

  for (let i = 0; i < n; i++) {
    const core = gossipCore(o.gossip)({
      self: did(i),
      clock,
      send: sendFrom(i),
      random: mulberry32((seed * 7919 + i * 104729) >>> 0),
      deliver: (id) => {
        if (id === currentId && arrival[i] === 0) arrival[i] = clock.now()
      },
    })
    cores.push(core)
  }
  // payload receptions (first and duplicates) are counted at the receiver, for gossip and flooding alike
  const floodSeen = new Set<number>()
  let floodId = ''
  const floodForward = (i: number, from: number): void => {
    for (const p of (cores[i] as GossipCore).neighbors()) if (idx(p) !== from) sendFrom(i)(p, { type: 'flood', id: floodId })
  }
  for (let i = 0; i < n; i++) {
    net.attach(i, (from, m) => {
      if (m.type === 'flood') {
        if (m.id !== floodId) return
        copies[i] = (copies[i] ?? 0) + 1
        if (!floodSeen.has(i)) {
          floodSeen.add(i)
          arrival[i] = clock.now()
          floodForward(i, from)
        }
        return
      }
      if (m.type === 'gossip' && m.id === currentId) copies[i] = (copies[i] ?? 0) + 1
      ;(cores[i] as GossipCore).receive(did(from), m)
    })
    net.setDown(i, true)
  }

  // joins in waves through node 0
  const waveSize = o.waveSize ?? 50
  net.setDown(0, false)
  up[0] = 1
  cores[0]?.start()
  for (let i = 1; i < n; i += waveSize) {
    for (let k = i; k < Math.min(n, i + waveSize); k++) {
      net.setDown(k, false)
      up[k] = 1
      const core = cores[k] as GossipCore
      core.start()
      core.join(did(0))
    }
    await net.runFor(o.waveMs ?? 1_000)
  }
  await net.runFor(o.settleMs ?? 360_000)

  // crashes
  const crashCount = Math.floor((o.crashFraction ?? 0) * n)
  if (crashCount > 0) {
    const order = Array.from({ length: n }, (_, i) => i)
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1))
      ;[order[i], order[j]] = [order[j] as number, order[i] as number]
    }
    for (const c of order.slice(0, crashCount)) {
      net.setDown(c, true)
      up[c] = 0
      ;(cores[c] as GossipCore).stop()
      for (let i = 0; i < n; i++) {
        const core = cores[i] as GossipCore
        if (up[i] === 1 && core.membership.isActive(did(c))) clock.setTimeout(() => { if (up[i] === 1) core.peerDown(did(c)) }, o.detectMs ?? 1_000)
      }
    }
    await net.runFor(o.repairMs ?? 15_000)
  }
  const live = Array.from({ length: n }, (_, i) => i).filter((i) => up[i] === 1)
  const membershipMsgs = [...counts.entries()].filter(([t]) => !PAYLOAD_TYPES.has(t) && !CONTROL_TYPES.has(t)).reduce((a, [, c]) => a + c, 0)
  const membershipMsgsPerNodePerSec = membershipMsgs / n / ((clock.now() - start) / 1000)

  const meshDegree = (cores[0] as GossipCore).membership.options.activeViewSize
  const degrees = live.map((i) => (cores[i] as GossipCore).neighbors().length)
  const sources = Array.from({ length: o.broadcasts ?? 20 }, () => live[Math.floor(rnd() * live.length)] as number)
  const payload = new Uint8Array(o.payloadBytes ?? 512)

  async function measure(kind: 'gossip' | 'flood'): Promise<BroadcastFigures> {
    const lat: number[] = []
    let minDelivery = 1
    let dupSum = 0
    let dupMax = 0
    let overDegree = -Infinity
    let overCount = 0
    let payloadMsgs = 0
    let controlMsgs = 0
    let samples = 0
    for (let b = 0; b < sources.length; b++) {
      const src = sources[b] as number
      const id = `${kind}-${seed}-${b}`
      arrival.fill(0)
      copies.fill(0)
      const before = new Map(counts)
      const t0 = clock.now()
      if (kind === 'gossip') {
        currentId = id
        ;(cores[src] as GossipCore).broadcast(id, payload)
      } else {
        floodId = id
        floodSeen.clear()
        floodSeen.add(src)
        floodForward(src, -1)
      }
      await net.runFor(o.gapMs ?? 3_000)
      for (const [t, c] of counts) {
        const d = c - (before.get(t) ?? 0)
        if (PAYLOAD_TYPES.has(t)) payloadMsgs += d
        else if (CONTROL_TYPES.has(t)) controlMsgs += d
      }
      let got = 0
      for (const i of live) {
        if (i === src) continue
        if (arrival[i] !== 0) {
          got++
          lat.push((arrival[i] as number) - t0)
        }
        const dups = Math.max(0, (copies[i] as number) - 1)
        dupSum += dups
        samples++
        if (dups > dupMax) dupMax = dups
        const deg = (cores[i] as GossipCore).neighbors().length
        if (dups - deg > overDegree) overDegree = dups - deg
        if (dups > deg) overCount++
      }
      minDelivery = Math.min(minDelivery, got / (live.length - 1))
    }
    const sorted = Float64Array.from(lat).sort()
    return {
      broadcasts: sources.length,
      minDelivery: round(minDelivery, 4),
      allDelivered: minDelivery === 1,
      latencyP50: round(quantile(sorted, 0.5)),
      latencyP95: round(quantile(sorted, 0.95)),
      latencyMax: round(sorted.length === 0 ? 0 : (sorted[sorted.length - 1] as number)),
      duplicatesMean: round(dupSum / Math.max(1, samples), 3),
      duplicatesMax: dupMax,
      duplicatesOverDegreeMax: overDegree,
      duplicatesOverDegreeCount: overCount,
      duplicatesOverMeshDegreeMax: dupMax - meshDegree,
      payloadMsgsPerBroadcast: round(payloadMsgs / sources.length, 1),
      controlMsgsPerBroadcast: round(controlMsgs / sources.length, 1),
      payloadMsgsPerNode: round(payloadMsgs / sources.length / live.length, 3),
    }
  }

  const gossip = await measure('gossip')
  const flood = o.flood === false ? undefined : await measure('flood')

  // structure after the run
  let entries = 0
  let cacheEntries = 0
  let cacheBytes = 0
  let passive = 0
  let eager = 0
  let grafts = 0
  let linkGrafts = 0
  let givenUp = 0
  for (const i of live) {
    const s = (cores[i] as GossipCore).stats()
    const e = s.membership.active + s.membership.passive + s.broadcast.eager + s.broadcast.lazy + s.broadcast.cacheEntries + s.broadcast.seen + s.broadcast.missing
    entries += e
    cacheEntries += s.broadcast.cacheEntries
    cacheBytes += s.broadcast.cacheBytes
    passive += s.membership.passive
    eager += s.broadcast.eager
    grafts += s.broadcast.graftsSent - s.broadcast.linkGrafts
    linkGrafts += s.broadcast.linkGrafts
    givenUp += s.broadcast.givenUp
  }
  // connectivity over active views
  const seen = new Set<number>([live[0] as number])
  const queue = [live[0] as number]
  for (let q = 0; q < queue.length; q++) {
    for (const p of (cores[queue[q] as number] as GossipCore).neighbors()) {
      const j = idx(p)
      if (up[j] === 1 && !seen.has(j)) { seen.add(j); queue.push(j) }
    }
  }
  // hop distances over active views from a few sources
  const hops: number[] = []
  for (let k = 0; k < 10; k++) {
    const s0 = live[Math.floor(rnd() * live.length)] as number
    const dist = new Map<number, number>([[s0, 0]])
    const qq = [s0]
    for (let q = 0; q < qq.length; q++) {
      const cur = qq[q] as number
      for (const p of (cores[cur] as GossipCore).neighbors()) {
        const j = idx(p)
        if (up[j] === 1 && !dist.has(j)) { dist.set(j, (dist.get(cur) as number) + 1); qq.push(j) }
      }
    }
    for (const d of dist.values()) hops.push(d)
  }
  const hopSorted = Float64Array.from(hops).sort()
  let halfOpen = 0
  for (const i of live) for (const p of (cores[i] as GossipCore).neighbors()) if (up[idx(p)] === 1 && !(cores[idx(p)] as GossipCore).membership.isActive(did(i))) halfOpen++
  for (const c of cores) c.stop()
  const L = live.length
  return {
    nodes: n,
    live: L,
    seed,
    degree: { min: Math.min(...degrees), mean: round(degrees.reduce((a, b) => a + b, 0) / L), max: Math.max(...degrees) },
    passiveMean: round(passive / L),
    eagerMean: round(eager / L),
    isolated: degrees.filter((d) => d === 0).length,
    connected: seen.size,
    halfOpenLinks: halfOpen,
    overlayHops: { p50: quantile(hopSorted, 0.5), p95: quantile(hopSorted, 0.95), max: quantile(hopSorted, 1) },
    membershipMsgsPerNodePerSec: round(membershipMsgsPerNodePerSec, 3),
    gossip,
    flood,
    memory: {
      entriesMean: round(entries / L, 1),
      cacheEntriesMean: round(cacheEntries / L, 1),
      cacheBytesMean: round(cacheBytes / L, 0),
      estimatedBytesMean: round((entries * 96 + cacheBytes) / L, 0),
    },
    grafts,
    linkGrafts,
    givenUp,
    virtualMs: clock.now() - start,
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const nodes = Number(process.argv[2] ?? 1000)
  const t0 = performance.now()
  const summary = await runGossipSim({ nodes, broadcasts: 20 })
  console.log(JSON.stringify(summary, null, 2))
  console.log(`wall ${((performance.now() - t0) / 1000).toFixed(1)} s`)
}
