/**
 * The sending half: offers (a source, its hash tree and content hash, kept alive for a TTL that
 * every request extends), the receivers' control messages (offer, leaf pages, pulls, reports)
 * and the end of offers. Data frames are sent by the pump (pump.ts). Memory per offer: 32 bytes
 * of leaf hash per chunk; per session: at most two chunks read ahead; over all sessions:
 * `maxSendBufferBytes` of chunks read and not yet handed to the router. Internal.
 */
import { randomBytes } from 'node:crypto'
import { InvalidParametersError, throwIfAborted, type KLPValue } from '@kos-mesh/interface'
import { ByteGate, controlSend, deferred, type BulkContext } from './context.js'
import { BulkBusyError, BulkCancelledError, BulkReason, BulkTimeoutError, BulkUnknownOfferError, errorForReason } from './errors.js'
import { hashSource, type BulkSendResult, type Offer, type OfferOptions, type OutgoingOffer, type SenderLimits, type Session } from './offer.js'
import { pump } from './pump.js'
import type { BulkSource } from './source.js'
import { HashTree, isPowerOfTwo } from './tree.js'
import { MAX_PAGE_LEAVES, chunkCount, idFromHex, idToHex, offerData, type BulkOfferInfo } from './wire.js'

export type { BulkSendResult, OfferOptions, OutgoingOffer, SenderLimits } from './offer.js'

export class BulkSender {
  private readonly offers = new Map<string, Offer>()
  private readonly gate: ByteGate

  constructor(
    private readonly ctx: BulkContext,
    private readonly limits: SenderLimits,
  ) {
    this.gate = new ByteGate(limits.maxSendBufferBytes)
  }

  get size(): number {
    return this.offers.size
  }

  async createOffer(source: BulkSource, options: OfferOptions = {}): Promise<OutgoingOffer> {
    const ctx = this.ctx
    const chunkSize = options.chunkSize ?? this.limits.chunkSize
    const pageLeaves = options.pageLeaves ?? this.limits.pageLeaves
    const ttlMs = options.ttlMs ?? this.limits.offerTtlMs
    if (!Number.isSafeInteger(chunkSize) || chunkSize < 1 || chunkSize > this.limits.maxChunkSize) throw new InvalidParametersError(`expected chunkSize in 1..${this.limits.maxChunkSize}, got ${String(chunkSize)}`)
    if (!isPowerOfTwo(pageLeaves) || pageLeaves > MAX_PAGE_LEAVES) throw new InvalidParametersError(`expected pageLeaves to be a power of two <= ${MAX_PAGE_LEAVES}, got ${String(pageLeaves)}`)
    if (!(ttlMs > 0)) throw new InvalidParametersError(`expected ttlMs > 0, got ${String(ttlMs)}`)
    if (source === null || typeof source !== 'object' || typeof source.read !== 'function' || !Number.isSafeInteger(source.size) || source.size < 0) {
      throw new InvalidParametersError('expected a BulkSource { size, read(offset, length) }')
    }
    if (chunkCount(source.size, chunkSize) > 0xffffffff) throw new InvalidParametersError(`expected at most 2^32 - 1 chunks, got ${chunkCount(source.size, chunkSize)}`)
    if (this.offers.size >= this.limits.maxOffers) throw new BulkBusyError(`expected fewer than ${this.limits.maxOffers} offers alive, got ${this.offers.size}`)
    const to = options.to === undefined ? undefined : this.resolveDid(options.to)
    const { leaves, contentHash } = await hashSource(source, chunkSize, options.signal, options.contentHash ?? this.limits.contentHash)
    throwIfAborted(options.signal)
    if (this.offers.size >= this.limits.maxOffers) throw new BulkBusyError(`expected fewer than ${this.limits.maxOffers} offers alive, got ${this.offers.size}`)
    const tree = new HashTree(leaves, pageLeaves)
    const id = idToHex(randomBytes(16))
    const now = ctx.clock.now()
    const info: BulkOfferInfo = {
      id,
      size: source.size,
      chunkSize,
      chunks: tree.count,
      pageLeaves,
      root: tree.root,
      contentHash,
      addrs: ctx.router.addrs().slice(0, 16),
      expiresAt: Math.ceil(now + ttlMs),
      meta: options.meta ?? null,
    }
    const offer: Offer = {
      id,
      info,
      source,
      tree,
      to,
      toAuthority: undefined,
      ttlMs,
      expiresAt: now + ttlMs,
      timer: undefined,
      sessions: new Map(),
      done: deferred<BulkSendResult>(),
      createdAt: now,
      onProgress: options.onProgress,
      closed: false,
      unlisten: undefined,
    }
    this.offers.set(id, offer)
    ctx.stats.offers = this.offers.size
    offer.timer = ctx.clock.setTimeout(() => this.checkExpiry(offer), ttlMs, { unref: true })
    const signal = options.signal
    if (signal !== undefined) {
      const onAbort = (): void => void this.cancel(offer, new BulkCancelledError('offer cancelled by its signal'))
      signal.addEventListener('abort', onAbort, { once: true })
      offer.unlisten = () => signal.removeEventListener('abort', onAbort)
    }
    return {
      id,
      info,
      done: offer.done.promise,
      cancel: () => this.cancel(offer, new BulkCancelledError('offer cancelled')),
    }
  }

