import { transportCompliance } from '@kos-mesh/interface-compliance-tests'
import { createMemoryNetwork, memoryTransport } from '../src/index.js'

// Real-time network with perfect links (the defaults).
transportCompliance('memory (real time, perfect links)', async () => {
  const network = createMemoryNetwork({ seed: 'compliance' })
  const aPeer = 'did:key:z6MkAlice'
  const bPeer = 'did:key:z6MkBob'
  const a = memoryTransport({ peerId: aPeer, network, maxFrameSize: 256 * 1024, maxBufferedBytes: 1024 * 1024 })
  const b = memoryTransport({ peerId: bPeer, network, maxFrameSize: 256 * 1024, maxBufferedBytes: 1024 * 1024 })
  return {
    a, b, aPeer, bPeer,
    listenAddr: 'memory://',
    maxFrameSize: 256 * 1024,
    unreachableAddr: 'memory://nobody-listens-here',
    teardown: async () => { await a.close(); await b.close() },
  }
})

// Real-time network with a 1 ms link and jitter: exercises the timer path of delivery, FIN and RST.
transportCompliance('memory (real time, 1 ms latency + jitter)', async () => {
  const network = createMemoryNetwork({ seed: 7, defaults: { latencyMs: 1, jitterMs: 2 } })
  const aPeer = 'did:key:z6MkAlice'
  const bPeer = 'did:key:z6MkBob'
  const a = memoryTransport({ peerId: aPeer, network })
  const b = memoryTransport({ peerId: bPeer, network })
  return {
    a, b, aPeer, bPeer,
    listenAddr: 'memory://bob',
    maxFrameSize: a.maxFrameSize,
    unreachableAddr: 'memory://nobody',
    teardown: async () => { await a.close(); await b.close() },
  }
}, { frames: 300, connections: 20 })

// Virtual-time network with perfect links: zero-delay delivery needs no clock advance.
transportCompliance('memory (virtual time, perfect links)', async () => {
  const network = createMemoryNetwork({ seed: 'virtual', time: 'virtual' })
  const aPeer = 'did:key:z6MkAlice'
  const bPeer = 'did:key:z6MkBob'
  const a = memoryTransport({ peerId: aPeer, network })
  const b = memoryTransport({ peerId: bPeer, network })
  return {
    a, b, aPeer, bPeer,
    listenAddr: 'memory://',
    maxFrameSize: a.maxFrameSize,
    unreachableAddr: 'memory://nobody',
    teardown: async () => { await a.close(); await b.close() },
  }
}, { frames: 300, connections: 20 })
