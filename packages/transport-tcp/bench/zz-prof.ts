import { generateIdentity } from '@kos-mesh/did-security'
import { tcp } from '../src/index.js'
const role = process.env.ROLE
const SIZE = Number(process.env.SIZE ?? 65536)
if (role === 'recv') {
  const t = tcp({ keepAliveIntervalMs: 0 })({ identity: generateIdentity() })
  const l = await t.listen('tcp://127.0.0.1:0', (conn) => {
    void (async () => { let n = 0; let f0 = 0; const t0 = performance.now(); for await (const f of conn) { n += f.length; f0++ } console.log('recv fps', f0 / ((performance.now() - t0) / 1000)); await t.close() })()
  })
  console.log(l.addrs()[0])
} else {
  const t = tcp({ keepAliveIntervalMs: 0 })({ identity: generateIdentity() })
  const conn = await t.dial(process.env.ADDR!)
  const p = new Uint8Array(SIZE)
  const end = performance.now() + 3000
  let n = 0
  while (performance.now() < end) { await conn.send(p); n++ }
  console.log('sent fps', n / 3)
  await conn.close(); await t.close()
}
