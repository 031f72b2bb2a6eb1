// the package entry first: it installs the Promise.withResolvers polyfill the libp2p code needs
import {
  classifyNat,
  isPrivateIp,
  libp2pTransport,
  libp2pTransportAddressOf,
  networkInfoOf,
  reachabilityOptions,
  relayServerOptions,
  specNatType,
  toLibp2pNetworkAddress,
  type Libp2pTransportApi,
  type NatEvidence,
} from '../src/index.js'
import { generateIdentity } from '@kos-mesh/did-security'
import type { Connection } from '@kos-mesh/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'

const enc = new TextEncoder()
const dec = new TextDecoder()
const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => {})
})
function track(t: Libp2pTransportApi): Libp2pTransportApi {
  cleanup.push(() => t.close())
  return t
}

const base: NatEvidence = { localIps: ['127.0.0.1', '10.10.0.2'], observations: [], verified: [], dialBackFailures: 0, dialBackSuccesses: 0 }
const seen = (ip: string, port: number, localPort?: number, peer = 'a'): NatEvidence['observations'][number] =>
  ({ peer, observedIp: ip, observedPort: port, direction: 'outbound', ...(localPort === undefined ? {} : { localPort }) })

describe('classifyNat', () => {
  it('is unknown without observations', () => {
    expect(classifyNat(base).nat).toBe('unknown')
  })
  it('is open when AutoNAT confirmed an interface address', () => {
    const c = classifyNat({ ...base, localIps: ['11.0.0.10'], verified: [{ ip: '11.0.0.10', port: 4001 }] })
    expect(c).toMatchObject({ nat: 'open', behindNat: false })
  })
  it('is full_cone when AutoNAT confirmed a mapped address, or a dial-back to it succeeded', () => {
    expect(classifyNat({ ...base, verified: [{ ip: '11.0.0.1', port: 4001 }] }).nat).toBe('full_cone')
    expect(classifyNat({ ...base, observations: [seen('11.0.0.1', 5000, 5000)], dialBackSuccesses: 1 }).nat).toBe('full_cone')
  })
  it('is restricted behind a port-preserving NAT whose dial-backs fail', () => {
    const c = classifyNat({ ...base, observations: [seen('11.0.0.1', 5000, 5000)], dialBackFailures: 1 })
    expect(c).toMatchObject({ nat: 'restricted', behindNat: true })
  })
  it('is symmetric when the NAT rewrites ports or different peers see different IPs', () => {
    expect(classifyNat({ ...base, observations: [seen('11.0.0.1', 6000, 5000)] }).nat).toBe('symmetric')
    expect(classifyNat({ ...base, observations: [seen('11.0.0.1', 5000), seen('11.0.0.2', 5001, undefined, 'b')] }).nat).toBe('symmetric')
  })
  it('a port-preserving NAT that rewrote one port (a clash) is not symmetric', () => {
    const c = classifyNat({ ...base, observations: [seen('11.0.0.1', 5000, 5000), seen('11.0.0.1', 7001, 7000, 'b')], dialBackFailures: 1 })
    expect(c.nat).toBe('restricted')
  })
  it('without a NAT, a failed dial-back means a firewall (restricted); none yet is unknown', () => {
    expect(classifyNat({ ...base, observations: [seen('10.10.0.2', 5000, 5000)], dialBackFailures: 1 }).nat).toBe('restricted')
    expect(classifyNat({ ...base, observations: [seen('10.10.0.2', 5000, 5000)] }).nat).toBe('unknown')
  })
  it('maps to the spec NATType', () => {
    expect(['open', 'full_cone', 'restricted', 'symmetric', 'unknown'].map((n) => specNatType(n as never))).toEqual(['open', 'moderate', 'strict', 'symmetric', 'strict'])
  })
})

