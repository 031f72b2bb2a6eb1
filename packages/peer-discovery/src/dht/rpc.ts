/**
 * The Kademlia core's RPCs mapped onto the MessageRouter: a KadRequest to a contact becomes a
 * signed PEER_DISCOVERY request to `klp://<its authority>/dht` (dialling the contact's transport
 * address first when it is not connected), answered by a response that must be signed by the
 * contact's DID; every record in the answer is verified before the core sees it.
 */
import { KLPMessageType, MessagePriority, InvalidParametersError, TimeoutError, didOfKeyId, throwIfAborted } from '@kos-mesh/interface'
import type { Clock, Logger, MessageRouter } from '@kos-mesh/interface'
import { setMaxListeners } from 'node:events'
import { UnexpectedResponseError } from '../errors.js'
import type { Contact, KadRequest, KadResponse, KadRpc, ProviderRecord } from '../kad/types.js'
import type { RecordBook } from './contacts.js'
import { ContactUnreachableError, DhtRecordMismatchError } from './errors.js'
import { DHT_PATH, dhtPayloadValue, parseDhtResponse } from './wire.js'
import type { DhtRequestPayload, DhtWireLimits, ProviderEntry } from './wire.js'

export interface RpcDeps {
  router: MessageRouter
  book: RecordBook
  clock: Clock
  log: Logger
  limits: DhtWireLimits
  requestTimeoutMs: number
  dialTimeoutMs: number
  dialContacts: boolean
  /** This node's current signed record, sent as `sender` with every request. */
  localRecord: () => Uint8Array | undefined
  /** A contact's newer verified record arrived (an answer's `sender`): the service offers it to the core. */
  onContact: (contact: Contact) => void
  /** Counters the service reports. */
  counters: { requestsSent: number; requestsFailed: number; dials: number; dialFailures: number; invalidAnswers: number }
}

/** A signal aborted with a TimeoutError after `ms` of `clock` time; `clear()` once done. */
export function clockTimeout(clock: Clock, ms: number, what: string): { signal: AbortSignal; clear(): void } {
  const ac = new AbortController()
  setMaxListeners(Infinity, ac.signal)
  const h = clock.setTimeout(() => ac.abort(new TimeoutError(`expected ${what} within ${ms} ms`)), ms, { unref: true })
  return { signal: ac.signal, clear: () => clock.clearTimeout(h) }
}

export function errName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err
}

/** The wire request of a KadRequest. */
export function toWireRequest(req: KadRequest, sender: Uint8Array | undefined, selfDid?: string): DhtRequestPayload {
  const s = sender === undefined ? {} : { sender }
  switch (req.type) {
    case 'ping':
      return { action: 'dht_ping', ...s }
    case 'find_node':
      return { action: 'dht_find_node', target: req.target, ...s }
    case 'get_providers':
      return { action: 'dht_get_providers', key: req.key, ...s }
    case 'add_provider': {
      const signed = req.record.signed
      if (signed === undefined) throw new InvalidParametersError('add_provider: expected a signed provider record, got an unsigned one')
      // this node's own provider records carry its current record (the core's copy may be older)
      const node = req.record.provider.did === selfDid ? sender : req.record.provider.record
      const entry: ProviderEntry = node === undefined ? { record: signed } : { record: signed, node }
      return { action: 'dht_add_provider', provider: entry, ...s }
    }
  }
}

const ANSWER_OF: Record<KadRequest['type'], string> = { ping: 'dht_pong', find_node: 'dht_nodes', get_providers: 'dht_providers', add_provider: 'dht_ok' }

/** Verifies the records of a `closer` list; invalid ones are dropped (and counted by the book). */
export async function verifiedContacts(book: RecordBook, records: readonly Uint8Array[], signal?: AbortSignal): Promise<Contact[]> {
  const out: Contact[] = []
  const seen = new Set<string>()
  const opts = signal === undefined ? {} : { signal }
  for (const bytes of records) {
    const rec = await book.node(bytes, opts)
    if (rec === undefined || seen.has(rec.peerId)) continue
    seen.add(rec.peerId)
    out.push(book.contactOf(rec))
  }
  return out
}

/**
 * Verifies a provider entry: the provider record's own signature, and the node record (when
 * given) must be the provider's own. Undefined when the provider record does not verify.
 */
export async function verifiedProvider(book: RecordBook, entry: ProviderEntry, signal?: AbortSignal): Promise<ProviderRecord | undefined> {
  const opts = signal === undefined ? {} : { signal }
  const p = await book.provider(entry.record, opts)
  if (p === undefined) return undefined
  let contact: Contact | undefined
  if (entry.node !== undefined) {
    const rec = await book.node(entry.node, opts)
    if (rec !== undefined && rec.peerId !== p.provider) book.count(DhtRecordMismatchError.name)
    else if (rec !== undefined) contact = book.contactOf(rec)
  }
  return { key: p.key, provider: contact ?? book.contactOfDid(p.provider), expiresAt: p.expiresAt, signed: p.bytes }
}