  /** `to` as a DID: a DID as is, an authority through its pin. */
  resolveDid(to: string): string {
    if (typeof to !== 'string' || to.length === 0) throw new InvalidParametersError(`expected a DID or an authority, got ${String(to)}`)
    if (to.startsWith('did:')) return to
    const did = this.ctx.router.didOf(to)
    if (did === undefined) throw new InvalidParametersError(`expected a known authority (pinned to a DID), got ${to}`)
    return did
  }

  /** The offer is pushed to `authority`; sets its receiver's DID if it was not known (an unpinned authority). */
  bindReceiver(id: string, did: string | undefined, authority: string): void {
    const o = this.offers.get(id)
    if (o === undefined) return
    o.toAuthority = authority
    if (o.to === undefined && did !== undefined) o.to = did
  }

  offerData(id: string): Record<string, KLPValue> {
    const o = this.offers.get(id)
    if (o === undefined) throw new BulkUnknownOfferError(`expected a live offer ${id}`, BulkReason.UNKNOWN_OFFER)
    return offerData({ ...o.info, expiresAt: Math.ceil(o.expiresAt) })
  }

  private checkExpiry(o: Offer): void {
    if (o.closed) return
    const now = this.ctx.clock.now()
    if (now >= o.expiresAt) {
      this.close(o, new BulkTimeoutError(`offer ${o.id} expired (no use for ${o.ttlMs} ms)`))
      return
    }
    o.timer = this.ctx.clock.setTimeout(() => this.checkExpiry(o), o.expiresAt - now, { unref: true })
  }

  /** The offer for a request by `did`; extends its life. */
  private use(id: string, did: string): Offer {
    const o = this.offers.get(id)
    if (o === undefined || o.closed || (o.to !== undefined && o.to !== did)) throw new BulkUnknownOfferError(`expected a live offer ${id} for ${did}`, BulkReason.UNKNOWN_OFFER)
    o.expiresAt = this.ctx.clock.now() + o.ttlMs
    return o
  }

  // -------------------------------------------------------------- control messages (from receivers)

  onGet(did: string, id: string): Record<string, KLPValue> {
    const o = this.use(id, did)
    return offerData({ ...o.info, expiresAt: Math.ceil(o.expiresAt) })
  }

  onLeaves(did: string, id: string, page: number): Record<string, KLPValue> {
    const o = this.use(id, did)
    if (page >= o.tree.pages) throw new InvalidParametersError(`expected a page in 0..${o.tree.pages - 1}, got ${page}`)
    return { op: 'leaves', id: idFromHex(o.info.id), page, leaves: o.tree.pageLeavesOf(page), proof: o.tree.proof(page) }
  }

