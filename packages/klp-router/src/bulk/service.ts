/**
 * `bulkTransfer(init)(components)`: payloads larger than one frame between two routers, pulled by
 * the receiver in chunks checked against a hash tree from a signed offer. Control messages are
 * signed KLP messages of the embedder's type at `path`; chunks are unsigned data frames on one
 * data channel of a direct connection (see wire.ts for the formats, tree.ts for the tree).
 */
import { randomInt } from 'node:crypto'
import {
  InvalidParametersError,
  KLPMessageType,
  describeValue,
  didOfKeyId,
  MessagePriority,
  ProcessingStatus,
  silentLogger,
  systemClock,
  type Clock,
  type KLPMessage,
  type KLPValue,
  type Logger,
  type MessageContext,
  type PeerInfo,
  type ProcessingResult,
  type Startable,
} from '@kos-mesh/interface'
import type { Router } from '../types.js'
import { controlRequest, controlSend, deferred, newStats, type BulkContext, type BulkProgress, type BulkStats } from './context.js'
import { BulkBusyError, BulkCancelledError, BulkOfferTooLargeError, BulkReason, BulkRejectedError, InvalidBulkMessageError, reasonOf } from './errors.js'
import { Download, type BulkReceiveResult, type ReceiveOptions } from './receiver.js'
import { BulkSender, type BulkSendResult, type OfferOptions, type OutgoingOffer } from './sender.js'
import type { BulkSource } from './source.js'
import { MAX_PAGE_LEAVES, MAX_PULL_CHUNKS, idFromHex, parseControl, readDataHeader, DATA_HEADER_BYTES, type BulkOfferInfo } from './wire.js'
import { isPowerOfTwo } from './tree.js'

/** Default path of the control messages: `klp://<authority>/.bulk`. */
export const DEFAULT_BULK_PATH = '/.bulk'
/** Default data channel of the chunks. */
export const DEFAULT_BULK_CHANNEL = 0x0b01

export interface BulkTransferInit {
  /** Message type of the control messages: the type of the service that embeds the transfer (e.g. AGENT_MIGRATION, VECTOR_SYNC). */
  type: KLPMessageType
  /** Path of the control messages (a handler at this path and type). Default `/.bulk`. */
  path?: string
  /** Data channel of the chunks (0..65535; one bulk service per channel on a router). Default 0x0b01. */
  channel?: number
  /** Sender: chunk size, bytes. Default 262,144 (256 KiB). */
  chunkSize?: number
  /** Sender: leaf hashes per page (power of two <= 16,384). Default 1,024 (32 KiB pages). */
  pageLeaves?: number
  /**
   * Sender: also offer the SHA-256 of the whole payload, checked by the receiver before it commits
   * (a second hash pass over every byte on both sides). Default false: the root of the hash tree
   * (in the signed offer) already identifies the content, and every chunk is checked against it.
   */
  contentHash?: boolean
  /** Sender: an offer lives this long after its last use, ms. Default 600,000. */
  offerTtlMs?: number
  /** Sender: offers alive at once. Default 64. */
  maxOffers?: number
  /** Sender: receivers fetching one offer at once. Default 8. */
  maxSessionsPerOffer?: number
  /** Sender: bytes of chunks read and not yet handed to the router, over all transfers. Default 16 MiB. */
  maxSendBufferBytes?: number
  /** Receiver: chunks outstanding per transfer (memory: window x chunkSize). Default 16. */
  window?: number
  /** Receiver: largest payload accepted (per call: `ReceiveOptions.maxBytes`). Default 1 GiB. */
  maxBytes?: number
  /** Receiver: largest chunk size accepted (a data frame must fit the router's frame limit). Default 1 MiB - 64. */
  maxChunkSize?: number
  /** Receiver: most chunks in an offer (tiny chunks cost a frame each, and a resumable sink a bit each). Default 4,194,304. */
  maxChunks?: number
  /** Receiver: transfers running at once. Default 16. */
  maxTransfers?: number
  /** Control requests (offer, leaf pages, reports), ms. Default 10,000. */
  requestTimeoutMs?: number
  /** Receiver: no chunk for this long while some are outstanding is a stall; they are asked again. Default 10,000 ms. */
  stallTimeoutMs?: number
  /** Receiver: consecutive stalls before the transfer fails with `BulkTimeoutError`. Default 3. */
  maxStalls?: number
  /** Receiver: time to get a direct connection to the sender (first dial and after a drop), ms. Default 30,000. */
  reconnectTimeoutMs?: number
  /**
   * Receiver: called for an offer a sender pushes (`push()`); call `offer.accept({ sink, ... })` or
   * `offer.reject(code)` before it returns (neither: refused). Without it, pushed offers are refused.
   * Offers larger than `maxBytes` are refused before it is called.
   */
  onOffer?: (offer: IncomingOffer) => void | Promise<void>
}

