import { storeCompliance } from '@kos-mesh/interface-compliance-tests'
import { describe, expect, it } from 'vitest'
import { MigrationStore, memoryKeyValueStore, type OutLog } from '../src/store.js'
import { rejectsWith } from './helpers.js'

storeCompliance('memoryKeyValueStore', async () => ({ store: memoryKeyValueStore() }), { volatile: true })

describe('MigrationStore', () => {
  const out = (mid: string, phase: OutLog['phase'], at: number): OutLog => ({ migration_id: mid, agent_id: 'a', type: 'move', target: 'did:key:z', authority: 'x', phase, epoch: 1, bundle_hash: new Uint8Array(32), created_at: at })

  it('round-trips logs and prunes only finished ones older than the cut', async () => {
    const s = new MigrationStore(memoryKeyValueStore())
    await s.putOut(out('m1', 'done', 10))
    await s.putOut(out('m2', 'preparing', 10))
    await s.putOut(out('m3', 'aborted', 100))
    await s.putOut(out('m4', 'committed', 10))
    expect(await s.getOut('m1')).toMatchObject({ phase: 'done', bundle_hash: new Uint8Array(32) })
    expect((await s.pendingOut('a'))?.migration_id).toBe('m2')
    expect(await s.prune(50)).toBe(1)
    const left: string[] = []
    for await (const l of s.outs()) left.push(l.migration_id)
    expect(left).toEqual(['m2', 'm3', 'm4'])
  })

  it('refuses records it cannot decode with CorruptStoreError', async () => {
    const kv = memoryKeyValueStore()
    const s = new MigrationStore(kv)
    await kv.put('/agent-migration/out/bad', new Uint8Array([0xff, 0x00]))
    await rejectsWith(s.getOut('bad'), 'CorruptStoreError')
    await kv.put('/agent-migration/out/bad', new Uint8Array([0xa1, 0x61, 0x76, 0x02]))
    await rejectsWith(s.getOut('bad'), 'CorruptStoreError')
  })
})
