/**
 * The peer discovery service: registers the PEER_DISCOVERY handler on a router, publishes this
 * node's signed record, bootstraps from seeds, exchanges peer tables, keeps the registry fresh
 * and dials the best discovered peers. The decisions live in the sans-I/O PeerRegistry.
 *
 * It is written against the interface's `MessageRouter` (klp-router implements it) and takes its
 * time and timers only from the injected `Clock`, so a simulator can run it in virtual time.
 *
 * This module holds the lifecycle, local record, timers, bootstrap, `discoverPeers` and announce;
 * the public types are in service-api.ts, the inbound handler in service-inbound.ts, peer-table
 * pulls in service-peer-table.ts and the dialer in service-dial.ts.
 */
import { BootstrapStatus, DiscoveryMethod, KLPMessageType, MessagePriority, InvalidParametersError, TimeoutError, silentLogger, systemClock, throwIfAborted } from '@kos-mesh/interface'
import type { AbortOptions, Clock, DiscoveredPeer, FederatedNode, Logger, MessageHandler, MessageRouter, PeerInfo, Signer, TimerHandle } from '@kos-mesh/interface'
import { splitPeerAddress, toTransportAddress } from './addresses.js'
import { localNodeOf } from './local-node.js'
import { BootstrapFailedError, DiscoveryNotStartedError } from './errors.js'
import { DEFAULT_PROTOCOL_LIMITS, discoveryPayloadValue } from './protocol.js'
import type { ProtocolLimits } from './protocol.js'
import { createNodeRecord, createRecordPeek, createRecordVerifier, DEFAULT_CLOCK_SKEW_MS, DEFAULT_MAX_RECORD_TTL_SECONDS, DEFAULT_RECORD_TTL_SECONDS } from './record.js'
import { PeerRegistry } from './registry.js'
import type { MergeResult } from './registry-types.js'
import type { BootstrapResult, DiscoveryConfig, PeerDiscovery, PeerDiscoveryComponents, PeerDiscoveryInit, PeerDiscoveryStats, SeedNode } from './service-api.js'
import { PeerDialer } from './service-dial.js'
import { createDiscoveryHandler } from './service-inbound.js'
import { PeerTables } from './service-peer-table.js'
import { clockTimeout, DISCOVERY_PATH, errName, quiet } from './service-util.js'
import type { DiscoveryContext, DiscoveryCounters } from './service-util.js'
import type { DiscoverySource, NodeRecord } from './types.js'
import { didOfKeyId } from './validate.js'

function nonNegInt(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || v < 0) throw new InvalidParametersError(`${name}: expected an integer >= 0, got ${String(v)}`)
  return v
}

function normalizeSeed(s: SeedNode | string): SeedNode {
  if (typeof s === 'string') return splitPeerAddress(s)
  if (s === null || typeof s !== 'object' || typeof s.address !== 'string') {
    throw new InvalidParametersError(`seed: expected { address, did? } or a string, got ${s === null ? 'null' : typeof s}`)
  }
  const split = splitPeerAddress(s.address)
  return { address: split.address, ...(s.did ?? split.did ? { did: s.did ?? split.did } : {}) }
}

