/**
 * Issue 13, restart on libp2p with real `kos-mesh` processes: two nodes `init --transport libp2p` on
 * fixed loopback ports, started and connected; one is stopped (`kos-mesh stop`) and started again
 * with only its data dir: it comes back with the same PeerId and DID (the keystore's key is the
 * libp2p key), at the same address, and redials the peer it knew with no command given; the other
 * one sees it again. Then the other way round, after SIGKILL. Every wait is bounded; nothing asserts
 * on timing.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, connectedDids, control, eventually, freePorts, json, startNode, stopAll, type Running } from './e2e-helpers.js'

let root: string
const running: Running[] = []
const dir = (name: string): string => join(root, name)

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kos-libp2p-restart-'))
})

afterAll(async () => {
  await stopAll(running)
  if (root !== undefined) await rm(root, { recursive: true, force: true })
}, 30_000)

const connectedOf = (name: string): Promise<string[]> => connectedDids(dir(name))

const peerIdOf = (addr: string): string | undefined => /\/p2p\/(12D3KooW[1-9A-HJ-NP-Za-km-z]+)\//.exec(addr)?.[1]

describe('kos-mesh on libp2p across restarts', () => {
  it('init, start, stop, start: same PeerId and address, the known peer redialled', async () => {
    const [pa, pb] = await freePorts(2)
    for (const [n, p] of [['a', pa], ['b', pb]] as const) {
      const r = await cli(['init', '--json', '--data-dir', dir(n), '--name', n, '--transport', 'libp2p', '--listen', `/ip4/127.0.0.1/tcp/${p as number}`])
      expect(r.code, r.stderr).toBe(0)
    }
    const a = await startNode(dir('a'), [], running)
    const b = await startNode(dir('b'), [], running)
    const aAddr = a.started.addrs[0] as string
    const bAddr = b.started.addrs[0] as string
    expect(peerIdOf(aAddr)).toBeDefined()
    const c = await cli(['connect', '--json', '--data-dir', dir('a'), bAddr])
    expect(c.code, c.stderr).toBe(0)
    expect(json(c)).toMatchObject({ did: b.started.did })
    await eventually('a and b know each other', async () => {
      const s = JSON.parse((await control(dir('a'), 'GET', '/v1/status')).text) as { peersKnown: number }
      return s.peersKnown === 1 && (await connectedOf('b')).includes(a.started.did)
    })

    // a clean stop, then start with only the data dir
    const stop = await cli(['stop', '--json', '--data-dir', dir('a')])
    expect(stop.code, stop.stderr).toBe(0)
    await a.exited
    await eventually('b saw a go', async () => !(await connectedOf('b')).includes(a.started.did))
    const a2 = await startNode(dir('a'), [], running)
    expect(a2.started.did).toBe(a.started.did)
    expect(a2.started.addrs[0]).toBe(aAddr)
    expect(peerIdOf(a2.started.addrs[0] as string)).toBe(peerIdOf(aAddr))
    expect(a2.started.peersKnown).toBe(1)
    await eventually('the restarted a redialled b', async () => (await connectedOf('a')).includes(b.started.did) && (await connectedOf('b')).includes(a.started.did))

    // b killed (no clean shutdown) and started again: same PeerId, and the mesh forms again
    b.child.kill('SIGKILL')
    await b.exited
    const b2 = await startNode(dir('b'), [], running)
    expect(b2.started.did).toBe(b.started.did)
    expect(peerIdOf(b2.started.addrs[0] as string)).toBe(peerIdOf(bAddr))
    await eventually('a and b connected again', async () => (await connectedOf('a')).includes(b.started.did) && (await connectedOf('b')).includes(a.started.did))
    const t = await cli(['task', '--json', '--data-dir', dir('a'), 'klp://b.mesh.kai/agents/math', '6 * 7'])
    expect(t.code, t.stderr).toBe(0)
    expect(json(t)).toMatchObject({ result: { value: 42 } })
  }, 90_000)
})
