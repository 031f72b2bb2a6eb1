/**
 * The `kos-mesh` command line. `runCli(argv)` returns the exit code; `src/cli.ts` is the binary.
 */
import { randomBytes } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { NodeType, systemClock, type KLPValue } from '@kos-mesh/interface'
import { parseAddress } from '@kos-mesh/klp-codec'
import { tcp } from '@kos-mesh/transport-tcp'
import { BUILTIN_AGENTS, agentNameOfPath, checkTaskSize, parseTaskRequest, type TaskResult } from '@kos-mesh/agents'
import {
  checkNodeAddress,
  dataDirPaths,
  DEFAULT_LIBP2P_LISTEN,
  DEFAULT_LISTEN,
  libp2pInit,
  libp2pListenMultiaddr,
  listenAddresses,
  parseTransportKind,
  TRANSPORT_KINDS,
  transportOf,
  defaultConfig,
  ensurePrivateDir,
  isUnspecifiedHost,
  loadConfig,
  parseConfig,
  resolveDataDir,
  saveConfig,
  validateAuthority,
  writeFileAtomic,
  discoveryInit,
  type NodeConfig,
} from './config.js'
import { connectControl, MAX_TASK_TIMEOUT_MS, removeControlFiles, startControlServer, writeControlFiles, type ControlInfo, type TrafficSummary } from './control.js'
import {
  bytesText,
  controlCommand,
  ExitCode,
  GLOBAL_OPTIONS,
  GLOBAL_TEXT,
  intOption,
  list,
  needPositionals,
  note,
  print,
  secondsText,
  str,
  table,
  timeoutSignal,
  toJson,
  usage,
  UsageError,
  type CliIo,
  type Command,
  type Ctx,
} from './cli-common.js'
import { scoreText, TRUST_COMMANDS } from './cli-trust.js'
import { DISCOVERY_COMMANDS, meshStatusLines, networkStatusLines } from './cli-discovery.js'
import { checkDid } from './did.js'
import { isUnspecifiedLibp2pHost, parseLibp2pAddress } from './addresses.js'
import { AlreadyInitializedError, DatabaseLockedError, InvalidConfigError, NodeAlreadyRunningError, NotInitializedError, StopTimeoutError } from './errors.js'
import { keystoreIdentity } from './identity.js'
import { followLog, openLogFile, readLogTail, type LogFile } from './logfile.js'
import { jsonLogger, LOG_LEVELS, type LogLevel } from './logger.js'
import { createNode, type NodePeer, type NodeStatus } from './node.js'
import { levelStore } from './storage/level.js'

export { ExitCode, UsageError, table, type CliIo } from './cli-common.js'

const VERSION = '0.1.0'

const EXIT_CODES_TEXT = `Exit codes:
  0  ok
  1  runtime failure (also: init on an initialized dir, start while a node
     runs or with its address in use, stop that timed out)
  2  usage error (unknown command or option, bad argument)
  3  node not running (no control API for this data dir)
  4  rejected by the peer (no_eligible_agents, insufficient_trust, ...)
  5  peer unreachable or no answer in time (also: dht find found no record)
  6  data dir problem: not initialized, invalid config, bad keystore or
     passphrase, or a datastore that lost its records (start --reset-store);
     also: a service the config turned off (dht, gossip)
  7  identity: the peer proved another DID than the address names, or the
     authority is pinned to another DID`

const MAIN_HELP = `kos-mesh ${VERSION}: run and control a kOS federated mesh node (KLP)

Usage: kos-mesh <command> [options]

Commands:
  init                    create (or update) the data dir: config, identity keystore, passphrase
  start                   run the node in the foreground (Ctrl-C to stop)
  stop                    stop the node running for the data dir and wait for it to exit
  status                  show the running node: DID, addresses, peers, traffic, agents
  connect <address>       connect the running node to a peer
  peers                   list connected, known and discovered peers
  trust <did|address> N   trust a DID at level N (an anchor of this node's web of trust)
  trust [list]            list the trust decisions with their computed scores
  untrust <did|address>   remove a trust decision
  attest <did|address>    sign an endorsement (or another claim) and flood it to the mesh
  revoke <did|address>    revoke this node's attestations, a statement, a key, or its own DID
  reputation <did|address>
                          the score of a DID and the evidence behind it
  discover                find peers (--capability X) through peer tables, the DHT and gossip
  dht find <did>          look up a node's signed record in the DHT
  dht providers <name>    look up the providers of a name (capability:vector_storage) in the DHT
  broadcast <text>        send a broadcast to the whole mesh (--received lists those received)
  task <target> <input>   send a task to an agent on another node (<input> - reads stdin)
  logs                    print the node's log (--follow to keep printing)
  config export           print the configuration as JSON

${GLOBAL_TEXT}
  -v, --version      print the version

Run \`kos-mesh <command> --help\` for the options of a command.

${EXIT_CODES_TEXT}
`

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
    const msg = (err as Error).message
    // name the option, not the config key, for a value that came from the command line
    throw new UsageError(msg.replace(/^(?:libp2p\.)?listen\[\d+\]/, '--listen').replace(/^seeds\[\d+\]/, '--seed').replace(/^publish\[\d+\]/, '--publish'), /klp:\/\//.test(msg) || /address/.test(msg) ? 'ERR_INVALID_ADDRESS' : 'ERR_USAGE')
  }
}

/**
 * --transport and --listen (shared by init and start): --listen sets the listen addresses of the
 * node's transport (`listen` for tcp, `libp2p.listen` for libp2p); switching to a transport whose
 * list is empty fills in its default (port ${DEFAULT_LISTEN.split(':').pop() ?? ''}).
 */