async function dialIfNeeded(d: RpcDeps, to: Contact, signal: AbortSignal): Promise<string | undefined> {
  // connected and identified: the router routes to it (connected but not identified yet: dial)
  if (d.router.peers().some((p) => p.did === to.did && p.authority !== undefined)) return undefined
  if (!d.dialContacts) return undefined
  for (const addr of to.addrs) {
    const t = clockTimeout(d.clock, d.dialTimeoutMs, `a dial to ${addr.slice(0, 200)}`)
    d.counters.dials++
    try {
      const info = await d.router.dial(addr, { remotePeer: to.did, signal: AbortSignal.any([signal, t.signal]) })
      return info.authority
    } catch (err) {
      throwIfAborted(signal)
      d.counters.dialFailures++
      d.log.debug('dht dial failed', { peer: to.did, addr, err: errName(err) })
    } finally {
      t.clear()
    }
  }
  return undefined
}

/** The KadRpc of the service: one router request per Kademlia request. */
export function createKadRpc(d: RpcDeps): KadRpc {
  return async (to: Contact, request: KadRequest, options: { signal: AbortSignal }): Promise<KadResponse> => {
    const signal = options.signal
    throwIfAborted(signal)
    if (to.did === d.router.did) throw new InvalidParametersError('expected another node, got this node')
    if (to.record !== undefined) await d.book.node(to.record, { signal })
    const known = d.book.get(to.did)
    const dialled = await dialIfNeeded(d, known === undefined ? to : d.book.contactOf(known), signal)
    const authority = dialled ?? d.book.authorityOf(to.did) ?? d.router.authorityOf(to.did)
    if (authority === undefined) throw new ContactUnreachableError(`expected an authority or a dialable address for ${to.did.slice(0, 80)}, got none`)
    d.counters.requestsSent++
    let response
    try {
      response = await d.router.request(
        { type: KLPMessageType.PEER_DISCOVERY, target: `klp://${authority}${DHT_PATH}`, sourcePath: DHT_PATH, priority: MessagePriority.LOW, data: dhtPayloadValue(toWireRequest(request, d.localRecord(), d.router.did)) },
        { signal, timeoutMs: d.requestTimeoutMs, expectedSigner: to.did, reliesOnPin: false },
      )
    } catch (err) {
      d.counters.requestsFailed++
      throw err
    }
    if (response.type !== KLPMessageType.PEER_DISCOVERY || didOfKeyId(response.signer) !== to.did) {
      d.counters.invalidAnswers++
      throw new UnexpectedResponseError(`expected a PEER_DISCOVERY answer signed by ${to.did.slice(0, 80)}, got ${String(response.type).slice(0, 40)} from ${response.signer.slice(0, 80)}`)
    }
    let answer
    try {
      answer = parseDhtResponse(response.payload.data, d.limits)
    } catch (err) {
      d.counters.invalidAnswers++
      throw new UnexpectedResponseError(`expected a valid DHT answer, got an invalid one (${errName(err)})`, { cause: err })
    }
    if (answer.action !== ANSWER_OF[request.type]) {
      d.counters.invalidAnswers++
      throw new UnexpectedResponseError(`expected ${ANSWER_OF[request.type]}, got ${answer.action}`)
    }
    if (answer.sender !== undefined) {
      const rec = await d.book.node(answer.sender, { signal })
      if (rec !== undefined && rec.peerId !== to.did) d.book.count(DhtRecordMismatchError.name)
      else if (rec !== undefined && rec.bytes !== to.record) d.onContact(d.book.contactOf(rec))
    }
    switch (answer.action) {
      case 'dht_pong':
        return { type: 'pong' }
      case 'dht_ok':
        return { type: 'ok' }
      case 'dht_nodes':
        return { type: 'nodes', closer: await verifiedContacts(d.book, answer.closer, signal) }
      case 'dht_providers': {
        const providers: ProviderRecord[] = []
        for (const e of answer.providers) {
          const p = await verifiedProvider(d.book, e, signal)
          if (p !== undefined && (request.type !== 'get_providers' || equalId(p.key, request.key))) providers.push(p)
          else if (p !== undefined) d.book.count(DhtRecordMismatchError.name)
        }
        return { type: 'providers', providers, closer: await verifiedContacts(d.book, answer.closer, signal) }
      }
    }
  }
}

function equalId(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
