import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { KLPMessageType, type KLPValue } from '@kos-mesh/interface'
import {
  HASH_BYTES,
  HashTree,
  bulkTransfer,
  chunkCount,
  fileSink,
  fileSource,
  leafHash,
  memorySink,
  memorySource,
  subtreeRoot,
  verifyPage,
  type BulkSink,
  type BulkSource,
  type BulkTransfer,
  type BulkTransferInit,
  type IncomingOffer,
  type MemorySink,
} from '../src/bulk/index.js'
import { createTestnet, type Testnet } from '../src/testnet/index.js'
import type { Router } from '../src/types.js'

const TYPE = KLPMessageType.AGENT_MIGRATION
const KiB = 1024
const MiB = 1024 * 1024

const sha = (b: Uint8Array): Uint8Array => createHash('sha256').update(b).digest()

// ------------------------------------------------------------------ hash tree (sans-I/O)

/** Independent top-down definition of the tree: node(k, j) covers leaves [j*2^k, (j+1)*2^k) ∩ [0, n). */
function referenceRoot(leaves: Uint8Array[]): Uint8Array {
  const n = leaves.length
  const node = (k: number, j: number): Uint8Array => {
    if (k === 0) return leaves[j]!
    const left = node(k - 1, 2 * j)
    if ((2 * j + 1) * 2 ** (k - 1) >= n) return left
    return createHash('sha256').update(Uint8Array.of(1)).update(left).update(node(k - 1, 2 * j + 1)).digest()
  }
  return node(Math.ceil(Math.log2(n)), 0)
}

describe('bulk hash tree', () => {
  it('matches an independent definition, and every page verifies on its own', () => {
    for (const n of [1, 2, 3, 5, 8, 13, 64, 100, 257]) {
      const chunks = Array.from({ length: n }, (_, i) => new Uint8Array([i & 255, i >> 8, 7]))
      const leaves = chunks.map(leafHash)
      const packed = new Uint8Array(n * HASH_BYTES)
      leaves.forEach((l, i) => packed.set(l, i * HASH_BYTES))
      expect(Buffer.from(subtreeRoot(packed))).toEqual(Buffer.from(referenceRoot(leaves)))
      for (const P of [1, 4, 16]) {
        const tree = new HashTree(packed, P)
        expect(Buffer.from(tree.root)).toEqual(Buffer.from(referenceRoot(leaves)))
        for (let p = 0; p < tree.pages; p++) {
          expect(verifyPage(tree.root, n, P, p, tree.pageLeavesOf(p), tree.proof(p))).toBe(true)
        }
      }
    }
  })

  it('rejects a tampered leaf, a tampered proof, a short page, a wrong page number or a wrong count', () => {
    const n = 50
    const packed = new Uint8Array(n * HASH_BYTES)
    for (let i = 0; i < n; i++) packed.set(leafHash(new Uint8Array([i])), i * HASH_BYTES)
    const tree = new HashTree(packed, 8)
    const leaves = tree.pageLeavesOf(2).slice()
    const proof = tree.proof(2)
    expect(verifyPage(tree.root, n, 8, 2, leaves, proof)).toBe(true)
    const badLeaf = leaves.slice()
    badLeaf[40]! ^= 1
    expect(verifyPage(tree.root, n, 8, 2, badLeaf, proof)).toBe(false)
    const badProof = proof.slice()
    badProof[0]! ^= 1
    expect(verifyPage(tree.root, n, 8, 2, leaves, badProof)).toBe(false)
    expect(verifyPage(tree.root, n, 8, 2, leaves.subarray(0, 7 * HASH_BYTES), proof)).toBe(false)
    expect(verifyPage(tree.root, n, 8, 3, leaves, proof)).toBe(false)
    // the count is bound through the last page (its size) and the shape of the proofs
    const last = tree.pages - 1
    expect(verifyPage(tree.root, n, 8, last, tree.pageLeavesOf(last), tree.proof(last))).toBe(true)
    expect(verifyPage(tree.root, n + 1, 8, last, tree.pageLeavesOf(last), tree.proof(last))).toBe(false)
    expect(verifyPage(tree.root, n + 64, 8, 2, leaves, proof)).toBe(false)
    expect(verifyPage(tree.root, n, 8, 2, leaves, new Uint8Array([...proof, ...proof.subarray(0, 32)]))).toBe(false)
    // leaves and nodes are domain-separated: a leaf is not a node of two others
    expect(Buffer.from(leafHash(new Uint8Array(64)))).not.toEqual(Buffer.from(subtreeRoot(new Uint8Array(64))))
  })
})

// ------------------------------------------------------------------ helpers

interface Pair {
  net: Testnet
  a: BulkTransfer
  b: BulkTransfer
  /** b's authority and a's. */
  bAuth: string
  aAuth: string
  aDid: string
  bDid: string
  cut(): number
}

