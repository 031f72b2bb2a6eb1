import { describe, expect, it } from 'vitest'
import { splitPeerAddress, toNetworkAddress, toTransportAddress } from '../src/addresses.js'

describe('address conversion', () => {
  it('maps transport addresses to NetworkAddress and back', () => {
    const cases: Array<[string, { protocol: string; address: string; port: number }]> = [
      ['memory://node-a', { protocol: 'memory', address: 'node-a', port: 0 }],
      ['tcp://127.0.0.1:4001', { protocol: 'tcp', address: '127.0.0.1', port: 4001 }],
      ['tcp://[::1]:4001', { protocol: 'tcp', address: '[::1]', port: 4001 }],
      ['tcp://example.org', { protocol: 'tcp', address: 'example.org', port: 0 }],
    ]
    for (const [addr, want] of cases) {
      const na = toNetworkAddress(addr)
      expect(na).toEqual({ ...want, is_public: false, is_relay: false })
      expect(toTransportAddress(na!)).toBe(addr)
    }
    expect(toNetworkAddress('memory://a/did:key:z6Mkabc', { is_public: true })).toEqual({ protocol: 'memory', address: 'a', port: 0, is_public: true, is_relay: false })
  })

  it('rejects what it cannot map', () => {
    for (const bad of ['', 'node-a', 'TCP://x:1', 'tcp://', 'tcp://a/b', 'tcp://a:99999']) expect(toNetworkAddress(bad), bad).toBeUndefined()
    expect(toTransportAddress({ protocol: 'tcp', address: 'a b', port: 1, is_public: false, is_relay: false })).toBeUndefined()
    expect(toTransportAddress({ protocol: 'Bad Proto', address: 'a', port: 1, is_public: false, is_relay: false })).toBeUndefined()
  })

  it('splits an address with an expected DID', () => {
    expect(splitPeerAddress('memory://seed/did:key:z6Mkx')).toEqual({ address: 'memory://seed', did: 'did:key:z6Mkx' })
    expect(splitPeerAddress('tcp://1.2.3.4:5')).toEqual({ address: 'tcp://1.2.3.4:5' })
  })
})
