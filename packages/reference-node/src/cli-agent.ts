/**
 * `kos-mesh agent`: the sandboxed agents of the running node and their migrations (list, deploy,
 * migrate with a progress bar, restore, export, import). A client of the control API's agent
 * endpoints (control-agent.ts).
 */
import { readFile, stat } from 'node:fs/promises'
import { basename } from 'node:path'
import type { AgentInstance, MigrationResult } from '@kos-mesh/agent-migration'
import { writeFileAtomic } from './config.js'
import { bytesText, controlCommand, ExitCode, GLOBAL_TEXT, intOption, list, needPositionals, print, str, table, usage, UsageError, type Command, type Control, type Ctx } from './cli-common.js'
import { MAX_AGENT_CODE_CHARS, MAX_AGENT_CPU_BUDGET, MAX_AGENT_FILE_BYTES, MAX_AGENT_MEMORY_BYTES, MAX_AGENT_PROBES, MIGRATE_TIMEOUT_MS, type AgentsListing } from './control-agent.js'
import { checkDid } from './did.js'
import type { MigrationOutcome, MigrationProgress } from './node-migration.js'

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/
const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/
const CAP_RE = /^[a-z0-9][a-z0-9._:/-]{0,127}$/
const GRANTS = ['log', 'clock', 'random', 'memory', 'secrets']
const TYPES = ['move', 'copy', 'clone', 'backup']
/** How often the progress bar asks the node, ms. */
const PROGRESS_POLL_MS = 100
const BAR_WIDTH = 30
/** Largest --data-file (the agent's state is at most 1 MiB in the bundle). */
const MAX_STATE_FILE_BYTES = 1024 * 1024

function agentId(ctx: Ctx, i: number): string {
  const id = ctx.positionals[i] as string
  if (!ID_RE.test(id)) throw new UsageError(`<agent-id>: expected [A-Za-z0-9._:/-] up to 128 characters, got ${JSON.stringify(id.slice(0, 80))}`)
  return id
}

function targetDid(ctx: Ctx): string {
  const to = str(ctx.values.to)
  if (to === undefined) throw new UsageError('missing --to <did> (the target node\'s DID, from `kos-mesh status` there)')
  usage('--to', () => checkDid(to, 'a DID like did:key:z6Mk...'))
  return to
}

function jsonOption(name: string, raw: string): unknown {
  try {
    return JSON.parse(raw)
  } catch {
    throw new UsageError(`--${name}: expected JSON, got ${JSON.stringify(raw.slice(0, 80))}`)
  }
}

/** Only the options of one subcommand may be given. */
function only(ctx: Ctx, sub: string, allowed: readonly string[]): void {
  for (const [k, v] of Object.entries(ctx.values)) {
    if (v === undefined || ['data-dir', 'json', 'help'].includes(k) || allowed.includes(k)) continue
    throw new UsageError(`--${k}: not used by \`agent ${sub}\``)
  }
}

function outgoing(ctx: Ctx, type: string): Record<string, string> {
  const out: Record<string, string> = {}
  const newId = str(ctx.values['new-id'])
  const name = str(ctx.values.name)
  const owner = str(ctx.values.owner)
  if ((newId !== undefined || name !== undefined) && type !== 'copy' && type !== 'clone') throw new UsageError(`--new-id and --name: only for --type copy or clone, got ${type}`)
  if (owner !== undefined && type !== 'clone') throw new UsageError(`--owner: only for --type clone, got ${type}`)
  if (newId !== undefined) {
    if (!ID_RE.test(newId)) throw new UsageError(`--new-id: expected [A-Za-z0-9._:/-] up to 128 characters, got ${JSON.stringify(newId.slice(0, 80))}`)
    out.newId = newId
  }
  if (name !== undefined) {
    if (!NAME_RE.test(name)) throw new UsageError(`--name: expected [a-z0-9._-] up to 64 characters, got ${JSON.stringify(name.slice(0, 80))}`)
    out.name = name
  }
  if (owner !== undefined) {
    usage('--owner', () => checkDid(owner))
    out.owner = owner
  }
  return out
}

