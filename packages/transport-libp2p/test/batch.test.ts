// the package entry first: it installs the Promise.withResolvers polyfill the libp2p code below needs
import { libp2pTransport, type Libp2pConnection, type Libp2pTransportApi, type Libp2pTransportInit } from '../src/index.js'
import { FrameBatch, MAX_BATCH_BYTES } from '../src/batch.js'
import { generateIdentity } from '@kos-mesh/did-security'
import type { Connection } from '@kos-mesh/interface'
import { afterEach, describe, expect, it } from 'vitest'

const LISTEN = 'libp2p:///ip4/127.0.0.1/tcp/0'

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => {})
})

/** Two transports, a dialled connection and the accepted one. */
async function pair(init: Libp2pTransportInit = {}): Promise<{ out: Libp2pConnection; inb: Connection }> {
  const ib = generateIdentity()
  const a: Libp2pTransportApi = libp2pTransport(init)({ identity: generateIdentity() })
  const b: Libp2pTransportApi = libp2pTransport(init)({ identity: ib })
  cleanup.push(() => a.close(), () => b.close())
  let accept!: (c: Connection) => void
  const accepted = new Promise<Connection>((r) => { accept = r })
  const l = await b.listen(LISTEN, (c) => { accept(c) })
  const out = await a.dial(l.addrs()[0] as string, { remotePeer: ib.did }) as Libp2pConnection
  return { out, inb: await accepted }
}

/** Records the size of every write the KLP connection hands to its libp2p stream. */
function spyWrites(conn: Libp2pConnection): number[] {
  const sizes: number[] = []
  const s = conn.libp2pStream
  const send = s.send.bind(s)
  s.send = (data) => { sizes.push(data.byteLength); return send(data) }
  return sizes
}

/** Frame `seq` of `size` bytes (>= 4): the sequence number, then a pattern derived from it. */
function frameOf(seq: number, size: number): Uint8Array {
  const f = new Uint8Array(size)
  new DataView(f.buffer).setUint32(0, seq)
  for (let i = 4; i < size; i++) f[i] = (seq * 31 + i) & 0xff
  return f
}

/** Checks that `f` is intact and returns its sequence number. */
function seqOf(f: Uint8Array): number {
  const seq = new DataView(f.buffer, f.byteOffset, f.byteLength).getUint32(0)
  for (let i = 4; i < f.byteLength; i++) {
    if (f[i] !== ((seq * 31 + i) & 0xff)) throw new Error(`frame ${seq} corrupted at byte ${i}`)
  }
  return seq
}

async function readAll(conn: Connection): Promise<Uint8Array[]> {
  const got: Uint8Array[] = []
  for await (const f of conn) got.push(f)
  return got
}

describe('FrameBatch', () => {
  it('a full batch plus its Yamux header is exactly one Noise message', () => {
    expect(MAX_BATCH_BYTES + 12).toBe(65_535 - 16)
  })

  it('returns a lone frame as is and joins several in order', () => {
    const b = new FrameBatch()
    expect(b.take()).toBeUndefined()
    const one = Uint8Array.of(1, 2, 3)
    b.push(one)
    expect(b.take()).toBe(one) // no copy for a single frame
    expect(b.bytes).toBe(0)
    b.push(Uint8Array.of(1, 2))
    b.push(Uint8Array.of(3))
    b.push(Uint8Array.of(4, 5, 6))
    expect(b.bytes).toBe(6)
    expect(b.frames).toBe(3)
    expect(b.fits(MAX_BATCH_BYTES - 6)).toBe(true)
    expect(b.fits(MAX_BATCH_BYTES - 5)).toBe(false)
    expect(Array.from(b.take() as Uint8Array)).toEqual([1, 2, 3, 4, 5, 6])
    b.push(one)
    b.clear()
    expect(b.bytes).toBe(0)
    expect(b.take()).toBeUndefined()
  })
})

