/**
 * The peer discovery service: registers the PEER_DISCOVERY handler on a router, publishes this
 * node's signed record, bootstraps from seeds, exchanges peer tables, keeps the registry fresh
 * and dials the best discovered peers. The decisions live in the sans-I/O PeerRegistry.
 *
 * It is written against the interface's `MessageRouter` (klp-router implements it) and takes its
 * time and timers only from the injected `Clock`, so a simulator can run it in virtual time.
 */
import {
  BootstrapStatus,
  DiscoveryMethod,
  KLPMessageType,
  MessagePriority,
  NATType,
  NodeType,
  ProcessingStatus,
  InvalidParametersError,
  TimeoutError,
  silentLogger,
  systemClock,
  throwIfAborted,
} from '@kos-mesh/interface'
import type {
  AbortOptions,
  Clock,
  DiscoveredPeer,
  FederatedNode,
  KLPMessage,
  Logger,
  MessageHandler,
  MessageRouter,
  NetworkAddress,
  NodeCapabilities,
  NodeTrustProfile,
  PeerInfo,
  ProcessingResult,
  SignatureVerifier,
  Signer,
  Startable,
  TimerHandle,
  TransportAddress,
  TrustEngine,
} from '@kos-mesh/interface'
import { setMaxListeners } from 'node:events'
import { splitPeerAddress, toTransportAddress } from './addresses.js'
import { localNodeOf } from './local-node.js'
import { BootstrapFailedError, DiscoveryNotStartedError, UnexpectedResponseError } from './errors.js'
import { DEFAULT_PROTOCOL_LIMITS, KNOWN_KEY_BYTES, discoveryPayloadValue, knownKeyOf, knownSet, parseDiscoveryPayload } from './protocol.js'
import type { ProtocolLimits } from './protocol.js'
import { createNodeRecord, createRecordPeek, createRecordVerifier, DEFAULT_CLOCK_SKEW_MS, DEFAULT_MAX_RECORD_TTL_SECONDS, DEFAULT_RECORD_TTL_SECONDS } from './record.js'
import { PeerRegistry } from './registry.js'
import type { MergeResult, PeerRegistryInit, RankingWeights, RegistryStats } from './registry.js'
import type { DiscoverySource, NodeRecord } from './types.js'
import { didOfKeyId, hasCapabilities } from './validate.js'

// ------------------------------------------------------------------ public types

/** A seed to bootstrap from. */
export interface SeedNode {
  /** Transport address of the seed (`memory://seed`, `tcp://10.0.0.1:4001`); may end in `/did:...`. */
  address: TransportAddress
  /** The seed's expected DID: the connection must authenticate as it. */
  did?: string
}

/** The spec's DiscoveryConfig (all fields optional here). */
export interface DiscoveryConfig {
  /** Ask registered DHT sources. Default false. */
  use_dht?: boolean
  /** Ask registered gossip sources. Default false. */
  use_gossip?: boolean
  /** Seeds to bootstrap from first (strings are `address[/did:...]`). Default none. */
  seed_nodes?: Array<string | SeedNode>
  /** Boolean capability names every returned peer must have. */
  required_capabilities?: string[]
  /** Most peers returned. Default: all. */
  max_peers?: number
  /** How far a gossip peer-list request travels (hops), passed to the sources as `PeerQuery.hops`. */
  gossip_hops?: number
  /** Extra filter on the ranked result. */
  peer_filter?: (peer: DiscoveredPeer) => boolean
  /** Ranking weights for this call (`trust`, `latency`, `capabilities`, `role`). */
  ranking_criteria?: Partial<RankingWeights>
  /** Node roles (`NodeType`) that score for the `role` weight, e.g. `['ValidatorNode']`. */
  preferred_roles?: string[]
}

/** The spec's BootstrapResult, plus what discovery learned. */
export interface BootstrapResult {
  node_id: string
  /** Connected peers after bootstrap (seeds and auto-dialled peers). */
  peer_connections: number
  /** True when at least one seed answered with a valid peer table. */
  trust_mesh_joined: boolean
  /** ms since the epoch. */
  bootstrap_timestamp: number
  status: BootstrapStatus
  /** Seeds that answered. */
  seeds_reached: number
  /** Peers added to the registry during bootstrap. */
  discovered: number
  /** Seeds that failed, with the error of each. */
  errors: Array<{ address: string; error: unknown }>
}

