/**
 * The task service: answers TASK_REQUEST with the best eligible local agent (the spec's
 * handleTaskRequest), and sends tasks to other nodes.
 */
import {
  AbortError,
  KLPMessageType,
  ProcessingStatus,
  TimeoutError,
  isKosMeshError,
  type AbortOptions,
  type KLPMessage,
  type KLPValue,
  type MessageContext,
  type ProcessingResult,
  type Startable,
} from '@kos-mesh/interface'
import { parseAddress } from '@kos-mesh/klp-codec'
import type { Router } from '@kos-mesh/klp-router'
import type { AgentRegistry } from '../agents/registry.js'
import type { Agent, TaskRequest, TaskResult } from '../agents/types.js'
import { defineService, type NodeService } from '../components.js'
import { AgentFailedError, InvalidTaskError, NoEligibleAgentsError } from '../errors.js'

/** Wire reason codes of task rejections (in `payload.data.error.code`). */
export const TaskRejectReason = {
  NO_ELIGIBLE_AGENTS: 'no_eligible_agents',
  INVALID_TASK: 'invalid_task',
  AGENT_FAILED: 'agent_failed',
  AGENT_TIMEOUT: 'agent_timeout',
} as const

export interface TaskServiceInit {
  /** Time an agent may take for one task, ms. Default 20,000 (below the router's handler timeout). */
  taskTimeoutMs?: number
}

export interface SendTaskOptions extends AbortOptions {
  /** Time to wait for the TASK_RESPONSE, ms. Default: the router's request timeout. */
  timeoutMs?: number
}

export interface TaskService extends Startable {
  /** Runs a task on a local agent (the same selection as for remote requests). */
  run(request: TaskRequest, options?: AbortOptions & { agent?: string; from?: string; taskId?: string }): Promise<TaskResult>
  /** Sends a TASK_REQUEST to `target` (`klp://authority[/agents/<name>]`) and resolves with the result. */
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

  constructor(
    init: TaskServiceInit,
    private readonly router: Router,
    private readonly agents: AgentRegistry,
    private readonly now: () => number,
  ) {
    this.timeoutMs = init.taskTimeoutMs ?? 20_000
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
    const started = this.now()
    const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(this.timeoutMs), ...(options.signal === undefined ? [] : [options.signal])])
    let timer: ReturnType<typeof setTimeout> | undefined
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(`expected agent ${agent.name} to finish within ${this.timeoutMs} ms`)), this.timeoutMs)
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
      clearTimeout(timer)
    }
    return { status: 'completed', agent: agent.address, agent_id: agent.id, capability: request.capability, result, duration_ms: this.now() - started }
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
    const addr = parseAddress(target)
    const response = await this.router.request(
      { type: KLPMessageType.TASK_REQUEST, target: addr, data: req as unknown as KLPValue },
      { ...(options.signal === undefined ? {} : { signal: options.signal }), ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }) },
    )
    const data = response.payload.data
    if (!isTaskResult(data)) throw new InvalidTaskError(`expected a completed task result, got ${JSON.stringify(data)?.slice(0, 120)}`)
    return data
  }
}

/** The task service factory (`services: { tasks: taskService() }`). Needs `router` and `agents`. */
export function taskService(init: TaskServiceInit = {}): NodeService<TaskService> {
  return defineService(['router', 'agents', 'clock'], (c) => new TaskServiceImpl(init, c.router, c.agents, () => c.clock.now()))
}
