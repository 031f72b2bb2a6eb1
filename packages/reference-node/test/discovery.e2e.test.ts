/**
 * Issue 12 end to end, on real `kos-mesh` processes on loopback TCP: four nodes seeded
 * b <- c <- d and b <- a, with discovery's auto-dial and refresh off (`"discovery"` in config.json)
 * so that no peer table ever carries d's record to a. d is initialized with
 * `--capability vector_storage`; a, whose only seed is b and which was never told about d, finds it
 * with `kos-mesh discover --capability vector_storage` through the DHT (discovery_method `dht`),
 * and `kos-mesh dht find <d>` returns d's verified record. Then `kos-mesh broadcast` from a reaches
 * b, c and d through the gossip overlay, and `kos-mesh status` on d counts it. Every wait polls
 * with a deadline.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, control, eventually, freePorts, json, startNode, stopAll, type Running } from './e2e-helpers.js'

let root: string
const running: Running[] = []
const dir = (name: string): string => join(root, name)

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kos-discovery-e2e-'))
})

afterAll(async () => {
  await stopAll(running)
  if (root !== undefined) await rm(root, { recursive: true, force: true })
}, 30_000)

async function get<T>(node: string, path: string): Promise<T> {
  const r = await control(dir(node), 'GET', path)
  if (r.status !== 200) throw new Error(`GET ${path} on ${node}: ${r.status} ${r.text}`)
  return JSON.parse(r.text) as T
}

interface Mesh {
  dht: { contacts: number; joined: boolean; provided: string[] } | null
  gossip: { active: number; passive: number } | null
  broadcasts: { sent: number; received: number }
}

describe('discovery across four processes: DHT capability lookup, dht find, broadcast', () => {
  it('a finds d\'s vector_storage through the DHT, looks d up, and its broadcast reaches every node', async () => {
    const names = ['a', 'b', 'c', 'd'] as const
    const ports = await freePorts(4)
    const inits = await Promise.all(
      names.map((n, i) => cli(['init', '--json', '--data-dir', dir(n), '--name', n, '--agents', '', '--listen', `tcp://127.0.0.1:${ports[i] as number}`, ...(n === 'd' ? ['--capability', 'vector_storage'] : [])])),
    )
    for (const r of inits) expect(r.code, r.stderr).toBe(0)
    // discovery never dials on its own nor refreshes: only the DHT can tell a about d
    for (const n of names) {
      const path = join(dir(n), 'config.json')
      const cfg = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>
      await writeFile(path, JSON.stringify({ ...cfg, discovery: { autoDial: false, refreshIntervalMs: 0 } }, null, 2))
    }
    expect(JSON.parse(await readFile(join(dir('d'), 'config.json'), 'utf8'))).toMatchObject({ node: { capabilities: { vector_storage: true } } })

    const b = await startNode(dir('b'), [], running)
    const bAddr = b.started.addrs[0] as string
    const c = await startNode(dir('c'), ['--seed', bAddr], running)
    const a = await startNode(dir('a'), ['--seed', bAddr], running)
    const d = await startNode(dir('d'), ['--seed', c.started.addrs[0] as string], running)
    const D = d.started.did

    // a was never told about d: no peer table carried d's record to it
    const peers = await get<{ peers: Array<{ did: string; discovery_method?: string }> }>('a', '/v1/peers')
    expect(peers.peers.find((p) => p.did === D)?.discovery_method).toBeUndefined()
    await eventually('d has joined the DHT and provides capability:vector_storage', async () => {
      const m = (await get<{ mesh: Mesh }>('d', '/v1/status')).mesh
      return m.dht?.joined === true && m.dht.provided.includes('capability:vector_storage')
    })

    let found: { peers: Array<Record<string, unknown>>; sources: Record<string, string> } | undefined
    await eventually('a discovers d by its capability', async () => {
      const r = await cli(['discover', '--json', '--data-dir', dir('a'), '--capability', 'vector_storage', '--max', '10'])
      if (r.code !== 0) throw new Error(`discover exited ${String(r.code)}: ${r.stdout} ${r.stderr}`)
      const doc = json<NonNullable<typeof found>>(r)
      found = doc
      return doc.peers.some((p) => p.peer_id === D)
    }, 30_000)
    expect(found?.peers).toHaveLength(1)
    expect(found?.peers[0]).toMatchObject({ peer_id: D, authority: 'd.mesh.kai', discovery_method: 'dht', capabilities: ['vector_storage'], addresses: [d.started.addrs[0]?.replace(/\/did:.*$/, '')] })
    expect(found?.peers[0]?.found_by).toContain('dht')
    expect(found?.sources).toEqual({ dht: 'asked', gossip: 'asked' })

    const f = await cli(['dht', 'find', D, '--json', '--data-dir', dir('a')])
    expect(f.code, f.stderr).toBe(0)
    expect(json(f)).toMatchObject({ did: D, authority: 'd.mesh.kai', role: 'PeerNode', capabilities: ['vector_storage'], addresses: [d.started.addrs[0]?.replace(/\/did:.*$/, '')] })

    // the broadcast: once every node is in the gossip overlay
    await eventually('every node has a gossip neighbour', async () => {
      for (const n of names) if (((await get<{ mesh: Mesh }>(n, '/v1/status')).mesh.gossip?.active ?? 0) === 0) return false
      return true
    })
    const sent = await cli(['broadcast', 'vector index rebuilt', '--json', '--data-dir', dir('a')])
    expect(sent.code, sent.stderr).toBe(0)
    const id = json<{ message_id: string; strategy: string }>(sent)
    expect(id.strategy).toBe('gossip')
    for (const n of ['b', 'c', 'd']) {
      await eventually(`${n} receives a's broadcast`, async () => {
        const r = await get<{ broadcasts: Array<{ message_id: string; from: string; data: unknown }> }>(n, '/v1/broadcasts')
        return r.broadcasts.some((x) => x.message_id === id.message_id && x.from === a.started.did && x.data === 'vector index rebuilt')
      })
    }
    const status = await cli(['status', '--data-dir', dir('d')])
    expect(status.code, status.stderr).toBe(0)
    expect(status.stdout).toMatch(/^dht: +[1-9]\d* contacts?, \d+ provider records? held, provides capability:vector_storage$/m)
    expect(status.stdout).toMatch(/^broadcasts: 0 sent, 1 received$/m)
    const received = json<{ broadcasts: Array<{ message_id: string }> }>(await cli(['broadcast', '--received', '--json', '--data-dir', dir('c')]))
    expect(received.broadcasts.map((x) => x.message_id)).toEqual([id.message_id])
  }, 60_000)
})