const nets: Testnet[] = []
const dirs: string[] = []
afterEach(async () => {
  await Promise.allSettled(nets.map((n) => n.stop()))
  nets.length = 0
  await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })))
  dirs.length = 0
})

/** Wraps a router: `over` replaces some of its methods (a malicious or observed node). */
function wrap(router: Router, over: Partial<Record<keyof Router, unknown>>): Router {
  return new Proxy(router, {
    get(target, prop, receiver) {
      if (prop in over) return over[prop as keyof Router]
      const v = Reflect.get(target, prop, receiver) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
}

async function pair(opts: { a?: Partial<BulkTransferInit>; b?: Partial<BulkTransferInit>; wrapA?: (r: Router) => Router; nodes?: number } = {}): Promise<Pair> {
  const net = await createTestnet(opts.nodes ?? 2)
  nets.push(net)
  const [na, nb] = net.nodes as [Testnet['nodes'][number], Testnet['nodes'][number]]
  const clock = net.network.clock
  const a = bulkTransfer({ type: TYPE, ...opts.a })({ router: opts.wrapA?.(na.router) ?? na.router, clock })
  const b = bulkTransfer({ type: TYPE, ...opts.b })({ router: nb.router, clock })
  a.start()
  b.start()
  return {
    net,
    a,
    b,
    aAuth: na.authority,
    bAuth: nb.authority,
    aDid: na.did,
    bDid: nb.did,
    cut: () => {
      let n = 0
      for (const c of nb.transport.getConnections()) {
        if (c.remotePeer === na.did) {
          c.abort(new Error('cut by the test'))
          n++
        }
      }
      return n
    },
  }
}

/** A source that logs every read (index, and whether it is a serving read, i.e. after hashing). */
function countingSource(bytes: Uint8Array, chunkSize: number, log: { reads: number[]; all: number }, onRead?: (index: number) => void): BulkSource {
  const n = chunkCount(bytes.byteLength, chunkSize)
  return {
    size: bytes.byteLength,
    read(offset, length) {
      const index = offset / chunkSize
      log.all++
      // the first n reads are the offer's hashing pass (one per chunk, in order); the rest serve pulls
      if (log.all > n) {
        log.reads.push(index)
        onRead?.(index)
      }
      return bytes.subarray(offset, offset + length)
    },
  }
}

/** A memory sink that logs writes. */
function countingSink(inner: MemorySink, writes: number[], onWrite?: (index: number) => void): MemorySink & BulkSink {
  return {
    get state() {
      return inner.state
    },
    get bytes() {
      return inner.bytes
    },
    open: (i) => inner.open!(i),
    write: (index, b) => {
      writes.push(index)
      onWrite?.(index)
      return inner.write(index, b)
    },
    read: (i) => inner.read!(i),
    commit: () => inner.commit(),
    abort: () => inner.abort(),
  }
}

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'kos-bulk-'))
  dirs.push(d)
  return d
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  )
}

// ------------------------------------------------------------------ transfers

