/**
 * `kos-mesh init`: creates (or updates) the data dir: config.json, the identity keystore and the
 * passphrase file.
 */
import { stat } from 'node:fs/promises'
import { NodeType } from '@kos-mesh/interface'
import { BUILTIN_AGENTS } from '@kos-mesh/agents'
import {
  dataDirPaths,
  DEFAULT_LIBP2P_LISTEN,
  DEFAULT_LISTEN,
  listenAddresses,
  DEFAULT_MIXED_LIBP2P_LISTEN,
  defaultConfig,
  ensurePrivateDir,
  loadConfig,
  saveConfig,
  validateAuthority,
  type NodeConfig,
} from './config.js'
import { ExitCode, GLOBAL_TEXT, intOption, list, needPositionals, note, print, str, UsageError, type Command } from './cli-common.js'
import { addressWarnings, applyCommonOptions, applyTransportOptions, changedKeys, passphraseFor, taskEndorsements, taskPolicyText } from './cli-config.js'
import { AlreadyInitializedError, InvalidConfigError } from './errors.js'
import { keystoreIdentity } from './identity.js'

const NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
/** Capabilities `init --capability` sets (agent_hosting follows --agents). */
const INIT_CAPABILITIES: readonly string[] = ['vector_storage', 'relay_services', 'validation_services', 'archive_services']

export const init: Command = {
  help: `Usage: kos-mesh init [options]

Creates the data directory (mode 0700; an existing one is chmod-ed to 0700) with config.json,
the node identity in keystore.json (encrypted with the passphrase from $KOS_MESH_PASSPHRASE, else
a generated passphrase file, 0600, which only guards against casual reads), and prints the node
DID. The node listens on ${DEFAULT_LISTEN} unless told otherwise: a fixed port, so that it
keeps its address across restarts (give each node on one machine its own port with --listen).
With --transport libp2p the node runs KLP over libp2p instead (its Ed25519 key is its libp2p
PeerId) and listens on the multiaddr ${DEFAULT_LIBP2P_LISTEN} unless told otherwise; with
--transport tcp,libp2p it runs both (libp2p then on ${DEFAULT_MIXED_LIBP2P_LISTEN}), so TCP-only and
libp2p-only nodes both reach it.

On an initialized data dir, init refuses unless given --force (change only the options given,
keep the rest of config.json) or --reset (start again from the defaults and the options given).
The identity is always kept.

Options:
  --name <name>           node name, [a-z0-9-] (default: node-<random>)
  --authority <host>      KLP authority (default: <name>.mesh.kai)
  --transport <name>      tcp (default), libp2p, or both: tcp,libp2p; seeds and published
                          addresses are addresses of those transports
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
  --vectors               run vector collections ("vectors": {} in config.json; the node
                          then advertises vector_storage): see \`kos-mesh vectors --help\`
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
    vectors: { type: 'boolean' },
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
    if (v.vectors === true && (config.vectors === undefined || config.vectors === false)) config.vectors = {}
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
