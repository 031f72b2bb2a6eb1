/**
 * The Prometheus metrics and `kos-mesh status` lines of the node's agent migration and vector
 * services: present (strictly parsed) when the node runs the service, absent when it does not, and
 * moving with what the nodes do (a MOVE committed, a second one aborted, a BACKUP refused by a
 * node that is no archive; entries added, pushed to a peer, a sync completed).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMemoryNetwork } from '@kos-mesh/transport-memory'
import { runCli } from '../src/cli-app.js'
import { migrationStatusLine, vectorsStatusLine } from '../src/cli-status.js'
import { startControlServer, writeControlFiles } from '../src/control.js'
import { createNode, memory, type KosMeshNode } from '../src/index.js'
import type { NodeAgentMigration } from '../src/node-migration.js'
import type { NodeVectors } from '../src/node-vectors.js'
import { parsePrometheus, sampleValue, type ParsedFamily } from './prometheus-parser.js'

const COUNTER = 'function handle(input, state) { const n = (state.n || 0) + 1; return { output: { n, input }, state: { n } } }'
const PERMISSIONS = { capabilities: [], required: [], tools: [], agents: [], memory_bytes: 1 << 20, cpu_budget: 100_000 }

function metrics(n: KosMeshNode): Map<string, ParsedFamily> {
  return parsePrometheus(n.metricsText())
}
function value(m: Map<string, ParsedFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  return sampleValue(m, name, labels)
}

describe('agent migration metrics', () => {
  const network = createMemoryNetwork()
  let a: KosMeshNode
  let b: KosMeshNode
  beforeAll(async () => {
    a = createNode({ authority: 'ma.mesh.kai', transports: [memory({ network })], listen: ['memory://m-a'] })
    b = createNode({ authority: 'mb.mesh.kai', transports: [memory({ network })], listen: ['memory://m-b'] })
    await Promise.all([a.start(), b.start()])
    await a.connect('memory://m-b')
  }, 30_000)
  afterAll(async () => {
    await Promise.allSettled([a?.stop(), b?.stop()])
  })

  it('start at zero for every type, then count a committed MOVE, an aborted one and a refused BACKUP', async () => {
    let m = metrics(a)
    for (const type of ['move', 'copy', 'clone', 'backup', 'restore']) {
      expect(value(m, 'kos_mesh_agent_migrations_started_total', { type })).toBe(0)
      expect(value(m, 'kos_mesh_agent_migrations_committed_total', { type })).toBe(0)
    }
    expect(m.get('kos_mesh_agent_migrations_started_total')?.type).toBe('counter')
    expect(m.get('kos_mesh_agent_migrations_in_progress')?.type).toBe('gauge')
    expect(value(m, 'kos_mesh_agent_migrations_in_progress')).toBe(0)
    expect(value(m, 'kos_mesh_agents', { status: 'active' })).toBe(0)

    const ma = a.service<NodeAgentMigration>('migration')
    await ma.deploy({ agent_id: 'counter', name: 'counter', code: COUNTER, capabilities: ['counter'], permissions: PERMISSIONS })
    expect(value(metrics(a), 'kos_mesh_agents', { status: 'active' })).toBe(1)

    expect((await ma.migrate('counter', { type: 'move', to: b.did })).status).toBe('completed')
    // the same agent again: A may not act for it any more (fails on A, nothing sent)
    await expect(ma.migrate('counter', { type: 'move', to: b.did })).rejects.toMatchObject({ name: 'FencedAgentError' })
    // B is no archive node: it refuses a backup
    await ma.deploy({ agent_id: 'keeper', name: 'keeper', code: COUNTER, capabilities: ['keeper'], permissions: PERMISSIONS })
    await expect(ma.migrate('keeper', { type: 'backup', to: b.did })).rejects.toMatchObject({ name: 'MigrationRefusedError', reason: 'type_not_accepted' })

    m = metrics(a)
    expect(value(m, 'kos_mesh_agent_migrations_started_total', { type: 'move' })).toBe(2)
    expect(value(m, 'kos_mesh_agent_migrations_committed_total', { type: 'move' })).toBe(1)
    expect(value(m, 'kos_mesh_agent_migrations_aborted_total', { type: 'move', outcome: 'failed' })).toBe(1)
    expect(value(m, 'kos_mesh_agent_migrations_aborted_total', { type: 'move', outcome: 'cancelled' })).toBe(0)
    expect(value(m, 'kos_mesh_agent_migrations_started_total', { type: 'backup' })).toBe(1)
    expect(value(m, 'kos_mesh_agent_migrations_committed_total', { type: 'backup' })).toBe(0)
    expect(value(m, 'kos_mesh_agent_migrations_refused_total', { type: 'backup', reason: 'type_not_accepted' })).toBe(1)
    // a refusal is not also an abort
    expect(value(m, 'kos_mesh_agent_migrations_aborted_total', { type: 'backup', outcome: 'failed' })).toBe(0)
    expect(value(m, 'kos_mesh_agent_migrations_in_progress')).toBe(0)
    // A: counter gone (moved away), keeper live
    expect(value(m, 'kos_mesh_agents', { status: 'active' })).toBe(1)
    expect(value(m, 'kos_mesh_agents', { status: 'gone' })).toBe(1)

    // B: one bundle accepted, one refusal sent, the moved agent live there (as last listed)
    await b.service<NodeAgentMigration>('migration').list()
    const mb = metrics(b)
    expect(value(mb, 'kos_mesh_agent_migrations_received_total')).toBe(1)
    expect(value(mb, 'kos_mesh_agent_migration_refusals_sent_total', { reason: 'type_not_accepted' })).toBe(1)
    expect(value(mb, 'kos_mesh_agents', { status: 'active' })).toBe(1)
    expect(value(mb, 'kos_mesh_agent_migrations_started_total', { type: 'move' })).toBe(0)

    // the same counters in the status (and its human line)
    const st = a.status()
    expect(st.migration?.byType.move).toMatchObject({ started: 2, committed: 1, aborted: { failed: 1, cancelled: 0 } })
    expect(migrationStatusLine(st.migration!)).toBe('migration:  2 agents known (1 live), 0 running; 3 started, 1 committed, 1 aborted, 1 refused; 0 received')
  }, 60_000)

  it('has no migration metrics, and no status line, on a node without the service', async () => {
    const off = createNode({ authority: 'moff.mesh.kai', transports: [memory({ network })], listen: ['memory://m-off'], migration: false })
    await off.start()
    try {
      const m = metrics(off)
      expect([...m.keys()].filter((k) => k.startsWith('kos_mesh_agent'))).toEqual([])
      expect(off.status().migration).toBeUndefined()
      // nor vector metrics: vectors are off by default
      expect([...m.keys()].filter((k) => k.startsWith('kos_mesh_vector'))).toEqual([])
      expect(off.status().vectors).toBeUndefined()
    } finally {
      await off.stop()
    }
  })
})

describe('vector metrics', () => {
  const network = createMemoryNetwork()
  let x: KosMeshNode
  let y: KosMeshNode
  beforeAll(async () => {
    const mk = (name: string): KosMeshNode => createNode({ authority: `${name}.mesh.kai`, transports: [memory({ network })], listen: [`memory://${name}`], vectors: { syncIntervalMs: 0, placement: false } })
    ;[x, y] = [mk('vmx'), mk('vmy')]
    await Promise.all([x.start(), y.start()])
    await x.connect('memory://vmy')
    await x.trust(y.did, 8)
    await y.trust(x.did, 8)
  }, 30_000)
  afterAll(async () => {
    await Promise.allSettled([x?.stop(), y?.stop()])
  })

  it('count collections, entries held, entries received from a peer and syncs by outcome', async () => {
    let m = metrics(x)
    expect(value(m, 'kos_mesh_vector_collections')).toBe(0)
    expect(m.get('kos_mesh_vector_entries')?.samples).toEqual([])
    for (const outcome of ['completed', 'partial', 'failed']) expect(value(m, 'kos_mesh_vector_syncs_total', { outcome })).toBe(0)
    expect(value(m, 'kos_mesh_vector_entries_received_total')).toBe(0)
    expect(value(m, 'kos_mesh_vector_entries_rejected_total')).toBe(0)

    const [vx, vy] = [x.service<NodeVectors>('vectors'), y.service<NodeVectors>('vectors')]
    const config = { name: 'mc', dimensions: 2 }
    await vy.create(config)
    await vx.create(config)
    await vx.add('mc', Array.from({ length: 6 }, (_, i) => ({ id: `e${i}`, vector: [Math.cos(i), Math.sin(i)] })))
    await vx.status()
    m = metrics(x)
    expect(value(m, 'kos_mesh_vector_collections')).toBe(1)
    expect(value(m, 'kos_mesh_vector_entries', { collection: 'mc' })).toBe(6)

    // y syncs its shard with x: it ends with every entry, however many it had from x's pushes
    const s = await vy.sync({ collections: ['mc'] })
    expect(s.status).toBe('completed')
    await vy.status()
    const my = metrics(y)
    expect(value(my, 'kos_mesh_vector_entries', { collection: 'mc' })).toBe(6)
    expect(value(my, 'kos_mesh_vector_syncs_total', { outcome: 'completed' })).toBe(1)
    expect(value(my, 'kos_mesh_vector_syncs_running')).toBe(0)
    expect(value(my, 'kos_mesh_vector_entries_received_total')).toBeGreaterThanOrEqual(6)
    expect(value(my, 'kos_mesh_vector_entries_rejected_total')).toBe(0)
    // x served y's requests
    expect(value(metrics(x), 'kos_mesh_vector_requests_total')).toBeGreaterThan(0)
    expect(value(metrics(x), 'kos_mesh_vector_syncs_total', { outcome: 'completed' })).toBe(0)

    const st = y.status()
    expect(st.vectors).toMatchObject({ collections: 1, entries: { mc: 6 }, syncs: { completed: 1, partial: 0, failed: 0 } })
    expect(vectorsStatusLine(st.vectors!)).toMatch(/^vectors: {4}1 collection, 6 entries held, 0 syncs running; 1 sync ended \(1 completed, 0 partial, 0 failed\); \d+ entries received, 0 rejected$/)
  }, 60_000)

  it('kos-mesh status prints the migration and vectors lines (and --json the counters)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-svc-metrics-'))
    const server = await startControlServer({ node: y, dashboard: false })
    try {
      const st = y.status()
      await writeControlFiles(dir, { pid: process.pid, host: '127.0.0.1', port: server.port, did: st.did, authority: st.authority, addrs: st.addrs, startedAt: 0 }, server.token)
      const run = async (args: string[]): Promise<{ code: number; out: string }> => {
        let out = ''
        const code = await runCli([...args, '--data-dir', dir], { stdout: (s) => (out += s), stderr: () => {}, env: {} })
        return { code, out }
      }
      const human = await run(['status'])
      expect(human.code).toBe(0)
      const lines = human.out.split('\n')
      expect(lines).toContain('migration:  0 agents known (0 live), 0 running; 0 started, 0 committed, 0 aborted, 0 refused; 0 received')
      expect(lines.filter((l) => l.startsWith('vectors:    1 collection, 6 entries held, 0 syncs running; 1 sync ended (1 completed'))).toHaveLength(1)
      // before the log and agents lines
      expect(lines.findIndex((l) => l.startsWith('vectors:'))).toBeLessThan(lines.indexOf('agents:'))
      const json = await run(['status', '--json'])
      expect(JSON.parse(json.out)).toMatchObject({ migration: { inProgress: 0, byType: { move: { started: 0 } } }, vectors: { collections: 1, entries: { mc: 6 }, syncs: { completed: 1 } } })
    } finally {
      await server.close()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