describe('addresses', () => {
  it('knows private ranges', () => {
    for (const ip of ['10.1.2.3', '127.0.0.1', '192.168.1.1', '172.20.0.1', '100.64.0.1', '::1', 'fd00::1']) expect(isPrivateIp(ip), ip).toBe(true)
    for (const ip of ['11.0.0.1', '8.8.8.8', '2a00:1450::1']) expect(isPrivateIp(ip), ip).toBe(false)
  })
  it('makes NetworkAddresses of direct and relay multiaddrs', () => {
    const relay = '/ip4/11.0.0.10/tcp/4001/p2p/12D3KooWPwKkxKu9j9S2MLsu6CiqAhNBeC9KZBLXnSRs3CGvHhSQ/p2p-circuit/p2p/12D3KooWB3TviKesPWXvhCmqpw3LPGKqhEyS4KtokyFkQYUvnQ3i'
    expect(toLibp2pNetworkAddress(multiaddr(relay))).toEqual({ protocol: 'p2p-circuit', address: relay, port: 4001, is_public: true, is_relay: true })
    expect(toLibp2pNetworkAddress(multiaddr('/ip4/10.0.0.2/tcp/4001'))).toMatchObject({ protocol: 'tcp', port: 4001, is_public: false, is_relay: false })
    expect(toLibp2pNetworkAddress(multiaddr('/ip4/8.8.8.8/tcp/443/ws'))).toMatchObject({ protocol: 'ws', port: 443, is_public: true })
    expect(toLibp2pNetworkAddress(multiaddr('/ip4/8.8.8.8/tcp/443'), { verified: false }).is_public).toBe(false)
    expect(libp2pTransportAddressOf(toLibp2pNetworkAddress(multiaddr(relay)))).toBe(`libp2p://${relay}`)
  })
  it('relay server options: unlimited by default, limits on request', () => {
    expect(relayServerOptions().reservations).toMatchObject({ applyDefaultLimit: false, maxReservations: 128 })
    expect(relayServerOptions({ limited: true, durationLimitMs: 60_000, dataLimitBytes: 1n << 20n }).reservations)
      .toMatchObject({ applyDefaultLimit: true, defaultDurationLimit: 60_000, defaultDataLimit: 1n << 20n })
  })
})

describe('relay on loopback', () => {
  it('a node reachable only through its relay reservation exchanges KLP frames; NetworkInfo lists the relay address', async () => {
    const relay = track(libp2pTransport({ libp2pOptions: reachabilityOptions({ relay: true }) })({ identity: generateIdentity() }))
    const rl = await relay.listen('libp2p:///ip4/127.0.0.1/tcp/0', () => {})
    const relayAddr = (rl.addrs()[0] as string).slice('libp2p://'.length)

    const privId = generateIdentity()
    const priv = track(libp2pTransport({ libp2pOptions: reachabilityOptions() })({ identity: privId }))
    const inbound: Connection[] = []
    await priv.listen('libp2p:///ip4/127.0.0.1/tcp/0', (c) => {
      inbound.push(c)
      void (async () => { for await (const f of c) await c.send(enc.encode(`echo: ${dec.decode(f)}`)) })().catch(() => {})
    })
    await priv.listen(`libp2p://${relayAddr}/p2p-circuit`, () => {})
    const host = priv.libp2p!
    for (let i = 0; i < 100 && !host.getMultiaddrs().some((m) => m.toString().includes('/p2p-circuit')); i++) await new Promise((r) => setTimeout(r, 50))
    const circuit = host.getMultiaddrs().map((m) => m.toString()).find((m) => m.includes('/p2p-circuit'))
    expect(circuit).toBeDefined()

    const peer = track(libp2pTransport({ libp2pOptions: reachabilityOptions() })({ identity: generateIdentity() }))
    const conn = await peer.dial(`libp2p://${circuit!}`, { remotePeer: privId.did, signal: AbortSignal.timeout(10_000) })
    expect(conn.remoteAddr).toContain('/p2p-circuit')
    await conn.send(enc.encode('hi'))
    let reply = ''
    for await (const f of conn) { reply = dec.decode(f); break }
    expect(reply).toBe('echo: hi')
    expect(inbound[0]?.remoteAddr).toContain('/p2p-circuit')

    const info = networkInfoOf(host)
    expect(info.addresses.filter((a) => a.is_relay).map((a) => a.address)).toContain(circuit)
    expect(info.addresses.find((a) => !a.is_relay)).toMatchObject({ protocol: 'tcp', is_public: false })
    expect(info.protocols_supported[0]).toBe('/kos/klp/1.0.0')
    expect(info.connectivity_status).toBe('connected')
    // loopback: peers see us at our own address (no NAT) and AutoNAT skips private addresses
    expect(info.nat.behindNat).toBe(false)
    expect(info.nat.nat).toBe('unknown')
    expect(info.nat_type).toBe('strict')
    expect(networkInfoOf(relay.libp2p!).addresses.every((a) => !a.is_relay)).toBe(true)
  })
})