export interface BulkTransferComponents {
  /** klp-router's Router (for its data channels). */
  router: Router
  /** Default `systemClock`. */
  clock?: Clock
  /** Default: silent. */
  logger?: Logger
}

/** An offer a sender pushed, as `onOffer` sees it. */
export interface IncomingOffer extends BulkOfferInfo {
  /** The sender's authority and DID (the signer of the offer). */
  from: string
  fromDid: string
  /**
   * Accepts: the transfer starts once the answer is sent. The promise settles when it ends (attach
   * a handler; do not await it inside `onOffer`).
   */
  accept(options: ReceiveOptions): Promise<BulkReceiveResult>
  /** Refuses with a wire code (default `bulk_refused`). */
  reject(reason?: string): void
}

export interface BulkTransferEvents {
  /** Progress of any transfer of this service, both directions. */
  progress: CustomEvent<BulkProgress>
}

export interface BulkTransfer extends Startable {
  /**
   * Makes an offer: reads the source once (leaf hashes and content hash) and keeps it for
   * `ttlMs` after its last use. Hand `id` and this node's authority to the receiver (e.g. in a
   * message of your own), which calls `receive()`.
   */
  offer(source: BulkSource, options?: OfferOptions): Promise<OutgoingOffer>
  /** Offers to `to` (an authority) with a signed message and resolves when it reports success. */
  push(to: string, source: BulkSource, options?: OfferOptions): Promise<BulkSendResult>
  /** Fetches offer `id` of the node `from` (an authority) into `options.sink`. */
  receive(from: string, id: string, options: ReceiveOptions): Promise<BulkReceiveResult>
  stats(): BulkStats
  addEventListener<K extends keyof BulkTransferEvents>(type: K, listener: (evt: BulkTransferEvents[K]) => void, options?: { once?: boolean; signal?: AbortSignal }): void
  removeEventListener<K extends keyof BulkTransferEvents>(type: K, listener: (evt: BulkTransferEvents[K]) => void): void
}

function positive(name: string, v: number | undefined, dflt: number, max = Number.MAX_SAFE_INTEGER): number {
  const x = v ?? dflt
  if (!Number.isSafeInteger(x) || x < 1 || x > max) throw new InvalidParametersError(`expected ${name} to be an integer in 1..${max}, got ${String(v)}`)
  return x
}

const REASON_RE = /^[a-z0-9_.-]{1,64}$/

class BulkService implements BulkTransfer {
  private readonly router: Router
  private readonly ctx: BulkContext
  private readonly sender: BulkSender
  private readonly downloads = new Map<number, Download>()
  private readonly events = new EventTarget()
  private readonly statsObj = newStats()
  private readonly maxBytes: number
  private readonly maxChunkSize: number
  private readonly maxChunks: number
  private readonly window: number
  private readonly maxTransfers: number
  private readonly receiverLimits: { window: number; stallTimeoutMs: number; maxStalls: number; reconnectTimeoutMs: number }
  private readonly onOffer: BulkTransferInit['onOffer']
  private nextStream = randomInt(0x7fffffff)
  private started = false

