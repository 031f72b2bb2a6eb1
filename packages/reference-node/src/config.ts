/**
 * The node configuration file (`<data dir>/config.json`) and the layout of the data directory.
 */
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, open, readFile, rename, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { NodeType, type KLPMessageType, type NodeCapabilities, type TrustRequirements } from '@kos-mesh/interface'
import { parseAddress } from '@kos-mesh/klp-codec'
import { parseTcpAddress } from '@kos-mesh/transport-tcp'
import { checkDid } from './did.js'
import { BUILTIN_AGENTS } from '@kos-mesh/agents'
import { InvalidConfigError, NotInitializedError } from './errors.js'
import { LOG_LEVELS, type LogLevel } from './logger.js'
import { isObj, noExtra } from './config-check.js'
import { parseTrustConfig, parseTrustPolicy, type TrustConfig } from './config-trust.js'
import { parseDhtConfig, parseDiscoveryConfig, parseGossipConfig, type DhtConfig, type DiscoveryFileConfig, type GossipConfig } from './config-discovery.js'
import { parseVectorsConfig, type VectorsConfig } from './config-vectors.js'
import { checkLibp2pAddress, parseLibp2pConfig, parseTransportSetting, transportKinds, type Libp2pConfig, type TransportKind, type TransportSetting } from './config-libp2p.js'
import { isLibp2pAddress, LIBP2P_SCHEME } from './addresses.js'

export { parseTrustConfig, parseTrustPolicy, TRUST_CONFIG_NUMBERS, type TrustConfig } from './config-trust.js'
export { parseDhtConfig, parseGossipConfig, parseDiscoveryConfig, discoveryInit, type DhtConfig, type GossipConfig, type DiscoveryFileConfig } from './config-discovery.js'
export { parseVectorsConfig, MAX_CONFIG_COLLECTIONS, type VectorsConfig } from './config-vectors.js'
export { TRANSPORT_KINDS, LIBP2P_CONFIG_NUMBERS, checkLibp2pAddress, libp2pListenMultiaddr, libp2pInit, parseLibp2pConfig, parseTransportKind, parseTransportSetting, transportKinds, type Libp2pConfig, type TransportKind, type TransportSetting } from './config-libp2p.js'

export const CONFIG_VERSION = 1
/** Largest config file read. */
export const MAX_CONFIG_BYTES = 256 * 1024
/**
 * The default TCP port of a node (`tcp://127.0.0.1:4747`). Fixed, so that a node keeps its address
 * across restarts and the peers and seeds that saved it can find it again.
 */
export const DEFAULT_PORT = 4747
/** The default listen address of `kos-mesh init`. */
export const DEFAULT_LISTEN = `tcp://127.0.0.1:${DEFAULT_PORT}`
/** The default libp2p listen multiaddr of `kos-mesh init --transport libp2p` (same port). */
export const DEFAULT_LIBP2P_LISTEN = `/ip4/127.0.0.1/tcp/${DEFAULT_PORT}`
/** The default libp2p listen multiaddr of a node running both transports (the next port: tcp has 4747). */
export const DEFAULT_MIXED_LIBP2P_LISTEN = `/ip4/127.0.0.1/tcp/${DEFAULT_PORT + 1}`

