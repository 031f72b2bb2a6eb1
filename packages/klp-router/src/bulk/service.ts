/**
 * `bulkTransfer(init)(components)`: payloads larger than one frame between two routers, pulled by
 * the receiver in chunks checked against a hash tree from a signed offer. Control messages are
 * signed KLP messages of the embedder's type at `path`; chunks are unsigned data frames on one
 * data channel of a direct connection (see wire.ts for the formats, tree.ts for the tree). This
 * module is the service shell: lifecycle, the public calls, and routing of inbound control
 * messages and data frames to the sender (sender.ts) and the transfers (receiver.ts).
 */
import { randomInt } from 'node:crypto'
import {
  InvalidParametersError,
  describeValue,
  didOfKeyId,
  MessagePriority,
  ProcessingStatus,
  silentLogger,
  systemClock,
  type KLPMessage,
  type KLPValue,
  type MessageContext,
  type PeerInfo,
  type ProcessingResult,
} from '@kos-mesh/interface'
import type { Router } from '../types.js'
import type { BulkTransfer, BulkTransferComponents, BulkTransferEvents, BulkTransferInit, IncomingOffer } from './api.js'
import { controlRequest, controlSend, deferred, newStats, type BulkContext, type BulkStats } from './context.js'
import { BulkBusyError, BulkCancelledError, BulkOfferTooLargeError, BulkReason, BulkRejectedError, InvalidBulkMessageError, reasonOf } from './errors.js'
import { Download, type BulkReceiveResult, type ReceiveOptions, type ReceiverLimits } from './receiver.js'
import { BulkSender, type BulkSendResult, type OfferOptions, type OutgoingOffer } from './sender.js'
import { bulkSettings, positive } from './settings.js'
import type { BulkSource } from './source.js'
import { MAX_PULL_CHUNKS, idFromHex, parseControl, readDataHeader, DATA_HEADER_BYTES, type BulkOfferInfo } from './wire.js'

export { DEFAULT_BULK_CHANNEL, DEFAULT_BULK_PATH } from './api.js'
export type { BulkTransfer, BulkTransferComponents, BulkTransferEvents, BulkTransferInit, IncomingOffer } from './api.js'

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
  private readonly receiverLimits: ReceiverLimits
  private readonly onOffer: BulkTransferInit['onOffer']
  private nextStream = randomInt(0x7fffffff)
  private started = false

  constructor(init: BulkTransferInit, components: BulkTransferComponents) {
    const s = bulkSettings(init, components)
    this.router = components.router
    this.maxChunkSize = s.maxChunkSize
    this.maxChunks = s.maxChunks
    this.maxBytes = s.maxBytes
    this.window = s.window
    this.maxTransfers = s.maxTransfers
    this.receiverLimits = s.receiver
    this.onOffer = init.onOffer
    const events = this.events
    this.ctx = {
      router: this.router,
      clock: components.clock ?? systemClock,
      log: components.logger ?? silentLogger,
      type: init.type,
      path: s.path,
      channel: s.channel,
      requestTimeoutMs: s.requestTimeoutMs,
      stats: this.statsObj,
      emit: (p) => {
        events.dispatchEvent(new CustomEvent('progress', { detail: p }))
      },
    }
    this.sender = new BulkSender(this.ctx, s.sender)
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
    // a view after the header, in the frame: the pooled leaf hash may overwrite the header's last byte (already read here)
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
