/**
 * Mutation fuzz: >= 100,000 mutated frames through FrameDecoder + decodeMessage. Every outcome
 * must be a decoded message that re-encodes to the exact same bytes (and whose body @ipld/dag-cbor
 * decodes and re-encodes unchanged), or a KosMeshError; any TypeError/RangeError escaping is a
 * bug. Deterministic (seeded), so failures reproduce.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { describe, expect, it } from 'vitest'
import { KosMeshError, mulberry32 } from '@kos-mesh/interface'
import { createMessage, decodeMessage, encodeBody, encodeFrame, encodeMessage, FrameDecoder, signMessage, verifyMessage } from '../src/index.js'
import { coseParts } from './helpers/cose.js'
import { ed25519Signer, ed25519Verifier } from './helpers/ed25519.js'

const FRAMES = Number(process.env.KLP_FUZZ_FRAMES ?? 100_000)

const prng = mulberry32

describe('mutation fuzz', () => {
  it(`decodes ${FRAMES} mutated frames with only typed errors and canonical acceptances`, async () => {
    const signer = ed25519Signer('did:key:z6MkFuzz#z6MkFuzz', new Uint8Array(32).fill(9))
    const corpus: Uint8Array[] = []
    for (const data of [null, { a: [1, 2.5, 'x', new Uint8Array([1])], b: { c: true } }, 'text', [[[[1]]]], 2n ** 63n, new Uint8Array(40)]) {
      const m = await signMessage(createMessage({
        type: 'TASK_REQUEST', source: 'klp://a.kai/x', target: 'klp://b.kai/y?q=1#f', data, correlation_id: 'c',
        routing_hints: [{ kind: 'via', value: 'z' }], timestamp: 1_700_000_000_000,
      }), signer)
      corpus.push(encodeFrame(encodeMessage(m)))
    }
    corpus.push(encodeFrame(encodeMessage(await signMessage(createMessage({
      type: 'TASK_REQUEST', source: 'klp://a.kai/x', target: 'klp://b.kai/y', data: new Uint8Array(24), timestamp: 1_700_000_000_000,
      encryption: { enabled: true, algorithm: 'AES-256-GCM', nonce: new Uint8Array(12).fill(5), key_id: 'k1', ephemeral_key: new Uint8Array(32) },
      compression: { enabled: true, algorithm: 'gzip' }, trust_requirements: { minimum_trust_score: 2.5, required_endorsements: 1, verification_level: 'basic' },
    }), signer))))
    const rand = prng(0x5eed)
    const int = (n: number) => Math.floor(rand() * n)
    const interesting = [0x00, 0x17, 0x18, 0x1b, 0x3b, 0x40, 0x5b, 0x7f, 0x9f, 0xa0, 0xbf, 0xc2, 0xf4, 0xf5, 0xf6, 0xf7, 0xf9, 0xfb, 0xff]
    let accepted = 0
    let empty = 0
    const errors = new Map<string, number>()
    for (let i = 0; i < FRAMES; i++) {
      let b = Uint8Array.from(corpus[int(corpus.length)] as Uint8Array)
      const ops = 1 + int(3)
      for (let k = 0; k < ops; k++) {
        switch (int(7)) {
          case 0: { const p = int(b.length); b[p] = (b[p] as number) ^ (1 << int(8)); break }
          case 1: b[int(b.length)] = int(256); break
          case 2: b[8 + int(Math.max(1, b.length - 8))] = interesting[int(interesting.length)] as number; break
          case 3: { const p = int(b.length + 1); b = Uint8Array.from([...b.subarray(0, p), int(256), ...b.subarray(p)]); break }
          case 4: { const p = int(b.length); b = Uint8Array.from([...b.subarray(0, p), ...b.subarray(p + 1 + int(4))]); break }
          case 5: b = b.subarray(0, int(b.length + 1)); break
          default: { const p = int(b.length); const q = Math.min(b.length, p + 1 + int(16)); b = Uint8Array.from([...b, ...b.subarray(p, q)]); break }
        }
      }
      // Keep the frame length consistent half of the time so mutations reach the CBOR decoder.
      if (rand() < 0.5 && b.length >= 8) new DataView(b.buffer, b.byteOffset).setUint32(4, b.length - 8)
      try {
        const d = new FrameDecoder()
        const frames = d.push(b)
        d.end()
        if (frames.length === 0) empty++
        for (const f of frames) {
          const msg = decodeMessage(f.body)
          expect(Buffer.compare(encodeMessage(msg), f.body)).toBe(0)
          // The decoded fields themselves (re-encoded from scratch, not from the kept bytes) are
          // exactly the received body, as an independent decoder (cbor-x) splits the COSE_Sign1.
          const { payload: body } = coseParts(f.body)
          expect(Buffer.compare(encodeBody({ ...msg }), body)).toBe(0)
          // Every body the project accepts is DAG-CBOR as @ipld/dag-cbor reads and writes it.
          expect(Buffer.compare(dagCbor.encode(dagCbor.decode(body)), body)).toBe(0)
          accepted++
        }
      } catch (err) {
        if (!(err instanceof KosMeshError)) throw err
        errors.set(err.name, (errors.get(err.name) ?? 0) + 1)
      }
    }
    expect(empty + accepted + [...errors.values()].reduce((a, n) => a + n, 0)).toBeGreaterThanOrEqual(FRAMES)
    expect(empty).toBeLessThan(FRAMES / 100)
    expect(errors.size).toBeGreaterThan(5) // the mutations really exercise many rejection paths
    expect(accepted).toBeGreaterThan(0)
  }, 120_000)

  it('accepted mutants that decode still fail verification unless the signed bytes are intact', async () => {
    const signer = ed25519Signer('did:key:z6MkFuzz#z6MkFuzz', new Uint8Array(32).fill(9))
    const verifier = ed25519Verifier({ [signer.keyId]: signer.publicKey })
    const bytes = encodeMessage(await signMessage(createMessage({ type: 'TASK_RESPONSE', source: 'klp://a/', target: 'klp://b/', data: { x: 'hello world' }, timestamp: 1 }), signer))
    const rand = prng(42)
    let verified = 0
    for (let i = 0; i < 2000; i++) {
      const m = Uint8Array.from(bytes)
      m[Math.floor(rand() * m.length)] = Math.floor(rand() * 256)
      if (Buffer.compare(m, bytes) === 0) continue
      let msg
      try { msg = decodeMessage(m) } catch (err) { expect(err).toBeInstanceOf(KosMeshError); continue }
      try { await verifyMessage(msg, verifier); verified++ } catch (err) { expect(err).toBeInstanceOf(KosMeshError) }
    }
    expect(verified).toBe(0)
  })
})