function applyTransportOptions(config: NodeConfig, v: Record<string, unknown>): void {
  const flag = str(v.transport)
  if (flag !== undefined) {
    try {
      config.transport = parseTransportKind(flag, '--transport')
    } catch (err) {
      throw new UsageError((err as Error).message)
    }
  }
  if (transportOf(config) === 'libp2p') {
    const lib = { ...(config.libp2p ?? { listen: [] }) }
    if (v.listen !== undefined) {
      lib.listen = list(v.listen).map((a) => {
        try {
          return libp2pListenMultiaddr(a, '--listen')
        } catch (err) {
          throw new UsageError((err as Error).message, 'ERR_INVALID_ADDRESS')
        }
      })
    }
    else if (flag !== undefined && lib.listen.length === 0) lib.listen = [DEFAULT_LIBP2P_LISTEN]
    config.libp2p = lib
    // the tcp listen addresses are not used with libp2p
    config.listen = []
  } else {
    if (v.listen !== undefined) config.listen = list(v.listen)
    else if (flag !== undefined && config.listen.length === 0) config.listen = [DEFAULT_LISTEN]
  }
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
function taskPolicyText(minTrust: number, endorsements = 0): string {
  const e = endorsements > 0 ? ` with >= ${endorsements} endorsement${endorsements === 1 ? '' : 's'} (trustPolicy.TASK_REQUEST)` : ''
  if (minTrust <= 0) return e === '' ? 'open: any authenticated DID may run tasks (policy.task_min_trust 0)' : `only DIDs${e} may run tasks`
  return `only DIDs trusted at >= ${minTrust} (policy.task_min_trust)${e} may run tasks`
}

function taskEndorsements(config: NodeConfig): number {
  return config.trustPolicy.TASK_REQUEST?.required_endorsements ?? 0
}

/** A libp2p address naming its peer with /p2p/<PeerId> (the PeerId is the peer's DID key). */
function hasPeerId(addr: string): boolean {
  if (!addr.startsWith('libp2p://')) return false
  try {
    return parseLibp2pAddress(addr).peerId !== undefined
  } catch {
    return false
  }
}

/** Warnings about addresses that will not work as people expect (for init and start). */
function addressWarnings(config: NodeConfig): string[] {
  const out: string[] = []
  for (const l of config.listen) {
    const m = /^tcp:\/\/(\[[^\]]+\]|[^/:]+):(\d+)/.exec(l)
    if (m === null) continue
    if (m[2] === '0') out.push(`listen ${l}: port 0 picks a new port at every start, so seeds and peers that saved this node's address lose it; use a fixed port (default ${DEFAULT_LISTEN})`)
    if (isUnspecifiedHost(m[1] as string) && config.publish.length === 0) out.push(`listen ${l}: peers cannot dial ${m[1]}; set the address they should dial with --publish tcp://<host or IP>:${m[2]}`)
  }
  for (const l of transportOf(config) === 'libp2p' ? listenAddresses(config) : []) {
    let a
    try {
      a = parseLibp2pAddress(l)
    } catch {
      continue
    }
    if (a.port === 0) out.push(`listen ${a.multiaddr}: port 0 picks a new port at every start, so seeds and peers that saved this node's address lose it; use a fixed port (default ${DEFAULT_LIBP2P_LISTEN})`)
    if (isUnspecifiedLibp2pHost(a) && config.publish.length === 0) out.push(`listen ${a.multiaddr}: the node prints (and publishes) the address of each interface; behind NAT or a port forward, set the address peers should dial with --publish libp2p:///ip4/<public IP>/tcp/${a.port === undefined || a.port === 0 ? '<port>' : a.port}`)
  }
  for (const s of config.seeds) {
    if (!s.includes('/did:') && !hasPeerId(s)) out.push(`seed ${s} names no DID: whichever node answers there is taken as the seed; append /did:key:... (from \`kos-mesh status\` on the seed) so that another node is refused`)
  }
  return out
}

// ------------------------------------------------------------------ commands

const NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
/** Capabilities `init --capability` sets (agent_hosting follows --agents). */
const INIT_CAPABILITIES: readonly string[] = ['vector_storage', 'relay_services', 'validation_services', 'archive_services']

