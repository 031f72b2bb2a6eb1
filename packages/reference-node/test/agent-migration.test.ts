/**
 * Agent migration in the reference node (in process, memory transport): the `migration` service
 * wired with the node's store, registry and trust engine, driven through the control API's agent
 * endpoints: deploy, MOVE (the agent answers tasks on the target, is fenced on the source, keeps
 * its state across the target's restart), COPY by an exported file, a large agent moved by bulk
 * transfer with progress, the dashboard's `agents` section, and refusals as typed answers.
 */
import { request } from 'node:http'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NodeType } from '@kos-mesh/interface'
import { createMemoryNetwork } from '@kos-mesh/transport-memory'
import { startControlServer, writeControlFiles, type ControlServer } from '../src/control.js'
import { runCli } from '../src/cli-app.js'
import { progressBar, progressLine } from '../src/cli-agent.js'
import type { Ctx, Control } from '../src/cli-common.js'
import { createNode, mathAgent, memory, type KosMeshNode } from '../src/index.js'
import type { NodeAgentMigration } from '../src/node-migration.js'
import { agentsSection, type AgentsPanel } from '../src/dashboard/agents.js'

const COUNTER = 'function handle(input, state) { const n = (state.n || 0) + 1; return { output: { n, input }, state: { n } } }'

function call(server: ControlServer, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const data = body === undefined ? undefined : JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, method, path, headers: { authorization: `Bearer ${server.token}`, ...(data === undefined ? {} : { 'content-type': 'application/json' }) } }, (res) => {
      let text = ''
      res.on('data', (d: Buffer) => (text += d.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text.length > 0 ? JSON.parse(text) : undefined }))
    })
    req.on('error', reject)
    req.end(data)
  })
}

const network = createMemoryNetwork()
let a: KosMeshNode
let b: KosMeshNode
let sa: ControlServer
let sb: ControlServer

beforeAll(async () => {
  a = createNode({ authority: 'a.mesh.kai', transports: [memory({ network })], listen: ['memory://ag-a'] })
  b = createNode({ authority: 'b.mesh.kai', transports: [memory({ network })], listen: ['memory://ag-b'], agents: [mathAgent()] })
  await Promise.all([a.start(), b.start()])
  await a.connect('memory://ag-b')
  sa = await startControlServer({ node: a, dashboard: { sampleIntervalMs: 1000 } })
  sb = await startControlServer({ node: b, dashboard: false })
}, 30_000)

afterAll(async () => {
  await sa?.close()
  await sb?.close()
  await Promise.allSettled([a?.stop(), b?.stop()])
})