export interface NodeConfig {
  /** Format version, 1. */
  version: number
  node: {
    /** Human name of the node, `[a-z0-9-]{1,63}`. */
    name: string
    /** KLP authority of the node (`<name>.mesh.kai` by default). */
    authority: string
    /** Spec NodeType: PeerNode, GatewayNode, ArchiveNode, ValidatorNode. */
    type: NodeType
    /** Capabilities published in the node record (missing ones default to false / 0). */
    capabilities: Partial<NodeCapabilities>
  }
  /**
   * The transport the node runs: `tcp` (KLP over TCP + Noise, the default when absent) or `libp2p`
   * (KLP as the libp2p protocol /kos/klp/1.0.0; the node's Ed25519 key is its PeerId), or both,
   * `["tcp", "libp2p"]` (it listens on `listen` and `libp2p.listen`, publishes both kinds of
   * addresses, and dials each peer with the transport of the address). Seeds and published
   * addresses are addresses of these transports.
   */
  transport?: TransportSetting
  /**
   * TCP addresses to listen on with transport tcp (default `tcp://127.0.0.1:4747`; port 0 = a
   * random port, new at every start). Empty with transport libp2p (see `libp2p.listen`).
   */
  listen: string[]
  /**
   * The libp2p transport: `listen` multiaddrs (`/ip4/0.0.0.0/tcp/4747`) and options passed to
   * @kos-mesh/transport-libp2p (maxFrameSize, dialTimeoutMs, maxConnections, ...). Used with
   * `"transport": "libp2p"`.
   */
  libp2p?: Libp2pConfig
  /**
   * Addresses other nodes should dial to reach this one (`tcp://host:port`), published in its
   * signed node record instead of the listen addresses: for a node behind a port forward, or
   * listening on 0.0.0.0. Default none (the listen addresses are published).
   */
  publish: string[]
  /** Seed nodes to bootstrap from (`tcp://host:port[/did:key:...]`). */
  seeds: string[]
  /** Built-in agents to run: any of `echo`, `text-stats`, `math`. */
  agents: string[]
  control: {
    /** Port of the loopback control API; 0 = random (written to control.json at start). */
    port: number
  }
  /** What this node insists on, whatever the sender asks for. */
  policy: {
    /**
     * Minimum trust score (0..10) a sender's DID needs to run tasks here (`kos-mesh trust <did>
     * --level N` raises one). 0 = open: any authenticated DID may run tasks.
     */
    task_min_trust: number
  }
  /**
   * Trust requirements this node insists on for messages of a type, whatever the sender asks for
   * (the router's receiver-side policy): `{ "TASK_REQUEST": { "required_endorsements": 1 } }`.
   * Missing fields are 0 / `none`; for TASK_REQUEST it is merged with policy.task_min_trust (the
   * stricter wins). Default `{}`.
   */
  trustPolicy: Partial<Record<KLPMessageType, TrustRequirements>>
  /** Options of the trust engine (`createTrustEngine` of @kos-mesh/trust, without `self`). Default `{}`. */
  trust: TrustConfig
  /**
   * The DHT (Kademlia: node and capability lookups, contacts kept in db/): `false` turns it off,
   * an object sets options (k, alpha, requestTimeoutMs, provide, ...). Absent: on, defaults.
   */
  dht?: DhtConfig | false
  /** The gossip overlay (HyParView + Plumtree broadcast): `false` turns it off (broadcasts flood). Absent: on. */
  gossip?: GossipConfig | false
  /** Options of the peer-table discovery (targetPeers, autoDial, refreshIntervalMs, announceIntervalMs). */
  discovery?: DiscoveryFileConfig
  /**
   * Vector collections (@kos-mesh/vector-mesh): an object turns the service on (the node then
   * advertises `vector_storage`; index files in `<data dir>/vectors`), with the collections created
   * at every start and sync options; absent or `false`: off.
   */
  vectors?: VectorsConfig | false
  logLevel: LogLevel
}

/** Files of a data directory. */
export interface DataDirPaths {
  root: string
  config: string
  keystore: string
  passphrase: string
  db: string
  /** Index files of the vector collections (one directory per collection and shard). */
  vectors: string
  /** Written while the node runs: `{ pid, port, did, authority, addrs }`. */
  control: string
  /** Bearer token of the control API (mode 0600), written while the node runs. */
  token: string
  /** Directory of the node's log files (0700). */
  logs: string
  /** The current log file, JSON lines (`node.log`; rotated to `node.log.1`, `node.log.2`, ...). */
  log: string
}

export function dataDirPaths(root: string): DataDirPaths {
  const r = resolve(root)
  return {
    root: r,
    config: join(r, 'config.json'),
    keystore: join(r, 'keystore.json'),
    passphrase: join(r, 'passphrase'),
    db: join(r, 'db'),
    vectors: join(r, 'vectors'),
    control: join(r, 'control.json'),
    token: join(r, 'control.token'),
    logs: join(r, 'logs'),
    log: join(r, 'logs', 'node.log'),
  }
}

