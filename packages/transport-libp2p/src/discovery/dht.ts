/**
 * libp2p's kad-dht as a peer-discovery `DiscoverySource` (method `dht`, name `libp2p-kad-dht`).
 *
 * - A node's signed KLP record (peer-discovery's `createNodeRecord` bytes) is a kad-dht value under
 *   `/kos/<PeerId>`, a record namespace of our own. Its validator (registered on the host's kad-dht
 *   for `kos`) runs the peer-discovery record verifier (signature, expiry, bounds) and requires the
 *   signer's PeerId to be the one in the key; its selector keeps the newest record. Every DHT node
 *   that knows the namespace refuses forged records on PUT and drops them on GET.
 * - A capability is a kad-dht provider record on the CID of `capability:<name>` (kad-dht only takes
 *   a provider record from the provider itself, over its Noise-authenticated connection).
 * - `findPeers(query)` finds providers of the first required capability (or of `mesh:node`, which
 *   `publishRecord` provides), GETs their records, and yields the bytes of those that verify and
 *   claim every required capability. The registry verifies them again: a source needs no trust.
 *
 * Stock libp2p nodes (and go-libp2p/IPFS nodes) refuse PUTs and drop GET answers in a namespace they
 * have no validator for, so records live on nodes that know `kos`; provider records need no
 * validator and are stored and answered by any kad-dht server.
 */
import { InvalidParametersError, DiscoveryMethod } from '@kos-mesh/interface'
import type { AbortOptions, NodeCapabilities } from '@kos-mesh/interface'
import { decodeMessage } from '@kos-mesh/klp-codec'
import type { DiscoverySource, NodeRecord, PeerQuery, RecordPeek, RecordVerifier } from '@kos-mesh/peer-discovery'
import type { KadDHT, QueryEvent, SelectFn, ValidateFn } from '@libp2p/kad-dht'
import type { Libp2p, PeerId } from '@libp2p/interface'
import { DhtKeyMismatchError, MissingServiceError } from './errors.js'
import { KOS_DHT_NAMESPACE, KOS_NODE_PROVIDER_NAME, capabilityCid, nodeRecordKey, peerIdOfRecordKey, providerCid } from './keys.js'
import { peerIdFromDid } from '../peer-id.js'

/** Max bytes of a node record the default peek reads (peer-discovery's default record bound). */
const PEEK_MAX_RECORD_BYTES = 8 * 1024

/**
 * The default RecordPeek: the record's node id and timestamp, decoded without verifying (only used by
 * the DHT selector to pick the newest of records that the validator already verified). Kept here so
 * that the transport layer needs nothing of peer-discovery at run time (only its types).
 */
function defaultRecordPeek(): RecordPeek {
  return (bytes) => {
    try {
      if (!(bytes instanceof Uint8Array) || bytes.length > PEEK_MAX_RECORD_BYTES) return undefined
      const msg = decodeMessage(bytes)
      const data = msg.payload.data as Record<string, unknown> | null
      const node = data?.node as Record<string, unknown> | undefined
      const id = node?.node_id
      return typeof id === 'string' ? { peerId: id, timestamp: msg.timestamp } : undefined
    } catch {
      return undefined
    }
  }
}

/** True when every named boolean capability is set (as peer-discovery's `hasCapabilities`). */
function hasCapabilities(caps: NodeCapabilities, required: readonly string[]): boolean {
  for (const name of required) if ((caps as unknown as Record<string, unknown>)[name] !== true) return false
  return true
}

/** Defaults of `libp2pDhtSource`. */
export const DHT_SOURCE_DEFAULTS = Object.freeze({
  serviceName: 'dht',
  namespace: KOS_DHT_NAMESPACE,
  maxPeers: 20,
  maxProviders: 64,
  fetchConcurrency: 8,
  queryTimeoutMs: 10_000,
})

const CAPABILITY_RE = /^[a-z][a-z0-9_]{0,63}$/

/** Options of {@link kosDhtRecordOptions}: how node records are verified and compared. */
export interface KosDhtRecordOptionsInit {
  /** peer-discovery's `createRecordVerifier({ signatureVerifier })`. */
  recordVerifier: RecordVerifier
  /** Reads a record's timestamp for the selector. Default peer-discovery's `createRecordPeek()`. */
  recordPeek?: RecordPeek
  /** The record namespace (keys `/<namespace>/<PeerId>`). Default `kos`. */
  namespace?: string
}

/**
 * The kad-dht validator of node records: the KLP record verifies (peer-discovery's verifier: shape,
 * bounds, time, signature) and its signer is the PeerId named by the key `/kos/<PeerId>`.
 */
