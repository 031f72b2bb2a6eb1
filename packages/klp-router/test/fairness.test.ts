/**
 * Flood isolation (issue 8.6) unit by unit: CPU accounting and the budget (CpuShares, on an
 * injected time source), the scheduler serving a light peer before a flooding one, and the
 * slicer's gate (one step at a time, least recent usage first, each step's time charged).
 */
import { describe, expect, it } from 'vitest'
import { MessagePriority } from '@kos-mesh/interface'
import { FairScheduler } from '../src/scheduler.js'
import { Slicer, type Grant } from '../src/slicer.js'
import { CpuShares, fairLevel } from '../src/usage.js'

function sharesAt(init: ConstructorParameters<typeof CpuShares>[0] = {}): { shares: CpuShares; clock: { t: number } } {
  const clock = { t: 1000 }
  return { shares: new CpuShares({ ...init, now: () => clock.t }), clock }
}

describe('fairLevel (max-min)', () => {
  it('leaves light demands whole and splits the rest evenly', () => {
    expect(fairLevel([0.1, 0.9], 0.5)).toBeCloseTo(0.4)
    expect(fairLevel([0.2, 0.2, 0.9], 0.5)).toBeCloseTo(0.5 / 3)
    expect(fairLevel([0.1, 0.2], 0.5)).toBe(Infinity)
  })
})

describe('CpuShares', () => {
  it('a share is the decayed time charged over the time constant, and decays', () => {
    const { shares, clock } = sharesAt({ tauMs: 100 })
    shares.charge('a', 50)
    expect(shares.share('a')).toBeCloseTo(0.5)
    clock.t += 100
    expect(shares.share('a')).toBeCloseTo(0.5 / Math.E)
    expect(shares.share('nobody')).toBe(0)
    expect(shares.totalShare()).toBeCloseTo(0.5 / Math.E)
  })

  it('a peer alone is never over budget, however much it uses', () => {
    const { shares } = sharesAt()
    shares.charge('flood', 90)
    expect(shares.overBudget('flood')).toBe(false)
  })

  it('with another peer active, the heavy peer is over budget and the light one is not', () => {
    const { shares, clock } = sharesAt({ busyShare: 0.5 })
    shares.charge('flood', 80)
    shares.charge('honest', 5)
    clock.t += 3
    expect(shares.overBudget('flood')).toBe(true)
    expect(shares.overBudget('honest')).toBe(false)
    // once its share decays under the fair level it is read again
    clock.t += 300
    shares.charge('honest', 1)
    clock.t += 3
    expect(shares.overBudget('flood')).toBe(false)
  })

  it('strangers share one bounded slice while a known peer is active, however many they are', () => {
    const strangers = new Set(Array.from({ length: 8 }, (_, i) => `s${i}`))
    const { shares, clock } = sharesAt({ busyShare: 1, strangerShare: 0.25, isStranger: (p) => strangers.has(p) })
    for (const s of strangers) shares.charge(s, 6) // 8 x 0.06 = 0.48 of a core together
    shares.charge('known', 10)
    clock.t += 3
    expect(shares.strangersShare()).toBeGreaterThan(0.25)
    for (const s of strangers) expect(shares.overBudget(s)).toBe(true)
    expect(shares.overBudget('known')).toBe(false)
  })

  it('among strangers only, the heavy ones are held to the strangers\' slice while one waits for its answers', () => {
    const { shares, clock } = sharesAt({ busyShare: 0.9, strangerShare: 0.25, isStranger: () => true })
    const backlog = new Map([['flood', 100], ['light', 1]])
    shares.backlog = (p) => backlog.get(p) ?? 0
    shares.charge('flood', 40)
    shares.charge('light', 2)
    clock.t += 3
    expect(shares.overBudget('flood')).toBe(true)
    expect(shares.overBudget('light')).toBe(false)
  })

  it('strangers that all have backlogs (nobody waits for an answer) share the node by the busy rule alone', () => {
    const { shares, clock } = sharesAt({ busyShare: 0.9, strangerShare: 0.25, isStranger: () => true })
    shares.backlog = () => 100
    shares.charge('bulk1', 30)
    shares.charge('bulk2', 30) // 0.6 together: over the strangers' slice, under the busy share
    clock.t += 3
    expect(shares.overBudget('bulk1')).toBe(false)
    expect(shares.overBudget('bulk2')).toBe(false)
    shares.charge('bulk1', 40) // 1.0 together: over the busy share, the heavier one is held
    clock.t += 3
    expect(shares.overBudget('bulk1')).toBe(true)
    expect(shares.overBudget('bulk2')).toBe(false)
  })
})

