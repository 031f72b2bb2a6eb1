/**
 * The DHT service: Kademlia (the sans-I/O KadNode of ../kad) over KLP PEER_DISCOVERY messages on
 * the `/dht` path of a MessageRouter. It signs this node's record, answers requests through the
 * core, maps the core's RPCs onto router requests (rpc.ts), verifies every record it hears
 * (contacts.ts), provides signed provider records and republishes them, refreshes buckets, keeps
 * the table's contacts in an optional KeyValueStore (store.ts), and is a `DiscoverySource`
 * (method `dht`) for the peer registry. Time and timers come only from the injected Clock.
 */
import { DiscoveryMethod, KLPMessageType, InvalidParametersError, mulberry32, silentLogger, systemClock, throwIfAborted } from '@kos-mesh/interface'
import type { AbortOptions, Clock, KeyValueStore, Logger, MessageHandler, MessageRouter, NetworkAddress, SignatureVerifier, Signer, Startable, TransportAddress } from '@kos-mesh/interface'
import { setMaxListeners } from 'node:events'
import { toTransportAddress } from '../addresses.js'
import { KadNode, kadIdOf } from '../kad/index.js'
import type { Contact, KadInit, KadNodeInit } from '../kad/index.js'
import { createRecordVerifier, DEFAULT_CLOCK_SKEW_MS, DEFAULT_MAX_RECORD_TTL_SECONDS, DEFAULT_RECORD_TTL_SECONDS } from '../record.js'
import type { LocalNodeInit, SeedNode } from '../service-api.js'
import type { DiscoverySource, NodeRecord, PeerQuery, RecordVerifier } from '../types.js'
import { didOfKeyId } from '../validate.js'
import { RecordBook } from './contacts.js'
import { DhtNotStartedError } from './errors.js'
import { createProviderVerifier, DEFAULT_MAX_PROVIDER_TTL_SECONDS, DEFAULT_PROVIDER_TTL_SECONDS } from './provider.js'
import type { ProviderVerifier } from './provider.js'
import { createKadRpc, errName } from './rpc.js'
import { createDhtHandler } from './serve.js'
import { ContactStore, DEFAULT_CONTACT_PREFIX } from './store.js'
import { DhtOps, localNode } from './ops.js'
import type { DhtBootstrapResult, DhtProvider, DhtStats } from './ops.js'
import { DEFAULT_DHT_WIRE_LIMITS, DHT_PATH } from './wire.js'
import type { DhtWireLimits } from './wire.js'

/** Options of `dhtService()`. */
export interface DhtInit {
  /** Kademlia options (k, alpha, disjoint paths, bucket refresh, diversity, provider store bounds). Defaults: the core's. */
  kad?: Omit<KadInit, 'providerTtlMs' | 'requestTimeoutMs'> & Pick<KadNodeInit, 'staleAfterMs' | 'maxPendingChecks' | 'random'>
  /** What this node's record says (node type, capabilities, addresses). Default: a PeerNode at the router's addresses. */
  node?: LocalNodeInit
  /** Lifetime of this node's record, s. Default 3,600. It is re-signed every half lifetime. */
  recordTtlSeconds?: number
  /** Lifetime of this node's provider records, s. Default 86,400. */
  providerTtlSeconds?: number
  /** Re-sign and re-provide every provided name this often, ms; 0 disables. Default: half the provider lifetime (12 h). */
  republishIntervalMs?: number
  /** Maintenance period (expired providers dropped, stale buckets refreshed, table persisted), ms; 0 disables. Default 600,000. */
  refreshIntervalMs?: number
  /** One Kademlia request (dial included), ms. Default 4,000. */
  requestTimeoutMs?: number
  /** Dial a contact's transport address when it is not connected (else rely on the router's routes). Default true. */
  dialContacts?: boolean
  /** Names provided after every bootstrap, besides the record's true boolean capabilities (`capability:<flag>`). Default none. */
  provide?: string[]
  /** Provide `capability:<flag>` for each true boolean capability of this node's record after bootstrap. Default true. */
  provideCapabilities?: boolean
  /** Names this node provides (and republishes) at most. Default 64. */
  maxProvidedNames?: number
  /** Newest verified record kept per DID, for this many DIDs. Default 1,024. */
  maxKnownRecords?: number
  /** Verified records remembered so the same bytes are not verified twice. Default 4,096. */
  maxVerifiedCache?: number
  /** Contacts persisted in the store at most. Default 256. */
  maxStoredContacts?: number
  /** Key prefix of persisted contacts. Default `dht/contact/`. */
  storePrefix?: string
  /** Clock skew accepted on records, ms. Default 30,000. */
  clockSkewMs?: number
  /** Wire bounds. Default `DEFAULT_DHT_WIRE_LIMITS`. */
  limits?: Partial<DhtWireLimits>
  /** Maps a record's NetworkAddress to a dialable transport address. Default `protocol://address[:port]`. */
  toTransportAddress?: (address: NetworkAddress) => TransportAddress | undefined
}