export function createNodeRecordValidator(recordVerifier: RecordVerifier, namespace = KOS_DHT_NAMESPACE): (key: Uint8Array, value: Uint8Array, options?: AbortOptions) => Promise<void> {
  return async (key, value, options) => {
    const keyPeer = peerIdOfRecordKey(key, namespace)
    const record = await recordVerifier(value, options?.signal === undefined ? {} : { signal: options.signal })
    const signerPeer = peerIdFromDid(record.peerId).toString()
    if (signerPeer !== keyPeer) throw new DhtKeyMismatchError(`expected a record signed by ${keyPeer}, got one signed by ${signerPeer}`)
  }
}

/** The kad-dht selector of node records: the newest (largest timestamp; the first on ties). */
export function createNodeRecordSelector(recordPeek: RecordPeek = defaultRecordPeek()): SelectFn {
  return (_key, records) => {
    let best = 0
    let bestTs = -Infinity
    records.forEach((r, i) => {
      const ts = recordPeek(r)?.timestamp ?? -Infinity
      if (ts > bestTs) { best = i; bestTs = ts }
    })
    return best
  }
}

/**
 * `{ validators, selectors }` to spread into `kadDHT({ ... })` when creating the host, so the
 * namespace is known from the first PUT it serves:
 * `kadDHT({ ...kosDhtRecordOptions({ recordVerifier }), clientMode: false })`.
 * (`libp2pDhtSource` also registers them on a host that lacks them.)
 */
export function kosDhtRecordOptions(init: KosDhtRecordOptionsInit): { validators: Record<string, ValidateFn>; selectors: Record<string, SelectFn> } {
  if (typeof init?.recordVerifier !== 'function') throw new InvalidParametersError('recordVerifier: expected a RecordVerifier, got none')
  const ns = init.namespace ?? KOS_DHT_NAMESPACE
  return {
    validators: { [ns]: createNodeRecordValidator(init.recordVerifier, ns) },
    selectors: { [ns]: createNodeRecordSelector(init.recordPeek) },
  }
}

/**
 * Options of {@link libp2pDhtSource}: the kad-dht service, the record namespace and the bounds of
 * each lookup (each a positive integer, InvalidParametersError otherwise; defaults in
 * {@link DHT_SOURCE_DEFAULTS}).
 */
export interface Libp2pDhtSourceInit {
  /** Name of the kad-dht service on the host. Default `dht`. */
  serviceName?: string
  /** Record namespace. Default `kos` (keys `/kos/<PeerId>`). */
  namespace?: string
  /** Records yielded per `findPeers` when the query sets no `maxPeers`. Default 20. */
  maxPeers?: number
  /** Providers taken from one provider lookup. Default 64. */
  maxProviders?: number
  /** Record GETs in flight per `findPeers`. Default 8. */
  fetchConcurrency?: number
  /** Bound of each DHT query (provider lookup, GET, PUT, provide). Default 10 s. */
  queryTimeoutMs?: number
}

/**
 * What {@link libp2pDhtSource} runs on: a host with a kad-dht service, and peer-discovery's record
 * verifier. Throws InvalidParametersError without them, MissingServiceError when the host has no
 * kad-dht service under `serviceName`.
 */
export interface Libp2pDhtSourceComponents {
  /** A started js-libp2p host with a kad-dht service (`services.dht`). */
  libp2p: Libp2p<any> // eslint-disable-line @typescript-eslint/no-explicit-any
  /** peer-discovery's `createRecordVerifier(...)`: the DHT validator, and `findPeers`' filter. */
  recordVerifier: RecordVerifier
  /** Default peer-discovery's `createRecordPeek()`. */
  recordPeek?: RecordPeek
}

/** What `Libp2pDhtSource.publishRecord` stored: the key, and how many DHT servers confirmed it. */
export interface PublishResult {
  /** The DHT key written (`/kos/<PeerId>`). */
  key: Uint8Array
  /** Remote DHT servers that confirmed storing it. */
  peers: number
}