/** A file of 1..max bytes (a usage error otherwise: missing, not a file, empty, too large). */
async function readSmallFile(what: string, file: string, max: number): Promise<Buffer> {
  const size = await stat(file).then((s) => (s.isFile() ? s.size : -1), () => -2)
  if (size === -2) throw new UsageError(`${what}: no such file ${JSON.stringify(file.slice(0, 200))}`)
  if (size < 1 || size > max) throw new UsageError(`${what}: expected a file of 1..${max} bytes, got ${size < 0 ? 'not a file' : `${size} bytes`}`)
  return await readFile(file)
}

function lineageText(a: AgentInstance): string {
  return a.lineage === null ? '-' : `${a.lineage.kind} of ${a.lineage.parent}`
}

function outcomeText(o: MigrationOutcome): string {
  return o.status === 'completed' ? `${o.type} ${o.agent_id} -> ${o.to}: completed` : `${o.type} ${o.agent_id} -> ${o.to}: ${o.status} (${o.error?.reason ?? o.error?.name ?? ''})`
}

async function listAgents(ctx: Ctx, c: Control): Promise<number> {
  const r = await c.call<AgentsListing>('GET', '/v1/agents')
  const lines: string[] = []
  lines.push(r.agents.length === 0 ? 'no sandboxed agents (deploy one with `kos-mesh agent deploy <file.js>`)' : table(['AGENT', 'NAME', 'OWNER', 'EPOCH', 'STATUS', 'LINEAGE'], r.agents.map((a) => [a.agent_id, a.name, a.owner, String(a.epoch), a.status, lineageText(a)])))
  for (const m of r.migrations) lines.push(`migrating: ${m.type} ${m.agent_id} -> ${m.to}${m.total > 0 ? ` (${bytesText(m.bytes)} of ${bytesText(m.total)})` : ''}`)
  for (const o of r.recent.slice(0, 5)) lines.push(`recent:    ${outcomeText(o)}`)
  if (r.builtin.length > 0) lines.push(`built-in:  ${r.builtin.map((b) => b.name).join(', ')}`)
  print(ctx, lines.join('\n'), r)
  return ExitCode.OK
}

async function deploy(ctx: Ctx): Promise<(c: Control) => Promise<number>> {
  only(ctx, 'deploy', ['id', 'name', 'capability', 'grant', 'memory', 'cpu-budget', 'data', 'data-file', 'probe', 'description'])
  needPositionals({ ...ctx, positionals: ctx.positionals.slice(1) }, 1, '<file.js> (the agent\'s code)')
  const file = ctx.positionals[1] as string
  const base = basename(file).replace(/\.[cm]?js$/, '').toLowerCase()
  const name = str(ctx.values.name) ?? base
  if (!NAME_RE.test(name)) throw new UsageError(`--name: expected [a-z0-9._-] up to 64 characters (default: the file's name), got ${JSON.stringify(name.slice(0, 80))}`)
  const id = str(ctx.values.id)
  if (id !== undefined && !ID_RE.test(id)) throw new UsageError(`--id: expected [A-Za-z0-9._:/-] up to 128 characters, got ${JSON.stringify(id.slice(0, 80))}`)
  const capabilities = list(ctx.values.capability).flatMap((x) => x.split(',')).map((x) => x.trim()).filter((x) => x.length > 0)
  for (const cap of capabilities) if (!CAP_RE.test(cap)) throw new UsageError(`--capability: expected [a-z0-9._:/-] up to 128 characters, got ${JSON.stringify(cap.slice(0, 80))}`)
  const grants = list(ctx.values.grant).flatMap((x) => x.split(',')).map((x) => x.trim()).filter((x) => x.length > 0)
  for (const g of grants) if (!GRANTS.includes(g)) throw new UsageError(`--grant: expected one of ${GRANTS.join(', ')}, got ${JSON.stringify(g.slice(0, 40))}`)
  const memoryBytes = intOption('memory', ctx.values.memory, 64 * 1024, MAX_AGENT_MEMORY_BYTES)
  const cpuBudget = intOption('cpu-budget', ctx.values['cpu-budget'], 1, MAX_AGENT_CPU_BUDGET)
  const dataFile = str(ctx.values['data-file'])
  if (dataFile !== undefined && ctx.values.data !== undefined) throw new UsageError('expected --data or --data-file, got both')
  const rawData = dataFile === undefined ? str(ctx.values.data) : (await readSmallFile('--data-file', dataFile, MAX_STATE_FILE_BYTES)).toString('utf8')
  const data = rawData === undefined ? undefined : jsonOption(dataFile === undefined ? 'data' : 'data-file', rawData)
  const probes = list(ctx.values.probe).map((p) => jsonOption('probe', p))
  if (probes.length > MAX_AGENT_PROBES) throw new UsageError(`--probe: expected at most ${MAX_AGENT_PROBES}, got ${probes.length}`)
  const description = str(ctx.values.description)
  if (description !== undefined && description.length > 256) throw new UsageError(`--description: expected at most 256 characters, got ${description.length}`)
  const code = await readSmallFile('<file.js>', file, MAX_AGENT_CODE_CHARS).then((b) => b.toString('utf8'))
  return async (c) => {
    const body = {
      name,
      code,
      ...(id === undefined ? {} : { id }),
      ...(capabilities.length === 0 ? {} : { capabilities }),
      ...(grants.length === 0 ? {} : { grants }),
      ...(memoryBytes === undefined ? {} : { memoryBytes }),
      ...(cpuBudget === undefined ? {} : { cpuBudget }),
      ...(data === undefined ? {} : { data }),
      ...(probes.length === 0 ? {} : { probes }),
      ...(description === undefined ? {} : { description }),
    }
    const r = await c.call<{ agent: AgentInstance }>('POST', '/v1/agents/deploy', body)
    const a = r.agent
    print(ctx, `deployed ${a.agent_id} (${a.name}), owner ${a.owner}\n  address: ${a.address}`, a)
    return ExitCode.OK
  }
}

