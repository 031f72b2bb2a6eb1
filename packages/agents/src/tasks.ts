/**
 * The task service: answers TASK_REQUEST with the best eligible local agent (the spec's
 * handleTaskRequest), and sends tasks to other nodes. It is written against the interface's
 * `MessageRouter` contract and takes its time from an injected `Clock`, so it runs on any router
 * (klp-router, a test double) and in the simulator's virtual time.
 */
import {
  AbortError,
  InvalidParametersError,
  KLPMessageType,
  ProcessingStatus,
  TimeoutError,
  TrustObservation,
  didOfKeyId,
  isKosMeshError,
  systemClock,
  type AbortOptions,
  type Clock,
  type KLPAddress,
  type KLPMessage,
  type KLPValue,
  type MessageContext,
  type MessageRouter,
  type ProcessingResult,
  type Startable,
  type TimerHandle,
  type TrustEngine,
} from '@kos-mesh/interface'
import { DEFAULT_LIMITS, encodeValue, parseAddress } from '@kos-mesh/klp-codec'
import type { AgentRegistry } from './registry.js'
import type { Agent, TaskRequest, TaskResult } from './types.js'
import { checkDid } from '@kos-mesh/did-security'
import { AgentFailedError, InvalidTaskError, NoEligibleAgentsError, TargetConflictError, TaskTooLargeError, UnknownPeerError } from './errors.js'

/** Wire reason codes of task rejections (in `payload.data.error.code`). */
export const TaskRejectReason = {
  NO_ELIGIBLE_AGENTS: 'no_eligible_agents',
  INVALID_TASK: 'invalid_task',
  AGENT_FAILED: 'agent_failed',
  AGENT_TIMEOUT: 'agent_timeout',
} as const

/** Options of `taskService()`. */
export interface TaskServiceInit {
  /** Time an agent may take for one task, ms. Default 20,000 (below the router's handler timeout). */
  taskTimeoutMs?: number
}

/** Options of sending a task to another node (`TaskService.send`). */
export interface SendTaskOptions extends AbortOptions {
  /** Time to wait for the TASK_RESPONSE, ms. Default: the router's request timeout. */
  timeoutMs?: number
  /**
   * The DID that must sign the answer. Default: the DID of a `did:` target, else the DID the
   * target authority is pinned to (none for an unpinned multi-hop authority: then any signer not
   * bound to another authority could answer, see klp-router's security model).
   */
  expectedSigner?: string
}

/**
 * Receives what the service observed of the DIDs that answered its tasks: the `observe` of a
 * TrustEngine (so a trust engine itself fits), nothing else.
 */
export type TaskObserver = Pick<TrustEngine, 'observe'>

/** Error codes that are not an answer of the target (a forwarder's routing errors): not observed. */
const NOT_AN_ANSWER: ReadonlySet<string> = new Set(['no_route', 'hop_limit'])

/** Finds the authority a DID announced in its signed node record (discovery). */
export type AuthorityResolver = (did: string) => string | undefined

/** What the task service needs (js-libp2p module shape: only these). */
export interface TaskServiceComponents {
  /** The router the service registers its TASK_REQUEST handler on and sends tasks through. */
  router: MessageRouter
  /** Where the local agents live (`agents()` of this package, or an `AgentRegistry`). */
  agents: Pick<AgentRegistry, 'findEligible' | 'selectBest' | 'capabilities'>
  /** Time and timers (task durations, the per-task deadline). Default `systemClock`. */
  clock?: Clock
  /**
   * Resolves a DID target's authority when the router has no pin for it (e.g. from the DID's
   * signed node record in peer discovery). Default: none (only pins resolve DID targets).
   */
  authorityResolver?: AuthorityResolver
  /**
   * Told `task_ok` / `task_failed` about the DID that answered each task this node sent (a
   * completed result, or an error response or an answer that is not a result); deferrals, routing
   * errors from a forwarder and timeouts (the router reports those) are not told. Must not throw
   * (a throw is ignored). Default: none.
   */
  trustObserver?: TaskObserver
}

