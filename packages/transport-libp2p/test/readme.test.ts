// the README's Usage example, as code
import { generateIdentity } from '@kos-mesh/did-security'
import { expect, it } from 'vitest'
import { libp2pTransport } from '../src/index.js'

it('runs the README example', async () => {
  const alice = generateIdentity()
  const bob = generateIdentity()
  const a = libp2pTransport()({ identity: alice })
  const b = libp2pTransport({ maxFrameSize: 256 * 1024 })({ identity: bob })

  const listener = await b.listen('libp2p:///ip4/127.0.0.1/tcp/0', (conn) => {
    void (async () => {
      for await (const frame of conn) await conn.send(frame)
    })().catch(() => {})
  })

  const conn = await a.dial(listener.addrs()[0]!, { remotePeer: bob.did, signal: AbortSignal.timeout(5_000) })
  await conn.send(new TextEncoder().encode('hello'))
  let got = ''
  for await (const reply of conn) {
    got = new TextDecoder().decode(reply)
    expect(conn.remotePeer).toBe(bob.did)
    break
  }
  expect(got).toBe('hello')
  await conn.close()
  await Promise.all([a.close(), b.close()])
})