/** One frame of the progress bar: `[#####-----]  45%  4.5 MiB of 10.0 MiB`. */
export function progressLine(bytes: number, total: number, width = BAR_WIDTH): string {
  const f = total > 0 ? Math.max(0, Math.min(1, bytes / total)) : 0
  const fill = Math.round(f * width)
  return `[${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${String(Math.floor(f * 100)).padStart(3)}%  ${bytesText(bytes)} of ${bytesText(total)}`
}

/** Draws the progress bar on stderr (redrawn in place) while the migration runs. */
export async function progressBar(ctx: Ctx, c: Control, agent: string, to: string, done: { value: boolean }): Promise<void> {
  let drawn = false
  while (!done.value) {
    await ctx.clock.sleep(PROGRESS_POLL_MS)
    if (done.value) break
    const r = await c.call<{ migrations: MigrationProgress[] }>('GET', '/v1/agents/migrations').catch(() => undefined)
    const m = r?.migrations.find((x) => x.agent_id === agent && x.to === to)
    if (m === undefined || m.total <= 0 || done.value) continue
    ctx.io.stderr(`\r${progressLine(m.bytes, m.total)}  `)
    drawn = true
  }
  if (drawn) ctx.io.stderr('\n')
}

function migrate(ctx: Ctx, sub: 'migrate' | 'restore'): (c: Control) => Promise<number> {
  only(ctx, sub, sub === 'migrate' ? ['to', 'type', 'new-id', 'name', 'owner'] : ['to'])
  needPositionals({ ...ctx, positionals: ctx.positionals.slice(1) }, 1, '<agent-id>')
  const agent = agentId(ctx, 1)
  const to = targetDid(ctx)
  const type = sub === 'restore' ? 'backup' : (str(ctx.values.type) ?? 'move')
  if (!TYPES.includes(type)) throw new UsageError(`--type: expected one of ${TYPES.join(', ')}, got ${JSON.stringify(type.slice(0, 40))}`)
  const body = sub === 'restore' ? { agent, to } : { agent, type, to, ...outgoing(ctx, type) }
  return async (c) => {
    const done = { value: false }
    const bar = !ctx.json && ctx.io.stderrIsTTY === true ? progressBar(ctx, c, agent, to, done) : undefined
    let r: { migration: MigrationResult }
    try {
      r = await c.call<{ migration: MigrationResult }>('POST', `/v1/agents/${sub}`, body, { timeoutMs: MIGRATE_TIMEOUT_MS })
    } finally {
      done.value = true
      await bar
    }
    const m = r.migration
    const n = m.new_agent_instance
    const verb = sub === 'restore' ? 'restored' : { move: 'moved', copy: 'copied', clone: 'cloned', backup: 'backed up' }[type]
    const where = n === undefined ? '' : n.status === 'archived' ? `\n  archived:  ${n.agent_id} at epoch ${n.epoch}` : `\n  now:       ${n.agent_id} at ${n.address} (epoch ${n.epoch})`
    print(ctx, `${verb} ${agent} to ${to}${where}\n  migration: ${m.migration_id}\n  verified:  ${m.verification_hash}`, m)
    return ExitCode.OK
  }
}