/**
 * What the DHT service needs: the router, a signer (or identity) and a signature verifier, and optionally
 * record verifiers, a clock, a logger and a store.
 */
export interface DhtComponents {
  router: MessageRouter
  /** Signs this node's record and provider records; its key's DID must be the router's DID. Or give `identity`. */
  signer?: Signer
  identity?: { signer: Signer }
  /** Verifies record signatures (node and provider records). */
  signatureVerifier: SignatureVerifier
  /** Node record verifier. Default `createRecordVerifier({ signatureVerifier, clock })`. */
  recordVerifier?: RecordVerifier
  /** Provider record verifier. Default `createProviderVerifier({ signatureVerifier, clock })`. */
  providerVerifier?: ProviderVerifier
  /** Time and every timer. Default `systemClock`. */
  clock?: Clock
  logger?: Logger
  /** Where the routing table's contacts are kept across restarts. Default: not kept. */
  store?: KeyValueStore
}

export interface DhtService extends Startable, DiscoverySource {
  readonly method: typeof DiscoveryMethod.DHT
  readonly name: string
  /** The Kademlia core (routing table, provider store); read it, do not drive it. */
  readonly kad: KadNode
  /** Whether the service is started. */
  isStarted(): boolean
  /** Pings the seeds (dialling them), or the connected peers when none are given, then joins: lookup of the own id and a refresh of every bucket. */
  bootstrap(seeds?: Array<SeedNode | string>, options?: AbortOptions): Promise<DhtBootstrapResult>
  /** Looks up sha256(did) and returns the node's verified record. Throws NodeNotFoundError. */
  findNode(did: string, options?: AbortOptions): Promise<NodeRecord>
  /** Providers of `name` (e.g. `capability:vector_storage`, `agent:<kind>`), each verified. */
  findProviders(name: string, options?: AbortOptions & { count?: number }): Promise<DhtProvider[]>
  /** Signs a provider record for `name`, stores it at the k closest nodes, republishes it. Returns how many accepted. */
  provide(name: string, options?: AbortOptions): Promise<number>
  /** Stops republishing `name` (stored copies expire with their record). */
  unprovide(name: string): boolean
  /** Names this node provides. */
  provided(): string[]
  /** DiscoverySource: node records of providers of every required capability, else of the closest contacts. */
  findPeers(query: PeerQuery, options?: AbortOptions): AsyncIterable<Uint8Array>
  /** This node's current signed record (undefined before `start()`). */
  localRecord(): NodeRecord | undefined
  /** The routing table's contacts. */
  contacts(): Contact[]
  /** One maintenance round: drop expired providers, refresh stale buckets, persist the table. */
  refresh(options?: AbortOptions): Promise<void>
  /** The service's counters and the core's sizes now. */
  stats(): DhtStats
}

function int(name: string, v: number | undefined, dflt: number, min = 0): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || v < min) throw new InvalidParametersError(`${name}: expected an integer >= ${min}, got ${String(v)}`)
  return v
}

function seedOf(did: string): number {
  const id = kadIdOf(did)
  return ((id[0]! << 24) | (id[1]! << 16) | (id[2]! << 8) | id[3]!) >>> 0
}

class Dht extends DhtOps implements DhtService {
  readonly method = DiscoveryMethod.DHT
  readonly name = 'dht'
  readonly #store: ContactStore | undefined
  readonly #refreshMs: number
  readonly #republishMs: number
  readonly #recordTtl: number
  readonly #handler: MessageHandler
  #started = false
  #timers: Array<() => void> = []