const init: Command = {
  help: `Usage: kos-mesh init [options]

Creates the data directory (mode 0700; an existing one is chmod-ed to 0700) with config.json,
the node identity in keystore.json (encrypted with the passphrase from $KOS_MESH_PASSPHRASE, else
a generated passphrase file, 0600, which only guards against casual reads), and prints the node
DID. The node listens on ${DEFAULT_LISTEN} unless told otherwise: a fixed port, so that it
keeps its address across restarts (give each node on one machine its own port with --listen).
With --transport libp2p the node runs KLP over libp2p instead (its Ed25519 key is its libp2p
PeerId) and listens on the multiaddr ${DEFAULT_LIBP2P_LISTEN} unless told otherwise.

On an initialized data dir, init refuses unless given --force (change only the options given,
keep the rest of config.json) or --reset (start again from the defaults and the options given).
The identity is always kept.

Options:
  --name <name>           node name, [a-z0-9-] (default: node-<random>)
  --authority <host>      KLP authority (default: <name>.mesh.kai)
  --transport <name>      tcp (default) or libp2p; seeds and published addresses are
                          addresses of that transport
  --listen <address>      listen address tcp://host:port, or with --transport libp2p a
                          multiaddr like /ip4/0.0.0.0/tcp/4747, repeatable
                          (default: ${DEFAULT_LISTEN} or ${DEFAULT_LIBP2P_LISTEN})
  --publish <address>     address other nodes dial to reach this one, tcp://host:port
                          (libp2p: libp2p:///ip4/<IP>/tcp/<port>), repeatable (default: the
                          listen addresses; set it behind a port forward, or when listening
                          on 0.0.0.0)
  --seed <address>        seed node tcp://host:port[/did:key:...] (libp2p: the seed's printed
                          libp2p:///ip4/.../tcp/.../p2p/12D3KooW.../did:key:...), repeatable
  --type <type>           PeerNode, GatewayNode, ArchiveNode or ValidatorNode (default: PeerNode)
  --agents <list>         built-in agents, comma separated: echo,text-stats,math (default: all; "" for none)
  --capability <cap>      a capability published in the node's signed record and provided in
                          the DHT (capability:<cap>), repeatable: vector_storage,
                          relay_services, validation_services, archive_services
                          (agent_hosting follows --agents)
  --task-min-trust <N>    trust score 0..10 a sender's DID needs to run tasks here
                          (default: 0 = open: any authenticated DID may run tasks;
                          raise a DID with \`kos-mesh trust <did> --level N\`)
  --task-min-endorsements <N>
                          endorsements 0..1000 a sender's DID needs to run tasks here
                          (trustPolicy.TASK_REQUEST.required_endorsements; default: 0;
                          an endorsement is \`kos-mesh attest <did>\` by a node this one
                          trusts at >= 5)
  --control-port <port>   control API port on 127.0.0.1 (default: 0 = random)
  --log-level <level>     debug, info, warn, error or silent (default: info)
  --force                 update an existing config.json: only the options given change
                          (--listen, --publish and --seed replace those lists; --transport
                          switches transport, and its seeds and published addresses must
                          then be given again in that transport's form)
  --reset                 replace an existing config.json by the defaults and the options given

${GLOBAL_TEXT}
`,
  options: {
    name: { type: 'string' },
    authority: { type: 'string' },
    transport: { type: 'string' },
    listen: { type: 'string', multiple: true },
    publish: { type: 'string', multiple: true },
    seed: { type: 'string', multiple: true },
    type: { type: 'string' },
    agents: { type: 'string' },
    'task-min-trust': { type: 'string' },
    capability: { type: 'string', multiple: true },
    'task-min-endorsements': { type: 'string' },
    'control-port': { type: 'string' },
    'log-level': { type: 'string' },
    force: { type: 'boolean' },
    reset: { type: 'boolean' },
  },
  async run(ctx) {
    needPositionals(ctx, 0, '')
    const v = ctx.values
    const name = str(v.name)
    if (name !== undefined && !NAME_RE.test(name)) throw new UsageError(`--name: expected [a-z0-9-] up to 63 characters, got ${JSON.stringify(name)}`)
    const p = dataDirPaths(ctx.dataDir)
    const exists = await stat(p.config).then(() => true, () => false)
    const reset = v.reset === true
    if (exists && v.force !== true && !reset) {
      throw new AlreadyInitializedError(`${p.config} already exists; use --force to change only the options given, or --reset to start again from the defaults (the identity is kept either way)`)
    }
    // --force keeps what it is not told to change; a new dir and --reset start from the defaults
    let before: NodeConfig | undefined
    if (exists && !reset) {
      try {
        before = await loadConfig(p.root)
      } catch (err) {
        if ((err as Error).name === 'InvalidConfigError') throw new InvalidConfigError(`${(err as Error).message}; fix it, or use --reset to replace it`)
        throw err
      }
    }
    const config: NodeConfig = before === undefined ? defaultConfig(name) : structuredClone(before)
    if (before !== undefined && name !== undefined && name !== before.node.name) {
      config.node.name = name
      // an authority derived from the old name follows the new one
      if (before.node.authority === `${before.node.name}.mesh.kai`) config.node.authority = `${name}.mesh.kai`
    }
    const authority = str(v.authority)
    if (authority !== undefined) {
      try {
        config.node.authority = validateAuthority(authority, '--authority')
      } catch (err) {
        throw new UsageError((err as Error).message)
      }
    }
    applyTransportOptions(config, v)
    if (v.publish !== undefined) config.publish = list(v.publish)
    if (v.seed !== undefined) config.seeds = list(v.seed)
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
    for (const cap of list(v.capability).flatMap((x) => x.split(',')).map((x) => x.trim()).filter((x) => x.length > 0)) {
      if (!INIT_CAPABILITIES.includes(cap)) throw new UsageError(`--capability: expected one of ${INIT_CAPABILITIES.join(', ')}, got ${JSON.stringify(cap.slice(0, 40))}`)
      config.node.capabilities = { ...config.node.capabilities, [cap]: true }
    }
    const minTrust = intOption('task-min-trust', v['task-min-trust'], 0, 10)
    if (minTrust !== undefined) config.policy.task_min_trust = minTrust
    const minEndorsements = intOption('task-min-endorsements', v['task-min-endorsements'], 0, 1000)
    if (minEndorsements !== undefined) {
      const cur = config.trustPolicy.TASK_REQUEST ?? { minimum_trust_score: 0, required_endorsements: 0, verification_level: 'none' }
      config.trustPolicy = { ...config.trustPolicy, TASK_REQUEST: { ...cur, required_endorsements: minEndorsements } }
    }
    applyCommonOptions(config, v)
    await ensurePrivateDir(p.root, (m) => note(ctx, `warning: ${m}`))
    const passphrase = await passphraseFor(p.root, ctx.io.env, true)
    const source = keystoreIdentity({ path: p.keystore, passphrase })
    const identity = await source.loadIdentity()
    await saveConfig(p.root, config)
    const changed = before === undefined ? [] : changedKeys(before, config)
    for (const w of addressWarnings(config)) note(ctx, `warning: ${w}`)
    const what = before === undefined ? (exists ? 'reset' : 'initialized') : 'updated'
    print(
      ctx,
      `${what} ${p.root}\n  did:        ${identity.did}\n  authority:  ${config.node.authority}\n  identity:   ${source.created ? 'created' : 'kept'} (${p.keystore})\n${config.transport === undefined ? '' : `  transport:  ${config.transport}\n`}${listenAddresses(config).map((l) => `  listen:     ${l}\n`).join('')}${config.publish.map((l) => `  publish:    ${l}\n`).join('')}${before === undefined ? '' : `  changed:    ${changed.length === 0 ? 'nothing' : changed.join(', ')}\n`}  tasks:      ${taskPolicyText(config.policy.task_min_trust, taskEndorsements(config))}\n  next:       kos-mesh start --data-dir ${p.root}`,
      { dataDir: p.root, did: identity.did, authority: config.node.authority, identityCreated: source.created, action: what, ...(before === undefined ? {} : { changed }), config },
    )
    return ExitCode.OK
  },
}

/** Dotted keys whose values differ between two configs. */
function changedKeys(a: NodeConfig, b: NodeConfig): string[] {
  const out: string[] = []
  const walk = (x: unknown, y: unknown, path: string): void => {
    if (x !== null && y !== null && typeof x === 'object' && typeof y === 'object' && !Array.isArray(x) && !Array.isArray(y)) {
      for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) walk((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k], path === '' ? k : `${path}.${k}`)
    } else if (JSON.stringify(x) !== JSON.stringify(y)) {
      out.push(path)
    }
  }
  walk(a, b, '')
  return out
}