describe('a light stranger among flooding strangers', () => {
  it('is not held when the flooders spent the strangers\' slice: only those above the fair level are', () => {
    const { shares, clock } = sharesAt({ busyShare: 1, strangerShare: 0.25, isStranger: (p) => p !== 'known' })
    shares.backlog = (p) => (p === 'honest' ? 2 : 50) // every stranger has a backlog: the known peer is the one protected
    shares.charge('known', 1)
    for (let i = 0; i < 8; i++) shares.charge(`flood${i}`, 8) // 8 x 0.08 = 0.64 of a core, the slice is 0.25
    shares.charge('honest', 1) // 0.01: below the fair level (0.25 - 0.01) / 8 = 0.03
    clock.t += 3
    expect(shares.strangersShare()).toBeGreaterThan(0.25)
    for (let i = 0; i < 8; i++) expect(shares.overBudget(`flood${i}`)).toBe(true)
    expect(shares.overBudget('honest')).toBe(false)
    // a stranger with a backlog above the fair level is held like the flooders
    shares.charge('honest', 5)
    clock.t += 3
    expect(shares.overBudget('honest')).toBe(true)
  })

  it('a peer that becomes trusted while active leaves the strangers\' slice', () => {
    const trusted = new Set<string>()
    const { shares, clock } = sharesAt({ busyShare: 1, strangerShare: 0.25, isStranger: (p) => !trusted.has(p) })
    shares.backlog = (p) => (p === 'waiting' ? 1 : 50)
    shares.charge('waiting', 1) // a stranger waiting for its answer: the slice protects it
    for (let i = 0; i < 4; i++) shares.charge(`flood${i}`, 10)
    shares.charge('peer', 10)
    clock.t += 3
    expect(shares.overBudget('peer')).toBe(true)
    trusted.add('peer')
    clock.t += 3
    expect(shares.overBudget('peer')).toBe(false)
    expect(shares.overBudget('flood0')).toBe(true)
  })
})

describe('FairScheduler: the strangers\' shared queue bound', () => {
  it('all strangers together hold one peer\'s queue; a known peer and a stranger with nothing queued still get in', () => {
    const s = new FairScheduler<number>({ maxPerPeer: 4, maxBytesPerPeer: 1000, sizeOf: (n) => n })
    expect(s.maxStrangers).toBe(4)
    for (let i = 0; i < 4; i++) expect(s.push(`s${i % 2}`, MessagePriority.NORMAL, 10, true)).toBe('ok')
    expect(s.strangerSize).toBe(4)
    expect(s.peerFull('s0', 10)).toBe(true)
    expect(s.push('s0', MessagePriority.NORMAL, 10, true)).toBe('peer_full')
    // one message always fits a stranger's empty queue; a known peer has its own bound
    expect(s.push('s2', MessagePriority.NORMAL, 10, true)).toBe('ok')
    expect(s.push('known', MessagePriority.NORMAL, 10)).toBe('ok')
    expect(s.push('known', MessagePriority.NORMAL, 10)).toBe('ok')
    expect(s.peerFull('known', 10)).toBe(false)
    // bytes too
    const b = new FairScheduler<number>({ maxPerPeer: 100, maxBytesPerPeer: 1000, maxBytesStrangers: 25, sizeOf: (n) => n })
    expect(b.push('s0', MessagePriority.NORMAL, 10, true)).toBe('ok')
    expect(b.push('s1', MessagePriority.NORMAL, 10, true)).toBe('ok')
    expect(b.push('s0', MessagePriority.NORMAL, 10, true)).toBe('peer_full')
    // drained: room again, and the counts follow
    while (s.shift() !== undefined) {}
    expect(s.strangerSize).toBe(0)
    expect(s.strangerBytes).toBe(0)
    expect(s.push('s0', MessagePriority.NORMAL, 10, true)).toBe('ok')
  })

  it('with a hard factor, push takes strangers\' items past the soft bound (frames already read) up to the hard one', () => {
    const s = new FairScheduler<number>({ maxPerPeer: 10, maxStrangers: 2, strangersHardFactor: 2 })
    expect(s.push('a', MessagePriority.NORMAL, 1, true)).toBe('ok')
    expect(s.push('a', MessagePriority.NORMAL, 1, true)).toBe('ok')
    expect(s.peerFull('a', 0)).toBe(true)
    expect(s.push('a', MessagePriority.NORMAL, 1, true)).toBe('ok')
    expect(s.push('a', MessagePriority.NORMAL, 1, true)).toBe('ok')
    expect(s.push('a', MessagePriority.NORMAL, 1, true)).toBe('peer_full')
  })
})