/** `--data-dir`, else `KOS_MESH_DATA_DIR`, else `~/.kos-mesh`. */
export function resolveDataDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const v = flag ?? env.KOS_MESH_DATA_DIR
  return resolve(v !== undefined && v.length > 0 ? v : join(homedir(), '.kos-mesh'))
}

const NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
const CAP_BOOLEANS = ['agent_hosting', 'vector_storage', 'relay_services', 'validation_services', 'archive_services'] as const
const CAP_NUMBERS = ['bandwidth_mbps', 'storage_gb', 'compute_units'] as const

export function defaultConfig(name = `node-${randomBytes(3).toString('hex')}`): NodeConfig {
  return {
    version: CONFIG_VERSION,
    node: { name, authority: `${name}.mesh.kai`, type: NodeType.PEER_NODE, capabilities: { agent_hosting: true } },
    listen: [DEFAULT_LISTEN],
    publish: [],
    seeds: [],
    agents: ['echo', 'text-stats', 'math'],
    control: { port: 0 },
    policy: { task_min_trust: 0 },
    trustPolicy: {},
    trust: {},
    logLevel: 'info',
  }
}

/** An example address of a transport, for messages. */
function exampleAddress(use: 'listen' | 'dial' | 'publish', transport: TransportKind | undefined): string {
  const tcp = use === 'listen' ? 'tcp://127.0.0.1:4747 (port 0 = random)' : use === 'publish' ? 'tcp://203.0.113.7:4747' : 'tcp://127.0.0.1:4747[/did:key:z6Mk...]'
  const p2p = use === 'listen' ? '/ip4/0.0.0.0/tcp/4747' : use === 'publish' ? 'libp2p:///ip4/203.0.113.7/tcp/4747' : 'libp2p:///ip4/127.0.0.1/tcp/4747/p2p/12D3KooW...[/did:key:z6Mk...]'
  return transport === 'libp2p' ? p2p : transport === 'tcp' ? tcp : `${tcp} or ${p2p}`
}

/**
 * Checks an address of the node: a TCP address `tcp://host:port`, the port a plain decimal
 * integer, 0..65535 to listen on (0 = random), 1..65535 to dial, where a peer address may end
 * with the peer's DID (`/did:key:z6Mk...`, a valid DID); or a libp2p address
 * (`libp2p://<multiaddr>[/did:...]`, or a bare multiaddr `/ip4/...`, returned in the `libp2p://`
 * form). `transport` restricts it to the addresses of that transport (default: either). Throws
 * InvalidConfigError (the CLI turns it into a usage error for command-line values).
 */
export function checkNodeAddress(addr: unknown, use: 'listen' | 'dial' | 'publish', where: string, transport?: TransportKind): string {
  const example = exampleAddress(use, transport)
  if (typeof addr !== 'string') throw new InvalidConfigError(`${where}: expected an address like ${example}, got ${typeof addr}`)
  const shown = JSON.stringify(addr.slice(0, 120))
  if (isLibp2pAddress(addr)) {
    if (transport === 'tcp') throw new InvalidConfigError(`${where}: expected a TCP address like ${example} (the node's transport is tcp; set "transport": "libp2p", or --transport libp2p, for libp2p addresses), got ${shown}`)
    const a = checkLibp2pAddress(addr, use, where)
    if (a.includes('/did:')) checkDidOf(a.slice(a.indexOf('/did:') + 1), where)
    return a
  }
  if (transport === 'libp2p' && !addr.startsWith('klp://')) throw new InvalidConfigError(`${where}: expected a libp2p address like ${example} (the node's transport is libp2p), got ${shown}`)
  if (addr.startsWith('klp://')) {
    throw new InvalidConfigError(
      `${where}: expected a transport address like ${example}, got the KLP address ${shown} (klp:// names a node or an agent for \`task\` and \`trust\`; a node is dialled at its tcp:// address, which \`kos-mesh status\` on that node prints)`,
    )
  }
  let a
  try {
    a = parseTcpAddress(addr)
  } catch {
    throw new InvalidConfigError(`${where}: expected an address like ${example}, got ${shown}`)
  }
  if (use !== 'listen' && a.port === 0) throw new InvalidConfigError(`${where}: expected a port in 1..65535, got 0 in ${shown}`)
  if (use === 'publish' && isUnspecifiedHost(a.host)) throw new InvalidConfigError(`${where}: expected a host other nodes can dial (a name or an IP address), got the unspecified address in ${shown}`)
  if (a.peer !== undefined) {
    if (use !== 'dial') throw new InvalidConfigError(`${where}: expected a ${use} address without a DID (the DID is added from the node's identity), got ${shown}`)
    checkDidOf(a.peer, where)
  }
  return addr
}

