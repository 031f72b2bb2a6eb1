// Frames just over 256 KiB (a bulk transfer's 256 KiB chunk with its headers) are assembled in the
// connection's reused receive buffer: every frame must still arrive intact, also when the consumer
// keeps earlier frames while later ones arrive.
import { expect, it } from 'vitest'
import { generateIdentity } from '@kos-mesh/did-security'
import { tcp } from '@kos-mesh/transport-tcp'

it('frames of 256 KiB + 42 bytes arrive intact while earlier ones are kept', async () => {
  const alice = generateIdentity()
  const bob = generateIdentity()
  const a = tcp({ maxFrameSize: 1024 * 1024 })({ identity: alice })
  const b = tcp({ maxFrameSize: 1024 * 1024 })({ identity: bob })
  const got: Uint8Array[] = []
  const n = 6
  const all = new Promise<void>((resolve) => {
    void b.listen('tcp://127.0.0.1:0', (conn) => {
      void (async () => {
        for await (const frame of conn) {
          got.push(frame)
          if (got.length === n) resolve()
        }
      })().catch(() => {})
    }).then(async (listener) => {
      const conn = await a.dial(listener.addrs()[0]!, { remotePeer: bob.did, signal: AbortSignal.timeout(5_000) })
      const size = 256 * 1024 + 42
      for (let i = 0; i < n; i++) await conn.send(new Uint8Array(size).fill(i + 1))
    })
  })
  await all
  for (let i = 0; i < n; i++) {
    expect(got[i]!.byteLength).toBe(256 * 1024 + 42)
    expect(got[i]!.every((x) => x === i + 1)).toBe(true)
  }
  await Promise.all([a.close(), b.close()])
})
