import { sign, verify } from 'node:crypto'
import { ed25519Signer } from '../test/helpers/ed25519.js'
import { createMessage, decodeFrame, decodeMessage, encodeFrame, encodeMessage, getSigningInput, signMessage, verifyMessage } from '../src/index.js'
import { paired } from './interleave.js'
const key = ed25519Signer('did:key:z6MkBench#z6MkBench', new Uint8Array(32).fill(3))
const signer = { algorithm: 'Ed25519' as const, keyId: key.keyId, publicKey: key.publicKey, sign: (d: Uint8Array) => sign(null, d, key.privateKey) }
const verifier = { verifySignature: async (_k: string, d: Uint8Array, s: Uint8Array) => verify(null, d, key.publicKeyObject, s) }
const signed = await signMessage(createMessage({ type: 'TASK_REQUEST', source: 'klp://a/', target: 'klp://b/', data: { x: 'lorem ipsum '.repeat(50) }, timestamp: 1 }), signer)
const frame = encodeFrame(encodeMessage(signed))
const input = Uint8Array.from(getSigningInput(signed))
const sig = Uint8Array.from(signed.signature)
const bare = () => verify(null, input, key.publicKeyObject, sig)
const same = () => verify(null, input, key.publicKeyObject, sig)
console.log('bare vs bare', await paired(same, bare, { seconds: 2 }))
console.log('codec vs bare', await paired(async () => verifyMessage(decodeMessage(decodeFrame(frame).body), verifier), bare, { seconds: 2 }))
console.log('async bare vs bare', await paired(async () => verifier.verifySignature('', input, sig), bare, { seconds: 2 }))
