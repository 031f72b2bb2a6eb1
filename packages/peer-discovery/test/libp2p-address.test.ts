/** libp2p transport addresses in node records: the address helpers know them, without libp2p loaded. */
import { describe, expect, it } from 'vitest'
import { isLibp2pAddress, isUnspecifiedLibp2pHost, parseLibp2pTransportAddress, splitPeerAddress, toNetworkAddress, toTransportAddress } from '../src/index.js'

const PID = '12D3KooWPwKkxKu9j9S2MLsu6CiqAhNBeC9KZBLXnSRs3CGvHhSQ'
const PID2 = '12D3KooWB3TviKesPWXvhCmqpw3LPGKqhEyS4KtokyFkQYUvnQ3i'
const DID = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'

describe('libp2p addresses', () => {
  it('convert to record addresses and back, dropping the DID and the last /p2p', () => {
    const na = toNetworkAddress(`libp2p:///ip4/192.0.2.7/tcp/4747/p2p/${PID}/${DID}`, { is_public: true })
    expect(na).toEqual({ protocol: 'libp2p', address: '/ip4/192.0.2.7/tcp/4747', port: 4747, is_public: true, is_relay: false })
    expect(toTransportAddress(na!)).toBe('libp2p:///ip4/192.0.2.7/tcp/4747')
    expect(toNetworkAddress('libp2p:///dns4/node.example.org/tcp/443/wss')).toMatchObject({ address: '/dns4/node.example.org/tcp/443/wss', port: 443 })
    // a relay address keeps the relay's PeerId, loses ours, and is a relay address
    const relay = toNetworkAddress(`libp2p:///ip4/198.51.100.1/tcp/4001/p2p/${PID}/p2p-circuit/p2p/${PID2}`)
    expect(relay).toEqual({ protocol: 'libp2p', address: `/ip4/198.51.100.1/tcp/4001/p2p/${PID}/p2p-circuit`, port: 4001, is_public: false, is_relay: true })
    expect(toTransportAddress(relay!)).toBe(`libp2p:///ip4/198.51.100.1/tcp/4001/p2p/${PID}/p2p-circuit`)
    // the other schemes as before
    expect(toNetworkAddress('tcp://192.0.2.7:4747')).toMatchObject({ protocol: 'tcp', address: '192.0.2.7', port: 4747 })
    expect(splitPeerAddress(`libp2p:///ip4/192.0.2.7/tcp/4747/p2p/${PID}/${DID}`)).toEqual({ address: `libp2p:///ip4/192.0.2.7/tcp/4747/p2p/${PID}`, did: DID })
  })

  it('refuses what the libp2p transport would not dial', () => {
    for (const bad of ['libp2p://', 'libp2p://ip4/1.2.3.4/tcp/1', 'libp2p:///ip4/1.2.3/tcp/1', 'libp2p:///ip4/1.2.3.4/udp/1/quic', 'libp2p:///ip4/1.2.3.4/tcp/99999', 'libp2p:///ip4/1.2.3.4/tcp/1/p2p/notapeerid']) {
      expect(toNetworkAddress(bad), bad).toBeUndefined()
    }
    const rec = { port: 1, is_public: false, is_relay: false, protocol: 'libp2p' }
    expect(toTransportAddress({ ...rec, address: '/ip4/1.2.3.4/tcp/1/did:key:z6Mk' })).toBeUndefined()
    expect(toTransportAddress({ ...rec, address: 'not a multiaddr' })).toBeUndefined()
    expect(() => parseLibp2pTransportAddress('libp2p:///ip4/1.2.3.4/tcp/1/foo/x')).toThrow(expect.objectContaining({ name: 'InvalidAddressError' }))
  })

  it('parses the parts', () => {
    const a = parseLibp2pTransportAddress(`libp2p:///ip4/0.0.0.0/tcp/4747/p2p/${PID}/${DID}`)
    expect(a).toEqual({ multiaddr: `/ip4/0.0.0.0/tcp/4747/p2p/${PID}`, base: '/ip4/0.0.0.0/tcp/4747', did: DID, peerId: PID, hostProtocol: 'ip4', host: '0.0.0.0', port: 4747 })
    expect(isUnspecifiedLibp2pHost(a)).toBe(true)
    expect(isLibp2pAddress('/ip4/1.2.3.4/tcp/1')).toBe(true)
    expect(isLibp2pAddress('tcp://1.2.3.4:1')).toBe(false)
  })
})
