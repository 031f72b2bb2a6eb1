/**
 * Seeded mutation fuzzing of every decoder here that takes untrusted bytes: handshake messages (in each
 * state, raw bytes and, through a malicious peer that encrypts correctly, the identity payload inside),
 * channel records, keystore files, sealed payloads and did:key strings. Every input must either be
 * accepted or rejected with a KosMeshError subclass: a TypeError / RangeError / plain Error escaping is
 * a bug. Deterministic (FUZZ_SEED overrides the seed, FUZZ_SCALE scales the counts); > 100 000 inputs.
 */
import { describe, expect, it } from 'vitest'
import { KosMeshError, mulberry32 } from '@kos-mesh/interface'
import {
  CHANNEL_PROTOCOL, createHandshake, generateIdentity, getBackend, identityFromSeed, open, parseKeystore, publicKeyFromDidKey, seal,
  type Handshake, type Identity, type SealedPayload, type SecureSession,
} from '../src/index.js'

const SEED = Number(process.env.FUZZ_SEED ?? 0x6b6f73)
const SCALE = Number(process.env.FUZZ_SCALE ?? 1)
const count = (n: number): number => Math.max(1, Math.round(n * SCALE))

const prng = mulberry32

class Mutator {
  readonly next: () => number
  constructor(seed: number) { this.next = prng(seed) }
  int(n: number): number { return Math.floor(this.next() * n) }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)] as T }
  bytes(n: number): Uint8Array { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = this.int(256); return b }

  /** 1..4 stacked byte-level mutations; `others` feeds splicing. */
  mutate(input: Uint8Array, others: readonly Uint8Array[] = []): Uint8Array {
    let b: Uint8Array = input.slice()
    const ops = 1 + this.int(4)
    for (let k = 0; k < ops; k++) {
      const at = b.length === 0 ? 0 : this.int(b.length)
      switch (this.int(10)) {
        case 0: if (b.length > 0) b[at] = (b[at] as number) ^ (1 << this.int(8)); break // bit flip
        case 1: if (b.length > 0) b[at] = this.int(256); break
        case 2: if (b.length > 0) b[at] = this.pick([0, 1, 0x7f, 0x80, 0xfe, 0xff]); break
        case 3: b = b.subarray(0, this.int(b.length + 1)).slice(); break // truncate
        case 4: b = Buffer.concat([b.subarray(0, at), this.bytes(1 + this.int(16)), b.subarray(at)]); break // insert
        case 5: { const n = 1 + this.int(16); b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + n))]); break } // delete
        case 6: b = Buffer.concat([b, b.subarray(at, at + this.int(65))]); break // duplicate a chunk at the end
        case 7: if (others.length > 0) { const o = this.pick(others); b = Buffer.concat([b.subarray(0, at), o.subarray(this.int(o.length + 1))]) } break // splice
        case 8: if (b.length >= 2) { const i = this.int(b.length - 1); const v = this.pick([0, 1, 0xffff, 0x7fff, b.length, b.length - 2]); b[i] = (v >>> 8) & 0xff; b[i + 1] = v & 0xff } break // u16 length field
        default: if (b.length > 0) { const n = 1 + this.int(8); for (let i = 0; i < n && at + i < b.length; i++) b[at + i] = this.int(256) } // random run
      }
    }
    return new Uint8Array(b) // a plain Uint8Array copy, as a transport would hand over
  }
}

interface Tally { inputs: number; accepted: number; rejected: Map<string, number>; bugs: string[] }
const tallies = new Map<string, Tally>()

function tally(name: string): Tally {
  let t = tallies.get(name)
  if (t === undefined) { t = { inputs: 0, accepted: 0, rejected: new Map(), bugs: [] }; tallies.set(name, t) }
  return t
}

function record(t: Tally, input: () => string, outcome: { ok: true } | { ok: false; err: unknown }): void {
  t.inputs++
  if (outcome.ok) { t.accepted++; return }
  const e = outcome.err
  if (e instanceof KosMeshError) { t.rejected.set(e.name, (t.rejected.get(e.name) ?? 0) + 1); return }
  if (t.bugs.length < 5) t.bugs.push(`${(e as Error)?.name ?? typeof e}: ${(e as Error)?.message ?? String(e)} <- ${input()}\n${(e as Error)?.stack?.split('\n').slice(1, 4).join('\n') ?? ''}`)
  else t.bugs.push('')
}