/**
 * The task service: runs TASK_REQUESTs on the node's agents (local and from peers) and sends tasks to other
 * nodes.
 */
export interface TaskService extends Startable {
  /** Runs a task on a local agent (the same selection as for remote requests). */
  run(request: TaskRequest, options?: AbortOptions & { agent?: string; from?: string; taskId?: string }): Promise<TaskResult>
  /**
   * Sends a TASK_REQUEST to `target` and resolves with the result. `target` is
   * `klp://authority[/agents/<name>]` or a DID (`did:key:...`, the best agent there). The answer
   * must be signed by the target's DID whenever it is known (a DID target, or a pinned authority),
   * so a relay on the path cannot forge it (`response_mismatch`).
   */
  send(target: string, request: TaskRequest, options?: SendTaskOptions): Promise<TaskResult>
  /** The router handler (exported for tests). */
  handleTaskRequest(message: KLPMessage, context: MessageContext): Promise<ProcessingResult>
}

const MAX_CAPABILITY_LENGTH = 128

function isMap(v: unknown): v is Record<string, KLPValue> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)
}

/** Validates a TASK_REQUEST payload. */
export function parseTaskRequest(data: unknown): TaskRequest {
  if (!isMap(data)) throw new InvalidTaskError(`expected a task map { capability, input }, got ${data === null ? 'null' : Array.isArray(data) ? 'array' : typeof data}`)
  const { capability, input, params } = data
  if (typeof capability !== 'string' || capability.length === 0 || capability.length > MAX_CAPABILITY_LENGTH) {
    throw new InvalidTaskError(`expected capability to be a string of 1..${MAX_CAPABILITY_LENGTH} characters, got ${typeof capability === 'string' ? `${capability.length} characters` : typeof capability}`)
  }
  if (!('input' in data)) throw new InvalidTaskError('expected an input field, got none')
  if (params !== undefined && !isMap(params)) throw new InvalidTaskError(`expected params to be a map, got ${typeof params}`)
  return params === undefined ? { capability, input: input as KLPValue } : { capability, input: input as KLPValue, params }
}

/**
 * Checks that a task request fits the codec's limits (strings, items, depth, message size) before
 * anything is sent: too large an input is the caller's error (TaskTooLargeError), not a failure.
 */
export function checkTaskSize(request: TaskRequest): void {
  let bytes: Uint8Array
  try {
    bytes = encodeValue(request as unknown as KLPValue)
  } catch (err) {
    if (isKosMeshError(err)) throw new TaskTooLargeError(`expected a task request within the codec limits, got: ${(err as Error).message}`, { cause: err })
    throw err
  }
  if (bytes.byteLength > DEFAULT_LIMITS.maxMessageSize) {
    throw new TaskTooLargeError(`expected a task request of at most ${DEFAULT_LIMITS.maxMessageSize} bytes encoded, got ${bytes.byteLength}`)
  }
}

/** The agent name a target path asks for: `/agents/<name>` -> name; `/` or `/agents` -> any. */
export function agentNameOfPath(path: string): string | undefined {
  const m = /^\/agents\/([^/]+)\/?$/.exec(path)
  return m?.[1]
}

function isTaskResult(v: unknown): v is TaskResult {
  return isMap(v) && v.status === 'completed' && typeof v.agent === 'string' && 'result' in v
}

class TaskServiceImpl implements TaskService {
  private readonly timeoutMs: number
  private controller = new AbortController()
  private started = false

  private readonly router: MessageRouter
  private readonly agents: TaskServiceComponents['agents']
  private readonly clock: Clock
  private readonly resolveAuthority: AuthorityResolver
  private readonly observer: TaskObserver | undefined

  constructor(init: TaskServiceInit, components: TaskServiceComponents) {
    const timeoutMs = init.taskTimeoutMs ?? 20_000
    if (!(typeof timeoutMs === 'number' && Number.isFinite(timeoutMs) && timeoutMs > 0)) {
      throw new InvalidParametersError(`expected taskTimeoutMs to be a positive number of ms, got ${String(timeoutMs)}`)
    }
    this.timeoutMs = timeoutMs
    this.router = components.router
    this.agents = components.agents
    this.clock = components.clock ?? systemClock
    this.resolveAuthority = components.authorityResolver ?? (() => undefined)
    this.observer = components.trustObserver
  }

