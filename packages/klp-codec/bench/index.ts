/**
 * klp-codec benchmark: encode+sign and decode+verify per message, next to one bare native
 * Ed25519 sign / verify (node:crypto, KeyObject cached) and JSON+base64, all in the same run.
 * Run: npx tsx bench/index.ts  (BENCH_SECONDS=0.5 for a quick run)
 */
import { sign, verify } from 'node:crypto'
import { measure, report, row } from '../../../scripts/bench-util.js'
import type { BenchRow } from '../../../scripts/bench-util.js'
import type { Signer } from '@kos-mesh/interface'
import { createMessage, decodeFrame, decodeMessage, encodeFrame, encodeMessage, signMessage, verifyMessage } from '../src/index.js'
import { ed25519Signer, ed25519Verifier } from '../test/helpers/ed25519.js'

const signer = ed25519Signer('did:key:z6MkBench#z6MkBench', new Uint8Array(32).fill(3))
const verifier = ed25519Verifier({ [signer.keyId]: signer.publicKey })

const unsigned = createMessage({
  type: 'TASK_REQUEST', source: 'klp://node-a.mesh.kai/agents/planner', target: 'klp://node-b.mesh.kai/agents/genie?mode=fast',
  data: { task: 'summarize', input: 'lorem ipsum dolor sit amet '.repeat(6), options: { max_tokens: 256, temperature: 0.7, tags: ['a', 'b', 'c'] }, blob: new Uint8Array(32).fill(1) },
  correlation_id: 'req-000123', routing_hints: [{ kind: 'region', value: 'eu-west' }], timestamp: 1_732_460_000_123,
  trust_requirements: { minimum_trust_score: 5, required_endorsements: 1, verification_level: 'basic' },
})
const signed = await signMessage(unsigned, signer)
const messageBytes = encodeMessage(signed)
const frame = encodeFrame(messageBytes)
const payload500 = messageBytes.subarray(0, 500)
const bareSig = new Uint8Array(sign(null, payload500, signer.privateKey))

// Codec-only: a signer that returns a constant signature, so only codec work is timed.
const fakeSig = new Uint8Array(64).fill(7)
const nullSigner: Signer = { algorithm: 'Ed25519', keyId: signer.keyId, publicKey: signer.publicKey, sign: () => fakeSig }
const alwaysTrue = { verifySignature: async () => true }

// JSON + base64 baseline: the same message as JSON with bytes in base64.
const toJsonable = (m: typeof signed) => JSON.stringify(m, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : typeof v === 'bigint' ? v.toString() : v))
const json = Buffer.from(toJsonable(signed))

console.log(`message: ${messageBytes.length} B canonical CBOR (frame ${frame.length} B), JSON+base64 ${json.length} B`)
const rows: BenchRow[] = []
const bareSign = await measure(() => sign(null, payload500, signer.privateKey))
const bareVerify = await measure(() => verify(null, payload500, signer.publicKeyObject, bareSig))
const encodeSign = await measure(async () => encodeFrame(encodeMessage(await signMessage(unsigned, signer))))
const decodeVerify = await measure(async () => verifyMessage(decodeMessage(decodeFrame(frame).body), verifier))
const encodeOnly = await measure(async () => encodeFrame(encodeMessage(await signMessage(unsigned, nullSigner))))
const decodeOnly = await measure(async () => verifyMessage(decodeMessage(decodeFrame(frame).body), alwaysTrue))
const jsonEncode = await measure(() => Buffer.from(toJsonable(signed)))
const jsonDecode = await measure(() => JSON.parse(json.toString(), (_k, v: unknown) => v))

const overhead = (codec: number, bare: number): number => Math.round(((1 / codec - 1 / bare) / (1 / bare)) * 1000) / 10
const encOver = overhead(encodeSign, bareSign)
const decOver = overhead(decodeVerify, bareVerify)
const B = (name: string, value: number) => ({ name, value })
rows.push(row('bare Ed25519 sign (node:crypto, 500 B)', 'ops/s', bareSign))
rows.push(row('bare Ed25519 verify (node:crypto, KeyObject cached)', 'ops/s', bareVerify))
rows.push(row('createdMessage -> signMessage + encodeMessage + encodeFrame', 'msg/s', encodeSign, B('bare sign', bareSign), { higherIsBetter: true, target: '>= 0.87 (overhead < 15 %)' }))
rows.push(row('decodeFrame + decodeMessage + verifyMessage', 'msg/s', decodeVerify, B('bare verify', bareVerify), { higherIsBetter: true, target: '>= 0.87 (overhead < 15 %)' }))
rows.push(row('codec only: sign path with a constant signer', 'msg/s', encodeOnly, B('JSON+base64 encode', jsonEncode), { higherIsBetter: true }))
rows.push(row('codec only: decode path with an always-true verifier', 'msg/s', decodeOnly, B('JSON.parse decode', jsonDecode), { higherIsBetter: true }))
rows.push(row('JSON + base64 encode (same message)', 'msg/s', jsonEncode))
rows.push(row('JSON.parse (same message, bytes left base64)', 'msg/s', jsonDecode))
rows.push(row('encode+sign overhead vs bare sign', '%', encOver, undefined, { target: '< 15' }))
rows.push(row('decode+verify overhead vs bare verify', '%', decOver, undefined, { target: '< 15' }))
report('klp-codec', rows, { messageBytes: messageBytes.length, frameBytes: frame.length, jsonBytes: json.length, encodeSignOverheadPct: encOver, decodeVerifyOverheadPct: decOver })
