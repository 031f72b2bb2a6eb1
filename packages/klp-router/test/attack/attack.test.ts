/**
 * Regression tests of the outside attack run (issue 8) on real TCP, with the attackers and the
 * honest peer in processes of their own (so that only the target's CPU is the target's). They
 * assert behaviour (nothing honest fails, bounds hold, the slow peer is dropped); latency figures
 * are printed next to the quiet case for the record (timing thresholds live in `bench/attack.ts`).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { KLPMessageType, ProcessingStatus, VerificationLevel } from '@kos-mesh/interface'
import { staticTrustEngine } from '@kos-mesh/trust'
import { quantile, spawnFlooder, startTarget, type Flooder, type Mesh } from './harness.js'

let mesh: Mesh | undefined
const children: Flooder[] = []
afterEach(async () => {
  for (const c of children) c.kill()
  children.length = 0
  await mesh?.stop()
  mesh = undefined
})

const fmt = (xs: number[]): string => `p50 ${quantile(xs, 0.5).toFixed(2)} / p99 ${quantile(xs, 0.99).toFixed(2)} ms`

describe('issue 8.1: a peer that stops reading', () => {
  for (const variant of ['echo', 'insufficient_trust'] as const) {
    it(`cannot stall the node (${variant} replies): honest tasks complete, its queue stays bounded, it is dropped`, async () => {
      const trustPolicy = variant === 'insufficient_trust'
        ? { [KLPMessageType.TASK_REQUEST]: { minimum_trust_score: 5, required_endorsements: 0, verification_level: VerificationLevel.NONE } }
        : undefined
      const trust = staticTrustEngine()
      const observed: string[] = []
      Object.assign(trust, { observe: (did: string, outcome: string) => observed.push(`${did} ${outcome}`) })
      const m = await startTarget({ ...(trustPolicy === undefined ? {} : { trustPolicy }), maxOutboundBytesPerPeer: 4 * 1024 * 1024 }, trust, { sendStallTimeoutMs: 2000 })
      mesh = m
      const addr = m.target.addrs()[0]!
      const honest = await spawnFlooder(addr, m.targetId.did, { mode: 'honest', count: 40 })
      children.push(honest)
      // the honest client is trusted (it passes the trust policy); the attacker is not
      await new Promise((r) => setTimeout(r, 100))
      for (const p of m.target.peers()) trust.set(p.did, { trust_score: 8, verification_level: VerificationLevel.CRYPTOGRAPHIC })
      const quiet = await honest.requests(40)
      expect(quiet.failed).toBe(0)
      // as the attack run did: 64 echo tasks of 900 KiB, or 20,000 small tasks answered with small errors
      const attacker = await spawnFlooder(addr, m.targetId.did, variant === 'echo' ? { mode: 'noread', count: 64, bytes: 900 * 1024 } : { mode: 'noread', count: 20_000 })
      children.push(attacker)
      let maxOut = 0
      const sampler = setInterval(() => { maxOut = Math.max(maxOut, m.target.metrics().outbound.queuedBytes) }, 5)
      void attacker.go()
      await new Promise((r) => setTimeout(r, 200))
      const during = await honest.requests(40)
      clearInterval(sampler)
      console.log(`[stop reading, ${variant}] honest quiet ${fmt(quiet.lat)}; during ${fmt(during.lat)}; max outbound queued ${maxOut} B`)
      expect(during.failed).toBe(0)
      // the router never holds more for the attacker than its outbound bound (+ one frame in the transport)
      expect(maxOut).toBeLessThanOrEqual(4 * 1024 * 1024 + 1024 * 1024)
      if (variant === 'echo') {
        // the transport drops the attacker once its send buffer stayed full past the deadline
        const deadline = Date.now() + 15_000
        while (m.target.metrics().slowPeers === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
        expect(m.target.metrics().slowPeers).toBe(1)
        // and reported to the trust engine
        expect(observed).toContain(`${attacker.did} timeout`)
      }
      const after = await honest.requests(10)
      expect(after.failed).toBe(0)
    })
  }
})

describe('issue 8.6: a flooding peer', () => {
  for (const dids of [1, 8]) {
    it(`${dids} flooding DID(s): every honest request completes and nothing of the flood is lost`, async () => {
      const m = await startTarget()
      mesh = m
      const addr = m.target.addrs()[0]!
      const honest = await spawnFlooder(addr, m.targetId.did, { mode: 'honest', count: 100 })
      children.push(honest)
      await honest.requests(20)
      const quiet = await honest.requests(100)
      const count = 8000
      const flood = await spawnFlooder(addr, m.targetId.did, { mode: 'flood', count, dids })
      children.push(flood)
      const sent = flood.go()
      await new Promise((r) => setTimeout(r, 50))
      const during = await honest.requests(100)
      console.log(`[flood, ${dids} DID(s)] honest quiet ${fmt(quiet.lat)}; during ${fmt(during.lat)}`)
      expect(during.failed).toBe(0)
      expect(await sent).toBe(count)
      // backpressure, not drops: every flood task is eventually processed
      const deadline = Date.now() + 30_000
      while (m.target.metrics().processed < count + 220 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
      const r = m.target.metrics().rejects
      expect(r.rate_limited ?? 0).toBe(0)
      expect(r.queue_full ?? 0).toBe(0)
      expect(m.target.metrics().processed).toBe(count + 220)
    })
  }
})

describe('issue 8.3: queues bounded in bytes', () => {
  it('4 peers sending 260 messages of 1 MiB into a stalled node: resident memory stays under its ceiling and returns', async () => {
    let release!: () => void
    const stalled = new Promise<void>((r) => { release = r })
    // the 4 attackers are strangers: their shared queue bound is raised so that the total bound is what they reach
    const m = await startTarget({ maxQueueBytesTotal: 64 * 1024 * 1024, maxQueueBytesPerPeer: 4 * 1024 * 1024, maxQueueBytesStrangers: 64 * 1024 * 1024 })
    mesh = m
    m.target.unhandle(KLPMessageType.TASK_REQUEST)
    m.target.handle(KLPMessageType.TASK_REQUEST, async () => {
      await stalled
      return { status: ProcessingStatus.PROCESSED }
    })
    const addr = m.target.addrs()[0]!
    const base = process.memoryUsage().rss
    const attackers = await Promise.all(Array.from({ length: 4 }, () => spawnFlooder(addr, m.targetId.did, { mode: 'noread', count: 260, bytes: 1024 * 1024 - 4096 })))
    children.push(...attackers)
    for (const a of attackers) void a.go()
    let peak = 0
    let maxQueue = 0
    const until = Date.now() + 6000
    while (Date.now() < until) {
      peak = Math.max(peak, process.memoryUsage().rss - base)
      maxQueue = Math.max(maxQueue, m.target.metrics().queueBytes)
      await new Promise((r) => setTimeout(r, 20))
    }
    // ceiling: queue bound (64 MiB) + 32 messages in the pipeline (32 MiB) + transport buffers (4 x 2 MiB) + slack
    const ceiling = 256 * 1024 * 1024
    console.log(`[1 MiB flood] peak RSS growth ${(peak / 1048576).toFixed(0)} MiB (ceiling ${ceiling / 1048576} MiB); max queued ${(maxQueue / 1048576).toFixed(1)} MiB`)
    expect(maxQueue).toBeLessThanOrEqual(64 * 1024 * 1024)
    expect(maxQueue).toBeGreaterThan(8 * 1024 * 1024) // the attack did reach the bound region
    expect(peak).toBeLessThan(ceiling)
    for (const a of attackers) a.kill()
    release()
    const deadline = Date.now() + 20_000
    while ((m.target.metrics().queueBytes > 0 || m.target.metrics().outbound.queuedBytes > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    expect(m.target.metrics().queueBytes).toBe(0)
    expect(m.target.metrics().outbound.queuedBytes).toBe(0)
  })
})