function exportAgent(ctx: Ctx): (c: Control) => Promise<number> {
  only(ctx, 'export', ['to', 'type', 'out', 'new-id', 'name', 'owner'])
  needPositionals({ ...ctx, positionals: ctx.positionals.slice(1) }, 1, '<agent-id>')
  const agent = agentId(ctx, 1)
  const to = targetDid(ctx)
  const type = str(ctx.values.type) ?? 'copy'
  if (!['copy', 'clone', 'backup'].includes(type)) throw new UsageError(`--type: expected copy, clone or backup (a move needs both nodes online: \`agent migrate\`), got ${JSON.stringify(type.slice(0, 40))}`)
  const out = str(ctx.values.out)
  if (out === undefined || out.length === 0) throw new UsageError('missing --out <file> (where the signed agent file is written)')
  const body = { agent, type, to, ...outgoing(ctx, type) }
  return async (c) => {
    const r = await c.call<{ export: { agent_id: string; type: string; to: string; bytes: number; file: string } }>('POST', '/v1/agents/export', body, { timeoutMs: MIGRATE_TIMEOUT_MS })
    const bytes = Buffer.from(r.export.file, 'base64')
    await writeFileAtomic(out, bytes, 0o600)
    const doc = { agent_id: r.export.agent_id, type: r.export.type, to: r.export.to, bytes: bytes.length, file: out }
    print(ctx, `exported ${agent} (${type} for ${to}) to ${out}, ${bytesText(bytes.length)}\n  next: kos-mesh agent import ${out} on that node`, doc)
    return ExitCode.OK
  }
}

async function importAgent(ctx: Ctx): Promise<(c: Control) => Promise<number>> {
  only(ctx, 'import', [])
  needPositionals({ ...ctx, positionals: ctx.positionals.slice(1) }, 1, '<file> (written by `agent export`)')
  const bytes = await readSmallFile('<file>', ctx.positionals[1] as string, MAX_AGENT_FILE_BYTES)
  return async (c) => {
    const r = await c.call<{ agent: AgentInstance }>('POST', '/v1/agents/import', { file: bytes.toString('base64') }, { timeoutMs: MIGRATE_TIMEOUT_MS })
    const a = r.agent
    print(ctx, `imported ${a.agent_id} (${a.name}), owner ${a.owner}, ${a.status}${a.address === '' ? '' : `\n  address: ${a.address}`}`, a)
    return ExitCode.OK
  }
}

