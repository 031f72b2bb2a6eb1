import { describe, expect, it } from 'vitest'
import {
  createHandshake, generateIdentity, performHandshake, RECORD_OVERHEAD, type HandshakeOptions, type SecureSession,
} from '../src/index.js'
import { ManualClock, pipePair } from './helpers.js'

const alice = generateIdentity()
const bob = generateIdentity()
const mallory = generateIdentity()

async function connect(
  a: Partial<HandshakeOptions> = {}, b: Partial<HandshakeOptions> = {}, tap?: Parameters<typeof pipePair>[0],
): Promise<[SecureSession, SecureSession]> {
  const [pa, pb] = pipePair(tap)
  return Promise.all([
    performHandshake(pa, { identity: alice, role: 'initiator', expectedRemoteDid: bob.did, ...a }),
    performHandshake(pb, { identity: bob, role: 'responder', ...b }),
  ])
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const dec = (b: Uint8Array): string => new TextDecoder().decode(b)

async function rejects(p: Promise<unknown>): Promise<Error> {
  try { await p } catch (e) { return e as Error }
  throw new Error('expected a rejection')
}
function throws(fn: () => unknown): Error {
  try { fn() } catch (e) { return e as Error }
  throw new Error('expected a throw')
}

describe('handshake', () => {
  for (const backend of ['native', 'noble'] as const) {
    it(`binds both DIDs and agrees on keys (${backend})`, async () => {
      const [a, b] = await connect({ backend }, { backend })
      expect(a.remoteDid).toBe(bob.did)
      expect(b.remoteDid).toBe(alice.did)
      expect(a.localDid).toBe(alice.did)
      expect(Buffer.from(a.sessionId).equals(Buffer.from(b.sessionId))).toBe(true)
      expect(dec(b.decrypt(a.encrypt(enc('hello bob'))))).toBe('hello bob')
      expect(dec(a.decrypt(b.encrypt(enc('hello alice'))))).toBe('hello alice')
      expect(a.expiresAt).toBeGreaterThan(Date.now() + 23 * 3600_000)
    })
  }

  it('native and noble sessions interoperate', async () => {
    const [a, b] = await connect({ backend: 'native' }, { backend: 'noble' })
    for (let i = 0; i < 5; i++) expect(dec(b.decrypt(a.encrypt(enc(`m${i}`))))).toBe(`m${i}`)
    expect(dec(a.decrypt(b.encrypt(enc('back'))))).toBe('back')
  })

  it('gives different session ids and keys to two sessions of the same peers', async () => {
    const [a1] = await connect()
    const [a2, b2] = await connect()
    expect(Buffer.from(a1.sessionId).equals(Buffer.from(a2.sessionId))).toBe(false)
    expect(() => b2.decrypt(a1.encrypt(enc('x')))).toThrow(expect.objectContaining({ name: 'DecryptionError' }))
  })

  it('refuses a peer whose DID differs from the one dialled', async () => {
    const [pa, pb] = pipePair()
    const [ea] = await Promise.all([
      rejects(performHandshake(pa, { identity: alice, role: 'initiator', expectedRemoteDid: bob.did, timeoutMs: 2000 })),
      performHandshake(pb, { identity: mallory, role: 'responder', timeoutMs: 2000 }).catch((e: unknown) => e),
    ])
    expect(ea.name).toBe('PeerMismatchError')
  })

  it('lets the responder require a specific initiator', async () => {
    const [pa, pb] = pipePair()
    const [, eb] = await Promise.all([
      performHandshake(pa, { identity: alice, role: 'initiator', timeoutMs: 500 }).catch((e: unknown) => e),
      rejects(performHandshake(pb, { identity: bob, role: 'responder', expectedRemoteDid: mallory.did, timeoutMs: 2000 })),
    ])
    expect(eb.name).toBe('PeerMismatchError')
  })

  it('refuses a man in the middle who substitutes ephemeral keys and relays the identity messages', async () => {
    // Mallory runs her own handshakes with both sides and forwards Bob's encrypted identity message.
    const toBob = createHandshake({ identity: mallory, role: 'initiator' })
    const m1ToBob = toBob.start() as Uint8Array
    const bobHs = createHandshake({ identity: bob, role: 'responder' })
    const aliceHs = createHandshake({ identity: alice, role: 'initiator', expectedRemoteDid: bob.did })
    const m1FromAlice = aliceHs.start() as Uint8Array
    expect(m1FromAlice.length).toBe(34)
    const m2FromBob = (await bobHs.receive(m1ToBob)).reply as Uint8Array
    // Relay Bob's m2 to Alice unchanged: Bob's ephemeral, Bob's encrypted signature over a transcript
    // that contains Mallory's ephemeral, not Alice's.
    const err = await rejects(aliceHs.receive(m2FromBob))
    expect(err.name).toBe('HandshakeError')
    expect(aliceHs.done).toBe(false)
  })

  it('refuses a tampered second message', async () => {
    const err = await rejects(connect({ timeoutMs: 1000 }, { timeoutMs: 300 }, {
      bToA: (m, i) => { if (i === 0) { const c = m.slice(); c[40] = (c[40] as number) ^ 1; return c } return m },
    }))
    expect(['HandshakeError', 'HandshakeTimeoutError']).toContain(err.name)
  })

  it('refuses a replayed handshake message to a finished state machine', async () => {
    const a = createHandshake({ identity: alice, role: 'initiator' })
    const b = createHandshake({ identity: bob, role: 'responder' })
    const m1 = a.start() as Uint8Array
    const m2 = (await b.receive(m1)).reply as Uint8Array
    const s = await a.receive(m2)
    const m3 = s.reply as Uint8Array
    expect((await b.receive(m3)).session).toBeDefined()
    expect((await rejects(b.receive(m3))).name).toBe('HandshakeError')
    // a fresh responder fed an old m3 refuses it too
    const b2 = createHandshake({ identity: bob, role: 'responder' })
    expect((await rejects(b2.receive(m3))).name).toBe('HandshakeError')
  })

  it('refuses truncated and oversized handshake messages', async () => {
    const b = createHandshake({ identity: bob, role: 'responder' })
    expect((await rejects(b.receive(new Uint8Array(10)))).name).toBe('TruncatedRecordError')
    const b2 = createHandshake({ identity: bob, role: 'responder' })
    expect((await rejects(b2.receive(new Uint8Array(100_000)))).name).toBe('RecordTooLargeError')
    const a = createHandshake({ identity: alice, role: 'initiator' })
    a.start()
    const m1ish = new Uint8Array(34); m1ish[0] = 1; m1ish[1] = 2
    expect((await rejects(a.receive(m1ish))).name).toBe('TruncatedRecordError')
  })

  it('refuses a small-order ephemeral key', async () => {
    const b = createHandshake({ identity: bob, role: 'responder' })
    const m1 = new Uint8Array(34); m1[0] = 1; m1[1] = 1 // e = 0: small order, all-zero shared secret
    expect((await rejects(b.receive(m1))).name).toBe('HandshakeError')
  })

  it('times out when the peer stalls', async () => {
    const [pa] = pipePair()
    const err = await rejects(performHandshake(pa, { identity: alice, role: 'initiator', timeoutMs: 50 }))
    expect(err.name).toBe('HandshakeTimeoutError')
    expect((err as Error & { code: string }).code).toBe('ERR_HANDSHAKE_TIMEOUT')
  })

  it('times out even when the io ignores the abort signal', async () => {
    const io = { write: () => {}, read: () => new Promise<Uint8Array>(() => {}) }
    const err = await rejects(performHandshake(io, { identity: alice, role: 'initiator', timeoutMs: 30 }))
    expect(err.name).toBe('HandshakeTimeoutError')
  })

  it('stops on abort', async () => {
    const [pa] = pipePair()
    const ac = new AbortController()
    const p = performHandshake(pa, { identity: alice, role: 'initiator', signal: ac.signal })
    ac.abort()
    expect((await rejects(p)).name).toBe('AbortError')
  })
})

describe('records', () => {
  it('have a 24-byte overhead and round-trip empty and large payloads', async () => {
    const [a, b] = await connect()
    const r = a.encrypt(new Uint8Array(0))
    expect(r.length).toBe(RECORD_OVERHEAD)
    expect(b.decrypt(r).length).toBe(0)
    const big = new Uint8Array(65536).map((_, i) => i & 0xff)
    expect(Buffer.from(b.decrypt(a.encrypt(big))).equals(Buffer.from(big))).toBe(true)
  })

  it('refuses a replayed record', async () => {
    const [a, b] = await connect()
    const r = a.encrypt(enc('once'))
    b.decrypt(r)
    expect(throws(() => b.decrypt(r)).name).toBe('ReplayError')
  })

  it('refuses reordered records (strict order by default) and recovers when the right one comes', async () => {
    const [a, b] = await connect()
    const r0 = a.encrypt(enc('0')); const r1 = a.encrypt(enc('1'))
    expect(throws(() => b.decrypt(r1)).name).toBe('RecordOutOfOrderError')
    expect(dec(b.decrypt(r0))).toBe('0')
    expect(dec(b.decrypt(r1))).toBe('1')
    expect(throws(() => b.decrypt(r0)).name).toBe('ReplayError')
  })

  it('with a replay window accepts out-of-order records once each', async () => {
    const [a, b] = await connect({ replayWindow: 8 }, { replayWindow: 8 })
    const rs = Array.from({ length: 12 }, (_, i) => a.encrypt(enc(String(i))))
    expect(dec(b.decrypt(rs[5]!))).toBe('5')
    expect(dec(b.decrypt(rs[2]!))).toBe('2')
    expect(throws(() => b.decrypt(rs[2]!)).name).toBe('ReplayError')
    expect(dec(b.decrypt(rs[11]!))).toBe('11')
    expect(throws(() => b.decrypt(rs[3]!)).name).toBe('ReplayError') // 11 - 3 >= 8: too old
    expect(dec(b.decrypt(rs[4]!))).toBe('4')
  })

  it('refuses tampered, truncated and oversized records with typed errors, without losing state', async () => {
    const [a, b] = await connect({}, { maxRecordSize: 1024 })
    const r = a.encrypt(enc('payload'))
    const t = r.slice(); t[10] = (t[10] as number) ^ 0x80
    expect(throws(() => b.decrypt(t)).name).toBe('DecryptionError')
    const h = r.slice(); h[7] = 1 // header changes the nonce
    expect(['DecryptionError', 'RecordOutOfOrderError']).toContain(throws(() => b.decrypt(h)).name)
    expect(throws(() => b.decrypt(r.subarray(0, 23))).name).toBe('TruncatedRecordError')
    expect(throws(() => b.decrypt(r.subarray(0, r.length - 1))).name).toBe('DecryptionError')
    expect(throws(() => b.decrypt(new Uint8Array(1024 + 25))).name).toBe('RecordTooLargeError')
    expect(throws(() => b.encrypt(new Uint8Array(1025))).name).toBe('RecordTooLargeError')
    expect(dec(b.decrypt(r))).toBe('payload')
  })

  for (const backend of ['native', 'noble'] as const) {
    it(`encryptParts gives header, ciphertext and tag that concatenate to the record (${backend}, across rekeys)`, async () => {
      const [a, b] = await connect({ backend, rekeyAfterRecords: 2 }, { backend })
      for (let i = 0; i < 6; i++) {
        const pt = new Uint8Array(1000 + i).map((_, j) => (j * 7 + i) & 0xff)
        // encrypt and encryptParts share one sequence / epoch schedule
        let record: Uint8Array
        if (i % 2 === 0) {
          const parts = a.encryptParts(pt)
          expect(parts.map((p) => p.length)).toEqual([8, pt.length, 16])
          expect(parts[0][0]! * 256 + parts[0][1]!).toBe(a.sendEpoch)
          record = Buffer.concat(parts)
        } else {
          record = a.encrypt(pt)
        }
        expect(Buffer.from(b.decrypt(record)).equals(Buffer.from(pt))).toBe(true)
      }
      expect(a.sendEpoch).toBe(2)
      expect(b.receiveEpoch).toBe(2)
    })

    it(`binds the aad: a record opens only with the same aad, and the state survives a wrong one (${backend})`, async () => {
      const [a, b] = await connect({ backend }, { backend })
      const kind1 = Uint8Array.of(1)
      const whole = a.encrypt(enc('zero'), Uint8Array.of(0))
      const parts = a.encryptParts(enc('one'), kind1)
      const r1 = Buffer.concat(parts)
      expect(r1.length).toBe(3 + RECORD_OVERHEAD) // the aad is not part of the record
      expect(throws(() => b.decrypt(whole)).name).toBe('DecryptionError')
      expect(throws(() => b.decrypt(whole, kind1)).name).toBe('DecryptionError')
      expect(dec(b.decrypt(whole, Uint8Array.of(0)))).toBe('zero')
      expect(throws(() => b.decrypt(r1, Uint8Array.of(2))).name).toBe('DecryptionError')
      expect(throws(() => b.decrypt(r1)).name).toBe('DecryptionError')
      expect(dec(b.decrypt(r1, kind1))).toBe('one')
    })

    it(`treats an empty aad as none (old and new callers interoperate) (${backend})`, async () => {
      const [a, b] = await connect({ backend }, { backend })
      expect(dec(b.decrypt(a.encrypt(enc('x'), new Uint8Array(0))))).toBe('x')
      expect(dec(b.decrypt(Buffer.concat(a.encryptParts(enc('y'))), new Uint8Array(0)))).toBe('y')
    })

    it(`decrypts a record that is a view into a larger buffer, leaving the buffer as it was (${backend})`, async () => {
      const [a, b] = await connect({ backend }, { backend })
      const pt = new Uint8Array(70_000).map((_, i) => (i * 13) & 0xff)
      const record = Buffer.concat(a.encryptParts(pt, Uint8Array.of(0)))
      const big = new Uint8Array(record.length + 100).fill(0xee)
      big.set(record, 37)
      const before = big.slice()
      const out = b.decrypt(big.subarray(37, 37 + record.length), Uint8Array.of(0))
      expect(Buffer.from(out).equals(Buffer.from(pt))).toBe(true)
      expect(Buffer.from(big).equals(Buffer.from(before))).toBe(true)
      expect(out.buffer === big.buffer).toBe(false)
    })
  }

  it('encryptParts parts are not tied to the plaintext buffer and enforce the same limits', async () => {
    const [a, b] = await connect({ maxRecordSize: 1024 })
    const pt = new Uint8Array(512).fill(9)
    const parts = a.encryptParts(pt)
    pt.fill(0) // the caller reuses its buffer before the parts are written
    expect(Buffer.from(b.decrypt(Buffer.concat(parts))).equals(Buffer.alloc(512, 9))).toBe(true)
    expect(throws(() => a.encryptParts(new Uint8Array(1025))).name).toBe('RecordTooLargeError')
    a.close()
    expect(throws(() => a.encryptParts(pt)).name).toBe('ConnectionClosedError')
  })

  it('cannot be decrypted by the sender direction (keys are per direction)', async () => {
    const [a] = await connect()
    const r = a.encrypt(enc('x'))
    expect(throws(() => a.decrypt(r)).name).toBe('DecryptionError')
  })

  it('rekeys automatically by record count, signalled in-band', async () => {
    const [a, b] = await connect({ rekeyAfterRecords: 3 }, {})
    for (let i = 0; i < 10; i++) expect(dec(b.decrypt(a.encrypt(enc(`r${i}`))))).toBe(`r${i}`)
    expect(a.sendEpoch).toBe(3)
    expect(b.receiveEpoch).toBe(3)
  })

  it('rekeys by bytes and on demand', async () => {
    const [a, b] = await connect({ rekeyAfterBytes: 100 }, {})
    b.decrypt(a.encrypt(new Uint8Array(150)))
    b.decrypt(a.encrypt(new Uint8Array(10)))
    expect(b.receiveEpoch).toBe(1)
    a.rekey()
    b.decrypt(a.encrypt(new Uint8Array(1)))
    expect(b.receiveEpoch).toBe(2)
    // an old-epoch record is refused
    const [c, d] = await connect({ rekeyAfterRecords: 1 }, {})
    const r0 = c.encrypt(enc('0')); const r1 = c.encrypt(enc('1'))
    d.decrypt(r0); d.decrypt(r1)
    expect(throws(() => d.decrypt(r0)).name).toBe('ReplayError')
  })

  it('refuses a record from a skipped epoch', async () => {
    const [a, b] = await connect({ rekeyAfterRecords: 1 }, {})
    a.encrypt(enc('0')); a.encrypt(enc('1'))
    const r2 = a.encrypt(enc('2'))
    expect(throws(() => b.decrypt(r2)).name).toBe('RecordOutOfOrderError')
  })

  it('expires after its lifetime (24 h default) with an injected clock', async () => {
    let now = 1_000_000
    const [a, b] = await connect({ now: () => now }, { now: () => now })
    expect(a.expiresAt).toBe(1_000_000 + 24 * 3600 * 1000)
    const r = a.encrypt(enc('late'))
    now += 24 * 3600 * 1000
    expect(throws(() => b.decrypt(r)).name).toBe('SessionExpiredError')
    expect(throws(() => a.encrypt(enc('x'))).name).toBe('SessionExpiredError')
  })

  it('takes its lifetime and expiry from an injected Clock', async () => {
    const clock = new ManualClock(5_000_000)
    const [a, b] = await connect({ clock, lifetimeMs: 60_000 }, { clock, lifetimeMs: 60_000 })
    expect(a.expiresAt).toBe(5_060_000)
    const r = a.encrypt(enc('in time'))
    expect(dec(b.decrypt(r))).toBe('in time')
    const late = a.encrypt(enc('late'))
    clock.advance(60_000)
    expect(throws(() => b.decrypt(late)).name).toBe('SessionExpiredError')
    expect(throws(() => a.encrypt(enc('x'))).name).toBe('SessionExpiredError')
  })

  it('runs the handshake timeout on the injected Clock (and clears it when done)', async () => {
    const clock = new ManualClock(0)
    const [pa] = pipePair()
    // nobody answers: only the injected clock can end this handshake (its timeout is an hour)
    const hs = performHandshake(pa, { identity: alice, role: 'initiator', timeoutMs: 3_600_000, clock })
    await Promise.resolve()
    expect(clock.pending).toBe(1)
    clock.advance(3_599_999)
    clock.advance(1)
    expect((await rejects(hs)).name).toBe('HandshakeTimeoutError')
    const done = new ManualClock(0)
    await connect({ clock: done }, { clock: done })
    expect(done.pending).toBe(0)
  })

  it('refuses use after close', async () => {
    const [a] = await connect()
    a.close()
    expect(throws(() => a.encrypt(enc('x'))).name).toBe('ConnectionClosedError')
  })
})
