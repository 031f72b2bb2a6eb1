import type { KLPValue } from '@kos-mesh/interface'

/** What an agent's `handle` receives besides its input. */
export interface AgentContext {
  /** The capability the task asked for. */
  readonly capability: string
  /** Optional task parameters (a CBOR map), `{}` when none. */
  readonly params: Readonly<Record<string, KLPValue>>
  /** DID that signed the task request (the local DID for local tasks). */
  readonly from: string
  /** The request's message id (empty for local tasks). */
  readonly taskId: string
  /** Aborted when the node stops or the task times out. */
  readonly signal: AbortSignal
}

/** What a node needs to host an agent. */
export interface AgentInit {
  /** Path segment of the agent address: `[a-z0-9][a-z0-9._-]*`, at most 64 characters. */
  name: string
  /** Capability names the agent answers (e.g. `text-stats`, `math`). At least one. */
  capabilities: readonly string[]
  /** Stable id. Default: `<node DID>/agents/<name>`, assigned when registered. */
  id?: string
  /** Static preference among eligible agents, 0..10 (higher wins). Default 5. */
  priority?: number
  /** Tasks this agent runs at once; beyond it the agent is not eligible. Default 16. */
  maxConcurrent?: number
  /** Short text for `peers`/`status` listings. */
  description?: string
  /** The agent's work: takes the task's input and its context, returns (or resolves to) the output. */
  handle(input: KLPValue, ctx: AgentContext): KLPValue | Promise<KLPValue>
}

/** An agent registered on a node. */
export interface Agent {
  readonly id: string
  readonly name: string
  /** `klp://<node authority>/agents/<name>` */
  readonly address: string
  readonly capabilities: readonly string[]
  readonly priority: number
  readonly maxConcurrent: number
  readonly description: string
  /** Tasks running now. */
  readonly inFlight: number
  /** Runs one task with this agent (counted in `inFlight` while it runs). */
  handle(input: KLPValue, ctx: AgentContext): Promise<KLPValue>
}

/** The TASK_REQUEST payload (`payload.data`). */
export interface TaskRequest {
  /** The capability an agent must have. */
  capability: string
  input: KLPValue
  /** Optional parameters passed to the agent. */
  params?: Record<string, KLPValue>
}

/** The TASK_RESPONSE payload (`payload.data`) of a completed task. */
export interface TaskResult {
  status: 'completed'
  /** Address of the agent that ran the task. */
  agent: string
  agent_id: string
  capability: string
  result: KLPValue
  duration_ms: number
}