const start: Command = {
  help: `Usage: kos-mesh start [options]

Runs the node in the foreground until Ctrl-C (SIGINT), SIGTERM or \`kos-mesh stop\`. It listens,
bootstraps from the seeds, redials the peers it knew before (saved in db/ with their last good
addresses) with exponential backoff, and serves the control API on 127.0.0.1 (port and token in
control.json and control.token, mode 0600, removed on exit). Logs are JSON lines on stderr and
in logs/node.log (rotated at 5 MiB, 3 old files kept; \`kos-mesh logs\` reads them).
Authority -> DID pins (trust on first use of each peer's signed hello) are kept in db/ and
restored at start.
The database keeps an integrity record (and db.integrity.json beside it): a db/ that lost its
records (emptied, replaced, a truncated log) is refused with exit 6 rather than started without
its trust decisions and pins.

--transport, --listen, --publish and --seed are saved to config.json once the node runs, so that
a restart keeps them. With --json, start prints one JSON line when the node runs ({"event": "started",
...}) and one when it has stopped ({"event": "stopped"}); an error before it runs is the usual
error document.

Options:
  --transport <name>      tcp or libp2p (replaces the config's; see \`kos-mesh init --help\`)
  --listen <address>      listen address tcp://host:port, or a multiaddr like
                          /ip4/0.0.0.0/tcp/4747 with transport libp2p, repeatable
                          (replaces the config's)
  --publish <address>     address other nodes dial to reach this one, tcp://host:port or
                          libp2p:///ip4/<IP>/tcp/<port>, repeatable (replaces the config's)
  --seed <address>        seed node tcp://host:port[/did:key:...] or
                          libp2p:///ip4/.../tcp/.../p2p/12D3KooW...[/did:key:...], repeatable
                          (added to the config's)
  --control-port <port>   control API port (this run only)
  --log-level <level>     debug, info, warn, error or silent (this run only)
  --reset-store           accept db/ as it is even though it lost records (trust decisions and
                          pins that are gone stay gone: peers are pinned again on first use)

${GLOBAL_TEXT}
`,
  options: {
    transport: { type: 'string' },
    listen: { type: 'string', multiple: true },
    publish: { type: 'string', multiple: true },
    seed: { type: 'string', multiple: true },
    'control-port': { type: 'string' },
    'log-level': { type: 'string' },
    'reset-store': { type: 'boolean' },
  },
  async run(ctx) {
    needPositionals(ctx, 0, '')
    const p = dataDirPaths(ctx.dataDir)
    const saved = await loadConfig(p.root)
    const config: NodeConfig = structuredClone(saved)
    const v = ctx.values
    applyTransportOptions(config, v)
    if (v.publish !== undefined) config.publish = list(v.publish)
    config.seeds = [...new Set([...config.seeds, ...list(v.seed)])]
    applyCommonOptions(config, v)
    const clock = ctx.clock
    // a control.json that still answers means a node already runs here
    let runningPid: number | undefined
    try {
      const c = await connectControl(p.root)
      await c.call('GET', '/v1/status', undefined, { timeoutMs: 2000 })
      runningPid = c.info.pid
    } catch {
      // none: go on
    }
    if (runningPid !== undefined) throw new NodeAlreadyRunningError(`a node is already running for ${p.root} (pid ${runningPid}); stop it with \`kos-mesh stop --data-dir ${p.root}\``)
    await ensurePrivateDir(p.root, (m) => note(ctx, `warning: ${m}`))
    let logFile: LogFile | undefined
    try {
      logFile = openLogFile({ path: p.log }, (err) => ctx.io.stderr(`kos-mesh: could not write ${p.log} (${(err as NodeJS.ErrnoException).code ?? err.name}); logging to stderr only\n`))
    } catch (err) {
      ctx.io.stderr(`kos-mesh: could not open ${p.log} (${(err as NodeJS.ErrnoException).code ?? (err as Error).name}); logging to stderr only\n`)
    }
    const file = logFile
    const logger = jsonLogger(
      config.logLevel,
      (l) => {
        ctx.io.stderr(l)
        file?.write(l)
      },
      config.node.name,
      clock,
    )
    try {
      return await runNode(ctx, p, saved, config, logger)
    } finally {
      file?.close()
    }
  },
}

async function runNode(ctx: Ctx, p: ReturnType<typeof dataDirPaths>, saved: NodeConfig, config: NodeConfig, logger: ReturnType<typeof jsonLogger>): Promise<number> {
  const v = ctx.values
  const clock = ctx.clock
  for (const w of addressWarnings(config)) logger.warn(w)
  const passphrase = await passphraseFor(p.root, ctx.io.env, false)
  // one LevelDB: the node's keys and, with libp2p, the host's peer store and DHT records
  const storage = levelStore({ path: p.db, resetStore: v['reset-store'] === true, clock })
  // with libp2p.dht.enabled, libp2p's kad-dht is a discovery source and the node publishes its record there
  const libp2pDht = transportOf(config) === 'libp2p' && config.libp2p?.dht?.enabled === true ? (await import('./libp2p-services.js')).libp2pDhtDiscovery() : undefined
  const disc = discoveryInit(config)
  const node = createNode({
    identity: keystoreIdentity({ path: p.keystore, passphrase }),
    authority: config.node.authority,
    nodeType: config.node.type,
    capabilities: config.node.capabilities,
    // libp2p is loaded only for a node that runs it
    transports: transportOf(config) === 'libp2p' ? [(await import('./libp2p.js')).libp2p({ ...libp2pInit(config.libp2p), datastore: storage.datastore })] : [tcp()],
    listen: listenAddresses(config),
    ...(config.publish.length > 0 ? { publish: config.publish } : {}),
    seeds: config.seeds,
    bootstrap: false,
    storage,
    agents: config.agents.map((a) => (BUILTIN_AGENTS[a] as () => never)()),
    taskMinTrust: config.policy.task_min_trust,
    ...(Object.keys(config.trustPolicy).length === 0 ? {} : { router: { trustPolicy: config.trustPolicy } }),
    trust: config.trust,
    ...disc,
    ...(libp2pDht === undefined ? {} : { services: { libp2pDht: libp2pDht.service }, discovery: { ...disc.discovery, sources: [...(disc.discovery?.sources ?? []), libp2pDht.source] } }),
    logger,
    clock,
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
      throw new DatabaseLockedError(`the database in ${p.db} is locked: another node runs with this data dir`, { cause: err })
    }
    throw err
  }
  if (v['reset-store'] === true) logger.warn('--reset-store: the datastore was accepted as it is, with a new integrity record; records it lost stay lost', { db: p.db })
  try {
    control = await startControlServer({ node, port: config.control.port, onStop: () => void shutdown(), logger, logFile: p.log, clock })
    const status = node.status()
    const info: ControlInfo = { pid: process.pid, host: '127.0.0.1', port: control.port, did: status.did, authority: status.authority, addrs: status.addrs, startedAt: clock.now() }
    await writeControlFiles(p.root, info, control.token)
    // what the command line changed in the addresses is kept for the next start
    const keep: NodeConfig = {
      ...saved,
      ...(config.transport === undefined ? {} : { transport: config.transport }),
      listen: config.listen,
      ...(config.libp2p === undefined ? {} : { libp2p: config.libp2p }),
      publish: config.publish,
      seeds: config.seeds,
    }
    const savedKeys = changedKeys(saved, keep)
    if (savedKeys.length > 0) {
      await saveConfig(p.root, keep)
      logger.info('saved to config.json', { keys: savedKeys })
    }
    let bootstrap: unknown
    if (config.seeds.length > 0) {
      try {
        const r = await node.bootstrap(config.seeds)
        bootstrap = { seeds_reached: r.seeds_reached, discovered: r.discovered, peer_connections: r.peer_connections, trust_mesh_joined: r.trust_mesh_joined }
      } catch (err) {
        bootstrap = { seeds_reached: 0, error: (err as Error).message }
      }
    }
    const s = node.status()
    print(
      ctx,
      `kos-mesh node started\n  did:        ${info.did}\n  authority:  ${info.authority}\n${info.addrs.map((a) => `  listening:  ${a}\n`).join('')}${s.published.map((a) => `  published:  ${a}\n`).join('')}  control:    http://127.0.0.1:${info.port} (token in ${p.token})\n  log:        ${p.log}\n  agents:     ${status.agents.map((a) => a.name).join(', ') || 'none'}\n  tasks:      ${taskPolicyText(config.policy.task_min_trust, taskEndorsements(config))}\n  peers:      ${peersLine(s)}\n${savedKeys.length > 0 ? `  saved:      ${savedKeys.join(', ')} (config.json)\n` : ''}Press Ctrl-C to stop.`,
      { event: 'started', ...info, published: s.published, logFile: p.log, agents: status.agents, policy: config.policy, trustPolicy: config.trustPolicy, peers: s.peers, peersKnown: s.peersKnown, redialing: s.redial.pending, saved: savedKeys, bootstrap: bootstrap ?? null },
    )
  } catch (err) {
    await shutdown()
    throw err
  }
  await finished
  print(ctx, 'kos-mesh node stopped', { event: 'stopped' })
  return ExitCode.OK
}

