/**
 * The DHT service's operations over the Kademlia core: bootstrap, node and provider lookups,
 * providing (signed, republished), and the registry's DiscoverySource. service.ts adds the
 * lifecycle (handler, timers, persistence) around it.
 */
import { InvalidParametersError, throwIfAborted } from '@kos-mesh/interface'
import type { AbortOptions, Clock, FederatedNode, Logger, MessageRouter, Signer } from '@kos-mesh/interface'
import { setMaxListeners } from 'node:events'
import { splitPeerAddress } from '../addresses.js'
import { BootstrapFailedError } from '../errors.js'
import { kadIdOf, idEquals } from '../kad/index.js'
import type { Contact, KadNode } from '../kad/index.js'
import { createNodeRecord } from '../record.js'
import { localNodeOf } from '../local-node.js'
import type { LocalNodeInit, SeedNode } from '../service-api.js'
import type { NodeRecord, PeerQuery } from '../types.js'
import { CAPABILITY_FLAGS } from '../validate.js'
import type { RecordBook } from './contacts.js'
import { NodeNotFoundError } from './errors.js'
import { checkProviderName, createProviderRecord, providerKey } from './provider.js'
import type { SignedProviderRecord } from './provider.js'
import { clockTimeout, errName } from './rpc.js'
import { recordOf } from './serve.js'
import { DHT_PATH } from './wire.js'
import type { DhtWireLimits } from './wire.js'

/** What a DHT bootstrap did: seeds reached, contacts in the table afterwards, names provided, errors. */
export interface DhtBootstrapResult {
  /** Seeds (or connected peers) that answered a ping. */
  seedsReached: number
  /** Contacts in the routing table afterwards. */
  contacts: number
  /** Names provided after joining, with how many nodes accepted each. */
  provided: Record<string, number>
  errors: Array<{ address: string; error: unknown }>
}

/**
 * A provider found in the DHT: its DID, the name, the expiry, the signed provider record and its node
 * record when known.
 */
export interface DhtProvider {
  /** The provider's DID (the signer of the provider record). */
  provider: string
  name: string
  /** ms since the epoch. */
  expiresAt: number
  /** The signed provider record. */
  signed: Uint8Array
  /** The provider's verified node record, when known. */
  record?: NodeRecord
}

/**
 * Counters and sizes of the DHT service: table, cache, providers, requests sent, failed and served,
 * refusals.
 */
export interface DhtStats {
  contacts: number
  cachedContacts: number
  providersStored: number
  provided: number
  knownRecords: number
  requestsSent: number
  requestsFailed: number
  requestsServed: number
  invalidRequests: number
  invalidAnswers: number
  refused: number
  dials: number
  dialFailures: number
  restored: number
  /** Records dropped, by the error's name (`InvalidRecordSignatureError`, `InvalidProviderSignatureError`, ...). */
  rejectedRecords: Record<string, number>
}

export type DhtCounters = Omit<DhtStats, 'contacts' | 'cachedContacts' | 'providersStored' | 'provided' | 'knownRecords' | 'rejectedRecords' | 'restored'> & { restored?: number }

export interface DhtOpsInit {
  router: MessageRouter
  signer: Signer
  clock: Clock
  log: Logger
  kad: KadNode
  book: RecordBook
  limits: DhtWireLimits
  counters: DhtCounters
  providerTtl: number
  recordTtl: number
  maxProvided: number
  requestTimeoutMs: number
  provideNames: string[]
  provideCapabilities: boolean
  localNode: () => FederatedNode
}

/** `address[/did:...]` or `{ address, did? }`. */
export function normalizeSeed(s: SeedNode | string): SeedNode {
  if (typeof s === 'string') return splitPeerAddress(s)
  if (s === null || typeof s !== 'object' || typeof s.address !== 'string') throw new InvalidParametersError(`seed: expected { address, did? } or a string, got ${s === null ? 'null' : typeof s}`)
  return s.did === undefined ? splitPeerAddress(s.address) : { address: splitPeerAddress(s.address).address, did: s.did }
}

/** This node's FederatedNode as the DHT publishes it. */
export function localNode(router: MessageRouter, n: LocalNodeInit = {}, clock: Clock): FederatedNode {
  return localNodeOf(router, n, clock.now())
}

export class DhtOps {
  readonly kad: KadNode
  protected readonly router: MessageRouter
  protected readonly clock: Clock
  protected readonly log: Logger
  protected readonly book: RecordBook
  protected readonly counters: DhtCounters
  protected stopper = new AbortController()
  readonly #i: DhtOpsInit
  readonly #provided = new Map<string, SignedProviderRecord>()
  #record: NodeRecord | undefined

  constructor(init: DhtOpsInit) {
    this.#i = init
    this.kad = init.kad
    this.router = init.router
    this.clock = init.clock
    this.log = init.log
    this.book = init.book
    this.counters = init.counters
  }

