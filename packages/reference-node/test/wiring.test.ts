/**
 * reference-node only wires: the agent runtime and the task service come from @kos-mesh/agents
 * (re-exported unchanged, so code written against earlier versions keeps working), and the node's
 * time comes from its injected clock.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import * as agentsPkg from '@kos-mesh/agents'
import { generateIdentity } from '@kos-mesh/did-security'
import { systemClock, type Clock } from '@kos-mesh/interface'
import * as node from '../src/index.js'

/** The wall clock, shifted: what the node reports must be this clock's time, not Date.now(). */
function shiftedClock(offsetMs: number): Clock {
  return {
    now: () => systemClock.now() + offsetMs,
    setTimeout: (fn, ms, options) => systemClock.setTimeout(fn, ms, options),
    clearTimeout: (h) => systemClock.clearTimeout(h),
    sleep: (ms, options) => systemClock.sleep(ms, options),
  }
}

describe('reference-node re-exports the agent runtime of @kos-mesh/agents', () => {
  it('the same classes, functions and constants, by their old names', () => {
    const same = [
      'AgentRegistry', 'MAX_AGENTS', 'echoAgent', 'textStatsAgent', 'mathAgent', 'BUILTIN_AGENTS',
      'evaluateExpression', 'MAX_EXPRESSION_LENGTH', 'MAX_EXPRESSION_DEPTH', 'textStats', 'MAX_TEXT_LENGTH',
      'parseTaskRequest', 'checkTaskSize', 'agentNameOfPath', 'TaskRejectReason', 'checkDid', 'isValidDid', 'DID_SYNTAX',
      'InvalidAgentError', 'NoEligibleAgentsError', 'InvalidTaskError', 'TaskTooLargeError', 'AgentFailedError',
      'MathExpressionError', 'UnknownPeerError', 'TargetConflictError',
    ] as const
    for (const name of same) {
      expect((node as Record<string, unknown>)[name], name).toBeDefined()
      expect((node as Record<string, unknown>)[name], name).toBe((agentsPkg as Record<string, unknown>)[name])
    }
    // an error thrown by the agents package is an instance of the class the node exports
    expect(() => node.evaluateExpression('1/0')).toThrow(node.MathExpressionError)
    expect(node.TaskRejectReason).toEqual({ NO_ELIGIBLE_AGENTS: 'no_eligible_agents', INVALID_TASK: 'invalid_task', AGENT_FAILED: 'agent_failed', AGENT_TIMEOUT: 'agent_timeout' })
  })

  it('taskService() is still the node\'s `services.tasks` factory, declaring what it needs', () => {
    expect(node.taskService().requires).toEqual(['router', 'agents', 'clock'])
    expect(() => node.createNode({ services: { tasks: node.taskService() } })).not.toThrow()
  })
})

describe('the node takes its time from its clock', () => {
  const YEAR = 365 * 24 * 3600 * 1000

  it('trust decisions, bootstrap results and task durations are stamped with the injected clock', async () => {
    const clock = shiftedClock(YEAR)
    const worker = node.createNode({ clock, agents: [node.echoAgent()], services: { discovery: false } })
    await worker.start()
    try {
      const entry = await worker.trust(generateIdentity().did, 3)
      expect(entry.updated).toBeGreaterThanOrEqual(systemClock.now() + YEAR - 60_000)
      const r = await worker.bootstrap([])
      expect(r.bootstrap_timestamp).toBeGreaterThanOrEqual(systemClock.now() + YEAR - 60_000)
      const tasks = worker.service<node.TaskService>('tasks')
      const done = await tasks.run({ capability: 'echo', input: 1 })
      expect(done.duration_ms).toBeGreaterThanOrEqual(0)
      expect(done.duration_ms).toBeLessThan(YEAR) // both ends read the same clock
    } finally {
      await worker.stop()
    }
  })

  it('levelStore stamps its integrity record with its clock', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kos-wiring-'))
    try {
      const store = node.levelStore({ path: join(dir, 'db'), clock: shiftedClock(YEAR) })
      await store.start()
      await store.stop()
      const marker = JSON.parse(await readFile(node.integrityMarkerPath(join(dir, 'db')), 'utf8')) as node.StoreIntegrityRecord
      expect(marker.created).toBeGreaterThanOrEqual(systemClock.now() + YEAR - 60_000)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