  constructor(init: BulkTransferInit, components: BulkTransferComponents) {
    if (components?.router === undefined || typeof components.router.sendData !== 'function') throw new InvalidParametersError('expected components.router to be a klp-router Router (with data channels)')
    if (typeof init?.type !== 'string' || !(Object.values(KLPMessageType) as string[]).includes(init.type)) throw new InvalidParametersError(`expected init.type to be a KLP message type, got ${String(init?.type)}`)
    const path = init.path ?? DEFAULT_BULK_PATH
    if (typeof path !== 'string' || !path.startsWith('/') || (path.length > 1 && path.endsWith('/'))) throw new InvalidParametersError(`expected a path like /.bulk, got ${String(path)}`)
    const channel = init.channel ?? DEFAULT_BULK_CHANNEL
    if (!Number.isInteger(channel) || channel < 0 || channel > 0xffff) throw new InvalidParametersError(`expected channel in 0..65535, got ${String(channel)}`)
    this.router = components.router
    this.maxChunkSize = positive('maxChunkSize', init.maxChunkSize, 1024 * 1024 - 64)
    this.maxChunks = positive('maxChunks', init.maxChunks, 4 * 1024 * 1024)
    this.maxBytes = init.maxBytes ?? 1024 * 1024 * 1024
    if (!Number.isSafeInteger(this.maxBytes) || this.maxBytes < 0) throw new InvalidParametersError(`expected maxBytes >= 0, got ${String(init.maxBytes)}`)
    this.window = positive('window', init.window, 16, MAX_PULL_CHUNKS)
    this.maxTransfers = positive('maxTransfers', init.maxTransfers, 16)
    const pageLeaves = init.pageLeaves ?? 1024
    if (!isPowerOfTwo(pageLeaves) || pageLeaves > MAX_PAGE_LEAVES) throw new InvalidParametersError(`expected pageLeaves to be a power of two <= ${MAX_PAGE_LEAVES}, got ${String(init.pageLeaves)}`)
    this.receiverLimits = {
      window: this.window,
      stallTimeoutMs: positive('stallTimeoutMs', init.stallTimeoutMs, 10_000),
      maxStalls: init.maxStalls ?? 3,
      reconnectTimeoutMs: positive('reconnectTimeoutMs', init.reconnectTimeoutMs, 30_000),
    }
    if (!Number.isSafeInteger(this.receiverLimits.maxStalls) || this.receiverLimits.maxStalls < 0) throw new InvalidParametersError(`expected maxStalls >= 0, got ${String(init.maxStalls)}`)
    this.onOffer = init.onOffer
    const events = this.events
    this.ctx = {
      router: this.router,
      clock: components.clock ?? systemClock,
      log: components.logger ?? silentLogger,
      type: init.type,
      path,
      channel,
      requestTimeoutMs: positive('requestTimeoutMs', init.requestTimeoutMs, 10_000),
      stats: this.statsObj,
      emit: (p) => {
        events.dispatchEvent(new CustomEvent('progress', { detail: p }))
      },
    }
    this.sender = new BulkSender(this.ctx, {
      chunkSize: positive('chunkSize', init.chunkSize, 256 * 1024, this.maxChunkSize),
      pageLeaves,
      offerTtlMs: positive('offerTtlMs', init.offerTtlMs, 600_000),
      maxOffers: positive('maxOffers', init.maxOffers, 64),
      maxSessionsPerOffer: positive('maxSessionsPerOffer', init.maxSessionsPerOffer, 8),
      maxChunkSize: this.maxChunkSize,
      maxSendBufferBytes: positive('maxSendBufferBytes', init.maxSendBufferBytes, 16 * 1024 * 1024),
      contentHash: init.contentHash === true,
    })
  }

  // -------------------------------------------------------------- lifecycle

  start(): void {
    if (this.started) return
    const { type, path, channel } = this.ctx
    this.router.handle(type, this.onMessage, { path })
    try {
      this.router.handleData(channel, this.onData)
    } catch (err) {
      this.router.unhandle(type, { path })
      throw err
    }
    this.router.addEventListener('peer:disconnect', this.onDisconnect)
    this.started = true
  }

