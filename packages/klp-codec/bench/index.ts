/**
 * klp-codec benchmark. The goal (issue): the codec's own work stays under 15 % of the bare signature
 * cost, for encode+sign vs one bare native Ed25519 sign and for decode+verify vs one bare native
 * verify, where "bare" signs/verifies exactly the bytes the codec signs (the signing input of the
 * benchmark message, same length, same content).
 *
 * The machine is a shared, noisy 2-core VM, so every codec number is measured *paired* with its
 * baseline: batches alternate codec, bare, bare, codec, ... and we report medians of the per-pair
 * ratios and differences (`paired` from scripts/bench-paired.ts). Overhead % =
 * (1/codec_rate - 1/bare_rate) / (1/bare_rate) = t_codec / t_bare - 1, median over pairs.
 *
 * Then the signed envelope against a JSON + JWS envelope (DIDComm, A2A, jose): bench/envelope-vs-jws.ts,
 * whose rows (`KLP vs JWS ...`) go into the same bench-results/klp-codec.json.
 *
 * Run: npx tsx bench/index.ts   (BENCH_SECONDS=1 for a quicker run; default 3 s per pair)
 */
import { sign, verify } from 'node:crypto'
import { Encoder } from 'cbor-x'
import * as dagCbor from '@ipld/dag-cbor'
import { report, row } from '../../../scripts/bench-util.js'
import type { BenchRow } from '../../../scripts/bench-util.js'
import type { KLPValue, SignatureVerifier, Signer } from '@kos-mesh/interface'
import {
  createMessage, decodeFrame, decodeMessage, encodeFrame, encodeMessage, encodeValue, formatAddress, getSigningInput, signMessage, verifyMessage,
} from '../src/index.js'
import type { CreateMessageInit } from '../src/index.js'
import { ed25519Signer } from '../test/helpers/ed25519.js'
import { clockName, paired } from '../../../scripts/bench-paired.js'
import { envelopeVsJws, printEnvelope } from './envelope-vs-jws.js'

const key = ed25519Signer('did:key:z6MkBench#z6MkBench', new Uint8Array(32).fill(3))
// The Signer / SignatureVerifier the codec is given do exactly the bare native call (plus the
// key lookup a real verifier needs), so the paired difference is the codec's own work.
const signer: Signer = { algorithm: 'Ed25519', keyId: key.keyId, publicKey: key.publicKey, sign: (data) => sign(null, data, key.privateKey) }
const keys = new Map([[key.keyId, key.publicKeyObject]])
const verifier: SignatureVerifier = {
  verifySignature: async (keyId, data, signature) => verify(null, data, keys.get(keyId) ?? key.publicKeyObject, signature),
}

const init: CreateMessageInit = {
  type: 'TASK_REQUEST', source: 'klp://node-a.mesh.kai/agents/planner', target: 'klp://node-b.mesh.kai/agents/genie?mode=fast',
  data: { task: 'summarize', input: 'lorem ipsum dolor sit amet '.repeat(6), options: { max_tokens: 256, temperature: 0.7, tags: ['a', 'b', 'c'] }, blob: new Uint8Array(32).fill(1) },
  correlation_id: 'req-000123', routing_hints: [{ kind: 'region', value: 'eu-west' }], timestamp: 1_732_460_000_123,
  trust_requirements: { minimum_trust_score: 5, required_endorsements: 1, verification_level: 'basic' },
}
const signed = await signMessage(createMessage(init), signer)
const messageBytes = encodeMessage(signed)
const frame = encodeFrame(messageBytes)
// The baseline signs / verifies the very bytes the codec signs.
const input = Uint8Array.from(getSigningInput(signed))
const inputSig = sign(null, input, key.privateKey)
if (!verify(null, input, key.publicKeyObject, signed.signature)) throw new Error('bench setup: signature does not verify')

// Codec-only variants: a signer returning a constant signature, a verifier that always says yes.
const fakeSig = new Uint8Array(64).fill(7)
const nullSigner: Signer = { ...signer, sign: () => fakeSig }
const alwaysTrue: SignatureVerifier = { verifySignature: async () => true }

