/**
 * Regression: a node restarted with its store (authority pins restored) got no peer:identify from
 * its router for peers whose authority was already pinned, so its gossip service never joined the
 * overlay again and broadcasts (operators', and trust statements riding them) never reached it.
 */
import { afterAll, expect, it } from 'vitest'
import { generateIdentity } from '@kos-mesh/did-security'
import type { GossipService } from '@kos-mesh/peer-discovery'
import { createMemoryNetwork } from '@kos-mesh/transport-memory'
import { createNode, memory, memoryStore, type KosMeshNode, type NodeInit } from '../src/index.js'

const network = createMemoryNetwork()
const nodes: KosMeshNode[] = []
const QUIET: NodeInit = { discovery: { autoDial: false, refreshIntervalMs: 0, announceIntervalMs: 0 } }
function node(name: string, init: NodeInit = {}): KosMeshNode {
  const n = createNode({ authority: `${name}.mesh.kai`, transports: [memory({ network })], listen: [`memory://${name}`], ...QUIET, ...init })
  nodes.push(n)
  return n
}
async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`expected ${what} within ${ms} ms`)
}
afterAll(async () => { await Promise.allSettled(nodes.map((n) => n.stop())) })

it('a restarted node (same identity and store: pins and peers restored) is back in the gossip overlay and gets broadcasts', async () => {
  const idC = generateIdentity(); const storeC = memoryStore()
  const b = node('b'); await b.start()
  const a = node('a', { seeds: b.addrs() }); await a.start()
  const c = node('c', { identity: idC, storage: storeC, seeds: b.addrs() }); await c.start()
  await c.connect(a.addrs()[0]!)
  await eventually('views', () => [a, b, c].every((n) => n.service<GossipService>('gossip').neighbors().length > 0))
  const s1 = await a.mesh.broadcast({ n: 1 })
  await eventually('c gets 1', () => c.mesh.broadcasts().some((x) => x.message_id === s1.message_id))
  await c.stop()
  const c2 = node('c2', { identity: idC, storage: storeC, seeds: b.addrs(), authority: 'c.mesh.kai', listen: ['memory://c'] }); await c2.start()
  await c2.connect(a.addrs()[0]!)
  // its peers come back by redial and seeds; the router identifies them though their pins were
  // restored, so the gossip service joins the overlay again
  await eventually('the restarted node is back in the overlay', () => c2.service<GossipService>('gossip').neighbors().length > 0)
  const s2 = await a.mesh.broadcast({ n: 2 })
  await eventually('the restarted node receives a broadcast', () => c2.mesh.broadcasts().some((x) => x.message_id === s2.message_id))
  expect(c2.mesh.broadcasts().filter((x) => x.message_id === s2.message_id)).toHaveLength(1)
}, 60_000)
