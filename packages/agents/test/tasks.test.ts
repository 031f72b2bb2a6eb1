/**
 * The task service on the MessageRouter contract: first on a test double of the router with the
 * simulator's virtual clock (deterministic: deadlines and durations are exact virtual times), then
 * on real routers from klp-router's createTestnet (the wire format, reason codes and trust checks
 * as peers see them).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { generateIdentity } from '@kos-mesh/did-security'
import { KLPMessageType, KosMeshError, ProcessingStatus, type KLPMessage, type KLPValue, type ProcessingResult } from '@kos-mesh/interface'
import { createMessage, MessageTooLargeError, parseAddress, signMessage } from '@kos-mesh/klp-codec'
import { createTestnet, type Testnet } from '@kos-mesh/klp-router/testnet'
import { createMemoryNetwork, type MemoryNetwork } from '@kos-mesh/transport-memory'
import { agents, echoAgent, mathAgent, taskService, TaskRejectReason, type AgentContext, type AgentInit, type TaskObserver, type TaskService } from '../src/index.js'
import { contextOf, FakeRouter, taskMessage } from './helpers.js'

const client = generateIdentity()

/** A settled-or-not probe of a promise (no timing involved). */
function probe<T>(p: Promise<T>): { settled: () => boolean; value: () => T } {
  let done = false
  let value: T
  void p.then((v) => {
    done = true
    value = v
  })
  return { settled: () => done, value: () => value }
}

/** Lets every pending promise callback run (the virtual clock does not move). */
const flush = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await Promise.resolve()
}

function rejection(r: ProcessingResult): { status: string; reason?: string; code?: string; message?: string } {
  const data = r.response?.payload.data as { status?: string; error?: { code?: string; message?: string } } | undefined
  return { status: r.status, ...(r.reason === undefined ? {} : { reason: r.reason }), ...(data?.error === undefined ? {} : { code: data.error.code, message: data.error.message }) }
}

