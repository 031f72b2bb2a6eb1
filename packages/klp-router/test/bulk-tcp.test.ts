import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createSignatureVerifier, generateIdentity } from '@kos-mesh/did-security'
import { KLPMessageType, type Connection } from '@kos-mesh/interface'
import { tcp } from '@kos-mesh/transport-tcp'
import { bulkTransfer, fileSink, fileSource, type BulkReceiveResult, type BulkSource } from '../src/bulk/index.js'
import { createRouter, type Router } from '../src/index.js'
import { capturing } from './capturing.js'

const MiB = 1024 * 1024


const routers: Router[] = []
const dirs: string[] = []
afterEach(async () => {
  await Promise.allSettled(routers.map((r) => r.stop()))
  routers.length = 0
  await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })))
  dirs.length = 0
})

describe('bulk transfer over real TCP', () => {
  it('pushes a file end to end, survives a cut connection at ~50 % by re-dialling the sender', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-bulk-tcp-'))
    dirs.push(dir)
    const ia = generateIdentity()
    const ib = generateIdentity()
    const verifier = createSignatureVerifier()
    const connsA: Connection[] = []
    const a = await createRouter({ authority: 'sender.mesh.kai', identity: ia, signatureVerifier: verifier, transports: [capturing(tcp()({ identity: ia }), connsA)], listen: ['tcp://127.0.0.1:0'] })
    const b = await createRouter({ authority: 'receiver.mesh.kai', identity: ib, signatureVerifier: verifier, transports: [tcp()({ identity: ib })], listen: ['tcp://127.0.0.1:0'] })
    routers.push(a, b)

    const src = join(dir, 'bundle.bin')
    const dst = join(dir, 'received.bin')
    const payload = new Uint8Array(randomBytes(12 * MiB + 4321))
    await writeFile(src, payload)

    const chunkSize = 256 * 1024
    const n = Math.ceil(payload.byteLength / chunkSize)
    // the sender's source, observed: which chunks it reads (serves) after the offer's hashing pass
    const inner = await fileSource(src)
    let reads = 0
    const served: number[] = []
    const written = new Set<number>()
    const servedAfterWrite: number[] = []
    const source: BulkSource = {
      size: inner.size,
      read: (offset, length) => {
        if (++reads > n) {
          const index = offset / chunkSize
          served.push(index)
          if (written.has(index)) servedAfterWrite.push(index)
        }
        return inner.read(offset, length)
      },
      close: () => inner.close(),
    }

    let cut = false
    let received: Promise<BulkReceiveResult> | undefined
    const sa = bulkTransfer({ type: KLPMessageType.AGENT_MIGRATION, contentHash: true })({ router: a })
    const sb = bulkTransfer({
      type: KLPMessageType.AGENT_MIGRATION,
      maxBytes: 64 * MiB,
      onOffer: (offer) => {
        const sink = fileSink(dst)
        received = offer.accept({
          sink: { ...sink, open: (i) => sink.open(i), write: (i, bytes) => { written.add(i); return sink.write(i, bytes) }, commit: () => sink.commit(), abort: () => sink.abort() },
          onProgress: (p) => {
            if (!cut && p.bytes >= p.total / 2) {
              cut = true
              // cut the sender's only connection (it dialled the receiver); the receiver must dial back
              for (const c of connsA) c.abort(new Error('cut by the test'))
            }
          },
        })
      },
    })({ router: b })
    sa.start()
    sb.start()

    // the sender dials the receiver: the receiver has the connection it needs for data frames
    await a.dial(b.addrs()[0]!, { remotePeer: ib.did })
    const sent = await sa.push('receiver.mesh.kai', source, { chunkSize, meta: { migration: 'm-1' } })
    const r = await received!

    expect(cut).toBe(true)
    expect(r.reconnects).toBe(1)
    expect(r.chunksFetched).toBe(n)
    expect(r.meta).toEqual({ migration: 'm-1' })
    expect(Buffer.from(r.contentHash)).toEqual(createHash('sha256').update(payload).digest())
    expect(Buffer.from(await readFile(dst)).equals(Buffer.from(payload))).toBe(true)
    expect((await stat(`${dst}.bulk-partial`).catch(() => undefined)) === undefined).toBe(true)
    expect(sent.receiver).toBe(ib.did)
    // the sender never served a chunk again that the receiver had already verified and written
    expect(servedAfterWrite).toEqual([])
    expect(served.length - n).toBeLessThanOrEqual(16)
    // the receiver dialled the sender back: the sender now has an inbound connection
    expect(connsA.length).toBe(2)
    expect(connsA[1]!.direction).toBe('inbound')
    sa.stop()
    sb.stop()
  })
})
