import { mkdtemp, readdir, rm, truncate } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createMemoryNetwork } from '@kos-mesh/transport-memory'
import {
  createNode,
  defineService,
  echoAgent,
  keystoreIdentity,
  levelStore,
  mathAgent,
  memory,
  textStatsAgent,
  type KosMeshNode,
} from '../src/index.js'

const nodes: KosMeshNode[] = []
afterEach(async () => {
  await Promise.allSettled(nodes.splice(0).map((n) => n.stop()))
})

function track(n: KosMeshNode): KosMeshNode {
  nodes.push(n)
  return n
}

describe('createNode: wiring', () => {
  it('does no I/O before start and throws typed errors when used early', async () => {
    const node = track(createNode())
    expect(node.isStarted()).toBe(false)
    expect(() => node.router).toThrow(expect.objectContaining({ name: 'NodeNotStartedError' }))
    expect(() => node.did).toThrow(expect.objectContaining({ name: 'NodeNotStartedError' }))
    expect(() => node.peers()).toThrow(expect.objectContaining({ name: 'NodeNotStartedError' }))
    await node.start()
    expect(node.isStarted()).toBe(true)
    expect(node.did).toMatch(/^did:key:z6Mk/)
    expect(node.authority).toMatch(/^n[0-9a-f]{12}\.mesh\.kai$/)
    await node.stop()
    expect(node.isStarted()).toBe(false)
    await node.stop() // idempotent
  })

  it('rejects a service whose dependency is missing, naming both', () => {
    const needsVectors = defineService(['vectorIndex'], () => ({}))
    let err: unknown
    try {
      createNode({ services: { search: needsVectors } })
    } catch (e) {
      err = e
    }
    expect(err).toMatchObject({ name: 'MissingServiceDependencyError', code: 'ERR_MISSING_SERVICE_DEPENDENCY', service: 'search', component: 'vectorIndex' })
  })

  it('removing a default service that another needs is caught at construction', () => {
    const needsTasks = defineService(['tasks'], () => ({}))
    expect(() => createNode({ services: { tasks: false, ui: needsTasks } })).toThrow(
      expect.objectContaining({ name: 'MissingServiceDependencyError', service: 'ui', component: 'tasks' }),
    )
  })

  it('rejects dependency cycles and names that shadow components', () => {
    const a = defineService(['b'], () => ({}))
    const b = defineService(['a'], () => ({}))
    expect(() => createNode({ services: { a, b } })).toThrow(expect.objectContaining({ name: 'ServiceDependencyCycleError' }))
    expect(() => createNode({ services: { router: defineService([], () => ({})) } })).toThrow(expect.objectContaining({ name: 'DuplicateServiceError' }))
  })

  it('starts services after what they require and stops them in reverse', async () => {
    const events: string[] = []
    const svc = (name: string, requires: string[]) =>
      defineService(requires, (c) => {
        events.push(`create ${name}${requires.map((r) => ` ${r}:${c[r] === undefined ? 'missing' : 'ok'}`).join('')}`)
        return { start: () => void events.push(`start ${name}`), stop: () => void events.push(`stop ${name}`) }
      })
    const node = track(createNode({ services: { top: svc('top', ['mid', 'router']), mid: svc('mid', ['storage']) } }))
    await node.start()
    await node.stop()
    expect(events).toEqual(['create mid storage:ok', 'start mid', 'create top mid:ok router:ok', 'start top', 'stop top', 'stop mid'])
  })

  it('rejects a bad authority', () => {
    expect(() => createNode({ authority: 'Not A Host!' })).toThrow(expect.objectContaining({ name: 'InvalidConfigError' }))
  })
})

