/**
 * Resume across attempts: a sink may report, when it opens, the chunks it holds from an earlier
 * attempt at the same payload. The receiver keeps the valid indices, reads each back and checks
 * it against its leaf before it counts (a stale or torn chunk is fetched again). Internal.
 */
import { BulkIoError } from './errors.js'
import type { BulkSink } from './sink.js'
import type { BulkOfferInfo } from './wire.js'

/** Opens the sink; returns the indices it holds (valid ones, when it can read them back), or undefined. */
export async function openSink(sink: BulkSink, o: BulkOfferInfo): Promise<Set<number> | undefined> {
  let held: Iterable<number> | undefined
  try {
    held = (await sink.open?.({ id: o.id, size: o.size, chunkSize: o.chunkSize, chunks: o.chunks, root: o.root, contentHash: o.contentHash })) ?? undefined
  } catch (err) {
    throw new BulkIoError('expected the sink to open', { cause: err })
  }
  if (held === undefined) return undefined
  const set = new Set<number>()
  for (const i of held) if (Number.isSafeInteger(i) && i >= 0 && i < o.chunks) set.add(i)
  return set.size > 0 && sink.read !== undefined ? set : undefined
}
