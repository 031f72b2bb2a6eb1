/**
 * The signed envelope against a JSON + JWS envelope as DIDComm and A2A use it (issue 16).
 *
 * Same message content three sizes (a ~200 B request, a ~1 KiB task request, a 64 KiB binary
 * payload), same Ed25519 key, same kid (a did:key DID URL), in four envelopes:
 *   - KLP: COSE_Sign1 over the DAG-CBOR body, framed (createMessage + signMessage + encodeMessage +
 *     encodeFrame; decodeFrame + decodeMessage + verifyMessage, which also derives the message id);
 *   - JWS (ours, DIDComm): JWS General JSON over the base64url JSON plaintext (bench/jws.ts);
 *   - JWS (jose, DIDComm): the same with `jose` GeneralSign / generalVerify;
 *   - JWS (ours, A2A): JSON-RPC request, detached JWS over the RFC 8785 (JCS) form.
 * See bench/jws.ts for what the JSON side does and does not do (no schema validation; the message
 * id travels as a UUID instead of being derived).
 *
 * Every KLP figure is measured paired with its JWS baseline (scripts/bench-paired.ts): ~2 ms
 * batches alternate in random order, process CPU time, medians of per-pair ratios. The ratio of a
 * msg/s row is rate(KLP) / rate(JWS) (> 1: KLP faster); of a us/msg or bytes row, KLP / JWS (< 1:
 * KLP smaller). "envelope only" rows sign with a constant signature and verify with an always-true
 * verifier on both sides: the encode/decode work without Ed25519, which is where the formats differ.
 *
 * Run alone: npx tsx bench/envelope-vs-jws.ts (merges its rows into bench-results/klp-codec.json);
 * bench/index.ts runs it too. BENCH_SECONDS=1 for a quicker run (default 3 s per pair).
 */
import { verify } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { GeneralSign, generalVerify, importJWK } from 'jose'
import type { CryptoKey, JWSHeaderParameters } from 'jose'
import { row } from '../../../scripts/bench-util.js'
import type { BenchRow } from '../../../scripts/bench-util.js'
import { clockName, paired } from '../../../scripts/bench-paired.js'
import type { SignatureVerifier, Signer } from '@kos-mesh/interface'
import { createMessage, decodeFrame, decodeMessage, encodeFrame, encodeMessage, signMessage, verifyMessage } from '../src/index.js'
import type { CreateMessageInit } from '../src/index.js'
import { ed25519Signer } from '../test/helpers/ed25519.js'
import { DIDCOMM_SIGNED_TYP, didKeyUrl, jsonMessage, nodeSigner, nodeVerifier, reviveBytes, signA2a, signDidcomm, verifyA2a, verifyDidcomm } from './jws.js'
import type { GeneralJws, RawSign, RawVerify } from './jws.js'

interface Case { id: string; label: string; init: CreateMessageInit }

const CASES: Case[] = [
  {
    id: 'small', label: 'small',
    init: { type: 'TASK_REQUEST', source: 'klp://node-a/agents/a', target: 'klp://node-b/agents/b', data: { task: 'ping' }, timestamp: 1_732_460_000_123 },
  },
  {
    id: 'task', label: '1 KiB',
    init: {
      type: 'TASK_REQUEST', source: 'klp://node-a.mesh.kai/agents/planner', target: 'klp://node-b.mesh.kai/agents/genie?mode=fast',
      data: {
        task: 'summarize', input: 'lorem ipsum dolor sit amet, consectetur adipiscing elit; '.repeat(9),
        options: { max_tokens: 256, temperature: 0.7, tags: ['a', 'b', 'c'], language: 'en' }, blob: new Uint8Array(32).fill(1),
      },
      correlation_id: 'req-000123', routing_hints: [{ kind: 'region', value: 'eu-west' }], timestamp: 1_732_460_000_123,
      trust_requirements: { minimum_trust_score: 5, required_endorsements: 1, verification_level: 'basic' },
    },
  },
  {
    id: '64k', label: '64 KiB',
    init: {
      type: 'TASK_REQUEST', source: 'klp://node-a.mesh.kai/agents/planner', target: 'klp://node-b.mesh.kai/agents/indexer',
      data: { task: 'embed', blob: Uint8Array.from({ length: 65_536 }, (_, i) => (i * 131 + 7) & 0xff) },
      correlation_id: 'req-000124', timestamp: 1_732_460_000_123,
    },
  },
]