/** The libp2p kad-dht discovery source. */
export interface Libp2pDhtSource extends DiscoverySource {
  readonly method: 'dht'
  readonly name: 'libp2p-kad-dht'
  /** The host's kad-dht service. */
  readonly dht: KadDHT
  /**
   * Verifies `signedRecordBytes` (a peer-discovery node record), PUTs it under `/kos/<signer PeerId>`
   * (locally and on the closest DHT servers) and provides `mesh:node`. Republish before the
   * record's TTL runs out (the caller's timer; records are not refreshed by kad-dht).
   */
  publishRecord(signedRecordBytes: Uint8Array, options?: AbortOptions & { provideNode?: boolean }): Promise<PublishResult>
  /** Provides `capability:<name>` (kad-dht reprovides it until `unprovide`). Resolves with the servers that took it. */
  provide(capability: string, options?: AbortOptions): Promise<number>
  /** Stops reproviding `capability:<name>` (the records already stored expire on their own). */
  unprovide(capability: string, options?: AbortOptions): Promise<void>
  /** GETs and verifies the record of a node (PeerId, PeerId string or did:key); undefined if none verifies. */
  getRecord(peer: PeerId | string, options?: AbortOptions): Promise<NodeRecord | undefined>
  /**
   * Finds providers of the query's first required capability (or of `mesh:node` without one), GETs
   * their records a few at a time (`fetchConcurrency`), and yields the signed record bytes of those
   * that verify and claim every required capability: at most `query.maxPeers` (default `maxPeers`,
   * 20), from at most `maxProviders` providers. Each DHT query is bounded by `queryTimeoutMs`; a
   * timed-out lookup yields what it found. Throws InvalidParametersError for a bad capability name.
   */
  findPeers(query: PeerQuery, options?: AbortOptions): AsyncIterable<Uint8Array>
}

function positiveInt(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || v <= 0) throw new InvalidParametersError(`${name}: expected a positive integer, got ${String(v)}`)
  return v
}

function checkCapability(c: unknown): string {
  if (typeof c !== 'string' || !CAPABILITY_RE.test(c)) throw new InvalidParametersError(`capability: expected a name like vector_storage, got ${JSON.stringify(String(c).slice(0, 40))}`)
  return c
}

function isKadDht(x: unknown): x is KadDHT {
  const d = x as Partial<KadDHT> | undefined
  return typeof d?.get === 'function' && typeof d.put === 'function' && typeof d.provide === 'function' && typeof d.findProviders === 'function' && typeof d.validators === 'object' && typeof d.selectors === 'object'
}

class DhtSource implements Libp2pDhtSource {
  readonly method = DiscoveryMethod.DHT as 'dht'
  readonly name = 'libp2p-kad-dht' as const
  readonly dht: KadDHT
  private readonly libp2p: Libp2p<any> // eslint-disable-line @typescript-eslint/no-explicit-any
  private readonly verify: RecordVerifier
  private readonly ns: string
  private readonly maxPeers: number
  private readonly maxProviders: number
  private readonly concurrency: number
  private readonly timeoutMs: number

  constructor(init: Libp2pDhtSourceInit, c: Libp2pDhtSourceComponents) {
    if (c?.libp2p === undefined) throw new InvalidParametersError('libp2p: expected a js-libp2p host, got none')
    if (typeof c.recordVerifier !== 'function') throw new InvalidParametersError('recordVerifier: expected a RecordVerifier, got none')
    const serviceName = init.serviceName ?? DHT_SOURCE_DEFAULTS.serviceName
    const dht = (c.libp2p.services as Record<string, unknown>)[serviceName]
    if (!isKadDht(dht)) throw new MissingServiceError(`expected a kad-dht service at libp2p.services.${serviceName}, got ${dht === undefined ? 'none' : typeof dht}`)
    this.dht = dht
    this.libp2p = c.libp2p
    this.verify = c.recordVerifier
    this.ns = init.namespace ?? DHT_SOURCE_DEFAULTS.namespace
    if (!/^[a-z][a-z0-9-]{0,31}$/.test(this.ns)) throw new InvalidParametersError(`namespace: expected a lowercase name, got ${JSON.stringify(this.ns.slice(0, 40))}`)
    this.maxPeers = positiveInt('maxPeers', init.maxPeers, DHT_SOURCE_DEFAULTS.maxPeers)
    this.maxProviders = positiveInt('maxProviders', init.maxProviders, DHT_SOURCE_DEFAULTS.maxProviders)
    this.concurrency = positiveInt('fetchConcurrency', init.fetchConcurrency, DHT_SOURCE_DEFAULTS.fetchConcurrency)
    this.timeoutMs = positiveInt('queryTimeoutMs', init.queryTimeoutMs, DHT_SOURCE_DEFAULTS.queryTimeoutMs)
    // the validator/selector objects are shared by reference with kad-dht's PUT handler, GET path
    // and local store: registering here covers a host created without kosDhtRecordOptions
    const opts = kosDhtRecordOptions({ recordVerifier: c.recordVerifier, namespace: this.ns, ...(c.recordPeek === undefined ? {} : { recordPeek: c.recordPeek }) })
    if (this.dht.validators[this.ns] === undefined) (this.dht.validators as Record<string, ValidateFn>)[this.ns] = opts.validators[this.ns]!
    if (this.dht.selectors[this.ns] === undefined) (this.dht.selectors as Record<string, SelectFn>)[this.ns] = opts.selectors[this.ns]!
  }

