/**
 * A `kos-mesh` process on tcp and libp2p at once (`init --transport tcp,libp2p`), reached by a TCP-only
 * process and a libp2p-only one, each running a task on it. Every wait is bounded.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, freePorts, json, startNode, stopAll, type Running } from './e2e-helpers.js'

let root: string
const running: Running[] = []
const dir = (name: string): string => join(root, name)

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kos-mixed-e2e-'))
})

afterAll(async () => {
  await stopAll(running)
  if (root !== undefined) await rm(root, { recursive: true, force: true })
}, 30_000)

describe('kos-mesh --transport tcp,libp2p', () => {
  it('a TCP-only and a libp2p-only process both reach the mixed one', async () => {
    const [pm, pm2, pt, pl] = await freePorts(4)
    const inits = [
      ['init', '--json', '--data-dir', dir('m'), '--name', 'm', '--transport', 'tcp,libp2p', '--listen', `tcp://127.0.0.1:${pm as number}`, '--listen', `/ip4/127.0.0.1/tcp/${pm2 as number}`],
      ['init', '--json', '--data-dir', dir('t'), '--name', 't', '--listen', `tcp://127.0.0.1:${pt as number}`],
      ['init', '--json', '--data-dir', dir('l'), '--name', 'l', '--transport', 'libp2p', '--listen', `/ip4/127.0.0.1/tcp/${pl as number}`],
    ]
    for (const args of inits) {
      const r = await cli(args)
      expect(r.code, r.stderr).toBe(0)
    }
    const m = await startNode(dir('m'), [], running)
    const tcpAddr = m.started.addrs.find((a) => a.startsWith('tcp://'))
    const p2pAddr = m.started.addrs.find((a) => a.startsWith('libp2p://'))
    expect(tcpAddr).toBe(`tcp://127.0.0.1:${pm as number}/${m.started.did}`)
    expect(p2pAddr).toMatch(new RegExp(`^libp2p:///ip4/127\\.0\\.0\\.1/tcp/${pm2 as number}/p2p/12D3KooW`))
    await startNode(dir('t'), [], running)
    await startNode(dir('l'), [], running)
    for (const [n, addr] of [['t', tcpAddr], ['l', p2pAddr]] as const) {
      const c = await cli(['connect', '--json', '--data-dir', dir(n), addr as string])
      expect(c.code, c.stderr).toBe(0)
      expect(json(c)).toMatchObject({ did: m.started.did, authority: 'm.mesh.kai' })
      const t = await cli(['task', '--json', '--data-dir', dir(n), 'klp://m.mesh.kai/agents/math', '6 * 7'])
      expect(t.code, t.stderr).toBe(0)
      expect(json(t)).toMatchObject({ result: { value: 42 } })
    }
    const peers = json<Array<{ did: string; connected: boolean }>>(await cli(['peers', '--json', '--data-dir', dir('m')]))
    expect(peers.filter((p) => p.connected)).toHaveLength(2)
  }, 90_000)
})
