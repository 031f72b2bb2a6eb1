/**
 * The bulk service's settings: its init options checked (typed errors, in a fixed order) and
 * filled with their defaults, split into what the sender, the receiver and both need. Internal.
 */
import { InvalidParametersError, KLPMessageType, systemClock } from '@kos-mesh/interface'
import { DEFAULT_BULK_CHANNEL, DEFAULT_BULK_PATH, type BulkTransferComponents, type BulkTransferInit } from './api.js'
import type { ReceiverLimits } from './receiver.js'
import type { SenderLimits } from './offer.js'
import { isPowerOfTwo } from './tree.js'
import { MAX_PAGE_LEAVES, MAX_PULL_CHUNKS } from './wire.js'

/** An integer in 1..max, `dflt` when undefined. */
export function positive(name: string, v: number | undefined, dflt: number, max = Number.MAX_SAFE_INTEGER): number {
  const x = v ?? dflt
  if (!Number.isSafeInteger(x) || x < 1 || x > max) throw new InvalidParametersError(`expected ${name} to be an integer in 1..${max}, got ${String(v)}`)
  return x
}

export interface BulkSettings {
  path: string
  channel: number
  maxChunkSize: number
  maxChunks: number
  maxBytes: number
  window: number
  maxTransfers: number
  requestTimeoutMs: number
  receiver: ReceiverLimits
  sender: SenderLimits
}

/** Checks `init` (and that the router has data channels); throws InvalidParametersError on the first bad value. */
export function bulkSettings(init: BulkTransferInit, components: BulkTransferComponents): BulkSettings {
  if (components?.router === undefined || typeof components.router.sendData !== 'function') throw new InvalidParametersError('expected components.router to be a klp-router Router (with data channels)')
  if (typeof init?.type !== 'string' || !(Object.values(KLPMessageType) as string[]).includes(init.type)) throw new InvalidParametersError(`expected init.type to be a KLP message type, got ${String(init?.type)}`)
  const path = init.path ?? DEFAULT_BULK_PATH
  if (typeof path !== 'string' || !path.startsWith('/') || (path.length > 1 && path.endsWith('/'))) throw new InvalidParametersError(`expected a path like /.bulk, got ${String(path)}`)
  const channel = init.channel ?? DEFAULT_BULK_CHANNEL
  if (!Number.isInteger(channel) || channel < 0 || channel > 0xffff) throw new InvalidParametersError(`expected channel in 0..65535, got ${String(channel)}`)
  const maxChunkSize = positive('maxChunkSize', init.maxChunkSize, 1024 * 1024 - 64)
  const maxChunks = positive('maxChunks', init.maxChunks, 4 * 1024 * 1024)
  const maxBytes = init.maxBytes ?? 1024 * 1024 * 1024
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new InvalidParametersError(`expected maxBytes >= 0, got ${String(init.maxBytes)}`)
  const window = positive('window', init.window, 16, MAX_PULL_CHUNKS)
  const maxTransfers = positive('maxTransfers', init.maxTransfers, 16)
  const pageLeaves = init.pageLeaves ?? 1024
  if (!isPowerOfTwo(pageLeaves) || pageLeaves > MAX_PAGE_LEAVES) throw new InvalidParametersError(`expected pageLeaves to be a power of two <= ${MAX_PAGE_LEAVES}, got ${String(init.pageLeaves)}`)
  const receiver: ReceiverLimits = {
    window,
    stallTimeoutMs: positive('stallTimeoutMs', init.stallTimeoutMs, 10_000),
    maxStalls: init.maxStalls ?? 3,
    reconnectTimeoutMs: positive('reconnectTimeoutMs', init.reconnectTimeoutMs, 30_000),
    // the pool's completions come in real time: under another (e.g. virtual) clock keep everything on the event loop, in order
    leafHashing: init.leafHashing ?? (components.clock === undefined || components.clock === systemClock ? 'pool' : 'inline'),
  }
  if (receiver.leafHashing !== 'pool' && receiver.leafHashing !== 'inline') throw new InvalidParametersError(`expected leafHashing 'pool' or 'inline', got ${String(init.leafHashing)}`)
  if (!Number.isSafeInteger(receiver.maxStalls) || receiver.maxStalls < 0) throw new InvalidParametersError(`expected maxStalls >= 0, got ${String(init.maxStalls)}`)
  const requestTimeoutMs = positive('requestTimeoutMs', init.requestTimeoutMs, 10_000)
  const sender: SenderLimits = {
    chunkSize: positive('chunkSize', init.chunkSize, 256 * 1024, maxChunkSize),
    pageLeaves,
    offerTtlMs: positive('offerTtlMs', init.offerTtlMs, 600_000),
    maxOffers: positive('maxOffers', init.maxOffers, 64),
    maxSessionsPerOffer: positive('maxSessionsPerOffer', init.maxSessionsPerOffer, 8),
    maxChunkSize,
    maxSendBufferBytes: positive('maxSendBufferBytes', init.maxSendBufferBytes, 16 * 1024 * 1024),
    contentHash: init.contentHash === true,
  }
  return { path, channel, maxChunkSize, maxChunks, maxBytes, window, maxTransfers, requestTimeoutMs, receiver, sender }
}
