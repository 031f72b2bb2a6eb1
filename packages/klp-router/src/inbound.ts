/**
 * The inbound side of a connection: every frame goes through the first stages (envelope and size,
 * rate, decode) into the fair queue; hellos go to the hello module, data frames to their
 * channel's handler. With backpressure (the default), a peer over its rate or queue bound (a
 * stranger's: or the strangers' shared one) is not
 * read until it has room again (and one over its CPU budget until its share decays), so the
 * transport pauses its socket. Internal.
 */
import { InvalidParametersError, TrustObservation, type Connection } from '@kos-mesh/interface'
import type { RouterCore } from './core.js'
import { ENVELOPE_HEADER_BYTES, ENVELOPE_MAGIC, ENVELOPE_VERSION, EnvelopeKind } from './envelope.js'
import type { Hellos } from './hello.js'
import { errName } from './messages.js'
import type { Pipeline } from './pipeline.js'
import { RejectReason } from './reasons.js'
import { REJECT, checkFrame, decodeFrame } from './stages/index.js'
import type { DataHandler } from './types.js'

export class Inbound {
  /** Read loops waiting for a peer's queue (or the total) to drain, by peer DID. */
  private readonly drainWaiters = new Map<string, Array<() => void>>()
  private readonly dataHandlers = new Map<number, DataHandler>()

  constructor(
    private readonly core: RouterCore,
    private readonly pipeline: Pipeline,
    private readonly hellos: Hellos,
  ) {
    pipeline.onDequeue = () => this.wakeReaders()
  }

  handleData(channel: number, handler: DataHandler): void {
    if (!Number.isInteger(channel) || channel < 0 || channel > 0xffff) throw new InvalidParametersError(`expected a channel in 0..65535, got ${channel}`)
    if (this.dataHandlers.has(channel)) throw new InvalidParametersError(`expected no handler on data channel ${channel}, got one already registered`)
    this.dataHandlers.set(channel, handler)
  }

  unhandleData(channel: number): void {
    this.dataHandlers.delete(channel)
  }

  /**
   * Entry point of every inbound frame. Synchronous and exception-free: anything wrong is a typed
   * reject in the metrics.
   */
  onFrame(conn: Connection, frame: Uint8Array): void {
    const core = this.core
    const c = core.counters
    c.messagesIn++
    c.bytesIn += frame.byteLength
    const from = conn.remotePeer
    if (frame[2] === EnvelopeKind.DATA && frame.byteLength >= ENVELOPE_HEADER_BYTES && frame.byteLength <= core.cfg.maxFrameBytes) return this.onData(from, frame)
    const now = core.clock.now()
    const v = checkFrame(core, from, frame, now)
    if (v !== undefined) return this.refuse(v.reason, from)
    if (frame[2] === EnvelopeKind.HELLO) {
      void this.hellos.receive(conn, frame).catch((err: unknown) => core.log.error('hello failure', { err: errName(err) }))
      return
    }
    const msg = decodeFrame(core, frame)
    if ('reason' in msg && 'answer' in msg) return this.refuse(msg.reason, from)
    this.pipeline.enqueue({ conn, fromPeer: from, hops: frame[3]!, flags: frame[4]!, frame, msg, receivedAt: now })
  }

  /** A frame refused before the queue; a malformed one is reported to the trust engine against the peer. */
  private refuse(reason: string, from: string): void {
    this.core.reject(reason, from)
    if (reason === REJECT.MALFORMED.reason) this.core.observe(from, TrustObservation.INVALID_MESSAGE)
  }

  private onData(from: string, frame: Uint8Array): void {
    const core = this.core
    if (frame[0] !== ENVELOPE_MAGIC || frame[1] !== ENVELOPE_VERSION) return this.refuse(RejectReason.MALFORMED, from)
    const channel = (frame[3]! << 8) | frame[4]!
    const handler = this.dataHandlers.get(channel)
    if (handler === undefined) return core.reject(RejectReason.UNKNOWN_CHANNEL, from)
    core.counters.dataIn++
    try {
      handler(from, new Uint8Array(frame.buffer, frame.byteOffset + ENVELOPE_HEADER_BYTES, frame.byteLength - ENVELOPE_HEADER_BYTES))
    } catch (err) {
      core.log.warn('data handler failed', { channel, err: errName(err) })
    }
  }

  /**
   * Backpressure: waits (not reading the peer's connection) while the peer has no token left, is
   * over its CPU budget, or its queue, or the whole queue, is at its bound; the transport then
   * stops reading the socket.
   */
  async roomToRead(peer: string): Promise<void> {
    const core = this.core
    let paused = false
    for (;;) {
      if (!core.started) return
      const rate = core.cfg.rateLimit
      if (rate !== false) {
        const b = core.buckets.get(peer)
        const wait = b === undefined ? 0 : b.waitTime(core.clock.now())
        if (wait > 0) {
          await core.clock.sleep(wait, { signal: core.stopController.signal }).catch(() => {})
          continue
        }
      }
      // over its CPU budget (see CpuShares) with messages queued: not read until its share decays;
      // its bytes wait in the transport, and the pipeline works for the others meanwhile
      if (core.cfg.sliceMs !== Infinity && core.queue.peerDepth(peer) > 0 && core.shares.overBudget(peer)) {
        if (!paused) core.counters.budgetPauses++
        paused = true
        await core.clock.sleep(core.shares.waitMs(peer), { signal: core.stopController.signal }).catch(() => {})
        continue
      }
      const q = core.queue
      const max = core.cfg.maxFrameBytes
      const full = q.peerFull(peer, max) || q.size >= q.maxTotal || q.bytes + max > q.maxBytesTotal
      if (!full || q.peerDepth(peer) === 0) return
      await new Promise<void>((resolve) => {
        const list = this.drainWaiters.get(peer) ?? []
        list.push(resolve)
        this.drainWaiters.set(peer, list)
      })
    }
  }

  /** Wakes the read loops of peers whose queue (a stranger's: and the strangers') drained to half (and the total to 3/4). */
  private wakeReaders(): void {
    if (this.drainWaiters.size === 0) return
    const q = this.core.queue
    if (q.size > (q.maxTotal * 3) / 4 || q.bytes > (q.maxBytesTotal * 3) / 4) return
    for (const [peer, list] of this.drainWaiters) {
      if (q.peerFull(peer, 0, 2)) continue
      this.drainWaiters.delete(peer)
      for (const w of list) w()
    }
  }

  /** Wakes every waiting read loop (stop). */
  stop(): void {
    for (const list of this.drainWaiters.values()) for (const w of list) w()
    this.drainWaiters.clear()
  }
}