export const agent: Command = controlCommand(
  `Usage: kos-mesh agent list
       kos-mesh agent deploy <file.js> [--name <name>] [options]
       kos-mesh agent migrate <agent-id> --to <did> [--type move|copy|clone|backup]
       kos-mesh agent restore <agent-id> --to <did>
       kos-mesh agent export <agent-id> --to <did> --out <file> [--type copy|clone|backup]
       kos-mesh agent import <file>

Sandboxed agents of the running node: code run in a QuickJS (WebAssembly) sandbox with memory
and instruction limits, plus their state, kept in the node's database (they survive restarts)
and registered with the node's agents, so they answer tasks (\`kos-mesh task
klp://<authority>/agents/<name> ...\`). Each has an owner DID (this node, for those deployed
here) and a hash-chained, signed audit trail; secrets in its state travel sealed to the target.
  list               the agents this node knows: id, name, owner, fencing epoch, status (active,
                     migrating, prepared, gone = moved away, archived = a backup held here),
                     lineage; the migrations in progress and the recent outcomes
  deploy <file.js>   hosts a new agent whose code defines
                     function handle(input, state) { return { output, state } }
  migrate <id>       to the node --to (connected, or known by its pinned authority):
                     move   the same agent, exactly once (two-phase commit): live only on the
                            target afterwards, fenced here for good
                     copy   a second live agent (new id) with the same owner and state
                     clone  a new agent (new id, --owner or the same), no secrets carried
                     backup to an ArchiveNode, not live there; \`agent restore\` on it later
                     With a terminal on stderr, a progress bar shows large transfers.
  restore <id>       on an ArchiveNode: makes a backup live on --to (epoch + 1)
  export <id>        writes a signed copy, clone or backup for --to to --out (only that node can
                     import it; a move needs both nodes online: use migrate)
  import <file>      verifies a file from export (signature, owner, checksum, audit trail,
                     fingerprint re-run in the sandbox) and hosts the agent here

Options:
  --to <did>            the target node's DID (\`kos-mesh status\` there)
  --type <type>         migrate: move (default), copy, clone or backup; export: copy (default),
                        clone or backup
  --new-id <id>         copy or clone: the new agent's id (default: <id>/<type>-<random>)
  --name <name>         deploy: the agent's name [a-z0-9._-] (default: the file's name); copy
                        or clone: its name on the target (default: the same)
  --owner <did>         clone: the new agent's owner (default: the same)
  --out <file>          export: the file to write
  --id <id>             deploy: the agent's id (default: its name)
  --capability <cap>    deploy: a capability tasks ask for, repeatable (default: its name)
  --grant <cap>         deploy: a host function it may call, repeatable: log, clock, random,
                        memory, secrets (default: none)
  --memory <bytes>      deploy: heap limit, 65536..${MAX_AGENT_MEMORY_BYTES} (default: 1048576)
  --cpu-budget <N>      deploy: instruction budget per task, 1..${MAX_AGENT_CPU_BUDGET} (default: 100000)
  --data <json>         deploy: the initial state (default: {})
  --data-file <file>    deploy: the initial state from a JSON file (up to 1 MiB)
  --probe <json>        deploy: a probe input of its behavioural fingerprint, repeatable (the
                        target re-runs them before it accepts the agent)
  --description <text>  deploy: a short description (up to 256 characters)

Exit 4 when the target refuses (the reason, e.g. fingerprint_mismatch, permission_refused,
ownership, is in the error), 5 when it does not answer; a failed or refused migration leaves
the agent as it was here.

${GLOBAL_TEXT}
`,
  {
    to: { type: 'string' },
    type: { type: 'string' },
    'new-id': { type: 'string' },
    name: { type: 'string' },
    owner: { type: 'string' },
    out: { type: 'string' },
    id: { type: 'string' },
    capability: { type: 'string', multiple: true },
    grant: { type: 'string', multiple: true },
    memory: { type: 'string' },
    'cpu-budget': { type: 'string' },
    data: { type: 'string' },
    'data-file': { type: 'string' },
    probe: { type: 'string', multiple: true },
    description: { type: 'string' },
  },
  (ctx) => {
    const sub = ctx.positionals[0] ?? 'list'
    if (sub === 'list') {
      only(ctx, 'list', [])
      if (ctx.positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(ctx.positionals[1])}`)
      return (c) => listAgents(ctx, c)
    }
    if (sub === 'deploy') return deploy(ctx)
    if (sub === 'migrate' || sub === 'restore') return migrate(ctx, sub)
    if (sub === 'export') return exportAgent(ctx)
    if (sub === 'import') return importAgent(ctx)
    throw new UsageError(`unknown subcommand "agent ${sub.slice(0, 40)}" (expected: list, deploy, migrate, restore, export, import)`)
  },
)

/** The agent commands, by name. */
export const AGENT_COMMANDS: Record<string, Command> = { agent }
