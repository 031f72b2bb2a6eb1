/**
 * Unit tests of the bulk modules that have no I/O (the receiver's pull window, the pooled leaf
 * hash), and the receiver's two leaf-hashing modes end to end on the memory transport.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { KLPMessageType, systemClock } from '@kos-mesh/interface'
import { bulkTransfer, fileSource, leafHash, memorySink, memorySource, type BulkTransfer } from '../src/bulk/index.js'
import { pooledLeafHash } from '../src/bulk/hasher.js'
import { bulkSettings } from '../src/bulk/settings.js'
import { PullWindow } from '../src/bulk/window.js'
import { MAX_PULL_RANGES } from '../src/bulk/wire.js'
import { createTestnet, type Testnet } from '../src/testnet/index.js'
import type { Router } from '../src/types.js'

const TYPE = KLPMessageType.VECTOR_SYNC
const KiB = 1024

describe('bulk pull window (sans-I/O)', () => {
  it('reserves up to its size, pulls in batches of half a window, merges adjacent indices into ranges', () => {
    const w = new PullWindow(100, 8)
    const reserved: number[] = []
    while (w.hasRoom) reserved.push(w.reserve(10, false).index)
    expect(reserved).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    expect(w.reserved).toBe(80)
    // nothing requested yet: the first pull goes out whatever its size
    expect(w.takePulls(false)).toEqual([[0, 8]])
    expect(w.requested).toBe(8)
    expect(w.takePulls(false)).toBeUndefined()
    // out-of-order arrival; hashing only moves in index order
    expect(w.arrive(1, new Uint8Array(10))).toBe('ok')
    expect(w.nextToHash()).toBeUndefined()
    expect(w.arrive(0, new Uint8Array(10))).toBe('ok')
    expect(w.nextToHash()?.index).toBe(0)
    expect(w.nextToHash()?.index).toBe(1)
    expect(w.nextToHash()).toBeUndefined()
    // a second frame for the same index, one never asked for, one of the wrong length
    expect(w.arrive(1, new Uint8Array(10))).toBe('unrequested')
    expect(w.arrive(50, new Uint8Array(10))).toBe('unrequested')
    expect(w.arrive(2, new Uint8Array(9))).toBe('wrong-length')
    // release is in index order and only of ready slots
    w.slot(1)!.state = 'ready'
    expect(w.release(() => {})).toBe(0)
    w.slot(0)!.state = 'ready'
    const released: number[] = []
    expect(w.release((i) => released.push(i))).toBe(2)
    expect(released).toEqual([0, 1])
    expect(w.base).toBe(2)
    expect(w.reserved).toBe(60)
    // two free slots: fewer than half a window wanted while chunks are outstanding: held back
    w.reserve(10, false)
    w.reserve(10, false)
    expect(w.hasRoom).toBe(false)
    expect(w.takePulls(false)).toBeUndefined()
    // unless no more can be reserved before a leaf page arrives
    expect(w.takePulls(true)).toEqual([[8, 2]])
  })

  it('a new epoch asks again for what was requested and did not arrive; read-back slots are not pulled', () => {
    const w = new PullWindow(10, 4)
    w.reserve(1, false)
    const local = w.reserve(1, true)
    w.reserve(1, false)
    expect(w.takePulls(false)).toEqual([[0, 1, 2, 1]])
    expect(w.arrive(0, new Uint8Array(1))).toBe('ok')
    w.restart()
    expect(w.requested).toBe(0)
    expect(w.takePulls(false)).toEqual([[2, 1]])
    // a read-back that failed its check is fetched instead
    w.refetch(local.index, local.slot)
    expect(w.takePulls(true)).toEqual([[1, 1]])
  })

  it('splits a pull into messages of at most MAX_PULL_RANGES ranges', () => {
    const w = new PullWindow(1000, 1000)
    for (let i = 0; i < 1000; i++) w.reserve(1, i % 2 === 1) // every other index is read back: no adjacent ranges
    const pulls = w.takePulls(false)!
    expect(pulls.length).toBe(Math.ceil(500 / MAX_PULL_RANGES))
    expect(pulls.every((r) => r.length <= 2 * MAX_PULL_RANGES)).toBe(true)
    expect(pulls.flat().filter((_, k) => k % 2 === 1).reduce((a, b) => a + b, 0)).toBe(500)
  })
})

describe('pooled leaf hash', () => {
  it('equals leafHash for a chunk inside a frame (the byte before it becomes the prefix) and at offset 0', async () => {
    const frame = new Uint8Array(randomBytes(12 + 100_000))
    const chunk = frame.subarray(12)
    const expected = leafHash(chunk.slice())
    expect(Buffer.from(await pooledLeafHash(chunk)).equals(Buffer.from(expected))).toBe(true)
    expect(Buffer.from(await pooledLeafHash(chunk.slice())).equals(Buffer.from(expected))).toBe(true)
    // a changed byte changes the hash
    chunk[500]! ^= 1
    expect(Buffer.from(await pooledLeafHash(chunk)).equals(Buffer.from(expected))).toBe(false)
  })
})

describe('leaf hashing modes end to end', () => {
  const nets: Testnet[] = []
  afterEach(async () => {
    await Promise.allSettled(nets.map((n) => n.stop()))
    nets.length = 0
  })

  async function pair(leafHashing: 'pool' | 'inline', tamper: number | undefined): Promise<{ a: BulkTransfer; b: BulkTransfer; aAuth: string }> {
    const net = await createTestnet(2)
    nets.push(net)
    const [na, nb] = net.nodes as [Testnet['nodes'][number], Testnet['nodes'][number]]
    const clock = net.network.clock
    const r: Router = na.router
    const router: Router =
      tamper === undefined
        ? r
        : new Proxy(r, {
            get(target, prop) {
              if (prop === 'sendData') {
                return (peer: string, ch: number, data: Uint8Array, o?: { signal?: AbortSignal }) => {
                  if (new DataView(data.buffer, data.byteOffset).getUint32(8) === tamper) {
                    data = data.slice()
                    data[data.byteLength - 1]! ^= 0x01
                  }
                  return target.sendData(peer, ch, data, o)
                }
              }
              const v = Reflect.get(target, prop) as unknown
              return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
            },
          })
    const a = bulkTransfer({ type: TYPE })({ router, clock })
    const b = bulkTransfer({ type: TYPE, leafHashing })({ router: nb.router, clock })
    a.start()
    b.start()
    return { a, b, aAuth: na.authority }
  }

  for (const mode of ['pool', 'inline'] as const) {
    it(`${mode}: moves a payload intact, and a tampered last chunk fails with BulkChunkHashError, nothing kept`, async () => {
      const payload = new Uint8Array(randomBytes(1024 * KiB + 3))
      const ok = await pair(mode, undefined)
      const offer = await ok.a.offer(memorySource(payload), { chunkSize: 64 * KiB })
      const sink = memorySink()
      const got = await ok.b.receive(ok.aAuth, offer.id, { sink, window: 4 })
      expect(got.chunksFetched).toBe(17)
      expect(Buffer.from(sink.bytes!).equals(Buffer.from(payload))).toBe(true)

      const bad = await pair(mode, 16)
      const offer2 = await bad.a.offer(memorySource(payload), { chunkSize: 64 * KiB })
      const sink2 = memorySink()
      await expect(bad.b.receive(bad.aAuth, offer2.id, { sink: sink2, window: 4 })).rejects.toMatchObject({ name: 'BulkChunkHashError', index: 16 })
      expect(sink2.state).toBe('aborted')
      expect(sink2.bytes).toBeUndefined()
      expect(bad.b.stats().chunksRejected).toBe(1)
      // inline: every chunk before it was checked first; pool: hashes come back in any order
      if (mode === 'inline') expect(bad.b.stats().chunksReceived).toBe(16)
      else expect(bad.b.stats().chunksReceived).toBeLessThanOrEqual(16)
    })
  }

  it('a file source read straight into the frame; a file that shrinks after the offer fails the transfer on both sides', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-bulk-units-'))
    try {
      const path = join(dir, 'src.bin')
      const payload = new Uint8Array(randomBytes(300 * KiB))
      await writeFile(path, payload)
      const ok = await pair('pool', undefined)
      const src = await fileSource(path)
      const offer = await ok.a.offer(src, { chunkSize: 64 * KiB })
      const sink = memorySink()
      await ok.b.receive(ok.aAuth, offer.id, { sink, window: 2 })
      expect(Buffer.from(sink.bytes!).equals(Buffer.from(payload))).toBe(true)

      const src2 = await fileSource(path)
      const offer2 = await ok.a.offer(src2, { chunkSize: 64 * KiB })
      await truncate(path, 100 * KiB)
      const sink2 = memorySink()
      await expect(ok.b.receive(ok.aAuth, offer2.id, { sink: sink2, window: 2 })).rejects.toMatchObject({ name: 'BulkRejectedError', reason: 'bulk_source_error' })
      await expect(offer2.done).rejects.toMatchObject({ name: 'BulkIoError' })
      expect(sink2.state).toBe('aborted')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('refuses an unknown leafHashing; the default is the pool on the real clock and inline under another clock', async () => {
    const net = await createTestnet(1)
    nets.push(net)
    const router = net.nodes[0]!.router
    expect(() => bulkTransfer({ type: TYPE, leafHashing: 'gpu' as never })({ router })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(bulkSettings({ type: TYPE }, { router }).receiver.leafHashing).toBe('pool')
    expect(bulkSettings({ type: TYPE }, { router, clock: systemClock }).receiver.leafHashing).toBe('pool')
    expect(bulkSettings({ type: TYPE }, { router, clock: net.network.clock }).receiver.leafHashing).toBe('inline')
    expect(bulkSettings({ type: TYPE, leafHashing: 'pool' }, { router, clock: net.network.clock }).receiver.leafHashing).toBe('pool')
  })
})