/** `2 connected, 3 known, redialing 1` */
function peersLine(s: Pick<NodeStatus, 'peers' | 'peersKnown' | 'redial'>, now?: number): string {
  let next: number | undefined
  for (const t of s.redial?.targets ?? []) if (t.nextAt !== undefined && (next === undefined || t.nextAt < next)) next = t.nextAt
  const redialing = s.redial?.pending ?? 0
  return `${s.peers} connected, ${s.peersKnown ?? 0} known${redialing > 0 ? `, redialing ${redialing}${now !== undefined && next !== undefined ? ` (next attempt in ${secondsText(next - now)})` : ''}` : ''}`
}

function defaultIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

const stop = controlCommand(
  `Usage: kos-mesh stop [--timeout <ms>]

Asks the node running for the data dir to stop, and waits until its process has exited (it
closes the control API, removes control.json and control.token, stops the services, the router
and the transports, and closes the database). Exit 0 once it is gone; exit 1
(ERR_STOP_TIMEOUT) if it still runs after --timeout.

Options:
  --timeout <ms>     wait at most this long, a decimal integer (default: 30000)

${GLOBAL_TEXT}
`,
  { timeout: { type: 'string' } },
  (ctx) => {
    needPositionals(ctx, 0, '')
    const timeoutMs = intOption('timeout', ctx.values.timeout, 1, MAX_TASK_TIMEOUT_MS) ?? 30_000
    return async (c) => {
      const pid = c.info.pid
      await c.call('POST', '/v1/stop')
      const alive = ctx.io.isProcessAlive ?? defaultIsAlive
      const p = dataDirPaths(ctx.dataDir)
      const t0 = ctx.clock.now()
      const gone = async (): Promise<boolean> => !alive(pid) && !(await stat(p.control).then(() => true, () => false))
      while (!(await gone())) {
        if (ctx.clock.now() - t0 >= timeoutMs) throw new StopTimeoutError(pid, timeoutMs)
        await ctx.clock.sleep(50)
      }
      print(ctx, `stopped node ${c.info.did} (pid ${pid})`, { stopped: true, pid, did: c.info.did })
      return ExitCode.OK
    }
  },
)

type StatusAnswer = NodeStatus & { record: unknown; traffic?: TrafficSummary; logFile?: string | null; time?: number }

const status = controlCommand(
  `Usage: kos-mesh status

Shows the running node: DID, authority, addresses (listening and published), peers (connected,
known from earlier connections, being redialled, with the next attempt), task policy, trust
(anchors, statements held by kind, revoked DIDs, statements refused), traffic and rejects,
resident memory, the DHT (contacts, provider records held, names provided), the gossip views
(active, passive), broadcasts sent and received, the log file, agents, and (with --json) its
signed node record.

${GLOBAL_TEXT}
`,
  {},
  (ctx) => {
    needPositionals(ctx, 0, '')
    return async (c) => {
      const s = await c.call<StatusAnswer>('GET', '/v1/status')
      const now = s.time ?? ctx.clock.now()
      const lines = [
        `did:        ${s.did}`,
        `authority:  ${s.authority}`,
        `type:       ${s.nodeType}`,
        ...s.addrs.map((a) => `listening:  ${a}`),
        ...(s.published ?? []).map((a) => `published:  ${a}`),
        `peers:      ${peersLine(s, now)}`,
        ...(s.redial?.targets ?? [])
          .filter((t) => t.state === 'waiting' || t.state === 'dialing')
          .map((t) => `redialing:  ${t.did ?? '(seed)'}  ${t.addrs[0] ?? ''}  ${t.state === 'dialing' ? 'dialing now' : `attempt ${t.attempts + 1} in ${secondsText((t.nextAt ?? now) - now)}`}${t.lastError === undefined ? '' : ` (last: ${t.lastError})`}`),
        `tasks:      ${taskPolicyText(s.taskMinTrust ?? 0, s.taskEndorsements ?? 0)}`,
      ]
      if (s.trust !== undefined) {
        const t = s.trust
        const rejected = Object.values(t.rejected).reduce((a, b) => a + b, 0) + t.rateLimited
        lines.push(`trust:      ${t.anchors} anchor${t.anchors === 1 ? '' : 's'}, ${t.statements} statement${t.statements === 1 ? '' : 's'} held (${t.byKind.attestation} attestations, ${t.byKind.revocation} revocations, ${t.byKind.delta} deltas), ${t.revokedDids} revoked DID${t.revokedDids === 1 ? '' : 's'}, ${rejected} refused`)
      }
      if (s.traffic !== undefined) {
        const t = s.traffic
        const rejects = Object.entries(t.rejects).sort((a, b) => b[1] - a[1])
        lines.push(`traffic:    in ${t.messagesIn} messages (${bytesText(t.bytesIn)}), out ${t.messagesOut} messages (${bytesText(t.bytesOut)}), ${t.pendingRequests} pending requests, ${t.queueDepth} queued`)
        lines.push(`rejects:    ${rejects.length === 0 ? 'none' : rejects.map(([k, n]) => `${k} ${n}`).join(', ')}`)
        lines.push(`memory:     ${bytesText(t.residentMemoryBytes)} resident`)
      }
      lines.push(...meshStatusLines(s.mesh))
      lines.push(...networkStatusLines(s.network))
      if (typeof s.logFile === 'string') lines.push(`log:        ${s.logFile} (kos-mesh logs --follow)`)
      lines.push('agents:', ...(s.agents.length === 0 ? ['  none'] : s.agents.map((a) => `  ${a.address}  [${a.capabilities.join(', ')}]  ${a.description}`)))
      print(ctx, lines.join('\n'), s)
      return ExitCode.OK
    }
  },
)

