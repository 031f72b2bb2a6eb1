/**
 * The answering side of the DHT: a PEER_DISCOVERY request on `/dht` is parsed strictly, the
 * asker's `sender` record is verified (it must be the signer's own), the request goes to the
 * Kademlia core, and the core's answer goes back as signed records (contacts as the nodes' own
 * signed records, providers as their own signed provider records).
 */
import { ProcessingStatus } from '@kos-mesh/interface'
import type { KLPMessage, Logger, MessageContext, MessageHandler, MessageRouter, ProcessingResult } from '@kos-mesh/interface'
import type { Contact, KadRequest, KadResponse, KadNode, ProviderRecord } from '../kad/index.js'
import type { RecordBook } from './contacts.js'
import { DhtRecordMismatchError } from './errors.js'
import { errName, verifiedProvider } from './rpc.js'
import { dhtPayloadValue, parseDhtRequest } from './wire.js'
import type { DhtRequestPayload, DhtResponsePayload, DhtWireLimits, ProviderEntry } from './wire.js'

/** Reason codes of refused DHT requests (they cross the wire as `error.code`). */
export const DhtRejectReason = {
  /** The payload is not a valid DHT request. */
  INVALID_MESSAGE: 'invalid_dht_message',
  /** The provider record of an add_provider does not verify (signature, shape, expiry). */
  INVALID_PROVIDER_RECORD: 'invalid_provider_record',
  /** An add_provider for another node than its signer (providers announce themselves). */
  PROVIDER_NOT_SENDER: 'provider_not_sender',
  /** The Kademlia core refused the request. */
  REFUSED: 'dht_refused',
} as const
export type DhtRejectReason = (typeof DhtRejectReason)[keyof typeof DhtRejectReason]

export interface ServeDeps {
  router: MessageRouter
  kad: KadNode
  book: RecordBook
  log: Logger
  limits: DhtWireLimits
  localRecord: () => Uint8Array | undefined
  counters: { requestsServed: number; invalidRequests: number; refused: number }
}

/** The freshest valid record bytes of a contact (the book's newest, else the contact's own if still valid). */
export async function recordOf(book: RecordBook, c: Contact, signal?: AbortSignal): Promise<Uint8Array | undefined> {
  const known = book.get(c.did)
  if (known !== undefined) return known.bytes
  if (c.record === undefined) return undefined
  const rec = await book.node(c.record, signal === undefined ? {} : { signal })
  return rec?.peerId === c.did ? rec.bytes : undefined
}

async function answerOf(d: ServeDeps, res: KadResponse, signal: AbortSignal | undefined): Promise<DhtResponsePayload> {
  let budget = d.limits.maxPayloadBytes - (d.localRecord()?.length ?? 0)
  const fits = (n: number): boolean => {
    if (n > budget) return false
    budget -= n
    return true
  }
  const closer = async (list: readonly Contact[]): Promise<Uint8Array[]> => {
    const out: Uint8Array[] = []
    for (const c of list) {
      if (out.length >= d.limits.maxContacts) break
      const b = await recordOf(d.book, c, signal)
      if (b !== undefined && b.length <= d.limits.maxRecordBytes && fits(b.length)) out.push(b)
    }
    return out
  }
  const entries = async (list: readonly ProviderRecord[]): Promise<ProviderEntry[]> => {
    const out: ProviderEntry[] = []
    for (const p of list) {
      if (out.length >= d.limits.maxProviders) break
      if (p.signed === undefined || p.signed.length > d.limits.maxProviderRecordBytes || !fits(p.signed.length)) continue
      const node = p.provider.did === d.router.did ? d.localRecord() : await recordOf(d.book, p.provider, signal)
      out.push(node !== undefined && node.length <= d.limits.maxRecordBytes && fits(node.length) ? { record: p.signed, node } : { record: p.signed })
    }
    return out
  }
  switch (res.type) {
    case 'pong':
      return { action: 'dht_pong' }
    case 'ok':
      return { action: 'dht_ok' }
    case 'nodes':
      return { action: 'dht_nodes', closer: await closer(res.closer) }
    case 'providers': {
      const providers = await entries(res.providers)
      return { action: 'dht_providers', providers, closer: await closer(res.closer) }
    }
  }
}

/** The PEER_DISCOVERY handler of the `/dht` path. */
export function createDhtHandler(d: ServeDeps): MessageHandler {
  const refuse = async (msg: KLPMessage, code: DhtRejectReason, message: string): Promise<ProcessingResult> => {
    d.counters.refused++
    return { status: ProcessingStatus.REJECTED, reason: code, response: await d.router.createResponse(msg, { status: 'rejected', error: { code, message } }) }
  }
  return async (msg: KLPMessage, ctx: MessageContext): Promise<ProcessingResult> => {
    let payload: DhtRequestPayload
    try {
      payload = parseDhtRequest(msg.payload.data, d.limits)
    } catch (err) {
      d.counters.invalidRequests++
      d.log.debug('invalid dht request', { from: ctx.fromPeer, err: errName(err) })
      return refuse(msg, DhtRejectReason.INVALID_MESSAGE, `expected a valid DHT request, got an invalid one (${errName(err)})`)
    }
    const signal = ctx.signal
    const opts = signal === undefined ? {} : { signal }
    // the asker: its own record when it sent one (and it is the signer's), else what we know of it
    let from: Contact | undefined
    if (payload.sender !== undefined) {
      const rec = await d.book.node(payload.sender, opts)
      if (rec !== undefined && rec.peerId === ctx.signerDid) from = d.book.contactOf(rec)
      else if (rec !== undefined) d.book.count(DhtRecordMismatchError.name)
    }
    from ??= d.book.contactOfDid(ctx.signerDid)
    let request: KadRequest
    switch (payload.action) {
      case 'dht_ping':
        request = { type: 'ping' }
        break
      case 'dht_find_node':
        request = { type: 'find_node', target: payload.target }
        break
      case 'dht_get_providers':
        request = { type: 'get_providers', key: payload.key }
        break
      case 'dht_add_provider': {
        const record = await verifiedProvider(d.book, payload.provider, signal)
        if (record === undefined) return refuse(msg, DhtRejectReason.INVALID_PROVIDER_RECORD, 'expected a provider record whose own signature checks, got one that does not')
        if (record.provider.did !== ctx.signerDid) return refuse(msg, DhtRejectReason.PROVIDER_NOT_SENDER, 'expected a provider record of the sender, got one of another node')
        request = { type: 'add_provider', record: record.provider.record === undefined && from.record !== undefined ? { ...record, provider: from } : record }
        break
      }
    }
    let res: KadResponse
    try {
      res = d.kad.handle(from, request)
    } catch (err) {
      return refuse(msg, DhtRejectReason.REFUSED, `the DHT refused the request (${errName(err)})`)
    }
    const answer = await answerOf(d, res, signal)
    const sender = d.localRecord()
    d.counters.requestsServed++
    return { status: ProcessingStatus.PROCESSED, response: await d.router.createResponse(msg, dhtPayloadValue(sender === undefined ? answer : { ...answer, sender })) }
  }
}