class PeerDiscoveryService implements PeerDiscovery {
  readonly registry: PeerRegistry
  readonly #router: MessageRouter
  readonly #signer: Signer
  readonly #clock: Clock
  readonly #log: Logger
  readonly #init: PeerDiscoveryInit
  readonly #limits: ProtocolLimits
  readonly #autoDial: boolean
  readonly #refreshMs: number
  readonly #announceMs: number
  readonly #fanout: number
  readonly #ttl: number
  readonly #seedTimeoutMs: number
  readonly #sources: DiscoverySource[]
  readonly #handle: MessageHandler
  readonly #peerTables: PeerTables
  readonly #dialer: PeerDialer
  #record: NodeRecord | undefined
  #started = false
  #stop = new AbortController()
  #refreshTimer: TimerHandle | undefined
  #announceTimer: TimerHandle | undefined
  readonly #counters: DiscoveryCounters = { bootstraps: 0, requestsServed: 0, requestsFailed: 0, invalidMessages: 0, dials: 0, dialFailures: 0 }
  readonly #onConnect = (evt: CustomEvent<PeerInfo>): void => {
    this.registry.touch(evt.detail.did)
  }

  constructor(init: PeerDiscoveryInit, components: PeerDiscoveryComponents) {
    if (components?.router === undefined) throw new InvalidParametersError('router: expected a router, got undefined')
    const signer = components.signer ?? components.identity?.signer
    if (signer === undefined) throw new InvalidParametersError('signer: expected a Signer (or an identity), got undefined')
    if (didOfKeyId(signer.keyId) !== components.router.did) {
      throw new InvalidParametersError(`signer: expected a key of ${components.router.did.slice(0, 80)}, got ${signer.keyId.slice(0, 80)}`)
    }
    this.#router = components.router
    this.#signer = signer
    this.#clock = components.clock ?? systemClock
    this.#log = components.logger ?? silentLogger
    this.#init = init
    this.#limits = { ...DEFAULT_PROTOCOL_LIMITS, ...init.limits }
    const targetPeers = nonNegInt('targetPeers', init.targetPeers, 8)
    this.#autoDial = init.autoDial ?? true
    const dialConcurrency = Math.max(1, nonNegInt('dialConcurrency', init.dialConcurrency, 4))
    const dialBackoffMs = nonNegInt('dialBackoffMs', init.dialBackoffMs, 30_000)
    this.#refreshMs = nonNegInt('refreshIntervalMs', init.refreshIntervalMs, 60_000)
    this.#announceMs = nonNegInt('announceIntervalMs', init.announceIntervalMs, 600_000)
    this.#fanout = nonNegInt('refreshFanout', init.refreshFanout, 2)
    this.#ttl = nonNegInt('recordTtlSeconds', init.recordTtlSeconds, DEFAULT_RECORD_TTL_SECONDS)
    if (this.#ttl === 0 || this.#ttl > DEFAULT_MAX_RECORD_TTL_SECONDS) {
      throw new InvalidParametersError(`recordTtlSeconds: expected an integer in [1, ${DEFAULT_MAX_RECORD_TTL_SECONDS}], got ${this.#ttl}`)
    }
    if (this.#announceMs > 0 && this.#announceMs >= this.#ttl * 1000) {
      throw new InvalidParametersError(`announceIntervalMs: expected less than the record ttl (${this.#ttl * 1000} ms), got ${this.#announceMs}`)
    }
    this.#seedTimeoutMs = Math.max(1, nonNegInt('seedTimeoutMs', init.seedTimeoutMs, 10_000))
    const requestTimeoutMs = Math.max(1, nonNegInt('requestTimeoutMs', init.requestTimeoutMs, 5_000))
    this.#sources = [...(init.sources ?? [])]
    const toTransport = init.toTransportAddress ?? toTransportAddress
    const maxRecordBytes = this.#limits.maxRecordBytes
    const engine = components.trustEngine
    this.registry = new PeerRegistry({
      ...init.registry,
      ...(engine?.peerScore === undefined ? {} : { trustScoreOf: (did: string) => engine.peerScore?.(did) }),
      verifyRecord: createRecordVerifier({
        signatureVerifier: components.signatureVerifier,
        clock: this.#clock,
        clockSkewMs: init.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS,
        maxRecordBytes,
      }),
      peekRecord: createRecordPeek(maxRecordBytes),
      localPeerId: components.router.did,
      clock: this.#clock,
    })
    const discovery: DiscoveryContext = {
      router: this.#router,
      registry: this.registry,
      clock: this.#clock,
      log: this.#log,
      limits: this.#limits,
      counters: this.#counters,
      localRecord: () => this.#record,
    }
    this.#handle = createDiscoveryHandler(discovery)
    this.#peerTables = new PeerTables(discovery, requestTimeoutMs)
    this.#dialer = new PeerDialer(discovery, { targetPeers, dialConcurrency, dialBackoffMs, dialTimeoutMs: this.#seedTimeoutMs, toTransport })
  }

  isStarted(): boolean {
    return this.#started
  }

  async start(): Promise<void> {
    if (this.#started) return
    this.#stop = new AbortController()
    quiet(this.#stop.signal)
    this.#router.handle(KLPMessageType.PEER_DISCOVERY, this.#handle, { path: DISCOVERY_PATH })
    this.#router.addEventListener('peer:connect', this.#onConnect)
    this.#started = true
    try {
      await this.#refreshRecord()
    } catch (err) {
      await this.stop()
      throw err
    }
    this.#schedule()
  }

  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    this.#stop.abort(new DiscoveryNotStartedError('peer discovery stopped'))
    this.#clock.clearTimeout(this.#refreshTimer)
    this.#clock.clearTimeout(this.#announceTimer)
    this.#refreshTimer = undefined
    this.#announceTimer = undefined
    this.#router.removeEventListener('peer:connect', this.#onConnect)
    this.#router.unhandle(KLPMessageType.PEER_DISCOVERY, { path: DISCOVERY_PATH })
  }

  localRecord(): NodeRecord | undefined {
    return this.#record
  }

  stats(): PeerDiscoveryStats {
    return { registry: this.registry.stats(), ...this.#counters }
  }

  getPeers(query: { requiredCapabilities?: string[]; maxPeers?: number } = {}): DiscoveredPeer[] {
    return this.registry.discoveredPeers(query)
  }

  // ---------------------------------------------------------------- local record

  #localNode(): FederatedNode {
    return localNodeOf(this.#router, this.#init.node ?? {}, this.#clock.now())
  }


  async #refreshRecord(): Promise<NodeRecord> {
    this.#record = await createNodeRecord(this.#localNode(), this.#signer, {
      source: { scheme: 'klp', authority: this.#router.authority, path: DISCOVERY_PATH },
      ttlSeconds: this.#ttl,
      now: Math.floor(this.#clock.now()),
    })
    return this.#record
  }

  #assertStarted(): void {
    if (!this.#started) throw new DiscoveryNotStartedError('expected peer discovery to be started, got stopped')
  }

  #signal(options: AbortOptions): AbortSignal {
    return options.signal === undefined ? this.#stop.signal : quiet(AbortSignal.any([options.signal, this.#stop.signal]))
  }

  // ---------------------------------------------------------------- timers

  #schedule(): void {
    if (this.#refreshMs > 0) {
      const tick = (): void => {
        if (!this.#started) return
        void this.refresh().catch((err: unknown) => this.#log.debug('refresh failed', { err: errName(err) })).finally(() => {
          if (this.#started) this.#refreshTimer = this.#clock.setTimeout(tick, this.#refreshMs, { unref: true })
        })
      }
      this.#refreshTimer = this.#clock.setTimeout(tick, this.#refreshMs, { unref: true })
    }
    if (this.#announceMs > 0) {
      const tick = (): void => {
        if (!this.#started) return
        void this.announce().catch((err: unknown) => this.#log.debug('announce failed', { err: errName(err) })).finally(() => {
          if (this.#started) this.#announceTimer = this.#clock.setTimeout(tick, this.#announceMs, { unref: true })
        })
      }
      this.#announceTimer = this.#clock.setTimeout(tick, this.#announceMs, { unref: true })
    }
  }

  // ---------------------------------------------------------------- outbound

  async bootstrap(seeds: Array<SeedNode | string>, options: AbortOptions = {}): Promise<BootstrapResult> {
    this.#assertStarted()
    if (!Array.isArray(seeds) || seeds.length === 0) throw new InvalidParametersError(`seeds: expected a non-empty array, got ${Array.isArray(seeds) ? 'an empty array' : typeof seeds}`)
    const list = seeds.map(normalizeSeed)
    const signal = this.#signal(options)
    this.#counters.bootstraps++
    await this.#refreshRecord()
    const errors: Array<{ address: string; error: unknown }> = []
    let reached = 0
    let discovered = 0
    await Promise.all(
      list.map(async (seed) => {
        const timeout = clockTimeout(this.#clock, this.#seedTimeoutMs, `seed ${seed.address} to answer`)
        const s = quiet(AbortSignal.any([signal, timeout.signal]))
        try {
          if (seed.did === this.#router.did) throw new InvalidParametersError('seed: expected another node, got this node')
          const info = await this.#router.dial(seed.address, { signal: s, ...(seed.did === undefined ? {} : { remotePeer: seed.did }) })
          const r = await this.#peerTables.pullFrom(info, DiscoveryMethod.SEED, s)
          reached++
          discovered += r.added
        } catch (err) {
          const error = timeout.signal.aborted && !signal.aborted ? new TimeoutError(`expected seed ${seed.address} to answer within ${this.#seedTimeoutMs} ms`, { cause: err }) : err
          this.#log.info('seed failed', { seed: seed.address, err: errName(error) })
          errors.push({ address: seed.address, error })
        } finally {
          timeout.clear()
        }
      }),
    )
    throwIfAborted(options.signal)
    if (reached === 0) {
      throw new BootstrapFailedError(`expected at least one of ${list.length} seed(s) to answer, got none`, errors)
    }
    if (this.#autoDial) await this.dialBest({ signal })
    return {
      node_id: this.#router.did,
      peer_connections: this.#router.peers().length,
      trust_mesh_joined: true,
      bootstrap_timestamp: this.#clock.now(),
      status: BootstrapStatus.COMPLETED,
      seeds_reached: reached,
      discovered,
      errors,
    }
  }

  async discoverPeers(config: DiscoveryConfig = {}, options: AbortOptions = {}): Promise<DiscoveredPeer[]> {
    this.#assertStarted()
    const signal = this.#signal(options)
    if (config.seed_nodes !== undefined && config.seed_nodes.length > 0) {
      try {
        await this.bootstrap(config.seed_nodes, { signal })
      } catch (err) {
        // Seeds down but peers already known: answer from the registry.
        if (!(err instanceof BootstrapFailedError) || this.registry.size === 0) throw err
      }
    }
    const query = {
      ...(config.required_capabilities === undefined ? {} : { requiredCapabilities: config.required_capabilities }),
      ...(config.max_peers === undefined ? {} : { maxPeers: config.max_peers }),
      ...(config.gossip_hops === undefined ? {} : { hops: config.gossip_hops }),
    }
    for (const source of this.#sources) {
      const wanted = (source.method === DiscoveryMethod.DHT && config.use_dht === true) || (source.method === DiscoveryMethod.GOSSIP && config.use_gossip === true)
      if (!wanted) continue
      try {
        await this.registry.mergeFrom(source, query, { signal })
      } catch (err) {
        throwIfAborted(signal)
        this.#log.info('discovery source failed', { source: source.name, err: errName(err) })
      }
    }
    const filter = config.peer_filter
    const ranked = this.registry.discoveredPeers({
      ...(config.required_capabilities === undefined ? {} : { requiredCapabilities: config.required_capabilities }),
      ...(config.ranking_criteria === undefined ? {} : { weights: config.ranking_criteria }),
      ...(config.preferred_roles === undefined ? {} : { preferredRoles: config.preferred_roles }),
      ...(config.max_peers === undefined || filter !== undefined ? {} : { maxPeers: config.max_peers }),
    })
    if (filter === undefined) return ranked
    const peers = ranked.filter((p) => filter(p))
    return config.max_peers === undefined ? peers : peers.slice(0, Math.max(0, config.max_peers))
  }

  async announce(options: AbortOptions = {}): Promise<number> {
    this.#assertStarted()
    const signal = this.#signal(options)
    const record = await this.#refreshRecord()
    let sent = 0
    await Promise.all(
      this.#router.peers().map(async (p) => {
        if (p.authority === undefined) return
        try {
          await this.#router.send(
            { type: KLPMessageType.PEER_DISCOVERY, target: `klp://${p.authority}${DISCOVERY_PATH}`, sourcePath: DISCOVERY_PATH, priority: MessagePriority.LOW, data: discoveryPayloadValue({ action: 'announce', record: record.bytes }) },
            { signal },
          )
          sent++
        } catch (err) {
          this.#log.debug('announce not sent', { peer: p.did, err: errName(err) })
        }
      }),
    )
    return sent
  }

  async refresh(options: AbortOptions = {}): Promise<MergeResult> {
    this.#assertStarted()
    const signal = this.#signal(options)
    this.registry.prune()
    const total = await this.#peerTables.pullRound(this.#fanout, signal)
    if (this.#autoDial) await this.dialBest({ signal })
    return total
  }

  async dialBest(options: AbortOptions = {}): Promise<number> {
    this.#assertStarted()
    return this.#dialer.dialBest(this.#signal(options))
  }
}

/**
 * js-libp2p style factory: `peerDiscovery(init)(components)`. Nothing happens before `start()`,
 * which registers the PEER_DISCOVERY handler and signs the local record.
 */
export function peerDiscovery(init: PeerDiscoveryInit = {}): (components: PeerDiscoveryComponents) => PeerDiscovery {
  return (components) => new PeerDiscoveryService(init, components)
}
