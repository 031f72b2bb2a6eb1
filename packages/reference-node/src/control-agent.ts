/**
 * The agent endpoints of the control API (the node's `migration` service, node-migration.ts):
 * the agents and migrations (`GET /v1/agents`, `GET /v1/agents/migrations` for progress), a
 * sandboxed agent deployed here (`POST /v1/agents/deploy`), migrations (`POST /v1/agents/migrate`,
 * `POST /v1/agents/restore`), and signed agent files (`POST /v1/agents/export`,
 * `POST /v1/agents/import`, the file as base64).
 */
import { HOST_CAPABILITIES, MIGRATION_TYPES, type AgentInstance, type CreateAgentInit } from '@kos-mesh/agent-migration'
import { reasonOf } from '@kos-mesh/agent-migration'
import type { KLPValue } from '@kos-mesh/interface'
import { checkDid } from './did.js'
import { field, HttpError, intField, MAX_CONTROL_BODY_BYTES } from './control-fields.js'
import type { KosMeshNode } from './node-types.js'
import type { AgentsView, NodeAgentMigration } from './node-migration.js'

/** Largest agent file `export` writes and `import` reads, bytes. */
export const MAX_AGENT_FILE_BYTES = 8 * 1024 * 1024
/** The import route, whose body (the file as base64) may exceed the API's usual bound. */
export const AGENT_IMPORT_ROUTE = 'POST /v1/agents/import'
/** Body bound of the import route: the largest file as base64, and room for the JSON around it. */
export const MAX_AGENT_IMPORT_BODY_BYTES = Math.ceil(MAX_AGENT_FILE_BYTES / 3) * 4 + 4096
/** Longest agent code accepted by deploy (the migration limits' default). */
export const MAX_AGENT_CODE_CHARS = 256 * 1024
/** Most probes and agent capabilities one deploy may give. */
export const MAX_AGENT_PROBES = 16
export const MAX_AGENT_CAPABILITIES = 32
/** Largest heap (bytes) and instruction budget an agent may ask for through the API. */
export const MAX_AGENT_MEMORY_BYTES = 64 * 1024 * 1024
export const MAX_AGENT_CPU_BUDGET = 1_000_000
/** Longest migration the API waits for, ms (a MOVE of a large agent included). */
export const MIGRATE_TIMEOUT_MS = 600_000

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/
const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/
const CAP_RE = /^[a-z0-9][a-z0-9._:/-]{0,127}$/

type Route = (body: unknown, signal: AbortSignal) => Promise<unknown>

/** The node's migration service, or 503 ERR_SERVICE_OFF when the node runs without it. */
export function migrationOf(node: KosMeshNode): NodeAgentMigration | undefined {
  try {
    return node.service<NodeAgentMigration>('migration')
  } catch {
    return undefined
  }
}

function service(node: KosMeshNode): NodeAgentMigration {
  const m = migrationOf(node)
  if (m === undefined) throw new HttpError(503, 'ERR_SERVICE_OFF', 'expected the node to run agent migration, got a node without it ("migration": false)')
  return m
}

function matching(body: unknown, name: string, re: RegExp, what: string, optional = false): string | undefined {
  const v = field<string | undefined>(body, name, 'string', optional)
  if (v !== undefined && !re.test(v)) throw new HttpError(400, 'ERR_INVALID_PARAMETERS', `expected "${name}" to be ${what}, got ${JSON.stringify(v.slice(0, 80))}`)
  return v
}

function did(body: unknown, name: string): string {
  const v = field<string>(body, name, 'string')
  try {
    checkDid(v)
  } catch (err) {
    throw new HttpError(400, 'ERR_INVALID_DID', `"${name}": ${(err as Error).message}`)
  }
  return v
}

function strings(body: unknown, name: string, re: RegExp, max: number, allowed?: readonly string[]): string[] | undefined {
  const v = (body as Record<string, unknown> | null)?.[name]
  if (v === undefined) return undefined
  if (!Array.isArray(v) || v.length > max || v.some((x) => typeof x !== 'string' || !re.test(x) || (allowed !== undefined && !allowed.includes(x)))) {
    throw new HttpError(400, 'ERR_INVALID_PARAMETERS', `expected "${name}" to be a list of at most ${max} ${allowed === undefined ? 'names' : `of ${allowed.join(', ')}`}, got ${JSON.stringify(v).slice(0, 120)}`)
  }
  return [...new Set(v as string[])]
}