function checkDidOf(did: string, where: string): void {
  try {
    checkDid(did, 'the DID of the address')
  } catch (err) {
    throw new InvalidConfigError(`${where}: ${(err as Error).message}`, { cause: err })
  }
}

/** The transport of a config (`tcp` when absent; the first one of a node running several). */
export function transportOf(config: Pick<NodeConfig, 'transport'>): TransportKind {
  return transportKinds(config.transport)[0] as TransportKind
}

/** The transports of a config (`['tcp']` when absent). */
export function transportsOf(config: Pick<NodeConfig, 'transport'>): TransportKind[] {
  return transportKinds(config.transport)
}

/** Whether the node runs this transport. */
export function hasTransport(config: Pick<NodeConfig, 'transport'>, kind: TransportKind): boolean {
  return transportKinds(config.transport).includes(kind)
}

/** The transport addresses the node listens on: `listen` (tcp) and `libp2p.listen` as `libp2p://` addresses, of the transports it runs. */
export function listenAddresses(config: Pick<NodeConfig, 'transport' | 'listen' | 'libp2p'>): string[] {
  return [
    ...(hasTransport(config, 'tcp') ? config.listen : []),
    ...(hasTransport(config, 'libp2p') ? (config.libp2p?.listen ?? []).map((m) => `${LIBP2P_SCHEME}${m}`) : []),
  ]
}

/** True for 0.0.0.0 and :: (listen on every interface; never dialable). */
export function isUnspecifiedHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '')
  return h === '0.0.0.0' || h === '::' || /^0*:(0*:)*0*$/.test(h) || h === ''
}

function addrList(where: string, v: unknown, use: 'listen' | 'dial' | 'publish', transport: TransportKind | undefined): string[] {
  if (!Array.isArray(v) || v.length > 64) throw new InvalidConfigError(`${where}: expected a list of at most 64 addresses, got ${Array.isArray(v) ? v.length : typeof v}`)
  return v.map((a, i) => checkNodeAddress(a, use, `${where}[${i}]`, transport))
}

export function validateAuthority(authority: unknown, where = 'node.authority'): string {
  if (typeof authority !== 'string') throw new InvalidConfigError(`${where}: expected a string, got ${typeof authority}`)
  let parsed
  try {
    parsed = parseAddress(`klp://${authority}`)
  } catch {
    parsed = undefined
  }
  if (parsed?.authority !== authority) throw new InvalidConfigError(`${where}: expected a lower-case host name like node-a.mesh.kai, got ${JSON.stringify(authority)}`)
  return authority
}