describe('a mesh of nodes on the memory transport', () => {
  it('bootstraps from a seed, shares signed node records and answers tasks', async () => {
    const network = createMemoryNetwork()
    const seed = track(createNode({ authority: 'seed.mesh.kai', transports: [memory({ network })], listen: ['memory://seed'], agents: [echoAgent()] }))
    await seed.start()
    const seedAddr = seed.addrs()[0] as string
    expect(seedAddr).toBe(`memory://seed/${seed.did}`)
    const worker = track(
      createNode({
        authority: 'worker.mesh.kai',
        transports: [memory({ network })],
        listen: ['memory://worker'],
        seeds: [seedAddr],
        agents: [textStatsAgent(), mathAgent()],
        nodeType: 'ArchiveNode',
      }),
    )
    await worker.start()
    expect(worker.status().bootstrap?.trust_mesh_joined).toBe(true)
    const client = track(createNode({ authority: 'client.mesh.kai', transports: [memory({ network })], listen: ['memory://client'], seeds: [seedAddr] }))
    await client.start()

    // the client learned the worker through the seed's peer table (signed FederatedNode record)
    const peers = client.peers()
    const w = peers.find((p) => p.did === worker.did)
    expect(w).toBeDefined()
    expect(w?.node_type).toBe('ArchiveNode')
    expect(worker.record()).toMatchObject({ node_id: worker.did, node_type: 'ArchiveNode', capabilities: { agent_hosting: true } })

    // a task answered by a built-in agent on another node (routed through the seed or dialled)
    const r = await client.task('klp://worker.mesh.kai/agents/math', { capability: 'math', input: '2 * (3 + 4) ^ 2' }, { timeoutMs: 10_000 })
    expect(r).toMatchObject({ status: 'completed', agent: 'klp://worker.mesh.kai/agents/math', result: { value: 98 } })
    const s = await client.task('klp://worker.mesh.kai', { capability: 'summarize', input: 'Mesh nodes route messages. Mesh nodes trust peers.' })
    expect(s.agent).toBe('klp://worker.mesh.kai/agents/text-stats')
    expect(s.result).toMatchObject({ keywords: expect.arrayContaining(['mesh', 'nodes']) })

    // rejected with no_eligible_agents
    await expect(client.task('klp://seed.mesh.kai', { capability: 'math', input: '1+1' })).rejects.toMatchObject({
      name: 'RemoteRejectedError',
      reason: 'no_eligible_agents',
    })
    // an agent error crosses the wire as agent_failed
    await expect(client.task('klp://worker.mesh.kai', { capability: 'math', input: '1/0' })).rejects.toMatchObject({ reason: 'agent_failed' })
    // a bad task payload as invalid_task
    await expect(
      client.router.request({ type: 'TASK_REQUEST', target: 'klp://worker.mesh.kai/', data: { nope: 1 } }),
    ).rejects.toMatchObject({ reason: 'invalid_task' })
  })

  it('trust levels gate messages that require trust', async () => {
    const network = createMemoryNetwork()
    const a = track(createNode({ authority: 'a.mesh.kai', transports: [memory({ network })], listen: ['memory://a'], agents: [echoAgent()] }))
    const b = track(createNode({ authority: 'b.mesh.kai', transports: [memory({ network })], listen: ['memory://b'] }))
    await a.start()
    await b.start()
    await b.connect(a.addrs()[0] as string)
    const needs = { minimum_trust_score: 5, required_endorsements: 0, verification_level: 'basic' as const }
    const ask = () => b.router.request({ type: 'TASK_REQUEST', target: 'klp://a.mesh.kai/agents/echo', data: { capability: 'echo', input: 'hi' }, trustRequirements: needs })
    await expect(ask()).rejects.toMatchObject({ reason: 'insufficient_trust' })
    // a trusts b's node address (resolved to its DID through the routing table)
    const entry = await a.trust('klp://b.mesh.kai/agents/anything', 7)
    expect(entry).toMatchObject({ did: b.did, trust_score: 7 })
    const ok = await ask()
    expect(ok.payload.data).toMatchObject({ status: 'completed', result: 'hi' })
    await expect(a.trust('klp://unknown.mesh.kai', 3)).rejects.toMatchObject({ name: 'UnpinnedAuthorityError', code: 'ERR_UNPINNED_AUTHORITY' })
    await expect(a.trust(b.did, 11)).rejects.toMatchObject({ name: 'InvalidParametersError' })
  })
})

