import { taskService } from '@kos-mesh/agents'
import { afterEach, describe, expect, it } from 'vitest'
import { signDelegation } from '../src/delegation.js'
import type { CreateAgentInit } from '../src/protocol/host.js'
import { COUNTER_CODE, PERMS, ident, rejectsWith } from './helpers.js'
import { migrationNet, type MNet } from './net.js'

let m: MNet | undefined
afterEach(async () => { await m?.stop(); m = undefined })

const def = (over: Partial<CreateAgentInit> = {}): CreateAgentInit => ({ agent_id: 'agent-1', name: 'counter', code: COUNTER_CODE, capabilities: ['count'], permissions: PERMS, data: { count: 0 }, params: { greeting: 'hi' }, probes: [{ p: 1 }], ...over })
const statusOf = async (n: MNet['nodes'][number], id: string) => (await n.svc.list()).find((a) => a.agent_id === id)?.status

describe('MOVE on a virtual-time testnet', () => {
  it('moves the agent with its last state; the source is fenced; it answers tasks on the target', async () => {
    m = await migrationNet(2)
    const [a, b] = m.nodes as [MNet['nodes'][0], MNet['nodes'][1]]
    await m.drive(a.svc.create(def()))
    await m.drive(a.svc.run('agent-1', 'x'))
    expect(await m.drive(a.svc.run('agent-1', 'y'))).toMatchObject({ n: 2 })
    const res = await m.drive(a.svc.migrate('agent-1', { type: 'move', to: b.did }))
    expect(res.status).toBe('completed')
    expect(res.new_agent_instance).toMatchObject({ agent_id: 'agent-1', epoch: 1, status: 'active', address: `klp://${b.authority}/agents/counter` })
    expect((await b.svc.list())[0]!.address).toBe(`klp://${b.authority}/agents/counter`)
    expect(await statusOf(a, 'agent-1')).toBe('gone')
    expect(await statusOf(b, 'agent-1')).toBe('active')
    expect((await b.svc.list())[0]!.epoch).toBe(1)
    expect(await m.drive(b.svc.run('agent-1', 'z'))).toMatchObject({ n: 3 })
    await rejectsWith(m.drive(a.svc.run('agent-1', 'w')), 'FencedAgentError')
    await rejectsWith(m.drive(a.svc.migrate('agent-1', { type: 'move', to: b.did })), 'FencedAgentError')
    expect(a.registry.get('counter')).toBeUndefined()
    const agent = b.registry.get('counter')!
    expect(agent.id).toBe('agent-1')
    expect(await m.drive(agent.handle('t', { capability: 'count', params: {}, from: a.did, taskId: '', signal: new AbortController().signal }))).toMatchObject({ n: 4 })
    expect(b.observed).toContainEqual([a.did, 'task_ok'])
    expect(a.svc.stats()).toMatchObject({ started: 2, completed: 1, failed: 1 }) // the second: refused locally, fenced
    expect(b.svc.stats().received).toBe(1)
    expect(a.observed).toContainEqual([b.did, 'task_ok'])
    // the target got a hand-off delegation: it can move the agent back, at epoch 2
    await m.drive(b.svc.migrate('agent-1', { type: 'move', to: a.did }))
    expect(await statusOf(a, 'agent-1')).toBe('active')
    expect((await a.svc.list())[0]!.epoch).toBe(2)
    expect(await m.drive(a.svc.run('agent-1', 'back'))).toMatchObject({ n: 5 })
  })

  it('large state moves by bulk transfer with progress', async () => {
    m = await migrationNet(2, () => ({ inlineMaxBytes: 64 * 1024 }))
    const [a, b] = m.nodes as [MNet['nodes'][0], MNet['nodes'][1]]
    const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 7) & 0xff)
    await m.drive(a.svc.create(def({ memory: [{ key: 'blob', value: big }], permissions: { ...PERMS, capabilities: ['log', 'memory'] }, code: 'function handle(i, s) { return { output: host.memorySize("blob"), state: s } }' })))
    const progress: number[] = []
    await m.drive(a.svc.migrate('agent-1', { type: 'move', to: b.did, onProgress: (p) => progress.push(p.bytes) }))
    expect(progress.length).toBeGreaterThan(1)
    expect(await m.drive(b.svc.run('agent-1', null))).toBe(big.length)
  })

  it('secrets travel sealed and open on the target', async () => {
    m = await migrationNet(2)
    const [a, b] = m.nodes as [MNet['nodes'][0], MNet['nodes'][1]]
    const code = 'function handle(i, s) { return { output: host.secret("token"), state: s } }'
    await m.drive(a.svc.create(def({ code, secrets: { token: 'tok-123' }, permissions: { ...PERMS, capabilities: ['log', 'secrets'] } })))
    expect(await m.drive(a.svc.run('agent-1', null))).toBe('tok-123')
    // nowhere in the source's store is the secret in clear
    for await (const { value } of a.store.query('/')) expect(Buffer.from(value).includes(Buffer.from('tok-123'))).toBe(false)
    await m.drive(a.svc.migrate('agent-1', { type: 'move', to: b.did }))
    expect(await m.drive(b.svc.run('agent-1', null))).toBe('tok-123')
    for await (const { value } of b.store.query('/')) expect(Buffer.from(value).includes(Buffer.from('tok-123'))).toBe(false)
  })
})