describe('bulk transfer on the memory transport', () => {
  it('moves 10 MB of random bytes (push), verified, with progress up to the total', async () => {
    let offered: IncomingOffer | undefined
    let result: Promise<unknown> | undefined
    const sink = memorySink()
    const progress: number[] = []
    const p = await pair({
      b: {
        onOffer: (offer) => {
          offered = offer
          result = offer.accept({ sink, onProgress: (x) => progress.push(x.bytes) })
        },
      },
    })
    const payload = new Uint8Array(randomBytes(10 * MiB))
    const sent = await p.a.push(p.bAuth, memorySource(payload), { meta: { kind: 'bundle', n: 1 }, contentHash: true })
    const got = (await result) as { chunksFetched: number; bytesFetched: number; reconnects: number }
    expect(offered).toMatchObject({ from: p.aAuth, fromDid: p.aDid, size: 10 * MiB, chunkSize: 256 * KiB, chunks: 40, meta: { kind: 'bundle', n: 1 } })
    expect(Buffer.from(offered!.contentHash)).toEqual(Buffer.from(sha(payload)))
    expect(sink.state).toBe('committed')
    expect(Buffer.from(sink.bytes!).equals(Buffer.from(payload))).toBe(true)
    expect(got).toMatchObject({ chunksFetched: 40, bytesFetched: 10 * MiB, reconnects: 0 })
    expect(sent).toMatchObject({ receiver: p.bDid, chunksSent: 40, bytesSent: 10 * MiB })
    expect(progress.at(-1)).toBe(10 * MiB)
    expect(progress).toEqual([...progress].sort((x, y) => x - y))
    expect(p.a.stats()).toMatchObject({ chunksSent: 40, offers: 0 })
    expect(p.b.stats()).toMatchObject({ chunksReceived: 40, framesIgnored: 0, chunksRejected: 0, transfers: 0 })
  })

  it('receives by reference (offer id + authority), with odd sizes, small pages and an empty payload', async () => {
    const p = await pair()
    for (const [size, chunkSize, pageLeaves] of [[1_000_003, 10_000, 4], [65_536, 65_536, 1024], [0, 4096, 16], [5, 1, 2]] as const) {
      const payload = new Uint8Array(randomBytes(size))
      const offer = await p.a.offer(memorySource(payload), { chunkSize, pageLeaves, to: p.bDid })
      const sink = memorySink()
      const r = await p.b.receive(p.aAuth, offer.id, { sink })
      expect(r).toMatchObject({ id: offer.id, from: p.aDid, size, chunks: Math.max(1, Math.ceil(size / chunkSize)) })
      expect(Buffer.from(sink.bytes!).equals(Buffer.from(payload))).toBe(true)
      await expect(offer.done).resolves.toMatchObject({ receiver: p.bDid })
    }
  })

  it('a tampered chunk from a malicious sender: BulkChunkHashError, sink aborted, the sender told', async () => {
    // the sender's router flips one byte of the data frame carrying chunk 5
    const p = await pair({
      wrapA: (r) =>
        wrap(r, {
          sendData: (peer: string, ch: number, data: Uint8Array, o?: { signal?: AbortSignal }) => {
            const index = new DataView(data.buffer, data.byteOffset).getUint32(8)
            if (index === 5) {
              data = data.slice()
              data[100]! ^= 0x40
            }
            return r.sendData(peer, ch, data, o)
          },
        }),
      b: { onOffer: (o) => void o.accept({ sink: sinks.shift()! }).catch((e: unknown) => errors.push(e)) },
    })
    const errors: unknown[] = []
    const dir = await tempDir()
    const target = join(dir, 'bundle.bin')
    const fsink = fileSink(target)
    const sinks: BulkSink[] = [fsink]
    const payload = new Uint8Array(randomBytes(3 * MiB))
    await expect(p.a.push(p.bAuth, memorySource(payload), { chunkSize: 64 * KiB })).rejects.toMatchObject({ name: 'BulkChunkHashError', code: 'ERR_BULK_CHUNK_HASH' })
    await expect.poll(() => errors.length).toBe(1)
    expect(errors[0]).toMatchObject({ name: 'BulkChunkHashError', index: 5 })
    expect(fsink.state).toBe('aborted')
    expect(await exists(target)).toBe(false)
    expect(await exists(fsink.partialPath)).toBe(false)
    expect(p.b.stats().chunksRejected).toBe(1)

    // the same through receive() into a memory sink
    const offer = await p.a.offer(memorySource(payload), { chunkSize: 64 * KiB })
    const msink = memorySink()
    await expect(p.b.receive(p.aAuth, offer.id, { sink: msink })).rejects.toMatchObject({ name: 'BulkChunkHashError' })
    expect(msink.state).toBe('aborted')
    expect(msink.bytes).toBeUndefined()
  })

  it('a wrong content hash in the signed offer: BulkContentHashError after the last chunk, nothing kept', async () => {
    // the sender's router signs an offer whose content hash is not the payload's (its tree is right)
    const p = await pair({
      wrapA: (r) =>
        wrap(r, {
          createResponse: (req: Parameters<Router['createResponse']>[0], data: KLPValue, o?: Parameters<Router['createResponse']>[2]) => {
            const d = data as Record<string, KLPValue>
            if (d !== null && typeof d === 'object' && d.op === 'offer') data = { ...d, contentHash: new Uint8Array(32).fill(7) }
            return r.createResponse(req, data, o)
          },
        }),
    })
    const payload = new Uint8Array(randomBytes(MiB + 17))
    const offer = await p.a.offer(memorySource(payload), { chunkSize: 128 * KiB, to: p.bDid })
    const dir = await tempDir()
    const sink = fileSink(join(dir, 'x.bin'))
    await expect(p.b.receive(p.aAuth, offer.id, { sink })).rejects.toMatchObject({ name: 'BulkContentHashError', code: 'ERR_BULK_CONTENT_HASH' })
    expect(sink.state).toBe('aborted')
    expect(await exists(sink.path)).toBe(false)
    expect(await exists(sink.partialPath)).toBe(false)
    // every chunk matched its leaf: only the total was wrong
    expect(p.b.stats()).toMatchObject({ chunksRejected: 0, chunksReceived: 9 })
    await expect(offer.done).rejects.toMatchObject({ name: 'BulkContentHashError' })
  })

  it('an oversize offer is refused before anything is transferred, on both sides', async () => {
    let asked = 0
    const p = await pair({ b: { maxBytes: MiB, onOffer: () => void asked++ } })
    const log = { reads: [] as number[], all: 0 }
    const payload = new Uint8Array(2 * MiB)
    await expect(p.a.push(p.bAuth, countingSource(payload, 256 * KiB, log))).rejects.toMatchObject({ name: 'BulkOfferTooLargeError', code: 'ERR_BULK_OFFER_TOO_LARGE' })
    expect(asked).toBe(0)
    // by reference, with a per-call limit
    const log2 = { reads: [] as number[], all: 0 }
    const offer = await p.a.offer(countingSource(payload, 256 * KiB, log2), { to: p.bDid })
    const sink = memorySink()
    await expect(p.b.receive(p.aAuth, offer.id, { sink, maxBytes: 2 * MiB - 1 })).rejects.toMatchObject({ name: 'BulkOfferTooLargeError' })
    expect(sink.state).toBe('new') // never opened
    await expect(offer.done).rejects.toMatchObject({ name: 'BulkOfferTooLargeError' })
    expect([...log.reads, ...log2.reads]).toEqual([]) // no chunk was ever read for sending
    // too many (tiny) chunks is too large as well
    const q = await pair({ b: { maxChunks: 100 } })
    const tiny = await q.a.offer(memorySource(new Uint8Array(1000)), { chunkSize: 8 })
    await expect(q.b.receive(q.aAuth, tiny.id, { sink: memorySink() })).rejects.toMatchObject({ name: 'BulkOfferTooLargeError' })
    expect(p.a.stats().chunksSent).toBe(0)
    expect(p.b.stats().pullsSent).toBe(0)
  })

  it('resumes after the connection is cut at ~50 %: re-dials, no verified chunk is sent twice', async () => {
    const chunkSize = 64 * KiB
    const window = 8
    const p = await pair({ b: { window } })
    const payload = new Uint8Array(randomBytes(8 * MiB))
    const n = payload.byteLength / chunkSize
    const log = { reads: [] as number[], all: 0 }
    const writes: number[] = []
    const readAfterWrite: number[] = []
    const written = new Set<number>()
    const source = countingSource(payload, chunkSize, log, (i) => {
      if (written.has(i)) readAfterWrite.push(i)
    })
    const offer = await p.a.offer(source, { chunkSize, to: p.bDid })
    const sink = countingSink(memorySink(), writes, (i) => written.add(i))
    let cutAt = -1
    let cuts = 0
    const r = await p.b.receive(p.aAuth, offer.id, {
      sink,
      onProgress: (x) => {
        if (cutAt < 0 && x.bytes >= payload.byteLength / 2) {
          cutAt = x.chunks
          cuts = p.cut()
        }
      },
    })
    expect(cuts).toBeGreaterThan(0)
    expect(r.reconnects).toBe(1)
    expect(Buffer.from(sink.bytes!).equals(Buffer.from(payload))).toBe(true)
    // every chunk verified and written exactly once
    expect(writes.length).toBe(n)
    expect(new Set(writes).size).toBe(n)
    expect(r.chunksFetched).toBe(n)
    // the sender never read (so never sent) a chunk the receiver had already verified
    expect(readAfterWrite).toEqual([])
    // only chunks lost in flight with the connection were sent again: at most one window
    const resent = log.reads.length - n
    expect(resent).toBeGreaterThanOrEqual(0)
    expect(resent).toBeLessThanOrEqual(window)
    expect(cutAt).toBeGreaterThanOrEqual(n / 2)
    await expect(offer.done).resolves.toMatchObject({ receiver: p.bDid })
  })

  it('bounded memory: the receiver never has more than window x chunkSize outstanding', async () => {
    const chunkSize = 32 * KiB
    const window = 4
    const p = await pair({ b: { window } })
    const payload = new Uint8Array(randomBytes(4 * MiB))
    const log = { reads: [] as number[], all: 0 }
    let writes = 0
    const violations: string[] = []
    // a chunk the sender reads was requested, so it must lie inside the window: below writes + window
    const source = countingSource(payload, chunkSize, log, (i) => {
      if (i >= writes + window) violations.push(`read ${i} with ${writes} written`)
    })
    const offer = await p.a.offer(source, { chunkSize })
    const sink = countingSink(memorySink(), [], () => writes++)
    await p.b.receive(p.aAuth, offer.id, { sink })
    expect(violations).toEqual([])
    expect(log.reads.length).toBe(payload.byteLength / chunkSize)
    expect(p.b.stats().maxWindowBytes).toBe(window * chunkSize)
    // a bigger window is used as given
    const p2 = await pair({ b: { window: 16 } })
    const o2 = await p2.a.offer(memorySource(payload), { chunkSize })
    await p2.b.receive(p2.aAuth, o2.id, { sink: memorySink() })
    expect(p2.b.stats().maxWindowBytes).toBe(16 * chunkSize)
  })

  it('cancellation with an AbortSignal: the sender is told, the sink aborted, sending stops', async () => {
    const ac = new AbortController()
    const sink = memorySink()
    let accepted: Promise<unknown> | undefined
    const p = await pair({
      b: {
        window: 4,
        onOffer: (o) => {
          accepted = o.accept({
            sink,
            signal: ac.signal,
            onProgress: (x) => {
              if (x.bytes >= x.total * 0.3) ac.abort()
            },
          })
        },
      },
    })
    const payload = new Uint8Array(randomBytes(4 * MiB))
    const pushed = p.a.push(p.bAuth, memorySource(payload), { chunkSize: 64 * KiB })
    await expect(pushed).rejects.toMatchObject({ name: 'BulkCancelledError', code: 'ERR_BULK_CANCELLED', remote: true })
    await expect(accepted).rejects.toMatchObject({ name: 'BulkCancelledError', remote: false })
    expect(sink.state).toBe('aborted')
    expect(p.a.stats().offers).toBe(0)
    // frames already handed to the router may still complete; after that, nothing more is sent
    await new Promise((r) => setTimeout(r, 50))
    const sentAtCancel = p.a.stats().chunksSent
    expect(sentAtCancel).toBeLessThan(64)
    await new Promise((r) => setTimeout(r, 100))
    expect(p.a.stats().chunksSent).toBe(sentAtCancel)
  })

  it('the sender cancels its offer: the receiver fails with BulkCancelledError (remote)', async () => {
    const p = await pair({ b: { window: 2 } })
    const payload = new Uint8Array(randomBytes(2 * MiB))
    const ac = new AbortController()
    const offer = await p.a.offer(memorySource(payload), { chunkSize: 32 * KiB, signal: ac.signal })
    const sink = memorySink()
    const got = p.b.receive(p.aAuth, offer.id, {
      sink,
      onProgress: (x) => {
        if (x.chunks === 10) ac.abort()
      },
    })
    await expect(got).rejects.toMatchObject({ name: 'BulkCancelledError', remote: true })
    await expect(offer.done).rejects.toMatchObject({ name: 'BulkCancelledError' })
    expect(sink.state).toBe('aborted')
  })

  it('ignores data frames from another peer (even for a requested chunk) and frames of no transfer', async () => {
    let last: { stream: number; epoch: number; index: number } | undefined
    const p = await pair({
      nodes: 3,
      b: { window: 4 },
      wrapA: (r) =>
        wrap(r, {
          sendData: (peer: string, ch: number, data: Uint8Array, o?: { signal?: AbortSignal }) => {
            const dv = new DataView(data.buffer, data.byteOffset)
            last = { stream: dv.getUint32(0), epoch: dv.getUint32(4), index: dv.getUint32(8) }
            return r.sendData(peer, ch, data, o)
          },
        }),
    })
    const [, nb, nc] = p.net.nodes
    const payload = new Uint8Array(randomBytes(MiB))
    const offer = await p.a.offer(memorySource(payload), { chunkSize: 32 * KiB })
    const sink = memorySink()
    let injected = 0
    const r = await p.b.receive(p.aAuth, offer.id, {
      sink,
      onProgress: () => {
        if (injected > 0 || last === undefined) return
        // a third node forges frames with the transfer's stream and epoch, for chunks outstanding
        // right now, with wrong bytes: they are not from the sender, so they are not even checked
        for (let k = 1; k <= 3; k++) {
          const forged = new Uint8Array(12 + 32 * KiB)
          const dv = new DataView(forged.buffer)
          dv.setUint32(0, last.stream)
          dv.setUint32(4, last.epoch)
          dv.setUint32(8, last.index + k)
          injected++
          void nc!.router.sendData(nb!.did, 0x0b01, forged).catch(() => {})
        }
        // and a frame too short to carry a header
        void nc!.router.sendData(nb!.did, 0x0b01, new Uint8Array(3)).catch(() => {})
      },
    })
    expect(injected).toBe(3)
    expect(Buffer.from(sink.bytes!).equals(Buffer.from(payload))).toBe(true)
    expect(r.chunksFetched).toBe(32)
    await expect.poll(() => p.b.stats().framesIgnored).toBeGreaterThanOrEqual(4)
    expect(p.b.stats().chunksRejected).toBe(0)
  })

  it('an offer expires after its TTL without use', async () => {
    const p = await pair()
    const offer = await p.a.offer(memorySource(new Uint8Array(1000)), { ttlMs: 30 })
    await expect(offer.done).rejects.toMatchObject({ name: 'BulkTimeoutError', code: 'ERR_BULK_TIMEOUT' })
    await expect(p.b.receive(p.aAuth, offer.id, { sink: memorySink() })).rejects.toMatchObject({ name: 'BulkUnknownOfferError', reason: 'bulk_unknown_offer' })
    // an offer made for another receiver is unknown to this one
    const other = await p.a.offer(memorySource(new Uint8Array(1000)), { to: 'did:key:z6MkSomebodyElse' })
    await expect(p.b.receive(p.aAuth, other.id, { sink: memorySink() })).rejects.toMatchObject({ name: 'BulkUnknownOfferError' })
  })

  it('refused offers: no onOffer, or onOffer rejects with its own code', async () => {
    const p = await pair()
    await expect(p.a.push(p.bAuth, memorySource(new Uint8Array(10)))).rejects.toMatchObject({ name: 'BulkRejectedError', reason: 'bulk_refused' })
    const q = await pair({ b: { onOffer: (o) => o.reject('not_now') } })
    await expect(q.a.push(q.bAuth, memorySource(new Uint8Array(10)))).rejects.toMatchObject({ name: 'BulkRejectedError', reason: 'not_now' })
    expect(q.a.stats().offers).toBe(0)
  })

  it('a sender that stops answering: the receiver retries, then fails with BulkTimeoutError', async () => {
    const p = await pair({ b: { window: 2, stallTimeoutMs: 100, maxStalls: 2, requestTimeoutMs: 300 } })
    const payload = new Uint8Array(randomBytes(MiB))
    const offer = await p.a.offer(memorySource(payload), { chunkSize: 32 * KiB })
    const sink = memorySink()
    const got = p.b.receive(p.aAuth, offer.id, {
      sink,
      onProgress: (x) => {
        // links between the two cut (connections stay open, frames are dropped)
        if (x.chunks === 4) p.net.network.partition([p.aDid], [p.bDid])
      },
    })
    await expect(got).rejects.toMatchObject({ name: 'BulkTimeoutError' })
    expect(sink.state).toBe('aborted')
  })

  it('a resumable file sink keeps verified chunks across attempts and fetches only the rest', async () => {
    const chunkSize = 64 * KiB
    const p = await pair({ b: { window: 4, stallTimeoutMs: 100, maxStalls: 1, requestTimeoutMs: 300 } })
    const payload = new Uint8Array(randomBytes(4 * MiB + 123))
    const n = chunkCount(payload.byteLength, chunkSize)
    const log = { reads: [] as number[], all: 0 }
    const offer = await p.a.offer(countingSource(payload, chunkSize, log), { chunkSize, to: p.bDid })
    const dir = await tempDir()
    const target = join(dir, 'shard.bin')
    const first = fileSink(target, { resumable: true, stateEvery: 4 })
    await expect(
      p.b.receive(p.aAuth, offer.id, {
        sink: first,
        onProgress: (x) => {
          if (x.chunks === Math.floor(n / 2)) p.net.network.partition([p.aDid], [p.bDid])
        },
      }),
    ).rejects.toMatchObject({ name: 'BulkTimeoutError' })
    expect(first.state).toBe('suspended')
    expect(await exists(first.partialPath)).toBe(true)
    expect(await exists(target)).toBe(false)
    const saved = JSON.parse(await readFile(first.statePath, 'utf8')) as { have: string }
    const bits = Buffer.from(saved.have, 'base64')
    const have = new Set<number>()
    for (let i = 0; i < n; i++) if ((bits[i >> 3]! & (1 << (i & 7))) !== 0) have.add(i)
    expect(have.size).toBeGreaterThanOrEqual(Math.floor(n / 2))

    p.net.network.heal()
    const readsBefore = log.reads.length
    const second = fileSink(target, { resumable: true })
    const r = await p.b.receive(p.aAuth, offer.id, { sink: second })
    expect(r.chunksResumed).toBe(have.size)
    expect(r.chunksFetched).toBe(n - have.size)
    const again = log.reads.slice(readsBefore).filter((i) => have.has(i))
    expect(again).toEqual([])
    expect(Buffer.from(await readFile(target)).equals(Buffer.from(payload))).toBe(true)
    expect(await exists(second.partialPath)).toBe(false)
    expect(await exists(second.statePath)).toBe(false)
  })

  it('a resumed chunk that no longer matches its leaf is fetched again', async () => {
    const chunkSize = 16 * KiB
    const p = await pair()
    const payload = new Uint8Array(randomBytes(20 * chunkSize))
    const dir = await tempDir()
    const target = join(dir, 'f.bin')
    // a partial file from "before a crash": chunks 0..9 claimed, chunk 3 corrupted on disk
    const partial = payload.slice(0, 10 * chunkSize)
    partial[3 * chunkSize + 5]! ^= 1
    const sink = fileSink(target, { resumable: true })
    await writeFile(sink.partialPath, partial)
    const bits = new Uint8Array(Math.ceil(20 / 8))
    for (let i = 0; i < 10; i++) bits[i >> 3]! |= 1 << (i & 7)
    const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
    // the state file names the offer by its root and content hash
    const tree = (() => {
      const leaves = new Uint8Array(20 * HASH_BYTES)
      for (let i = 0; i < 20; i++) leaves.set(leafHash(payload.subarray(i * chunkSize, (i + 1) * chunkSize)), i * HASH_BYTES)
      return new HashTree(leaves, 1024)
    })()
    await writeFile(sink.statePath, JSON.stringify({ v: 1, root: hex(tree.root), contentHash: hex(sha(payload)), size: payload.byteLength, chunkSize, chunks: 20, have: Buffer.from(bits).toString('base64') }))
    const offer = await p.a.offer(memorySource(payload), { chunkSize, contentHash: true })
    const r = await p.b.receive(p.aAuth, offer.id, { sink })
    expect(r.chunksResumed).toBe(9)
    expect(r.chunksFetched).toBe(11)
    expect(Buffer.from(await readFile(target)).equals(Buffer.from(payload))).toBe(true)
  })

  it('file source to file sink', async () => {
    const dir = await tempDir()
    const src = join(dir, 'in.bin')
    const dst = join(dir, 'out.bin')
    const payload = new Uint8Array(randomBytes(3 * MiB + 999))
    await writeFile(src, payload)
    const p = await pair()
    const source = await fileSource(src)
    const offer = await p.a.offer(source)
    await p.b.receive(p.aAuth, offer.id, { sink: fileSink(dst) })
    expect(Buffer.from(await readFile(dst)).equals(Buffer.from(payload))).toBe(true)
  })

  it('validates its configuration and arguments', async () => {
    const p = await pair()
    const r = p.net.nodes[0]!.router
    expect(() => bulkTransfer({ type: 'NOPE' as never })({ router: r })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => bulkTransfer({ type: TYPE, window: 0 })({ router: r })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => bulkTransfer({ type: TYPE, pageLeaves: 3 })({ router: r })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    await expect(p.a.offer(memorySource(new Uint8Array(1)), { chunkSize: 2 * MiB })).rejects.toMatchObject({ name: 'InvalidParametersError' })
    await expect(p.b.receive(p.aAuth, 'xyz', { sink: memorySink() })).rejects.toMatchObject({ name: 'InvalidBulkMessageError' })
    await expect(p.b.receive(p.aAuth, '00'.repeat(16), { sink: {} as BulkSink })).rejects.toMatchObject({ name: 'InvalidParametersError' })
    // a second service on the same path and channel is refused by the router
    expect(() => bulkTransfer({ type: TYPE })({ router: r }).start()).toThrow()
    p.a.stop()
    await expect(p.a.offer(memorySource(new Uint8Array(1)))).rejects.toMatchObject({ name: 'BulkCancelledError' })
  })
})

describe('bulk transfer: service lifecycle and the router contract it relies on', () => {
  it('router.sendData copies the bytes before it returns (the sender reuses one frame buffer)', async () => {
    const p = await pair()
    const [na, nb] = p.net.nodes
    const got: number[][] = []
    nb!.router.handleData(0x0c00, (_peer, d) => got.push([...d]))
    const buf = new Uint8Array([1, 2, 3, 4])
    const sent = na!.router.sendData(p.bDid, 0x0c00, buf)
    buf.fill(9)
    await sent
    await expect.poll(() => got.length).toBe(1)
    expect(got[0]).toEqual([1, 2, 3, 4])
  })

  it('stop() ends transfers with BulkCancelledError, keeps a resumable sink, and a restarted service resumes', async () => {
    const chunkSize = 32 * KiB
    const p = await pair({ b: { window: 2 } })
    const payload = new Uint8Array(randomBytes(40 * chunkSize))
    const offer = await p.a.offer(memorySource(payload), { chunkSize, to: p.bDid })
    const dir = await tempDir()
    const target = join(dir, 'agent.bundle')
    const first = fileSink(target, { resumable: true, stateEvery: 1 })
    await expect(p.b.receive(p.aAuth, offer.id, { sink: first, onProgress: (x) => { if (x.chunks === 20) p.b.stop() } })).rejects.toMatchObject({ name: 'BulkCancelledError', remote: false })
    expect(first.state).toBe('suspended')
    expect(await exists(first.partialPath)).toBe(true)
    expect(p.b.isStarted!()).toBe(false)
    p.b.start()
    const r = await p.b.receive(p.aAuth, offer.id, { sink: fileSink(target, { resumable: true }) })
    expect(r.chunksResumed).toBeGreaterThanOrEqual(20)
    expect(r.chunksResumed + r.chunksFetched).toBe(40)
    expect(Buffer.from(await readFile(target)).equals(Buffer.from(payload))).toBe(true)
  })

  it('at most maxTransfers at once on the receiver; more are refused with BulkBusyError', async () => {
    const p = await pair({ b: { maxTransfers: 1, window: 1 } })
    const payload = new Uint8Array(randomBytes(64 * KiB))
    const o1 = await p.a.offer(memorySource(payload), { chunkSize: 16 * KiB })
    const o2 = await p.a.offer(memorySource(payload), { chunkSize: 16 * KiB })
    // the first transfer's sink holds its first write until released
    let release!: () => void
    const held = new Promise<void>((r) => { release = r })
    const inner = memorySink()
    const slow: BulkSink = { open: (i) => inner.open(i), write: async (i, b) => { await held; inner.write(i, b) }, commit: () => inner.commit(), abort: () => inner.abort() }
    const first = p.b.receive(p.aAuth, o1.id, { sink: slow })
    expect(p.b.stats().transfers).toBe(0) // the offer is fetched first
    await expect.poll(() => p.b.stats().transfers).toBe(1)
    await expect(p.b.receive(p.aAuth, o2.id, { sink: memorySink() })).rejects.toMatchObject({ name: 'BulkBusyError' })
    release()
    await first
    expect(Buffer.from(inner.bytes!).equals(Buffer.from(payload))).toBe(true)
    await p.b.receive(p.aAuth, o2.id, { sink: memorySink() })
  })
})

describe('bulk transfer in virtual time (every timer on the injected clock)', () => {
  it('moves a payload over 20 ms links; offer TTL and stall timeouts fire at their clock times', async () => {
    const net = await createTestnet(2, { time: 'virtual', seed: 9, link: { latencyMs: 20 } })
    nets.push(net)
    const clock = net.network.clock
    const [na, nb] = net.nodes as [Testnet['nodes'][number], Testnet['nodes'][number]]
    const a = bulkTransfer({ type: TYPE })({ router: na.router, clock })
    const b = bulkTransfer({ type: TYPE, window: 4, stallTimeoutMs: 500, maxStalls: 2 })({ router: nb.router, clock })
    a.start()
    b.start()
    const payload = new Uint8Array(randomBytes(MiB))
    const offer = await net.drive(a.offer(memorySource(payload), { chunkSize: 64 * KiB, ttlMs: 60_000 }))
    const sink = memorySink()
    const t0 = clock.now()
    const r = await net.drive(b.receive(na.authority, offer.id, { sink }))
    expect(Buffer.from(sink.bytes!).equals(Buffer.from(payload))).toBe(true)
    // get, one leaf page and at least one pull each take a round trip (2 x 20 ms) of virtual time
    expect(clock.now() - t0).toBeGreaterThanOrEqual(3 * 40)
    expect(r.durationMs).toBeGreaterThanOrEqual(2 * 40)

    // an offer nobody uses expires when its TTL has passed on the clock
    const idle = await net.drive(a.offer(memorySource(new Uint8Array(10)), { ttlMs: 60_000 }))
    const expiredAt = await net.drive(idle.done.then(() => -1, () => clock.now()), { stepMs: 1 })
    // info.expiresAt = creation + TTL (rounded up to the ms); the timer fires then, read within a step
    expect(expiredAt).toBeGreaterThanOrEqual(idle.info.expiresAt - 1)
    expect(expiredAt).toBeLessThanOrEqual(idle.info.expiresAt + 1)

    // a stalled transfer fails after (maxStalls + 1) x stallTimeoutMs without a chunk
    const o3 = await net.drive(a.offer(memorySource(payload), { chunkSize: 64 * KiB }))
    let lastChunkAt = 0
    const failedAt = await net.drive(
      b.receive(na.authority, o3.id, {
        sink: memorySink(),
        onProgress: (x) => {
          lastChunkAt = clock.now()
          if (x.chunks === 4) net.network.partition([na.did], [nb.did])
        },
      }).then(() => -1, (e: { name: string }) => (e.name === 'BulkTimeoutError' ? clock.now() : -2)),
      { stepMs: 1 },
    )
    expect(failedAt - lastChunkAt).toBeGreaterThanOrEqual(3 * 500)
    expect(failedAt - lastChunkAt).toBeLessThanOrEqual(3 * 500 + 60)
    a.stop()
    b.stop()
  })
})

describe('bulk transfer: the README example', () => {
  it('runs as written (imports from src, a temp path for the file sink)', async () => {
    const dir = await tempDir()
    const bundlePath = join(dir, 'agent-a1.bundle')
    const net = await createTestnet(2)
    nets.push(net)
    const [a, b] = net.nodes
    const clock = net.network.clock
    let accepted: Promise<unknown> | undefined
    const sender = bulkTransfer({ type: KLPMessageType.AGENT_MIGRATION })({ router: a!.router, clock })
    const receiver = bulkTransfer({
      type: KLPMessageType.AGENT_MIGRATION,
      maxBytes: 64 * 1024 * 1024,
      onOffer: (offer) => {
        accepted = offer.accept({ sink: fileSink(bundlePath) })
        accepted.catch(() => {})
      },
    })({ router: b!.router, clock })
    sender.start()
    receiver.start()

    const bundle = new Uint8Array(10 * 1024 * 1024)
    const sent = await sender.push(b!.authority, memorySource(bundle), { meta: { agent: 'a1' } })

    const offer = await sender.offer(memorySource(bundle), { to: b!.did, ttlMs: 60_000 })
    const sink = memorySink()
    const seen: number[] = []
    const got = await receiver.receive(a!.authority, offer.id, { sink, onProgress: (p) => seen.push(p.bytes) })
    await accepted
    expect(sent.bytesSent).toBe(bundle.byteLength)
    expect(got.chunksFetched).toBe(40)
    expect(sink.bytes!.byteLength).toBe(bundle.byteLength)
    expect((await stat(bundlePath)).size).toBe(bundle.byteLength)
    expect(seen.at(-1)).toBe(bundle.byteLength)
  })
})