  onPull(did: string, authority: string, id: string, stream: number, epoch: number, ranges: readonly number[]): void {
    const o = this.use(id, did)
    this.ctx.stats.pullsReceived++
    const key = `${did} ${stream}`
    let s = o.sessions.get(key)
    const now = this.ctx.clock.now()
    if (s === undefined) {
      if (o.sessions.size >= this.limits.maxSessionsPerOffer && !this.evictIdleSession(o)) throw new BulkBusyError(`expected fewer than ${this.limits.maxSessionsPerOffer} receivers of offer ${id}`)
      s = { did, authority, stream, epoch, queue: [], head: 0, pumping: false, chunksSent: 0, bytesSent: 0, scratch: undefined, lastUsed: now }
      o.sessions.set(key, s)
    }
    s.lastUsed = now
    if (epoch < s.epoch) return // a pull of an older epoch, overtaken
    if (epoch > s.epoch) {
      // the receiver starts over (stall or reconnect): what was queued is asked again if still wanted
      s.epoch = epoch
      s.queue = []
      s.head = 0
    }
    const n = o.tree.count
    const pending = s.queue.length - s.head
    let add = 0
    for (let i = 1; i < ranges.length; i += 2) add += ranges[i]!
    // at most one maximal pull queued per session: a receiver cannot queue unbounded work
    if (pending + add > 2 * 1024) throw new BulkBusyError(`expected at most ${2 * 1024} chunks queued for one receiver, got ${pending + add}`)
    for (let i = 0; i < ranges.length; i += 2) {
      if (ranges[i]! + ranges[i + 1]! > n) throw new InvalidParametersError(`expected chunks below ${n}, got ${ranges[i]!}..${ranges[i]! + ranges[i + 1]! - 1}`)
    }
    for (let i = 0; i < ranges.length; i += 2) {
      for (let k = ranges[i]!, end = k + ranges[i + 1]!; k < end; k++) s.queue.push(k)
    }
    if (!s.pumping) void pump(this.ctx, this.gate, o, s, (err) => this.close(o, err, BulkReason.SOURCE))
  }

  /** Drops the least recently used session with nothing queued (a receiver that went away without a report). */
  private evictIdleSession(o: Offer): boolean {
    let oldest: [string, Session] | undefined
    for (const e of o.sessions) {
      const s = e[1]
      if (s.pumping || s.head < s.queue.length) continue
      if (oldest === undefined || s.lastUsed < oldest[1].lastUsed) oldest = e
    }
    if (oldest === undefined) return false
    o.sessions.delete(oldest[0])
    return true
  }

  onDone(did: string, id: string, stream: number, ok: boolean, code: string | undefined): void {
    const o = this.offers.get(id)
    if (o === undefined || (o.to !== undefined && o.to !== did)) throw new BulkUnknownOfferError(`expected a live offer ${id} for ${did}`, BulkReason.UNKNOWN_OFFER)
    const key = `${did} ${stream}`
    const s = o.sessions.get(key)
    o.sessions.delete(key)
    if (ok) {
      o.done.resolve({ id, receiver: did, chunksSent: s?.chunksSent ?? 0, bytesSent: s?.bytesSent ?? 0, durationMs: this.ctx.clock.now() - o.createdAt })
      // an offer for one receiver ends with its report; an open one stays for others until its TTL
      if (o.to !== undefined) this.close(o)
      return
    }
    if (o.to !== undefined) this.close(o, errorForReason(code ?? BulkReason.REFUSED, `the receiver reported a failure (${code ?? 'no code'})`))
  }

  /** A connection to `did` closed: drop what was queued for it (it asks again with a new epoch). */
  onDisconnect(did: string): void {
    for (const o of this.offers.values()) {
      for (const s of o.sessions.values()) {
        if (s.did !== did) continue
        s.queue = []
        s.head = 0
      }
    }
  }

  // -------------------------------------------------------------- ending

  private async cancel(o: Offer, err: Error): Promise<void> {
    if (o.closed) return
    const receivers = new Set<string>()
    for (const s of o.sessions.values()) receivers.add(s.authority)
    if (o.toAuthority !== undefined) receivers.add(o.toAuthority)
    this.close(o, err)
    const data = { op: 'cancel', id: idFromHex(o.id), code: BulkReason.CANCELLED }
    await Promise.all([...receivers].map((a) => controlSend(this.ctx, a, data)))
  }

  /** Ends an offer (with `err`: `done` rejects unless a receiver already succeeded). */
  private close(o: Offer, err?: Error, tellReceivers?: string): void {
    if (o.closed) return
    o.closed = true
    this.ctx.clock.clearTimeout(o.timer)
    o.unlisten?.()
    this.offers.delete(o.id)
    this.ctx.stats.offers = this.offers.size
    if (err !== undefined) o.done.reject(err)
    if (tellReceivers !== undefined) {
      const data = { op: 'cancel', id: idFromHex(o.id), code: tellReceivers }
      for (const s of o.sessions.values()) void controlSend(this.ctx, s.authority, data)
    }
    o.sessions.clear()
    void Promise.resolve()
      .then(() => o.source.close?.())
      .catch(() => {})
  }

  /** Withdraws an offer without telling anyone (its receiver refused it). */
  discard(id: string, err: Error): void {
    const o = this.offers.get(id)
    if (o !== undefined) this.close(o, err)
  }

  /** Ends every offer (service stop). */
  stop(err: Error): void {
    for (const o of [...this.offers.values()]) this.close(o, err)
  }
}