function base64(body: unknown, name: string): Uint8Array {
  const v = field<string>(body, name, 'string')
  if (v.length > MAX_AGENT_IMPORT_BODY_BYTES || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw new HttpError(400, 'ERR_INVALID_PARAMETERS', `expected "${name}" to be base64 of at most ${MAX_AGENT_FILE_BYTES} bytes`)
  const bytes = new Uint8Array(Buffer.from(v, 'base64'))
  if (bytes.length === 0 || bytes.length > MAX_AGENT_FILE_BYTES) throw new HttpError(400, 'ERR_INVALID_PARAMETERS', `expected "${name}" of 1..${MAX_AGENT_FILE_BYTES} bytes, got ${bytes.length}`)
  return bytes
}

/** The agent-migration errors as answers: a peer's refusal 502 (with its reason), a lost peer 504, a refused file or agent 422. */
async function mapped<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof HttpError) throw err
    const e = err as Error & { code?: string; reason?: string }
    const name = e?.name ?? 'Error'
    if (name === 'MigrationRefusedError') throw new HttpError(502, 'ERR_MIGRATION_REFUSED', e.message, e.reason)
    if (name === 'MigrationFailedError') throw new HttpError(504, e.code ?? 'ERR_MIGRATION_FAILED', e.message)
    if (name === 'AbortError') throw new HttpError(504, 'ERR_ABORTED', e.message)
    if (name === 'MigrationBusyError') throw new HttpError(429, e.code ?? 'ERR_MIGRATION_BUSY', e.message)
    if (typeof e?.code === 'string' && e.code.startsWith('ERR_') && name !== 'CorruptStoreError') {
      const reason = reasonOf(err)
      throw new HttpError(422, e.code, e.message, reason === 'internal' ? undefined : reason)
    }
    throw err
  }
}

/** Options of a migration or an export, from the body. */
function outgoing(body: unknown): { newId?: string; name?: string; owner?: string } {
  const newId = matching(body, 'newId', ID_RE, 'an agent id', true)
  const name = matching(body, 'name', NAME_RE, 'an agent name [a-z0-9._-]', true)
  const owner = (body as Record<string, unknown> | null)?.owner === undefined ? undefined : did(body, 'owner')
  return { ...(newId === undefined ? {} : { newId }), ...(name === undefined ? {} : { name }), ...(owner === undefined ? {} : { owner }) }
}

/** The deploy body as the service's CreateAgentInit. */
function deployInit(body: unknown): CreateAgentInit {
  const name = matching(body, 'name', NAME_RE, 'an agent name [a-z0-9._-] up to 64 characters') as string
  const id = matching(body, 'id', ID_RE, 'an agent id [A-Za-z0-9._:/-] up to 128 characters', true) ?? name
  const code = field<string>(body, 'code', 'string')
  if (code.length === 0 || code.length > MAX_AGENT_CODE_CHARS) throw new HttpError(400, 'ERR_INVALID_PARAMETERS', `expected "code" of 1..${MAX_AGENT_CODE_CHARS} characters, got ${code.length}`)
  const capabilities = strings(body, 'capabilities', CAP_RE, MAX_AGENT_CAPABILITIES) ?? [name]
  const grants = strings(body, 'grants', CAP_RE, HOST_CAPABILITIES.length, HOST_CAPABILITIES) ?? []
  const memory = intField(body, 'memoryBytes', 64 * 1024, MAX_AGENT_MEMORY_BYTES) ?? 1024 * 1024
  const cpu = intField(body, 'cpuBudget', 1, MAX_AGENT_CPU_BUDGET) ?? 100_000
  const probes = (body as Record<string, unknown>).probes
  if (probes !== undefined && (!Array.isArray(probes) || probes.length > MAX_AGENT_PROBES)) throw new HttpError(400, 'ERR_INVALID_PARAMETERS', `expected "probes" to be a list of at most ${MAX_AGENT_PROBES} JSON values`)
  const data = (body as Record<string, unknown>).data
  const description = field<string | undefined>(body, 'description', 'string', true)
  if (description !== undefined && description.length > 256) throw new HttpError(400, 'ERR_INVALID_PARAMETERS', `expected "description" of at most 256 characters, got ${description.length}`)
  return {
    agent_id: id,
    name,
    code,
    capabilities,
    permissions: { capabilities: grants, required: grants, tools: [], agents: [], memory_bytes: memory, cpu_budget: cpu },
    ...(data === undefined ? {} : { data: data as KLPValue }),
    ...(probes === undefined ? {} : { probes: probes as KLPValue[] }),
    ...(description === undefined ? {} : { description }),
  }
}