describe('FairScheduler with usage', () => {
  it('a peer that used less than the one in line is served before it; plain round robin otherwise', () => {
    const usage = new Map([['flood', 0.5], ['honest', 0.01]])
    const s = new FairScheduler<string>({ maxPerPeer: 1000, usage: (p) => usage.get(p) ?? 0 })
    for (let i = 0; i < 10; i++) s.push('flood', MessagePriority.NORMAL, `f${i}`)
    s.push('honest', MessagePriority.NORMAL, 'h0')
    expect(s.shift()).toBe('h0')
    expect(s.shift()).toBe('f0')
    const plain = new FairScheduler<string>({ maxPerPeer: 1000 })
    for (let i = 0; i < 10; i++) plain.push('flood', MessagePriority.NORMAL, `f${i}`)
    plain.push('honest', MessagePriority.NORMAL, 'h0')
    expect(plain.shift()).toBe('f0')
    expect(plain.shift()).toBe('h0')
  })

  it('a light stranger goes ahead of flooding strangers within their shared turn', () => {
    const usage = new Map([['s1', 0.3], ['s2', 0.3], ['light', 0]])
    const s = new FairScheduler<string>({ maxPerPeer: 1000, usage: (p) => usage.get(p) ?? 0, strangersUsage: () => 0.6 })
    for (let i = 0; i < 5; i++) {
      s.push('s1', MessagePriority.NORMAL, `a${i}`, true)
      s.push('s2', MessagePriority.NORMAL, `b${i}`, true)
    }
    s.shift()
    s.push('light', MessagePriority.NORMAL, 'l0', true)
    expect(s.shift()).toBe('l0')
  })

  it('passes over skipped peers (at their share of the slots), keeps their place, loses nothing', () => {
    const s = new FairScheduler<string>({ maxPerPeer: 1000 })
    for (let i = 0; i < 3; i++) s.push('flood', MessagePriority.NORMAL, `f${i}`)
    s.push('stranger', MessagePriority.NORMAL, 's0', true)
    s.push('other', MessagePriority.HIGH, 'o0')
    const busy = new Set(['flood', 'other', 'stranger'])
    expect(s.shift((p) => busy.has(p))).toBeUndefined()
    expect(s.size).toBe(5)
    busy.delete('stranger')
    expect(s.shift((p) => busy.has(p))).toBe('s0')
    expect(s.shift((p) => p === 'other')).toBe('f0')
    expect([s.shift(), s.shift(), s.shift(), s.shift()]).toEqual(['o0', 'f1', 'f2', undefined])
  })

  it('keeps FIFO order per peer and loses nothing when front and back entries mix (ring growth)', () => {
    const s = new FairScheduler<string>({ maxPerPeer: 1000, maxTotal: 100_000, usage: (p) => (p.startsWith('light') ? 0 : 1) })
    const want = new Map<string, string[]>()
    for (let i = 0; i < 40; i++) {
      const peer = i % 3 === 0 ? `light${i}` : `heavy${i % 5}`
      const item = `${peer}:${i}`
      s.push(peer, MessagePriority.NORMAL, item)
      want.set(peer, [...(want.get(peer) ?? []), item])
    }
    const got = new Map<string, string[]>()
    for (let v = s.shift(); v !== undefined; v = s.shift()) {
      const peer = v.split(':')[0]!
      got.set(peer, [...(got.get(peer) ?? []), v])
    }
    expect(got).toEqual(want)
  })
})

describe('Slicer gate', () => {
  it('one step at a time; the next is the waiting peer with the least usage; each step is charged', async () => {
    const shares = new CpuShares()
    const slicer = new Slicer(1000, shares)
    const first = slicer.turn('flood')
    expect(typeof first).toBe('number')
    const order: string[] = []
    const wait = (peer: string): Promise<Grant> => Promise.resolve(slicer.turn(peer)).then((g) => { order.push(peer); return g })
    shares.charge('flood', 20)
    // while nobody else waits, another step of the holder's peer rides along on its grant
    const rider = slicer.turn('flood')
    expect(rider).toBe(first)
    const h = wait('honest')
    const f2 = wait('flood')
    const f3 = wait('flood')
    await Promise.resolve()
    expect(order).toEqual([]) // the gate is held
    slicer.done(first as Grant) // one of the two steps on the grant: the gate stays held
    await Promise.resolve()
    expect(order).toEqual([])
    slicer.done(rider as Grant)
    const gh = await h
    expect(order).toEqual(['honest'])
    slicer.done(gh)
    slicer.done(await f2)
    slicer.done(await f3)
    expect(order).toEqual(['honest', 'flood', 'flood'])
    expect(shares.share('flood')).toBeGreaterThan(0.19) // its 20 ms, plus the time its steps held the gate
  })

  it('a step holding the gate past its slice lets the others in when the slice ends', async () => {
    const slicer = new Slicer(1, new CpuShares())
    const g = slicer.turn('a')
    expect(typeof g).toBe('number')
    // 'a' never calls done (its handler awaits I/O): 'b' still gets in after the slice
    const b = await slicer.turn('b')
    expect(b).toBeGreaterThan(0)
    slicer.done(g as Grant) // late: ignored
    slicer.done(b)
  })
})

