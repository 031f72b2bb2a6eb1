/**
 * The Transport compliance suite. Every kos-mesh Transport (memory, TCP, libp2p, third-party)
 * runs it with its own `setup`:
 *
 * ```ts
 * import { transportCompliance } from '@kos-mesh/interface-compliance-tests'
 * transportCompliance('memory', async () => ({ a, b, aPeer, bPeer, listenAddr: 'memory://', teardown }))
 * ```
 */
import {
  AbortError,
  ConnectionClosedError,
  LimitExceededError,
  PeerMismatchError,
  UnreachableError,
  type Connection,
  type Listener,
  type Transport,
  type TransportAddress,
} from '@kos-mesh/interface'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { bytesEqual, collect, expectError, frameOf, isErrorOf, readN, seqOf, stalled, waitFor, withTimeout } from './util.js'

/** What a transport under test provides to the suite. `setup` is called once per test. */
export interface TransportPair {
  /** The dialing side. */
  a: Transport
  /** The listening side. */
  b: Transport
  /** The DID `a` authenticates as (what b's inbound connections report as `remotePeer`). */
  aPeer: string
  /** The DID `b` authenticates as. */
  bPeer: string
  /** An address b can listen on (e.g. `tcp://127.0.0.1:0`, `memory://`). */
  listenAddr: TransportAddress
  /** The largest frame the transport accepts; enables the max-size and over-size tests. */
  maxFrameSize?: number
  /** An address nobody listens on; enables the unreachable-dial test. */
  unreachableAddr?: TransportAddress
  /** Closes whatever setup created (called after each test, even a failing one). */
  teardown(): Promise<void>
  /**
   * The outbound limits the transports were created with, when `setup` was given some and the
   * transport supports them; enables the slow-peer test (skipped when absent).
   */
  outboundLimits?: OutboundLimits
  /**
   * Lets `ms` of the transports' time pass (a virtual-time network advances its clock here).
   * Default: a wall-clock timer.
   */
  sleep?(ms: number): Promise<void>
}

/**
 * Outbound limits of a connection (both kos-mesh transports have them under these init names): the
 * bytes it may hold on the way out before `send()` rejects with `SendBufferFullError`, and how long
 * they may sit undrained before the connection is aborted with `SlowPeerError`.
 */
export interface OutboundLimits {
  maxOutboundBufferBytes: number
  sendStallTimeoutMs: number
}

/** Matchers for the slow-peer errors (by `name` / `code`; the classes live in each transport). */
class SendBufferFullError extends Error {
  static readonly code = 'ERR_SEND_BUFFER_FULL'
}
class SlowPeerError extends Error {
  static readonly code = 'ERR_SLOW_PEER'
}

/** Options of the Transport compliance suite: sizes and limits of the transport under test. */
export interface TransportComplianceOptions {
  /** Frames per direction in the ordered-delivery test. Default 1000. */
  frames?: number
  /** Concurrent connections in the concurrency test. Default 50. */
  connections?: number
  /** Bytes a never-read connection may absorb before send() must have blocked. Default 64 MiB. */
  backpressureCapBytes?: number
  /** How long a send must stay unresolved to count as blocked, in ms. Default 200. */
  stallMs?: number
  /** The short limits the slow-peer test asks `setup` for. Default 256 KiB and 300 ms. */
  slowPeer?: Partial<OutboundLimits>
}

interface Ctx {
  pair: TransportPair
  listener: Listener
  /** Inbound connections b received, in arrival order. */
  inbound: Connection[]
  /** Resolves with the nth inbound connection (0-based). */
  nextInbound(n?: number): Promise<Connection>
  dial(options?: { signal?: AbortSignal; remotePeer?: string }): Promise<Connection>
}

