/**
 * End-to-end: real `kos-mesh` processes (`node --import tsx src/cli.ts`, workspace packages from
 * their src/ through tsconfig.dev.json, so no build is needed) on loopback TCP.
 */
import { mkdtemp, rm, stat, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateIdentity } from '@kos-mesh/did-security'
import { cli as run, json, startNode as start, stopAll, type Result, type Running } from './e2e-helpers.js'

const running: Running[] = []
const cli = (args: string[], stdin?: string): Promise<Result> => run(args, stdin === undefined ? {} : { stdin })
const startNode = (dataDir: string, extra: string[] = []): Promise<Running> => start(dataDir, extra, running)

let root: string
const dir = (name: string): string => join(root, name)
let seed: Running
let worker: Running
let client: Running

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kos-e2e-'))
  const inits = await Promise.all([
    // port 0: tests never take the default port (4747)
    cli(['init', '--data-dir', dir('seed'), '--name', 'seed', '--agents', 'echo', '--listen', 'tcp://127.0.0.1:0', '--json']),
    // a closed worker: only DIDs trusted at >= 5 may run tasks there
    cli(['init', '--data-dir', dir('worker'), '--name', 'worker', '--type', 'ArchiveNode', '--task-min-trust', '5', '--listen', 'tcp://127.0.0.1:0', '--json']),
    cli(['init', '--data-dir', dir('client'), '--name', 'client', '--agents', '', '--listen', 'tcp://127.0.0.1:0', '--json']),
  ])
  for (const r of inits) expect(r.code, r.stderr).toBe(0)
  seed = await startNode(dir('seed'))
  const seedAddr = seed.started.addrs[0] as string
  // one after the other, so the seed's peer table already holds the worker's record when the client bootstraps
  worker = await startNode(dir('worker'), ['--seed', seedAddr])
  client = await startNode(dir('client'), ['--seed', seedAddr])
}, 90_000)

afterAll(async () => {
  await stopAll(running)
  if (root !== undefined) await rm(root, { recursive: true, force: true })
}, 30_000)

