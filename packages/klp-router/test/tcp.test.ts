import { afterEach, describe, expect, it } from 'vitest'
import { createSignatureVerifier, generateIdentity } from '@kos-mesh/did-security'
import { KLPMessageType, ProcessingStatus } from '@kos-mesh/interface'
import { tcp } from '@kos-mesh/transport-tcp'
import { createRouter, type Router } from '../src/index.js'

const routers: Router[] = []
afterEach(async () => {
  await Promise.allSettled(routers.map((r) => r.stop()))
  routers.length = 0
})

describe('over real TCP', () => {
  it('dials, exchanges hellos and completes requests both ways', async () => {
    const ia = generateIdentity()
    const ib = generateIdentity()
    const verifier = createSignatureVerifier()
    const ta = tcp()({ identity: ia })
    const tb = tcp()({ identity: ib })
    const a = await createRouter({ authority: 'a.mesh.kai', identity: ia, signatureVerifier: verifier, transports: [ta], listen: ['tcp://127.0.0.1:0'] })
    const b = await createRouter({ authority: 'b.mesh.kai', identity: ib, signatureVerifier: verifier, transports: [tb], listen: ['tcp://127.0.0.1:0'] })
    routers.push(a, b)
    for (const r of [a, b]) {
      r.handle(KLPMessageType.TASK_REQUEST, async (msg) => ({ status: ProcessingStatus.PROCESSED, response: await r.createResponse(msg, { from: r.authority, got: msg.payload.data }) }))
    }
    const addr = b.addrs()[0]!
    expect(addr).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+/)
    const info = await a.dial(addr, { remotePeer: ib.did })
    expect(info).toMatchObject({ did: ib.did, authority: 'b.mesh.kai' })
    const r1 = await a.request({ type: KLPMessageType.TASK_REQUEST, target: 'klp://b.mesh.kai/agents/x', data: new Uint8Array([1, 2, 3]) })
    expect(r1.payload.data).toEqual({ from: 'b.mesh.kai', got: new Uint8Array([1, 2, 3]) })
    // b learned a from the hello on the inbound connection
    await new Promise((r) => setTimeout(r, 20))
    const r2 = await b.request({ type: KLPMessageType.TASK_REQUEST, target: 'klp://a.mesh.kai/', data: 'back' })
    expect(r2.payload.data).toEqual({ from: 'a.mesh.kai', got: 'back' })
    expect(a.metrics().bytesOut).toBeGreaterThan(0)
    // a wrong expected DID is refused by the transport handshake
    await expect(a.dial(addr, { remotePeer: generateIdentity().did })).rejects.toMatchObject({ name: expect.any(String) })
  })
})
