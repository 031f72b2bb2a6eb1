/**
 * Regression tests of the security review: receiver-side task policy, persisted authority pins,
 * task answers bound to the addressed DID, `trust klp://` through pins only.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { KLPMessageType, type KLPValue } from '@kos-mesh/interface'
import { createMessage, signMessage } from '@kos-mesh/klp-codec'
import { generateIdentity } from '@kos-mesh/did-security'
import type { RejectInfo } from '@kos-mesh/klp-router'
import { createMemoryNetwork, type MemoryNetwork } from '@kos-mesh/transport-memory'
import { createNode, echoAgent, levelStore, mathAgent, memory, PIN_PREFIX, type AgentInit, type KosMeshNode, type NodeInit } from '../src/index.js'

const nodes: KosMeshNode[] = []
afterEach(async () => {
  await Promise.allSettled(nodes.splice(0).map((n) => n.stop()))
})

function node(network: MemoryNetwork, name: string, init: NodeInit = {}): KosMeshNode {
  const n = createNode({ authority: `${name}.mesh.kai`, transports: [memory({ network })], listen: [`memory://${name}`], ...init })
  nodes.push(n)
  return n
}

/** Resolves with the first rejection of `reason` the router reports. */
function nextReject(n: KosMeshNode, reason: string): Promise<RejectInfo> {
  return new Promise((resolve) => {
    const on = (e: Event): void => {
      const info = (e as CustomEvent<RejectInfo>).detail
      if (info.reason !== reason) return
      n.router.removeEventListener('message:rejected', on)
      resolve(info)
    }
    n.router.addEventListener('message:rejected', on)
  })
}

describe('receiver-side task policy (taskMinTrust)', () => {
  it('an untrusted DID cannot run tasks on a closed node, whatever it asks for; trust() opens it', async () => {
    const network = createMemoryNetwork()
    const worker = node(network, 'worker', { agents: [mathAgent()], taskMinTrust: 5 })
    const open = node(network, 'open', { agents: [mathAgent()] })
    const client = node(network, 'client')
    await Promise.all([worker.start(), open.start(), client.start()])
    await client.connect(worker.addrs()[0] as string)
    await client.connect(open.addrs()[0] as string)
    expect(worker.status().taskMinTrust).toBe(5)
    const ask = (to: string) => client.task(`klp://${to}.mesh.kai/agents/math`, { capability: 'math', input: '6 * 7' }, { timeoutMs: 5000 })
    // the sender wrote no trust requirements: the receiver's policy applies anyway
    await expect(ask('worker')).rejects.toMatchObject({ name: 'RemoteRejectedError', reason: 'insufficient_trust' })
    // the default stays open (documented): the same client runs tasks on a node without a policy
    await expect(ask('open')).resolves.toMatchObject({ result: { value: 42 } })
    // below the minimum is not enough
    await worker.trust(client.did, 4)
    await expect(ask('worker')).rejects.toMatchObject({ reason: 'insufficient_trust' })
    await worker.trust(client.did, 7)
    await expect(ask('worker')).resolves.toMatchObject({ status: 'completed', result: { value: 42 } })
  })

  it('merges with router.trustPolicy (stricter wins) and validates the value', async () => {
    expect(() => createNode({ taskMinTrust: 11 })).toThrow(expect.objectContaining({ name: 'InvalidConfigError' }))
    expect(() => createNode({ taskMinTrust: -1 })).toThrow(expect.objectContaining({ name: 'InvalidConfigError' }))
    const network = createMemoryNetwork()
    const strict = { minimum_trust_score: 8, required_endorsements: 0, verification_level: 'none' as const }
    const worker = node(network, 'worker', { agents: [echoAgent()], taskMinTrust: 3, router: { trustPolicy: { TASK_REQUEST: strict } } })
    const client = node(network, 'client')
    await Promise.all([worker.start(), client.start()])
    await client.connect(worker.addrs()[0] as string)
    await worker.trust(client.did, 5) // passes taskMinTrust 3, not the router policy's 8
    await expect(client.task('klp://worker.mesh.kai/agents/echo', { capability: 'echo', input: 'x' })).rejects.toMatchObject({ reason: 'insufficient_trust' })
    await worker.trust(client.did, 8)
    await expect(client.task('klp://worker.mesh.kai/agents/echo', { capability: 'echo', input: 'x' })).resolves.toMatchObject({ result: 'x' })
  })
})

