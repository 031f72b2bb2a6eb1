/**
 * Issue 13 end to end, on real `kos-mesh` processes over libp2p on loopback: two nodes initialized
 * with `--transport libp2p --listen /ip4/127.0.0.1/tcp/<port>`, started; `kos-mesh connect` with the
 * address the second one printed (`libp2p:///ip4/.../tcp/<port>/p2p/<PeerId>/did:...`); a task
 * refused by the receiver's policy (task_min_trust 5) until the receiver trusts the sender, then
 * answered. Every wait is bounded; nothing asserts on timing.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, freePorts, json, startNode, stopAll, type Running } from './e2e-helpers.js'

let root: string
const running: Running[] = []
const dir = (name: string): string => join(root, name)

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kos-libp2p-e2e-'))
})

afterAll(async () => {
  await stopAll(running)
  if (root !== undefined) await rm(root, { recursive: true, force: true })
}, 30_000)

describe('two kos-mesh processes over libp2p', () => {
  it('connect with the printed libp2p address, a task refused by policy, then answered once trusted', async () => {
    const [pa, pb] = await freePorts(2)
    const ia = await cli(['init', '--json', '--data-dir', dir('a'), '--name', 'a', '--transport', 'libp2p', '--listen', `/ip4/127.0.0.1/tcp/${pa as number}`])
    expect(ia.code, ia.stderr).toBe(0)
    const ib = await cli(['init', '--json', '--data-dir', dir('b'), '--name', 'b', '--transport', 'libp2p', '--listen', `/ip4/127.0.0.1/tcp/${pb as number}`, '--task-min-trust', '5'])
    expect(ib.code, ib.stderr).toBe(0)
    expect(JSON.parse(await readFile(join(dir('b'), 'config.json'), 'utf8'))).toMatchObject({ transport: 'libp2p', listen: [], libp2p: { listen: [`/ip4/127.0.0.1/tcp/${pb as number}`] } })

    const a = await startNode(dir('a'), [], running)
    const b = await startNode(dir('b'), [], running)
    const bAddr = b.started.addrs[0] as string
    expect(bAddr).toMatch(new RegExp(`^libp2p:///ip4/127\\.0\\.0\\.1/tcp/${pb as number}/p2p/12D3KooW[1-9A-HJ-NP-Za-km-z]+/${b.started.did}$`))

    const c = await cli(['connect', '--json', '--data-dir', dir('a'), bAddr])
    expect(c.code, c.stderr).toBe(0)
    expect(json(c)).toMatchObject({ did: b.started.did, authority: 'b.mesh.kai', identityChecked: true })

    const peers = json<Array<{ did: string; connected: boolean; addresses: string[] }>>(await cli(['peers', '--json', '--data-dir', dir('a')]))
    expect(peers.find((p) => p.did === b.started.did)).toMatchObject({ connected: true })

    const task = (): Promise<Awaited<ReturnType<typeof cli>>> => cli(['task', '--json', '--data-dir', dir('a'), 'klp://b.mesh.kai/agents/math', '6 * 7'])
    const refused = await task()
    expect(refused.code).toBe(4)
    expect(json(refused)).toMatchObject({ error: { reason: 'insufficient_trust' } })

    const t = await cli(['trust', '--json', '--data-dir', dir('b'), a.started.did, '6'])
    expect(t.code, t.stderr).toBe(0)
    const ok = await task()
    expect(ok.code, ok.stderr).toBe(0)
    expect(json(ok)).toMatchObject({ result: { value: 42 }, agent: 'klp://b.mesh.kai/agents/math' })

    for (const n of ['a', 'b']) {
      const s = await cli(['stop', '--json', '--data-dir', dir(n)])
      expect(s.code, s.stderr).toBe(0)
    }
  })
})
