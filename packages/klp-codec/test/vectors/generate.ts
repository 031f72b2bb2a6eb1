/**
 * Generates test/vectors/klp-vectors.json. Run once, on purpose, when the wire format changes:
 *   npx tsx test/vectors/generate.ts
 * The tests compare the codec against the committed file, so any wire change shows up as a diff.
 */
import { writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  computeMessageId, createMessage, decodeValue, encodeBody, encodeFrame, encodeMessage, encodeValue, formatAddress, getSigningInput,
  parseAddress, signMessage,
} from '../../src/index.js'
import type { CreateMessageInit } from '../../src/index.js'
import { coseParts } from '../helpers/cose.js'
import { ed25519Signer } from '../helpers/ed25519.js'
import { toJson } from './json.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

const SEED = new Uint8Array(32).map((_, i) => i + 1)
const KEY_ID = 'did:key:z6MkVectors#z6MkVectors'

const addresses = [
  'klp://node.domain.kai/agents/genie?x=1#f', 'klp://a/', 'klp://node.kai', 'klp://n-1.kai/services/vector/', 'klp://a/x?', 'klp://a/%C3%A9#',
]
const invalidAddresses = ['KLP://a/', 'klp://A.kai/', 'klp://a//b', 'klp://a/../b', 'klp://a:1/', 'klp://a/é', `klp://${'a'.repeat(64)}/`]

const values: unknown[] = [
  0, 23, 24, -1, -25, 1732460000123, 1.5, 0.1, -0, 2 ** 53, Number.MAX_SAFE_INTEGER, 2n ** 53n, 5n, 2n ** 64n - 1n, -(2n ** 64n), '', 'é',
  new Uint8Array([1, 2, 3]), [null, true, false], { bb: 1, a: 2, c: [] },
]

const messages: Array<{ name: string; init: CreateMessageInit }> = [
  {
    name: 'minimal task request',
    init: { type: 'TASK_REQUEST', source: 'klp://a.kai/agents/x', target: 'klp://node.domain.kai/agents/genie?x=1#f', data: { task: 'summarize', n: 3 }, timestamp: 1_732_460_000_123 },
  },
  {
    name: 'every field',
    init: {
      type: 'VECTOR_SYNC', source: 'klp://a.kai/x', target: 'klp://b.kai/y', data: { v: [1.5, -2, 'x', new Uint8Array([9, 9])], big: 2n ** 60n },
      content_type: 'application/cbor', priority: 8, ttl: 3600, correlation_id: 'corr-1', routing_hints: [{ kind: 'via', value: 'node-2' }, { kind: 'region', value: 'eu' }],
      trust_requirements: { minimum_trust_score: 7.5, required_endorsements: 2, verification_level: 'strong' }, timestamp: 1_700_000_000_000, version: '1.0',
    },
  },
  {
    name: 'encrypted compressed payload envelope',
    init: {
      type: 'AGENT_MIGRATION', source: 'klp://a.kai/agents/x', target: 'klp://b.kai/agents/x', data: new Uint8Array(32).fill(0xab), content_type: 'application/json',
      encryption: { enabled: true, algorithm: 'AES-256-GCM', nonce: new Uint8Array(12).fill(1), key_id: 'session-1' }, compression: { enabled: true, algorithm: 'gzip' },
      timestamp: 1_700_000_000_000, priority: 10, ttl: 0,
    },
  },
]

const signer = ed25519Signer(KEY_ID, SEED)
const out = {
  description: 'KLP wire vectors (klp-codec): DAG-CBOR values and bodies, COSE_Sign1 (RFC 9052) messages. Values use {"$bytes": hex} and {"$bigint": decimal} and {"$number": "-0"} for non-JSON values; "decoded" is what the bytes decode to where it differs from the value (-0 is written as the integer 0, a bigint within 2^53 decodes as a number).',
  signer: { seed: hex(SEED), keyId: KEY_ID, publicKey: hex(signer.publicKey) },
  addresses: addresses.map((input) => ({ input, parsed: parseAddress(input), formatted: formatAddress(parseAddress(input)) })),
  invalidAddresses,
  values: values.map((v) => {
    const cbor = encodeValue(v as never)
    const decoded = decodeValue(cbor)
    const same = Object.is(decoded, v) || (typeof v === 'object' && v !== null)
    return same ? { value: toJson(v), cbor: hex(cbor) } : { value: toJson(v), cbor: hex(cbor), decoded: toJson(decoded) }
  }),
  messages: [] as unknown[],
}
for (const { name, init } of messages) {
  const unsigned = createMessage(init)
  const signed = await signMessage(unsigned, signer)
  const message = encodeMessage(signed)
  out.messages.push({
    name,
    init: toJson(init),
    body: hex(encodeBody(unsigned)),
    messageId: computeMessageId(unsigned),
    protectedHeader: hex(coseParts(message).protectedBytes),
    signingInput: hex(getSigningInput(signed)),
    signature: hex(signed.signature),
    message: hex(message),
    frame: hex(encodeFrame(message)),
  })
}
const file = join(dirname(fileURLToPath(import.meta.url)), 'klp-vectors.json')
writeFileSync(file, JSON.stringify(out, null, 2) + '\n')
console.log(`wrote ${file}`)