  stop(): void {
    if (!this.started) return
    this.started = false
    const { type, path, channel } = this.ctx
    this.router.removeEventListener('peer:disconnect', this.onDisconnect)
    this.router.unhandleData(channel)
    this.router.unhandle(type, { path })
    this.sender.stop(new BulkCancelledError('the bulk service stopped'))
    for (const d of this.downloads.values()) d.stop()
  }

  isStarted(): boolean {
    return this.started
  }

  private assertStarted(): void {
    if (!this.started) throw new BulkCancelledError('expected a started bulk service, got a stopped one')
  }

  stats(): BulkStats {
    return { ...this.statsObj, offers: this.sender.size, transfers: this.downloads.size }
  }

  addEventListener<K extends keyof BulkTransferEvents>(type: K, listener: (evt: BulkTransferEvents[K]) => void, options?: { once?: boolean; signal?: AbortSignal }): void {
    this.events.addEventListener(type, listener as (evt: Event) => void, options)
  }

  removeEventListener<K extends keyof BulkTransferEvents>(type: K, listener: (evt: BulkTransferEvents[K]) => void): void {
    this.events.removeEventListener(type, listener as (evt: Event) => void)
  }

  // -------------------------------------------------------------- sending

  async offer(source: BulkSource, options: OfferOptions = {}): Promise<OutgoingOffer> {
    this.assertStarted()
    return this.sender.createOffer(source, options)
  }

  async push(to: string, source: BulkSource, options: OfferOptions = {}): Promise<BulkSendResult> {
    this.assertStarted()
    if (typeof to !== 'string' || to.length === 0 || to.startsWith('did:')) throw new InvalidParametersError(`expected the receiver's authority, got ${String(to)}`)
    const known = this.router.didOf(to)
    const offer = await this.sender.createOffer(source, { ...options, ...(known === undefined ? {} : { to: known }) })
    this.sender.bindReceiver(offer.id, undefined, to)
    try {
      const { data, response } = await controlRequest(this.ctx, to, this.sender.offerData(offer.id), 'offer', options.signal)
      const d = data as Record<string, KLPValue> | null
      if (d === null || typeof d !== 'object' || d.op !== 'accept') throw new InvalidBulkMessageError(`expected an accept answer, got ${describeValue(d?.op)}`)
      this.sender.bindReceiver(offer.id, didOfKeyId(response.signer), to)
    } catch (err) {
      // refused: the receiver has nothing to stop; otherwise (no answer) it may have started: tell it
      if (err instanceof BulkRejectedError || err instanceof BulkOfferTooLargeError || err instanceof BulkBusyError) this.sender.discard(offer.id, err)
      else await offer.cancel()
      throw err
    }
    return offer.done
  }

  // -------------------------------------------------------------- receiving

  async receive(from: string, id: string, options: ReceiveOptions): Promise<BulkReceiveResult> {
    this.assertStarted()
    if (typeof from !== 'string' || from.length === 0 || from === this.router.authority) throw new InvalidParametersError(`expected another node's authority, got ${String(from)}`)
    this.checkReceiveOptions(options)
    const idBytes = idFromHex(id)
    if (this.downloads.size >= this.maxTransfers) throw new BulkBusyError(`expected fewer than ${this.maxTransfers} transfers at once, got ${this.downloads.size}`)
    const { data, response } = await controlRequest(this.ctx, from, { op: 'get', id: idBytes }, 'offer', options.signal)
    const m = parseControl(data, { maxChunkSize: this.maxChunkSize })
    if (m.op !== 'offer' || m.offer.id !== id) throw new InvalidBulkMessageError(`expected offer ${id}, got ${m.op === 'offer' ? `offer ${m.offer.id}` : m.op}`)
    const senderDid = didOfKeyId(response.signer)
    const tooLarge = this.tooLarge(m.offer, options.maxBytes ?? this.maxBytes)
    if (tooLarge !== undefined) {
      // refused before anything is transferred; the sender learns it at once
      void controlSend(this.ctx, from, { op: 'done', id: idBytes, stream: 0, ok: false, code: BulkReason.TOO_LARGE })
      throw tooLarge
    }
    return this.startDownload(m.offer, senderDid, from, options)
  }

