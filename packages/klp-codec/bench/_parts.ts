import { sign } from 'node:crypto'
import type { Signer } from '@kos-mesh/interface'
import { createMessage, decodeFrame, decodeMessage, encodeBody, encodeFrame, encodeMessage, getSigningInput, messageIdFromBody, signMessage, verifyMessage, signingInput } from '../src/index.js'
import type { CreateMessageInit } from '../src/index.js'
import { ed25519Signer } from '../test/helpers/ed25519.js'
const key = ed25519Signer('did:key:z6MkBench#z6MkBench', new Uint8Array(32).fill(3))
const fakeSig = new Uint8Array(64).fill(7)
const nullSigner: Signer = { algorithm: 'Ed25519', keyId: key.keyId, publicKey: key.publicKey, sign: () => fakeSig }
const init: CreateMessageInit = {
  type: 'TASK_REQUEST', source: 'klp://node-a.mesh.kai/agents/planner', target: 'klp://node-b.mesh.kai/agents/genie?mode=fast',
  data: { task: 'summarize', input: 'lorem ipsum dolor sit amet '.repeat(6), options: { max_tokens: 256, temperature: 0.7, tags: ['a', 'b', 'c'] }, blob: new Uint8Array(32).fill(1) },
  correlation_id: 'req-000123', routing_hints: [{ kind: 'region', value: 'eu-west' }], timestamp: 1_732_460_000_123,
  trust_requirements: { minimum_trust_score: 5, required_endorsements: 1, verification_level: 'basic' },
}
const unsigned = createMessage(init)
const signed = await signMessage(unsigned, nullSigner)
const bytes = encodeMessage(signed)
const frame = encodeFrame(bytes)
const body = encodeBody(unsigned)
const yes = { verifySignature: async () => true }
const cpu = () => { const c = process.cpuUsage(); return (c.user + c.system) }
async function t(name: string, f: () => unknown) {
  for (let i = 0; i < 20000; i++) { const r = f(); if (r instanceof Promise) await r }
  const res: number[] = []
  for (let k = 0; k < Number(process.env.K ?? 15); k++) { const n = 2000; const t0 = cpu(); for (let i = 0; i < n; i++) { const r = f(); if (r instanceof Promise) await r } res.push((cpu() - t0) / n) }
  res.sort((a, b) => a - b); console.log(name.padEnd(30), res[7]!.toFixed(2), 'us')
}
const only = process.argv[2]
const cases: Record<string, () => unknown> = {
  createMessage: () => createMessage(init),
  encodeBody: () => encodeBody(unsigned),
  messageIdFromBody: () => messageIdFromBody(body),
  signingInput: () => signingInput(key.keyId, body),
  signMessage: () => signMessage(unsigned, nullSigner),
  encodeMessage: () => encodeMessage(signed),
  encodeFrame: () => encodeFrame(bytes),
  signPath: async () => encodeFrame(encodeMessage(await signMessage(createMessage(init), nullSigner))),
  decodeFrame: () => decodeFrame(frame),
  decodeMessage: () => decodeMessage(bytes),
  getSigningInputDecoded: (() => { const d = decodeMessage(bytes); return () => getSigningInput(d) })(),
  verifyMessage: (() => { const d = decodeMessage(bytes); return () => verifyMessage(d, yes) })(),
  decodePath: () => verifyMessage(decodeMessage(decodeFrame(frame).body), yes),
}
for (const [k, f] of Object.entries(cases)) if (!only || k === only) await t(k, f)
if (only === 'pieces') {
  const { encodeValue } = await import('../src/index.js')
  const data = init.data
  await t('encodeValue(data)', () => encodeValue(data))
  await t('encodeBody', () => encodeBody(unsigned))
  const { hash } = await import('node:crypto')
  await t('crypto.hash', () => hash('sha256', body, 'buffer'))
  await t('freeze obj', () => Object.freeze({ a: 1, b: 2 }))
  const wm = new WeakMap(); await t('weakmap set', () => wm.set({}, 1))
  await t('async await sync', async () => { await 1 })
  await t('slice 800', () => body.slice())
}
