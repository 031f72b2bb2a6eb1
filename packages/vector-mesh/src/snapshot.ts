/**
 * Large deltas by bulk transfer. When a reconciliation finds more missing entries than
 * `bulkThreshold` (a new or long-absent replica), the initiator asks the peer for a snapshot of
 * the shard: the peer packs every current entry (since a time, optionally) as
 * `u32 BE length || entry bytes` records, offers them through klp-router's bulk transfer (hash-tree
 * verified chunks, resumable, bounded memory) to the requester's DID only, and answers with the
 * offer id. The requester fetches it, then verifies and applies each entry like any other
 * (signature, ownership, shard); versions it already has are no-ops.
 */
import type { BulkTransfer } from '@kos-mesh/klp-router'
import { memorySink, memorySource } from '@kos-mesh/klp-router'
import { KosMeshError } from '@kos-mesh/interface'
import { MAX_ENTRY_BYTES } from './entry.js'
import { InvalidVectorMessageError } from './errors.js'
import type { ShardStore } from './shard-store.js'
import { ask, type ShardSyncResult, type SyncContext } from './sync.js'
import { parseAnswer } from './wire.js'

/** Packs the shard's current entries (HLC wall >= since). */
export async function packShard(st: ShardStore, since: number): Promise<{ bytes: Uint8Array; count: number }> {
  const parts: Uint8Array[] = []
  let size = 0
  for (const v of st.allVersions()) {
    if (v.hlc.wall < since) continue
    const b = await st.getByHash(v.hash)
    if (b === undefined) continue
    const head = new Uint8Array(4)
    new DataView(head.buffer).setUint32(0, b.length)
    parts.push(head, b)
    size += 4 + b.length
  }
  const out = new Uint8Array(size)
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return { bytes: out, count: parts.length / 2 }
}

/** Splits a packed snapshot into entry byte strings (bounded; throws InvalidVectorMessageError). */
export function unpackShard(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = []
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let at = 0
  while (at < bytes.length) {
    if (at + 4 > bytes.length) throw new InvalidVectorMessageError('expected a 4-byte record length, got the end of the snapshot')
    const n = view.getUint32(at)
    if (n === 0 || n > MAX_ENTRY_BYTES || at + 4 + n > bytes.length) throw new InvalidVectorMessageError(`expected a record of 1..${MAX_ENTRY_BYTES} bytes within the snapshot, got ${n}`)
    out.push(bytes.subarray(at + 4, at + 4 + n))
    at += 4 + n
  }
  return out
}

/** Serves a `snapshot` request: offers the packed shard to `requester` (a DID). */
export async function offerSnapshot(bulk: BulkTransfer, st: ShardStore, since: number, requester: string): Promise<{ offer: string; count: number; size: number }> {
  const { bytes, count } = await packShard(st, since)
  const offer = await bulk.offer(memorySource(bytes), { to: requester, meta: { collection: st.collection.name, shard: st.shard }, ttlMs: 120_000 })
  offer.done.catch(() => {})
  return { offer: offer.id, count, size: bytes.length }
}

/** Fetches a peer's snapshot of a shard by bulk transfer and applies every entry. */
export async function fetchSnapshot(ctx: SyncContext & { bulk: BulkTransfer }, authority: string, collection: string, shard: number, since: number, result: ShardSyncResult, signal?: AbortSignal): Promise<void> {
  const a = parseAnswer(await ask(ctx, authority, { op: 'snapshot', collection, shard, since }, signal), 'snapshot')
  if (typeof a.offer !== 'string' || a.offer.length > 256) throw new InvalidVectorMessageError('expected an offer id')
  const sink = memorySink()
  await ctx.bulk.receive(authority, a.offer, { sink, ...(signal === undefined ? {} : { signal }) })
  const bytes = sink.bytes
  if (bytes === undefined) throw new InvalidVectorMessageError('expected the snapshot bytes')
  result.bytes += bytes.length
  for (const e of unpackShard(bytes)) {
    try {
      const r = await ctx.store.applyBytes(e, { collection, shard })
      if (r.outcome === 'applied') result.fetched++
    } catch (err) {
      if (!(err instanceof KosMeshError)) throw err
      result.refused[err.name] = (result.refused[err.name] ?? 0) + 1
    }
  }
}