function run(t: Tally, input: () => string, fn: () => unknown): void {
  try { fn(); record(t, input, { ok: true }) } catch (err) { record(t, input, { ok: false, err }) }
}

async function runAsync(t: Tally, input: () => string, fn: () => Promise<unknown>): Promise<void> {
  try { await fn(); record(t, input, { ok: true }) } catch (err) { record(t, input, { ok: false, err }) }
}

function expectClean(t: Tally, minInputs: number): void {
  expect(t.bugs.filter((b) => b !== '').join('\n\n'), `${t.bugs.length} non-KosMeshError throws (seed ${SEED})`).toBe('')
  expect(t.inputs).toBeGreaterThanOrEqual(minInputs)
  // the fuzzer must reach the decoder's rejections, not only one early check
  expect(t.rejected.size).toBeGreaterThan(0)
}

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex').slice(0, 400)
const utf8 = new TextEncoder()
const alice = identityFromSeed(new Uint8Array(32).fill(1))
const bob = identityFromSeed(new Uint8Array(32).fill(2))
const aliceNoble = identityFromSeed(new Uint8Array(32).fill(1), { backend: 'noble' })
const bobNoble = identityFromSeed(new Uint8Array(32).fill(2), { backend: 'noble' })

async function handshakePair(a: Identity, b: Identity, extra: { replayWindow?: number; rekeyAfterRecords?: number } = {}): Promise<{ m1: Uint8Array; m2: Uint8Array; m3: Uint8Array; sa: SecureSession; sb: SecureSession }> {
  const i = createHandshake({ identity: a, role: 'initiator', ...extra })
  const r = createHandshake({ identity: b, role: 'responder', ...extra })
  const m1 = i.start() as Uint8Array
  const m2 = (await r.receive(m1)).reply as Uint8Array
  const s = await i.receive(m2)
  const m3 = s.reply as Uint8Array
  const t = await r.receive(m3)
  return { m1, m2, m3, sa: s.session as SecureSession, sb: t.session as SecureSession }
}

