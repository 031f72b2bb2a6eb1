import { transportCompliance } from '@kos-mesh/interface-compliance-tests'
import { createMemoryNetwork, memoryTransport, type MemoryNetwork } from '../src/index.js'

/** Two transports on `network`, as the compliance suite wants them. */
function pairOn(network: MemoryNetwork, listenAddr: string, unreachableAddr: string, limits: { maxFrameSize?: number; maxBufferedBytes?: number } = {}) {
  const aPeer = 'did:key:z6MkAlice'
  const bPeer = 'did:key:z6MkBob'
  const a = memoryTransport({ peerId: aPeer, network, ...limits })
  const b = memoryTransport({ peerId: bPeer, network, ...limits })
  return {
    a, b, aPeer, bPeer,
    listenAddr,
    maxFrameSize: a.maxFrameSize,
    unreachableAddr,
    teardown: async () => { await a.close(); await b.close() },
  }
}

// Real-time network with perfect links (the defaults).
transportCompliance('memory (real time, perfect links)', async () =>
  pairOn(createMemoryNetwork({ seed: 'compliance' }), 'memory://', 'memory://nobody-listens-here', { maxFrameSize: 256 * 1024, maxBufferedBytes: 1024 * 1024 }))

// Real-time network with a 1 ms link and jitter: exercises the timer path of delivery, FIN and RST.
transportCompliance('memory (real time, 1 ms latency + jitter)', async () =>
  pairOn(createMemoryNetwork({ seed: 7, defaults: { latencyMs: 1, jitterMs: 2 } }), 'memory://bob', 'memory://nobody'),
{ frames: 300, connections: 20 })

// Virtual-time network with perfect links: zero-delay delivery needs no clock advance.
transportCompliance('memory (virtual time, perfect links)', async () =>
  pairOn(createMemoryNetwork({ seed: 'virtual', time: 'virtual' }), 'memory://', 'memory://nobody'),
{ frames: 300, connections: 20 })