describe('agents on the reference node', () => {
  it('deploys an agent, MOVEs it to B where it answers tasks with its state, fenced on A, alive after B restarts', async () => {
    const d = await call(sa, 'POST', '/v1/agents/deploy', { name: 'counter', code: COUNTER, probes: [0] })
    expect(d.status, JSON.stringify(d.json)).toBe(200)
    expect(d.json.agent).toMatchObject({ agent_id: 'counter', name: 'counter', owner: a.did, epoch: 0, status: 'active', address: 'klp://a.mesh.kai/agents/counter' })
    // it answers tasks here (through the node's registry), its state advancing
    expect((await b.task('klp://a.mesh.kai/agents/counter', { capability: 'counter', input: 'x' })).result).toMatchObject({ n: 1, input: 'x' })
    const listed = await call(sa, 'GET', '/v1/agents')
    expect(listed.json.agents).toEqual([expect.objectContaining({ agent_id: 'counter', status: 'active', owner: a.did })])

    const m = await call(sa, 'POST', '/v1/agents/migrate', { agent: 'counter', type: 'move', to: b.did })
    expect(m.status, JSON.stringify(m.json)).toBe(200)
    expect(m.json.migration).toMatchObject({ agent_id: 'counter', status: 'completed', new_agent_instance: { agent_id: 'counter', epoch: 1, status: 'active', address: 'klp://b.mesh.kai/agents/counter' } })
    // live on B, with the state it had on A
    expect((await a.task('klp://b.mesh.kai/agents/counter', { capability: 'counter', input: 'y' })).result).toMatchObject({ n: 2, input: 'y' })
    // gone on A: listed as gone, no longer answering
    expect((await call(sa, 'GET', '/v1/agents')).json.agents).toEqual([expect.objectContaining({ agent_id: 'counter', status: 'gone', epoch: 1 })])
    expect(a.agents.get('counter')).toBeUndefined()
    await expect(b.task('klp://a.mesh.kai/agents/counter', { capability: 'counter', input: 'z' })).rejects.toMatchObject({ reason: 'no_eligible_agents' })
    // a second MOVE from A is refused here: A may never act for it again
    const again = await call(sa, 'POST', '/v1/agents/migrate', { agent: 'counter', type: 'move', to: b.did })
    expect(again.status).toBe(422)
    expect(again.json.error.code).toBe('ERR_FENCED_AGENT')
    // the outcomes are recorded
    const ms = await call(sa, 'GET', '/v1/agents/migrations')
    // the newest first: the refused second MOVE, then the MOVE
    expect(ms.json.recent[0]).toMatchObject({ agent_id: 'counter', type: 'move', status: 'failed', error: { name: 'FencedAgentError' } })
    expect(ms.json.recent[1]).toMatchObject({ agent_id: 'counter', type: 'move', to: b.did, status: 'completed', new_agent_id: 'counter' })
    expect(ms.json.migrations).toEqual([])
    expect(ms.json.stats).toMatchObject({ started: 2, completed: 1, failed: 1 })

    // B restarts (same store): the agent is back, answering with its state
    await sb.close()
    await b.stop()
    await b.start()
    sb = await startControlServer({ node: b, dashboard: false })
    await a.connect('memory://ag-b')
    expect((await call(sb, 'GET', '/v1/agents')).json.agents).toEqual([expect.objectContaining({ agent_id: 'counter', status: 'active', epoch: 1, owner: a.did })])
    expect((await a.task('klp://b.mesh.kai/agents/counter', { capability: 'counter', input: 'w' })).result).toMatchObject({ n: 3, input: 'w' })
  }, 60_000)

  it('shows the agents and the outcomes in the dashboard snapshot', async () => {
    const snap = sa.dashboard!.snapshot()
    expect(snap.sections).toContain('agents')
    const panel = snap.extra.agents as AgentsPanel
    expect(panel.agents).toEqual([expect.objectContaining({ agent_id: 'counter', status: 'gone', owner: a.did })])
    expect(panel.recent.map((r) => r.status)).toEqual(['failed', 'completed'])
    expect(panel.stats).toMatchObject({ started: 2, completed: 1, failed: 1 })
  })

  it('COPYs an agent through an exported file that only the target can import', async () => {
    const d = await call(sa, 'POST', '/v1/agents/deploy', { name: 'notes', id: 'notes-1', code: COUNTER, data: { n: 10 }, capabilities: ['notes', 'count'] })
    expect(d.status, JSON.stringify(d.json)).toBe(200)
    const e = await call(sa, 'POST', '/v1/agents/export', { agent: 'notes-1', type: 'copy', to: b.did, newId: 'notes-2' })
    expect(e.status, JSON.stringify(e.json)).toBe(200)
    expect(e.json.export).toMatchObject({ agent_id: 'notes-1', type: 'copy', to: b.did })
    expect(e.json.export.bytes).toBe(Buffer.from(e.json.export.file, 'base64').length)
    // A cannot import what is addressed to B
    const wrong = await call(sa, 'POST', '/v1/agents/import', { file: e.json.export.file })
    expect(wrong.status).toBe(422)
    // a flipped byte is refused by B
    const bytes = Buffer.from(e.json.export.file, 'base64')
    const at = bytes.length - 40
    bytes[at] = (bytes[at] as number) ^ 1
    const tampered = await call(sb, 'POST', '/v1/agents/import', { file: bytes.toString('base64') })
    expect(tampered.status).toBe(422)
    const i = await call(sb, 'POST', '/v1/agents/import', { file: e.json.export.file })
    expect(i.status, JSON.stringify(i.json)).toBe(200)
    expect(i.json.agent).toMatchObject({ agent_id: 'notes-2', name: 'notes', status: 'active', lineage: { parent: 'notes-1', kind: 'copy' } })
    // both live: the copy on B continues from the state it was copied with
    expect((await a.task('klp://b.mesh.kai/agents/notes', { capability: 'count', input: 1 })).result).toMatchObject({ n: 11 })
    expect((await b.task('klp://a.mesh.kai/agents/notes', { capability: 'count', input: 1 })).result).toMatchObject({ n: 11 })
  }, 60_000)

  it('moves a large agent by bulk transfer, reporting progress', async () => {
    const m = a.service<NodeAgentMigration>('migration')
    const blob = new Uint8Array(2 * 1024 * 1024).map((_, i) => i % 251)
    await m.deploy({ agent_id: 'big', name: 'big', code: COUNTER, capabilities: ['big'], permissions: { capabilities: [], required: [], tools: [], agents: [], memory_bytes: 1 << 20, cpu_budget: 100_000 }, memory: [{ key: 'blob', value: blob }] })
    const seen: Array<{ bytes: number; total: number }> = []
    // what the panel and `GET /v1/agents/migrations` (the CLI's progress bar) show at each progress event
    const shown: Array<{ bytes: number; total: number } | undefined> = []
    const r = await m.migrate('big', {
      type: 'move',
      to: b.did,
      onProgress: (p) => {
        seen.push({ bytes: p.bytes, total: p.total })
        const v = m.view().migrations.find((x) => x.agent_id === 'big')
        shown.push(v === undefined ? undefined : { bytes: v.bytes, total: v.total })
      },
    })
    expect(r.status).toBe('completed')
    expect(seen.length).toBeGreaterThan(0)
    expect(shown).toEqual(seen)
    expect(m.view().migrations).toEqual([])
    const last = seen[seen.length - 1]!
    expect(last.total).toBeGreaterThan(blob.length)
    expect(last.bytes).toBe(last.total)
    expect((await a.task('klp://b.mesh.kai/agents/big', { capability: 'big', input: null })).result).toMatchObject({ n: 1 })
  }, 60_000)

  it('answers bad requests with typed errors', async () => {
    expect((await call(sa, 'POST', '/v1/agents/deploy', { name: 'Bad Name', code: COUNTER })).json.error.code).toBe('ERR_INVALID_PARAMETERS')
    expect((await call(sa, 'POST', '/v1/agents/deploy', { name: 'x', code: COUNTER, grants: ['network'] })).status).toBe(400)
    expect((await call(sa, 'POST', '/v1/agents/migrate', { agent: 'counter', type: 'teleport', to: b.did })).status).toBe(400)
    expect((await call(sa, 'POST', '/v1/agents/migrate', { agent: 'counter', type: 'move', to: 'did:key:nope' })).json.error.code).toBe('ERR_INVALID_DID')
    const unknown = await call(sa, 'POST', '/v1/agents/migrate', { agent: 'nobody', type: 'move', to: b.did })
    expect(unknown.status).toBe(422)
    expect(unknown.json.error.code).toBe('ERR_AGENT_STATE')
    expect((await call(sa, 'POST', '/v1/agents/export', { agent: 'notes-1', type: 'move', to: b.did })).status).toBe(400)
    expect((await call(sa, 'POST', '/v1/agents/import', { file: 'not base64!' })).status).toBe(400)
    // a name taken by a built-in agent of the node
    const builtin = await call(sb, 'POST', '/v1/agents/deploy', { name: 'math', code: COUNTER })
    expect(builtin.status).toBe(422)
    expect(builtin.json.error.code).toBe('ERR_AGENT_STATE')
    // a name taken by a live agent here
    expect((await call(sa, 'POST', '/v1/agents/deploy', { name: 'notes', id: 'notes-9', code: COUNTER })).status).toBe(422)
  })

  it('BACKs UP an agent to an archive node, never live there, and restores it to another node', async () => {
    const c = createNode({ authority: 'c.mesh.kai', transports: [memory({ network })], listen: ['memory://ag-c'], nodeType: NodeType.ARCHIVE_NODE })
    await c.start()
    const sc = await startControlServer({ node: c, dashboard: false })
    try {
      await a.connect('memory://ag-c')
      await c.connect('memory://ag-b')
      expect((await call(sa, 'POST', '/v1/agents/deploy', { name: 'keeper', code: COUNTER, data: { n: 5 } })).status).toBe(200)
      const failedBefore = a.reputation(b.did).evidence.reduce((n, e) => n + Number((e.counts as Record<string, number> | undefined)?.task_failed ?? 0), 0)
      // B is no archive: it refuses a backup
      const refused = await call(sa, 'POST', '/v1/agents/migrate', { agent: 'keeper', type: 'backup', to: b.did })
      expect(refused.status).toBe(502)
      expect(refused.json.error).toMatchObject({ code: 'ERR_MIGRATION_REFUSED', reason: 'type_not_accepted' })
      // the trust engine heard the refusal (A's own observations of B)
      expect(a.reputation(b.did).evidence.reduce((n, e) => n + Number((e.counts as Record<string, number> | undefined)?.task_failed ?? 0), 0)).toBe(failedBefore + 1)
      const bk = await call(sa, 'POST', '/v1/agents/migrate', { agent: 'keeper', type: 'backup', to: c.did })
      expect(bk.status, JSON.stringify(bk.json)).toBe(200)
      expect(bk.json.migration.new_agent_instance).toMatchObject({ agent_id: 'keeper', status: 'archived' })
      expect((await call(sc, 'GET', '/v1/agents')).json.agents).toEqual([expect.objectContaining({ agent_id: 'keeper', status: 'archived' })])
      expect(c.agents.get('keeper')).toBeUndefined()
      // A's own agent is still live (a backup leaves the source as it was)
      expect((await b.task('klp://a.mesh.kai/agents/keeper', { capability: 'keeper', input: 0 })).result).toMatchObject({ n: 6 })
      // the archive makes the backup live on B (epoch + 1)
      const rs = await call(sc, 'POST', '/v1/agents/restore', { agent: 'keeper', to: b.did })
      expect(rs.status, JSON.stringify(rs.json)).toBe(200)
      expect(rs.json.migration.new_agent_instance).toMatchObject({ agent_id: 'keeper', epoch: 1, status: 'active', address: 'klp://b.mesh.kai/agents/keeper' })
      // the restored agent runs from the backed-up state
      expect((await a.task('klp://b.mesh.kai/agents/keeper', { capability: 'keeper', input: 0 })).result).toMatchObject({ n: 6 })
    } finally {
      await sc.close()
      await c.stop()
    }
  }, 60_000)

  it('kos-mesh agent: list, deploy and migrate --json through the control API; usage errors before any call', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-agent-cli-'))
    try {
      const s = a.status()
      await writeControlFiles(dir, { pid: process.pid, host: '127.0.0.1', port: sa.port, did: s.did, authority: s.authority, addrs: s.addrs, startedAt: 0 }, sa.token)
      const run = async (...args: string[]) => {
        let stdout = ''
        let stderr = ''
        const code = await runCli([...args, '--data-dir', dir], { stdout: (x) => void (stdout += x), stderr: (x) => void (stderr += x), env: {}, stderrIsTTY: true })
        return { code, stdout, stderr }
      }
      const file = join(dir, 'my agent.js')
      await writeFile(file, 'function handle(input, state) { return { output: input, state } }')
      // the file's name is no agent name: a usage error, nothing deployed
      const badName = await run('agent', 'deploy', file, '--json')
      expect(badName.code).toBe(2)
      expect(JSON.parse(badName.stdout)).toMatchObject({ exitCode: 2, error: { code: 'ERR_USAGE' } })
      const dep = await run('agent', 'deploy', file, '--name', 'parrot', '--capability', 'parrot,repeat', '--json')
      expect(dep.code, dep.stderr).toBe(0)
      expect(JSON.parse(dep.stdout)).toMatchObject({ agent_id: 'parrot', status: 'active', owner: a.did })
      expect((await b.task('klp://a.mesh.kai', { capability: 'repeat', input: 'hi' })).result).toBe('hi')
      const human = await run('agent', 'list')
      expect(human.code).toBe(0)
      expect(human.stdout).toMatch(/^parrot +parrot +did:key:\S+ +0 +active +-$/m)
      const cp = await run('agent', 'migrate', 'parrot', '--type', 'copy', '--to', b.did, '--new-id', 'parrot-2', '--name', 'parrot2', '--json')
      expect(cp.code, cp.stderr).toBe(0)
      expect(cp.stdout.trim().split('\n')).toHaveLength(1)
      expect(JSON.parse(cp.stdout)).toMatchObject({ agent_id: 'parrot-2', status: 'completed', new_agent_instance: { agent_id: 'parrot-2', name: 'parrot2', lineage: { parent: 'parrot', kind: 'copy' } } })
      // with --json no progress bar is drawn, even on a terminal
      expect(cp.stderr).toBe('')
      for (const args of [['agent', 'teleport'], ['agent', 'migrate', 'parrot'], ['agent', 'migrate', 'parrot', '--to', 'did:key:nope'], ['agent', 'migrate', 'parrot', '--to', b.did, '--type', 'move', '--owner', b.did], ['agent', 'export', 'parrot', '--to', b.did], ['agent', 'import', join(dir, 'missing.kagent')], ['agent', 'list', '--to', b.did]]) {
        const r = await run(...args, '--json')
        expect(r.code, args.join(' ')).toBe(2)
      }
      // a refusal by the target: exit 4 with its reason (B runs no archive)
      const refused = await run('agent', 'migrate', 'parrot', '--type', 'backup', '--to', b.did, '--json')
      expect(refused.code).toBe(4)
      expect(JSON.parse(refused.stdout)).toMatchObject({ exitCode: 4, error: { code: 'ERR_MIGRATION_REFUSED', reason: 'type_not_accepted' } })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }, 60_000)

  it('redraws the progress bar on stderr from what the node reports, and ends its line', async () => {
    let stderr = ''
    const done = { value: false }
    const answers = [
      { migrations: [] },
      { migrations: [{ agent_id: 'other', to: b.did, bytes: 1, total: 2 }] },
      { migrations: [{ agent_id: 'big', to: b.did, bytes: 256 * 1024, total: 1024 * 1024 }] },
      { migrations: [{ agent_id: 'big', to: b.did, bytes: 1024 * 1024, total: 1024 * 1024 }] },
    ]
    let calls = 0
    // the migration ends after the node reported it four times
    const control = {
      info: {},
      call: async () => {
        const r = answers[calls++]
        if (r !== undefined) return r
        done.value = true
        return { migrations: [] }
      },
    } as unknown as Control
    const ctx = { command: 'agent', values: {}, positionals: [], dataDir: '', json: false, io: { stdout: () => {}, stderr: (x: string) => void (stderr += x), env: {} }, clock: { now: () => 0, sleep: async () => {}, setTimeout: () => 0, clearTimeout: () => {} } } as unknown as Ctx
    await progressBar(ctx, control, 'big', b.did, done)
    expect(calls).toBe(5)
    expect(stderr).toBe(`\r${progressLine(256 * 1024, 1024 * 1024)}  \r${progressLine(1024 * 1024, 1024 * 1024)}  \n`)
  })

  it('a node without the service (migration: false): 503 ERR_SERVICE_OFF, no agents panel', async () => {
    const off = createNode({ authority: 'off.mesh.kai', transports: [memory({ network })], listen: ['memory://ag-off'], migration: false })
    await off.start()
    const so = await startControlServer({ node: off, dashboard: { sampleIntervalMs: 1000 } })
    try {
      const r = await call(so, 'GET', '/v1/agents')
      expect(r.status).toBe(503)
      expect(r.json.error.code).toBe('ERR_SERVICE_OFF')
      expect(so.dashboard!.snapshot().sections).not.toContain('agents')
      expect(agentsSection(off).snapshot()).toBeUndefined()
      // a node with the service but no agent reports no panel either
      const fresh = createNode({ authority: 'fresh.mesh.kai', transports: [memory({ network })], listen: ['memory://ag-fresh'] })
      await fresh.start()
      expect(agentsSection(fresh).snapshot()).toBeUndefined()
      await fresh.stop()
    } finally {
      await so.close()
      await off.stop()
    }
  })

  it('draws the progress bar from bytes sent of the total', () => {
    expect(progressLine(0, 1024, 10)).toBe('[----------]   0%  0 B of 1.0 KiB')
    expect(progressLine(5 * 1024 * 1024, 10 * 1024 * 1024, 10)).toBe('[#####-----]  50%  5.0 MiB of 10.0 MiB')
    expect(progressLine(10, 10, 4)).toBe('[####] 100%  10 B of 10 B')
  })
})