  constructor(init: DhtInit, c: DhtComponents) {
    if (c?.router === undefined) throw new InvalidParametersError('router: expected a router, got undefined')
    const signer = c.signer ?? c.identity?.signer
    if (signer === undefined) throw new InvalidParametersError('signer: expected a Signer (or an identity), got undefined')
    if (didOfKeyId(signer.keyId) !== c.router.did) throw new InvalidParametersError(`signer: expected a key of ${c.router.did.slice(0, 80)}, got ${signer.keyId.slice(0, 80)}`)
    if (typeof c.signatureVerifier?.verifySignature !== 'function' && (c.recordVerifier === undefined || c.providerVerifier === undefined)) {
      throw new InvalidParametersError('signatureVerifier: expected a SignatureVerifier (or both recordVerifier and providerVerifier), got none')
    }
    const clock = c.clock ?? systemClock
    const log = c.logger ?? silentLogger
    const skew = int('clockSkewMs', init.clockSkewMs, DEFAULT_CLOCK_SKEW_MS)
    const limits: DhtWireLimits = { ...DEFAULT_DHT_WIRE_LIMITS, ...init.limits }
    for (const [k, v] of Object.entries(limits)) int(`limits.${k}`, v, 0, 1)
    const recordTtl = int('recordTtlSeconds', init.recordTtlSeconds, DEFAULT_RECORD_TTL_SECONDS, 1)
    if (recordTtl > DEFAULT_MAX_RECORD_TTL_SECONDS) throw new InvalidParametersError(`recordTtlSeconds: expected at most ${DEFAULT_MAX_RECORD_TTL_SECONDS}, got ${recordTtl}`)
    const providerTtl = int('providerTtlSeconds', init.providerTtlSeconds, DEFAULT_PROVIDER_TTL_SECONDS, 1)
    if (providerTtl > DEFAULT_MAX_PROVIDER_TTL_SECONDS) throw new InvalidParametersError(`providerTtlSeconds: expected at most ${DEFAULT_MAX_PROVIDER_TTL_SECONDS}, got ${providerTtl}`)
    const requestTimeoutMs = int('requestTimeoutMs', init.requestTimeoutMs, 4_000, 1)
    const book = new RecordBook({
      verifyRecord: c.recordVerifier ?? createRecordVerifier({ signatureVerifier: c.signatureVerifier, clock, clockSkewMs: skew, maxRecordBytes: limits.maxRecordBytes }),
      verifyProvider: c.providerVerifier ?? createProviderVerifier({ signatureVerifier: c.signatureVerifier, clock, clockSkewMs: skew, maxRecordBytes: limits.maxProviderRecordBytes }),
      clock,
      toTransportAddress: init.toTransportAddress ?? toTransportAddress,
      maxRecords: int('maxKnownRecords', init.maxKnownRecords, 1_024, 1),
      maxCache: int('maxVerifiedCache', init.maxVerifiedCache, 4_096, 1),
    })
    const counters = { requestsSent: 0, requestsFailed: 0, dials: 0, dialFailures: 0, invalidAnswers: 0, requestsServed: 0, invalidRequests: 0, refused: 0 }
    let self!: Dht
    const rpc = createKadRpc({
      router: c.router, book, clock, log, limits, requestTimeoutMs, dialTimeoutMs: requestTimeoutMs, dialContacts: init.dialContacts ?? true, counters,
      localRecord: () => self.localRecord()?.bytes,
      onContact: (contact) => self.kad.learn(contact),
    })
    const kad = new KadNode({
      random: mulberry32(seedOf(c.router.did)),
      ...init.kad,
      self: { id: kadIdOf(c.router.did), did: c.router.did, addrs: [] },
      clock,
      rpc,
      requestTimeoutMs,
      providerTtlMs: providerTtl * 1000,
      maxProvidedKeys: int('maxProvidedNames', init.maxProvidedNames, 64, 1),
    })
    super({
      router: c.router, signer, clock, log, kad, book, limits, counters, providerTtl, recordTtl,
      maxProvided: int('maxProvidedNames', init.maxProvidedNames, 64, 1),
      requestTimeoutMs,
      provideNames: init.provide ?? [],
      provideCapabilities: init.provideCapabilities ?? true,
      localNode: () => localNode(c.router, init.node, clock),
    })
    self = this
    this.#recordTtl = recordTtl
    this.#refreshMs = int('refreshIntervalMs', init.refreshIntervalMs, 600_000)
    this.#republishMs = int('republishIntervalMs', init.republishIntervalMs, (providerTtl * 1000) / 2)
    if (this.#republishMs >= providerTtl * 1000) throw new InvalidParametersError(`republishIntervalMs: expected less than the provider lifetime (${providerTtl * 1000} ms), got ${this.#republishMs}`)
    this.#store = c.store === undefined ? undefined : new ContactStore({ store: c.store, book, log, prefix: init.storePrefix ?? DEFAULT_CONTACT_PREFIX, max: int('maxStoredContacts', init.maxStoredContacts, 256, 1) })
    this.#handler = createDhtHandler({ router: c.router, kad, book, log, limits, counters, localRecord: () => this.localRecord()?.bytes })
  }

  isStarted(): boolean {
    return this.#started
  }

  async start(): Promise<void> {
    if (this.#started) return
    this.stopper = new AbortController()
    setMaxListeners(Infinity, this.stopper.signal)
    this.router.handle(KLPMessageType.PEER_DISCOVERY, this.#handler, { path: DHT_PATH })
    this.#started = true
    try {
      await this.signRecord()
      if (this.#store !== undefined) {
        const r = await this.#store.load({ signal: this.stopper.signal })
        const now = this.clock.now()
        for (const rec of r.loaded) this.kad.table.add(this.book.contactOf(rec), now, false)
        this.counters.restored = r.loaded.length
        this.log.debug('dht contacts restored', { loaded: r.loaded.length, dropped: r.dropped })
      }
    } catch (err) {
      await this.stop()
      throw err
    }
    this.#schedule()
  }

  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    for (const cancel of this.#timers) cancel()
    this.#timers = []
    this.stopper.abort(new DhtNotStartedError('the DHT service stopped'))
    this.router.unhandle(KLPMessageType.PEER_DISCOVERY, { path: DHT_PATH })
    if (this.#store !== undefined) {
      await this.#store.save(this.kad.table.contacts()).catch((err: unknown) => this.log.info('dht contacts not saved', { err: errName(err) }))
    }
  }

  protected override assertStarted(): void {
    if (!this.#started) throw new DhtNotStartedError('expected the DHT service to be started, got stopped')
  }

  async refresh(options: AbortOptions = {}): Promise<void> {
    this.assertStarted()
    const signal = this.signalOf(options)
    this.kad.providers.prune(this.clock.now())
    if (this.kad.table.size > 0) await this.kad.refresh({ signal })
    throwIfAborted(signal)
    if (this.#store !== undefined) await this.#store.save(this.kad.table.contacts(), { signal })
  }

  /** A clock timer loop: `fn` every `ms` after the previous run settled; cancelled by stop(). */
  #every(ms: number, what: string, fn: () => Promise<unknown>): void {
    if (ms <= 0) return
    let handle: ReturnType<Clock['setTimeout']> | undefined
    let live = true
    const tick = (): void => {
      if (!live || !this.#started) return
      void fn().catch((err: unknown) => this.log.debug(`dht ${what} failed`, { err: errName(err) })).finally(() => {
        if (live && this.#started) handle = this.clock.setTimeout(tick, ms, { unref: true })
      })
    }
    handle = this.clock.setTimeout(tick, ms, { unref: true })
    this.#timers.push(() => { live = false; this.clock.clearTimeout(handle) })
  }

  #schedule(): void {
    this.#every(Math.floor((this.#recordTtl * 1000) / 2), 'record re-sign', () => this.signRecord())
    this.#every(this.#refreshMs, 'refresh', () => this.refresh())
    this.#every(this.#republishMs, 'republish', () => this.republish())
  }
}

/** js-libp2p style factory: `dhtService(init)(components)`. Nothing happens before `start()`. */
export function dhtService(init: DhtInit = {}): (components: DhtComponents) => DhtService {
  return (components) => new Dht(init, components)
}

export type { DhtBootstrapResult, DhtProvider, DhtStats }