/** What this node publishes in its signed record. */
export interface LocalNodeInit {
  node_type?: NodeType
  capabilities?: Partial<NodeCapabilities>
  trust_profile?: Partial<NodeTrustProfile>
  /**
   * Addresses published in the record. Default: the router's listen addresses at `start()` /
   * `bootstrap()` / `announce()` (set this when listening on 0.0.0.0 or behind NAT).
   */
  addresses?: NetworkAddress[]
  protocols_supported?: string[]
  nat_type?: NATType
}

/** Options of `peerDiscovery()`. */
export interface PeerDiscoveryInit {
  /** What this node publishes about itself (its record). */
  node?: LocalNodeInit
  /** Connected peers to aim for; discovery dials the best-ranked known peers up to it. Default 8. */
  targetPeers?: number
  /** Dial discovered peers automatically (after bootstrap and on refresh). Default true. */
  autoDial?: boolean
  /** Dials in flight at once. Default 4. */
  dialConcurrency?: number
  /** A peer whose dial failed is not dialled again for this long, ms. Default 30,000. */
  dialBackoffMs?: number
  /** Period of the refresh loop (prune, pull peer tables, auto-dial), ms; 0 disables. Default 60,000. */
  refreshIntervalMs?: number
  /** Period of re-signing and re-announcing the local record, ms; 0 disables. Default 600,000. */
  announceIntervalMs?: number
  /** Connected peers asked for their table on each refresh. Default 2. */
  refreshFanout?: number
  /** TTL of the local record, seconds. Default 3,600. */
  recordTtlSeconds?: number
  /** Clock skew accepted on records, ms. Default 30,000. */
  clockSkewMs?: number
  /** Time for one seed (dial + peer table), ms. Default 10,000. */
  seedTimeoutMs?: number
  /** Time for one discovery request, ms. Default 5,000. */
  requestTimeoutMs?: number
  /** Message bounds. Default `DEFAULT_PROTOCOL_LIMITS` (64 records per message, 8 KiB per record). */
  limits?: Partial<ProtocolLimits>
  /** Registry options (maxPeers, weights, liveness, per-source budgets). */
  registry?: Omit<PeerRegistryInit, 'verifyRecord' | 'peekRecord' | 'localPeerId' | 'clock'>
  /** Extra record sources (DHT, gossip) that `discoverPeers` merges from. */
  sources?: DiscoverySource[]
  /** Maps a record's NetworkAddress to a dialable transport address. Default `protocol://address[:port]`. */
  toTransportAddress?: (address: NetworkAddress) => TransportAddress | undefined
}

/**
 * What the discovery service needs: the router, a signer (or identity) and a signature verifier, and
 * optionally a trust engine (for ranking), clock and logger.
 */
export interface PeerDiscoveryComponents {
  /**
   * The router discovery runs on (the interface's `MessageRouter`; a klp-router Router is one).
   * Start it before the discovery service (its listen addresses go into the record).
   */
  router: MessageRouter
  /** Signs this node's record; its key id's DID must be the router's DID. Or give `identity`. */
  signer?: Signer
  /** Anything with a `signer` (a did-security Identity fits); used when `signer` is absent. */
  identity?: { signer: Signer }
  signatureVerifier: SignatureVerifier
  /**
   * The node's trust engine (any TrustEngine with `peerScore`, e.g. @kos-mesh/trust's): discovered
   * peers are ranked by its scores. Without it, by `registry.setTrust` and self-asserted trust (capped).
   */
  trustEngine?: Pick<TrustEngine, 'peerScore'>
  /**
   * Time and every timer (refresh and announce loops, seed and dial timeouts, dial backoff, RTTs,
   * record timestamps and expiry). Default `systemClock` (@kos-mesh/interface).
   */
  clock?: Clock
  logger?: Logger
}

/** Counters of the discovery service. */
export interface PeerDiscoveryStats {
  registry: RegistryStats
  bootstraps: number
  requestsServed: number
  requestsFailed: number
  invalidMessages: number
  dials: number
  dialFailures: number
}

/**
 * The discovery service: this node's signed record, the registry, seed bootstrap, peer tables, the spec's
 * `discoverPeers` over the registered sources.
 */
