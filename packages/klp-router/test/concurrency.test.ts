import { afterEach, describe, expect, it } from 'vitest'
import { generateIdentity } from '@kos-mesh/did-security'
import { KLPMessageType, ProcessingStatus } from '@kos-mesh/interface'
import { createTestnet, type Testnet } from '../src/testnet.js'
import { rawPeer, waitFor, type RawPeer } from './helpers.js'

let net: Testnet | undefined
let peers: RawPeer[] = []
afterEach(async () => {
  await Promise.all(peers.map((p) => p.close()))
  peers = []
  await net?.stop()
  net = undefined
})

/** Collects process warnings (MaxListenersExceededWarning is one) while `fn` runs. */
async function warningsDuring(fn: () => Promise<void>): Promise<Error[]> {
  const seen: Error[] = []
  const onWarning = (w: Error): void => {
    seen.push(w)
  }
  process.on('warning', onWarning)
  try {
    await fn()
    // process warnings are emitted on a later tick
    await new Promise((r) => setTimeout(r, 20))
  } finally {
    process.off('warning', onWarning)
  }
  return seen
}

describe('many concurrent verifications share no long-lived abort signal', () => {
  it('100 concurrent hellos from new DIDs: all identified, no MaxListenersExceededWarning', async () => {
    net = await createTestnet(1)
    const b = net.nodes[0]!
    const warnings = await warningsDuring(async () => {
      // every hello is signed by a new did:key, so every verification misses the resolver cache
      peers = await Promise.all(Array.from({ length: 100 }, (_, i) => rawPeer(net!.network, b.address, b.did, `peer-${i}.mesh.kai`)))
      await waitFor(() => peers.every((p) => b.router.routingTable.didOf(p.authority) === p.identity.did), 10_000)
    })
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([])
    expect(b.router.peers()).toHaveLength(100)
    expect(b.router.metrics().rejects).toEqual({})
  })

  it('100 concurrent messages signed by 100 new DIDs: all processed, no MaxListenersExceededWarning', async () => {
    net = await createTestnet(1)
    const b = net.nodes[0]!
    let calls = 0
    b.router.handle(KLPMessageType.TASK_REQUEST, async (_msg, ctx) => {
      calls++
      // a handler that, like many, listens on its context signal while it works
      const onAbort = (): void => {}
      ctx.signal?.addEventListener('abort', onAbort)
      await new Promise((r) => setTimeout(r, 1))
      ctx.signal?.removeEventListener('abort', onAbort)
      return { status: ProcessingStatus.PROCESSED }
    })
    const peer = await rawPeer(net.network, b.address, b.did)
    peers = [peer]
    await waitFor(() => b.router.routingTable.didOf(peer.authority) !== undefined)
    const senders = Array.from({ length: 100 }, () => generateIdentity())
    const frames = await Promise.all(
      senders.map(async (id, i) =>
        peer.frame(await peer.sign({ type: KLPMessageType.TASK_REQUEST, target: `klp://${b.authority}/`, source: `klp://sender-${i}.mesh.kai/`, data: i }, id)),
      ),
    )
    const warnings = await warningsDuring(async () => {
      await Promise.all(frames.map((f) => peer.send(f)))
      await waitFor(() => calls === 100, 10_000)
    })
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([])
    expect(b.router.metrics().processed).toBe(100)
    expect(b.router.metrics().rejects).toEqual({})
  })
})
