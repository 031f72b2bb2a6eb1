import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { mulberry32 } from '@kos-mesh/interface'
import { assertKadId, commonPrefixLength, compareDistance, contactIdMatchesDid, defaultGroupOf, idKey, kadIdOf, randomIdInBucket, xorDistance } from '../src/kad/index.js'
import { contact, randomId } from './kad-helpers.js'

describe('kad ids', () => {
  it('derives the id as sha256 of the DID', () => {
    const did = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'
    const id = kadIdOf(did)
    expect(id).toHaveLength(32)
    expect(idKey(id)).toBe(createHash('sha256').update(did).digest('hex'))
  })

  it('checks the DID binding of a contact', () => {
    const c = contact('a')
    expect(contactIdMatchesDid(c)).toBe(true)
    const forged = { ...c, id: kadIdOf('did:key:zOther') }
    expect(contactIdMatchesDid(forged)).toBe(false)
    expect(contactIdMatchesDid({ ...c, id: new Uint8Array(31) })).toBe(false)
  })

  it('computes common prefix lengths', () => {
    const a = new Uint8Array(32)
    const b = new Uint8Array(32)
    expect(commonPrefixLength(a, b)).toBe(256)
    b[0] = 0x80
    expect(commonPrefixLength(a, b)).toBe(0)
    b[0] = 0x01
    expect(commonPrefixLength(a, b)).toBe(7)
    b[0] = 0
    b[3] = 0x10
    expect(commonPrefixLength(a, b)).toBe(27)
  })

  it('orders by XOR distance like a byte-wise compare of a XOR target', () => {
    const rnd = mulberry32(3)
    for (let i = 0; i < 500; i++) {
      const [a, b, t] = [randomId(rnd), randomId(rnd), randomId(rnd)]
      if (i % 7 === 0) a.set(b.subarray(0, 4))
      const da = xorDistance(a, t)
      const db = xorDistance(b, t)
      const expected = Buffer.compare(Buffer.from(da), Buffer.from(db))
      expect(Math.sign(compareDistance(a, b, t))).toBe(expected)
    }
    const x = randomId(rnd)
    expect(compareDistance(x, x, randomId(rnd))).toBe(0)
  })

  it('draws random ids inside a given bucket', () => {
    const rnd = mulberry32(9)
    const self = randomId(rnd)
    for (const cpl of [0, 1, 7, 8, 9, 15, 31, 100, 255]) {
      for (let i = 0; i < 20; i++) expect(commonPrefixLength(self, randomIdInBucket(self, cpl, rnd))).toBe(cpl)
    }
    expect(() => randomIdInBucket(self, 256, rnd)).toThrow(expect.objectContaining({ name: 'InvalidKadIdError' }))
    expect(() => randomIdInBucket(self, -1, rnd)).toThrow(expect.objectContaining({ name: 'InvalidKadIdError' }))
  })

  it('rejects ids of the wrong size with a typed error', () => {
    expect(() => assertKadId(new Uint8Array(16))).toThrow(expect.objectContaining({ name: 'InvalidKadIdError', code: 'ERR_INVALID_KAD_ID' }))
    expect(() => assertKadId('abc')).toThrow(expect.objectContaining({ name: 'InvalidKadIdError' }))
  })

  it('groups contacts by network prefix', () => {
    const g = (addrs: string[]) => defaultGroupOf({ id: new Uint8Array(32), did: 'did:key:zX', addrs })
    expect(g(['tcp://192.168.7.200:4001'])).toBe('ip4:192.168.7')
    expect(g(['tcp://192.168.7.3:1'])).toBe(g(['tcp://192.168.7.200:4001']))
    expect(g(['tcp://192.168.8.3:1'])).not.toBe(g(['tcp://192.168.7.200:4001']))
    expect(g(['memory://n1', 'tcp://1.2.3.4:5'])).toBe('ip4:1.2.3')
    expect(g(['tcp://[2001:db8:aa:1::5]:4001'])).toBe('ip6:2001:db8:aa')
    expect(g(['tcp://[2001:db8:aa:ffff::9]:4001'])).toBe(g(['tcp://[2001:db8:aa:1::5]:4001']))
    expect(g(['memory://node-a'])).toBe('host:node-a')
    expect(g([])).toBe('did:did:key:zX')
  })
})
