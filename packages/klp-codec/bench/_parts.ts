import { sign } from 'node:crypto'
import type { Signer, SignatureVerifier } from '@kos-mesh/interface'
import { createMessage, decodeFrame, decodeMessage, encodeFrame, encodeMessage, signMessage, verifyMessage, encodeBody, messageIdFromBody } from '../src/index.js'
import type { CreateMessageInit } from '../src/index.js'
import { ed25519Signer } from '../test/helpers/ed25519.js'
const key = ed25519Signer('did:key:z6MkBench#z6MkBench', new Uint8Array(32).fill(3))
const fakeSig = new Uint8Array(64).fill(7)
const nullSigner: Signer = { algorithm: 'Ed25519', keyId: key.keyId, publicKey: key.publicKey, sign: () => fakeSig }
const alwaysTrue: SignatureVerifier = { verifySignature: async () => true }
const init: CreateMessageInit = {
  type: 'TASK_REQUEST', source: 'klp://node-a.mesh.kai/agents/planner', target: 'klp://node-b.mesh.kai/agents/genie?mode=fast',
  data: { task: 'summarize', input: 'lorem ipsum dolor sit amet '.repeat(6), options: { max_tokens: 256, temperature: 0.7, tags: ['a', 'b', 'c'] }, blob: new Uint8Array(32).fill(1) },
  correlation_id: 'req-000123', routing_hints: [{ kind: 'region', value: 'eu-west' }], timestamp: 1_732_460_000_123,
  trust_requirements: { minimum_trust_score: 5, required_endorsements: 1, verification_level: 'basic' },
}
const signed = await signMessage(createMessage(init), nullSigner)
const frame = encodeFrame(encodeMessage(signed))
const unsigned = createMessage(init)
const body = encodeBody(unsigned)
const cpu = () => { const c = process.cpuUsage(); return (c.user + c.system) / 1000 }
async function t(name: string, fn: () => unknown, n = 200000) {
  for (let i = 0; i < n / 4; i++) { const r = fn(); if (r instanceof Promise) await r }
  let best = Infinity
  for (let k = 0; k < 5; k++) {
    const t0 = cpu()
    for (let i = 0; i < n / 5; i++) { const r = fn(); if (r instanceof Promise) await r }
    best = Math.min(best, (cpu() - t0) / (n / 5) * 1000)
  }
  console.log(name.padEnd(40), best.toFixed(2), 'us')
}
const which = process.argv[2] ?? 'all'
if (which === 'all' || which === 'parts') {
await t('createMessage', () => createMessage(init))
await t('encodeBody(unsigned)', () => encodeBody(unsigned))
await t('messageIdFromBody', () => messageIdFromBody(body))
await t('signMessage(unsigned, null)', () => signMessage(unsigned, nullSigner))
await t('encodeMessage(signed)', () => encodeMessage(signed))
await t('encodeFrame(encodeMessage)', () => encodeFrame(encodeMessage(signed)))
await t('full sign path', async () => encodeFrame(encodeMessage(await signMessage(createMessage(init), nullSigner))))
await t('decodeFrame', () => decodeFrame(frame))
await t('decodeMessage', () => decodeMessage(decodeFrame(frame).body))
await t('verify(alwaysTrue)', () => verifyMessage(signed, alwaysTrue))
await t('full decode path', () => verifyMessage(decodeMessage(decodeFrame(frame).body), alwaysTrue))
await t('async noop', async () => { await (0 as unknown) })
}
if (which === 'sign') await t('full sign path', async () => encodeFrame(encodeMessage(await signMessage(createMessage(init), nullSigner))), 2_000_000)
if (which === 'decode') await t('full decode path', () => verifyMessage(decodeMessage(decodeFrame(frame).body), alwaysTrue), 2_000_000)