const connect = controlCommand(
  `Usage: kos-mesh connect <address>

Connects the running node to a peer and exchanges peer tables. <address> is the peer's
transport address with its DID: tcp://127.0.0.1:4747/did:key:z6Mk... (port 1..65535; the
connection must authenticate as that DID, else exit 7). A node running libp2p is dialled at its
libp2p address as its \`kos-mesh start\` prints it,
libp2p:///ip4/192.0.2.7/tcp/4747/p2p/12D3KooW.../did:key:z6Mk... (a bare multiaddr /ip4/... is
taken too); its /p2p/<PeerId> names the peer as a DID does. Without the DID the node accepts
whichever node answers there and pins its authority to that DID on first use: connect prints
that DID so you can check it. The address and the DID are checked before anything is dialled;
a klp:// address (which names a node for task and trust) is a usage error.

Options:
  --timeout <ms>     give up after this long, a decimal integer (default: 15000)

${GLOBAL_TEXT}
`,
  { timeout: { type: 'string' } },
  (ctx) => {
    needPositionals(ctx, 1, '<address> (e.g. tcp://127.0.0.1:4747/did:key:z6Mk...)')
    let address = ctx.positionals[0] as string
    // validate first (scheme, port 1..65535, the DID), then ask the node to dial (a bare
    // multiaddr becomes libp2p://<multiaddr>)
    try {
      address = checkNodeAddress(address, 'dial', 'address')
    } catch (err) {
      const cause = (err as Error).cause as { code?: string } | undefined
      throw new UsageError(`<address>: ${(err as Error).message}`, cause?.code === 'ERR_INVALID_DID' ? 'ERR_INVALID_DID' : 'ERR_INVALID_ADDRESS')
    }
    const checked = address.includes('/did:') || hasPeerId(address)
    const timeoutMs = intOption('timeout', ctx.values.timeout, 1, MAX_TASK_TIMEOUT_MS) ?? 15_000
    return async (c) => {
      const r = await c.call<{ connected: { did: string; authority?: string } }>('POST', '/v1/connect', { address }, { timeoutMs, signal: timeoutSignal(ctx.clock, timeoutMs + 1000) })
      print(ctx, `connected to ${r.connected.did}${r.connected.authority === undefined ? '' : ` (${r.connected.authority})`}`, { ...r.connected, identityChecked: checked })
      if (!checked) {
        note(
          ctx,
          `the address named no DID, so the peer's identity was not pinned in advance: this node accepted ${r.connected.did} as whoever answers at ${address}${r.connected.authority === undefined ? '' : ` and pinned ${r.connected.authority} to it (trust on first use)`}. Check that DID with \`kos-mesh status\` on the peer, and connect with ${address.replace(/\/$/, '')}/${r.connected.did} from now on, so that another node there is refused.`,
        )
      }
      return ExitCode.OK
    }
  },
)

function peerState(p: NodePeer): string {
  if (p.connected) return 'connected'
  if (p.redial !== undefined) return 'redialing'
  if (p.known === true) return 'known'
  return 'discovered'
}

const peers = controlCommand(
  `Usage: kos-mesh peers

Lists the peers of the running node, one per line under a header:
  STATE      connected; redialing (known, being redialled); known (from an earlier connection,
             saved in db/); discovered (from peer tables: signed node records)
  AUTHORITY  its KLP authority (- when not known yet)
  DID        its DID
  TYPE       its node type (from its signed record; - when none)
  TRUST      the trust score this node gives it now (0..10, see \`kos-mesh reputation\`)
  ADDRESSES  transport addresses it can be dialled at
Connected peers come first.

${GLOBAL_TEXT}
`,
  {},
  (ctx) => {
    needPositionals(ctx, 0, '')
    return async (c) => {
      const r = await c.call<{ peers: NodePeer[] }>('GET', '/v1/peers')
      const rows = r.peers.map((p) => [peerState(p), p.authority ?? '-', p.did, p.node_type ?? '-', scoreText(p.trust_score), p.addresses.join(' ') || '-'])
      print(ctx, rows.length === 0 ? 'no peers' : table(['STATE', 'AUTHORITY', 'DID', 'TYPE', 'TRUST', 'ADDRESSES'], rows), r.peers)
      return ExitCode.OK
    }
  },
)

/** Largest task input read from stdin (the codec's message limit). */
const MAX_STDIN_BYTES = 1024 * 1024

const task: Command = controlCommand(
  `Usage: kos-mesh task <target> <input> [options]

Sends a TASK_REQUEST from the running node to <target> and prints the agent's result.
<target> is klp://<authority>/agents/<name> (that agent), klp://<authority> (the best agent
there with --capability), or a node DID did:key:... (the best agent there with --capability; its
authority comes from the node's pins, else from the DID's signed node record). The answer must be
signed by the target's DID when it is known (a DID target, or an authority pinned by a
connection), so a relay cannot forge it. <input> is a string (or JSON with --input-json);
- reads it from standard input (one trailing newline removed), e.g.
\`cat notes.txt | kos-mesh task klp://worker.mesh.kai/agents/text-stats -\`.

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
  async (ctx) => {
    needPositionals(ctx, 2, ctx.positionals.length === 0 ? '<target> and <input>' : '<input> (a string, or - to read standard input)')
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
    let raw = ctx.positionals[1] as string
    if (raw === '-') {
      if (ctx.io.readStdin === undefined) throw new UsageError('<input>: - reads standard input, which this caller does not provide')
      try {
        raw = await ctx.io.readStdin(MAX_STDIN_BYTES)
      } catch (err) {
        if (err instanceof RangeError) throw new UsageError(`<input>: expected at most ${MAX_STDIN_BYTES} bytes on standard input, got more`, 'ERR_TASK_TOO_LARGE')
        throw err
      }
      if (raw.endsWith('\n')) raw = raw.slice(0, raw.endsWith('\r\n') ? -2 : -1)
    }
    let input: KLPValue = raw
    if (ctx.values['input-json'] === true) {
      try {
        input = JSON.parse(raw) as KLPValue
      } catch {
        throw new UsageError(`<input>: expected JSON (--input-json), got ${JSON.stringify(raw.slice(0, 80))}`)
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

const LEVEL_RANK: Record<string, number> = { debug: 10, info: 20, warn: 30, error: 40 }

/** A log line for people: `time  LEVEL  msg  key=value ...` (lines that are not JSON as they are). */
function humanLogLine(line: string): string {
  let o: Record<string, unknown>
  try {
    o = JSON.parse(line) as Record<string, unknown>
  } catch {
    return line
  }
  if (o === null || typeof o !== 'object') return line
  const { time, level, msg, name: _name, ...rest } = o
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? (/\s/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`)
    .join(' ')
  return `${String(time ?? '')}  ${String(level ?? '').toUpperCase().padEnd(5)}  ${String(msg ?? '')}${fields.length > 0 ? `  ${fields}` : ''}`
}

