/**
 * `kos-mesh start` (run the node in the foreground: storage, transports, services, the control
 * API, the log file) and `kos-mesh stop` (ask it to stop and wait for its process to exit).
 */
import { stat } from 'node:fs/promises'
import { tcp } from '@kos-mesh/transport-tcp'
import { BUILTIN_AGENTS } from '@kos-mesh/agents'
import { dataDirPaths, libp2pInit, listenAddresses, hasTransport, transportsOf, ensurePrivateDir, loadConfig, saveConfig, discoveryInit, type NodeConfig } from './config.js'
import { connectControl, MAX_TASK_TIMEOUT_MS, removeControlFiles, startControlServer, writeControlFiles, type ControlInfo } from './control.js'
import { controlCommand, ExitCode, GLOBAL_TEXT, intOption, list, needPositionals, note, print, type Command, type Ctx } from './cli-common.js'
import { addressWarnings, applyCommonOptions, applyTransportOptions, changedKeys, passphraseFor, taskEndorsements, taskPolicyText } from './cli-config.js'
import { peersLine } from './cli-status.js'
import { DatabaseLockedError, InvalidConfigError, NodeAlreadyRunningError, StopTimeoutError } from './errors.js'
import { keystoreIdentity } from './identity.js'
import { openLogFile, type LogFile } from './logfile.js'
import { jsonLogger } from './logger.js'
import { createNode } from './node.js'
import { levelStore } from './storage/level.js'

export const start: Command = {
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
  --transport <name>      tcp, libp2p or tcp,libp2p (replaces the config's; see \`kos-mesh init --help\`)
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
  const libp2pDht = hasTransport(config, 'libp2p') && config.libp2p?.dht?.enabled === true ? (await import('./libp2p-services.js')).libp2pDhtDiscovery() : undefined
  // with libp2p.gossipsub, broadcasts also travel over gossipsub and reach the router's handlers from there
  const libp2pGossip = hasTransport(config, 'libp2p') && config.libp2p?.gossipsub === true ? (await import('./libp2p-services.js')).libp2pGossipsub() : undefined
  const disc = discoveryInit(config)
  const node = createNode({
    identity: keystoreIdentity({ path: p.keystore, passphrase }),
    authority: config.node.authority,
    nodeType: config.node.type,
    capabilities: config.node.capabilities,
    // libp2p is loaded only for a node that runs it
    // one transport or both (tcp, libp2p): the router dials each address with the transport of its scheme
    transports: await Promise.all(transportsOf(config).map(async (k) => k === 'libp2p' ? (await import('./libp2p.js')).libp2p({ ...libp2pInit(config.libp2p), datastore: storage.datastore }) : tcp())),
    listen: listenAddresses(config),
    ...(config.publish.length > 0 ? { publish: config.publish } : {}),
    seeds: config.seeds,
    bootstrap: false,
    storage,
    agents: config.agents.map((a) => (BUILTIN_AGENTS[a] as () => never)()),
    taskMinTrust: config.policy.task_min_trust,
    ...(Object.keys(config.trustPolicy).length === 0 ? {} : { router: { trustPolicy: config.trustPolicy } }),
    trust: config.trust,
    // vector collections: records in the store, index files in <data dir>/vectors (reloaded at start)
    ...(config.vectors === undefined || config.vectors === false ? {} : { vectors: { ...config.vectors, dataDir: p.vectors } }),
    ...disc,
    ...(libp2pDht === undefined ? {} : { discovery: { ...disc.discovery, sources: [...(disc.discovery?.sources ?? []), libp2pDht.source] } }),
    services: { ...(libp2pDht === undefined ? {} : { libp2pDht: libp2pDht.service }), ...(libp2pGossip === undefined ? {} : { libp2pGossipsub: libp2pGossip }) },
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
    // a vectors.collections entry that is invalid, or differs from the collection the node holds (exit 6)
    if (e.name === 'InvalidCollectionError') throw new InvalidConfigError(`${p.config}: vectors.collections: ${e.message}`, { cause: err })
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

function defaultIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export const stop = controlCommand(
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