/**
 * A router fed in process by two peers: a flooder with 600 frames and a quiet peer with one, each
 * on a FeedConnection. `log` gets `handler <who>` for every handled message; `verify` wraps the
 * signature check (`who` is 'quiet' or 'flood').
 */
async function floodRig(o: { log: (e: string) => void; pipelineSliceMs?: number; verify?: (who: string, check: () => Promise<boolean>) => Promise<boolean> }) {
  const { generateIdentity, createSignatureVerifier } = await import('@kos-mesh/did-security')
  const { KLPMessageType, ProcessingStatus } = await import('@kos-mesh/interface')
  const { klpRouter } = await import('../src/router.js')
  const { FeedConnection, feedTransport, makeFrames } = await import('../bench/harness.js')
  const flooder = generateIdentity()
  const quiet = generateIdentity()
  const flood = await makeFrames(600, { identity: flooder })
  const one = await makeFrames(1, { identity: quiet })
  const inner = createSignatureVerifier()
  const who = (did: string): string => (did === quiet.did ? 'quiet' : 'flood')
  let onConn!: (c: import('@kos-mesh/interface').Connection) => void
  const router = klpRouter({ authority: 'bench.mesh.kai', listen: ['bench://feed'], rateLimit: false, maxQueuePerPeer: 1024, acceptBeforeStart: true, ...(o.pipelineSliceMs === undefined ? {} : { pipelineSliceMs: o.pipelineSliceMs }) })({
    signer: generateIdentity().signer,
    signatureVerifier: {
      verifySignature: (keyId, data, sig, opts) => {
        const check = (): Promise<boolean> => inner.verifySignature(keyId, data, sig, opts)
        return o.verify === undefined ? check() : o.verify(who(keyId.split('#')[0]!), check)
      },
    },
    transports: [feedTransport((h) => { onConn = h })],
  })
  router.handle(KLPMessageType.VECTOR_SYNC, (_m, ctx) => {
    o.log(`handler ${who(ctx.fromPeer)}`)
    return { status: ProcessingStatus.PROCESSED }
  })
  await router.start()
  const a = new FeedConnection(flooder.did)
  const b = new FeedConnection(quiet.did)
  onConn(a)
  onConn(b)
  return { router, pushFlood: (from = 0, to = 600) => a.push(flood.frames.slice(from, to)), pushQuiet: () => b.push(one.frames) }
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r))

describe('a router under a one-peer flood (in process)', () => {
  it("serves a quiet peer's message within a few steps, not behind the flood's backlog", async () => {
    const order: string[] = []
    const rig = await floodRig({ log: (e) => order.push(e) })
    try {
      rig.pushFlood()
      // the flood is being worked off (and charged) when the quiet peer's one message arrives
      while (order.length < 50) await turn()
      const before = order.length
      rig.pushQuiet()
      while (!order.includes('handler quiet')) await turn()
      const floodBetween = order.indexOf('handler quiet') - before
      expect(order.length).toBeLessThan(600) // the flood's backlog was still there
      // a free slot (one flood message finishing) and, at each gate step, the one step running;
      // served in plain turns it waits for 5 here, behind the flood the whole backlog
      expect(floodBetween).toBeLessThanOrEqual(4)
    } finally {
      await rig.router.stop()
    }
  })
})

describe('CpuShares.waitMs', () => {
  it('is the time to decay to the fair level, bounded; 1 ms for a peer within its budget', () => {
    const { shares, clock } = sharesAt({ tauMs: 100, busyShare: 0.5 })
    shares.charge('flood', 80)
    shares.charge('honest', 5)
    clock.t += 3
    expect(shares.overBudget('flood')).toBe(true)
    const w = shares.waitMs('flood')
    expect(w).toBeGreaterThan(1)
    expect(w).toBeLessThanOrEqual(25)
    expect(shares.waitMs('honest')).toBe(1)
  })
})

