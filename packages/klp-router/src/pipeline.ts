/**
 * The pipeline: queued messages run through the stages (src/stages) in pipeline slots, at most
 * `concurrency` at once, in time slices with peers taking turns at each expensive step. This file
 * only sequences the stages and acts on their verdicts. Internal.
 */
import { KLPMessageType, ProcessingStatus, TrustObservation, type MessageContext } from '@kos-mesh/interface'
import type { QueueItem, RouterCore, Slot } from './core.js'
import type { Forwarding } from './forwarding.js'
import { errName } from './messages.js'
import type { Responder } from './responder.js'
import type { Grant, Slicer } from './slicer.js'
import {
  checkBeforeStart,
  checkExpiry,
  checkRevoked,
  checkSeen,
  checkSignature,
  checkSource,
  checkTrust,
  findHandler,
  matchResponse,
  record,
  runHandler,
  REJECT,
  type Reject,
} from './stages/index.js'
import { RejectReason } from './reasons.js'

/** Pipeline slots no single peer may take (see `Pipeline.maxPerPeer`). */
const RESERVED_SLOTS = 4

export class Pipeline {
  private active = 0
  /** Free pipeline slots of the current generation, and all of them (aborted on stop). */
  private freeSlots: Slot[] = []
  private allSlots: Slot[] = []
  /** A pump was cut short by the slice and waits for the next one. */
  private pumpDeferred = false
  /** Called after items left the queue (the read loops waiting for room look again). */
  onDequeue: () => void = () => {}
  /** Slots in use per peer (messages from connections). */
  private readonly inFlight = new Map<string, number>()
  /**
   * Slots one peer may hold: all but a few (`RESERVED_SLOTS`), and those few only go to peers with
   * no message in the pipeline, so a peer that sends one message at a time always finds a slot,
   * whatever a flood (from one DID or many) holds.
   */
  private readonly maxPerPeer: number
  private readonly atCap = (peer: string): boolean => {
    const n = this.inFlight.get(peer) ?? 0
    if (n >= this.maxPerPeer || (n > 0 && this.active >= this.maxPerPeer)) return true
    // a peer over its CPU budget gets no slot while other messages are in the pipeline: its steps
    // would only wait at the gate, holding slots (the reserved ones too) that a light peer needs;
    // its messages wait in the queue (bounded) and start when its share decayed or the pipeline emptied
    const shares = this.core.shares
    return this.active > 0 && shares.anyPaused && shares.wasPaused(peer)
  }

  constructor(
    private readonly core: RouterCore,
    private readonly slicer: Slicer,
    private readonly forwarding: Forwarding,
    private readonly responder: Responder,
  ) {
    this.maxPerPeer = Math.max(1, core.cfg.concurrency - RESERVED_SLOTS)
    slicer.onSliceEnd = () => {
      if (this.pumpDeferred) {
        this.pumpDeferred = false
        this.pump()
      }
    }
  }

  /** Slots in use by a peer's messages. */
  inFlightOf(peer: string): number {
    return this.inFlight.get(peer) ?? 0
  }

  /** Queues a message (or starts it at once when nothing waits, a slot is free and the slice has time). */
  enqueue(item: QueueItem): boolean {
    const core = this.core
    if (core.queue.size === 0 && this.active < core.cfg.concurrency && !this.slicer.spent() && (item.conn === undefined || !this.atCap(item.fromPeer))) {
      this.start1(item)
      return true
    }
    const r = core.queue.push(item.fromPeer, item.msg.metadata.priority, item, item.conn !== undefined && !core.isKnown(item.fromPeer))
    if (r !== 'ok') {
      if (item.conn !== undefined) core.reject(RejectReason.QUEUE_FULL, item.fromPeer, item.msg.metadata.message_id)
      return false
    }
    this.pump()
    return true
  }

  private pump(): void {
    if (this.pumpDeferred) return
    const core = this.core
    while (this.active < core.cfg.concurrency && core.queue.size > 0) {
      if (this.slicer.spent()) {
        this.pumpDeferred = true
        return
      }
      const item = core.queue.shift(this.inFlight.size === 0 ? undefined : this.atCap)
      if (item === undefined) break
      this.start1(item)
    }
    this.onDequeue()
  }

  private start1(item: QueueItem): void {
    let slot = this.freeSlots.pop()
    if (slot === undefined) {
      const controller = new AbortController()
      slot = { controller, options: { signal: controller.signal }, gen: this.core.gen }
      this.allSlots.push(slot)
    }
    this.active++
    if (item.conn !== undefined) this.inFlight.set(item.fromPeer, (this.inFlight.get(item.fromPeer) ?? 0) + 1)
    void this.process(item, slot)
  }

  private release(slot: Slot, item: QueueItem): void {
    this.active--
    if (item.conn !== undefined) {
      const n = (this.inFlight.get(item.fromPeer) ?? 1) - 1
      if (n > 0) this.inFlight.set(item.fromPeer, n)
      else this.inFlight.delete(item.fromPeer)
    }
    if (slot.gen === this.core.gen) this.freeSlots.push(slot)
    if (this.core.queue.size > 0) this.pump()
  }

  /**
   * Waits for the gate (see Slicer): the grant to pass to `slicer.done()` once the step's work is
   * over, or 0 when the router stopped meanwhile.
   */
  private async step(peer: string, slot: Slot): Promise<Grant> {
    const t = this.slicer.turn(peer)
    const g = typeof t === 'number' ? t : await t
    if (slot.gen === this.core.gen) return g
    this.slicer.done(g)
    return 0
  }

  /** Aborts every slot and forgets them (stop). */
  stop(reason: Error): void {
    for (const slot of this.allSlots) slot.controller.abort(reason)
    this.allSlots = []
    this.freeSlots = []
    this.inFlight.clear()
    this.pumpDeferred = false
    this.slicer.releaseAll()
  }