describe('COPY, CLONE, BACKUP', () => {
  it('COPY: the source keeps its agent; the target runs a copy under a derived id with lineage', async () => {
    m = await migrationNet(2)
    const [a, b] = m.nodes as [MNet['nodes'][0], MNet['nodes'][1]]
    await m.drive(a.svc.create(def({ secrets: { k: 'v' } })))
    await m.drive(a.svc.run('agent-1', 1))
    await m.drive(a.svc.migrate('agent-1', { type: 'copy', to: b.did, newId: 'agent-1/copy-a' }))
    expect(await statusOf(a, 'agent-1')).toBe('active')
    const copy = (await b.svc.list())[0]!
    expect(copy).toMatchObject({ agent_id: 'agent-1/copy-a', status: 'active', owner: a.did, lineage: { parent: 'agent-1', kind: 'copy' } })
    expect(await m.drive(b.svc.run('agent-1/copy-a', 2))).toMatchObject({ n: 2 })
    expect(await m.drive(a.svc.run('agent-1', 2))).toMatchObject({ n: 2 })
  })

  it('CLONE: an independent agent with a new owner, a fresh trail and no secrets', async () => {
    m = await migrationNet(2)
    const [a, b] = m.nodes as [MNet['nodes'][0], MNet['nodes'][1]]
    const code = 'function handle(i, s) { return { output: host.secret("k") === undefined ? "none" : "some", state: s } }'
    await m.drive(a.svc.create(def({ code, secrets: { k: 'v' }, permissions: { ...PERMS, capabilities: ['log', 'secrets'] } })))
    const newOwner = ident('new-owner').did
    await m.drive(a.svc.migrate('agent-1', { type: 'clone', to: b.did, newId: 'agent-2', name: 'clone', owner: newOwner }))
    const c = (await b.svc.list())[0]!
    expect(c).toMatchObject({ agent_id: 'agent-2', name: 'clone', owner: newOwner, lineage: { parent: 'agent-1', kind: 'clone' } })
    expect(await m.drive(b.svc.run('agent-2', null))).toBe('none')
    expect(await statusOf(a, 'agent-1')).toBe('active')
  })

  it('BACKUP goes only to an archive node, is never live there, and restores to a node', async () => {
    m = await migrationNet(3, (i) => ({ archive: i === 2 }))
    const [a, b, c] = m.nodes as [MNet['nodes'][0], MNet['nodes'][1], MNet['nodes'][2]]
    await m.drive(a.svc.create(def()))
    await m.drive(a.svc.run('agent-1', 1))
    const refused = await rejectsWith(m.drive(a.svc.migrate('agent-1', { type: 'backup', to: b.did })), 'MigrationRefusedError')
    expect(refused.reason).toBe('type_not_accepted')
    await m.drive(a.svc.migrate('agent-1', { type: 'backup', to: c.did }))
    expect(await statusOf(c, 'agent-1')).toBe('archived')
    expect(c.registry.get('counter')).toBeUndefined()
    await rejectsWith(m.drive(c.svc.run('agent-1', 1)), 'AgentStateError')
    // the original is lost with node a: the archive restores it to b, live at epoch 1 with the backed-up state
    await m.drive(c.svc.restore('agent-1', { to: b.did }))
    const r = (await b.svc.list())[0]!
    expect(r).toMatchObject({ agent_id: 'agent-1', status: 'active', epoch: 1 })
    expect(await m.drive(b.svc.run('agent-1', 2))).toMatchObject({ n: 2 })
    expect(await statusOf(c, 'agent-1')).toBe('archived')
  })
})