  /** The error for an offer over this receiver's limits (bytes, chunks), or undefined. */
  private tooLarge(offer: BulkOfferInfo, maxBytes: number): BulkOfferTooLargeError | undefined {
    if (offer.size > maxBytes) return new BulkOfferTooLargeError(`expected an offer of at most ${maxBytes} bytes, got ${offer.size}`)
    if (offer.chunks > this.maxChunks) return new BulkOfferTooLargeError(`expected an offer of at most ${this.maxChunks} chunks, got ${offer.chunks}`)
    return undefined
  }

  private checkReceiveOptions(options: ReceiveOptions): void {
    const sink = options?.sink
    if (sink === null || typeof sink !== 'object' || typeof sink.write !== 'function' || typeof sink.commit !== 'function' || typeof sink.abort !== 'function') {
      throw new InvalidParametersError('expected options.sink to be a BulkSink { write, commit, abort }')
    }
    if (options.window !== undefined) positive('window', options.window, this.window, MAX_PULL_CHUNKS)
    if (options.maxBytes !== undefined && (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 0)) throw new InvalidParametersError(`expected maxBytes >= 0, got ${String(options.maxBytes)}`)
  }

  /** Registers the transfer now (it counts against `maxTransfers` at once) and runs it. */
  private startDownload(offer: BulkOfferInfo, senderDid: string, senderAuthority: string, options: ReceiveOptions): Promise<BulkReceiveResult> {
    if (this.downloads.size >= this.maxTransfers) return Promise.reject(new BulkBusyError(`expected fewer than ${this.maxTransfers} transfers at once, got ${this.downloads.size}`))
    let stream = this.nextStream
    while (this.downloads.has(stream)) stream = (stream + 1) >>> 0
    this.nextStream = (stream + 1) >>> 0
    const d = new Download(this.ctx, this.receiverLimits, offer, senderDid, senderAuthority, stream, options)
    this.downloads.set(stream, d)
    this.statsObj.transfers = this.downloads.size
    return d.run().finally(() => {
      this.downloads.delete(stream)
      this.statsObj.transfers = this.downloads.size
    })
  }

  // -------------------------------------------------------------- inbound

  private readonly onData = (peer: string, data: Uint8Array): void => {
    const h = readDataHeader(data)
    const d = h === undefined ? undefined : this.downloads.get(h.stream)
    if (h === undefined || d === undefined) {
      this.statsObj.framesIgnored++
      return
    }
    d.onChunk(peer, h.epoch, h.index, new Uint8Array(data.buffer, data.byteOffset + DATA_HEADER_BYTES, data.byteLength - DATA_HEADER_BYTES))
  }

  private readonly onDisconnect = (evt: CustomEvent<PeerInfo>): void => {
    const did = evt.detail.did
    this.sender.onDisconnect(did)
    for (const d of this.downloads.values()) d.onDisconnect(did)
  }

  private async respond(msg: KLPMessage, data: KLPValue): Promise<ProcessingResult> {
    return { status: ProcessingStatus.PROCESSED, response: await this.router.createResponse(msg, data, { priority: MessagePriority.HIGH }) }
  }