  /** A message from a peer failed its signature check: rejected, and a forgery is blamed on the peer that sent it. */
  private badSignature(v: Reject, fromPeer: string, id: string): void {
    this.core.reject(v.reason, fromPeer, id)
    if (v === REJECT.INVALID_SIGNATURE) this.core.observe(fromPeer, TrustObservation.FORGED_MESSAGE)
  }

  /** The stages for one queued message. Never rejects (a failure is logged); releases its slot. */
  private async process(item: QueueItem, slot: Slot): Promise<void> {
    const core = this.core
    /** The gate grant held by this message's current step (0: none). */
    let grant: Grant = 0
    try {
      const msg = item.msg
      const fromPeer = item.fromPeer
      const id = msg.metadata.message_id
      const fromPeerConn = item.conn !== undefined
      let v = checkExpiry(core, msg, core.clock.now())
      if (v !== undefined) return core.reject(v.reason, fromPeer, id)
      const signerDid = core.didOf(msg.signer)
      // a revoked signer costs one lookup: not verified, not forwarded, not relayed. This node's own
      // messages pass: a node that revoked its own key must still get that revocation out (its
      // peers refuse anything else it sends)
      if (fromPeerConn && (v = checkRevoked(core, signerDid)) !== undefined) return core.reject(v.reason, fromPeer, id)
      const isBroadcast = msg.type === KLPMessageType.BROADCAST_ANNOUNCE
      if (!isBroadcast && msg.target.authority !== core.authority) {
        // forwarders do not suppress duplicates: a retried request must reach its target, which answers from its cache
        if (fromPeerConn) {
          if ((grant = await this.step(fromPeer, slot)) === 0) return
          const s = await checkSignature(core, msg, slot)
          this.slicer.done(grant)
          grant = 0
          if (s === null) return
          if (s !== undefined) return this.badSignature(s, fromPeer, id)
        }
        await this.forwarding.forward(item)
        return
      }
      if (fromPeerConn && (v = checkBeforeStart(core, msg)) !== undefined) return core.reject(v.reason, fromPeer, id)
      const key = `${signerDid} ${id}`
      if ((v = checkSeen(core, key)) !== undefined) return core.reject(v.reason, fromPeer, id)
      if (fromPeerConn) {
        if ((grant = await this.step(fromPeer, slot)) === 0) return
        const s = await checkSignature(core, msg, slot)
        // while the slice has time, the grant is kept through the (synchronous, cheap) checks up to
        // the handler: a message passes the gate once, so another peer's step does not run between
        // its verify and its handler (a light peer's request would otherwise wait at the gate twice)
        if (this.slicer.spent()) {
          this.slicer.done(grant)
          grant = 0
        }
        if (s === null) return
        if (s !== undefined) return this.badSignature(s, fromPeer, id)
      }
      if ((v = checkSource(core, msg, signerDid)) !== undefined) return core.reject(v.reason, fromPeer, id)
      const expiresAt = core.expiryOf(msg)
      if ((v = record(core, key, expiresAt, signerDid)) !== undefined) return core.reject(v.reason, fromPeer, id)
      const source = msg.source.authority
      if (fromPeerConn && source !== core.authority) core.table.learn(source, fromPeer, item.hops + 1)
      if (isBroadcast) {
        this.forwarding.broadcast(item)
        if (source === core.authority) return
      }
      const tv = checkTrust(core, msg, signerDid, slot)
      if (tv instanceof Promise && grant !== 0) {
        // the gate is not held across the trust engine's I/O
        this.slicer.done(grant)
        grant = 0
      }
      const trust = tv instanceof Promise ? await tv : tv
      if (slot.gen !== core.gen) return
      if (trust !== undefined) return await this.responder.fail(msg, fromPeer, trust.reason, trust.message)
      const matched = matchResponse(core, msg, signerDid)
      if (matched === 'matched') return
      if (matched !== 'none') return core.reject(matched.reason, fromPeer, id)
      const handler = findHandler(core, msg)
      if (typeof handler !== 'function') {
        if (handler.answer) return await this.responder.fail(msg, fromPeer, handler.reason, handler.message)
        return core.reject(handler.reason, fromPeer, id)
      }
      if (isBroadcast) core.counters.broadcastsDelivered++
      if (grant === 0 && (grant = await this.step(fromPeer, slot)) === 0) return
      const ctx: MessageContext = { fromPeer, signerDid, receivedAt: item.receivedAt, signal: slot.options.signal }
      const result = await runHandler(core, handler, msg, ctx)
      if ('answer' in result) return await this.responder.fail(msg, fromPeer, result.reason, result.message)
      const responder = this.responder
      if (result.status === ProcessingStatus.PROCESSED) {
        core.counters.processed++
        if (result.response !== undefined) responder.respond(msg, result.response, expiresAt)
      } else if (result.status === ProcessingStatus.DEFERRED) {
        core.counters.deferred++
        const reason = result.reason ?? 'deferred'
        const response = result.response ?? (await responder.errorResponse(msg, reason, 'try again later', 'deferred', result.retry_after))
        if (response !== undefined) responder.respond(msg, response, expiresAt)
      } else {
        const reason = result.reason ?? 'rejected'
        core.reject(reason, fromPeer, id)
        const response = result.response ?? (await responder.errorResponse(msg, reason, `rejected: ${reason}`, 'rejected'))
        if (response !== undefined) responder.respond(msg, response, expiresAt)
      }
    } catch (err) {
      core.log.error('pipeline failure', { err: errName(err) })
    } finally {
      // the handler step holds the gate until its response is out (signing and sending are its cost)
      this.slicer.done(grant)
      this.release(slot, item)
    }
  }
}
