/**
 * Answers to VECTOR_SYNC requests (the serving side of sync.ts and search.ts): a reconciliation
 * round (a fresh responder per message: the responder keeps no state between rounds), entries by
 * version hash up to maxChunkBytes, pushed entries (each verified and applied on its own), and a
 * local k-NN on one shard.
 */
import { KosMeshError, type KLPValue } from '@kos-mesh/interface'
import { vectorOf } from './entry.js'
import { Reconciler } from './recon.js'
import type { SyncContext } from './sync.js'
import type { VectorStore } from './vector-store.js'
import { hitsToWire, type VectorRequest } from './wire.js'

export async function serveRequest(store: VectorStore, req: Exclude<VectorRequest, { op: 'announce' | 'snapshot' }>, ctx: SyncContext, counters: { entriesReceived: number; entriesRefused: number }): Promise<KLPValue> {
  const st = await store.shard(req.collection, req.shard)
  switch (req.op) {
    case 'recon': {
      // a fresh responder per message: the responder side keeps no state between rounds
      const out = new Reconciler(st.reconSet(req.since), { maxMessageBytes: ctx.maxReconBytes, frameSizeLimit: ctx.frameSizeLimit }).reconcile(req.msg)
      return { op: 'recon', msg: out.message ?? new Uint8Array([0x61]) }
    }
    case 'fetch': {
      const entries: Uint8Array[] = []
      let size = 0
      for (const id of req.ids) {
        const b = await st.getByHash(id)
        if (b === undefined) continue
        if (size + b.length > ctx.maxChunkBytes) break
        entries.push(b)
        size += b.length
      }
      return { op: 'entries', entries }
    }
    case 'push': {
      let applied = 0
      let rejected = 0
      for (const b of req.entries) {
        try {
          const r = await store.applyBytes(b, { collection: req.collection, shard: req.shard })
          if (r.outcome === 'applied') applied++
          counters.entriesReceived++
        } catch (err) {
          if (!(err instanceof KosMeshError)) throw err
          rejected++
          counters.entriesRefused++
        }
      }
      return { op: 'ack', applied, rejected }
    }
    case 'search': {
      const hits = await store.searchShard(req.collection, req.shard, vectorOf(req.vector), req.k)
      return { op: 'hits', hits: hitsToWire(hits) }
    }
  }
}