describe('persistence', () => {
  it('keeps the identity (keystore) and the trust store (LevelDB) across restarts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-node-'))
    try {
      const make = () =>
        track(
          createNode({
            identity: keystoreIdentity({ path: join(dir, 'keystore.json'), passphrase: 'correct horse', kdf: { N: 1024 } }),
            storage: levelStore({ path: join(dir, 'db') }),
          }),
        )
      const first = make()
      await first.start()
      const did = first.did
      await first.trust('did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', 4)
      await first.stop()
      const second = make()
      await second.start()
      expect(second.did).toBe(did)
      expect(second.trustStore.get('did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK').trust_score).toBe(4)
      expect(second.trustStore.list()).toHaveLength(1)
      await second.stop()
      const wrong = track(createNode({ identity: keystoreIdentity({ path: join(dir, 'keystore.json'), passphrase: 'wrong' }) }))
      await expect(wrong.start()).rejects.toMatchObject({ name: 'KeystorePassphraseError' })
      expect(wrong.isStarted()).toBe(false)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('issue 8: createNode validates before it acts', () => {
  it('trust() refuses malformed DIDs and non-integer levels, storing nothing', async () => {
    const a = track(createNode())
    await a.start()
    for (const bad of ['did:', 'did:key:!!!', 'did:key:z6Mk', 'did:Key:abc', 'did:web:a:', 'did:web:a%2', `${a.did}#x`]) {
      await expect(a.trust(bad, 5), bad).rejects.toMatchObject({ name: 'InvalidDidError', code: 'ERR_INVALID_DID' })
    }
    for (const level of [5.5, -1, 11, Number.NaN]) await expect(a.trust(a.did, level), String(level)).rejects.toMatchObject({ name: 'InvalidParametersError' })
    await expect(a.trustStore.trust('did:key:!!!', 5)).rejects.toMatchObject({ name: 'InvalidDidError' })
    expect(a.trustStore.list()).toEqual([])
    // other methods only need the W3C DID syntax
    await expect(a.trust('did:web:example.com%3A8443:user', 3)).resolves.toMatchObject({ trust_score: 3 })
  })

  it('connect() rejects a malformed DID and an undialable address before dialling', async () => {
    const network = createMemoryNetwork()
    const a = track(createNode({ transports: [memory({ network })], listen: ['memory://a8'] }))
    const b = track(createNode({ transports: [memory({ network })], listen: ['memory://b8'] }))
    await b.start()
    await a.start()
    await expect(a.connect('memory://b8/did:key:!!!')).rejects.toMatchObject({ name: 'InvalidDidError' })
    for (const addr of ['udp://127.0.0.1:4001', 'tcp://127.0.0.1:4001', 'memory://']) {
      await expect(a.connect(addr), addr).rejects.toMatchObject({ name: 'InvalidAddressError', code: 'ERR_INVALID_ADDRESS' })
    }
    // nothing was dialled: b saw no connection (before the fix the malformed DID was dialled, then a PeerMismatchError)
    expect(b.router.peers()).toEqual([])
    expect(a.router.peers()).toEqual([])
    await expect(a.connect(b.addrs()[0] as string)).resolves.toMatchObject({ did: b.did })
  })

  it('task() refuses an over-limit input with TaskTooLargeError before sending', async () => {
    const network = createMemoryNetwork()
    const a = track(createNode({ transports: [memory({ network })], listen: ['memory://a9'], agents: [echoAgent()] }))
    await a.start()
    const big = [
      'x'.repeat(300 * 1024),
      Array.from({ length: 20_000 }, (_, i) => i),
      Array.from({ length: 5 }, () => 'y'.repeat(250 * 1024)), // each string fits, the message does not
    ]
    for (const input of big) {
      await expect(a.task('klp://a.mesh.kai/agents/echo', { capability: 'echo', input })).rejects.toMatchObject({ name: 'TaskTooLargeError', code: 'ERR_TASK_TOO_LARGE' })
    }
  })

  it('refuses to start when its LevelDB log was truncated to 0 bytes (trust and pins gone); resetStore accepts it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-node-'))
    try {
      const make = (resetStore = false) =>
        track(
          createNode({
            identity: keystoreIdentity({ path: join(dir, 'keystore.json'), passphrase: 'pw', kdf: { N: 1024 } }),
            storage: levelStore({ path: join(dir, 'db'), resetStore }),
          }),
        )
      const first = make()
      await first.start()
      const peer = createNode()
      await peer.start()
      await first.trust(peer.did, 8)
      await peer.stop()
      await first.stop()
      const logs = (await readdir(join(dir, 'db'))).filter((f) => f.endsWith('.log'))
      for (const f of logs) await truncate(join(dir, 'db', f), 0)
      const second = make()
      await expect(second.start()).rejects.toMatchObject({ name: 'StoreIntegrityError', code: 'ERR_STORE_INTEGRITY' })
      expect(second.isStarted()).toBe(false)
      const reset = make(true)
      await reset.start()
      expect(reset.trustStore.get(peer.did).trust_score).toBe(0)
      await reset.stop()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
