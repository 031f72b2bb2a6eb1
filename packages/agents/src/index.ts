/**
 * @kos-mesh/agents: the agent runtime of a kos-mesh node. An agent registry (eligibility by
 * capability and load, selection by score, bounded), the built-in agents (`echo`, `text-stats`,
 * `math`) and the task service that answers TASK_REQUEST with the best local agent and sends
 * tasks to other nodes. The task service is written against the interface's `MessageRouter`
 * contract and an injected `Clock`; it never imports a router implementation.
 *
 * @packageDocumentation
 */
export { agents, AgentRegistry, MAX_AGENTS, type AgentsInit, type AgentsComponents } from './registry.js'
export type { Agent, AgentContext, AgentInit, TaskRequest, TaskResult } from './types.js'
export { echoAgent, textStatsAgent, mathAgent, BUILTIN_AGENTS } from './builtin.js'
export { evaluateExpression, MAX_EXPRESSION_LENGTH, MAX_EXPRESSION_DEPTH } from './math.js'
export { textStats, MAX_TEXT_LENGTH, type TextStats } from './text.js'
export {
  taskService,
  parseTaskRequest,
  checkTaskSize,
  agentNameOfPath,
  TaskRejectReason,
  type TaskService,
  type TaskServiceInit,
  type TaskServiceComponents,
  type TaskObserver,
  type SendTaskOptions,
  type AuthorityResolver,
} from './tasks.js'
export { checkDid, isValidDid, DID_SYNTAX } from '@kos-mesh/did-security'
export * from './errors.js'