// The same body as a plain KLPValue, for the generic-encoder comparison with cbor-x.
const plainBody = {
  type: signed.type, source: formatAddress(signed.source), target: formatAddress(signed.target), version: signed.version, timestamp: signed.timestamp,
  payload: { content_type: signed.payload.content_type, data: signed.payload.data, encryption: { enabled: false }, compression: { enabled: false } },
  metadata: { ttl: signed.metadata.ttl, priority: signed.metadata.priority, correlation_id: 'req-000123', routing_hints: [{ kind: 'region', value: 'eu-west' }], trust_requirements: { minimum_trust_score: 5, required_endorsements: 1, verification_level: 'basic' } },
} as unknown as KLPValue
// cbor-x configured as close to canonical as it gets; canonical key order needs a recursive sort
// on every call (cbor-x writes keys in insertion order), and integers >= 2^32 must be handed over
// as bigint or cbor-x writes them as float64.
const cborx = new Encoder({ useRecords: false, variableMapSize: true, tagUint8Array: false, mapsAsObjects: true } as ConstructorParameters<typeof Encoder>[0])
const byKey = (a: string, b: string): number => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0) // ASCII keys only here
function canonicalForCborX(v: unknown): unknown {
  if (typeof v === 'number') return Number.isSafeInteger(v) && Math.abs(v) >= 2 ** 32 ? BigInt(v) : v
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return v
  if (Array.isArray(v)) return v.map(canonicalForCborX)
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(v).sort(byKey)) out[k] = canonicalForCborX((v as Record<string, unknown>)[k])
  return out
}
const ours = encodeValue(plainBody)
const theirs = cborx.encode(canonicalForCborX(plainBody))
if (Buffer.compare(ours, theirs) !== 0) throw new Error('bench setup: cbor-x and klp-codec disagree on the body bytes')
if (Buffer.compare(ours, dagCbor.encode(plainBody)) !== 0) throw new Error('bench setup: @ipld/dag-cbor and klp-codec disagree on the body bytes')

const json = (m: typeof signed): string => JSON.stringify(m, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v))
const jsonBytes = Buffer.from(json(signed))

console.log(`message: ${messageBytes.length} B COSE_Sign1 (frame ${frame.length} B, signing input ${input.length} B), JSON+base64 ${jsonBytes.length} B`)
console.log(`clock: ${clockName()} time; load average at start: ${(await import('node:os')).loadavg().map((l) => l.toFixed(2)).join(' ')}`)

const encodeSignPath = async (): Promise<unknown> => encodeFrame(encodeMessage(await signMessage(createMessage(init), signer)))
const decodeVerifyPath = async (): Promise<unknown> => verifyMessage(decodeMessage(decodeFrame(frame).body), verifier)
const bareSign = (): unknown => sign(null, input, key.privateKey)
const bareVerify = (): unknown => verify(null, input, key.publicKeyObject, inputSig)

const unsigned = createMessage(init)
const enc = await paired(encodeSignPath, bareSign)
const encNoCreate = await paired(async () => encodeFrame(encodeMessage(await signMessage(unsigned, signer))), bareSign)
const dec = await paired(decodeVerifyPath, bareVerify)
const encOnly = await paired(async () => encodeFrame(encodeMessage(await signMessage(createMessage(init), nullSigner))), bareSign)
const decOnly = await paired(async () => verifyMessage(decodeMessage(decodeFrame(frame).body), alwaysTrue), bareVerify)
const vsCborX = await paired(() => encodeValue(plainBody), () => cborx.encode(canonicalForCborX(plainBody)))
const vsDag = await paired(() => encodeValue(plainBody), () => dagCbor.encode(plainBody))
const vsJson = await paired(async () => encodeFrame(encodeMessage(await signMessage(createMessage(init), nullSigner))), () => Buffer.from(json(signed)))

const envelope = await envelopeVsJws()

const r1 = (v: number): number => Math.round(v * 10) / 10
const r2 = (v: number): number => Math.round(v * 100) / 100
const pct = (timeRatio: number): number => r1((timeRatio - 1) * 100)
const encOver = pct(enc.ratio)
const decOver = pct(dec.ratio)
const B = (name: string, value: number) => ({ name, value })
// ratio = median over pairs of rate_codec / rate_bare (= 1 / timeRatio), not value / baseline of the medians.
const pairedRatio = (timeRatio: number) => ({ ratio: Math.round((1 / timeRatio) * 10_000) / 10_000 })