describe('task service on a MessageRouter test double, in virtual time', () => {
  let network: MemoryNetwork
  let router: FakeRouter
  let service: TaskService

  function setup(list: AgentInit[], taskTimeoutMs?: number): void {
    network = createMemoryNetwork({ time: 'virtual', startTime: 1_000_000 })
    router = new FakeRouter()
    const registry = agents({ agents: list })({ nodeInfo: { authority: router.authority, did: router.did } })
    service = taskService(taskTimeoutMs === undefined ? {} : { taskTimeoutMs })({ router, agents: registry, clock: network.clock })
    service.start()
  }

  async function ask(data: KLPValue, path = '/', signal?: AbortSignal): Promise<ProcessingResult> {
    const handler = router.handler(KLPMessageType.TASK_REQUEST)
    if (handler === undefined) throw new Error('no TASK_REQUEST handler registered')
    return handler(await taskMessage(client, data, `klp://${router.authority}${path}`), contextOf(client, network.clock.now(), signal))
  }

  it('registers its TASK_REQUEST handler (no path) at start and removes it at stop', () => {
    setup([echoAgent()])
    expect([...router.handlers.keys()]).toEqual(['TASK_REQUEST '])
    expect(service.isStarted?.()).toBe(true)
    service.start() // idempotent: no duplicate registration
    service.stop()
    expect(router.handlers.size).toBe(0)
    expect(service.isStarted?.()).toBe(false)
  })

  it('answers with the best eligible agent; duration_ms is the clock time the agent took', async () => {
    setup([
      mathAgent(),
      { name: 'slow-echo', capabilities: ['echo'], priority: 9, handle: async (input) => { await network.clock.sleep(1500); return input } },
    ])
    const pending = probe(ask({ capability: 'echo', input: { a: [1, 'x'] } }))
    await flush()
    expect(pending.settled()).toBe(false) // the agent sleeps 1500 ms of virtual time
    await network.runFor(1500)
    await flush()
    const r = pending.value()
    expect(r.status).toBe(ProcessingStatus.PROCESSED)
    expect(r.response?.type).toBe(KLPMessageType.TASK_RESPONSE)
    expect(r.response?.metadata.correlation_id).toBeDefined()
    expect(r.response?.payload.data).toEqual({
      status: 'completed',
      agent: 'klp://fake.mesh.kai/agents/slow-echo',
      agent_id: `${router.did}/agents/slow-echo`,
      capability: 'echo',
      result: { a: [1, 'x'] },
      duration_ms: 1500,
    })
    // the agent named by the path, and what it sees of the task
    let seen: AgentContext | undefined
    setup([{ name: 'spy', capabilities: ['echo'], handle: (input, ctx) => { seen = ctx; return input } }, echoAgent()])
    const msg = await taskMessage(client, { capability: 'echo', input: 1, params: { top: 2 } }, 'klp://fake.mesh.kai/agents/spy')
    const ok = await router.handler(KLPMessageType.TASK_REQUEST)!(msg, contextOf(client, 0))
    expect((ok.response?.payload.data as { agent: string }).agent).toBe('klp://fake.mesh.kai/agents/spy')
    expect(seen).toMatchObject({ capability: 'echo', params: { top: 2 }, from: client.did, taskId: msg.metadata.message_id })
  })

  it('rejects with the wire reason codes and a signed error response', async () => {
    setup([mathAgent(), { name: 'broken', capabilities: ['broken'], handle: () => { throw new Error('secret internal detail') } }])
    expect(rejection(await ask({ input: 1 }))).toMatchObject({ status: ProcessingStatus.REJECTED, reason: 'invalid_task', code: 'invalid_task' })
    expect(rejection(await ask('not a map'))).toMatchObject({ reason: TaskRejectReason.INVALID_TASK })
    expect(rejection(await ask({ capability: 'translate', input: 'hola' }))).toMatchObject({ reason: 'no_eligible_agents', code: 'no_eligible_agents' })
    expect(rejection(await ask({ capability: 'math', input: '1+1' }, '/agents/nope'))).toMatchObject({ reason: 'no_eligible_agents' })
    const failed = rejection(await ask({ capability: 'math', input: '1/0' }))
    expect(failed).toMatchObject({ reason: 'agent_failed', code: 'agent_failed' })
    expect(failed.message).toContain('non-zero divisor') // a typed error's message is passed on
    const broken = rejection(await ask({ capability: 'broken', input: null }))
    expect(broken).toMatchObject({ reason: 'agent_failed' })
    expect(broken.message).not.toContain('secret') // an untyped one is not
    const response = (await ask({ capability: 'translate', input: 'x' })).response as KLPMessage
    expect(response.payload.data).toMatchObject({ status: 'rejected', error: { code: 'no_eligible_agents' } })
    expect(response.signer.startsWith(router.did)).toBe(true)
  })

  it('agent_timeout: the deadline is a timer of the injected clock, exact in virtual time', async () => {
    let signal: AbortSignal | undefined
    setup([{ name: 'stuck', capabilities: ['stuck'], handle: (_input, ctx) => { signal = ctx.signal; return new Promise(() => {}) } }], 5000)
    const pending = probe(ask({ capability: 'stuck', input: null }))
    await flush()
    network.advance(4999)
    await flush()
    expect(pending.settled()).toBe(false)
    expect(signal?.aborted).toBe(false)
    network.advance(1)
    await flush()
    expect(rejection(pending.value())).toMatchObject({ reason: 'agent_timeout', code: 'agent_timeout' })
    expect(signal?.aborted).toBe(true)
    expect((signal?.reason as Error).name).toBe('TimeoutError')
    expect(network.pendingEvents).toBe(0) // no timer left behind
  })

  it('a finished task clears its deadline timer', async () => {
    setup([echoAgent()], 5000)
    await ask({ capability: 'echo', input: 1 })
    expect(network.pendingEvents).toBe(0)
  })

  it('stop() and the router\'s handler signal abort running agents', async () => {
    const signals: AbortSignal[] = []
    const waitForAbort: AgentInit['handle'] = (_input, ctx) => {
      signals.push(ctx.signal)
      return new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error)))
    }
    setup([{ name: 'waiter', capabilities: ['wait'], handle: waitForAbort }])
    const stopped = ask({ capability: 'wait', input: null })
    await flush()
    service.stop()
    expect(rejection(await stopped)).toMatchObject({ reason: 'agent_failed' })
    expect((signals[0]?.reason as Error).name).toBe('AbortError')

    setup([{ name: 'waiter', capabilities: ['wait'], handle: waitForAbort }])
    const controller = new AbortController()
    const cancelled = ask({ capability: 'wait', input: null }, '/', controller.signal)
    await flush()
    controller.abort(new Error('handler timeout'))
    expect(rejection(await cancelled)).toMatchObject({ reason: 'agent_failed' })
    expect(signals[1]?.aborted).toBe(true)
  })

  it('run(): a local task with the same selection, typed errors', async () => {
    setup([mathAgent(), echoAgent()])
    await expect(service.run({ capability: 'math', input: '6 * 7' })).resolves.toMatchObject({ status: 'completed', agent: 'klp://fake.mesh.kai/agents/math', result: { value: 42 } })
    await expect(service.run({ capability: 'math', input: '1' }, { agent: 'echo' })).rejects.toMatchObject({ name: 'NoEligibleAgentsError', code: 'ERR_NO_ELIGIBLE_AGENTS' })
    await expect(service.run({ capability: 'math', input: '1/0' })).rejects.toMatchObject({ name: 'AgentFailedError', code: 'ERR_AGENT_FAILED' })
    await expect(service.run({ input: 1 } as never)).rejects.toMatchObject({ name: 'InvalidTaskError', code: 'ERR_INVALID_TASK' })
    expect(() => taskService({ taskTimeoutMs: 0 })({ router, agents: agents()() })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
  })
})