export interface PeerDiscovery extends Startable {
  readonly registry: PeerRegistry
  /** Whether the service is started. */
  isStarted(): boolean
  /** Connects to the seeds, pulls their peer tables, announces this node, then dials the best peers. */
  bootstrap(seeds: Array<SeedNode | string>, options?: AbortOptions): Promise<BootstrapResult>
  /** Seeds (when given) and registered sources, then the ranked, filtered, de-duplicated peers. */
  discoverPeers(config?: DiscoveryConfig, options?: AbortOptions): Promise<DiscoveredPeer[]>
  /** Known peers, best first. */
  getPeers(query?: { requiredCapabilities?: string[]; maxPeers?: number }): DiscoveredPeer[]
  /** This node's current signed record (undefined before `start()`). */
  localRecord(): NodeRecord | undefined
  /** Re-signs the local record and pushes it to every connected peer; returns how many got it. */
  announce(options?: AbortOptions): Promise<number>
  /** One refresh round: prune, pull peer tables from connected peers, auto-dial. */
  refresh(options?: AbortOptions): Promise<MergeResult>
  /** Dials the best known, unconnected peers up to `targetPeers`; returns how many were connected. */
  dialBest(options?: AbortOptions): Promise<number>
  /** The registry's and the service's counters. */
  stats(): PeerDiscoveryStats
}

// ------------------------------------------------------------------ implementation

const DISCOVERY_PATH = '/peer-discovery'

function nonNegInt(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || v < 0) throw new InvalidParametersError(`${name}: expected an integer >= 0, got ${String(v)}`)
  return v
}

/** Many concurrent dials and requests listen on one signal: that is expected, not a leak. */
function quiet(signal: AbortSignal): AbortSignal {
  setMaxListeners(Infinity, signal)
  return signal
}

/**
 * A signal aborted with a TimeoutError after `ms` of `clock` time (AbortSignal.timeout on the
 * injected clock). Call `clear()` once done so no timer outlives the operation.
 */
function clockTimeout(clock: Clock, ms: number, what: string): { signal: AbortSignal; clear(): void } {
  const ac = new AbortController()
  const handle = clock.setTimeout(() => { ac.abort(new TimeoutError(`expected ${what} within ${ms} ms`)) }, ms, { unref: true })
  return { signal: ac.signal, clear: () => { clock.clearTimeout(handle) } }
}