function levelOf(line: string): number {
  const m = /"level":"(debug|info|warn|error)"/.exec(line)
  return m === null ? 0 : (LEVEL_RANK[m[1] as string] ?? 0)
}

const logs: Command = {
  help: `Usage: kos-mesh logs [--follow] [--lines N] [--level <level>]

Prints the log of the node of the data dir (logs/node.log and its rotated files node.log.1, ...,
JSON lines written by \`kos-mesh start\`), one line per event for people: time, level, message
and fields. Works whether the node runs or not. Every event an operator asks about has a line:
connections opened and closed (with the reason), handshakes refused, tasks served and refused
(with the reason code), forged or replayed messages (message rejected, with the reason), trust
changes, bootstrap progress, redials and "no peers connected". Each kind of event is
rate-limited (20 at once, then 2 per second); a "log events suppressed" line counts what was
left out.

Options:
  --follow, -f        keep printing new lines until Ctrl-C (follows rotations)
  --lines <N>         print the last N lines first (default: 50; 0 with --follow: only new ones)
  --level <level>     only lines at this level or above: debug, info, warn or error

With --json, the lines are printed as they are in the file: one JSON document
{"file": ..., "lines": [...]} without --follow, one JSON object per line with --follow.

${GLOBAL_TEXT}
`,
  options: {
    follow: { type: 'boolean', short: 'f' },
    lines: { type: 'string' },
    level: { type: 'string' },
  },
  async run(ctx) {
    needPositionals(ctx, 0, '')
    const n = intOption('lines', ctx.values.lines, 0, 1_000_000) ?? 50
    const level = str(ctx.values.level)
    if (level !== undefined && LEVEL_RANK[level] === undefined) throw new UsageError(`--level: expected one of debug, info, warn, error, got ${JSON.stringify(level)}`)
    const min = level === undefined ? 0 : (LEVEL_RANK[level] as number)
    const p = dataDirPaths(ctx.dataDir)
    const follow = ctx.values.follow === true
    const haveConfig = await stat(p.config).then(() => true, () => false)
    if (!haveConfig) throw new NotInitializedError(`no configuration in ${p.root}: run \`kos-mesh init --data-dir ${p.root}\` first`)
    const wanted = (l: string): boolean => min === 0 || levelOf(l) >= min
    const tail = readLogTail(p.log, n > 0 ? n * (min > 0 ? 20 : 1) : 0).filter(wanted).slice(-n)
    const parse = (l: string): unknown => {
      try {
        return JSON.parse(l)
      } catch {
        return l
      }
    }
    if (!follow) {
      if (ctx.json) ctx.io.stdout(toJson({ file: p.log, lines: tail.map(parse) }) + '\n')
      else if (tail.length === 0) note(ctx, `no log lines yet in ${p.log}`)
      else ctx.io.stdout(tail.map(humanLogLine).join('\n') + '\n')
      return ExitCode.OK
    }
    const out = (l: string): void => ctx.io.stdout((ctx.json ? l : humanLogLine(l)) + '\n')
    for (const l of tail) out(l)
    const controller = new AbortController()
    ctx.io.onSignal?.(() => controller.abort())
    await followLog(p.log, (l) => void (wanted(l) && out(l)), ctx.clock, { signal: controller.signal })
    return ExitCode.OK
  },
}

const config: Command = {
  help: `Usage: kos-mesh config export

Prints the node configuration (config.json, validated) as JSON on stdout. The file format:
  version     1
  node        { name, authority, type, capabilities }
  transport   ${TRANSPORT_KINDS.map((t) => `"${t}"`).join(' or ')} (absent: "tcp")
  listen      TCP listen addresses, e.g. ["${DEFAULT_LISTEN}"] (port 0: a new one at every
              start); [] with transport libp2p
  libp2p      the libp2p transport: { listen: multiaddrs, e.g. ["/ip4/0.0.0.0/tcp/4747"],
              maxFrameSize, maxInboundBufferBytes, maxOutboundBufferBytes,
              sendStallTimeoutMs, closeTimeoutMs, dialTimeoutMs, maxConnections,
              maxStreamsPerConnection, streamWindowBytes } (@kos-mesh/transport-libp2p options)
  publish     addresses other nodes dial, e.g. ["tcp://203.0.113.7:4747"] or
              ["libp2p:///ip4/203.0.113.7/tcp/4747"] ([]: the listen ones)
  seeds       seed addresses, e.g. ["tcp://127.0.0.1:4747/did:key:z6Mk..."] or
              ["libp2p:///ip4/127.0.0.1/tcp/4747/p2p/12D3KooW.../did:key:z6Mk..."]
  agents      built-in agents: any of "echo", "text-stats", "math"
  control     { port }  (0 = random)
  policy      { task_min_trust }  trust 0..10 a sender needs to run tasks (0 = open)
  trustPolicy trust requirements per message type, whatever the sender asks for, e.g.
              { "TASK_REQUEST": { "required_endorsements": 1 } } (missing fields: 0 / none)
  trust       trust engine options, e.g. { "endorserThreshold": 5, "attenuation": 0.8 }
  dht         the DHT: false (off), or options { k, alpha, disjointPaths,
              maxPerGroupPerBucket, requestTimeoutMs, refreshIntervalMs, provide,
              provideCapabilities, maxStoredContacts } (absent: on, defaults)
  gossip      the gossip overlay: false (off: broadcasts flood), or options
              { activeViewSize, passiveViewSize, shuffleIntervalMs, gossipHops,
              repairIntervalMs } (absent: on, defaults)
  discovery   peer-table discovery options { targetPeers, autoDial, refreshIntervalMs,
              announceIntervalMs }
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

const COMMANDS: Record<string, Command> = { init, start, stop, status, connect, peers, ...TRUST_COMMANDS, ...DISCOVERY_COMMANDS, task, logs, config }

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
    if (e.remoteCode === 'ERR_NODE_NOT_FOUND') return ExitCode.UNREACHABLE
    if (e.remoteCode === 'ERR_SERVICE_OFF') return ExitCode.CONFIG
    if (e.status === 502) return ExitCode.REJECTED
    if (e.status === 504) return ExitCode.UNREACHABLE
    if (e.status === 409) return ExitCode.IDENTITY
    // a bad argument, or a body over the control API's limit
    if (e.status === 400 || e.status === 413) return ExitCode.USAGE
    return ExitCode.FAILURE
  }
  return ExitCode.FAILURE
}

function hint(err: unknown): string | undefined {
  const e = err as { name?: string; reason?: string; status?: number; remoteCode?: string }
  if (e.name === 'ControlApiError' && e.reason === 'no_eligible_agents') return 'no agent there has that capability; `kos-mesh peers` lists nodes, `kos-mesh task --help` the built-in agents'
  if (e.name === 'ControlApiError' && e.reason === 'insufficient_trust') return 'the peer must trust this node: run `kos-mesh trust <this node DID> --level N` on the peer (N >= its policy.task_min_trust), or, if it asks for endorsements, `kos-mesh attest <this node DID>` on nodes it trusts'
  if (e.name === 'ControlApiError' && e.remoteCode === 'ERR_REVOKED_DID') return "this node's DID is revoked (`kos-mesh revoke --self`): it signs nothing any more; create a new identity"
  if (e.name === 'ControlApiError' && e.remoteCode === 'ERR_CONFIRMATION_REQUIRED') return 'revoking this node\'s own DID is for good: pass --yes'
  if (e.name === 'ControlApiError' && e.remoteCode === 'ERR_UNPINNED_AUTHORITY') return '`kos-mesh connect <address>/did:...` to that node first, or pass its DID: `kos-mesh trust did:key:... --level N`'
  if (e.name === 'ControlApiError' && e.remoteCode === 'ERR_UNKNOWN_PEER') return 'connect to that node, or bootstrap from a seed that knows it (`kos-mesh peers` lists what is known)'
  if (e.name === 'ControlApiError' && e.remoteCode === 'ERR_NODE_NOT_FOUND') return 'no node in the DHT answered with a verified record of that DID: check the DID, and that the node runs and shares a peer with this one (`kos-mesh status` shows the DHT contacts)'
  if (e.name === 'ControlApiError' && e.remoteCode === 'ERR_SERVICE_OFF') return 'the node runs without that service: remove `"dht": false` (or `"gossip": false`) from config.json and restart the node'
  if (e.name === 'ControlApiError' && e.status === 409) return 'the node at that address is not the one you named (or the authority is bound to another DID); check the DID with `kos-mesh status` on the peer, and the address'
  if (e.name === 'ControlApiError' && e.status === 504) return 'check the address and that the peer runs (`kos-mesh peers`)'
  if (e.name === 'KeystorePassphraseError') return 'KOS_MESH_PASSPHRASE must be the passphrase the keystore was created with'
  if (e.name === 'StoreIntegrityError') return 'restore db/ (and db.integrity.json) from a backup; or, to go on without what was lost, `kos-mesh start --reset-store` once'
  if (e.name === 'AddressInUseError') return 'another node (or program) listens there: stop it, or give this node its own port with `kos-mesh start --listen tcp://127.0.0.1:<port>` (libp2p: `--listen /ip4/127.0.0.1/tcp/<port>`; saved to config.json)'
  return undefined
}