describe('task service: send() binds the answer to the target', () => {
  let router: FakeRouter
  let service: TaskService
  const worker = generateIdentity()
  const other = generateIdentity()

  const completed = { status: 'completed', agent: 'klp://worker.mesh.kai/agents/math', agent_id: 'x', capability: 'math', result: 42, duration_ms: 1 }

  async function answer(data: KLPValue): Promise<KLPMessage> {
    return signMessage(createMessage({ type: KLPMessageType.TASK_RESPONSE, source: 'klp://worker.mesh.kai/', target: 'klp://fake.mesh.kai/', data }), worker.signer)
  }

  function setup(resolver?: (did: string) => string | undefined): void {
    router = new FakeRouter()
    router.respond = () => answer(completed)
    service = taskService()({ router, agents: agents()(), ...(resolver === undefined ? {} : { authorityResolver: resolver }) })
  }

  it('a klp:// target: a TASK_REQUEST to that address, answered only by the DID the authority is pinned to', async () => {
    setup()
    router.pins.set('worker.mesh.kai', worker.did)
    await expect(service.send('klp://worker.mesh.kai/agents/math', { capability: 'math', input: '6*7' }, { timeoutMs: 1234 })).resolves.toEqual(completed)
    const [sent] = router.requests
    expect(sent?.init).toEqual({ type: KLPMessageType.TASK_REQUEST, target: parseAddress('klp://worker.mesh.kai/agents/math'), data: { capability: 'math', input: '6*7' } })
    expect(sent?.options).toEqual({ timeoutMs: 1234, expectedSigner: worker.did })
    // unpinned (several hops away): no expected signer, the router's source binding decides
    await service.send('klp://far.mesh.kai/', { capability: 'math', input: '1' })
    expect(router.requests[1]?.options).toEqual({})
  })

  it('a DID target: resolved through the pin, else the resolver, and the answer must be signed by that DID', async () => {
    setup((did) => (did === other.did ? 'other.mesh.kai' : undefined))
    router.pins.set('worker.mesh.kai', worker.did)
    await service.send(worker.did, { capability: 'math', input: '1' })
    expect(router.requests[0]?.init.target).toEqual(parseAddress('klp://worker.mesh.kai/'))
    expect(router.requests[0]?.options?.expectedSigner).toBe(worker.did)
    await service.send(other.did, { capability: 'math', input: '1' })
    expect(router.requests[1]?.init.target).toEqual(parseAddress('klp://other.mesh.kai/'))
    expect(router.requests[1]?.options?.expectedSigner).toBe(other.did)
    await expect(service.send(generateIdentity().did, { capability: 'math', input: '1' })).rejects.toMatchObject({ name: 'UnknownPeerError', code: 'ERR_UNKNOWN_PEER' })
    await expect(service.send('did:nope', { capability: 'math', input: '1' })).rejects.toMatchObject({ name: 'InvalidDidError', code: 'ERR_INVALID_DID' })
    await expect(service.send(worker.did, { capability: 'math', input: '1' }, { expectedSigner: other.did })).rejects.toMatchObject({ name: 'InvalidParametersError' })
    expect(router.requests).toHaveLength(2)
  })

  it('refuses a target pinned to another DID than the expected signer (TargetConflictError)', async () => {
    setup((did) => (did === other.did ? 'worker.mesh.kai' : undefined)) // a wrong node record
    router.pins.set('worker.mesh.kai', worker.did)
    await expect(service.send('klp://worker.mesh.kai/', { capability: 'math', input: '1' }, { expectedSigner: other.did })).rejects.toMatchObject({
      name: 'TargetConflictError',
      code: 'ERR_TARGET_CONFLICT',
    })
    await expect(service.send(other.did, { capability: 'math', input: '1' })).rejects.toMatchObject({ name: 'TargetConflictError' })
    expect(router.requests).toHaveLength(0)
  })

  it('checks the request before sending and the answer after', async () => {
    setup()
    await expect(service.send('klp://worker.mesh.kai/', { capability: 'echo', input: 'x'.repeat(300 * 1024) })).rejects.toMatchObject({ name: 'TaskTooLargeError', code: 'ERR_TASK_TOO_LARGE' })
    await expect(service.send('klp://worker.mesh.kai/', { capability: '', input: 1 })).rejects.toMatchObject({ name: 'InvalidTaskError' })
    expect(router.requests).toHaveLength(0)
    router.respond = () => Promise.reject(new MessageTooLargeError('expected at most 1 MiB, got more'))
    await expect(service.send('klp://worker.mesh.kai/', { capability: 'echo', input: 1 })).rejects.toMatchObject({ name: 'TaskTooLargeError' })
    router.respond = () => Promise.reject(new KosMeshError('boom'))
    await expect(service.send('klp://worker.mesh.kai/', { capability: 'echo', input: 1 })).rejects.toMatchObject({ message: 'boom' })
    router.respond = () => answer({ status: 'rejected' })
    await expect(service.send('klp://worker.mesh.kai/', { capability: 'echo', input: 1 })).rejects.toMatchObject({ name: 'InvalidTaskError', code: 'ERR_INVALID_TASK' })
  })
  it('tells a trust observer about the answering DID: a non-result is task_failed; routing errors and deferrals are not answers', async () => {
    const seen: Array<[string, string]> = []
    router = new FakeRouter()
    service = taskService()({ router, agents: agents()(), trustObserver: { observe: (did, outcome) => seen.push([did, outcome]) } })
    const rejected = async (reason: string, name = 'RemoteRejectedError'): Promise<never> => {
      throw Object.assign(new KosMeshError(`rejected: ${reason}`), { name, reason, response: await answer({ status: 'rejected', error: { code: reason, message: '' } }) })
    }
    router.respond = () => answer(completed)
    await service.send('klp://worker.mesh.kai/', { capability: 'echo', input: 1 })
    router.respond = () => answer({ status: 'rejected' })
    await expect(service.send('klp://worker.mesh.kai/', { capability: 'echo', input: 1 })).rejects.toMatchObject({ name: 'InvalidTaskError' })
    router.respond = () => rejected('agent_failed')
    await expect(service.send('klp://worker.mesh.kai/', { capability: 'echo', input: 1 })).rejects.toMatchObject({ reason: 'agent_failed' })
    router.respond = () => rejected('no_route')
    await expect(service.send('klp://worker.mesh.kai/', { capability: 'echo', input: 1 })).rejects.toMatchObject({ reason: 'no_route' })
    router.respond = () => rejected('busy', 'RequestDeferredError')
    await expect(service.send('klp://worker.mesh.kai/', { capability: 'echo', input: 1 })).rejects.toMatchObject({ name: 'RequestDeferredError' })
    expect(seen).toEqual([[worker.did, 'task_ok'], [worker.did, 'task_failed'], [worker.did, 'task_failed']])
  })
})