describe('mutation fuzz (seeded)', { timeout: 60_000 }, () => {
  it('did:key strings: publicKeyFromDidKey', () => {
    const m = new Mutator(SEED ^ 1)
    const t = tally('did:key')
    const ids = [alice, bob, generateIdentity()]
    const seeds = ids.flatMap((id) => [id.did, id.keyId, id.x25519KeyId]).map((s) => utf8.encode(s))
    const alphabet = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz#:%0OIl z'
    for (let n = 0; n < count(35_000); n++) {
      let s: string
      if (n % 2 === 0) {
        s = new TextDecoder().decode(m.mutate(m.pick(seeds), seeds))
      } else { // character-level: stay in the base58 alphabet so the decoder gets past the first checks
        const chars = [...new TextDecoder().decode(m.pick(seeds))]
        const ops = 1 + m.int(3)
        for (let k = 0; k < ops; k++) {
          const at = m.int(chars.length + 1)
          const c = alphabet[m.int(alphabet.length)] as string
          const op = m.int(3)
          if (op === 0) chars[at] = c; else if (op === 1) chars.splice(at, 0, c); else chars.splice(at, 1)
        }
        s = chars.join('')
      }
      run(t, () => JSON.stringify(s), () => publicKeyFromDidKey(s))
    }
    expectClean(t, count(35_000))
  })

  it('keystore files: parseKeystore', () => {
    const m = new Mutator(SEED ^ 2)
    const t = tally('keystore')
    const good = {
      format: 'kos-mesh-keystore', version: 1, did: alice.did,
      kdf: { name: 'scrypt', N: 131072, r: 8, p: 1, salt: 'AAAAAAAAAAAAAAAAAAAAAA' },
      cipher: { name: 'AES-256-GCM', nonce: 'AAAAAAAAAAAAAAAA' },
      ciphertext: Buffer.alloc(48).toString('base64url'),
    }
    const base = utf8.encode(JSON.stringify(good, null, 2))
    expect(parseKeystore(base).did).toBe(alice.did)
    const weirdValues = (): unknown[] => [null, 0, -1, 1.5, 2 ** 53, '', 'x', [], {}, true, '\u0000', 'A'.repeat(100), 2 ** 20, 1024]
    const weird = { pick: (): unknown => m.pick(weirdValues()) }
    const paths: Array<(o: any) => void> = [
      (o) => { o.format = weird.pick() }, (o) => { o.version = weird.pick() }, (o) => { o.did = weird.pick() },
      (o) => { o.kdf = weird.pick() }, (o) => { o.kdf.N = weird.pick() }, (o) => { o.kdf.r = weird.pick() }, (o) => { o.kdf.p = weird.pick() },
      (o) => { o.kdf.salt = weird.pick() }, (o) => { o.kdf.name = weird.pick() }, (o) => { o.cipher = weird.pick() },
      (o) => { o.cipher.nonce = weird.pick() }, (o) => { o.ciphertext = weird.pick() }, (o) => { o.extra = weird.pick() },
    ]
    for (let n = 0; n < count(30_000); n++) {
      let input: Uint8Array
      if (n % 3 === 0) { // structural: a field of the wrong type or range
        const o = JSON.parse(JSON.stringify(good))
        for (let k = 1 + m.int(2); k > 0; k--) { try { m.pick(paths)(o) } catch { /* the parent field is no longer an object */ } }
        input = utf8.encode(JSON.stringify(o))
      } else {
        input = m.mutate(base)
      }
      run(t, () => new TextDecoder().decode(input).slice(0, 300), () => parseKeystore(input))
    }
    expectClean(t, count(30_000))
  })

  it('channel records: SecureSession.decrypt (native and noble, strict order and replay window)', async () => {
    const m = new Mutator(SEED ^ 3)
    const t = tally('records')
    const setups = await Promise.all([
      handshakePair(alice, bob, { rekeyAfterRecords: 4 }),
      handshakePair(alice, bob, { replayWindow: 16, rekeyAfterRecords: 4 }),
      handshakePair(aliceNoble, bobNoble, { replayWindow: 4, rekeyAfterRecords: 4 }),
    ])
    let forgedRecords = 0 // a changed record that decrypted
    for (const [si, { sa, sb }] of setups.entries()) {
      const noble = si === 2
      // a pool of genuine records over three epochs (sizes 0..64), of which the receiver has seen some
      const pool: Uint8Array[] = []
      for (let i = 0; i < 12; i++) pool.push(sa.encrypt(m.bytes(m.int(65))))
      for (let i = 0; i < 6; i++) sb.decrypt(pool[i] as Uint8Array)
      const n = noble ? count(4_000) : count(13_000)
      for (let k = 0; k < n; k++) {
        const input = m.int(50) === 0 ? (m.pick(pool)) : m.mutate(m.pick(pool), pool)
        run(t, () => hexOf(input), () => { sb.decrypt(input); if (!pool.some((r) => Buffer.from(r).equals(input))) forgedRecords++ })
      }
      // the session still works after all of that
      const last = sa.encrypt(utf8.encode('after fuzz'))
      for (let i = 6; i < 12; i++) { try { sb.decrypt(pool[i] as Uint8Array) } catch { /* some were consumed by the fuzz */ } }
      expect(new TextDecoder().decode(sb.decrypt(last))).toBe('after fuzz')
    }
    expectClean(t, count(30_000))
    expect(t.rejected.get('DecryptionError') ?? 0).toBeGreaterThan(0)
    expect(forgedRecords).toBe(0)
  })

  it('sealed payloads: open (bytes of every field, and wrong field types)', () => {
    const m = new Mutator(SEED ^ 4)
    const t = tally('sealed')
    const msg = utf8.encode('fuzzed sealed payload')
    const payloads: SealedPayload[] = [seal(msg, bob.did), seal(msg, bob.did, { sender: alice }), seal(new Uint8Array(0), bob.did, { sender: alice, backend: 'noble' })]
    const strings = payloads.flatMap((p) => [p.keyId, p.senderKeyId ?? '']).map((s) => utf8.encode(s))
    const weird: unknown[] = [undefined, null, 0, 'x', {}, [], new Uint8Array(0), new Uint8Array(32), 'did:key:z6Mk']
    for (let n = 0; n < count(6_000); n++) {
      const p: any = { ...m.pick(payloads) }
      const field = m.pick(['ciphertext', 'nonce', 'ephemeralKey', 'keyId', 'senderKeyId', 'type'] as const)
      if (field === 'type') p[m.pick(['ciphertext', 'nonce', 'ephemeralKey', 'keyId', 'senderKeyId'])] = m.pick(weird)
      else if (field === 'keyId' || field === 'senderKeyId') p[field] = new TextDecoder().decode(m.mutate(utf8.encode(String(p[field] ?? '')), strings))
      else p[field] = m.mutate(p[field] as Uint8Array)
      const backend = n % 10 === 0 ? 'noble' : 'native' // noble X25519 costs ~1 ms
      const who = backend === 'noble' ? bobNoble : bob
      run(t, () => `${field}: ${JSON.stringify({ ...p, ciphertext: hexOf(p.ciphertext ?? new Uint8Array()), nonce: hexOf(p.nonce ?? new Uint8Array()), ephemeralKey: hexOf(p.ephemeralKey ?? new Uint8Array()) })}`,
        () => open(who, p as SealedPayload, n % 3 === 0 ? { expectedSender: alice.did } : {}))
    }
    expectClean(t, count(6_000))
    expect(t.rejected.get('SealOpenError') ?? 0).toBeGreaterThan(0)
  })

  it('handshake messages, raw bytes, fed to receive() in every state', async () => {
    const m = new Mutator(SEED ^ 5)
    const t = tally('handshake-raw')
    const pairs = await Promise.all([handshakePair(alice, bob), handshakePair(alice, bob)])
    const msgs = pairs.flatMap((p) => [p.m1, p.m2, p.m3])
    const counts = { m1: count(4_000), m2: count(3_000), m3: count(2_500), done: count(500) }
    // responder waiting for m1
    for (let n = 0; n < counts.m1; n++) {
      const input = m.mutate(m.pick(pairs).m1, msgs)
      await runAsync(t, () => `m1 ${hexOf(input)}`, () => createHandshake({ identity: bob, role: 'responder' }).receive(input))
    }
    // initiator waiting for m2
    for (let n = 0; n < counts.m2; n++) {
      const hs = createHandshake({ identity: alice, role: 'initiator' }); hs.start()
      const input = m.mutate(m.pick(pairs).m2, msgs)
      await runAsync(t, () => `m2 ${hexOf(input)}`, () => hs.receive(input))
    }
    // responder waiting for m3 (it answered a genuine m1 first)
    for (let n = 0; n < counts.m3; n++) {
      const i = createHandshake({ identity: alice, role: 'initiator' })
      const r = createHandshake({ identity: bob, role: 'responder' })
      const m2 = (await r.receive(i.start() as Uint8Array)).reply as Uint8Array
      const m3 = (await i.receive(m2)).reply as Uint8Array
      const input = n % 2 === 0 ? m.mutate(m3, msgs) : m.mutate(m.pick(pairs).m3, msgs)
      await runAsync(t, () => `m3 ${hexOf(input)}`, () => r.receive(input))
    }
    // finished and failed state machines
    const finished: Handshake = createHandshake({ identity: alice, role: 'initiator' })
    const r = createHandshake({ identity: bob, role: 'responder' })
    await finished.receive((await r.receive(finished.start() as Uint8Array)).reply as Uint8Array)
    for (let n = 0; n < counts.done; n++) {
      const input = m.mutate(m.pick(msgs), msgs)
      await runAsync(t, () => `done ${hexOf(input)}`, () => finished.receive(input))
    }
    expectClean(t, counts.m1 + counts.m2 + counts.m3 + counts.done)
    expect(t.rejected.get('HandshakeError') ?? 0).toBeGreaterThan(0)
  })

  it('handshake identity payloads from a malicious peer that encrypts them correctly', async () => {
    // The peer holds the handshake keys, so the payload behind the AEAD (DID length, DID bytes,
    // signature) is as untrusted as the outer bytes. This peer follows the key schedule of channel-handshake.ts.
    const m = new Mutator(SEED ^ 6)
    const t = tally('handshake-payload')
    const be = getBackend('native')
    const sha = (...parts: Uint8Array[]): Uint8Array => be.sha256(Buffer.concat(parts))
    const h0 = be.sha256(utf8.encode(CHANNEL_PROTOCOL))
    const INFO_HS = utf8.encode('KLP-CHANNEL-v1 handshake keys')
    const LABEL_R = utf8.encode('KLP-CHANNEL-v1 responder signature')
    const LABEL_I = utf8.encode('KLP-CHANNEL-v1 initiator signature')
    const zero = new Uint8Array(12)
    const payloadOf = (id: Identity, label: Uint8Array, h: Uint8Array): Uint8Array => {
      const did = utf8.encode(id.did)
      return Buffer.concat([Uint8Array.of(did.length >>> 8, did.length & 0xff), did, id.sign(Buffer.concat([label, h, did]))])
    }
    const mutatePayload = (p: Uint8Array): Uint8Array => {
      if (m.int(4) !== 0) return m.mutate(p)
      // keep the frame consistent around a hostile DID: invalid UTF-8, other methods, huge, empty
      const did = m.pick([m.bytes(1 + m.int(60)), Uint8Array.of(0xc3, 0x28), Uint8Array.of(0xed, 0xa0, 0x80), utf8.encode('did:web:example.com'),
        utf8.encode(`did:key:z${'1'.repeat(m.int(600))}`), m.mutate(utf8.encode(bob.did)), new Uint8Array(0)])
      return Buffer.concat([Uint8Array.of(did.length >>> 8, did.length & 0xff), did, m.bytes(64)])
    }
    let validAccepted = 0
    let forged = 0 // a changed payload that completed the handshake
    const n = count(2_500)
    for (let k = 0; k < n; k++) {
      const honest = k % 50 === 0 // an unmutated payload must still complete the handshake
      if (k % 2 === 0) { // malicious responder -> initiator in wait-m2
        const i = createHandshake({ identity: alice, role: 'initiator' })
        const m1 = i.start() as Uint8Array
        const e = be.x25519KeyPair()
        const head = Uint8Array.of(1, 2, ...e.publicKey)
        const h2 = sha(sha(h0, m1), head)
        const okm = be.hkdfSha256(e.agree(m1.subarray(2)), h2, INFO_HS, 96)
        const genuine = payloadOf(bob, LABEL_R, h2)
        const payload = honest ? genuine : mutatePayload(genuine)
        const m2 = Buffer.concat([head, be.aead(okm.subarray(0, 32)).seal(zero, payload, h2)])
        await runAsync(t, () => `payload->initiator ${hexOf(payload)}`, async () => { const s = await i.receive(m2); if (honest && s.session !== undefined) validAccepted++; if (!honest && !Buffer.from(payload).equals(genuine)) forged++ })
      } else { // malicious initiator -> responder in wait-m3
        const e = be.x25519KeyPair()
        const m1 = Uint8Array.of(1, 1, ...e.publicKey)
        const r = createHandshake({ identity: bob, role: 'responder' })
        const m2 = (await r.receive(m1)).reply as Uint8Array
        const h2 = sha(sha(h0, m1), m2.subarray(0, 34))
        const okm = be.hkdfSha256(e.agree(m2.subarray(2, 34)), h2, INFO_HS, 96)
        const h3 = sha(h2, m2.subarray(34))
        const genuine = payloadOf(alice, LABEL_I, h3)
        const payload = honest ? genuine : mutatePayload(genuine)
        const m3 = Buffer.concat([Uint8Array.of(1, 3), be.aead(okm.subarray(32, 64)).seal(zero, payload, h3)])
        await runAsync(t, () => `payload->responder ${hexOf(payload)}`, async () => { const s = await r.receive(m3); if (honest && s.session !== undefined) validAccepted++; if (!honest && !Buffer.from(payload).equals(genuine)) forged++ })
      }
    }
    expectClean(t, n)
    expect(validAccepted).toBe(Math.ceil(n / 50)) // the malicious peer's key schedule is the real one
    expect(forged).toBe(0)
    expect(t.rejected.get('HandshakeError') ?? 0).toBeGreaterThan(0)
  })

  it('ran more than 100 000 inputs in total', () => {
    const total = [...tallies.values()].reduce((s, t) => s + t.inputs, 0)
    if (SCALE >= 1) expect(total).toBeGreaterThanOrEqual(100_000)
    for (const [name, t] of tallies) {
      console.info(`[fuzz] ${name}: ${t.inputs} inputs, ${t.accepted} accepted, rejected ${JSON.stringify(Object.fromEntries(t.rejected))}`)
    }
  })
})
