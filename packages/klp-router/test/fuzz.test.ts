/**
 * Seeded mutation fuzz (DESIGN: >= 100,000 fuzzed frames per decoder per CI run, zero crashes or
 * hangs, only typed errors). Valid enveloped, signed messages are mutated (bit flips, byte
 * overwrites, truncation, extension, insertion, random header bytes, hop counts, kinds, flags)
 * and every mutant goes (1) through the router's envelope decoder and the codec decoder directly,
 * which may only throw typed errors, and (2) into a started router's inbound pipeline through a
 * connection, where each frame must end as exactly one typed reject or one handler call, and no
 * message may reach a handler unless it is byte-identical to one of the valid originals.
 * FUZZ_FRAMES and FUZZ_SEED override the count (default 100,000) and the seed.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createSignatureVerifier, generateIdentity } from '@kos-mesh/did-security'
import { KLPMessageType, KosMeshError, MessagePriority, ProcessingStatus, type Connection, type KLPMessage, type KLPValue, type MessageHandler } from '@kos-mesh/interface'
import { createMessage, decodeMessage, encodeMessage, signMessage } from '@kos-mesh/klp-codec'
import { klpRouter, type Router } from '../src/router.js'
import { EnvelopeKind, InvalidEnvelopeError, decodeEnvelope, encodeEnvelope } from '../src/envelope.js'
import { REJECT_REASONS } from '../src/reasons.js'
import { FeedConnection, feedTransport, prng } from './helpers.js'

const FRAMES = Number(process.env.FUZZ_FRAMES ?? 100_000)
const SEED = Number(process.env.FUZZ_SEED ?? 0x6b6c70)
const CHUNK = 500

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

let router: Router | undefined
afterEach(async () => {
  await router?.stop()
  router = undefined
})

/** Valid frames from one sender: several types, priorities, hints, payload shapes, targets. */
async function validFrames(senderSigner: Parameters<typeof signMessage>[1]): Promise<Uint8Array[]> {
  const rnd = prng(SEED ^ 0x55)
  const types = [KLPMessageType.TASK_REQUEST, KLPMessageType.VECTOR_SYNC, KLPMessageType.BROADCAST_ANNOUNCE, KLPMessageType.TASK_RESPONSE]
  const payloads: KLPValue[] = [null, 42, 'hello', { a: 1, b: [true, false, null], c: { d: 'e' } }, new Uint8Array([1, 2, 3, 4, 5]), [1, 'two', new Uint8Array(16)], { text: 'x'.repeat(200), vec: new Uint8Array(64) }]
  const out: Uint8Array[] = []
  const now = Date.now()
  for (let i = 0; i < 40; i++) {
    const type = types[i % types.length]!
    const msg = await signMessage(createMessage({
      type,
      source: `klp://sender.mesh.kai/agents/${i}`,
      // a few are for another node: they take the forwarding path (no route)
      target: i % 10 === 9 ? 'klp://elsewhere.mesh.kai/x' : 'klp://fuzz.mesh.kai/services/s',
      data: payloads[i % payloads.length]!,
      priority: [MessagePriority.LOW, MessagePriority.NORMAL, MessagePriority.HIGH, MessagePriority.CRITICAL][Math.floor(rnd() * 4)]!,
      ttl: 3600,
      timestamp: now,
      ...(type === KLPMessageType.TASK_RESPONSE ? { correlation_id: `corr-${i}` } : {}),
      ...(i % 5 === 0 ? { routing_hints: [{ kind: 'via', value: 'fuzz.mesh.kai' }] } : {}),
    }), senderSigner)
    out.push(encodeEnvelope(EnvelopeKind.MESSAGE, Math.floor(rnd() * 3), 0, encodeMessage(msg)))
  }
  return out
}

/** One mutant of a valid frame. */
function mutate(rnd: () => number, base: Uint8Array): Uint8Array {
  const int = (n: number): number => Math.floor(rnd() * n)
  const op = int(10)
  switch (op) {
    case 0: { // 1-4 bit flips anywhere
      const f = base.slice()
      for (let k = 1 + int(4); k > 0; k--) f[int(f.length)]! ^= 1 << int(8)
      return f
    }
    case 1: { // random byte overwrites
      const f = base.slice()
      for (let k = 1 + int(3); k > 0; k--) f[int(f.length)] = int(256)
      return f
    }
    case 2: // truncation
      return base.slice(0, int(base.length))
    case 3: { // extension with random bytes
      const extra = 1 + int(rnd() < 0.9 ? 16 : 4096)
      const f = new Uint8Array(base.length + extra)
      f.set(base)
      for (let i = base.length; i < f.length; i++) f[i] = int(256)
      return f
    }
    case 4: { // random bytes inserted or removed in the middle
      const at = int(base.length)
      if (rnd() < 0.5) {
        const n = 1 + int(8)
        const f = new Uint8Array(base.length + n)
        f.set(base.subarray(0, at))
        for (let i = 0; i < n; i++) f[at + i] = int(256)
        f.set(base.subarray(at), at + n)
        return f
      }
      const n = Math.min(1 + int(8), base.length - at)
      const f = new Uint8Array(base.length - n)
      f.set(base.subarray(0, at))
      f.set(base.subarray(at + n), at)
      return f
    }
    case 5: { // random header bytes
      const f = base.slice()
      for (let i = 0; i < 5; i++) if (rnd() < 0.5) f[i] = int(256)
      return f
    }
    case 6: { // hop count (body untouched: a valid message, delivered at most once)
      const f = base.slice()
      f[3] = int(256)
      return f
    }
    case 7: { // kind (2 = hello: the hello path gets a non-hello message)
      const f = base.slice()
      f[2] = rnd() < 0.5 ? EnvelopeKind.HELLO : int(256)
      return f
    }
    case 8: { // flags
      const f = base.slice()
      f[4] = rnd() < 0.5 ? 1 : int(256)
      return f
    }
    default: { // flips inside the signature or the last bytes of the body
      const f = base.slice()
      f[f.length - 1 - int(Math.min(f.length - 1, 96))]! ^= 1 << int(8)
      return f
    }
  }
}