const r2 = (v: number): number => Math.round(v * 100) / 100
const r4 = (v: number): number => Math.round(v * 10_000) / 10_000

export interface EnvelopeResult {
  rows: BenchRow[]
  meta: Record<string, unknown>
  /** One line per case, for the printed summary. */
  summary: string[]
}

export async function envelopeVsJws(): Promise<EnvelopeResult> {
  const key = ed25519Signer('unused', new Uint8Array(32).fill(5))
  const kid = didKeyUrl(key.publicKey)
  const signer: Signer = { algorithm: 'Ed25519', keyId: kid, publicKey: key.publicKey, sign: key.sign }
  const klpKeys = new Map([[kid, key.publicKeyObject]])
  // like bench/index.ts: the verifier the codec gets does the key lookup and the bare native call
  const verifier: SignatureVerifier = {
    verifySignature: async (keyId, data, signature) => {
      const k = klpKeys.get(keyId)
      return k !== undefined && verify(null, data, k, signature)
    },
  }
  const rawSign = nodeSigner(key.privateKey)
  const rawVerify = nodeVerifier(klpKeys)
  const fakeSig = new Uint8Array(64).fill(7)
  const nullSigner: Signer = { ...signer, sign: () => fakeSig }
  const alwaysTrue: SignatureVerifier = { verifySignature: async () => true }
  const constSign: RawSign = () => fakeSig
  const yes: RawVerify = () => true

  const jwk = key.privateKey.export({ format: 'jwk' })
  const josePrivate = (await importJWK({ kty: 'OKP', crv: 'Ed25519', x: jwk.x, d: jwk.d }, 'EdDSA')) as CryptoKey
  const josePublic = (await importJWK({ kty: 'OKP', crv: 'Ed25519', x: jwk.x }, 'EdDSA')) as CryptoKey
  const joseKeys = new Map([[kid, josePublic]])
  const joseGetKey = (h: JWSHeaderParameters | undefined): CryptoKey => {
    const k = h?.kid === undefined ? undefined : joseKeys.get(h.kid)
    if (k === undefined) throw new Error('unknown kid')
    return k
  }
  const joseHeader = { alg: 'EdDSA', kid, typ: DIDCOMM_SIGNED_TYP }
  const utf8 = new TextEncoder()
  const fromUtf8 = new TextDecoder()
  const joseSign = async (init: CreateMessageInit): Promise<string> =>
    JSON.stringify(await new GeneralSign(utf8.encode(JSON.stringify(jsonMessage(init)))).addSignature(josePrivate).setProtectedHeader(joseHeader).sign())
  const joseVerify = async (wire: string): Promise<Record<string, unknown>> => {
    const { payload, protectedHeader } = await generalVerify(JSON.parse(wire) as GeneralJws, joseGetKey)
    if (protectedHeader?.typ !== DIDCOMM_SIGNED_TYP) throw new Error('typ')
    return reviveBytes(JSON.parse(fromUtf8.decode(payload)) as Record<string, unknown>)
  }

  const rows: BenchRow[] = []
  const summary: string[] = []
  const meta: Record<string, unknown> = {
    kid, kidBytes: Buffer.byteLength(kid),
    cases: {
      small: 'TASK_REQUEST, data {task}, short addresses, default metadata',
      task: 'TASK_REQUEST, ~500 chars of text, options, a 32-byte blob, routing hint, trust requirements',
      '64k': 'TASK_REQUEST, a 65,536-byte binary blob (base64url in JSON, then again in the DIDComm JWS payload)',
    },
    method: 'paired interleaved ~2 ms batches in random order, process CPU time, medians of per-pair ratios (scripts/bench-paired.ts)',
  }
  const JWS_OURS = 'DIDComm JWS, ours:'
  const JWS_JOSE = 'DIDComm JWS, jose:'
  const JWS_A2A = 'A2A JCS+JWS, ours:'

  for (const c of CASES) {
    const { init } = c
    const signed = await signMessage(createMessage(init), signer)
    const frame = encodeFrame(encodeMessage(signed))
    const didcomm = signDidcomm(jsonMessage(init), kid, rawSign)
    const a2a = signA2a(jsonMessage(init), kid, rawSign, 'req-1')
    const joseWire = await joseSign(init)
    // setup checks: every side verifies what it and the others produce
    await verifyMessage(decodeMessage(decodeFrame(frame).body), verifier)
    const plain = verifyDidcomm(didcomm, rawVerify).message
    if (JSON.stringify(verifyDidcomm(joseWire, rawVerify).message.type) !== JSON.stringify(init.type)) throw new Error('bench setup: jose JWS')
    await joseVerify(didcomm)
    verifyA2a(a2a, rawVerify)
    if (joseWire.length !== didcomm.length) throw new Error(`bench setup: jose and our JWS differ in length (${joseWire.length} vs ${didcomm.length})`)
    const bytes = { klpFrame: frame.length, klpMessage: encodeMessage(signed).length, didcomm: Buffer.byteLength(didcomm), a2a: Buffer.byteLength(a2a), jsonPlaintext: Buffer.byteLength(JSON.stringify(plain, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64url') : v))) }
    meta[c.id] = bytes

    const klpSign = async (): Promise<unknown> => encodeFrame(encodeMessage(await signMessage(createMessage(init), signer)))
    const klpVerify = async (): Promise<unknown> => verifyMessage(decodeMessage(decodeFrame(frame).body), verifier)
    const klpEncOnly = async (): Promise<unknown> => encodeFrame(encodeMessage(await signMessage(createMessage(init), nullSigner)))
    const klpDecOnly = async (): Promise<unknown> => verifyMessage(decodeMessage(decodeFrame(frame).body), alwaysTrue)

    const sOurs = await paired(klpSign, () => signDidcomm(jsonMessage(init), kid, rawSign))
    const vOurs = await paired(klpVerify, () => verifyDidcomm(didcomm, rawVerify))
    const sJose = await paired(klpSign, () => joseSign(init))
    const vJose = await paired(klpVerify, () => joseVerify(joseWire))
    const sA2a = await paired(klpSign, () => signA2a(jsonMessage(init), kid, rawSign, 'req-1'))
    const vA2a = await paired(klpVerify, () => verifyA2a(a2a, rawVerify))
    const eOurs = await paired(klpEncOnly, () => signDidcomm(jsonMessage(init), kid, constSign))
    const dOurs = await paired(klpDecOnly, () => verifyDidcomm(didcomm, yes))
    const eA2a = await paired(klpEncOnly, () => signA2a(jsonMessage(init), kid, constSign, 'req-1'))
    const dA2a = await paired(klpDecOnly, () => verifyA2a(a2a, yes))

    const rate = (name: string, base: string, p: Awaited<ReturnType<typeof paired>>): BenchRow =>
      row(name, 'msg/s', p.aRate, { name: base, value: p.bRate }, { higherIsBetter: true, ratio: r4(1 / p.ratio) })
    const time = (name: string, base: string, p: Awaited<ReturnType<typeof paired>>): BenchRow =>
      row(name, 'us/msg', r2(p.aUs), { name: base, value: r2(p.bUs) }, { higherIsBetter: false, ratio: r4(p.ratio) })
    rows.push(
      rate(`KLP vs JWS ours, ${c.label}: encode+sign`, `${JWS_OURS} encode+sign`, sOurs),
      rate(`KLP vs JWS ours, ${c.label}: verify+decode`, `${JWS_OURS} verify+decode`, vOurs),
      rate(`KLP vs JWS jose, ${c.label}: encode+sign`, `${JWS_JOSE} encode+sign`, sJose),
      rate(`KLP vs JWS jose, ${c.label}: verify+decode`, `${JWS_JOSE} verify+decode`, vJose),
      rate(`KLP vs JWS A2A/JCS, ${c.label}: encode+sign`, `${JWS_A2A} encode+sign`, sA2a),
      rate(`KLP vs JWS A2A/JCS, ${c.label}: verify+decode`, `${JWS_A2A} verify+decode`, vA2a),
      time(`KLP vs JWS ours, ${c.label}: encode only (no sig)`, `${JWS_OURS} encode, constant sig`, eOurs),
      time(`KLP vs JWS ours, ${c.label}: decode only (no verify)`, `${JWS_OURS} decode, no verify`, dOurs),
      time(`KLP vs JWS A2A/JCS, ${c.label}: encode only (no sig)`, `${JWS_A2A} encode, constant sig`, eA2a),
      time(`KLP vs JWS A2A/JCS, ${c.label}: decode only (no verify)`, `${JWS_A2A} decode, no verify`, dA2a),
      row(`KLP vs JWS DIDComm, ${c.label}: bytes on the wire`, 'B', bytes.klpFrame, { name: 'DIDComm JWS General JSON', value: bytes.didcomm }, { higherIsBetter: false }),
      row(`KLP vs JWS A2A/JCS, ${c.label}: bytes on the wire`, 'B', bytes.klpFrame, { name: 'A2A JSON-RPC + detached JWS', value: bytes.a2a }, { higherIsBetter: false }),
    )
    const x = (p: { ratio: number }): string => `${(1 / p.ratio).toFixed(2)}x`
    summary.push(
      `${c.label.padEnd(7)} bytes KLP ${bytes.klpFrame} / DIDComm ${bytes.didcomm} / A2A ${bytes.a2a}` +
        ` | sign ${x(sOurs)} ours ${x(sJose)} jose ${x(sA2a)} a2a | verify ${x(vOurs)} ours ${x(vJose)} jose ${x(vA2a)} a2a` +
        ` | envelope only enc ${r2(eOurs.aUs)} vs ${r2(eOurs.bUs)} us (a2a ${r2(eA2a.bUs)}), dec ${r2(dOurs.aUs)} vs ${r2(dOurs.bUs)} us (a2a ${r2(dA2a.bUs)})`,
    )
  }
  return { rows, meta, summary }
}

/** Prints the rows as a table (name, KLP, JWS baseline, ratio). */
export function printEnvelope(res: EnvelopeResult): void {
  const lines = res.rows.map((r) => [r.name, `${r.value} ${r.unit}`, `${r.baseline ?? '-'} (${r.baselineName ?? ''})`, r.ratio === null ? '-' : r.ratio.toFixed(3)])
  const header = ['envelope vs JSON+JWS', 'KLP', 'JWS baseline, same run', 'ratio']
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)))
  const fmtLine = (l: string[]): string => l.map((c, i) => c.padEnd(widths[i]!)).join('  ')
  console.log(`\n${fmtLine(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`)
  for (const l of lines) console.log(fmtLine(l))
  console.log('\nratio: msg/s rows rate(KLP)/rate(JWS), >1 = KLP faster; us/msg and B rows KLP/JWS, <1 = KLP smaller (medians of per-pair ratios)')
  for (const s of res.summary) console.log(s)
}

const isEnvelopeRow = (r: { name: string }): boolean => r.name.startsWith('KLP vs JWS') || (r.name.startsWith('envelope, ') && /JWS/.test(r.name))

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(`clock: ${clockName()} time; load average at start: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  const res = await envelopeVsJws()
  printEnvelope(res)
  // merge into bench-results/klp-codec.json: keep bench/index.ts's rows, replace ours
  const file = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bench-results', 'klp-codec.json')
  const json = JSON.parse(readFileSync(file, 'utf8')) as { results: BenchRow[]; [k: string]: unknown }
  json.results = [...json.results.filter((r) => !isEnvelopeRow(r)), ...res.rows]
  json.envelopeVsJws = { ...res.meta, date: new Date().toISOString(), clock: clockName() }
  writeFileSync(file, JSON.stringify(json, null, 2) + '\n')
  console.log('\nmerged into bench-results/klp-codec.json')
}