describe('authority pins persist across restarts', () => {
  it('restores pins from the store, so an impostor cannot claim a known authority after a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-pins-'))
    try {
      const network = createMemoryNetwork()
      const identity = generateIdentity()
      const makeA = (persistPins?: boolean) =>
        node(network, 'a', { identity, storage: levelStore({ path: join(dir, 'db') }), ...(persistPins === undefined ? {} : { persistPins }) })
      const b = node(network, 'b')
      await b.start()
      const a1 = makeA()
      await a1.start()
      await a1.connect(b.addrs()[0] as string)
      expect(a1.router.routingTable.pins()).toMatchObject({ 'b.mesh.kai': b.did })
      await a1.stop()
      await b.stop()

      // an impostor with another DID now claims b.mesh.kai
      const impostor = node(network, 'b', { authority: 'b.mesh.kai' })
      await impostor.start()
      const a2 = makeA()
      await a2.start()
      expect(a2.router.routingTable.pins()).toMatchObject({ 'b.mesh.kai': b.did })
      await expect(a2.connect(impostor.addrs()[0] as string)).rejects.toMatchObject({ name: 'AuthorityConflictError' })
      expect(a2.router.routingTable.didOf('b.mesh.kai')).toBe(b.did)
      // the pins live in the node's store
      const stored: Array<[string, string]> = []
      for await (const { key, value } of a2.storage.query(PIN_PREFIX)) stored.push([key, new TextDecoder().decode(value)])
      // one key per pin; provisional: b only answered a1's automatic peer-table request, which
      // does not make a pin firm (any peer could make its pin permanent that way)
      expect(stored.map(([k, v]) => [k, JSON.parse(v)])).toEqual([[`${PIN_PREFIX}b.mesh.kai`, { did: b.did, firm: false }]])
      await a2.stop()

      // without persistence the restart reopens trust on first use: the impostor is accepted
      const a3 = makeA(false)
      await a3.start()
      expect(a3.router.routingTable.pins()['b.mesh.kai']).toBeUndefined()
      await expect(a3.connect(impostor.addrs()[0] as string)).resolves.toMatchObject({ did: impostor.did })
    } finally {
      await Promise.allSettled(nodes.splice(0).map((n) => n.stop()))
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('task answers come from the node addressed', () => {
  /** worker <-> relay <-> client, no direct worker-client link; the worker's agent waits for `release`. */
  async function line() {
    const network = createMemoryNetwork()
    const seen: string[] = []
    let release: () => void = () => {}
    const gate = new Promise<void>((r) => (release = r))
    const waiting: Array<(id: string) => void> = []
    const slow: AgentInit = {
      name: 'slow',
      capabilities: ['slow-math'],
      handle: async (input, ctx) => {
        seen.push(ctx.taskId)
        for (const w of waiting.splice(0)) w(ctx.taskId)
        await gate
        return { value: Number(input) * 2 }
      },
    }
    // no node dials on its own: neither discovery nor the DHT (contacts) nor gossip (its views)
    const noDial: NodeInit = { discovery: { autoDial: false }, dht: false, gossip: false }
    const relay = node(network, 'relay', noDial)
    await relay.start()
    const worker = node(network, 'worker', { ...noDial, agents: [slow], seeds: relay.addrs() })
    await worker.start()
    const client = node(network, 'client', { ...noDial, seeds: relay.addrs() })
    await client.start()
    const nextTask = () => new Promise<string>((r) => waiting.push(r))
    return { relay, worker, client, nextTask, release: () => release(), seen }
  }

  /** What a malicious relay sends back: a completed result for `taskId`, claiming the worker, signed by a throwaway key. */
  async function forge(taskId: string, to: string): Promise<Parameters<KosMeshNode['router']['send']>[0]> {
    const sybil = generateIdentity()
    const data: KLPValue = { status: 'completed', agent: 'klp://worker.mesh.kai/agents/slow', agent_id: 'x', capability: 'slow-math', result: { value: 666 }, duration_ms: 0 }
    return signMessage(createMessage({ type: KLPMessageType.TASK_RESPONSE, source: 'klp://worker.mesh.kai/agents/slow', target: `klp://${to}/`, correlation_id: taskId, data }), sybil.signer)
  }

  it('a DID target binds the answer to that DID: a relay forgery is refused, the real answer wins', async () => {
    const { relay, worker, client, nextTask, release } = await line()
    // the client knows the worker only from its signed node record (through the relay's table)
    expect(client.router.peers().map((p) => p.did)).not.toContain(worker.did)
    expect(client.router.routingTable.didOf('worker.mesh.kai')).toBeUndefined()
    expect(client.peers().find((p) => p.did === worker.did)).toMatchObject({ authority: 'worker.mesh.kai', connected: false })

    const taskId = nextTask()
    const pending = client.task(worker.did, { capability: 'slow-math', input: 21 }, { timeoutMs: 8000 })
    const mismatch = nextReject(client, 'response_mismatch')
    await relay.router.send(await forge(await taskId, 'client.mesh.kai'))
    await mismatch
    release()
    await expect(pending).resolves.toMatchObject({ result: { value: 42 } })
  })

  it('without a known DID (unpinned multi-hop klp:// target) the same forgery is accepted: why DID targets exist', async () => {
    const { relay, client, nextTask, release } = await line()
    const taskId = nextTask()
    const pending = client.task('klp://worker.mesh.kai/agents/slow', { capability: 'slow-math', input: 21 }, { timeoutMs: 8000 })
    await relay.router.send(await forge(await taskId, 'client.mesh.kai'))
    await expect(pending).resolves.toMatchObject({ result: { value: 666 } })
    release()
  })

  it('typed errors: unknown DID, and an expected signer the pins contradict', async () => {
    const { relay, worker, client, release } = await line()
    release()
    await expect(client.task(generateIdentity().did, { capability: 'echo', input: 1 })).rejects.toMatchObject({ name: 'UnknownPeerError', code: 'ERR_UNKNOWN_PEER' })
    await expect(client.task('did:nope', { capability: 'echo', input: 1 })).rejects.toMatchObject({ name: 'InvalidDidError', code: 'ERR_INVALID_DID' })
    // relay.mesh.kai is pinned to the relay: the worker's DID can never answer for it
    await expect(client.task('klp://relay.mesh.kai/', { capability: 'echo', input: 1 }, { expectedSigner: worker.did })).rejects.toMatchObject({
      name: 'TargetConflictError',
      code: 'ERR_TARGET_CONFLICT',
    })
    expect(client.router.routingTable.didOf('relay.mesh.kai')).toBe(relay.did)
  })
})

describe('trust klp://<authority> resolves through pins only', () => {
  it('refuses an authority known only from a (self-asserted) discovery record; works once connected', async () => {
    const network = createMemoryNetwork()
    const noDial: NodeInit = { discovery: { autoDial: false }, dht: false, gossip: false }
    const relay = node(network, 'relay', noDial)
    await relay.start()
    const worker = node(network, 'worker', { ...noDial, seeds: relay.addrs() })
    await worker.start()
    const client = node(network, 'client', { ...noDial, seeds: relay.addrs() })
    await client.start()
    // discovered, with the authority its record claims, but not authenticated by a hello
    expect(client.peers().find((p) => p.did === worker.did)?.authority).toBe('worker.mesh.kai')
    await expect(client.trust('klp://worker.mesh.kai/agents/math', 5)).rejects.toMatchObject({
      name: 'UnpinnedAuthorityError',
      code: 'ERR_UNPINNED_AUTHORITY',
      authority: 'worker.mesh.kai',
    })
    expect(client.trustStore.get(worker.did).trust_score).toBe(0)
    await client.connect(worker.addrs()[0] as string)
    await expect(client.trust('klp://worker.mesh.kai/agents/math', 5)).resolves.toMatchObject({ did: worker.did, trust_score: 5 })
    // the node's own authority resolves to its own DID
    await expect(client.trust('klp://client.mesh.kai', 1)).resolves.toMatchObject({ did: client.did })
  })
})