  protected assertStarted(): void {}

  protected signalOf(options: AbortOptions): AbortSignal {
    if (options.signal === undefined) return this.stopper.signal
    const s = AbortSignal.any([options.signal, this.stopper.signal])
    setMaxListeners(Infinity, s)
    return s
  }

  localRecord(): NodeRecord | undefined {
    return this.#record
  }

  /** Signs a fresh record of this node. */
  protected async signRecord(): Promise<NodeRecord> {
    this.#record = await createNodeRecord(this.#i.localNode(), this.#i.signer, {
      source: { scheme: 'klp', authority: this.router.authority, path: DHT_PATH },
      ttlSeconds: this.#i.recordTtl,
      now: Math.floor(this.clock.now()),
    })
    return this.#record
  }

  contacts(): Contact[] {
    return [...this.kad.table.contacts()]
  }

  provided(): string[] {
    return [...this.#provided.keys()]
  }

  async bootstrap(seeds: Array<SeedNode | string> = [], options: AbortOptions = {}): Promise<DhtBootstrapResult> {
    this.assertStarted()
    if (!Array.isArray(seeds)) throw new InvalidParametersError(`seeds: expected an array, got ${typeof seeds}`)
    const signal = this.signalOf(options)
    const list = seeds.map(normalizeSeed)
    await this.signRecord()
    const errors: DhtBootstrapResult['errors'] = []
    const reached: Contact[] = []
    const targets: Array<{ address: string; did?: string; viaPeer?: boolean }> = list.length > 0
      ? list
      : this.router.peers().filter((p) => p.authority !== undefined).slice(0, this.kad.k).map((p) => ({ address: p.did, did: p.did, viaPeer: true }))
    await Promise.all(targets.map(async (t) => {
      try {
        if (t.did === this.router.did) throw new InvalidParametersError('seed: expected another node, got this node')
        let did = t.did
        // seeds are dialled whatever `dialContacts` says (unless connected and identified)
        if (t.viaPeer !== true && !this.router.peers().some((p) => p.did === did && p.authority !== undefined)) {
          const timeout = clockTimeout(this.clock, this.#i.requestTimeoutMs, `seed ${t.address.slice(0, 200)} to connect`)
          try {
            did = (await this.router.dial(t.address, { signal: AbortSignal.any([signal, timeout.signal]), ...(did === undefined ? {} : { remotePeer: did }) })).did
          } finally {
            timeout.clear()
          }
        }
        if (did === undefined) throw new InvalidParametersError('seed: expected a DID, got none')
        const contact: Contact = this.book.get(did) === undefined ? { id: kadIdOf(did), did, addrs: t.viaPeer === true ? [] : [t.address] } : this.book.contactOfDid(did)
        await this.kad.request(contact, { type: 'ping' }, signal)
        const best = this.book.get(did) === undefined ? contact : this.book.contactOfDid(did)
        this.kad.learn(best)
        reached.push(best)
      } catch (err) {
        throwIfAborted(signal)
        this.log.info('dht seed failed', { seed: t.address, err: errName(err) })
        errors.push({ address: t.address, error: err })
      }
    }))
    if (reached.length === 0 && this.kad.table.size === 0) {
      throw new BootstrapFailedError(`expected at least one of ${targets.length} seed(s) to answer, got none`, errors)
    }
    await this.kad.bootstrap(reached, { signal })
    const provided: Record<string, number> = {}
    for (const name of this.#autoNames()) {
      try {
        provided[name] = await this.provide(name, { signal })
      } catch (err) {
        throwIfAborted(signal)
        this.log.info('dht provide failed', { name, err: errName(err) })
      }
    }
    return { seedsReached: reached.length, contacts: this.kad.table.size, provided, errors }
  }

  #autoNames(): string[] {
    const names = new Set(this.#i.provideNames)
    const caps = this.#record?.node.capabilities as unknown as Record<string, unknown> | undefined
    if (this.#i.provideCapabilities && caps !== undefined) for (const f of CAPABILITY_FLAGS) if (caps[f] === true) names.add(`capability:${f}`)
    return [...names]
  }

  async findNode(did: string, options: AbortOptions = {}): Promise<NodeRecord> {
    this.assertStarted()
    if (typeof did !== 'string' || !did.startsWith('did:') || did.length > 512) throw new InvalidParametersError(`did: expected a DID, got ${typeof did === 'string' ? did.slice(0, 80) : typeof did}`)
    if (did === this.router.did && this.#record !== undefined) return this.#record
    const signal = this.signalOf(options)
    const id = kadIdOf(did)
    const check = async (c: Contact | undefined): Promise<NodeRecord | undefined> => {
      if (c === undefined || !idEquals(c.id, id)) return undefined
      const bytes = await recordOf(this.book, c, signal)
      return bytes === undefined ? undefined : this.book.node(bytes, { signal })
    }
    let rec = await check((await this.kad.findNode(id, { signal })).found)
    // held locally but its record expired: ask the network for a fresher one
    if (rec === undefined) rec = await check((await this.kad.lookup(id, { signal, stopOnTarget: true })).found)
    rec ??= this.book.get(did)
    if (rec === undefined || rec.peerId !== did) throw new NodeNotFoundError(`expected a verified record of ${did.slice(0, 80)}, got none`)
    return rec
  }

  async findProviders(name: string, options: AbortOptions & { count?: number } = {}): Promise<DhtProvider[]> {
    this.assertStarted()
    const key = providerKey(name)
    const signal = this.signalOf(options)
    const r = await this.kad.findProviders(key, { signal, ...(options.count === undefined ? {} : { count: options.count }) })
    const out: DhtProvider[] = []
    for (const p of r.providers) {
      if (p.signed === undefined) continue
      // verified again here: a provider record counts only if its own signature checks
      const v = await this.book.provider(p.signed, { signal })
      if (v === undefined || !idEquals(v.key, key) || v.provider !== p.provider.did) continue
      const bytes = v.provider === this.router.did ? this.#record?.bytes : await recordOf(this.book, p.provider, signal)
      const record = bytes === undefined ? undefined : await this.book.node(bytes, { signal })
      out.push({ provider: v.provider, name: v.name, expiresAt: v.expiresAt, signed: v.bytes, ...(record?.peerId === v.provider ? { record } : {}) })
    }
    return out
  }

  async provide(name: string, options: AbortOptions = {}): Promise<number> {
    this.assertStarted()
    checkProviderName(name)
    const signal = this.signalOf(options)
    if (!this.#provided.has(name) && this.#provided.size >= this.#i.maxProvided) {
      throw new InvalidParametersError(`name: expected at most ${this.#i.maxProvided} provided names, got one more`)
    }
    const signed = await createProviderRecord(name, this.#i.signer, {
      ttlSeconds: this.#i.providerTtl,
      now: this.clock.now(),
      source: { scheme: 'klp', authority: this.router.authority, path: DHT_PATH },
    })
    this.#provided.set(name, signed)
    return this.kad.provide(signed.key, { signal, signed: signed.bytes })
  }

  unprovide(name: string): boolean {
    return this.#provided.delete(name)
  }

  /** Re-signs and re-provides every provided name. Returns how many were re-provided. */
  protected async republish(options: AbortOptions = {}): Promise<number> {
    let n = 0
    for (const name of [...this.#provided.keys()]) {
      try {
        await this.provide(name, options)
        n++
      } catch (err) {
        throwIfAborted(this.signalOf(options))
        this.log.debug('dht republish failed', { name, err: errName(err) })
      }
    }
    return n
  }

  async *findPeers(query: PeerQuery, options: AbortOptions = {}): AsyncIterable<Uint8Array> {
    this.assertStarted()
    const signal = this.signalOf(options)
    const max = Math.max(0, Math.min(query.maxPeers ?? this.kad.k, 256))
    const caps = [...new Set(query.requiredCapabilities ?? [])]
    if (caps.length > 16) throw new InvalidParametersError(`requiredCapabilities: expected at most 16, got ${caps.length}`)
    const yielded = new Set<string>([this.router.did])
    if (caps.length === 0) {
      for (const c of this.kad.table.closest(this.kad.id, max)) {
        const bytes = await recordOf(this.book, c, signal)
        if (bytes !== undefined && !yielded.has(c.did)) {
          yielded.add(c.did)
          yield bytes
        }
      }
      return
    }
    // providers of every required capability: the intersection, by DID
    let wanted: Map<string, DhtProvider> | undefined
    for (const cap of caps) {
      const found = await this.findProviders(`capability:${cap}`, { signal, count: Math.max(max, this.kad.k) })
      const next = new Map<string, DhtProvider>()
      for (const p of found) if (wanted === undefined || wanted.has(p.provider)) next.set(p.provider, p)
      wanted = next
      if (wanted.size === 0) return
    }
    for (const p of wanted?.values() ?? []) {
      if (yielded.size > max) return
      if (yielded.has(p.provider)) continue
      let bytes = p.record?.bytes
      if (bytes === undefined) {
        try {
          bytes = (await this.findNode(p.provider, { signal })).bytes
        } catch (err) {
          throwIfAborted(signal)
          this.log.debug('dht provider record not found', { provider: p.provider, err: errName(err) })
          continue
        }
      }
      yielded.add(p.provider)
      yield bytes
    }
  }

  stats(): DhtStats {
    const k = this.kad.stats()
    return {
      ...this.counters,
      contacts: k.contacts,
      cachedContacts: k.cached,
      providersStored: k.providers,
      provided: this.#provided.size,
      knownRecords: this.book.size,
      restored: this.counters.restored ?? 0,
      rejectedRecords: { ...this.book.rejects },
    }
  }
}