  private readonly onMessage = async (msg: KLPMessage, mctx: MessageContext): Promise<ProcessingResult> => {
    // a response that arrived after its request gave up: nothing to do
    if (msg.metadata.correlation_id !== undefined) return { status: ProcessingStatus.PROCESSED }
    let m
    try {
      m = parseControl(msg.payload.data, { maxChunkSize: this.maxChunkSize })
    } catch (err) {
      this.ctx.log.debug('bulk control message refused', { err: err instanceof Error ? err.name : '' })
      return { status: ProcessingStatus.REJECTED, reason: BulkReason.INVALID }
    }
    const did = mctx.signerDid
    const authority = msg.source.authority
    try {
      switch (m.op) {
        case 'get':
          return await this.respond(msg, this.sender.onGet(did, m.id))
        case 'leaves':
          return await this.respond(msg, this.sender.onLeaves(did, m.id, m.page))
        case 'pull':
          this.sender.onPull(did, authority, m.id, m.stream, m.epoch, m.ranges)
          return { status: ProcessingStatus.PROCESSED }
        case 'done':
          this.sender.onDone(did, m.id, m.stream, m.ok, m.code)
          return await this.respond(msg, { op: 'ack', id: idFromHex(m.id) })
        case 'cancel':
          for (const d of this.downloads.values()) if (d.offer.id === m.id && d.senderDid === did) d.onRemoteCancel(m.code)
          return { status: ProcessingStatus.PROCESSED }
        case 'offer':
          return await this.onIncomingOffer(msg, did, authority, m.offer)
      }
    } catch (err) {
      this.ctx.log.debug('bulk control message failed', { op: m.op, err: err instanceof Error ? err.name : '' })
      // one-way messages get no answer
      if (m.op === 'pull' || m.op === 'cancel') return { status: ProcessingStatus.PROCESSED }
      return { status: ProcessingStatus.REJECTED, reason: reasonOf(err) }
    }
  }

  private async onIncomingOffer(msg: KLPMessage, did: string, authority: string, offer: BulkOfferInfo): Promise<ProcessingResult> {
    const refuse = (reason: string): ProcessingResult => ({ status: ProcessingStatus.REJECTED, reason })
    if (this.onOffer === undefined) return refuse(BulkReason.REFUSED)
    if (this.tooLarge(offer, this.maxBytes) !== undefined) return refuse(BulkReason.TOO_LARGE)
    if (this.downloads.size >= this.maxTransfers) return refuse(BulkReason.BUSY)
    const result = deferred<BulkReceiveResult>()
    let chosen: ReceiveOptions | undefined
    let refused: string | undefined
    const incoming: IncomingOffer = {
      ...offer,
      from: authority,
      fromDid: did,
      accept: (options) => {
        if (chosen !== undefined || refused !== undefined) throw new InvalidParametersError('expected accept() or reject() once per offer')
        this.checkReceiveOptions(options)
        chosen = options
        return result.promise
      },
      reject: (reason) => {
        if (chosen !== undefined || refused !== undefined) return
        refused = typeof reason === 'string' && REASON_RE.test(reason) ? reason : BulkReason.REFUSED
      },
    }
    try {
      await this.onOffer(incoming)
    } catch (err) {
      this.ctx.log.warn('bulk onOffer failed', { err: err instanceof Error ? err.name : '' })
      refused ??= BulkReason.REFUSED
      chosen = undefined
    }
    if (chosen === undefined || refused !== undefined) {
      const reason = refused ?? BulkReason.REFUSED
      result.reject(new BulkRejectedError(`offer ${offer.id} refused (${reason})`, reason))
      return refuse(reason)
    }
    const tooLarge = this.tooLarge(offer, chosen.maxBytes ?? this.maxBytes)
    if (tooLarge !== undefined) {
      result.reject(tooLarge)
      return refuse(BulkReason.TOO_LARGE)
    }
    if (this.downloads.size >= this.maxTransfers) {
      result.reject(new BulkBusyError(`expected fewer than ${this.maxTransfers} transfers at once`))
      return refuse(BulkReason.BUSY)
    }
    this.startDownload(offer, did, authority, chosen).then(result.resolve, result.reject)
    return this.respond(msg, { op: 'accept', id: idFromHex(offer.id) })
  }
}

/** js-libp2p style factory: `bulkTransfer(init)(components)`. Nothing happens before `start()`. */
export function bulkTransfer(init: BulkTransferInit): (components: BulkTransferComponents) => BulkTransfer {
  return (components) => new BulkService(init, components)
}
