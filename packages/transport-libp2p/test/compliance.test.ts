import { transportCompliance } from '@kos-mesh/interface-compliance-tests'
import { generateIdentity } from '@kos-mesh/did-security'
import { createServer } from 'node:net'
import { libp2pTransport } from '../src/index.js'

const MAX = 256 * 1024

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as { port: number }).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

// `limits` (short outbound limits) is given only by the suite's slow-peer test
transportCompliance('libp2p', async (limits?: { maxOutboundBufferBytes: number; sendStallTimeoutMs: number }) => {
  const ia = generateIdentity()
  const ib = generateIdentity()
  const a = libp2pTransport({ maxFrameSize: MAX, ...limits })({ identity: ia })
  const b = libp2pTransport({ maxFrameSize: MAX, ...limits })({ identity: ib })
  return {
    a,
    b,
    aPeer: ia.did,
    bPeer: ib.did,
    listenAddr: 'libp2p:///ip4/127.0.0.1/tcp/0',
    maxFrameSize: MAX,
    unreachableAddr: `libp2p:///ip4/127.0.0.1/tcp/${await freePort()}`,
    ...(limits === undefined ? {} : { outboundLimits: limits }),
    teardown: async () => { await Promise.all([a.close(), b.close()]) },
  }
})