describe('kos-mesh end to end (3 processes on loopback)', () => {
  it('init wrote the data dir with private files', async () => {
    for (const f of ['config.json', 'keystore.json', 'passphrase', 'control.json', 'control.token']) {
      const s = await stat(join(dir('worker'), f))
      expect((s.mode & 0o777).toString(8), f).toBe('600')
    }
    expect(((await stat(dir('worker'))).mode & 0o777).toString(8)).toBe('700')
    const token = (await readFile(join(dir('worker'), 'control.token'), 'utf8')).trim()
    expect(token.length).toBeGreaterThanOrEqual(40)
  })

  it('start bootstrapped the worker and the client from the seed', () => {
    expect(seed.started.authority).toBe('seed.mesh.kai')
    expect(worker.started.addrs[0]).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+\/did:key:z6Mk/)
    expect(worker.started.did).not.toBe(client.started.did)
    expect(worker.started.policy).toEqual({ task_min_trust: 5 })
    expect(client.started.policy).toEqual({ task_min_trust: 0 })
  })

  it('peers: the client knows the worker through the seed peer table', async () => {
    const r = await cli(['peers', '--json', '--data-dir', dir('client')])
    expect(r.code, r.stderr).toBe(0)
    const peers = json<Array<{ did: string; connected: boolean; node_type?: string; authority?: string }>>(r)
    expect(peers.find((p) => p.did === seed.started.did)?.connected).toBe(true)
    const w = peers.find((p) => p.did === worker.started.did)
    expect(w).toBeDefined()
    expect(w?.node_type).toBe('ArchiveNode')
    const human = await cli(['peers', '--data-dir', dir('client')])
    expect(human.stdout).toContain(worker.started.did)
  })

  it('task: the closed worker rejects the untrusted client (exit 4, insufficient_trust) until it trusts it', async () => {
    const denied = await cli(['task', '--json', '--data-dir', dir('client'), 'klp://worker.mesh.kai/agents/math', '1+1'])
    expect(denied.code, denied.stderr).toBe(4)
    expect(json(denied)).toMatchObject({ exitCode: 4, error: { reason: 'insufficient_trust' } })
    const t = await cli(['trust', '--json', '--data-dir', dir('worker'), client.started.did, '--level', '7'])
    expect(t.code, t.stderr).toBe(0)
    expect(json(t)).toMatchObject({ did: client.started.did, trust_score: 7 })
    const ok = await cli(['task', '--json', '--data-dir', dir('client'), 'klp://worker.mesh.kai/agents/math', '1+1'])
    expect(ok.code, ok.stderr).toBe(0)
    expect(json(ok)).toMatchObject({ status: 'completed', result: { value: 2 } })
  })

  it('task: answered by a built-in agent on another node (by address and by DID)', async () => {
    const byDid = await cli(['task', '--json', '--data-dir', dir('client'), worker.started.did, '--capability', 'math', '2 * 21'])
    expect(byDid.code, byDid.stderr).toBe(0)
    expect(json(byDid)).toMatchObject({ status: 'completed', agent: 'klp://worker.mesh.kai/agents/math', result: { value: 42 } })
    const r = await cli(['task', '--json', '--data-dir', dir('client'), 'klp://worker.mesh.kai/agents/math', '(1 + 2) * 2^3 - sqrt(16)'])
    expect(r.code, r.stderr).toBe(0)
    expect(json(r)).toMatchObject({ status: 'completed', agent: 'klp://worker.mesh.kai/agents/math', result: { value: 20 } })
    // the input from standard input
    const t = await cli(['task', '--data-dir', dir('client'), 'klp://worker.mesh.kai', '--capability', 'summarize', '-'], 'Agents answer tasks. Agents move between nodes.\n')
    expect(t.code, t.stderr).toBe(0)
    expect(JSON.parse(t.stdout)).toMatchObject({ keywords: expect.arrayContaining(['agents']) })
  })

  it('task: rejected with no_eligible_agents (exit 4)', async () => {
    const r = await cli(['task', '--json', '--data-dir', dir('client'), 'klp://seed.mesh.kai/agents/math', '1+1'])
    expect(r.code).toBe(4)
    expect(json(r)).toMatchObject({ exitCode: 4, error: { reason: 'no_eligible_agents' } })
    const human = await cli(['task', '--data-dir', dir('client'), 'klp://seed.mesh.kai', '--capability', 'translate', 'hola'])
    expect(human.code).toBe(4)
    expect(human.stderr).toContain('no_eligible_agents')
  })

  it('connect and trust (by agent address, resolved to the DID)', async () => {
    const c = await cli(['connect', '--json', '--data-dir', dir('client'), worker.started.addrs[0] as string])
    expect(c.code, c.stderr).toBe(0)
    expect(json(c)).toMatchObject({ did: worker.started.did })
    const t = await cli(['trust', '--json', '--data-dir', dir('worker'), 'klp://client.mesh.kai/agents/any', '--level', '7'])
    expect(t.code, t.stderr).toBe(0)
    expect(json(t)).toMatchObject({ did: client.started.did, trust_score: 7 })
    const byDid = await cli(['trust', '--data-dir', dir('worker'), seed.started.did])
    expect(byDid.code, byDid.stderr).toBe(0)
    expect(byDid.stdout).toContain('level 5')
    const unknown = await cli(['trust', '--json', '--data-dir', dir('worker'), 'klp://nobody.mesh.kai'])
    expect(unknown.code).toBe(2)
    expect(json(unknown)).toMatchObject({ exitCode: 2, error: { code: 'ERR_UNPINNED_AUTHORITY' } })
  })

  it('connect to a dead address fails with exit 5; to a node that proves another DID with exit 7', async () => {
    const r = await cli(['connect', '--data-dir', dir('client'), '--timeout', '3000', 'tcp://127.0.0.1:1'])
    expect(r.code, r.stderr).toBe(5)
    const base = (worker.started.addrs[0] as string).replace(/\/did:.*$/, '')
    const other = generateIdentity().did
    const m = await cli(['connect', '--json', '--data-dir', dir('client'), `${base}/${other}`])
    expect(m.code, m.stderr).toBe(7)
    expect(json(m)).toMatchObject({ exitCode: 7, error: { code: 'ERR_PEER_MISMATCH', message: expect.stringContaining(other) } })
  })

  it('config export prints the validated config', async () => {
    const r = await cli(['config', 'export', '--data-dir', dir('worker')])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({
      version: 1,
      node: { name: 'worker', authority: 'worker.mesh.kai', type: 'ArchiveNode' },
      agents: ['echo', 'text-stats', 'math'],
      policy: { task_min_trust: 5 },
    })
  })

  it('usage errors exit 2; no running node exits 3; no config exits 6', async () => {
    const idle = dir('idle')
    const [unknownCmd, missingInput, unknownOption, initIdle, noConfig, help] = await Promise.all([
      cli(['frobnicate']),
      cli(['task', '--data-dir', dir('client'), 'klp://worker.mesh.kai/agents/math']),
      cli(['peers', '--bogus', '--data-dir', dir('client')]),
      cli(['init', '--data-dir', idle, '--name', 'idle']),
      cli(['start', '--data-dir', dir('nothing-here')]),
      cli(['trust', '--help']),
    ])
    expect(unknownCmd.code).toBe(2)
    expect(missingInput.code).toBe(2)
    expect(unknownOption.code).toBe(2)
    expect(unknownOption.stderr).toContain('--bogus')
    expect(initIdle.code, initIdle.stderr).toBe(0)
    expect(noConfig.code).toBe(6)
    expect(noConfig.stderr).toContain('kos-mesh init')
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/^Usage: kos-mesh trust/)
    const notRunning = await cli(['peers', '--data-dir', idle])
    expect(notRunning.code).toBe(3)
    expect(notRunning.stderr).toContain('kos-mesh start')
  })

  it('stop returns once the node has exited, cleanly, and removed its control files', async () => {
    const pid = client.started.pid
    const r = await cli(['stop', '--json', '--data-dir', dir('client')])
    expect(r.code, r.stderr).toBe(0)
    expect(json(r)).toMatchObject({ stopped: true, pid })
    // gone when stop returned: no such process
    expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }))
    expect(await client.exited).toBe(0)
    await expect(stat(join(dir('client'), 'control.json'))).rejects.toMatchObject({ code: 'ENOENT' })
    expect((await cli(['status', '--data-dir', dir('client')])).code).toBe(3)
  })
})
