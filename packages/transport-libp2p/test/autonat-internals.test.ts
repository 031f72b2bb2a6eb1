/**
 * AutoNAT v2 has no public API for its dial-back results, so networkInfoOf reads them from the
 * service's internals, guarded. This test fails loudly when a js-libp2p update moves them (the
 * readout of a real AutoNAT v2 service must be `ok`), and shows the typed fallback when they moved.
 */
// the package entry first: it installs the Promise.withResolvers polyfill the libp2p code needs
import { networkInfoOf, readAutonatDialBacks, reachabilityOptions, reachabilityTracker, specNatType, REACHABILITY_SERVICES } from '../src/index.js'
import { identify } from '@libp2p/identify'
import type { Libp2p } from '@libp2p/interface'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'

const hosts: Libp2p[] = []
afterEach(async () => {
  for (const h of hosts.splice(0)) await Promise.resolve(h.stop()).catch(() => {})
})

async function host(services: Record<string, unknown>): Promise<Libp2p> {
  const h = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: services as never,
  })
  hosts.push(h)
  return h
}

describe('AutoNAT v2 dial-back results', () => {
  it('are readable from the AutoNAT v2 service js-libp2p ships (fails when its internals move)', async () => {
    const h = await host(reachabilityOptions().services as Record<string, unknown>)
    const r = readAutonatDialBacks(h)
    if (r.status !== 'ok') throw new Error(`AutoNAT v2 internals moved, update src/reachability/network-info.ts: ${r.reason}`)
    expect(r.counts).toBeInstanceOf(Map)
    expect(networkInfoOf(h).nat.reasons.some((x) => x.includes('internals'))).toBe(false)
  })

  it('are absent without the service, and a typed fallback when the internals moved', async () => {
    const none = await host({ identify: identify() })
    expect(readAutonatDialBacks(none)).toMatchObject({ status: 'absent' })
    // a service at the same name whose internals are not what the reader expects
    const moved = await host({ identify: identify(), [REACHABILITY_SERVICES.autonat]: () => ({ client: { results: new Map() } }), [REACHABILITY_SERVICES.tracker]: reachabilityTracker() })
    const r = readAutonatDialBacks(moved)
    expect(r).toMatchObject({ status: 'unreadable', reason: expect.stringContaining('client.dialResults') })
    expect(r.counts.size).toBe(0)
    const badCounts = await host({ identify: identify(), [REACHABILITY_SERVICES.autonat]: () => ({ client: { dialResults: new Map([['/ip4/1.2.3.4/tcp/1', { ok: 1 }]]) } }) })
    expect(readAutonatDialBacks(badCounts)).toMatchObject({ status: 'unreadable' })
    // networkInfoOf still answers, says why, and reports nat_type from what it has: unknown -> strict
    const info = networkInfoOf(moved)
    expect(info.nat.nat).toBe('unknown')
    expect(info.nat.reasons.some((x) => x.includes('AutoNAT v2 internals moved'))).toBe(true)
    expect(info.nat_type).toBe(specNatType('unknown'))
    expect(info.nat_type).toBe('strict')
  })
})