/** Registers the transport compliance tests (vitest `describe`/`it`) under `name`. */
export function transportCompliance(name: string, setup: (limits?: OutboundLimits) => Promise<TransportPair>, options: TransportComplianceOptions = {}): void {
  const FRAMES = options.frames ?? 1000
  const CONNS = options.connections ?? 50
  const CAP = options.backpressureCapBytes ?? 64 * 1024 * 1024
  const STALL = options.stallMs ?? 200
  const SLOW: OutboundLimits = { maxOutboundBufferBytes: 256 * 1024, sendStallTimeoutMs: 300, ...options.slowPeer }

  describe(`${name}: transport compliance`, () => {
    let ctx: Ctx
    let pair: TransportPair | undefined

    beforeEach(async () => {
      pair = await setup()
      const p = pair
      const inbound: Connection[] = []
      const waiters: Array<{ n: number; resolve(c: Connection): void }> = []
      const listener = await p.b.listen(p.listenAddr, (conn) => {
        inbound.push(conn)
        for (const w of waiters.splice(0)) {
          const c = inbound[w.n]
          if (c !== undefined) w.resolve(c)
          else waiters.push(w)
        }
      })
      const addr = listener.addrs()[0]
      if (addr === undefined) throw new Error(`expected listener.addrs() to return at least one address, got none`)
      ctx = {
        pair: p,
        listener,
        inbound,
        nextInbound: (n = 0) => {
          const c = inbound[n]
          if (c !== undefined) return Promise.resolve(c)
          return new Promise((resolve) => { waiters.push({ n, resolve }) })
        },
        dial: (o = {}) => p.a.dial(addr, { remotePeer: o.remotePeer ?? p.bPeer, ...(o.signal === undefined ? {} : { signal: o.signal }) }),
      }
    })

    afterEach(async () => {
      await pair?.teardown()
      pair = undefined
    })

    it('listens, dials, and reports remotePeer, direction and remoteAddr', async () => {
      const addrs = ctx.listener.addrs()
      expect(addrs.length).toBeGreaterThan(0)
      for (const addr of addrs) {
        expect(typeof addr).toBe('string')
        expect(ctx.pair.a.canDial(addr)).toBe(true)
      }
      expect(ctx.pair.a.canDial('no-such-scheme://x')).toBe(false)
      const out = await ctx.dial()
      const inb = await ctx.nextInbound()
      expect(out.remotePeer).toBe(ctx.pair.bPeer)
      expect(inb.remotePeer).toBe(ctx.pair.aPeer)
      expect(out.direction).toBe('outbound')
      expect(inb.direction).toBe('inbound')
      expect(out.status).toBe('open')
      expect(inb.status).toBe('open')
      expect(typeof out.remoteAddr).toBe('string')
      expect(out.remoteAddr.length).toBeGreaterThan(0)
      expect(typeof inb.remoteAddr).toBe('string')
      expect(inb.remoteAddr.length).toBeGreaterThan(0)
      expect(typeof out.id).toBe('string')
      expect(out.id).not.toBe('')
      await out.send(frameOf(1, 10))
      const [got] = await readN(inb, 1)
      expect(seqOf(got)).toBe(1)
    })

    it(`delivers ${FRAMES} frames in order, both ways at once`, async () => {
      const out = await ctx.dial()
      const inb = await ctx.nextInbound()
      const sizes = (i: number): number => 4 + ((i * 7919) % 3000)
      const sendAll = async (conn: Connection, offset: number): Promise<void> => {
        for (let i = 0; i < FRAMES; i++) await conn.send(frameOf(offset + i, sizes(i)))
      }
      const [, , fromA, fromB] = await Promise.all([sendAll(out, 0), sendAll(inb, 1_000_000), readN(inb, FRAMES), readN(out, FRAMES)])
      fromA.forEach((f, i) => {
        expect(f.byteLength).toBe(sizes(i))
        expect(seqOf(f)).toBe(i)
        expect(bytesEqual(f, frameOf(i, sizes(i))), `frame ${i} differs`).toBe(true)
      })
      fromB.forEach((f, i) => {
        expect(seqOf(f)).toBe(1_000_000 + i)
        expect(bytesEqual(f, frameOf(1_000_000 + i, sizes(i))), `frame ${i} differs`).toBe(true)
      })
    })

    it('keeps the order of concurrent (not awaited) sends', async () => {
      const out = await ctx.dial()
      const inb = await ctx.nextInbound()
      await Promise.all(Array.from({ length: 200 }, (_, i) => out.send(frameOf(i, 100))))
      const got = await readN(inb, 200)
      expect(got.map(seqOf)).toEqual(Array.from({ length: 200 }, (_, i) => i))
    })

    it('delivers an empty frame as an empty frame', async () => {
      const out = await ctx.dial()
      const inb = await ctx.nextInbound()
      await out.send(new Uint8Array(0))
      await out.send(frameOf(7, 8))
      await out.send(new Uint8Array(0))
      const got = await readN(inb, 3)
      expect(got.map((f) => f.byteLength)).toEqual([0, 8, 0])
      expect(seqOf(got[1])).toBe(7)
    })

    it('copies frames on send (mutating the buffer afterwards changes nothing)', async () => {
      const out = await ctx.dial()
      const inb = await ctx.nextInbound()
      const frame = frameOf(42, 64)
      const sent = out.send(frame)
      frame.fill(0xee)
      await sent
      frame.fill(0xff)
      const [got] = await readN(inb, 1)
      expect(got).toEqual(frameOf(42, 64))
    })

    it('delivers a frame of exactly maxFrameSize and rejects a larger one', async (t) => {
      const max = ctx.pair.maxFrameSize
      if (max === undefined) { t.skip(); return }
      const out = await ctx.dial()
      const inb = await ctx.nextInbound()
      const big = frameOf(9, max)
      for (let i = 4; i < max; i++) big[i] = (i * 31 + 7) & 0xff
      const reading = readN(inb, 2)
      await out.send(big)
      await expectError(out.send(new Uint8Array(max + 1)), LimitExceededError)
      // The rejection is local: the connection stays usable.
      expect(out.status).toBe('open')
      await out.send(frameOf(10, 16))
      const got = await reading
      expect(got[0]?.byteLength).toBe(max)
      expect(bytesEqual(got[0], big), 'the max-size frame differs').toBe(true)
      expect(seqOf(got[1])).toBe(10)
    })

    it('applies backpressure: send() blocks while nobody reads, then everything arrives', async () => {
      const out = await ctx.dial()
      const inb = await ctx.nextInbound()
      const size = 64 * 1024
      let accepted = 0
      let blocked: Promise<void> | undefined
      let i = 0
      while (accepted < CAP) {
        const p = out.send(frameOf(i, size))
        if (await stalled(p, STALL)) { blocked = p; i++; break }
        accepted += size
        i++
      }
      expect(blocked, `send() never blocked after ${accepted} bytes with no reader`).toBeDefined()
      expect(accepted).toBeLessThan(CAP)
      const total = i
      const got = await readN(inb, total)
      await blocked
      expect(got.map(seqOf)).toEqual(Array.from({ length: total }, (_, k) => k))
    })

    it('close() flushes pending frames and ends the iterator on both sides', async () => {
      const out = await ctx.dial()
      const inb = await ctx.nextInbound()
      for (let i = 0; i < 100; i++) await out.send(frameOf(i, 1000))
      const outFrames = collect(out)
      await out.close()
      const got = await withTimeout(collect(inb), 'the inbound iterator did not end after the remote close()')
      expect(got.map(seqOf)).toEqual(Array.from({ length: 100 }, (_, k) => k))
      expect(await withTimeout(outFrames, 'the iterator of the closing side did not end')).toEqual([])
      await withTimeout(out.closed, 'closed did not resolve on the closing side')
      await withTimeout(inb.closed, 'closed did not resolve on the remote side')
      expect(out.status).toBe('closed')
      expect(inb.status).toBe('closed')
    })

    it('close() from the listening side ends the dialer too', async () => {
      const out = await ctx.dial()
      const inb = await ctx.nextInbound()
      await inb.send(frameOf(5, 50))
      await inb.close()
      const got = await withTimeout(collect(out), 'the dialer iterator did not end')
      expect(got.map(seqOf)).toEqual([5])
      await withTimeout(out.closed, 'closed did not resolve on the dialer')
      expect(out.status).toBe('closed')
    })

    it('send() after close rejects with ConnectionClosedError, on both sides', async () => {
      const out = await ctx.dial()
      const inb = await ctx.nextInbound()
      const draining = collect(inb)
      await out.close()
      await expectError(out.send(frameOf(1, 4)), ConnectionClosedError)
      await withTimeout(inb.closed, 'closed did not resolve on the remote side')
      await expectError(inb.send(frameOf(2, 4)), ConnectionClosedError)
      await draining
    })

    it('abort() ends the local iterator with the error, resets the remote and rejects later sends', async () => {
      const out = await ctx.dial()
      const inb = await ctx.nextInbound()
      await out.send(frameOf(1, 10))
      await readN(inb, 1)
      const localRead = collect(out).then(() => undefined, (err: unknown) => err)
      const remoteRead = collect(inb).then(() => 'ended', () => 'threw')
      const boom = new Error('boom')
      out.abort(boom)
      const thrown = await withTimeout(localRead, 'the local iterator did not settle after abort')
      expect(thrown === boom || (thrown instanceof Error && thrown.cause === boom), `expected the iterator to throw the abort error (or wrap it as cause), got ${String(thrown)}`).toBe(true)
      expect(['ended', 'threw']).toContain(await withTimeout(remoteRead, 'the remote iterator did not settle after abort'))
      await withTimeout(out.closed, 'closed did not resolve on the aborting side')
      await withTimeout(inb.closed, 'closed did not resolve on the remote side')
      expect(out.status).toBe('closed')
      expect(inb.status).toBe('closed')
      await expectError(out.send(frameOf(2, 4)), ConnectionClosedError)
      await expectError(inb.send(frameOf(3, 4)), ConnectionClosedError)
    })

    it('dial with a wrong expected remotePeer fails with PeerMismatchError and leaves nothing open', async () => {
      const wrong = `${ctx.pair.bPeer}-not`
      await expectError(ctx.dial({ remotePeer: wrong }), PeerMismatchError)
      // A transport that authenticates after accepting may have handed b a connection: it must close.
      for (const c of ctx.inbound) await withTimeout(c.closed, 'an inbound connection of the refused dial stayed open')
      const before = ctx.inbound.length
      const out = await ctx.dial()
      const inb = await ctx.nextInbound(before)
      await out.send(frameOf(3, 8))
      expect((await readN(inb, 1)).map(seqOf)).toEqual([3])
    })

    it('a dial aborted through its signal rejects with AbortError', async () => {
      const pre = new AbortController()
      pre.abort()
      await expectError(ctx.dial({ signal: pre.signal }), AbortError)
      const during = new AbortController()
      const dialing = ctx.dial({ signal: during.signal })
      during.abort()
      await expectError(dialing, AbortError)
      for (const c of ctx.inbound) await withTimeout(c.closed, 'an inbound connection of the aborted dial stayed open')
    })

    it('dialing an address nobody listens on fails with UnreachableError', async (t) => {
      const addr = ctx.pair.unreachableAddr
      if (addr === undefined) { t.skip(); return }
      await expectError(ctx.pair.a.dial(addr, { remotePeer: ctx.pair.bPeer }), UnreachableError)
    })

    it('listener.close() stops accepting new connections', async () => {
      const addr = ctx.listener.addrs()[0] as string
      await ctx.listener.close()
      const err = await ctx.pair.a.dial(addr, { remotePeer: ctx.pair.bPeer }).then(() => undefined, (e: unknown) => e)
      expect(err, 'dial succeeded after listener.close()').toBeInstanceOf(Error)
      expect(isErrorOf(err, UnreachableError), `expected UnreachableError, got ${String((err as Error)?.name)}`).toBe(true)
    })

    it('transport.close() closes every connection on both sides and every listener', async () => {
      const outs = await Promise.all([ctx.dial(), ctx.dial(), ctx.dial()])
      const inbs = await Promise.all([0, 1, 2].map((n) => ctx.nextInbound(n)))
      const addr = ctx.listener.addrs()[0] as string
      const reads = inbs.map((c) => collect(c).then(() => 'ended', () => 'threw'))
      await ctx.pair.a.close()
      for (const c of outs) await withTimeout(c.closed, 'a dialer connection stayed open after a.close()')
      for (const c of inbs) await withTimeout(c.closed, 'a remote connection stayed open after a.close()')
      for (const r of reads) expect(['ended', 'threw']).toContain(await withTimeout(r, 'a remote iterator did not end'))
      for (const c of outs) expect(c.status).toBe('closed')
      await ctx.pair.b.close()
      const err = await ctx.pair.b.dial(addr, { remotePeer: ctx.pair.bPeer }).then(() => undefined, (e: unknown) => e)
      expect(err).toBeInstanceOf(Error)
    })

    it('a peer that never reads: send() is bounded in bytes and the connection is eventually aborted (SlowPeerError)', async (t) => {
      const slow = await setup(SLOW)
      try {
        const limits = slow.outboundLimits
        if (limits === undefined) { t.skip(); return }
        const sleep = slow.sleep ?? ((ms: number) => new Promise<void>((resolve) => { setTimeout(resolve, ms) })) // clock-exempt: real transports run in wall time; virtual ones pass `sleep`
        const inbound: Connection[] = []
        const listener = await slow.b.listen(slow.listenAddr, (c) => { inbound.push(c) })
        // outboundBufferedBytes is an optional member of the Connection contract
        const out: Connection & { readonly outboundBufferedBytes?: number } = await slow.a.dial(listener.addrs()[0] as string, { remotePeer: slow.bPeer })
        await waitFor(() => inbound.length > 0, 'the inbound connection')
        const inb = inbound[0] as Connection
        const outRead = collect(out).then(() => undefined, (err: unknown) => err)
        let aborted: unknown = 'pending'
        void outRead.then((err) => { aborted = err })
        // a keeps sending without waiting for its sends; b never reads
        const size = Math.min(16 * 1024, slow.maxFrameSize ?? 16 * 1024)
        const waiting: Array<Promise<unknown>> = []
        let seq = 0
        let maxHeld = 0
        /** Offers frames until one is refused; returns how many were taken and the refusal. */
        const fill = async (): Promise<{ taken: number; refusal: unknown }> => {
          for (let taken = 0; taken * size < CAP; taken++) {
            const p = out.send(frameOf(seq++, size))
            const r: { state: 'pending' | 'ok' | 'rejected'; err?: unknown } = { state: 'pending' }
            p.then(() => { r.state = 'ok' }, (err: unknown) => { r.state = 'rejected'; r.err = err })
            for (let i = 0; i < 5; i++) await Promise.resolve() // settles now, or it waits for its turn
            if (typeof out.outboundBufferedBytes === 'number') maxHeld = Math.max(maxHeld, out.outboundBufferedBytes)
            if (r.state === 'rejected') return { taken, refusal: r.err ?? new Error('rejected') }
            if (r.state === 'pending') waiting.push(p.then(() => undefined, (err: unknown) => err))
          }
          return { taken: Infinity, refusal: undefined }
        }
        const first = await fill()
        expect(isErrorOf(first.refusal, SendBufferFullError), `expected send() to reject at once with SendBufferFullError at the bound, got ${String((first.refusal as Error)?.name ?? 'nothing')} after ${first.taken} frames`).toBe(true)
        expect(out.status).toBe('open')
        if (typeof out.outboundBufferedBytes === 'number') {
          expect(out.outboundBufferedBytes).toBeLessThanOrEqual(limits.maxOutboundBufferBytes)
        }
        // a keeps offering; once whatever sits between a and b (kernel buffers, b's inbound buffer) is
        // full nothing drains any more, and the connection is aborted with SlowPeerError
        for (let i = 0; i < 2_000 && aborted === 'pending'; i++) {
          const r = await fill()
          if (aborted !== 'pending') break
          expect(isErrorOf(r.refusal, SendBufferFullError) || isErrorOf(r.refusal, ConnectionClosedError), `expected SendBufferFullError while the peer does not read, got ${String((r.refusal as Error)?.name)}`).toBe(true)
          await sleep(r.taken > 0 ? 0 : limits.sendStallTimeoutMs / 4) // progress: offer again soon
        }
        expect(isErrorOf(aborted, SlowPeerError), `expected the reader to throw SlowPeerError, got ${String((aborted as Error)?.name ?? aborted)}`).toBe(true)
        if (typeof out.outboundBufferedBytes === 'number') expect(maxHeld).toBeLessThanOrEqual(limits.maxOutboundBufferBytes)
        // sends that had to wait either got through before the abort or reject with ConnectionClosedError
        const outcomes = await Promise.all(waiting)
        for (const err of outcomes) {
          expect(err === undefined || isErrorOf(err, ConnectionClosedError), `expected a waiting send to complete or reject with ConnectionClosedError, got ${String((err as Error)?.name)}`).toBe(true)
        }
        expect(outcomes.some((err) => err !== undefined), 'expected the sends still waiting at the abort to reject').toBe(true)
        await withTimeout(out.closed, 'closed did not resolve after the slow-peer abort')
        expect(out.status).toBe('closed')
        await expectError(out.send(frameOf(0, 4)), ConnectionClosedError)
        // the remote, once it reads again, finds the connection gone
        const remote = collect(inb).then(() => 'ended', () => 'threw')
        let remoteEnd: string | undefined
        void remote.then((r) => { remoteEnd = r })
        for (let i = 0; i < 100 && remoteEnd === undefined; i++) await sleep(limits.sendStallTimeoutMs / 4)
        expect(['ended', 'threw']).toContain(remoteEnd)
      } finally {
        await slow.teardown()
      }
    })

    it(`handles ${CONNS} concurrent connections`, async () => {
      const outs = await Promise.all(Array.from({ length: CONNS }, () => ctx.dial()))
      const inbs = await Promise.all(Array.from({ length: CONNS }, (_, n) => ctx.nextInbound(n)))
      expect(new Set(outs.map((c) => c.id)).size).toBe(CONNS)
      expect(new Set(inbs.map((c) => c.id)).size).toBe(CONNS)
      // Each inbound echoes one frame; each outbound checks it gets its own frame back.
      const echoes = inbs.map(async (c) => {
        const [f] = await readN(c, 1)
        if (f !== undefined) await c.send(f)
      })
      await Promise.all(outs.map((c, i) => c.send(frameOf(i, 32))))
      const back = await Promise.all(outs.map(async (c) => (await readN(c, 1))[0]))
      await Promise.all(echoes)
      expect(back.map(seqOf)).toEqual(Array.from({ length: CONNS }, (_, i) => i))
      await Promise.all(outs.map((c) => c.close()))
      await Promise.all(inbs.map((c) => withTimeout(c.closed, 'an inbound connection stayed open')))
    })
  })
}


