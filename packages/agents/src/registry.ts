import { InvalidParametersError, type KLPValue } from '@kos-mesh/interface'
import { InvalidAgentError } from './errors.js'
import type { Agent, AgentContext, AgentInit, TaskRequest } from './types.js'

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/
const CAPABILITY_RE = /^[a-z0-9][a-z0-9._:/-]{0,127}$/
/** Largest number of agents one node hosts. */
export const MAX_AGENTS = 256

class RegisteredAgent implements Agent {
  readonly id: string
  readonly name: string
  readonly address: string
  readonly capabilities: readonly string[]
  readonly priority: number
  readonly maxConcurrent: number
  readonly description: string
  inFlight = 0
  private readonly fn: AgentInit['handle']

  constructor(init: AgentInit, authority: string, did: string) {
    this.name = init.name
    this.id = init.id ?? `${did}/agents/${init.name}`
    this.address = `klp://${authority}/agents/${init.name}`
    this.capabilities = Object.freeze([...init.capabilities])
    this.priority = init.priority ?? 5
    this.maxConcurrent = init.maxConcurrent ?? 16
    this.description = init.description ?? ''
    this.fn = init.handle
  }

  async handle(input: KLPValue, ctx: AgentContext): Promise<KLPValue> {
    this.inFlight++
    try {
      return await this.fn(input, ctx)
    } finally {
      this.inFlight--
    }
  }

  toJSON(): Record<string, unknown> {
    return { id: this.id, name: this.name, address: this.address, capabilities: this.capabilities, description: this.description }
  }
}

function checkInit(init: AgentInit): void {
  if (init === null || typeof init !== 'object') throw new InvalidAgentError(`expected an agent definition, got ${init === null ? 'null' : typeof init}`)
  if (typeof init.name !== 'string' || !NAME_RE.test(init.name)) {
    throw new InvalidAgentError(`expected an agent name matching ${NAME_RE.source}, got ${JSON.stringify(init.name)}`)
  }
  if (!Array.isArray(init.capabilities) || init.capabilities.length === 0 || init.capabilities.length > 64) {
    throw new InvalidAgentError(`expected 1..64 capabilities for agent ${init.name}, got ${Array.isArray(init.capabilities) ? init.capabilities.length : typeof init.capabilities}`)
  }
  for (const c of init.capabilities) {
    if (typeof c !== 'string' || !CAPABILITY_RE.test(c)) throw new InvalidAgentError(`expected a capability matching ${CAPABILITY_RE.source}, got ${JSON.stringify(c)}`)
  }
  if (typeof init.handle !== 'function') throw new InvalidAgentError(`expected agent ${init.name} to have a handle function, got ${typeof init.handle}`)
  if (init.priority !== undefined && !(typeof init.priority === 'number' && init.priority >= 0 && init.priority <= 10)) {
    throw new InvalidAgentError(`expected priority in 0..10, got ${String(init.priority)}`)
  }
  if (init.maxConcurrent !== undefined && !(Number.isInteger(init.maxConcurrent) && init.maxConcurrent >= 1)) {
    throw new InvalidAgentError(`expected maxConcurrent to be a positive integer, got ${String(init.maxConcurrent)}`)
  }
}

/** Where the agents of a node live, and how a task picks one (the spec's findEligibleAgents / selectBestAgent). */
export class AgentRegistry {
  private readonly agents = new Map<string, RegisteredAgent>()
  private authority: string
  private did: string

  constructor(authority = 'localhost', did = 'did:unknown') {
    this.authority = authority
    this.did = did
  }

  private readonly inits = new Map<string, AgentInit>()

  /** Re-addresses every agent (the node learns its authority and DID at start). */
  bind(authority: string, did: string): void {
    this.authority = authority
    this.did = did
    for (const [name, init] of this.inits) this.agents.set(name, new RegisteredAgent(init, authority, did))
  }

  /**
   * Registers an agent (checked: a unique name, capabilities, at most MAX_AGENTS) and returns it; throws
   * InvalidAgentError otherwise.
   */
  register(init: AgentInit): Agent {
    checkInit(init)
    if (this.agents.has(init.name)) throw new InvalidAgentError(`expected a unique agent name, got "${init.name}" twice`)
    if (this.agents.size >= MAX_AGENTS) throw new InvalidAgentError(`expected at most ${MAX_AGENTS} agents, got one more`)
    this.inits.set(init.name, init)
    const agent = new RegisteredAgent(init, this.authority, this.did)
    this.agents.set(init.name, agent)
    return agent
  }

  /** Removes the agent named `name`; returns whether there was one. */
  unregister(name: string): boolean {
    this.inits.delete(name)
    return this.agents.delete(name)
  }

  /** The registered agent named `name`, if any. */
  get(name: string): Agent | undefined {
    return this.agents.get(name)
  }

  /** Every registered agent, in registration order. */
  list(): Agent[] {
    return [...this.agents.values()]
  }

  /** Every capability offered by some agent, sorted. */
  capabilities(): string[] {
    return [...new Set(this.list().flatMap((a) => a.capabilities))].sort()
  }

  /** Agents that have the capability and room for one more task; restricted to `agentName` when given. */
  findEligible(request: Pick<TaskRequest, 'capability'>, agentName?: string): Agent[] {
    if (typeof request.capability !== 'string') throw new InvalidParametersError(`expected a capability string, got ${typeof request.capability}`)
    const pool = agentName === undefined ? this.list() : [this.agents.get(agentName)].filter((a): a is RegisteredAgent => a !== undefined)
    return pool.filter((a) => a.capabilities.includes(request.capability) && a.inFlight < a.maxConcurrent)
  }

  /**
   * Score of an agent for a task: its priority (0..10), minus its load (0..10 as the share of
   * `maxConcurrent` in use), plus up to 1 for specialisation (fewer capabilities).
   */
  static score(agent: Agent): number {
    return agent.priority - (10 * agent.inFlight) / agent.maxConcurrent + 1 / agent.capabilities.length
  }

  /** The best of `eligible` by `score`, ties broken by name; undefined when empty. */
  selectBest(eligible: readonly Agent[]): Agent | undefined {
    let best: Agent | undefined
    let bestScore = Number.NEGATIVE_INFINITY
    for (const a of eligible) {
      const s = AgentRegistry.score(a)
      if (s > bestScore || (s === bestScore && best !== undefined && a.name < best.name)) {
        best = a
        bestScore = s
      }
    }
    return best
  }
}

/** Options of `agents()`. */
export interface AgentsInit {
  /** Agents registered at once (checked like `register()`). Default none. */
  agents?: readonly AgentInit[]
}

/** What the agent registry needs from the node. */
export interface AgentsComponents {
  /**
   * The node's authority and DID, from which the agents' addresses (`klp://<authority>/agents/<name>`)
   * and default ids (`<did>/agents/<name>`) derive. Default: unbound (`localhost`, `did:unknown`)
   * until `bind()` (a node that learns its identity at start binds then).
   */
  nodeInfo?: { readonly authority: string; readonly did: string }
}

/**
 * The agent registry of a node (`agents(init)(components)`): where its agents live and how a task
 * picks one. Invalid or duplicate agents throw InvalidAgentError here.
 */
export function agents(init: AgentsInit = {}): (components?: AgentsComponents) => AgentRegistry {
  return (components = {}) => {
    const registry = new AgentRegistry(components.nodeInfo?.authority, components.nodeInfo?.did)
    for (const a of init.agents ?? []) registry.register(a)
    return registry
  }
}