describe('task service on klp-router (createTestnet)', () => {
  let net: Testnet | undefined
  const services: TaskService[] = []

  afterEach(async () => {
    for (const s of services.splice(0)) s.stop()
    await net?.stop()
    net = undefined
  })

  function serve(i: number, list: AgentInit[], taskTimeoutMs?: number, trustObserver?: TaskObserver): TaskService {
    const n = net!.nodes[i]!
    const s = taskService(taskTimeoutMs === undefined ? {} : { taskTimeoutMs })({
      router: n.router,
      agents: agents({ agents: list })({ nodeInfo: { authority: n.authority, did: n.did } }),
      clock: net!.network.clock,
      ...(trustObserver === undefined ? {} : { trustObserver }),
    })
    s.start()
    services.push(s)
    return s
  }

  it('tasks cross the mesh with the wire reason codes', async () => {
    net = await createTestnet(3)
    let stuck = 0
    serve(0, [mathAgent(), echoAgent(), { name: 'stuck', capabilities: ['stuck'], handle: (_i, ctx) => { stuck++; return new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error))) } }], 200)
    const client = serve(2, [])
    const w = net.nodes[0]!
    await expect(client.send(`klp://${w.authority}/agents/math`, { capability: 'math', input: '6 * 7' })).resolves.toMatchObject({
      status: 'completed',
      agent: `klp://${w.authority}/agents/math`,
      agent_id: `${w.did}/agents/math`,
      capability: 'math',
      result: { expression: '6 * 7', value: 42 },
    })
    await expect(client.send(w.did, { capability: 'echo', input: { x: [1, 2] } })).resolves.toMatchObject({ result: { x: [1, 2] } })
    await expect(client.send(`klp://${w.authority}/`, { capability: 'translate', input: 'hola' })).rejects.toMatchObject({ name: 'RemoteRejectedError', reason: 'no_eligible_agents' })
    await expect(client.send(`klp://${w.authority}/`, { capability: 'math', input: '1/0' })).rejects.toMatchObject({ reason: 'agent_failed' })
    await expect(client.send(`klp://${w.authority}/`, { capability: 'stuck', input: null })).rejects.toMatchObject({ reason: 'agent_timeout' })
    expect(stuck).toBe(1)
    // a malformed payload sent through the bare router
    await expect(net.nodes[2]!.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${w.authority}/`, data: { nope: true } })).rejects.toMatchObject({ reason: 'invalid_task' })
    // the answer must come from the addressed node: node-1 is pinned to its own DID
    await expect(client.send(`klp://${net.nodes[1]!.authority}/`, { capability: 'math', input: '1' }, { expectedSigner: w.did })).rejects.toMatchObject({ name: 'TargetConflictError' })
  })

  it('the receiver\'s trust policy runs before any agent: insufficient_trust until the sender is trusted', async () => {
    const strict = { minimum_trust_score: 5, required_endorsements: 0, verification_level: 'none' as const }
    net = await createTestnet(2, { router: { trustPolicy: { [KLPMessageType.TASK_REQUEST]: strict } } })
    let runs = 0
    serve(0, [{ name: 'count', capabilities: ['count'], handle: () => ++runs }])
    const client = serve(1, [])
    const target = `klp://${net.nodes[0]!.authority}/`
    await expect(client.send(target, { capability: 'count', input: null })).rejects.toMatchObject({ reason: 'insufficient_trust' })
    expect(runs).toBe(0)
    net.nodes[0]!.trust.set(net.nodes[1]!.did, { trust_score: 6 })
    await expect(client.send(target, { capability: 'count', input: null })).resolves.toMatchObject({ result: 1 })
  })

  it('tells the trust observer how the DID that answered did: task_ok, task_failed; a throwing observer changes nothing', async () => {
    net = await createTestnet(2)
    serve(0, [mathAgent()])
    const seen: Array<[string, string]> = []
    let throws = false
    const client = serve(1, [], undefined, {
      observe: (did, outcome) => {
        seen.push([did, outcome])
        if (throws) throw new Error('observer down')
      },
    })
    const w = net.nodes[0]!
    await expect(client.send(`klp://${w.authority}/`, { capability: 'math', input: '6 * 7' })).resolves.toMatchObject({ result: { value: 42 } })
    await expect(client.send(`klp://${w.authority}/`, { capability: 'math', input: '1/0' })).rejects.toMatchObject({ reason: 'agent_failed' })
    expect(seen).toEqual([[w.did, 'task_ok'], [w.did, 'task_failed']])
    throws = true
    await expect(client.send(w.did, { capability: 'math', input: '1 + 1' })).resolves.toMatchObject({ result: { value: 2 } })
    expect(seen).toHaveLength(3)
  })
})
