/**
 * Issue 8, point 1, on the memory transport (which must behave like TCP so the simulator models it):
 * a peer that stops reading gets a bounded outbound queue (send() rejects at once with
 * SendBufferFullError) and is aborted with SlowPeerError once it frees no room for
 * sendStallTimeoutMs of network time; a slow but steady reader is kept. Virtual time: exact and
 * deterministic, nothing depends on the machine's speed.
 */
import { ConnectionClosedError, type Connection } from '@kos-mesh/interface'
import { describe, expect, it } from 'vitest'
import { createMemoryNetwork, memoryTransport, type MemoryNetwork } from '../src/index.js'

type Conn = Connection & { outboundBufferedBytes: number; closeError?: Error }

const KIB = 1024
const LIMITS = { maxBufferedBytes: 64 * KIB, maxFrameSize: 16 * KIB, maxOutboundBufferBytes: 64 * KIB, sendStallTimeoutMs: 1_000 }

async function connect(network: MemoryNetwork, init: Partial<typeof LIMITS> = LIMITS): Promise<{ out: Conn; inb: Conn }> {
  const a = memoryTransport({ peerId: 'did:key:a', network, ...init })
  const b = memoryTransport({ peerId: 'did:key:b', network, ...init })
  let inb: Connection | undefined
  await b.listen('memory://b', (c) => { inb = c })
  const dialing = a.dial('memory://b')
  await network.runFor(2 * network.getLink('did:key:a', 'did:key:b').latencyMs)
  const out = await dialing
  if (inb === undefined) throw new Error('expected an inbound connection')
  return { out: out as Conn, inb: inb as Conn }
}

/** Settles `p` into a value after a few microtask turns, without letting network time pass. */
async function settledNow(p: Promise<unknown>): Promise<'pending' | 'ok' | Error> {
  let r: 'pending' | 'ok' | Error = 'pending'
  p.then(() => { r = 'ok' }, (e: Error) => { r = e })
  for (let i = 0; i < 5; i++) await Promise.resolve()
  return r
}

