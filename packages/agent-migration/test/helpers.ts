import { createHash } from 'node:crypto'
import { identityFromSeed, type Identity } from '@kos-mesh/did-security'
import type { KLPValue } from '@kos-mesh/interface'
import { expect } from 'vitest'
import { sealChecksum } from '../src/codec.js'
import type { AgentPermissions, SerializedAgent } from '../src/types.js'

export function ident(name: string): Identity {
  return identityFromSeed(new Uint8Array(createHash('sha256').update(`agent-migration test ${name}`).digest()))
}

/** A counter agent: counts calls in its state, echoes its input. */
export const COUNTER_CODE = `function handle(input, state, params) {
  const n = (state.count || 0) + 1
  return { output: { n, echo: input, greeting: params.greeting }, state: Object.assign({}, state, { count: n }) }
}`

export const PERMS: AgentPermissions = { capabilities: ['log', 'random'], required: ['log'], tools: [], agents: [], memory_bytes: 16 * 1024 * 1024, cpu_budget: 5_000 }

export interface SampleInit {
  owner: string
  id?: string
  name?: string
  code?: string
  data?: KLPValue
  memory?: Array<{ key: string; value: Uint8Array }>
  permissions?: Partial<AgentPermissions>
  probes?: KLPValue[]
  epoch?: number
}

export function sampleAgent(i: SampleInit): SerializedAgent {
  return sealChecksum({
    agent_metadata: { agent_id: i.id ?? 'agent-1', name: i.name ?? 'counter', owner: i.owner, version: '1.0.0', capabilities: ['count'], description: 'a counter', created_at: 1_000, lineage: null },
    agent_state: { epoch: i.epoch ?? 0, data: i.data ?? { count: 3 }, sealed_secrets: null },
    memory_snapshot: { entries: i.memory ?? [] },
    configuration: { runtime: 'quickjs', code: i.code ?? COUNTER_CODE, params: { greeting: 'hi' }, probes: i.probes ?? [{ x: 1 }, 'probe'] },
    permissions: { ...PERMS, ...i.permissions },
    serialization_timestamp: 2_000,
  })
}

/** Awaits `p` and asserts it rejects with an error of that name; returns the error. */
export async function rejectsWith(p: Promise<unknown> | (() => unknown), name: string): Promise<Error & { code?: string; reason?: string }> {
  let err: unknown
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (e) {
    err = e
  }
  expect(err, `expected ${name}`).toBeInstanceOf(Error)
  expect((err as Error).name).toBe(name)
  return err as Error & { code?: string }
}