/** Validates a parsed config object (unknown keys are errors, so typos do not pass silently). */
export function parseConfig(v: unknown): NodeConfig {
  if (!isObj(v)) throw new InvalidConfigError(`expected a JSON object, got ${Array.isArray(v) ? 'array' : typeof v}`)
  noExtra('config', v, ['version', 'node', 'transport', 'listen', 'libp2p', 'publish', 'seeds', 'agents', 'control', 'policy', 'trustPolicy', 'trust', 'dht', 'gossip', 'discovery', 'vectors', 'logLevel'])
  if (v.version !== CONFIG_VERSION) throw new InvalidConfigError(`version: expected ${CONFIG_VERSION}, got ${JSON.stringify(v.version)}`)
  const node = v.node
  if (!isObj(node)) throw new InvalidConfigError(`node: expected an object, got ${typeof node}`)
  noExtra('node', node, ['name', 'authority', 'type', 'capabilities'])
  if (typeof node.name !== 'string' || !NAME_RE.test(node.name)) throw new InvalidConfigError(`node.name: expected [a-z0-9-] up to 63 characters, got ${JSON.stringify(node.name)}`)
  const authority = validateAuthority(node.authority)
  const types = Object.values(NodeType) as string[]
  if (typeof node.type !== 'string' || !types.includes(node.type)) throw new InvalidConfigError(`node.type: expected one of ${types.join(', ')}, got ${JSON.stringify(node.type)}`)
  const caps = node.capabilities ?? {}
  if (!isObj(caps)) throw new InvalidConfigError(`node.capabilities: expected an object, got ${typeof caps}`)
  noExtra('node.capabilities', caps, [...CAP_BOOLEANS, ...CAP_NUMBERS])
  for (const k of CAP_BOOLEANS) if (caps[k] !== undefined && typeof caps[k] !== 'boolean') throw new InvalidConfigError(`node.capabilities.${k}: expected a boolean, got ${typeof caps[k]}`)
  for (const k of CAP_NUMBERS) {
    const n = caps[k]
    if (n !== undefined && !(typeof n === 'number' && Number.isFinite(n) && n >= 0)) throw new InvalidConfigError(`node.capabilities.${k}: expected a number >= 0, got ${JSON.stringify(n)}`)
  }
  const transport = v.transport === undefined ? undefined : parseTransportSetting(v.transport)
  const kinds = transportKinds(transport)
  // one transport: seeds and published addresses are of that one; several: of any of them
  const kind = kinds.length === 1 ? kinds[0] : undefined
  const listen = addrList('listen', v.listen ?? [], 'listen', 'tcp')
  if (kind === 'libp2p' && listen.length > 0) {
    throw new InvalidConfigError(`listen: expected [] with transport libp2p (the node listens on libp2p.listen, e.g. ["/ip4/0.0.0.0/tcp/4747"]), got ${JSON.stringify(listen).slice(0, 120)}`)
  }
  const libp2p = v.libp2p === undefined ? undefined : parseLibp2pConfig(v.libp2p)
  const seeds = addrList('seeds', v.seeds ?? [], 'dial', kind)
  const publish = addrList('publish', v.publish ?? [], 'publish', kind)
  const agents = v.agents ?? []
  if (!Array.isArray(agents)) throw new InvalidConfigError(`agents: expected a list, got ${typeof agents}`)
  for (const a of agents) {
    if (typeof a !== 'string' || BUILTIN_AGENTS[a] === undefined) throw new InvalidConfigError(`agents: expected one of ${Object.keys(BUILTIN_AGENTS).join(', ')}, got ${JSON.stringify(a)}`)
  }
  const control = v.control ?? { port: 0 }
  if (!isObj(control)) throw new InvalidConfigError(`control: expected an object, got ${typeof control}`)
  noExtra('control', control, ['port'])
  const port = control.port ?? 0
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidConfigError(`control.port: expected 0..65535, got ${JSON.stringify(port)}`)
  const policy = v.policy ?? {}
  if (!isObj(policy)) throw new InvalidConfigError(`policy: expected an object, got ${typeof policy}`)
  noExtra('policy', policy, ['task_min_trust'])
  const taskMinTrust = policy.task_min_trust ?? 0
  if (typeof taskMinTrust !== 'number' || !Number.isInteger(taskMinTrust) || taskMinTrust < 0 || taskMinTrust > 10) {
    throw new InvalidConfigError(`policy.task_min_trust: expected an integer in 0..10, got ${JSON.stringify(taskMinTrust)}`)
  }
  const trustPolicy = parseTrustPolicy(v.trustPolicy ?? {})
  const trust = parseTrustConfig(v.trust ?? {})
  const dht = v.dht === undefined ? undefined : parseDhtConfig(v.dht)
  const gossip = v.gossip === undefined ? undefined : parseGossipConfig(v.gossip)
  const discovery = v.discovery === undefined ? undefined : parseDiscoveryConfig(v.discovery)
  const vectors = v.vectors === undefined ? undefined : parseVectorsConfig(v.vectors)
  const logLevel = v.logLevel ?? 'info'
  if (typeof logLevel !== 'string' || !(LOG_LEVELS as readonly string[]).includes(logLevel)) throw new InvalidConfigError(`logLevel: expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`)
  return {
    version: CONFIG_VERSION,
    node: { name: node.name, authority, type: node.type as NodeType, capabilities: caps as Partial<NodeCapabilities> },
    ...(transport === undefined ? {} : { transport }),
    listen,
    ...(libp2p === undefined ? {} : { libp2p }),
    publish,
    seeds,
    agents: [...new Set(agents as string[])],
    control: { port },
    policy: { task_min_trust: taskMinTrust },
    trustPolicy,
    trust,
    ...(dht === undefined ? {} : { dht }),
    ...(gossip === undefined ? {} : { gossip }),
    ...(discovery === undefined ? {} : { discovery }),
    ...(vectors === undefined ? {} : { vectors }),
    logLevel: logLevel as LogLevel,
  }
}