describe('memory transport: a peer that stops reading (issue 8.1)', () => {
  it('bounds the outbound bytes (SendBufferFullError), then aborts with SlowPeerError after sendStallTimeoutMs', async () => {
    const network = createMemoryNetwork({ time: 'virtual', defaults: { latencyMs: 5 } })
    const { out, inb } = await connect(network)
    const reading = out[Symbol.asyncIterator]().next().then(() => undefined, (e: Error) => e)
    const remote = inb[Symbol.asyncIterator]() // never read from here on
    const frame = new Uint8Array(16 * KIB)
    const waiting: Array<Promise<unknown>> = []
    let full: Error | undefined
    let maxHeld = 0
    for (let i = 0; i < 1_000 && full === undefined; i++) {
      const s = out.send(frame)
      const r = await settledNow(s)
      if (r instanceof Error) full = r
      else if (r === 'pending') waiting.push(s.then(() => undefined, (e: unknown) => e))
      maxHeld = Math.max(maxHeld, out.outboundBufferedBytes)
    }
    // 64 KiB fill the remote buffer (in flight + unread), 64 KiB wait as copies, the next one is refused
    expect(full?.name).toBe('SendBufferFullError')
    expect((full as Error & { code?: string }).code).toBe('ERR_SEND_BUFFER_FULL')
    expect(waiting).toHaveLength(4)
    expect(maxHeld).toBe(64 * KIB)
    expect(out.outboundBufferedBytes).toBeLessThanOrEqual(LIMITS.maxOutboundBufferBytes)
    expect(out.status).toBe('open')
    // the stall clock started when the first send had to wait (now): nothing happens before the deadline
    await network.runFor(LIMITS.sendStallTimeoutMs - 1)
    expect(out.status).toBe('open')
    await network.runFor(1)
    // aborted: the local reader sees SlowPeerError, waiting sends a ConnectionClosedError caused by it
    const err = await reading
    expect(err?.name).toBe('SlowPeerError')
    expect((err as Error & { code?: string }).code).toBe('ERR_SLOW_PEER')
    for (const e of await Promise.all(waiting)) {
      expect(e).toBeInstanceOf(ConnectionClosedError)
      expect(((e as Error).cause as Error)?.name).toBe('SlowPeerError')
    }
    expect(out.status).toBe('closed')
    expect(out.closeError?.name).toBe('SlowPeerError')
    expect(out.outboundBufferedBytes).toBe(0)
    expect((await out.send(frame).catch((e: Error) => e))?.name).toBe('ConnectionClosedError')
    // the remote is reset one latency later
    await network.runFor(5)
    const remoteErr = await remote.next().then(() => undefined, (e: Error) => e)
    expect(remoteErr?.name).toBe('ConnectionResetError')
    await inb.closed
  })

  it('a slow but steady reader is not dropped; the deadline counts from the last room freed', async () => {
    const network = createMemoryNetwork({ time: 'virtual', defaults: { latencyMs: 5 } })
    const { out, inb } = await connect(network)
    const it = inb[Symbol.asyncIterator]()
    const frame = new Uint8Array(16 * KIB)
    let sent = 0
    let stopped: Error | undefined
    // the sender honours backpressure and never stops
    void (async () => {
      for (;;) {
        try { await out.send(frame); sent++ } catch (err) { stopped = err as Error; return }
      }
    })()
    // the reader takes one frame every 900 ms (just inside the 1,000 ms deadline) for 20 s
    let read = 0
    for (let t = 0; t < 20_000; t += 900) {
      await network.runFor(900)
      await it.next()
      read++
    }
    expect(out.status).toBe('open')
    expect(stopped).toBeUndefined()
    expect(read).toBe(23)
    expect(sent).toBeGreaterThan(read)
    // then it stops reading: aborted exactly one deadline after it last freed room
    await network.runFor(LIMITS.sendStallTimeoutMs - 1)
    expect(out.status).toBe('open')
    await network.runFor(1)
    expect(out.status).toBe('closed')
    expect(out.closeError?.name).toBe('SlowPeerError')
    await network.runFor(10)
    expect(stopped).toBeInstanceOf(ConnectionClosedError)
  })

  it('a waiting send honours its signal and gives its bytes back; frames in flight count against the remote, not here', async () => {
    const network = createMemoryNetwork({ time: 'virtual' })
    const { out } = await connect(network)
    for (let i = 0; i < 4; i++) await out.send(new Uint8Array(16 * KIB)) // the remote buffer is full
    expect(out.outboundBufferedBytes).toBe(0)
    const ac = new AbortController()
    const a = out.send(new Uint8Array(16 * KIB), { signal: ac.signal })
    const b = out.send(new Uint8Array(8 * KIB))
    expect(out.outboundBufferedBytes).toBe(24 * KIB)
    ac.abort()
    expect((await a.catch((e: Error) => e))?.name).toBe('AbortError')
    expect(out.outboundBufferedBytes).toBe(8 * KIB)
    // with nothing waiting any more the stall deadline is disarmed; b still waits for room
    expect(await settledNow(b)).toBe('pending')
    expect(out.status).toBe('open')
  })

  it('a send into an empty queue always fits; the limits are validated', async () => {
    const network = createMemoryNetwork({ time: 'virtual' })
    // the bound equals one frame: a second waiting frame is refused, the first always accepted
    const { out } = await connect(network, { ...LIMITS, maxOutboundBufferBytes: 16 * KIB })
    for (let i = 0; i < 4; i++) await out.send(new Uint8Array(16 * KIB))
    const first = out.send(new Uint8Array(16 * KIB))
    expect(await settledNow(first)).toBe('pending')
    expect(((await settledNow(out.send(new Uint8Array(1)))) as Error).name).toBe('SendBufferFullError')
    for (const bad of [{ maxOutboundBufferBytes: 10, maxFrameSize: 11, maxBufferedBytes: 100 }, { maxOutboundBufferBytes: 0 }, { sendStallTimeoutMs: 0 }, { sendStallTimeoutMs: Number.NaN }]) {
      expect(() => memoryTransport({ peerId: 'did:key:x', network, ...bad })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    }
    expect(memoryTransport({ peerId: 'did:key:y', network, maxBufferedBytes: 16 * 1024 * 1024, maxFrameSize: 8 * 1024 * 1024 }).maxOutboundBufferBytes).toBe(8 * 1024 * 1024)
    expect(() => memoryTransport({ peerId: 'did:key:z', network, sendStallTimeoutMs: Infinity })).not.toThrow()
  })
})
