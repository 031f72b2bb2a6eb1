/**
 * did-security benchmarks: sign, verify, seal, open, handshakes, channel throughput. Every number sits
 * next to a baseline measured in the same run (bare node:crypto, or the native backend for noble rows).
 * Run: `npx tsx bench/index.ts` (BENCH_SECONDS=0.5 for a quick run).
 */
import * as nodeCrypto from 'node:crypto'
import { measure, report, row, type BenchRow } from '../../../scripts/bench-util.js'
import { createHandshake, ed25519Verify, generateIdentity, identityFromSeed, open, seal, type SecureSession } from '../src/index.js'

// watchdog: node:crypto KeyObject loops have been seen to hang on this machine (PERFORMANCE.md gotcha 6)
setTimeout(() => { console.error('bench watchdog: giving up after 180 s'); process.exit(2) }, 180_000).unref()

const rows: BenchRow[] = []
const seed = new Uint8Array(nodeCrypto.randomBytes(32))
const native = identityFromSeed(seed, { backend: 'native' })
const noble = identityFromSeed(seed, { backend: 'noble' })
const msg = new Uint8Array(256).fill(7)
const sig = native.sign(msg)

// ---- sign / verify
const bareKey = nodeCrypto.createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' })
const barePub = nodeCrypto.createPublicKey(bareKey)
const bareSign = await measure(() => nodeCrypto.sign(null, msg, bareKey))
const signNative = await measure(() => native.sign(msg))
const signNoble = await measure(() => noble.sign(msg))
rows.push(row('sign 256 B, native', 'ops/s', signNative, { name: 'bare node:crypto sign', value: bareSign }, { higherIsBetter: true, target: '>= 0.85x bare' }))
rows.push(row('sign 256 B, noble', 'ops/s', signNoble, { name: 'native sign', value: signNative }, { higherIsBetter: true }))

const bareVerify = await measure(() => nodeCrypto.verify(null, msg, barePub, sig))
const verifyNative = await measure(() => ed25519Verify(native.publicKey, msg, sig))
const verifyNoble = await measure(() => ed25519Verify(native.publicKey, msg, sig, { backend: 'noble' }))
rows.push(row('verify 256 B (rule), native', 'ops/s', verifyNative, { name: 'bare node:crypto verify, cached key', value: bareVerify }, { higherIsBetter: true, target: '>= 0.85x bare; >= 5k/s' }))
rows.push(row('verify 256 B (rule), noble', 'ops/s', verifyNoble, { name: 'native verify (rule)', value: verifyNative }, { higherIsBetter: true, target: '>= 500/s' }))

// ---- seal / open
const bob = generateIdentity()
const bobNoble = identityFromSeed(bob.exportSeed(), { backend: 'noble' })
const payload = new Uint8Array(1024).fill(1)
const sealNative = await measure(() => seal(payload, bob.did, { backend: 'native' }))
const sealNoble = await measure(() => seal(payload, bob.did, { backend: 'noble' }))
const sealedN = seal(payload, bob.did)
const openNative = await measure(() => open(bob, sealedN))
const openNoble = await measure(() => open(bobNoble, sealedN))
rows.push(row('seal 1 KiB anonymous, native', 'ops/s', sealNative, { name: 'native verify (rule)', value: verifyNative }, { higherIsBetter: true }))
rows.push(row('seal 1 KiB anonymous, noble', 'ops/s', sealNoble, { name: 'native seal', value: sealNative }, { higherIsBetter: true }))
rows.push(row('open 1 KiB anonymous, native', 'ops/s', openNative, { name: 'native seal', value: sealNative }, { higherIsBetter: true }))
rows.push(row('open 1 KiB anonymous, noble', 'ops/s', openNoble, { name: 'native open', value: openNative }, { higherIsBetter: true }))