  private signal(options?: AbortOptions): AbortSignal {
    const t = AbortSignal.timeout(this.timeoutMs) // clock-exempt: bounds a libp2p kad-dht query, which runs on libp2p's own wall-clock timers
    return options?.signal === undefined ? t : AbortSignal.any([options.signal, t])
  }

  async publishRecord(bytes: Uint8Array, options: AbortOptions & { provideNode?: boolean } = {}): Promise<PublishResult> {
    const record = await this.verify(bytes, options)
    const key = nodeRecordKey(peerIdFromDid(record.peerId), this.ns)
    let peers = 0
    for await (const ev of this.dht.put(key, bytes, { signal: this.signal(options) })) {
      if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'PUT_VALUE') peers++
    }
    if (options.provideNode !== false) await this.provideName(KOS_NODE_PROVIDER_NAME, options)
    return { key, peers }
  }

  private async provideName(name: string, options?: AbortOptions): Promise<number> {
    let peers = 0
    for await (const ev of this.dht.provide(providerCid(name), { signal: this.signal(options) })) {
      if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'ADD_PROVIDER') peers++
    }
    return peers
  }

  async provide(capability: string, options?: AbortOptions): Promise<number> {
    return this.provideName(`capability:${checkCapability(capability)}`, options)
  }

  async unprovide(capability: string, options?: AbortOptions): Promise<void> {
    await this.dht.cancelReprovide(capabilityCid(checkCapability(capability)), options)
  }

  /** The raw best value under a node's key (validated by kad-dht on the way in), or undefined. */
  private async getRaw(peerId: PeerId | string, options?: AbortOptions): Promise<Uint8Array | undefined> {
    const key = nodeRecordKey(peerId, this.ns)
    let value: Uint8Array | undefined
    try {
      for await (const ev of this.dht.get(key, { signal: this.signal(options) }) as AsyncIterable<QueryEvent>) {
        if (ev.name === 'VALUE') value = ev.value // the last VALUE event is the selector's best
      }
    } catch {
      options?.signal?.throwIfAborted()
      if (value === undefined) return undefined // NotFound, query timeout: no record
    }
    return value
  }

  async getRecord(peer: PeerId | string, options?: AbortOptions): Promise<NodeRecord | undefined> {
    const id = typeof peer === 'string' && peer.startsWith('did:') ? peerIdFromDid(peer) : peer
    const bytes = await this.getRaw(id, options)
    if (bytes === undefined) return undefined
    try {
      const rec = await this.verify(bytes, options)
      return peerIdFromDid(rec.peerId).toString() === id.toString() ? rec : undefined
    } catch {
      options?.signal?.throwIfAborted()
      return undefined
    }
  }

  async *findPeers(query: PeerQuery = {}, options: AbortOptions = {}): AsyncIterable<Uint8Array> {
    const required = (query.requiredCapabilities ?? []).map(checkCapability)
    const max = query.maxPeers === undefined ? this.maxPeers : Math.max(0, Math.floor(query.maxPeers))
    if (max === 0) return
    const cid = required.length > 0 ? capabilityCid(required[0]!) : providerCid(KOS_NODE_PROVIDER_NAME)
    // 1. providers of the first required capability (kad-dht answers from its own store too)
    const self = this.libp2p.peerId.toString()
    const providers = new Map<string, PeerId>()
    const limit = Math.min(this.maxProviders, Math.max(max * 2, max + 4))
    try {
      for await (const ev of this.dht.findProviders(cid, { signal: this.signal(options) })) {
        if (ev.name !== 'PROVIDER') continue
        for (const p of ev.providers) {
          const k = p.id.toString()
          if (k !== self && !providers.has(k)) providers.set(k, p.id)
        }
        if (providers.size >= limit) break
      }
    } catch {
      options.signal?.throwIfAborted() // a timed-out lookup keeps what it found
    }
    // 2. their records, a few GETs at a time; yield those that verify and claim every capability
    const queue = [...providers.values()]
    let yielded = 0
    while (queue.length > 0 && yielded < max) {
      const batch = queue.splice(0, this.concurrency)
      const got = await Promise.all(batch.map((id) => this.getRecord(id, options).catch(() => undefined)))
      for (const rec of got) {
        if (rec === undefined || !hasCapabilities(rec.node.capabilities, required)) continue
        yield rec.bytes
        if (++yielded >= max) return
      }
    }
  }
}

/**
 * `libp2pDhtSource(init)(components)`: a DiscoverySource over the host's kad-dht (module shape of
 * the other kos-mesh components). Pass it in peer-discovery's `sources`.
 */
export function libp2pDhtSource(init: Libp2pDhtSourceInit = {}): (components: Libp2pDhtSourceComponents) => Libp2pDhtSource {
  return (components) => new DhtSource(init, components)
}