describe('cancellation, restarts, tasks', () => {
  it('a cancelled MOVE leaves the source as it was and nothing live on the target', async () => {
    m = await migrationNet(2, () => ({ inlineMaxBytes: 16 * 1024 }))
    const [a, b] = m.nodes as [MNet['nodes'][0], MNet['nodes'][1]]
    await m.drive(a.svc.create(def({ memory: [{ key: 'blob', value: new Uint8Array(4 * 1024 * 1024).fill(3) }] })))
    await m.drive(a.svc.run('agent-1', 1))
    const ac = new AbortController()
    const p = a.svc.migrate('agent-1', { type: 'move', to: b.did, signal: ac.signal, onProgress: (pr) => { if (pr.bytes > 0) ac.abort() } })
    const err = await rejectsWith(m.drive(p), 'AbortError')
    expect(err).toBeDefined()
    await m.drive(m.net.network.clock.sleep(10_000))
    expect(await statusOf(a, 'agent-1')).toBe('active')
    expect(await statusOf(b, 'agent-1')).toBeUndefined()
    expect(await m.drive(a.svc.run('agent-1', 2))).toMatchObject({ n: 2 })
  })

  it('agents and their state survive a restart; finished logs are pruned after their retention', async () => {
    m = await migrationNet(2, () => ({ logRetentionMs: 3_600_000 }))
    const [a, b] = m.nodes as [MNet['nodes'][0], MNet['nodes'][1]]
    await m.drive(a.svc.create(def()))
    await m.drive(a.svc.run('agent-1', 1))
    await m.drive(a.svc.migrate('agent-1', { type: 'move', to: b.did }))
    await m.drive(b.svc.run('agent-1', 2))
    await b.restart()
    await a.restart()
    expect(b.registry.get('counter')?.id).toBe('agent-1')
    expect(await m.drive(b.svc.run('agent-1', 3))).toMatchObject({ n: 3 })
    await rejectsWith(m.drive(a.svc.run('agent-1', 3)), 'FencedAgentError')
    const count = async (n: MNet['nodes'][number], p: string) => { let k = 0; for await (const _ of n.store.query(p)) k++; return k }
    expect(await count(a, '/agent-migration/out/')).toBe(1)
    expect(await count(b, '/agent-migration/in/')).toBe(1)
    await m.drive(m.net.network.clock.sleep(3_700_000), 4_000_000)
    await m.drive(a.svc.recover())
    await m.drive(b.svc.recover())
    expect(await count(a, '/agent-migration/out/')).toBe(0)
    expect(await count(b, '/agent-migration/in/')).toBe(0)
    expect(await statusOf(a, 'agent-1')).toBe('gone')
  })

  it('a migrated agent answers TASK_REQUESTs on the target through the task service', async () => {
    m = await migrationNet(2)
    const [a, b] = m.nodes as [MNet['nodes'][0], MNet['nodes'][1]]
    const clock = m.net.network.clock
    const tasksA = taskService()({ router: m.net.nodes[0]!.router, agents: a.registry, clock })
    const tasksB = taskService()({ router: m.net.nodes[1]!.router, agents: b.registry, clock })
    tasksA.start(); tasksB.start()
    try {
      await m.drive(a.svc.create(def()))
      expect((await m.drive(tasksB.send(a.did, { capability: 'count', input: 'q' }))).result).toMatchObject({ n: 1 })
      await m.drive(a.svc.migrate('agent-1', { type: 'move', to: b.did }))
      const r = await m.drive(tasksA.send(b.did, { capability: 'count', input: 'q' }))
      expect(r).toMatchObject({ agent_id: 'agent-1', result: { n: 2 } })
      const gone = await rejectsWith(m.drive(tasksB.send(a.did, { capability: 'count', input: 'q' })), 'RemoteRejectedError')
      expect(gone.reason).toBe('no_eligible_agents')
    } finally {
      await tasksA.stop(); await tasksB.stop()
    }
  })
})