describe('holding works on backlogs (a peer with one message in the node is never held)', () => {
  it('a peer over the fair level is held only while it has more than one message in the node', () => {
    const { shares, clock } = sharesAt({ tauMs: 100, busyShare: 0.5 })
    const backlog = new Map([['flood', 50], ['honest', 1]])
    shares.backlog = (p) => backlog.get(p) ?? 0
    shares.charge('flood', 60) // 0.6 of a core
    shares.charge('honest', 40) // 0.4: above the fair level 0.25 as well
    clock.t += 3
    expect(shares.overBudget('flood')).toBe(true)
    // it waits for each answer before it asks again: it paces itself, holding it would only stall it
    expect(shares.overBudget('honest')).toBe(false)
    expect(shares.wasPaused('honest')).toBe(false)
    backlog.set('honest', 2) // a second message queued: now it is a backlog, and it is held
    expect(shares.overBudget('honest')).toBe(true)
    expect(shares.wasPaused('honest')).toBe(true)
  })

  it('without a backlog function every peer counts as backlogged (CpuShares on its own)', () => {
    const { shares, clock } = sharesAt({ tauMs: 100, busyShare: 0.5 })
    shares.charge('flood', 60)
    shares.charge('honest', 40)
    clock.t += 3
    expect(shares.overBudget('honest')).toBe(true)
  })
})

describe('strangers are one peer at the gate', () => {
  it('gateUsage: a stranger counts as all strangers together, a known peer as itself', () => {
    const { shares } = sharesAt({ tauMs: 100, isStranger: (p) => p.startsWith('s') })
    for (let i = 0; i < 8; i++) shares.charge(`s${i}`, 4) // 0.04 each, 0.32 together
    shares.charge('known', 20) // 0.2
    expect(shares.share('s0')).toBeCloseTo(0.04)
    expect(shares.gateUsage('s0')).toBeCloseTo(0.32)
    expect(shares.gateUsage('s-new')).toBeCloseTo(0.32) // not charged yet: counts as its class
    expect(shares.gateUsage('known')).toBeCloseTo(0.2)
    expect(shares.gateUsage('known-new')).toBe(0)
  })

  it('a known peer that used less than all strangers together goes ahead of each of them, however light each is', async () => {
    const shares = new CpuShares({ busyShare: 10, strangerShare: 10, isStranger: (p) => p.startsWith('s') })
    const slicer = new Slicer(1000, shares)
    for (let i = 0; i < 8; i++) shares.charge(`s${i}`, 4)
    shares.charge('known', 20)
    const first = slicer.turn('holder') as Grant
    const order: string[] = []
    const waits = ['s0', 's1', 's2', 'known', 's3'].map((p) => Promise.resolve(slicer.turn(p)).then((g) => { order.push(p); slicer.done(g) }))
    slicer.done(first)
    await Promise.all(waits)
    expect(order[0]).toBe('known')
    // the strangers tie on their shared usage: they go in turn, in arrival order
    expect(order.slice(1)).toEqual(['s0', 's1', 's2', 's3'])
  })
})

describe('a message passes the gate once (in process)', () => {
  it("no other peer's step runs between a message's verify and its handler while the slice has time", async () => {
    const events: string[] = []
    const rig = await floodRig({
      log: (e) => events.push(e),
      pipelineSliceMs: 10_000,
      verify: async (who, check) => {
        events.push(`verify ${who}`)
        // the quiet peer's check takes a while in this run (microtasks, no I/O): the flood's steps queue at the gate meanwhile
        if (who === 'quiet') for (let k = 0; k < 500; k++) await Promise.resolve()
        return check()
      },
    })
    try {
      // the flood arrives a few frames per turn of the event loop, the quiet peer's one message in the middle of it
      for (let i = 0; i < 30; i++) {
        rig.pushFlood(i * 20, i * 20 + 20)
        if (i === 10) rig.pushQuiet()
        await turn()
      }
      while (!events.includes('handler quiet')) await turn()
      const v = events.indexOf('verify quiet')
      const h = events.indexOf('handler quiet')
      expect(v).toBeGreaterThan(0)
      // the flood was still being worked off (its steps ran before and after), yet none ran in between
      expect(events.slice(v + 1, h)).toEqual([])
      expect(events.filter((e) => e === 'handler flood').length).toBeLessThan(600)
    } finally {
      await rig.router.stop()
    }
  })
})