// ---- handshakes (both sides, in memory)
const alice = generateIdentity()
const aliceNoble = identityFromSeed(alice.exportSeed(), { backend: 'noble' })
async function handshake(a: typeof alice, b: typeof alice): Promise<SecureSession> {
  const i = createHandshake({ identity: a, role: 'initiator', expectedRemoteDid: b.did })
  const r = createHandshake({ identity: b, role: 'responder' })
  const m2 = (await r.receive(i.start() as Uint8Array)).reply as Uint8Array
  const s = await i.receive(m2)
  await r.receive(s.reply as Uint8Array)
  return s.session as SecureSession
}
const hsNative = await measure(() => handshake(alice, bob))
const hsNoble = await measure(() => handshake(aliceNoble, bobNoble))
rows.push(row('handshake (both sides), native', 'handshakes/s', hsNative, { name: 'native verify (rule)', value: verifyNative }, { higherIsBetter: true, target: '< 2 ms CPU per side' }))
rows.push(row('handshake (both sides), noble', 'handshakes/s', hsNoble, { name: 'native handshake', value: hsNative }, { higherIsBetter: true }))

// ---- channel throughput: encrypt + decrypt in memory vs bare AES-256-GCM
const [sa, sb] = await (async () => {
  const i = createHandshake({ identity: alice, role: 'initiator' })
  const r = createHandshake({ identity: bob, role: 'responder' })
  const m2 = (await r.receive(i.start() as Uint8Array)).reply as Uint8Array
  const s = await i.receive(m2)
  const t = await r.receive(s.reply as Uint8Array)
  return [s.session as SecureSession, t.session as SecureSession]
})()
const [na, nb] = await (async () => {
  const i = createHandshake({ identity: aliceNoble, role: 'initiator' })
  const r = createHandshake({ identity: bobNoble, role: 'responder' })
  const m2 = (await r.receive(i.start() as Uint8Array)).reply as Uint8Array
  const s = await i.receive(m2)
  const t = await r.receive(s.reply as Uint8Array)
  return [s.session as SecureSession, t.session as SecureSession]
})()
const bareAesKey = nodeCrypto.createSecretKey(nodeCrypto.randomBytes(32))
const iv = Buffer.alloc(12)
let ctr = 0
function bareRoundTrip(pt: Uint8Array): void {
  iv.writeUInt32BE(ctr++ >>> 0, 8)
  const c = nodeCrypto.createCipheriv('aes-256-gcm', bareAesKey, iv)
  const ct = Buffer.concat([c.update(pt), c.final()])
  const tag = c.getAuthTag()
  const d = nodeCrypto.createDecipheriv('aes-256-gcm', bareAesKey, iv)
  d.setAuthTag(tag)
  d.update(ct); d.final()
}
for (const size of [1024, 65536]) {
  const pt = new Uint8Array(size).fill(3)
  const bare = await measure(() => bareRoundTrip(pt))
  const ch = await measure(() => sb.decrypt(sa.encrypt(pt)))
  const mb = (ops: number): number => (ops * size) / 1e6
  rows.push(row(`channel ${size / 1024} KiB records, native (enc+dec)`, 'MB/s', mb(ch), { name: 'bare node:crypto AES-256-GCM enc+dec', value: mb(bare) }, { higherIsBetter: true, target: '>= 0.9x bare' }))
  rows.push(row(`channel ${size / 1024} KiB records, native (enc+dec)`, 'records/s', ch, { name: 'bare node:crypto AES-256-GCM enc+dec', value: bare }, { higherIsBetter: true }))
  if (size === 1024) {
    const chNoble = await measure(() => nb.decrypt(na.encrypt(pt)))
    rows.push(row('channel 1 KiB records, noble (enc+dec)', 'MB/s', mb(chNoble), { name: 'native channel', value: mb(ch) }, { higherIsBetter: true }))
  }
}

report('did-security', rows, { cpus: (await import('node:os')).cpus().length, note: 'single process, in-memory; handshake = both sides' })
