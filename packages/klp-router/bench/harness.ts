/**
 * The pipeline harness the benchmarks share: pre-signed frames fed through a router's whole inbound
 * path by a hand-written connection (its cost counts as the router's), batch by batch.
 */
import { generateIdentity, type Identity } from '@kos-mesh/did-security'
import { KLPMessageType, ProcessingStatus, type Connection, type ProcessingResult, type SignatureVerifier, type Transport, type TrustEngine, type TrustRequirements } from '@kos-mesh/interface'
import { createMessage, getSigningInput, signMessage, encodeMessage, decodeMessage } from '@kos-mesh/klp-codec'
import { klpRouter, type Router } from '../src/router.js'
import { EnvelopeKind, encodeEnvelope } from '../src/envelope.js'

export const BATCH = 64
/** Distinct signed frames; a pipeline is rebuilt (fresh replay window) each time it wraps around. */
export const POOL = 8192

/**
 * A connection fed by the benchmark: frames pushed in are read by the router's read loop. Its
 * iterator is hand-written (a resolved promise per queued frame, no async generator) so that the
 * feed costs as little as possible: its cost is counted as the router's.
 */
export class FeedConnection implements Connection {
  readonly id = 'bench-feed'
  readonly direction = 'inbound' as const
  readonly remoteAddr = 'bench://feed'
  status: 'open' | 'closing' | 'closed' = 'open'
  readonly closed: Promise<void>
  private closeResolve!: () => void
  private queue: Uint8Array[] = []
  private head = 0
  private wake: ((r: IteratorResult<Uint8Array>) => void) | undefined
  constructor(readonly remotePeer: string) {
    this.closed = new Promise((r) => { this.closeResolve = r })
  }
  push(frames: readonly Uint8Array[]): void {
    let i = 0
    if (this.wake !== undefined && frames.length > 0) {
      const w = this.wake
      this.wake = undefined
      w({ value: frames[i++]!, done: false })
    }
    for (; i < frames.length; i++) this.queue.push(frames[i]!)
  }
  async send(): Promise<void> {}
  async close(): Promise<void> { this.abort() }
  abort(): void {
    this.status = 'closed'
    const w = this.wake
    this.wake = undefined
    w?.({ value: undefined, done: true })
    this.closeResolve()
  }
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => {
        if (this.head < this.queue.length) {
          const value = this.queue[this.head++]!
          if (this.head === this.queue.length) { this.queue = []; this.head = 0 }
          return Promise.resolve({ value, done: false })
        }
        if (this.status !== 'open') return Promise.resolve({ value: undefined, done: true })
        return new Promise((r) => { this.wake = r })
      },
    }
  }
}

export function feedTransport(onListen: (h: (c: Connection) => void) => void): Transport {
  return {
    name: 'bench',
    canDial: (a) => a.startsWith('bench://'),
    dial: async () => { throw new Error('not dialable') },
    listen: async (_a, handler) => { onListen(handler); return { addrs: () => ['bench://feed'], close: async () => {} } },
    close: async () => {},
  }
}

export interface Pipeline {
  /** Pushes one batch of BATCH frames and resolves when all were dispatched to the handler. */
  step(): Promise<void>
  stop(): Promise<void>
}

/** One router fed by a FeedConnection; a new one (fresh replay window) each time the pool wraps. */
export async function pipeline(verifier: SignatureVerifier, frames: Uint8Array[], senderDid: string, options: { trustEngine?: () => TrustEngine; node?: Identity } = {}): Promise<Pipeline> {
  let processed = 0
  let target = 0
  let waiter: (() => void) | undefined
  const handler = (): ProcessingResult => {
    processed++
    if (processed === target) waiter?.()
    return OK
  }
  const node = options.node ?? generateIdentity()
  async function build(): Promise<{ router: Router; conn: FeedConnection }> {
    let onConn!: (c: Connection) => void
    const router = klpRouter({ authority: 'bench.mesh.kai', listen: ['bench://feed'], rateLimit: false, maxQueuePerPeer: 4096, maxQueueTotal: 8192, replayCacheSize: POOL * 2, replayQuotaPerSigner: POOL * 2, replayStrangerEntries: POOL * 2, replayQuotaPerStranger: POOL * 2, acceptBeforeStart: true })({
      signer: node.signer,
      signatureVerifier: verifier,
      transports: [feedTransport((h) => { onConn = h })],
      ...(options.trustEngine === undefined ? {} : { trustEngine: options.trustEngine() }),
    })
    router.handle(KLPMessageType.VECTOR_SYNC, handler)
    await router.start()
    const conn = new FeedConnection(senderDid)
    onConn(conn)
    return { router, conn }
  }
  let cur = await build()
  let next = 0
  const checkRejects = (r: Router): void => {
    const rejected = Object.values(r.metrics().rejects).reduce((a, b) => a + b, 0)
    if (rejected > 0) throw new Error(`pipeline rejected ${rejected} frames: ${JSON.stringify(r.metrics().rejects)}`)
  }
  return {
    async step() {
      if (next + BATCH > frames.length) {
        checkRejects(cur.router)
        await cur.router.stop()
        cur = await build()
        next = 0
      }
      target = processed + BATCH
      const done = new Promise<void>((r) => { waiter = r })
      cur.conn.push(frames.slice(next, next + BATCH))
      next += BATCH
      await done
      waiter = undefined
    },
    async stop() {
      checkRejects(cur.router)
      await cur.router.stop()
    },
  }
}
const OK: ProcessingResult = { status: ProcessingStatus.PROCESSED }

export interface Pool {
  frames: Uint8Array[]
  did: string
  /** The exact signing inputs (codec getSigningInput of the decoded frame) and signatures. */
  inputs: Uint8Array[]
  sigs: Uint8Array[]
  publicKey: Uint8Array
}

/** `n` signed VECTOR_SYNC frames of ~450 bytes (signed by `options.identity`, asking `options.trustRequirements`). */
export async function makeFrames(n: number, options: { identity?: Identity; trustRequirements?: TrustRequirements } = {}): Promise<Pool> {
  const id = options.identity ?? generateIdentity()
  const frames: Uint8Array[] = []
  const inputs: Uint8Array[] = []
  const sigs: Uint8Array[] = []
  const now = Date.now()
  for (let i = 0; i < n; i++) {
    const msg = await signMessage(createMessage({
      type: KLPMessageType.VECTOR_SYNC,
      source: 'klp://sender.mesh.kai/agents/a',
      target: 'klp://bench.mesh.kai/services/vector',
      data: { seq: i, text: 'x'.repeat(300), vec: new Uint8Array(64) },
      timestamp: now,
      ttl: 3600,
      ...(options.trustRequirements === undefined ? {} : { trust_requirements: options.trustRequirements }),
    }), id.signer)
    const body = encodeMessage(msg)
    frames.push(encodeEnvelope(EnvelopeKind.MESSAGE, 0, 0, body))
    inputs.push(getSigningInput(decodeMessage(body)))
    sigs.push(msg.signature)
  }
  return { frames, did: id.did, inputs, sigs, publicKey: id.publicKey }
}