/** The parseArgs error as one well-formed sentence. */
function parseArgsMessage(err: unknown): string {
  const e = err as { code?: string; message?: string }
  const msg = e.message ?? 'bad arguments'
  const opt = /'(--?[^'\s]+)/.exec(msg)?.[1]
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${opt ?? msg}`
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    if (/argument missing/.test(msg)) return `option ${opt ?? ''} needs a value`.replace('  ', ' ')
    if (/does not take an argument/.test(msg)) return `option ${opt ?? ''} takes no value`
  }
  return msg.split('\n')[0] ?? msg
}

/** Prints an error (one JSON document on stdout with --json; the message, code and hint on stderr) and returns its exit code. */
function report(io: CliIo, command: string | undefined, json: boolean, err: unknown): number {
  const code = exitCodeOf(err)
  const e = err as Error & { code?: string; remoteCode?: string; reason?: string }
  const name = e?.name ?? 'Error'
  const errCode = e.remoteCode ?? (typeof e.code === 'string' ? e.code : undefined) ?? (name === 'UsageError' ? 'ERR_USAGE' : 'ERR_UNKNOWN')
  const message = e?.message ?? String(err)
  const h = hint(err)
  if (json) io.stdout(toJson({ error: { name, code: errCode, message, ...(e.reason === undefined ? {} : { reason: e.reason }), ...(h === undefined ? {} : { hint: h }) }, exitCode: code }) + '\n')
  const who = command === undefined ? 'kos-mesh' : `kos-mesh ${command}`
  if (name === 'UsageError') {
    io.stderr(`${who}: ${message} [${errCode}]\nRun \`${command === undefined || COMMANDS[command] === undefined ? 'kos-mesh --help' : `kos-mesh ${command} --help`}\` for usage.\n`)
  } else {
    io.stderr(`${who}: ${message} [${errCode}${e.reason === undefined ? '' : ` ${e.reason}`}]${h === undefined ? '' : `\nhint: ${h}`}\n`)
  }
  return code
}

/** Runs the CLI; resolves with the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const clock = io.clock ?? systemClock
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
  // --json is known before the arguments are parsed, so that every error can be a JSON document
  const json = rest.includes('--json')
  if (command === undefined) {
    if (rest.includes('--version') || rest.includes('-v')) {
      io.stdout(json ? toJson({ version: VERSION }) + '\n' : `${VERSION}\n`)
      return ExitCode.OK
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      io.stdout(MAIN_HELP)
      return ExitCode.OK
    }
    const code = report(io, undefined, json, new UsageError(`missing command (expected one of ${Object.keys(COMMANDS).join(', ')})`))
    if (!json) io.stderr(`\n${MAIN_HELP}`)
    return code
  }
  if (command === 'help') {
    io.stdout(helpText(rest.find((r) => !r.startsWith('-'))))
    return ExitCode.OK
  }
  const cmd = COMMANDS[command]
  if (cmd === undefined) {
    return report(io, undefined, json, new UsageError(`unknown command ${JSON.stringify(command.slice(0, 80))} (expected one of ${Object.keys(COMMANDS).join(', ')})`))
  }
  let parsed: { values: Ctx['values']; positionals: string[] }
  try {
    parsed = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...cmd.options }, allowPositionals: true, strict: true }) as typeof parsed
  } catch (err) {
    return report(io, command, json, new UsageError(parseArgsMessage(err)))
  }
  if (parsed.values.help === true) {
    io.stdout(cmd.help)
    return ExitCode.OK
  }
  const ctx: Ctx = {
    command,
    values: parsed.values,
    positionals: parsed.positionals,
    dataDir: resolveDataDir(str(parsed.values['data-dir']), io.env),
    json: parsed.values.json === true,
    io,
    clock,
  }
  try {
    return await cmd.run(ctx)
  } catch (err) {
    return report(io, command, ctx.json, err)
  }
}
