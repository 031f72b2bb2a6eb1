/**
 * Agent migration end to end, on real `kos-mesh` processes on loopback TCP: an agent deployed on
 * A (`kos-mesh agent deploy counter.js`) answers a task, `kos-mesh agent migrate counter --type
 * move --to <B>` moves it, it answers the next task on B with the state it had on A, it is gone on
 * A (listed `gone`, a second migrate refused), and it survives B's restart (stop, start, task).
 * A large agent (600 kB of state) then moves by bulk transfer. And a source killed by SIGKILL
 * during a MOVE (or just after it, wherever the signal lands) and restarted leaves exactly one live
 * instance once both sides recovered, which answers a task. Every `--json` output is one JSON
 * document. Every wait polls with a deadline.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, connectedDids, control, eventually, freePorts, json, startNode, stopAll, type Running } from './e2e-helpers.js'

let root: string
const running: Running[] = []
const dir = (name: string): string => join(root, name)

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kos-agent-e2e-'))
})

afterAll(async () => {
  await stopAll(running)
  if (root !== undefined) await rm(root, { recursive: true, force: true })
}, 30_000)

const connected = async (node: string, did: string): Promise<boolean> => (await connectedDids(dir(node))).includes(did)

const COUNTER = 'function handle(input, state) {\n  const n = (state.n || 0) + 1\n  return { output: { n, input }, state: { n } }\n}\n'

describe('agent migration across two processes', () => {
  it('deploys on A, moves to B where it answers tasks with its state, gone on A, alive after B restarts', async () => {
    const [pA, pB] = await freePorts(2)
    const inits = await Promise.all([
      cli(['init', '--json', '--data-dir', dir('a'), '--name', 'a', '--agents', '', '--listen', `tcp://127.0.0.1:${pA}`]),
      cli(['init', '--json', '--data-dir', dir('b'), '--name', 'b', '--agents', '', '--listen', `tcp://127.0.0.1:${pB}`]),
    ])
    for (const r of inits) expect(r.code, r.stderr).toBe(0)
    const b = await startNode(dir('b'), [], running)
    const a = await startNode(dir('a'), ['--seed', b.started.addrs[0] as string], running)
    const [A, B] = [a.started.did, b.started.did]
    await eventually('A is connected to B', async () => connected('a', B))

    // deploy on A; it answers there
    const file = join(root, 'counter.js')
    await writeFile(file, COUNTER)
    const dep = await cli(['agent', 'deploy', file, '--probe', '0', '--json', '--data-dir', dir('a')])
    expect(dep.code, dep.stderr).toBe(0)
    expect(json(dep)).toMatchObject({ agent_id: 'counter', name: 'counter', owner: A, epoch: 0, status: 'active', address: 'klp://a.mesh.kai/agents/counter' })
    const task = (from: string, to: string, input: string) => cli(['task', '--json', '--data-dir', dir(from), `klp://${to}.mesh.kai/agents/counter`, input]).then((r) => ({ code: r.code, doc: json(r) }))
    expect(await task('b', 'a', 'one')).toMatchObject({ code: 0, doc: { status: 'completed', result: { n: 1, input: 'one' } } })

    // MOVE to B: one JSON document, the result of a completed migration
    const mv = await cli(['agent', 'migrate', 'counter', '--type', 'move', '--to', B, '--json', '--data-dir', dir('a')])
    expect(mv.code, mv.stderr).toBe(0)
    expect(json(mv)).toMatchObject({ agent_id: 'counter', status: 'completed', new_agent_instance: { agent_id: 'counter', owner: A, epoch: 1, status: 'active', address: 'klp://b.mesh.kai/agents/counter' } })
    // not a TTY: no progress bar on stderr
    expect(mv.stderr).not.toContain('%')

    // B answers, continuing the state; A no longer has it
    expect(await task('a', 'b', 'two')).toMatchObject({ code: 0, doc: { status: 'completed', result: { n: 2, input: 'two' } } })
    const gone = await task('b', 'a', 'three')
    expect(gone.code).toBe(4)
    expect(gone.doc).toMatchObject({ exitCode: 4, error: { reason: 'no_eligible_agents' } })
    const listA = await cli(['agent', 'list', '--json', '--data-dir', dir('a')])
    expect(listA.code, listA.stderr).toBe(0)
    const docA = json<{ agents: unknown[]; recent: unknown[] }>(listA)
    expect(docA.agents).toEqual([expect.objectContaining({ agent_id: 'counter', status: 'gone', epoch: 1 })])
    expect(docA.recent).toEqual([expect.objectContaining({ agent_id: 'counter', type: 'move', to: B, status: 'completed' })])
    // A is fenced: a second move is refused here, as one error document
    const again = await cli(['agent', 'migrate', 'counter', '--to', B, '--json', '--data-dir', dir('a')])
    expect(again.code).toBe(1)
    expect(json(again)).toMatchObject({ exitCode: 1, error: { code: 'ERR_FENCED_AGENT' } })
    // bad command lines are usage errors, before any node is asked
    const bad = await cli(['agent', 'migrate', 'counter', '--type', 'teleport', '--to', B, '--json', '--data-dir', dir('a')])
    expect(bad.code).toBe(2)
    expect(json(bad)).toMatchObject({ exitCode: 2, error: { code: 'ERR_USAGE' } })

    // B stops and starts again: the agent is back from its database and answers
    const stop = await cli(['stop', '--json', '--data-dir', dir('b')])
    expect(stop.code, stop.stderr).toBe(0)
    const b2 = await startNode(dir('b'), [], running)
    expect(b2.started.did).toBe(B)
    const listB = await cli(['agent', 'list', '--data-dir', dir('b')])
    expect(listB.code, listB.stderr).toBe(0)
    expect(listB.stdout).toMatch(/^counter +counter +did:key:\S+ +1 +active +-$/m)
    await eventually('A is connected to B again (redialled)', async () => connected('a', B))
    expect(await task('a', 'b', 'four')).toMatchObject({ code: 0, doc: { status: 'completed', result: { n: 3, input: 'four' } } })

    // a large agent (600 kB of state, above the 512 KiB inline bound) moves by bulk transfer over TCP
    const big = join(root, 'big.json')
    await writeFile(big, JSON.stringify({ parts: ['a', 'b', 'c'].map((c) => c.repeat(200_000)) }))
    const bigCode = join(root, 'big.js')
    await writeFile(bigCode, 'function handle(input, state) { return { output: state.parts.map((p) => p.length), state } }\n')
    const depBig = await cli(['agent', 'deploy', bigCode, '--data-file', big, '--memory', '8388608', '--json', '--data-dir', dir('a')])
    expect(depBig.code, depBig.stderr).toBe(0)
    const mvBig = await cli(['agent', 'migrate', 'big', '--to', B, '--json', '--data-dir', dir('a')], { timeoutMs: 60_000 })
    expect(mvBig.code, mvBig.stderr).toBe(0)
    expect(json(mvBig)).toMatchObject({ agent_id: 'big', status: 'completed', new_agent_instance: { status: 'active', address: 'klp://b.mesh.kai/agents/big' } })
    const recent = JSON.parse((await control(dir('a'), 'GET', '/v1/agents/migrations')).text) as { recent: Array<{ agent_id: string; bytes: number }> }
    expect(recent.recent[0]?.agent_id).toBe('big')
    expect(recent.recent[0]?.bytes).toBeGreaterThan(600_000)
    const bigTask = await cli(['task', '--json', '--data-dir', dir('a'), 'klp://b.mesh.kai/agents/big', 'x'])
    expect(bigTask.code, bigTask.stderr).toBe(0)
    expect(json(bigTask)).toMatchObject({ status: 'completed', result: [200_000, 200_000, 200_000] })
  }, 120_000)

  it('a source killed (SIGKILL) during a MOVE and restarted: after recovery exactly one live instance, which answers', async () => {
    const [pC, pD] = await freePorts(2)
    for (const r of await Promise.all([
      cli(['init', '--json', '--data-dir', dir('c'), '--name', 'c', '--agents', '', '--listen', `tcp://127.0.0.1:${pC}`]),
      cli(['init', '--json', '--data-dir', dir('d'), '--name', 'd', '--agents', '', '--listen', `tcp://127.0.0.1:${pD}`]),
    ])) expect(r.code, r.stderr).toBe(0)
    const d = await startNode(dir('d'), [], running)
    const c = await startNode(dir('c'), ['--seed', d.started.addrs[0] as string], running)
    const D = d.started.did
    await eventually('C is connected to D', async () => connected('c', D))
    const state = join(root, 'crash.json')
    await writeFile(state, JSON.stringify({ n: 0, parts: ['a', 'b', 'c'].map((x) => x.repeat(200_000)) }))
    const code = join(root, 'crashy.js')
    await writeFile(code, 'function handle(input, state) { const n = state.n + 1; return { output: n, state: { n, parts: state.parts } } }\n')
    const dep = await cli(['agent', 'deploy', code, '--data-file', state, '--memory', '8388608', '--json', '--data-dir', dir('c')])
    expect(dep.code, dep.stderr).toBe(0)

    // the MOVE starts; C is killed as soon as it reports the migration (or once it ended, whichever comes first)
    const move = cli(['agent', 'migrate', 'crashy', '--to', D, '--json', '--data-dir', dir('c')], { timeoutMs: 60_000 })
    let moving = false
    await eventually('the MOVE is under way or over', async () => {
      const r = await control(dir('c'), 'GET', '/v1/agents/migrations')
      const v = JSON.parse(r.text) as { migrations: unknown[]; recent: unknown[] }
      moving = v.migrations.length > 0
      return moving || v.recent.length > 0
    })
    c.child.kill('SIGKILL')
    await c.exited
    const moved = await move
    expect([0, 1, 3, 4, 5]).toContain(moved.code)

    // C starts again (same database); recovery on both sides decides the MOVE
    await startNode(dir('c'), [], running)
    const states = async (node: string): Promise<string | undefined> => {
      const r = await control(dir(node), 'GET', '/v1/agents')
      return (JSON.parse(r.text) as { agents: Array<{ agent_id: string; status: string }> }).agents.find((a) => a.agent_id === 'crashy')?.status
    }
    let final: Array<string | undefined> = []
    await eventually('exactly one live instance, nothing pending', async () => {
      final = [await states('c'), await states('d')]
      const live = final.filter((x) => x === 'active').length
      return live === 1 && !final.includes('migrating') && !final.includes('prepared')
    }, 60_000)
    const owner = final[0] === 'active' ? 'c' : 'd'
    const other = owner === 'c' ? 'd' : 'c'
    // a committed MOVE leaves C fenced (gone); an aborted one leaves D without it (or a forgotten prepare)
    expect(owner === 'd' ? final[0] : final[1]).toBe(owner === 'd' ? 'gone' : undefined)
    await eventually(`${other} is connected to ${owner}`, async () => connected(other, owner === 'c' ? c.started.did : D))
    const t = await cli(['task', '--json', '--data-dir', dir(other), `klp://${owner}.mesh.kai/agents/crashy`, 'go'])
    expect(t.code, t.stderr).toBe(0)
    expect(json(t)).toMatchObject({ status: 'completed', result: 1 })
    console.log(`killed ${moving ? 'during' : 'after'} the MOVE; live on ${owner}`)
  }, 180_000)
})

