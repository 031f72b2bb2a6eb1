/**
 * The `kos-mesh` command line. `runCli(argv)` returns the exit code; `src/cli.ts` is the binary.
 */
import { randomBytes } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { NodeType, systemClock, type Clock, type KLPValue } from '@kos-mesh/interface'
import { parseAddress } from '@kos-mesh/klp-codec'
import { tcp } from '@kos-mesh/transport-tcp'
import { BUILTIN_AGENTS, agentNameOfPath, checkTaskSize, parseTaskRequest, type TaskResult } from '@kos-mesh/agents'
import { checkNodeAddress, dataDirPaths, defaultConfig, ensurePrivateDir, loadConfig, parseConfig, resolveDataDir, saveConfig, validateAuthority, writeFileAtomic, type NodeConfig } from './config.js'
import { connectControl, MAX_TASK_TIMEOUT_MS, removeControlFiles, startControlServer, writeControlFiles, type ControlInfo } from './control.js'
import { checkDid } from './did.js'
import { InvalidConfigError } from './errors.js'
import { keystoreIdentity } from './identity.js'
import { jsonLogger, LOG_LEVELS, type LogLevel } from './logger.js'
import { createNode, type NodePeer, type NodeStatus } from './node.js'
import { levelStore } from './storage/level.js'
import type { TrustEntry } from './trust.js'

/** Exit codes of `kos-mesh` (stable; scripts rely on them). */
export const ExitCode = {
  OK: 0,
  /** Something failed at runtime (I/O, an unexpected error). */
  FAILURE: 1,
  /** Bad command line: unknown command or option, missing or invalid argument. */
  USAGE: 2,
  /** No node is running for the data directory (start one with `kos-mesh start`). */
  NOT_RUNNING: 3,
  /** The peer rejected the request (no_eligible_agents, insufficient_trust, agent_failed, ...). */
  REJECTED: 4,
  /** The peer could not be reached, or did not answer in time. */
  UNREACHABLE: 5,
  /**
   * The data directory is not initialized, its config is invalid, the keystore is unreadable or
   * its passphrase wrong, or its datastore lost its records (see `start --reset-store`).
   */
  CONFIG: 6,
} as const

export interface CliIo {
  stdout: (s: string) => void
  stderr: (s: string) => void
  env: NodeJS.ProcessEnv
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM); used by `start`. */
  onSignal?: (handler: () => void) => void
  /** Time and timers of the CLI and of the node it starts. Default `systemClock`. */
  clock?: Clock
}

/** An AbortSignal that fires after `ms` of the clock's time (the timer does not keep the process alive). */
function timeoutSignal(clock: Clock, ms: number): AbortSignal {
  const controller = new AbortController()
  clock.setTimeout(() => controller.abort(new DOMException('The operation timed out.', 'TimeoutError')), ms, { unref: true })
  return controller.signal
}

/** A bad command line (exit 2). `code` is the code of the typed error it wraps, else `ERR_USAGE`. */
class UsageError extends Error {
  override name = 'UsageError'
  readonly code: string

  constructor(message: string, code = 'ERR_USAGE') {
    super(message)
    this.code = code
  }
}

const VERSION = '0.1.0'

