/**
 * The sender's data pump for one receiver's session: reads the chunks the receiver pulled, in the
 * order asked, and hands each to the router as a data frame (`stream | epoch | index | chunk`).
 * At most SEND_AHEAD chunks per session are read ahead of the one being handed over, and all
 * sessions together hold at most the gate's bytes. A pull of a newer epoch replaces what was
 * queued; a send that fails (the connection dropped) drops the queue: the receiver asks again.
 * Internal.
 */
import type { BulkContext, BulkProgress, ByteGate } from './context.js'
import { BulkIoError } from './errors.js'
import type { Offer, Session } from './offer.js'
import { DATA_HEADER_BYTES, chunkLength, writeDataHeader } from './wire.js'

/** Chunks a session reads ahead of the one being handed to the router. */
const SEND_AHEAD = 2

/** Sends what `s` has queued; `sourceFailed` ends the offer when its source cannot be read. */
export async function pump(ctx: BulkContext, gate: ByteGate, o: Offer, s: Session, sourceFailed: (err: Error) => void): Promise<void> {
  s.pumping = true
  const { size, chunkSize, chunks } = o.info
  const inflight: Array<Promise<void>> = []
  let failed: unknown
  let failedEpoch = -1
  try {
    while (s.head < s.queue.length && !o.closed && failed === undefined) {
      const index = s.queue[s.head++]!
      if (s.head >= 1024 && s.head * 2 >= s.queue.length) {
        s.queue = s.queue.slice(s.head)
        s.head = 0
      }
      const epoch = s.epoch
      const len = chunkLength(size, chunkSize, index)
      const need = len + DATA_HEADER_BYTES
      const wait = gate.acquire(need)
      if (wait !== undefined) await wait
      let frame: Uint8Array
      try {
        // one scratch frame per session: router.sendData copies the bytes into its own frame
        // before it returns (encodeDataFrame), so the scratch is free again at once
        s.scratch ??= new Uint8Array(DATA_HEADER_BYTES + chunkSize)
        frame = s.scratch.subarray(0, need)
        writeDataHeader(frame, s.stream, epoch, index)
        if (o.source.readInto !== undefined) {
          await o.source.readInto(index * chunkSize, frame.subarray(DATA_HEADER_BYTES))
        } else {
          const bytes = await o.source.read(index * chunkSize, len)
          if (bytes.byteLength !== len) throw new BulkIoError(`expected ${len} bytes of chunk ${index} from the source, got ${bytes.byteLength}`)
          frame.set(bytes, DATA_HEADER_BYTES)
        }
      } catch (err) {
        gate.release(need)
        throw err
      }
      if (epoch !== s.epoch || o.closed) {
        gate.release(need) // the receiver started over while this chunk was read
        continue
      }
      const p = ctx.router.sendData(s.did, ctx.channel, frame).then(
        () => {
          gate.release(need)
          s.chunksSent++
          s.bytesSent += len
          ctx.stats.chunksSent++
          ctx.stats.bytesSent += len
          const progress: BulkProgress = { id: o.id, direction: 'out', peer: s.did, bytes: s.bytesSent, total: size, chunks: s.chunksSent, totalChunks: chunks }
          o.onProgress?.(progress)
          ctx.emit(progress)
        },
        (err: unknown) => {
          gate.release(need)
          if (failed === undefined) {
            failed = err
            failedEpoch = epoch
          }
        },
      )
      inflight.push(p)
      if (inflight.length >= SEND_AHEAD) await inflight.shift()
    }
    await Promise.all(inflight)
  } catch (err) {
    await Promise.all(inflight)
    // the source failed: nobody can get this payload any more
    ctx.log.warn('bulk source failed', { id: o.id, err: err instanceof Error ? err.name : '' })
    sourceFailed(err instanceof Error ? err : new BulkIoError(String(err)))
    return
  } finally {
    s.pumping = false
  }
  if (failed !== undefined && s.epoch === failedEpoch) {
    // not connected (any more): drop the queue; the receiver re-dials and asks again with a new epoch
    ctx.log.debug('bulk data frame not sent', { id: o.id, err: failed instanceof Error ? failed.name : '' })
    s.queue = []
    s.head = 0
    return
  }
  // more was asked meanwhile (possibly under a new epoch, after a reconnect)
  if (s.head < s.queue.length && !o.closed) void pump(ctx, gate, o, s, sourceFailed)
}