describe('ownership across hops', () => {
  it('an agent owned by someone else moves A -> B -> C on the owner\'s delegation and the hand-offs', async () => {
    m = await migrationNet(3)
    const [a, b, c] = m.nodes as [MNet['nodes'][0], MNet['nodes'][1], MNet['nodes'][2]]
    const owner = ident('hop-owner')
    const now = m.net.network.clock.now()
    const d = await signDelegation({ issuer: owner.did, delegate: a.did, agent_id: 'agent-1', actions: ['move', 'copy'], targets: [], redelegate: true, issued_at: now, expires_at: now + 3_600_000 }, owner.signer)
    await m.drive(a.svc.create(def({ owner: owner.did, ownerSigner: owner.signer, delegations: [d] })))
    await m.drive(a.svc.migrate('agent-1', { type: 'move', to: b.did }))
    await m.drive(b.svc.migrate('agent-1', { type: 'move', to: c.did }))
    expect((await c.svc.list())[0]).toMatchObject({ agent_id: 'agent-1', owner: owner.did, epoch: 2, status: 'active' })
    // the delegation allows move and copy only: a clone is refused by the next node
    const err = await rejectsWith(m.drive(c.svc.migrate('agent-1', { type: 'clone', to: a.did })), 'MigrationRefusedError')
    expect(err.reason).toBe('delegation')
    expect((await c.svc.list())[0]!.status).toBe('active')
  })

  it('without redelegation the target cannot move the agent on', async () => {
    m = await migrationNet(3)
    const [a, b, c] = m.nodes as [MNet['nodes'][0], MNet['nodes'][1], MNet['nodes'][2]]
    const owner = ident('hop-owner')
    const now = m.net.network.clock.now()
    const d = await signDelegation({ issuer: owner.did, delegate: a.did, agent_id: 'agent-1', actions: ['move'], targets: [], redelegate: false, issued_at: now, expires_at: now + 3_600_000 }, owner.signer)
    await m.drive(a.svc.create(def({ owner: owner.did, ownerSigner: owner.signer, delegations: [d] })))
    await m.drive(a.svc.migrate('agent-1', { type: 'move', to: b.did }))
    const err = await rejectsWith(m.drive(b.svc.migrate('agent-1', { type: 'move', to: c.did })), 'MigrationRefusedError')
    expect(err.reason).toBe('ownership')
    expect((await b.svc.list())[0]!.status).toBe('active')
  })
})

describe('export and import (files)', () => {
  it('a COPY exported as bytes imports once on the node it was made for, and nowhere else', async () => {
    m = await migrationNet(3)
    const [a, b, c] = m.nodes as [MNet['nodes'][0], MNet['nodes'][1], MNet['nodes'][2]]
    await m.drive(a.svc.create(def({ secrets: { k: 'v' } })))
    await m.drive(a.svc.run('agent-1', 1))
    const before = (await a.svc.list())[0]
    const file = await m.drive(a.svc.exportAgent('agent-1', { type: 'copy', to: b.did, newId: 'agent-1/copy-f' }))
    expect((await a.svc.list())[0]).toEqual(before)
    expect(Buffer.from(file).includes(Buffer.from('"v"'))).toBe(false)
    const inst = await m.drive(b.svc.importAgent(file))
    expect(inst).toMatchObject({ agent_id: 'agent-1/copy-f', status: 'active', lineage: { parent: 'agent-1', kind: 'copy' } })
    expect(await m.drive(b.svc.run('agent-1/copy-f', 2))).toMatchObject({ n: 2 })
    await rejectsWith(m.drive(b.svc.importAgent(file)), 'StaleMigrationError')
    await rejectsWith(m.drive(c.svc.importAgent(file)), 'InvalidBundleError')
    const t = file.slice()
    t[t.length - 200] = (t[t.length - 200] as number) ^ 1
    await expect(m.drive(c.svc.importAgent(t))).rejects.toThrow()
    await rejectsWith(m.drive(a.svc.exportAgent('agent-1', { type: 'move' as 'copy', to: b.did })), 'MigrationRefusedError')
  })

  it('a BACKUP file imports on an archive node, which can restore it over the network', async () => {
    m = await migrationNet(3, (i) => ({ archive: i === 2 }))
    const [a, b, c] = m.nodes as [MNet['nodes'][0], MNet['nodes'][1], MNet['nodes'][2]]
    await m.drive(a.svc.create(def()))
    await m.drive(a.svc.run('agent-1', 1))
    const file = await m.drive(a.svc.exportAgent('agent-1', { type: 'backup', to: c.did }))
    expect(await m.drive(c.svc.importAgent(file))).toMatchObject({ agent_id: 'agent-1', status: 'archived' })
    await m.drive(c.svc.restore('agent-1', { to: b.did }))
    expect(await m.drive(b.svc.run('agent-1', 2))).toMatchObject({ n: 2 })
  })
})