/** What `GET /v1/agents` answers: the migration service's view, and the node's other (built-in) agents. */
export interface AgentsListing extends AgentsView {
  builtin: Array<{ name: string; capabilities: string[] }>
}

function listing(node: KosMeshNode, m: NodeAgentMigration, agents: AgentInstance[]): AgentsListing {
  const mine = new Set(agents.filter((a) => a.status === 'active').map((a) => a.name))
  const builtin = node.agents.list().filter((a) => !mine.has(a.name)).map((a) => ({ name: a.name, capabilities: [...a.capabilities] }))
  return { ...m.view(), agents, builtin }
}

/** The agent routes, keyed `METHOD /path` (GET routes get the query parameters as their body). */
export function agentRoutes(node: KosMeshNode): Record<string, Route> {
  return {
    'GET /v1/agents': async () => {
      const m = service(node)
      return listing(node, m, await m.list())
    },
    'GET /v1/agents/migrations': async () => {
      const v = service(node).view()
      return { migrations: v.migrations, recent: v.recent, stats: v.stats }
    },
    'POST /v1/agents/deploy': async (body) => {
      const init = deployInit(body)
      const m = service(node)
      // a built-in agent keeps its name (the service would replace it in the registry)
      const hosted = (await m.list()).some((a) => a.name === init.name && a.status === 'active')
      if (!hosted && node.agents.get(init.name) !== undefined) throw new HttpError(422, 'ERR_AGENT_STATE', `expected a free agent name, got ${init.name}, a built-in agent of this node`)
      return { agent: await mapped(() => m.deploy(init)) }
    },
    'POST /v1/agents/migrate': async (body, signal) => {
      const agent = matching(body, 'agent', ID_RE, 'an agent id') as string
      const type = field<string>(body, 'type', 'string')
      if (!(MIGRATION_TYPES as readonly string[]).includes(type)) throw new HttpError(400, 'ERR_INVALID_PARAMETERS', `expected "type" to be one of ${MIGRATION_TYPES.join(', ')}, got ${JSON.stringify(type.slice(0, 40))}`)
      const to = did(body, 'to')
      const o = outgoing(body)
      const m = service(node)
      return { migration: await mapped(() => m.migrate(agent, { type: type as 'move', to, signal, ...o })) }
    },
    'POST /v1/agents/restore': async (body, signal) => {
      const agent = matching(body, 'agent', ID_RE, 'an agent id') as string
      const to = did(body, 'to')
      const m = service(node)
      return { migration: await mapped(() => m.restore(agent, { to, signal })) }
    },
    'POST /v1/agents/export': async (body) => {
      const agent = matching(body, 'agent', ID_RE, 'an agent id') as string
      const type = field<string>(body, 'type', 'string')
      if (!['copy', 'clone', 'backup'].includes(type)) throw new HttpError(400, 'ERR_INVALID_PARAMETERS', `expected "type" to be copy, clone or backup (a move needs both nodes online: agent migrate), got ${JSON.stringify(type.slice(0, 40))}`)
      const to = did(body, 'to')
      const o = outgoing(body)
      const m = service(node)
      const bytes = await mapped(() => m.exportAgent(agent, { type: type as 'copy', to, ...o }))
      if (bytes.length > MAX_AGENT_FILE_BYTES) throw new HttpError(422, 'ERR_BUNDLE_TOO_LARGE', `expected an agent file of at most ${MAX_AGENT_FILE_BYTES} bytes, got ${bytes.length} (use agent migrate)`)
      return { export: { agent_id: agent, type, to, bytes: bytes.length, file: Buffer.from(bytes).toString('base64') } }
    },
    [AGENT_IMPORT_ROUTE]: async (body, signal) => {
      const bytes = base64(body, 'file')
      const m = service(node)
      return { agent: await mapped(() => m.importAgent(bytes, { signal })) }
    },
  }
}

/** The body bound of a route (the import route takes a whole agent file). */
export function bodyLimitOf(route: string): number {
  return route === AGENT_IMPORT_ROUTE ? MAX_AGENT_IMPORT_BODY_BYTES : MAX_CONTROL_BODY_BYTES
}
