/**
 * Issue 10, end to end with real processes: a three-node mesh (seed, worker, client) on fixed
 * loopback ports; the seed and the worker are killed (SIGKILL) and started again with no other
 * argument than their data dir, and the mesh forms again with no command given: the restarted nodes
 * redial the peers they knew (saved in db/), and the client, whose peers went away, redials them
 * when they come back. Every wait is bounded.
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
  root = await mkdtemp(join(tmpdir(), 'kos-restart-'))
})

afterAll(async () => {
  await stopAll(running)
  if (root !== undefined) await rm(root, { recursive: true, force: true })
}, 30_000)

const connectedOf = (name: string): Promise<string[]> => connectedDids(dir(name))

describe('a mesh that survives restarts (3 processes, SIGKILL)', () => {
  it('the seed and the worker are killed and restarted; the mesh reforms with no command given', async () => {
    const [pSeed, pWorker, pClient] = await freePorts(3)
    const inits = await Promise.all([
      cli(['init', '--json', '--data-dir', dir('seed'), '--name', 'seed', '--agents', 'echo', '--listen', `tcp://127.0.0.1:${pSeed}`]),
      cli(['init', '--json', '--data-dir', dir('worker'), '--name', 'worker', '--agents', 'math', '--listen', `tcp://127.0.0.1:${pWorker}`]),
      cli(['init', '--json', '--data-dir', dir('client'), '--name', 'client', '--agents', '', '--listen', `tcp://127.0.0.1:${pClient}`]),
    ])
    for (const r of inits) expect(r.code, r.stderr).toBe(0)
    const seed = await startNode(dir('seed'), [], running)
    const seedAddr = seed.started.addrs[0] as string
    expect(seedAddr).toBe(`tcp://127.0.0.1:${pSeed}/${seed.started.did}`)
    // the seed given to start is saved: the restarted worker needs no --seed
    const worker = await startNode(dir('worker'), ['--seed', seedAddr], running)
    expect(worker.started.saved).toEqual(['seeds'])
    const client = await startNode(dir('client'), ['--seed', seedAddr, '--log-level', 'info'], running)
    const [S, W, C] = [seed.started.did, worker.started.did, client.started.did]
    await eventually('the client connected to the seed and the worker', async () => {
      const c = await connectedOf('client')
      return c.includes(S) && c.includes(W)
    })
    await eventually('the seed and the worker saved their peers', async () => {
      const s = JSON.parse((await control(dir('seed'), 'GET', '/v1/status')).text) as { peersKnown: number }
      const w = JSON.parse((await control(dir('worker'), 'GET', '/v1/status')).text) as { peersKnown: number }
      return s.peersKnown === 2 && w.peersKnown === 2
    })

    // kill -9: no clean shutdown, control files left behind
    seed.child.kill('SIGKILL')
    worker.child.kill('SIGKILL')
    await Promise.all([seed.exited, worker.exited])
    await eventually('the client noticed that its peers are gone and redials them', async () => {
      const s = JSON.parse((await control(dir('client'), 'GET', '/v1/status')).text) as { peers: number; redial: { pending: number } }
      return s.peers === 0 && s.redial.pending === 2
    })
    const status = await cli(['status', '--data-dir', dir('client')])
    expect(status.stdout).toMatch(/peers: +0 connected, 2 known, redialing 2/)
    // and its log says why, without reading files by hand
    const logs = await cli(['logs', '--json', '--lines', '500', '--data-dir', dir('client')])
    const lines = json<{ lines: Array<{ msg: string; peer?: string; reason?: string; level: string }> }>(logs).lines
    // a killed peer: no close record (reset), or a socket error (closed); never a clean close
    for (const did of [S, W]) expect(lines.find((l) => l.msg === 'connection closed' && l.peer === did), did).toMatchObject({ reason: expect.stringMatching(/^connection_(reset|closed)$/) })
    expect(lines.find((l) => l.msg === 'no peers connected')).toMatchObject({ level: 'warn' })

    // started again with only their data dirs: same ports, same DIDs
    const [seed2, worker2] = await Promise.all([startNode(dir('seed'), [], running), startNode(dir('worker'), [], running)])
    expect(seed2.started.addrs[0]).toBe(seedAddr)
    expect(worker2.started.did).toBe(W)
    expect(seed2.started.peersKnown).toBe(2)
    await eventually('every node is connected to the two others', async () => {
      const [s, w, c] = await Promise.all([connectedOf('seed'), connectedOf('worker'), connectedOf('client')])
      return s.includes(W) && s.includes(C) && w.includes(S) && w.includes(C) && c.includes(S) && c.includes(W)
    })
    // and the mesh works: the client's task reaches the worker
    const t = await cli(['task', '--json', '--data-dir', dir('client'), 'klp://worker.mesh.kai/agents/math', '6 * 7'])
    expect(t.code, t.stderr).toBe(0)
    expect(json(t)).toMatchObject({ status: 'completed', result: { value: 42 } })
  }, 60_000)
})
