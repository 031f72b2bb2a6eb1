import { describe, expect, it } from 'vitest'
import { mulberry32 } from '@kos-mesh/interface'
import { compareDistance, idKey, RoutingTable } from '../src/kad/index.js'
import type { Contact } from '../src/kad/index.js'
import { contactWithId, freshIp, inBucket, randomId } from './kad-helpers.js'

const self = randomId(mulberry32(1))
const keys = (cs: readonly { contact: Contact }[] | readonly Contact[]) => cs.map((c) => idKey('contact' in c ? c.contact.id : c.id))

describe('RoutingTable', () => {
  it('never holds the local node', () => {
    const t = new RoutingTable(self)
    expect(t.add(contactWithId(self, 'me', '1.1.1.1'), 0)).toEqual({ status: 'rejected', reason: 'self' })
    expect(t.size).toBe(0)
  })

  it('keeps buckets in LRU order: a contact seen again moves to the tail', () => {
    const t = new RoutingTable(self, { k: 4 })
    const [a, b, c] = inBucket(self, 3, 3, 2)
    for (const x of [a!, b!, c!]) expect(t.add(x, 0).status).toBe('added')
    expect(t.add(a!, 5).status).toBe('updated')
    expect(keys(t.bucketAt(3).entries)).toEqual(keys([b!, c!, a!]))
    t.markSeen(b!.id, 6)
    expect(keys(t.bucketAt(3).entries)).toEqual(keys([c!, a!, b!]))
  })

  it('keeps newcomers to a full bucket in the replacement cache and asks to check a stale head', () => {
    const t = new RoutingTable(self, { k: 3, replacementCacheSize: 2, staleAfterMs: 1_000 })
    const cs = inBucket(self, 0, 6, 3)
    for (const c of cs.slice(0, 3)) t.add(c, 0)
    // head seen recently: no check
    expect(t.add(cs[3]!, 500)).toEqual({ status: 'cached', reason: 'full' })
    // head stale: check it (once)
    expect(t.add(cs[4]!, 1_500)).toEqual({ status: 'cached', reason: 'full', check: cs[0] })
    expect(t.add(cs[5]!, 1_600).check).toBeUndefined()
    // the cache is bounded (oldest out)
    expect(keys(t.bucketAt(0).replacements)).toEqual(keys([cs[4]!, cs[5]!]))
    // failed check: head evicted, newest cached promoted
    expect(t.evict(cs[0]!.id)).toBe(true)
    expect(keys(t.bucketAt(0).entries)).toEqual(keys([cs[1]!, cs[2]!, cs[5]!]))
    expect(t.size).toBe(3)
  })

  it('a passed liveness check keeps the head (moved to the tail)', () => {
    const t = new RoutingTable(self, { k: 2, staleAfterMs: 10 })
    const cs = inBucket(self, 1, 3, 4)
    t.add(cs[0]!, 0)
    t.add(cs[1]!, 0)
    expect(t.add(cs[2]!, 100).check).toBe(cs[0])
    t.markSeen(cs[0]!.id, 101)
    expect(keys(t.bucketAt(1).entries)).toEqual(keys([cs[1]!, cs[0]!]))
    expect(t.has(cs[2]!.id)).toBe(false)
  })

  it('drops a contact after maxFailures failures and promotes a replacement', () => {
    const t = new RoutingTable(self, { k: 2, maxFailures: 2 })
    const cs = inBucket(self, 2, 3, 5)
    for (const c of cs) t.add(c, 0)
    expect(t.recordFailure(cs[0]!.id)).toBe(false)
    expect(t.has(cs[0]!.id)).toBe(true)
    expect(t.recordFailure(cs[0]!.id)).toBe(true)
    expect(t.has(cs[0]!.id)).toBe(false)
    expect(t.has(cs[2]!.id)).toBe(true)
    // an answer in between resets the count
    t.recordFailure(cs[1]!.id)
    t.add(cs[1]!, 1)
    expect(t.recordFailure(cs[1]!.id)).toBe(false)
  })

  it('limits contacts of one group per bucket', () => {
    const t = new RoutingTable(self, { k: 20, maxPerGroupPerBucket: 2 })
    const same = inBucket(self, 0, 5, 6, () => '203.0.113.9')
    expect(same.map((c) => t.add(c, 0).status)).toEqual(['added', 'added', 'cached', 'cached', 'rejected'])
    expect(t.add(same[2]!, 0)).toMatchObject({ status: 'cached', reason: 'diversity' })
    expect(t.bucketAt(0).entries).toHaveLength(2)
    // others still get in
    expect(t.add(inBucket(self, 0, 1, 7)[0]!, 0).status).toBe('added')
  })

  it('one operator cannot fill the table: at most 4 x the per-bucket limit in all', () => {
    const t = new RoutingTable(self, { k: 20, maxPerGroupPerBucket: 2 })
    let n = 0
    for (let cpl = 0; cpl < 16; cpl++) for (const c of inBucket(self, cpl, 20, 100 + cpl, () => `198.51.100.${1 + (n++ % 250)}`)) t.add(c, 0)
    expect(t.groupSize('ip4:198.51.100')).toBe(8)
    expect(t.size).toBe(8)
    // honest contacts from other networks still fill the buckets
    for (let cpl = 0; cpl < 4; cpl++) for (const c of inBucket(self, cpl, 20, 200 + cpl)) t.add(c, 0)
    for (let cpl = 0; cpl < 4; cpl++) expect(t.bucketAt(cpl).entries.length).toBe(20)
  })

  it('closest(target, n) equals a brute-force sort by XOR distance', () => {
    const rnd = mulberry32(11)
    const t = new RoutingTable(self, { k: 20 })
    const all: Contact[] = []
    for (let i = 0; i < 3_000; i++) {
      const c = contactWithId(randomId(rnd), `r${i}`, freshIp())
      if (t.add(c, 0).status === 'added') all.push(c)
    }
    for (let cpl = 0; cpl < 12; cpl++) for (const c of inBucket(self, cpl, 25, 300 + cpl)) if (t.add(c, 0).status === 'added') all.push(c)
    expect(t.size).toBe(all.length)
    for (let i = 0; i < 200; i++) {
      const target = i % 3 === 0 ? inBucket(self, i % 14, 1, 900 + i)[0]!.id : randomId(rnd)
      const n = [1, 5, 20, 60][i % 4]!
      const expected = [...all].sort((a, b) => compareDistance(a.id, b.id, target)).slice(0, n)
      expect(keys(t.closest(target, n))).toEqual(keys(expected))
    }
    const target = randomId(rnd)
    const first = t.closest(target, 1)[0]!
    expect(keys(t.closest(target, 3, (c) => c === first))).not.toContain(idKey(first.id))
  })

  it('tracks which buckets need a refresh', () => {
    const t = new RoutingTable(self, { k: 20 })
    for (let cpl = 0; cpl < 5; cpl++) t.add(inBucket(self, cpl, 1, 400 + cpl)[0]!, 0)
    expect(t.bucketsToRefresh(0, 1_000)).toEqual([0, 1, 2, 3, 4, 5])
    for (let cpl = 0; cpl <= 5; cpl++) t.markRefreshed(cpl, 0)
    expect(t.bucketsToRefresh(999, 1_000)).toEqual([5]) // empty buckets are always due
    expect(t.bucketsToRefresh(1_000, 1_000)).toEqual([0, 1, 2, 3, 4, 5])
  })
})