  /** Tells the observer how the DID that signed `response` answered; never throws. */
  private observe(response: unknown, outcome: TrustObservation): void {
    if (this.observer?.observe === undefined || response === null || typeof response !== 'object') return
    const signer = (response as { signer?: unknown }).signer
    if (typeof signer !== 'string') return
    try {
      const did = didOfKeyId(signer)
      if (did !== this.router.did) this.observer.observe(did, outcome)
    } catch {
      // an observer must not break a task
    }
  }

  start(): void {
    if (this.started) return
    this.controller = new AbortController()
    this.router.handle(KLPMessageType.TASK_REQUEST, (m, c) => this.handleTaskRequest(m, c))
    this.started = true
  }

  stop(): void {
    if (!this.started) return
    this.started = false
    this.controller.abort(new AbortError('the node is stopping'))
    this.router.unhandle(KLPMessageType.TASK_REQUEST)
  }

  isStarted(): boolean {
    return this.started
  }

  private select(request: TaskRequest, agentName: string | undefined): Agent {
    const agent = this.agents.selectBest(this.agents.findEligible(request, agentName))
    if (agent === undefined) {
      const where = agentName === undefined ? 'no local agent' : `no agent named "${agentName}"`
      throw new NoEligibleAgentsError(`${where} has capability "${request.capability}" with room for a task (offered: ${this.agents.capabilities().join(', ') || 'none'})`)
    }
    return agent
  }

  private async assign(agent: Agent, request: TaskRequest, options: AbortOptions & { from?: string; taskId?: string }): Promise<TaskResult> {
    const started = this.clock.now()
    // the deadline is a timer of the injected clock (virtual in the simulator): it fails the task
    // first, then aborts the agent's signal
    const timeout = new AbortController()
    const signal = AbortSignal.any([this.controller.signal, timeout.signal, ...(options.signal === undefined ? [] : [options.signal])])
    let timer: TimerHandle | undefined
    const deadline = new Promise<never>((_, reject) => {
      timer = this.clock.setTimeout(() => {
        const err = new TimeoutError(`expected agent ${agent.name} to finish within ${this.timeoutMs} ms`)
        reject(err)
        timeout.abort(err)
      }, this.timeoutMs)
    })
    let result: KLPValue
    try {
      result = await Promise.race([
        agent.handle(request.input, {
          capability: request.capability,
          params: request.params ?? {},
          from: options.from ?? this.router.did,
          taskId: options.taskId ?? '',
          signal,
        }),
        deadline,
      ])
    } catch (err) {
      if (err instanceof TimeoutError) throw err
      const msg = err instanceof Error && isKosMeshError(err) ? err.message : 'the agent failed'
      throw new AgentFailedError(`agent ${agent.name}: ${msg}`, { cause: err })
    } finally {
      this.clock.clearTimeout(timer)
    }
    return { status: 'completed', agent: agent.address, agent_id: agent.id, capability: request.capability, result, duration_ms: this.clock.now() - started }
  }

  async run(request: TaskRequest, options: AbortOptions & { agent?: string; from?: string; taskId?: string } = {}): Promise<TaskResult> {
    const req = parseTaskRequest(request)
    return this.assign(this.select(req, options.agent), req, options)
  }

