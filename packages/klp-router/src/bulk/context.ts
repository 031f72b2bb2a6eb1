/**
 * What the sender and receiver halves of the bulk service share: the router, the clock, the
 * control-message helpers (signed requests and one-way messages at the service's path), counters
 * and progress events. Internal.
 */
import {
  AbortError,
  MessagePriority,
  type Clock,
  type KLPMessage,
  type KLPMessageType,
  type KLPValue,
  type Logger,
} from '@kos-mesh/interface'
import type { Router } from '../types.js'
import { BulkTimeoutError, BulkUnreachableError, errorForReason } from './errors.js'

/** Progress of one transfer, on either side. */
export interface BulkProgress {
  id: string
  /** `in`: this node receives (bytes verified); `out`: this node sends (bytes handed to the connection). */
  direction: 'in' | 'out'
  /** The other side's DID. */
  peer: string
  bytes: number
  total: number
  /** Chunks verified (in) or sent (out). */
  chunks: number
  totalChunks: number
}

/** Counters of one bulk service (`stats()`). */
export interface BulkStats {
  /** Offers alive on this node (sender side). */
  offers: number
  /** Transfers running on this node (receiver side). */
  transfers: number
  /** Data frames (chunks) handed to the router / their payload bytes. */
  chunksSent: number
  bytesSent: number
  /** Chunks received that matched their leaf, and their bytes. */
  chunksReceived: number
  bytesReceived: number
  /** Chunks taken from a sink's earlier attempt (resume across processes). */
  chunksResumed: number
  /** Chunks that failed their leaf hash. */
  chunksRejected: number
  /** Data frames dropped: not requested, from another peer, of an older epoch, of no transfer. */
  framesIgnored: number
  /** Pull messages sent / received. */
  pullsSent: number
  pullsReceived: number
  /** Most bytes one transfer had reserved (requested, arriving, waiting to be hashed) at once. */
  maxWindowBytes: number
}

export function newStats(): BulkStats {
  return { offers: 0, transfers: 0, chunksSent: 0, bytesSent: 0, chunksReceived: 0, bytesReceived: 0, chunksResumed: 0, chunksRejected: 0, framesIgnored: 0, pullsSent: 0, pullsReceived: 0, maxWindowBytes: 0 }
}

export interface BulkContext {
  readonly router: Router
  readonly clock: Clock
  readonly log: Logger
  readonly type: KLPMessageType
  readonly path: string
  readonly channel: number
  readonly requestTimeoutMs: number
  readonly stats: BulkStats
  emit(progress: BulkProgress): void
}

function errName(err: unknown): string {
  return err instanceof Error ? err.name : ''
}

/** Maps a router error of a control request to a bulk error. */
export function mapRequestError(err: unknown, what: string): Error {
  const name = errName(err)
  if (name === 'RemoteRejectedError' || name === 'RequestDeferredError') {
    const reason = (err as { reason?: unknown }).reason
    return errorForReason(typeof reason === 'string' ? reason : 'unknown', `${what}: refused by the peer (${String(reason)})`)
  }
  if (name === 'RequestTimeoutError') return new BulkTimeoutError(`${what}: no answer in time`, { cause: err })
  if (name === 'NoRouteError') return new BulkUnreachableError(`${what}: no route to the peer`, { cause: err })
  if (err instanceof AbortError || name === 'AbortError') return err as Error
  return err instanceof Error ? err : new Error(String(err))
}

/** A signed request at the service's path; resolves with the response's data. */
export async function controlRequest(ctx: BulkContext, authority: string, data: Record<string, KLPValue>, what: string, signal?: AbortSignal): Promise<{ data: KLPValue; response: KLPMessage }> {
  try {
    const response = await ctx.router.request(
      { type: ctx.type, target: `klp://${authority}${ctx.path}`, sourcePath: ctx.path, priority: MessagePriority.HIGH, data },
      { timeoutMs: ctx.requestTimeoutMs, ...(signal === undefined ? {} : { signal }) },
    )
    return { data: response.payload.data, response }
  } catch (err) {
    throw mapRequestError(err, what)
  }
}

/** A signed one-way message at the service's path (best effort: failures are logged). */
export async function controlSend(ctx: BulkContext, authority: string, data: Record<string, KLPValue>): Promise<boolean> {
  try {
    await ctx.router.send({ type: ctx.type, target: `klp://${authority}${ctx.path}`, sourcePath: ctx.path, priority: MessagePriority.HIGH, data })
    return true
  } catch (err) {
    ctx.log.debug('bulk control message not sent', { op: String(data.op), to: authority, err: errName(err) })
    return false
  }
}

/** A promise with its settle functions; rejections are marked handled (callers may ignore them). */
export interface Deferred<T> {
  promise: Promise<T>
  resolve(v: T): void
  reject(e: Error): void
  settled: boolean
}

export function deferred<T>(): Deferred<T> {
  let res!: (v: T) => void
  let rej!: (e: Error) => void
  const promise = new Promise<T>((a, b) => {
    res = a
    rej = b
  })
  promise.catch(() => {})
  const d: Deferred<T> = {
    promise,
    settled: false,
    resolve(v) {
      if (d.settled) return
      d.settled = true
      res(v)
    },
    reject(e) {
      if (d.settled) return
      d.settled = true
      rej(e)
    },
  }
  return d
}

/** A FIFO byte budget: `acquire(n)` waits while `used + n > max` (one request always fits when nothing is used). */
export class ByteGate {
  private used = 0
  private readonly waiters: Array<{ n: number; go: () => void }> = []
  constructor(readonly max: number) {}

  get inUse(): number {
    return this.used
  }

  acquire(n: number): Promise<void> | undefined {
    if (this.waiters.length === 0 && (this.used === 0 || this.used + n <= this.max)) {
      this.used += n
      return undefined
    }
    return new Promise<void>((go) => this.waiters.push({ n, go }))
  }

  release(n: number): void {
    this.used -= n
    while (this.waiters.length > 0) {
      const w = this.waiters[0]!
      if (this.used !== 0 && this.used + w.n > this.max) break
      this.waiters.shift()
      this.used += w.n
      w.go()
    }
  }
}