describe('fuzz', () => {
  it(`${FRAMES} mutated frames: typed errors only, no crash, no hang, nothing forged delivered`, async () => {
    const sender = generateIdentity()
    const node = generateIdentity()
    const valid = await validFrames(sender.signer)
    const validBodies = new Set(valid.map((f) => hex(f.subarray(5))))

    let onConn!: (c: Connection) => void
    router = klpRouter({ authority: 'fuzz.mesh.kai', listen: ['feed://test'], rateLimit: false, maxQueuePerPeer: 4 * CHUNK, maxQueueTotal: 4 * CHUNK, routeRefreshMs: 0 })({
      signer: node.signer,
      signatureVerifier: createSignatureVerifier(),
      transports: [feedTransport((h) => { onConn = h })],
    })
    const delivered = new Map<string, number>()
    let forged = 0
    const handler: MessageHandler = (msg: KLPMessage) => {
      // byte-identical to a valid original, or it is a forgery that got through
      if (!validBodies.has(hex(encodeMessage(msg)))) forged++
      delivered.set(msg.metadata.message_id, (delivered.get(msg.metadata.message_id) ?? 0) + 1)
      return { status: ProcessingStatus.PROCESSED }
    }
    for (const t of [KLPMessageType.TASK_REQUEST, KLPMessageType.VECTOR_SYNC, KLPMessageType.BROADCAST_ANNOUNCE, KLPMessageType.TASK_RESPONSE]) router.handle(t, handler)
    await router.start()
    const conn = new FeedConnection(sender.did)
    onConn(conn)

    const unhandled: unknown[] = []
    const onUnhandled = (e: unknown): void => {
      unhandled.push(e)
    }
    process.on('unhandledRejection', onUnhandled)
    const untyped: unknown[] = []
    const typedCodes = new Set<string>()
    const rnd = prng(SEED)
    let handled = 0
    const outcomes = (): number => {
      const m = router!.metrics()
      return Object.values(m.rejects).reduce((a, b) => a + b, 0) + m.processed
    }
    try {
      for (let sent = 0; sent < FRAMES; sent += CHUNK) {
        const chunk: Uint8Array[] = []
        for (let i = 0; i < CHUNK && sent + i < FRAMES; i++) {
          // 1 in 50 is an untouched valid frame (a replay after its first delivery)
          const base = valid[Math.floor(rnd() * valid.length)]!
          const f = rnd() < 0.02 ? base.slice() : mutate(rnd, base)
          // (1) the decoders directly: a typed error or a consistent result
          try {
            const env = decodeEnvelope(f)
            expect(env.body.byteLength).toBe(f.byteLength - 5)
            try {
              decodeMessage(env.body)
            } catch (err) {
              if (err instanceof KosMeshError && typeof (err as { code?: unknown }).code === 'string') typedCodes.add(err.code)
              else untyped.push(err)
            }
          } catch (err) {
            if (!(err instanceof InvalidEnvelopeError)) untyped.push(err)
          }
          chunk.push(f)
        }
        // (2) the pipeline: every frame ends as one typed reject or one handler call
        conn.push(chunk)
        handled += chunk.length
        const deadline = Date.now() + 10_000
        while (outcomes() < handled) {
          if (Date.now() > deadline) throw new Error(`pipeline hang: ${outcomes()} outcomes for ${handled} frames`)
          await new Promise((r) => setImmediate(r))
        }
      }
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
    const m = router.metrics()
    if (process.env.FUZZ_VERBOSE !== undefined) console.log({ rejects: m.rejects, processed: m.processed, delivered: delivered.size, codes: [...typedCodes] })
    expect(untyped).toEqual([])
    expect(unhandled).toEqual([])
    expect(forged).toBe(0)
    expect(m.messagesIn).toBe(FRAMES)
    expect(outcomes()).toBe(FRAMES)
    for (const reason of Object.keys(m.rejects)) expect(REJECT_REASONS).toContain(reason)
    // each valid message at most once (replay window), and the mutants exercised the deep paths
    for (const n of delivered.values()) expect(n).toBe(1)
    expect(delivered.size).toBeGreaterThan(valid.length / 2)
    expect(m.rejects.malformed).toBeGreaterThan(FRAMES / 4)
    expect(m.rejects.replay).toBeGreaterThan(0)
    expect(m.rejects.invalid_signature).toBeGreaterThan(0)
    expect(typedCodes.size).toBeGreaterThan(3)
    expect(router.isStarted()).toBe(true)
  }, 120_000)
})
