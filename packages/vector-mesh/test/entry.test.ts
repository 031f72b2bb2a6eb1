import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { HybridClock, compareVersions, signDelegation, signEntry, verifyEntry, vectorBytes, vectorOf, entryKey, type EntryBody } from '../src/index.js'
import { identity, manualClock } from './helpers.js'

const alice = identity('alice')
const bob = identity('bob')
const mallory = identity('mallory')

function put(over: Partial<EntryBody> = {}): EntryBody {
  return { v: 1, collection: 'docs', id: 'a', op: 'put', vector: vectorBytes([1, 2, 3]), metadata: { title: 'x', n: 1, ok: true }, owner: alice.did, writer: alice.did, hlc: { wall: 1000, counter: 0 }, ...over }
}

describe('entries', () => {
  it('sign then verify round-trips; the key is (owner, id)', async () => {
    const e = await signEntry(put(), alice.signer)
    const v = verifyEntry(e.bytes)
    expect(v.key).toBe(entryKey(alice.did, 'a'))
    expect(Array.from(vectorOf(v.body.vector!))).toEqual([1, 2, 3])
    expect(Buffer.from(v.hash).toString('hex')).toBe(Buffer.from(e.hash).toString('hex'))
  })

  it('rejects a tampered entry (forged)', async () => {
    const e = await signEntry(put(), alice.signer)
    const bytes = e.bytes.slice()
    bytes[bytes.length - 70]! ^= 1 // inside the payload
    expect(() => verifyEntry(bytes)).toThrow()
    const sig = e.bytes.slice()
    sig[sig.length - 1]! ^= 1
    expect(() => verifyEntry(sig)).toThrow(expect.objectContaining({ name: 'InvalidEntrySignatureError' }))
  })

  it('rejects an entry claiming another owner without a delegation', async () => {
    await expect(signEntry(put({ writer: mallory.did }), mallory.signer)).rejects.toMatchObject({ name: 'InvalidEntryError' })
    // signed by mallory but naming alice as writer
    const e = await signEntry(put(), alice.signer)
    const forged = await signEntry(put({ metadata: { title: 'evil' } }), { ...mallory.signer, keyId: mallory.keyId, sign: (d: Uint8Array) => mallory.sign(d) })
    expect(() => verifyEntry(forged.bytes)).toThrow(expect.objectContaining({ name: 'ForeignOwnerError' }))
    expect(verifyEntry(e.bytes).body.owner).toBe(alice.did)
  })

  it('accepts a delegate only with the owner\'s delegation, for that collection, before it expires', async () => {
    const delegation = await signDelegation({ owner: alice.did, delegate: bob.did, collection: 'docs', expires_at: 5000 }, alice.signer)
    const ok = await signEntry(put({ writer: bob.did, delegation }), bob.signer)
    expect(verifyEntry(ok.bytes).body.writer).toBe(bob.did)
    const late = await signEntry(put({ writer: bob.did, delegation, hlc: { wall: 5000, counter: 0 } }), bob.signer)
    expect(() => verifyEntry(late.bytes)).toThrow(expect.objectContaining({ name: 'ForeignOwnerError' }))
    const other = await signEntry(put({ collection: 'other', writer: bob.did, delegation }), bob.signer)
    expect(() => verifyEntry(other.bytes)).toThrow(expect.objectContaining({ name: 'ForeignOwnerError' }))
    const selfMade = await signDelegation({ owner: alice.did, delegate: mallory.did, collection: 'docs', expires_at: 5000 }, mallory.signer)
    const stolen = await signEntry(put({ writer: mallory.did, delegation: selfMade }), mallory.signer)
    expect(() => verifyEntry(stolen.bytes)).toThrow(expect.objectContaining({ name: 'ForeignOwnerError' }))
  })

  it('tombstones carry no vector', async () => {
    const t = await signEntry({ v: 1, collection: 'docs', id: 'a', op: 'del', owner: alice.did, writer: alice.did, hlc: { wall: 2, counter: 0 } }, alice.signer)
    expect(verifyEntry(t.bytes).body.op).toBe('del')
    await expect(signEntry({ ...put(), op: 'del' }, alice.signer)).rejects.toMatchObject({ name: 'InvalidEntryError' })
  })

  it('bounds: oversize input is refused before parsing', () => {
    expect(() => verifyEntry(new Uint8Array(70_000))).toThrow(expect.objectContaining({ name: 'VectorTooLargeError' }))
  })

  it('fuzz: random bytes and mutations give only typed errors', async () => {
    const e = await signEntry(put(), alice.signer)
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (b) => {
      try { verifyEntry(b) } catch (err) { expect((err as Error).name).toMatch(/Entry|Vector|Owner|Decode|Limit|Did/) }
    }), { numRuns: 3000 })
    fc.assert(fc.property(fc.nat(e.bytes.length - 1), fc.integer({ min: 1, max: 255 }), (i, x) => {
      const b = e.bytes.slice(); b[i]! ^= x
      expect(() => verifyEntry(b)).toThrow()
    }), { numRuns: 2000 })
  })
})

describe('HLC and conflict order', () => {
  it('never goes back and jumps past observed timestamps', () => {
    const clock = manualClock(100)
    const h = new HybridClock(clock)
    const a = h.tick()
    const b = h.tick()
    expect(b.counter).toBe(a.counter + 1)
    h.observe({ wall: 500, counter: 7 })
    clock.set(50)
    const c = h.tick()
    expect(c).toEqual({ wall: 500, counter: 8 })
  })

  it('concurrent versions resolve the same way whatever the order', () => {
    fc.assert(fc.property(fc.array(fc.record({ wall: fc.nat(5), counter: fc.nat(2), writer: fc.constantFrom('did:key:a', 'did:key:b'), h: fc.nat(255) }), { minLength: 1, maxLength: 8 }), (vs) => {
      const items = vs.map((v) => ({ hlc: { wall: v.wall, counter: v.counter }, writer: v.writer, hash: Uint8Array.of(v.h) }))
      const winner = (xs: typeof items) => xs.reduce((w, x) => (compareVersions(x, w) > 0 ? x : w))
      const w1 = winner(items)
      const w2 = winner([...items].reverse())
      expect(compareVersions(w1, w2)).toBe(0)
    }))
  })
})
