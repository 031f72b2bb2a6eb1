/**
 * The data dir's configuration as the `init` and `start` commands see it: the options they share
 * (transport, listen, control port, log level), the passphrase, the words for the task policy,
 * warnings about addresses, what changed between two configs, and the `config export` command.
 */
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import {
  dataDirPaths,
  DEFAULT_LIBP2P_LISTEN,
  DEFAULT_LISTEN,
  libp2pListenMultiaddr,
  listenAddresses,
  DEFAULT_MIXED_LIBP2P_LISTEN,
  hasTransport,
  parseTransportSetting,
  TRANSPORT_KINDS,
  isUnspecifiedHost,
  loadConfig,
  parseConfig,
  writeFileAtomic,
  type NodeConfig,
} from './config.js'
import { ExitCode, GLOBAL_TEXT, intOption, list, str, UsageError, type Command } from './cli-common.js'
import { isUnspecifiedLibp2pHost, parseLibp2pAddress } from './addresses.js'
import { InvalidConfigError } from './errors.js'
import { LOG_LEVELS, type LogLevel } from './logger.js'

/** --control-port and --log-level (shared by init and start), then the whole config is validated. */
export function applyCommonOptions(config: NodeConfig, v: Record<string, unknown>): void {
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
export function applyTransportOptions(config: NodeConfig, v: Record<string, unknown>): void {
  const flag = str(v.transport)
  if (flag !== undefined) {
    try {
      config.transport = parseTransportSetting(flag, '--transport')
    } catch (err) {
      throw new UsageError((err as Error).message)
    }
  }
  const tcpOn = hasTransport(config, 'tcp')
  const p2pOn = hasTransport(config, 'libp2p')
  // --listen: with both transports, libp2p addresses (multiaddrs) go to libp2p.listen, tcp:// ones to listen
  const given = v.listen === undefined ? undefined : list(v.listen)
  const p2pGiven = given?.filter((a) => !tcpOn || a.startsWith('/') || a.startsWith('libp2p://'))
  const tcpGiven = given?.filter((a) => !p2pOn || !(a.startsWith('/') || a.startsWith('libp2p://')))
  if (p2pOn) {
    const lib = { ...(config.libp2p ?? { listen: [] }) }
    if (p2pGiven !== undefined && p2pGiven.length > 0) {
      lib.listen = p2pGiven.map((a) => {
        try {
          return libp2pListenMultiaddr(a, '--listen')
        } catch (err) {
          throw new UsageError((err as Error).message, 'ERR_INVALID_ADDRESS')
        }
      })
    }
    else if (flag !== undefined && lib.listen.length === 0) lib.listen = [tcpOn ? DEFAULT_MIXED_LIBP2P_LISTEN : DEFAULT_LIBP2P_LISTEN]
    config.libp2p = lib
  }
  if (tcpOn) {
    if (tcpGiven !== undefined && tcpGiven.length > 0) config.listen = tcpGiven
    else if (flag !== undefined && config.listen.length === 0) config.listen = [DEFAULT_LISTEN]
  } else {
    // the tcp listen addresses are not used with libp2p alone
    config.listen = []
  }
}

export async function passphraseFor(dataDir: string, env: NodeJS.ProcessEnv, create: boolean): Promise<string> {
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
export function taskPolicyText(minTrust: number, endorsements = 0): string {
  const e = endorsements > 0 ? ` with >= ${endorsements} endorsement${endorsements === 1 ? '' : 's'} (trustPolicy.TASK_REQUEST)` : ''
  if (minTrust <= 0) return e === '' ? 'open: any authenticated DID may run tasks (policy.task_min_trust 0)' : `only DIDs${e} may run tasks`
  return `only DIDs trusted at >= ${minTrust} (policy.task_min_trust)${e} may run tasks`
}

export function taskEndorsements(config: NodeConfig): number {
  return config.trustPolicy.TASK_REQUEST?.required_endorsements ?? 0
}

/** A libp2p address naming its peer with /p2p/<PeerId> (the PeerId is the peer's DID key). */
export function hasPeerId(addr: string): boolean {
  if (!addr.startsWith('libp2p://')) return false
  try {
    return parseLibp2pAddress(addr).peerId !== undefined
  } catch {
    return false
  }
}

/** Warnings about addresses that will not work as people expect (for init and start). */
export function addressWarnings(config: NodeConfig): string[] {
  const out: string[] = []
  for (const l of config.listen) {
    const m = /^tcp:\/\/(\[[^\]]+\]|[^/:]+):(\d+)/.exec(l)
    if (m === null) continue
    if (m[2] === '0') out.push(`listen ${l}: port 0 picks a new port at every start, so seeds and peers that saved this node's address lose it; use a fixed port (default ${DEFAULT_LISTEN})`)
    if (isUnspecifiedHost(m[1] as string) && config.publish.length === 0) out.push(`listen ${l}: peers cannot dial ${m[1]}; set the address they should dial with --publish tcp://<host or IP>:${m[2]}`)
  }
  for (const l of hasTransport(config, 'libp2p') ? listenAddresses(config).filter((a) => a.startsWith('libp2p://')) : []) {
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

/** Dotted keys whose values differ between two configs. */
export function changedKeys(a: NodeConfig, b: NodeConfig): string[] {
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

export const config: Command = {
  help: `Usage: kos-mesh config export

Prints the node configuration (config.json, validated) as JSON on stdout. The file format:
  version     1
  node        { name, authority, type, capabilities }
  transport   ${TRANSPORT_KINDS.map((t) => `"${t}"`).join(' or ')} (absent: "tcp"), or both: ["tcp", "libp2p"]
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
