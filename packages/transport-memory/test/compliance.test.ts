import { transportCompliance } from '@kos-mesh/interface-compliance-tests'
import { createMemoryNetwork, memoryTransport, type MemoryNetwork } from '../src/index.js'

/** Short outbound limits, given by the suite's slow-peer test only. */
interface OutboundLimits { maxOutboundBufferBytes: number; sendStallTimeoutMs: number }

/**
 * Two transports on `network`, as the compliance suite wants them. With `outbound`, frames are capped
 * to the outbound bound (which must hold at least one frame).
 */
function pairOn(network: MemoryNetwork, listenAddr: string, unreachableAddr: string, limits: { maxFrameSize?: number; maxBufferedBytes?: number } = {}, outbound?: OutboundLimits) {
  const aPeer = 'did:key:z6MkAlice'
  const bPeer = 'did:key:z6MkBob'
  const init = outbound === undefined
    ? limits
    : { ...limits, ...outbound, maxFrameSize: Math.min(limits.maxFrameSize ?? 64 * 1024, outbound.maxOutboundBufferBytes) }
  const a = memoryTransport({ peerId: aPeer, network, ...init })
  const b = memoryTransport({ peerId: bPeer, network, ...init })
  return {
    a, b, aPeer, bPeer,
    listenAddr,
    maxFrameSize: a.maxFrameSize,
    unreachableAddr,
    ...(outbound === undefined ? {} : { outboundLimits: outbound }),
    // virtual time only moves when the test advances it
    ...(network.time === 'virtual' ? { sleep: async (ms: number) => { await network.runFor(ms) } } : {}),
    teardown: async () => { await a.close(); await b.close() },
  }
}

// Real-time network with perfect links (the defaults).
transportCompliance('memory (real time, perfect links)', async (outbound?: OutboundLimits) =>
  pairOn(createMemoryNetwork({ seed: 'compliance' }), 'memory://', 'memory://nobody-listens-here', { maxFrameSize: 256 * 1024, maxBufferedBytes: 1024 * 1024 }, outbound))

// Real-time network with a 1 ms link and jitter: exercises the timer path of delivery, FIN and RST.
transportCompliance('memory (real time, 1 ms latency + jitter)', async (outbound?: OutboundLimits) =>
  pairOn(createMemoryNetwork({ seed: 7, defaults: { latencyMs: 1, jitterMs: 2 } }), 'memory://bob', 'memory://nobody', {}, outbound),
{ frames: 300, connections: 20 })

// Virtual-time network with perfect links: zero-delay delivery needs no clock advance.
transportCompliance('memory (virtual time, perfect links)', async (outbound?: OutboundLimits) =>
  pairOn(createMemoryNetwork({ seed: 'virtual', time: 'virtual' }), 'memory://', 'memory://nobody', {}, outbound),
{ frames: 300, connections: 20 })