  async handleTaskRequest(message: KLPMessage, context: MessageContext): Promise<ProcessingResult> {
    const reject = async (code: string, text: string): Promise<ProcessingResult> => ({
      status: ProcessingStatus.REJECTED,
      reason: code,
      response: await this.router.createResponse(message, { status: 'rejected', error: { code, message: text } }),
    })
    let request: TaskRequest
    try {
      request = parseTaskRequest(message.payload.data)
    } catch (err) {
      return reject(TaskRejectReason.INVALID_TASK, (err as Error).message)
    }
    const agentName = agentNameOfPath(message.target.path)
    let agent: Agent
    try {
      agent = this.select(request, agentName)
    } catch (err) {
      return reject(TaskRejectReason.NO_ELIGIBLE_AGENTS, (err as Error).message)
    }
    try {
      const result = await this.assign(agent, request, {
        from: context.signerDid,
        taskId: message.metadata.message_id,
        ...(context.signal === undefined ? {} : { signal: context.signal }),
      })
      return { status: ProcessingStatus.PROCESSED, response: await this.router.createResponse(message, result as unknown as KLPValue) }
    } catch (err) {
      if (err instanceof TimeoutError) return reject(TaskRejectReason.AGENT_TIMEOUT, err.message)
      return reject(TaskRejectReason.AGENT_FAILED, (err as Error).message)
    }
  }

  async send(target: string, request: TaskRequest, options: SendTaskOptions = {}): Promise<TaskResult> {
    const req = parseTaskRequest(request)
    if (typeof target !== 'string') throw new InvalidParametersError(`expected a klp:// address or a DID, got ${typeof target}`)
    let addr: KLPAddress
    let expectedSigner = options.expectedSigner
    if (target.startsWith('did:')) {
      checkDid(target, 'a target DID like did:key:z6Mk...')
      if (expectedSigner !== undefined && expectedSigner !== target) throw new InvalidParametersError(`expected expectedSigner to be the target DID ${target}, got ${expectedSigner}`)
      expectedSigner = target
      // an authenticated pin first; else the authority of the DID's own signed node record (a
      // wrong one cannot forge anything: the answer must still be signed by this DID)
      const authority = this.router.authorityOf(target) ?? this.resolveAuthority(target)
      if (authority === undefined) throw new UnknownPeerError(target)
      addr = parseAddress(`klp://${authority}/`)
    } else {
      addr = parseAddress(target)
    }
    const pinned = this.router.didOf(addr.authority)
    if (expectedSigner === undefined) expectedSigner = pinned
    else if (pinned !== undefined && pinned !== expectedSigner) {
      throw new TargetConflictError(`expected ${addr.authority} to be pinned to ${expectedSigner}, got it pinned to ${pinned}`)
    }
    checkTaskSize(req)
    let response: KLPMessage
    try {
      response = await this.router.request(
        { type: KLPMessageType.TASK_REQUEST, target: addr, data: req as unknown as KLPValue },
        {
          ...(options.signal === undefined ? {} : { signal: options.signal }),
          ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
          ...(expectedSigner === undefined ? {} : { expectedSigner }),
        },
      )
    } catch (err) {
      // the signed envelope of this request (body + headers) is over the message size limit
      if ((err as Error | undefined)?.name === 'MessageTooLargeError') throw new TaskTooLargeError(`expected a task request within the message size limit, got: ${(err as Error).message}`, { cause: err })
      // an error response of the target (RemoteRejectedError carries it): the answerer failed the task
      const e = err as { name?: unknown; reason?: unknown; response?: unknown } | undefined
      if (e?.name === 'RemoteRejectedError' && !(typeof e.reason === 'string' && NOT_AN_ANSWER.has(e.reason))) this.observe(e.response, TrustObservation.TASK_FAILED)
      throw err
    }
    const data = response.payload.data
    if (!isTaskResult(data)) {
      this.observe(response, TrustObservation.TASK_FAILED)
      throw new InvalidTaskError(`expected a completed task result, got ${JSON.stringify(data)?.slice(0, 120)}`)
    }
    this.observe(response, TrustObservation.TASK_OK)
    return data
  }
}

/**
 * The task service (`taskService(init)(components)`): registers the TASK_REQUEST handler at
 * `start()` (no path: it takes every task no path-specific handler claims) and removes it at
 * `stop()`, which also aborts running agents.
 */
export function taskService(init: TaskServiceInit = {}): (components: TaskServiceComponents) => TaskService {
  return (components) => new TaskServiceImpl(init, components)
}