function errName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err
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
  readonly #targetPeers: number
  readonly #autoDial: boolean
  readonly #dialConcurrency: number
  readonly #dialBackoffMs: number
  readonly #refreshMs: number
  readonly #announceMs: number
  readonly #fanout: number
  readonly #ttl: number
  readonly #seedTimeoutMs: number
  readonly #requestTimeoutMs: number
  readonly #sources: DiscoverySource[]
  readonly #toTransport: (a: NetworkAddress) => TransportAddress | undefined
  readonly #dialFailures = new Map<string, number>()
  readonly #dialing = new Set<string>()
  /** When each peer was last asked for its table (rotation of refresh rounds); bounded by maxPeers. */
  readonly #lastAsked = new Map<string, number>()
  #askSeq = 0
  #record: NodeRecord | undefined
  #started = false
  #stop = new AbortController()
  #refreshTimer: TimerHandle | undefined
  #announceTimer: TimerHandle | undefined
  #counters = { bootstraps: 0, requestsServed: 0, requestsFailed: 0, invalidMessages: 0, dials: 0, dialFailures: 0 }
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
    this.#targetPeers = nonNegInt('targetPeers', init.targetPeers, 8)
    this.#autoDial = init.autoDial ?? true
    this.#dialConcurrency = Math.max(1, nonNegInt('dialConcurrency', init.dialConcurrency, 4))
    this.#dialBackoffMs = nonNegInt('dialBackoffMs', init.dialBackoffMs, 30_000)
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
    this.#requestTimeoutMs = Math.max(1, nonNegInt('requestTimeoutMs', init.requestTimeoutMs, 5_000))
    this.#sources = [...(init.sources ?? [])]
    this.#toTransport = init.toTransportAddress ?? toTransportAddress
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

  // ---------------------------------------------------------------- inbound

  readonly #handle: MessageHandler = async (msg: KLPMessage, ctx): Promise<ProcessingResult> => {
    let payload
    try {
      payload = parseDiscoveryPayload(msg.payload.data, this.#limits)
    } catch (err) {
      this.#counters.invalidMessages++
      this.#log.debug('invalid discovery message', { from: ctx.fromPeer, err: errName(err) })
      return { status: ProcessingStatus.REJECTED, reason: 'invalid_discovery_message' }
    }
    this.registry.touch(ctx.signerDid)
    // A signal of our own per message: the router's signal is shared by every handler in flight.
    const signal = ctx.signal === undefined ? undefined : AbortSignal.any([ctx.signal])
    switch (payload.action) {
      case 'announce': {
        await this.registry.merge([payload.record], { source: ctx.fromPeer, method: DiscoveryMethod.DIRECT, ...(signal ? { signal } : {}) })
        return { status: ProcessingStatus.PROCESSED }
      }
      case 'get_peers': {
        if (payload.record !== undefined) {
          await this.registry.merge([payload.record], { source: ctx.fromPeer, method: DiscoveryMethod.DIRECT, ...(signal ? { signal } : {}) })
        }
        const max = Math.min(payload.max ?? this.#limits.maxRecordsPerMessage, this.#limits.maxRecordsPerMessage)
        const records: Uint8Array[] = []
        let bytes = 0
        const add = (b: Uint8Array): boolean => {
          if (records.length >= max || bytes + b.length > this.#limits.maxResponseBytes) return false
          records.push(b)
          bytes += b.length
          return true
        }
        const required = payload.capabilities ?? []
        const known = payload.known === undefined ? undefined : knownSet(payload.known)
        const wanted = (b: Uint8Array): boolean => known?.has(knownKeyOf(b)) !== true
        const own = this.#record
        if (own !== undefined && hasCapabilities(own.node.capabilities, required) && wanted(own.bytes)) add(own.bytes)
        const exclude = new Set([ctx.signerDid, ctx.fromPeer])
        for (const b of this.registry.recordBytes({ requiredCapabilities: required, exclude })) {
          if (wanted(b) && !add(b)) break
        }
        this.#counters.requestsServed++
        const response = await this.#router.createResponse(msg, discoveryPayloadValue({ action: 'peers', records }))
        return { status: ProcessingStatus.PROCESSED, response }
      }
      case 'peers':
        // A late response (its request timed out): the records are still worth merging.
        await this.registry.merge(payload.records, { source: ctx.fromPeer, method: DiscoveryMethod.DIRECT, ...(signal ? { signal } : {}) })
        return { status: ProcessingStatus.PROCESSED }
    }
  }

  // ---------------------------------------------------------------- outbound

  /** Asks `authority` for its peer table (announcing our record), merges it, measures the RTT. */
  async #pullFrom(peer: PeerInfo, method: DiscoveryMethod, signal: AbortSignal, query: { capabilities?: string[]; max?: number } = {}): Promise<MergeResult> {
    if (peer.authority === undefined) throw new UnexpectedResponseError(`expected the authority of ${peer.did.slice(0, 80)} to be known, got none`)
    const record = this.#record?.bytes
    this.#lastAsked.delete(peer.did)
    if (this.#lastAsked.size >= this.registry.maxPeers) {
      const first = this.#lastAsked.keys().next()
      if (first.done !== true) this.#lastAsked.delete(first.value)
    }
    this.#lastAsked.set(peer.did, ++this.#askSeq)
    const t0 = this.#clock.now()
    const response = await this.#router.request(
      {
        type: KLPMessageType.PEER_DISCOVERY,
        target: `klp://${peer.authority}${DISCOVERY_PATH}`,
        sourcePath: DISCOVERY_PATH,
        priority: MessagePriority.LOW,
        data: discoveryPayloadValue({
          action: 'get_peers',
          ...(record ? { record } : {}),
          max: query.max ?? this.#limits.maxRecordsPerMessage,
          ...(query.capabilities ? { capabilities: query.capabilities } : {}),
          ...(this.registry.size > 0 ? { known: this.registry.knownKeys(this.#limits.maxKnown, KNOWN_KEY_BYTES) } : {}),
        }),
      },
      { signal, timeoutMs: this.#requestTimeoutMs },
    )
    const rtt = this.#clock.now() - t0
    if (response.type !== KLPMessageType.PEER_DISCOVERY || didOfKeyId(response.signer) !== peer.did) {
      throw new UnexpectedResponseError(`expected a PEER_DISCOVERY response from ${peer.did.slice(0, 80)}, got ${response.type} from ${response.signer.slice(0, 80)}`)
    }
    let payload
    try {
      payload = parseDiscoveryPayload(response.payload.data, this.#limits)
    } catch (err) {
      this.#counters.invalidMessages++
      throw new UnexpectedResponseError(`expected a valid peers response, got an invalid one (${errName(err)})`, { cause: err })
    }
    if (payload.action !== 'peers') throw new UnexpectedResponseError(`expected action peers, got ${payload.action}`)
    const result = await this.registry.merge(payload.records, { source: peer.did, method, signal })
    this.registry.touch(peer.did)
    this.registry.setLatency(peer.did, rtt)
    return result
  }

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
          const r = await this.#pullFrom(info, DiscoveryMethod.SEED, s)
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
    const total: MergeResult = { added: 0, updated: 0, unchanged: 0, rejected: 0, reasons: {} }
    const connected = this.#router.peers().filter((p) => p.authority !== undefined)
    // Rotate through connected peers: the ones asked longest ago (or never) first.
    connected.sort((a, b) => (this.#lastAsked.get(a.did) ?? -1) - (this.#lastAsked.get(b.did) ?? -1) || (a.did < b.did ? -1 : a.did > b.did ? 1 : 0))
    await Promise.all(
      connected.slice(0, this.#fanout).map(async (p) => {
        try {
          const r = await this.#pullFrom(p, DiscoveryMethod.DIRECT, signal)
          total.added += r.added
          total.updated += r.updated
          total.unchanged += r.unchanged
          total.rejected += r.rejected
          for (const [k, v] of Object.entries(r.reasons)) total.reasons[k as keyof MergeResult['reasons']] = (total.reasons[k as keyof MergeResult['reasons']] ?? 0) + v
        } catch (err) {
          throwIfAborted(signal)
          this.#counters.requestsFailed++
          this.#log.debug('peer table request failed', { peer: p.did, err: errName(err) })
        }
      }),
    )
    if (this.#autoDial) await this.dialBest({ signal })
    return total
  }

  async dialBest(options: AbortOptions = {}): Promise<number> {
    this.#assertStarted()
    const signal = this.#signal(options)
    const connected = new Set(this.#router.peers().map((p) => p.did))
    const want = this.#targetPeers - connected.size
    if (want <= 0) return 0
    const now = this.#clock.now()
    for (const [peer, until] of this.#dialFailures) if (until <= now) this.#dialFailures.delete(peer)
    const exclude = new Set([...connected, ...this.#dialing, ...this.#dialFailures.keys()])
    const candidates = this.registry.rank({ exclude }).slice(0, want)
    let made = 0
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < candidates.length) {
        const c = candidates[next++]!
        throwIfAborted(signal)
        if (await this.#dialPeer(c.entry.peerId, c.entry.record.node.network_info.addresses, signal)) made++
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.#dialConcurrency, candidates.length) }, worker))
    return made
  }

  async #dialPeer(did: string, addresses: NetworkAddress[], signal: AbortSignal): Promise<boolean> {
    this.#dialing.add(did)
    try {
      for (const a of addresses) {
        const addr = this.#toTransport(a)
        if (addr === undefined) continue
        this.#counters.dials++
        const timeout = clockTimeout(this.#clock, this.#seedTimeoutMs, `a dial to ${addr.slice(0, 200)} to finish`)
        try {
          const info = await this.#router.dial(addr, { signal: quiet(AbortSignal.any([signal, timeout.signal])), remotePeer: did })
          this.registry.touch(did)
          // Tell the new neighbour about us (it may not know this node yet).
          if (info.authority !== undefined && this.#record !== undefined) {
            void this.#router
              .send({ type: KLPMessageType.PEER_DISCOVERY, target: `klp://${info.authority}${DISCOVERY_PATH}`, sourcePath: DISCOVERY_PATH, priority: MessagePriority.LOW, data: discoveryPayloadValue({ action: 'announce', record: this.#record.bytes }) }, { signal })
              .catch(() => {})
          }
          return true
        } catch (err) {
          throwIfAborted(signal)
          this.#counters.dialFailures++
          this.#log.debug('dial failed', { peer: did, addr, err: errName(err) })
        } finally {
          timeout.clear()
        }
      }
      if (this.#dialFailures.size >= this.registry.maxPeers) {
        const first = this.#dialFailures.keys().next()
        if (first.done !== true) this.#dialFailures.delete(first.value)
      }
      this.#dialFailures.set(did, this.#clock.now() + this.#dialBackoffMs)
      return false
    } finally {
      this.#dialing.delete(did)
    }
  }
}

/**
 * js-libp2p style factory: `peerDiscovery(init)(components)`. Nothing happens before `start()`,
 * which registers the PEER_DISCOVERY handler and signs the local record.
 */
export function peerDiscovery(init: PeerDiscoveryInit = {}): (components: PeerDiscoveryComponents) => PeerDiscovery {
  return (components) => new PeerDiscoveryService(init, components)
}