const GLOBAL_OPTIONS = {
  'data-dir': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options']

const EXIT_CODES_TEXT = `Exit codes:
  0  ok
  1  runtime failure
  2  usage error (unknown command or option, bad argument)
  3  node not running (no control API for this data dir)
  4  rejected by the peer (no_eligible_agents, insufficient_trust, ...)
  5  peer unreachable or no answer in time
  6  data dir problem: not initialized, invalid config, bad keystore or
     passphrase, or a datastore that lost its records (start --reset-store)`

const GLOBAL_TEXT = `Global options:
  --data-dir <dir>   data directory (default: $KOS_MESH_DATA_DIR, else ~/.kos-mesh)
  --json             machine-readable JSON on stdout
  -h, --help         show help`

const MAIN_HELP = `kos-mesh ${VERSION}: run and control a kOS federated mesh node (KLP)

Usage: kos-mesh <command> [options]

Commands:
  init                    create the data dir: config, identity keystore, passphrase
  start                   run the node in the foreground (Ctrl-C to stop)
  stop                    stop the node running for the data dir
  status                  show the running node: DID, addresses, agents
  connect <address>       connect the running node to a peer
  peers                   list connected and discovered peers
  trust <did|address>     trust a DID or the node behind an agent address
  task <target> <input>   send a task to an agent on another node
  config export           print the configuration as JSON

${GLOBAL_TEXT}
  -v, --version      print the version

Run \`kos-mesh <command> --help\` for the options of a command.

${EXIT_CODES_TEXT}
`

interface Command {
  help: string
  options: ParseArgsConfig['options']
  run(ctx: Ctx): Promise<number>
}

interface Ctx {
  values: Record<string, string | boolean | string[] | undefined>
  positionals: string[]
  dataDir: string
  json: boolean
  io: CliIo
}

function print(ctx: Ctx, human: string, json: unknown): void {
  ctx.io.stdout(ctx.json ? JSON.stringify(json, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) + '\n' : human.endsWith('\n') ? human : human + '\n')
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined
}

function list(v: unknown): string[] {
  return Array.isArray(v) ? (v as string[]) : typeof v === 'string' ? [v] : []
}

/** --control-port and --log-level (shared by init and start), then the whole config is validated. */
function applyCommonOptions(config: NodeConfig, v: Record<string, unknown>): void {
  const port = intOption('control-port', v['control-port'], 0, 65535)
  if (port !== undefined) config.control.port = port
  const level = str(v['log-level'])
  if (level !== undefined) {
    if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new UsageError(`--log-level: expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`)
    config.logLevel = level as LogLevel
  }
  try {
    parseConfig(config)
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

/** A plain decimal integer option in min..max (no `1e3`, `0x5`, `5.0`, `+5` or blanks). */
function intOption(name: string, v: unknown, min: number, max: number): number | undefined {
  if (v === undefined) return undefined
  const n = typeof v === 'string' && /^-?[0-9]{1,15}$/.test(v) ? Number(v) : Number.NaN
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${name}: expected a decimal integer in ${min}..${max}, got ${JSON.stringify(v)}`)
  return n
}

/** Runs a check that throws a typed error and turns it into a usage error (exit 2). */
function usage<T>(what: string, check: () => T): T {
  try {
    return check()
  } catch (err) {
    const code = (err as { code?: unknown }).code
    throw new UsageError(`${what}: ${(err as Error).message}`, typeof code === 'string' && code.startsWith('ERR_') ? code : undefined)
  }
}

function needPositionals(ctx: Ctx, n: number, what: string): void {
  if (ctx.positionals.length < n) throw new UsageError(`missing ${what}`)
  if (ctx.positionals.length > n) throw new UsageError(`unexpected argument ${JSON.stringify(ctx.positionals[n])}`)
}

async function passphraseFor(dataDir: string, env: NodeJS.ProcessEnv, create: boolean): Promise<string> {
  const fromEnv = env.KOS_MESH_PASSPHRASE
  if (fromEnv !== undefined && fromEnv.length > 0) return fromEnv
  const p = dataDirPaths(dataDir)
  try {
    const text = (await readFile(p.passphrase, 'utf8')).trim()
    if (text.length > 0) return text
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EISDIR') throw new InvalidConfigError(`expected a passphrase file at ${p.passphrase}, got a directory`)
    if (code !== 'ENOENT') throw err
  }
  if (!create) throw new InvalidConfigError(`no passphrase: set KOS_MESH_PASSPHRASE or put one in ${p.passphrase} (kos-mesh init creates it)`)
  const pass = randomBytes(32).toString('base64url')
  await writeFileAtomic(p.passphrase, pass + '\n', 0o600)
  return pass
}

/** The task policy in words (for init / start output). */
function taskPolicyText(minTrust: number): string {
  return minTrust <= 0 ? 'open: any authenticated DID may run tasks (policy.task_min_trust 0)' : `only DIDs trusted at >= ${minTrust} may run tasks (policy.task_min_trust)`
}

// ------------------------------------------------------------------ commands

const init: Command = {
  help: `Usage: kos-mesh init [options]

Creates the data directory (mode 0700; an existing one is chmod-ed to 0700) with config.json,
the node identity in keystore.json (encrypted with the passphrase from $KOS_MESH_PASSPHRASE, else
a generated passphrase file, 0600, which only guards against casual reads), and prints the node
DID.

Options:
  --name <name>           node name, [a-z0-9-] (default: node-<random>)
  --authority <host>      KLP authority (default: <name>.mesh.kai)
  --listen <address>      listen address, repeatable (default: tcp://127.0.0.1:0)
  --seed <address>        seed node tcp://host:port[/did:key:...], repeatable
  --type <type>           PeerNode, GatewayNode, ArchiveNode or ValidatorNode (default: PeerNode)
  --agents <list>         built-in agents, comma separated: echo,text-stats,math (default: all; "" for none)
  --task-min-trust <N>    trust score 0..10 a sender's DID needs to run tasks here
                          (default: 0 = open: any authenticated DID may run tasks;
                          raise a DID with \`kos-mesh trust <did> --level N\`)
  --control-port <port>   control API port on 127.0.0.1 (default: 0 = random)
  --log-level <level>     debug, info, warn, error or silent (default: info)
  --force                 overwrite an existing config.json (the identity is kept)

${GLOBAL_TEXT}
`,
  options: {
    name: { type: 'string' },
    authority: { type: 'string' },
    listen: { type: 'string', multiple: true },
    seed: { type: 'string', multiple: true },
    type: { type: 'string' },
    agents: { type: 'string' },
    'task-min-trust': { type: 'string' },
    'control-port': { type: 'string' },
    'log-level': { type: 'string' },
    force: { type: 'boolean' },
  },
  async run(ctx) {
    needPositionals(ctx, 0, '')
    const v = ctx.values
    const name = str(v.name)
    if (name !== undefined && !/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) throw new UsageError(`--name: expected [a-z0-9-] up to 63 characters, got ${JSON.stringify(name)}`)
    const config = defaultConfig(name)
    const authority = str(v.authority)
    if (authority !== undefined) {
      try {
        config.node.authority = validateAuthority(authority, '--authority')
      } catch (err) {
        throw new UsageError((err as Error).message)
      }
    }
    if (v.listen !== undefined) config.listen = list(v.listen)
    config.seeds = list(v.seed)
    const type = str(v.type)
    if (type !== undefined) {
      if (!(Object.values(NodeType) as string[]).includes(type)) throw new UsageError(`--type: expected one of ${Object.values(NodeType).join(', ')}, got ${JSON.stringify(type)}`)
      config.node.type = type as NodeType
    }
    const agents = str(v.agents)
    if (agents !== undefined) {
      config.agents = agents.split(',').map((a) => a.trim()).filter((a) => a.length > 0)
      for (const a of config.agents) if (BUILTIN_AGENTS[a] === undefined) throw new UsageError(`--agents: expected names among ${Object.keys(BUILTIN_AGENTS).join(', ')}, got ${JSON.stringify(a)}`)
      config.node.capabilities.agent_hosting = config.agents.length > 0
    }
    const minTrust = intOption('task-min-trust', v['task-min-trust'], 0, 10)
    if (minTrust !== undefined) config.policy.task_min_trust = minTrust
    applyCommonOptions(config, v)
    const p = dataDirPaths(ctx.dataDir)
    const exists = await stat(p.config).then(() => true, () => false)
    if (exists && v.force !== true) {
      ctx.io.stderr(`kos-mesh: ${p.config} already exists; use --force to overwrite it (the identity is kept)\n`)
      return ExitCode.FAILURE
    }
    await ensurePrivateDir(p.root, (m) => ctx.io.stderr(`kos-mesh: warning: ${m}\n`))
    const passphrase = await passphraseFor(p.root, ctx.io.env, true)
    const source = keystoreIdentity({ path: p.keystore, passphrase })
    const identity = await source.loadIdentity()
    await saveConfig(p.root, config)
    print(
      ctx,
      `initialized ${p.root}\n  did:        ${identity.did}\n  authority:  ${config.node.authority}\n  identity:   ${source.created ? 'created' : 'kept'} (${p.keystore})\n  tasks:      ${taskPolicyText(config.policy.task_min_trust)}\n  next:       kos-mesh start --data-dir ${p.root}`,
      { dataDir: p.root, did: identity.did, authority: config.node.authority, identityCreated: source.created, config },
    )
    return ExitCode.OK
  },
}

const start: Command = {
  help: `Usage: kos-mesh start [options]

Runs the node in the foreground until Ctrl-C (SIGINT), SIGTERM or \`kos-mesh stop\`. It listens,
bootstraps from the seeds, and serves the control API on 127.0.0.1 (port and token in control.json
and control.token, mode 0600, removed on exit). Logs go to stderr as JSON lines. Authority -> DID
pins (trust on first use of each peer's signed hello) are kept in db/ and restored at start.
The database keeps an integrity record (and db.integrity.json beside it): a db/ that lost its
records (emptied, replaced, a truncated log) is refused with exit 6 rather than started without
its trust decisions and pins.

Options:
  --listen <address>      listen address tcp://host:port, repeatable (replaces the config's)
  --seed <address>        seed node tcp://host:port[/did:key:...], repeatable (added to the config's)
  --control-port <port>   control API port (replaces the config's)
  --log-level <level>     debug, info, warn, error or silent
  --reset-store           accept db/ as it is even though it lost records (trust decisions and
                          pins that are gone stay gone: peers are pinned again on first use)

${GLOBAL_TEXT}
`,
  options: {
    listen: { type: 'string', multiple: true },
    seed: { type: 'string', multiple: true },
    'control-port': { type: 'string' },
    'log-level': { type: 'string' },
    'reset-store': { type: 'boolean' },
  },
  async run(ctx) {
    needPositionals(ctx, 0, '')
    const p = dataDirPaths(ctx.dataDir)
    const config = await loadConfig(p.root)
    const v = ctx.values
    if (v.listen !== undefined) config.listen = list(v.listen)
    config.seeds = [...new Set([...config.seeds, ...list(v.seed)])]
    applyCommonOptions(config, v)
    // a control.json that still answers means a node already runs here
    try {
      const c = await connectControl(p.root)
      await c.call('GET', '/v1/status', undefined, { timeoutMs: 2000 })
      ctx.io.stderr(`kos-mesh: a node is already running for ${p.root} (pid ${c.info.pid}); stop it with \`kos-mesh stop\`\n`)
      return ExitCode.FAILURE
    } catch {
      // none: go on
    }
    const logger = jsonLogger(config.logLevel, (l) => ctx.io.stderr(l), config.node.name)
    await ensurePrivateDir(p.root, (m) => logger.warn(m))
    const passphrase = await passphraseFor(p.root, ctx.io.env, false)
    const node = createNode({
      identity: keystoreIdentity({ path: p.keystore, passphrase }),
      authority: config.node.authority,
      nodeType: config.node.type,
      capabilities: config.node.capabilities,
      transports: [tcp()],
      listen: config.listen,
      seeds: config.seeds,
      bootstrap: false,
      storage: levelStore({ path: p.db, resetStore: v['reset-store'] === true, clock: ctx.io.clock ?? systemClock }),
      agents: config.agents.map((a) => (BUILTIN_AGENTS[a] as () => never)()),
      taskMinTrust: config.policy.task_min_trust,
      logger,
      clock: ctx.io.clock ?? systemClock,
    })
    let stopping: Promise<void> | undefined
    let done: () => void = () => {}
    const finished = new Promise<void>((resolve) => {
      done = resolve
    })
    let control: Awaited<ReturnType<typeof startControlServer>> | undefined
    const shutdown = (): Promise<void> =>
      (stopping ??= (async () => {
        logger.info('stopping')
        await removeControlFiles(p.root).catch(() => {})
        await control?.close().catch(() => {})
        await node.stop().catch(() => {})
        done()
      })())
    ctx.io.onSignal?.(() => void shutdown())
    try {
      await node.start()
    } catch (err) {
      const e = err as Error & { code?: string; cause?: { code?: string } }
      if (e.code === 'LEVEL_DATABASE_NOT_OPEN' && e.cause?.code === 'LEVEL_LOCKED') {
        ctx.io.stderr(`kos-mesh: the database in ${p.db} is locked: another node runs with this data dir\n`)
        return ExitCode.FAILURE
      }
      throw err
    }
    if (v['reset-store'] === true) logger.warn('--reset-store: the datastore was accepted as it is, with a new integrity record; records it lost stay lost', { db: p.db })
    try {
      control = await startControlServer({ node, port: config.control.port, onStop: () => void shutdown(), logger })
      const status = node.status()
      const info: ControlInfo = { pid: process.pid, host: '127.0.0.1', port: control.port, did: status.did, authority: status.authority, addrs: status.addrs, startedAt: (ctx.io.clock ?? systemClock).now() }
      await writeControlFiles(p.root, info, control.token)
      let bootstrap: unknown
      if (config.seeds.length > 0) {
        try {
          const r = await node.bootstrap(config.seeds)
          bootstrap = { seeds_reached: r.seeds_reached, discovered: r.discovered, peer_connections: r.peer_connections, trust_mesh_joined: r.trust_mesh_joined }
        } catch (err) {
          logger.warn('bootstrap failed; running without seeds (retry with `kos-mesh connect`)', { err })
          bootstrap = { seeds_reached: 0, error: (err as Error).message }
        }
      }
      print(
        ctx,
        `kos-mesh node started\n  did:        ${info.did}\n  authority:  ${info.authority}\n${info.addrs.map((a) => `  listening:  ${a}\n`).join('')}  control:    http://127.0.0.1:${info.port} (token in ${p.token})\n  agents:     ${status.agents.map((a) => a.name).join(', ') || 'none'}\n  tasks:      ${taskPolicyText(config.policy.task_min_trust)}\n  peers:      ${node.router.peers().length}\nPress Ctrl-C to stop.`,
        { event: 'started', ...info, agents: status.agents, policy: config.policy, bootstrap: bootstrap ?? null },
      )
    } catch (err) {
      await shutdown()
      throw err
    }
    await finished
    print(ctx, 'kos-mesh node stopped', { event: 'stopped' })
    return ExitCode.OK
  },
}

type Control = Awaited<ReturnType<typeof connectControl>>

/** A command that talks to the running node: `prepare` checks the arguments first (usage errors win over "not running"). */
function controlCommand(help: string, options: ParseArgsConfig['options'], prepare: (ctx: Ctx) => (c: Control) => Promise<number>): Command {
  return {
    help,
    options,
    async run(ctx) {
      const fn = prepare(ctx)
      const c = await connectControl(ctx.dataDir)
      return fn(c)
    },
  }
}

const stop = controlCommand(
  `Usage: kos-mesh stop

Asks the node running for the data dir to stop (it finishes and removes control.json).

${GLOBAL_TEXT}
`,
  {},
  (ctx) => {
    needPositionals(ctx, 0, '')
    return async (c) => {
      await c.call('POST', '/v1/stop')
      print(ctx, `stopping node ${c.info.did} (pid ${c.info.pid})`, { stopping: true, pid: c.info.pid, did: c.info.did })
      return ExitCode.OK
    }
  },
)

const status = controlCommand(
  `Usage: kos-mesh status

Shows the running node: DID, authority, addresses, agents, peers and its signed node record.

${GLOBAL_TEXT}
`,
  {},
  (ctx) => {
    needPositionals(ctx, 0, '')
    return async (c) => {
      const s = await c.call<NodeStatus & { record: unknown }>('GET', '/v1/status')
      print(
        ctx,
        `did:        ${s.did}\nauthority:  ${s.authority}\ntype:       ${s.nodeType}\n${s.addrs.map((a) => `listening:  ${a}\n`).join('')}peers:      ${s.peers} connected\ntasks:      ${taskPolicyText(s.taskMinTrust ?? 0)}\nagents:\n${s.agents.map((a) => `  ${a.address}  [${a.capabilities.join(', ')}]  ${a.description}\n`).join('') || '  none\n'}`,
        s,
      )
      return ExitCode.OK
    }
  },
)

const connect = controlCommand(
  `Usage: kos-mesh connect <address>

Connects the running node to a peer and exchanges peer tables. <address> is the peer's
transport address, optionally with its DID: tcp://127.0.0.1:4001/did:key:z6Mk...
(port 1..65535; with the DID the connection must authenticate as that DID). The address and
the DID are checked before anything is dialled.

Options:
  --timeout <ms>     give up after this long, a decimal integer (default: 15000)

${GLOBAL_TEXT}
`,
  { timeout: { type: 'string' } },
  (ctx) => {
    needPositionals(ctx, 1, '<address> (e.g. tcp://127.0.0.1:4001/did:key:z6Mk...)')
    const address = ctx.positionals[0] as string
    // validate first (scheme, port 1..65535, the DID), then ask the node to dial
    try {
      checkNodeAddress(address, 'dial', 'address')
    } catch (err) {
      const cause = (err as Error).cause as { code?: string } | undefined
      throw new UsageError(`<address>: ${(err as Error).message}`, cause?.code === 'ERR_INVALID_DID' ? 'ERR_INVALID_DID' : 'ERR_INVALID_ADDRESS')
    }
    const timeoutMs = intOption('timeout', ctx.values.timeout, 1, MAX_TASK_TIMEOUT_MS) ?? 15_000
    return async (c) => {
      const r = await c.call<{ connected: { did: string; authority?: string } }>('POST', '/v1/connect', { address }, { timeoutMs, signal: timeoutSignal(ctx.io.clock ?? systemClock, timeoutMs + 1000) })
      print(ctx, `connected to ${r.connected.did}${r.connected.authority === undefined ? '' : ` (${r.connected.authority})`}`, r.connected)
      return ExitCode.OK
    }
  },
)

const peers = controlCommand(
  `Usage: kos-mesh peers

Lists the peers of the running node: connected ones first, then those known from peer tables
(signed node records), with their authority, node type, trust score and addresses.

${GLOBAL_TEXT}
`,
  {},
  (ctx) => {
    needPositionals(ctx, 0, '')
    return async (c) => {
      const r = await c.call<{ peers: NodePeer[] }>('GET', '/v1/peers')
      const lines = r.peers.map(
        (p) => `${p.connected ? 'connected ' : 'discovered'}  ${p.authority ?? '-'}  ${p.did}  type=${p.node_type ?? '-'}  trust=${p.trust_score}${p.addresses.length > 0 ? `  ${p.addresses.join(' ')}` : ''}`,
      )
      print(ctx, lines.length === 0 ? 'no peers' : lines.join('\n'), r.peers)
      return ExitCode.OK
    }
  },
)

const trust: Command = controlCommand(
  `Usage: kos-mesh trust <did|address> [--level N]

Trusts a DID, or the node behind a klp:// address (klp://node-b.mesh.kai/agents/math). An
address resolves only through the running node's pins (the DID that proved the authority in an
authenticated, signed hello): connect to that node first, or pass its DID. A discovery record is
not enough (anyone can claim any authority there). A did:key must be a valid Ed25519 did:key;
other DID methods must match the W3C DID syntax did:<method>:<method-specific-id>. With trust
N, that DID passes this node's policy.task_min_trust when N >= it, and messages that ask for a
trust score up to N. Persists in the node's database.

Options:
  --level <N>        trust score, a decimal integer 0..10 (default: 5; 0 = no trust)

${GLOBAL_TEXT}
`,
  { level: { type: 'string' } },
  (ctx) => {
    needPositionals(ctx, 1, '<did|address> (a did:key:... or klp://authority/agents/<name>)')
    const subject = ctx.positionals[0] as string
    if (!subject.startsWith('did:') && !subject.startsWith('klp://')) throw new UsageError(`<did|address>: expected did:... or klp://..., got ${JSON.stringify(subject.slice(0, 80))}`)
    if (subject.startsWith('did:')) usage('<did|address>', () => checkDid(subject))
    if (subject.startsWith('klp://')) {
      try {
        parseAddress(subject)
      } catch (err) {
        throw new UsageError(`<did|address>: ${(err as Error).message}`)
      }
    }
    const level = intOption('level', ctx.values.level, 0, 10) ?? 5
    return async (c) => {
      const r = await c.call<{ trusted: TrustEntry }>('POST', '/v1/trust', { subject, level })
      print(ctx, `trusted ${r.trusted.did} at level ${r.trusted.trust_score}${subject === r.trusted.did ? '' : ` (via ${subject})`}`, r.trusted)
      return ExitCode.OK
    }
  },
)

const task: Command = controlCommand(
  `Usage: kos-mesh task <target> <input> [options]

Sends a TASK_REQUEST from the running node to <target> and prints the agent's result.
<target> is klp://<authority>/agents/<name> (that agent), klp://<authority> (the best agent
there with --capability), or a node DID did:key:... (the best agent there with --capability; its
authority comes from the node's pins, else from the DID's signed node record). The answer must be
signed by the target's DID when it is known (a DID target, or an authority pinned by a
connection), so a relay cannot forge it. <input> is a string (or JSON with --input-json).

Options:
  --capability <cap>  capability to ask for (default: the agent name of <target>)
  --input-json        parse <input> as JSON
  --params <json>     task parameters as a JSON object, e.g. '{"top":3}'
  --timeout <ms>      give up after this long, a decimal integer (default: 15000)

The request must fit the KLP codec limits (strings <= 256 KiB, <= 10,000 array items and map
entries, a message <= 1 MiB); a larger one is a usage error (exit 2), never sent.

Built-in agents: echo [echo], text-stats [text-stats, summarize], math [math].

${GLOBAL_TEXT}
`,
  {
    capability: { type: 'string' },
    'input-json': { type: 'boolean' },
    params: { type: 'string' },
    timeout: { type: 'string' },
  },
  (ctx) => {
    needPositionals(ctx, 2, ctx.positionals.length === 0 ? '<target> and <input>' : '<input>')
    const target = ctx.positionals[0] as string
    let path = '/'
    if (target.startsWith('did:')) {
      usage('<target>', () => checkDid(target, 'a DID like did:key:z6Mk...'))
    } else {
      try {
        path = parseAddress(target).path
      } catch (err) {
        throw new UsageError(`<target>: expected klp://authority[/agents/<name>] or a DID, got ${JSON.stringify(target.slice(0, 80))} (${(err as Error).message})`)
      }
    }
    const capability = str(ctx.values.capability) ?? agentNameOfPath(path)
    if (capability === undefined) throw new UsageError('missing --capability (or name an agent: klp://<authority>/agents/<name>)')
    // (a DID target has path "/": the capability must come from --capability)
    let input: KLPValue = ctx.positionals[1] as string
    if (ctx.values['input-json'] === true) {
      try {
        input = JSON.parse(input as string) as KLPValue
      } catch {
        throw new UsageError(`<input>: expected JSON (--input-json), got ${JSON.stringify((input as string).slice(0, 80))}`)
      }
    }
    let params: unknown
    const rawParams = str(ctx.values.params)
    if (rawParams !== undefined) {
      try {
        params = JSON.parse(rawParams)
      } catch {
        params = undefined
      }
      if (params === null || typeof params !== 'object' || Array.isArray(params)) throw new UsageError(`--params: expected a JSON object, got ${JSON.stringify(rawParams.slice(0, 80))}`)
    }
    const timeoutMs = intOption('timeout', ctx.values.timeout, 1, MAX_TASK_TIMEOUT_MS) ?? 15_000
    // the same checks the node applies (capability, params, codec limits), before any request
    const request = usage('<input>', () => parseTaskRequest(params === undefined ? { capability, input } : { capability, input, params }))
    usage('<input>', () => checkTaskSize(request))
    return async (c) => {
      const r = await c.call<{ task: TaskResult }>('POST', '/v1/task', { target, capability, input, timeoutMs, ...(params === undefined ? {} : { params }) }, { timeoutMs: timeoutMs + 2000 })
      const res = r.task.result
      print(ctx, typeof res === 'string' ? res : JSON.stringify(res, null, 2), r.task)
      if (!ctx.json) ctx.io.stderr(`(answered by ${r.task.agent} in ${r.task.duration_ms} ms)\n`)
      return ExitCode.OK
    }
  },
)

const config: Command = {
  help: `Usage: kos-mesh config export

Prints the node configuration (config.json, validated) as JSON on stdout. The file format:
  version     1
  node        { name, authority, type, capabilities }
  listen      listen addresses, e.g. ["tcp://127.0.0.1:0"]
  seeds       seed addresses, e.g. ["tcp://127.0.0.1:4001/did:key:z6Mk..."]
  agents      built-in agents: any of "echo", "text-stats", "math"
  control     { port }  (0 = random)
  policy      { task_min_trust }  trust 0..10 a sender needs to run tasks (0 = open)
  logLevel    debug, info, warn, error or silent

${GLOBAL_TEXT}
`,
  options: {},
  async run(ctx) {
    if (ctx.positionals[0] !== 'export') throw new UsageError(ctx.positionals.length === 0 ? 'missing subcommand: config export' : `unknown subcommand "config ${ctx.positionals[0] ?? ''}" (expected: config export)`)
    if (ctx.positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(ctx.positionals[1])}`)
    const cfg: NodeConfig = await loadConfig(ctx.dataDir)
    ctx.io.stdout(JSON.stringify(cfg, null, ctx.json ? undefined : 2) + '\n')
    return ExitCode.OK
  },
}

const COMMANDS: Record<string, Command> = { init, start, stop, status, connect, peers, trust, task, config }

/** The help text of a command, or the main help. */
export function helpText(command?: string): string {
  return command === undefined ? MAIN_HELP : (COMMANDS[command]?.help ?? MAIN_HELP)
}

function exitCodeOf(err: unknown): number {
  const e = err as { name?: string; code?: string; status?: number; reason?: string; remoteCode?: string }
  if (e.name === 'UsageError') return ExitCode.USAGE
  if (e.name === 'NodeNotRunningError') return ExitCode.NOT_RUNNING
  if (['NotInitializedError', 'InvalidConfigError', 'KeystorePassphraseError', 'KeystoreFormatError', 'StoreIntegrityError'].includes(e.name ?? '')) return ExitCode.CONFIG
  if (e.name === 'ControlApiError') {
    if (e.status === 502) return ExitCode.REJECTED
    if (e.status === 504) return ExitCode.UNREACHABLE
    // a bad argument, or a body over the control API's limit
    if (e.status === 400 || e.status === 413) return ExitCode.USAGE
    return ExitCode.FAILURE
  }
  return ExitCode.FAILURE
}

function hint(err: unknown): string {
  const e = err as { name?: string; reason?: string; status?: number; remoteCode?: string }
  if (e.name === 'ControlApiError' && e.reason === 'no_eligible_agents') return '\nhint: no agent there has that capability; `kos-mesh peers` lists nodes, `kos-mesh task --help` the built-in agents'
  if (e.name === 'ControlApiError' && e.reason === 'insufficient_trust') return '\nhint: the peer must trust this node: run `kos-mesh trust <this node DID> --level N` on the peer (N >= its policy.task_min_trust)'
  if (e.name === 'ControlApiError' && e.remoteCode === 'ERR_UNPINNED_AUTHORITY') return '\nhint: `kos-mesh connect <address>/did:...` to that node first, or pass its DID: `kos-mesh trust did:key:... --level N`'
  if (e.name === 'ControlApiError' && e.remoteCode === 'ERR_UNKNOWN_PEER') return '\nhint: connect to that node, or bootstrap from a seed that knows it (`kos-mesh peers` lists what is known)'
  if (e.name === 'ControlApiError' && e.status === 504) return '\nhint: check the address and that the peer runs (`kos-mesh peers`)'
  if (e.name === 'KeystorePassphraseError') return '\nhint: KOS_MESH_PASSPHRASE must be the passphrase the keystore was created with'
  if (e.name === 'StoreIntegrityError') return '\nhint: restore db/ (and db.integrity.json) from a backup; or, to go on without what was lost, `kos-mesh start --reset-store` once'
  return ''
}

/** Runs the CLI; resolves with the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  // the command is the first argument that is neither an option nor the value of --data-dir
  let command: string | undefined
  const rest: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    if (command === undefined && a === '--data-dir') {
      rest.push(a)
      if (i + 1 < argv.length) rest.push(argv[++i] as string)
    } else if (command === undefined && !a.startsWith('-')) {
      command = a
    } else {
      rest.push(a)
    }
  }
  if (command === undefined) {
    if (rest.includes('--version') || rest.includes('-v')) {
      io.stdout(`${VERSION}\n`)
      return ExitCode.OK
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      io.stdout(MAIN_HELP)
      return ExitCode.OK
    }
    io.stderr(`kos-mesh: missing command\n\n${MAIN_HELP}`)
    return ExitCode.USAGE
  }
  if (command === 'help') {
    io.stdout(helpText(rest.find((r) => !r.startsWith('-'))))
    return ExitCode.OK
  }
  const cmd = COMMANDS[command]
  if (cmd === undefined) {
    io.stderr(`kos-mesh: unknown command "${command}" (expected one of ${Object.keys(COMMANDS).join(', ')}; see kos-mesh --help)\n`)
    return ExitCode.USAGE
  }
  let parsed: { values: Ctx['values']; positionals: string[] }
  try {
    parsed = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...cmd.options }, allowPositionals: true, strict: true }) as typeof parsed
  } catch (err) {
    io.stderr(`kos-mesh ${command}: ${(err as Error).message.split('\n')[0] ?? 'bad arguments'}\nRun \`kos-mesh ${command} --help\` for usage.\n`)
    return ExitCode.USAGE
  }
  if (parsed.values.help === true) {
    io.stdout(cmd.help)
    return ExitCode.OK
  }
  const ctx: Ctx = {
    values: parsed.values,
    positionals: parsed.positionals,
    dataDir: resolveDataDir(str(parsed.values['data-dir']), io.env),
    json: parsed.values.json === true,
    io,
  }
  try {
    return await cmd.run(ctx)
  } catch (err) {
    const code = exitCodeOf(err)
    const e = err as Error & { code?: string; remoteCode?: string; reason?: string }
    if (e.name === 'UsageError') {
      if (ctx.json) io.stdout(JSON.stringify({ error: { name: e.name, code: e.code ?? 'ERR_USAGE', message: e.message }, exitCode: code }) + '\n')
      io.stderr(`kos-mesh ${command}: ${e.message}\nRun \`kos-mesh ${command} --help\` for usage.\n`)
    } else if (ctx.json) {
      io.stdout(JSON.stringify({ error: { name: e.name, code: e.remoteCode ?? e.code ?? 'ERR_UNKNOWN', message: e.message, ...(e.reason === undefined ? {} : { reason: e.reason }) }, exitCode: code }) + '\n')
      io.stderr(`kos-mesh ${command}: ${e.message}\n`)
    } else {
      io.stderr(`kos-mesh ${command}: ${e.message}${e.reason === undefined ? '' : ` [${e.reason}]`}${hint(err)}\n`)
    }
    return code
  }
}