/** Reads and validates `<dir>/config.json`. Throws NotInitializedError when absent. */
export async function loadConfig(dir: string): Promise<NodeConfig> {
  const p = dataDirPaths(dir)
  let text: string
  try {
    const s = await stat(p.config)
    if (s.size > MAX_CONFIG_BYTES) throw new InvalidConfigError(`${p.config}: expected at most ${MAX_CONFIG_BYTES} bytes, got ${s.size}`)
    text = await readFile(p.config, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotInitializedError(`no configuration in ${p.root}: run \`kos-mesh init --data-dir ${p.root}\` first`)
    throw err
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new InvalidConfigError(`${p.config}: expected JSON, got a syntax error (${(err as Error).message})`)
  }
  try {
    return parseConfig(json)
  } catch (err) {
    if (err instanceof InvalidConfigError) throw new InvalidConfigError(`${p.config}: ${err.message}`)
    throw err
  }
}

/** Writes a file atomically with `mode` (temp file + rename). */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`
  const fh = await open(tmp, 'wx', mode)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await chmod(tmp, mode)
  await rename(tmp, path)
}

/** What `ensurePrivateDir` found and did. */
export interface PrivateDirResult {
  /** The mode (permission bits) before. */
  modeBefore: number
  /** The directory was chmod-ed to 0700. */
  fixed: boolean
  /** Owned by the current user (always true where uids do not exist). */
  ownedByUser: boolean
}

/**
 * Creates `dir` (0700) or, when it exists, makes it 0700: `mkdir(..., { mode })` leaves an
 * existing directory's mode alone, so a data dir created 0755 by hand (or by an older version)
 * would expose its files' names and any file created with a looser mode. Warns (through `warn`)
 * when the directory belongs to another user or its mode cannot be changed.
 */
export async function ensurePrivateDir(dir: string, warn: (message: string) => void = () => {}): Promise<PrivateDirResult> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const s = await stat(dir)
  if (!s.isDirectory()) throw new InvalidConfigError(`${dir}: expected a directory, got a file`)
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined
  const ownedByUser = uid === undefined || s.uid === uid
  if (!ownedByUser) warn(`${dir} is owned by uid ${s.uid}, not by this user (uid ${String(uid)}): its owner can read the keystore and the passphrase file`)
  const modeBefore = s.mode & 0o777
  let fixed = false
  if (modeBefore !== 0o700) {
    try {
      await chmod(dir, 0o700)
      fixed = true
      warn(`${dir} had mode ${modeBefore.toString(8).padStart(4, '0')}; changed it to 0700`)
    } catch (err) {
      warn(`${dir} has mode ${modeBefore.toString(8).padStart(4, '0')} and could not be changed to 0700 (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    }
  }
  return { modeBefore, fixed, ownedByUser }
}

export async function saveConfig(dir: string, config: NodeConfig): Promise<void> {
  const p = dataDirPaths(dir)
  await ensurePrivateDir(p.root)
  await writeFileAtomic(p.config, JSON.stringify(parseConfig(config), null, 2) + '\n', 0o600)
}