const rows: BenchRow[] = [
  row('createMessage + signMessage + encodeMessage + encodeFrame', 'msg/s', enc.aRate, B('bare Ed25519 sign, same bytes', enc.bRate), { higherIsBetter: true, target: '>= 0.87 (overhead < 15 %)', ...pairedRatio(enc.ratio) }),
  row('signMessage + encodeMessage + encodeFrame (message created once)', 'msg/s', encNoCreate.aRate, B('bare Ed25519 sign, same bytes', encNoCreate.bRate), { higherIsBetter: true, target: '>= 0.87 (overhead < 15 %)', ...pairedRatio(encNoCreate.ratio) }),
  row('decodeFrame + decodeMessage + verifyMessage (+ message id)', 'msg/s', dec.aRate, B('bare Ed25519 verify, same bytes', dec.bRate), { higherIsBetter: true, target: '>= 0.87 (overhead < 15 %)', ...pairedRatio(dec.ratio) }),
  row('encode+sign overhead vs bare sign', '%', encOver, undefined, { target: '< 15' }),
  row('sign+encode overhead vs bare sign (message created once)', '%', pct(encNoCreate.ratio), undefined, { target: '< 15' }),
  row('decode+verify overhead vs bare verify', '%', decOver, undefined, { target: '< 15' }),
  row('codec cost, sign path (paired difference)', 'us/msg', r2(enc.diffUs), B('bare sign', r2(enc.bUs)), { higherIsBetter: false }),
  row('codec cost, sign path without createMessage (paired difference)', 'us/msg', r2(encNoCreate.diffUs), B('bare sign', r2(encNoCreate.bUs)), { higherIsBetter: false }),
  row('codec cost, decode path (paired difference)', 'us/msg', r2(dec.diffUs), B('bare verify', r2(dec.bUs)), { higherIsBetter: false }),
  row('codec only, sign path incl. createMessage (constant signer)', 'us/msg', r2(encOnly.aUs), B('bare sign', r2(encOnly.bUs)), { higherIsBetter: false, ratio: Math.round(encOnly.ratio * 10_000) / 10_000 }),
  row('codec only, decode path (always-true verifier)', 'us/msg', r2(decOnly.aUs), B('bare verify', r2(decOnly.bUs)), { higherIsBetter: false, ratio: Math.round(decOnly.ratio * 10_000) / 10_000 }),
  row('encodeValue(body as plain value), canonical', 'ops/s', vsCborX.aRate, B('cbor-x encode + recursive key sort', vsCborX.bRate), { higherIsBetter: true, ...pairedRatio(vsCborX.ratio) }),
  row('encodeValue(body as plain value), DAG-CBOR', 'ops/s', vsDag.aRate, B('@ipld/dag-cbor encode', vsDag.bRate), { higherIsBetter: true, ...pairedRatio(vsDag.ratio) }),
  row('codec only, sign path (constant signer), rate', 'msg/s', vsJson.aRate, B('JSON.stringify + base64 bytes', vsJson.bRate), { higherIsBetter: true, ...pairedRatio(vsJson.ratio) }),
  ...envelope.rows,
]
report('klp-codec', rows, {
  messageBytes: messageBytes.length, frameBytes: frame.length, signingInputBytes: input.length, jsonBytes: jsonBytes.length, bodyBytes: ours.length,
  encodeSignOverheadPct: encOver, signEncodeOverheadPct: pct(encNoCreate.ratio), decodeVerifyOverheadPct: decOver, codecSignUs: r2(enc.diffUs), codecDecodeUs: r2(dec.diffUs),
  method: 'paired interleaved ~2 ms batches in random order; medians of per-pair ratios; see scripts/bench-paired.ts',
  clock: clockName(),
  pairs: { encodeSign: enc.pairs, signEncode: encNoCreate.pairs, decodeVerify: dec.pairs },
  envelopeVsJws: envelope.meta,
})
printEnvelope(envelope)