describe('outbound batching', () => {
  it('many small sends in one tick arrive intact and in order, in few stream writes of at most one batch', async () => {
    const { out, inb } = await pair()
    const writes = spyWrites(out)
    const received = readAll(inb)
    // 3000 frames of 4..1203 bytes, fired without awaiting (one tick), with frames larger than a
    // batch in between (they take the unbatched path and must not overtake the batch before them)
    const sends: Array<Promise<void>> = []
    const sizes: number[] = []
    let bytes = 0
    for (let seq = 0; seq < 3000; seq++) {
      const size = seq % 1000 === 500 ? 100 * 1024 : 4 + ((seq * 7919) % 1200)
      sizes.push(size)
      bytes += size
      sends.push(out.send(frameOf(seq, size)))
    }
    expect(bytes).toBeLessThan(4 * 1024 * 1024) // below the default outbound bound: nothing is refused
    await Promise.all(sends)
    await out.close()
    const got = await received
    expect(got.map(seqOf)).toEqual(sizes.map((_, i) => i))
    expect(got.map((f) => f.byteLength)).toEqual(sizes)
    // batched: far fewer stream writes than frames, and no write larger than a batch except the
    // frames that are larger than a batch on their own
    expect(writes.length).toBeLessThan(3000 / 10)
    for (const n of writes) expect(n <= MAX_BATCH_BYTES || n === 100 * 1024 + 8).toBe(true)
  })

  it('sequential awaited sends (one frame per microtask) are batched too and arrive in order', async () => {
    const { out, inb } = await pair()
    const writes = spyWrites(out)
    const received = readAll(inb)
    const n = 2000
    for (let seq = 0; seq < n; seq++) await out.send(frameOf(seq, 1024))
    await out.close()
    const got = await received
    expect(got.map(seqOf)).toEqual(Array.from({ length: n }, (_, i) => i))
    expect(writes.length).toBeLessThan(n / 10)
  })

  it('respects the outbound bound: the batch is handed over at the bound, never held past it, and refused frames never arrive', async () => {
    const max = 32 * 1024
    const { out, inb } = await pair({ maxFrameSize: 16 * 1024, maxOutboundBufferBytes: max })
    const accepted: number[] = []
    const outcomes: Array<Promise<void>> = []
    let refused = 0
    let acceptedBytes = 0
    let seq = 0
    // one tick of sends of 1000-byte frames, nobody reading yet: 600 KB, more than the stream's
    // initial Yamux send window (256 KiB, no window update can come within the tick) plus the bound
    const burst = 600
    for (let i = 0; i < burst; i++, seq++) {
      const s = seq
      outcomes.push(out.send(frameOf(s, 1000)).then(() => { accepted.push(s) }, (err: Error) => {
        expect(err.name).toBe('SendBufferFullError')
        refused++
      }))
      // the bound holds after every send (the batch counts)
      expect(out.outboundBufferedBytes).toBeLessThanOrEqual(max)
    }
    await Promise.all(outcomes)
    acceptedBytes = accepted.length * 1000
    // the batch did not make the bound tighter: bytes the muxer took in this tick no longer count,
    // so far more than the bound was accepted before the window ran out and frames were refused
    expect(acceptedBytes).toBeGreaterThan(4 * max)
    expect(refused).toBeGreaterThan(0)
    expect(accepted.length + refused).toBe(burst)
    // accepted in send order
    expect(accepted).toEqual([...accepted].sort((x, y) => x - y))
    // the connection goes on after refusals
    for (let i = 0; i < 50; i++, seq++) {
      await out.send(frameOf(seq, 1000))
      accepted.push(seq)
    }
    const received = readAll(inb)
    await out.close()
    const got = await received
    expect(got.map(seqOf)).toEqual(accepted)
  })

  it('close() right after sends (same tick) delivers the batch before the FIN', async () => {
    const { out, inb } = await pair()
    const received = readAll(inb)
    const sends = [out.send(frameOf(0, 10)), out.send(frameOf(1, 20)), out.send(frameOf(2, 30))]
    const closed = out.close()
    await Promise.all([...sends, closed])
    expect((await received).map(seqOf)).toEqual([0, 1, 2])
    await expect(out.send(frameOf(3, 10))).rejects.toMatchObject({ name: 'ConnectionClosedError' })
  })

  it('abort() right after sends drops the batch and ends the connection with the error', async () => {
    const { out, inb } = await pair()
    const got: Uint8Array[] = []
    const received = (async () => { for await (const f of inb) got.push(f) })().catch(() => {})
    await out.send(frameOf(0, 10)) // resolves at once: the frame waits in the batch
    const err = new Error('boom')
    out.abort(err)
    await out.closed
    expect(out.closeError).toBe(err)
    expect(out.outboundBufferedBytes).toBe(0)
    await expect(out.send(frameOf(1, 10))).rejects.toMatchObject({ name: 'ConnectionClosedError' })
    // the remote sees the reset (an error or the end, as for any abort), never the dropped frame
    await received
    await inb.closed
    expect(got).toEqual([])
  })
})
