import { createServer } from 'node:net'
import { transportCompliance } from '@kos-mesh/interface-compliance-tests'
import { generateIdentity } from '@kos-mesh/did-security'
import { tcp } from '../src/index.js'

const MAX = 256 * 1024

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as { port: number }).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

// `limits` (short outbound limits) is given only by the suite's slow-peer test
transportCompliance('tcp', async (limits?: { maxOutboundBufferBytes: number; sendStallTimeoutMs: number }) => {
  const ia = generateIdentity()
  const ib = generateIdentity()
  const a = tcp({ maxFrameSize: MAX, ...limits })({ identity: ia })
  const b = tcp({ maxFrameSize: MAX, ...limits })({ identity: ib })
  return {
    a,
    b,
    aPeer: ia.did,
    bPeer: ib.did,
    listenAddr: 'tcp://127.0.0.1:0',
    maxFrameSize: MAX,
    unreachableAddr: `tcp://127.0.0.1:${await freePort()}`,
    ...(limits === undefined ? {} : { outboundLimits: limits }),
    teardown: async () => { await Promise.all([a.close(), b.close()]) },
  }
})
