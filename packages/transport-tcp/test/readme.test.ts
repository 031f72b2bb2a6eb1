// The README usage example, verbatim apart from the assertions.
import { expect, it } from 'vitest'
import { generateIdentity } from '@kos-mesh/did-security'
import { tcp } from '@kos-mesh/transport-tcp'

it('README example runs', async () => {
  const alice = generateIdentity()
  const bob = generateIdentity()
  const a = tcp()({ identity: alice })
  const b = tcp({ maxFrameSize: 256 * 1024 })({ identity: bob })

  // bob echoes every frame back
  const listener = await b.listen('tcp://127.0.0.1:0', (conn) => {
    void (async () => {
      for await (const frame of conn) await conn.send(frame)
    })().catch(() => {})
  })

  // alice dials and insists on bob's DID (PeerMismatchError otherwise)
  const conn = await a.dial(listener.addrs()[0]!, { remotePeer: bob.did, signal: AbortSignal.timeout(5_000) })
  await conn.send(new TextEncoder().encode('hello'))
  for await (const reply of conn) {
    expect(new TextDecoder().decode(reply)).toBe('hello')
    break
  }
  expect(conn.remotePeer).toBe(bob.did)
  await conn.close()
  await Promise.all([a.close(), b.close()])
})
