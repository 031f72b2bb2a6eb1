import { sign, verify } from 'node:crypto'
import { ed25519Signer } from '../test/helpers/ed25519.js'
import { createMessage, decodeFrame, decodeMessage, encodeFrame, encodeMessage, getSigningInput, signMessage, verifyMessage } from '../src/index.js'
import { paired } from './interleave.js'
const key = ed25519Signer('did:key:z6MkBench#z6MkBench', new Uint8Array(32).fill(3))
const signer = { algorithm: 'Ed25519' as const, keyId: key.keyId, publicKey: key.publicKey, sign: (d: Uint8Array) => sign(null, d, key.privateKey) }
const verifier = { verifySignature: async (_k: string, d: Uint8Array, s: Uint8Array) => verify(null, d, key.publicKeyObject, s) }
const yes = { verifySignature: async () => true }
const signed = await signMessage(createMessage({ type: 'TASK_REQUEST', source: 'klp://node-a.mesh.kai/agents/planner', target: 'klp://b/', data: { x: 'lorem ipsum '.repeat(40), blob: new Uint8Array(32) }, timestamp: 1 }), signer)
const frame = encodeFrame(encodeMessage(signed))
const input = Uint8Array.from(getSigningInput(signed))
const sig = Buffer.from(signed.signature)
const bare = () => verify(null, input, key.publicKeyObject, sig)
const o = { seconds: 2 }
const pr = (n: string, r: Awaited<ReturnType<typeof paired>>) => console.log(n.padEnd(28), 'diff', r.diffUs.toFixed(2), 'aUs', r.aUs.toFixed(1), 'bUs', r.bUs.toFixed(1), 'ratio', r.timeRatio.toFixed(3))
const d = decodeMessage(decodeFrame(frame).body)
pr('verify decoded sig', await paired(() => verify(null, input, key.publicKeyObject, d.signature), bare, o))
pr('verifyMessage(decoded)', await paired(() => verifyMessage(d, verifier), bare, o))
pr('decode+verify', await paired(() => verifyMessage(decodeMessage(decodeFrame(frame).body), verifier), bare, o))
pr('decode+yes', await paired(() => verifyMessage(decodeMessage(decodeFrame(frame).body), yes), bare, o))
pr('decode+yes + bare', await paired(async () => { await verifyMessage(decodeMessage(decodeFrame(frame).body), yes); bare() }, bare, o))
