/**
 * Each pipeline stage on its own, without a network: a RouterCore over real tables and real
 * signatures, and hand-made messages.
 */
import { describe, expect, it } from 'vitest'
import { createSignatureVerifier, generateIdentity, type Identity } from '@kos-mesh/did-security'
import { KLPMessageType, ProcessingStatus, VerificationLevel, systemClock, type Clock, type KLPMessage, type MessageContext, type TrustEngine } from '@kos-mesh/interface'
import { createMessage, encodeMessage, signMessage } from '@kos-mesh/klp-codec'
import { createMemoryNetwork } from '@kos-mesh/transport-memory'
import { RouterCore, type QueueItem, type Slot } from '../src/core.js'
import { EnvelopeKind, encodeEnvelope } from '../src/envelope.js'
import { resolveConfig, type RouterInit } from '../src/options.js'
import { OutboundQueues } from '../src/outbound.js'
import { ReplayWindow } from '../src/replay-cache.js'
import { ResponseCache } from '../src/response-cache.js'
import { RoutingTable } from '../src/routing-table.js'
import { FairScheduler } from '../src/scheduler.js'
import { staticTrustEngine } from '@kos-mesh/trust'
import {
  checkBeforeStart,
  checkExpiry,
  checkFrame,
  checkRevoked,
  checkSeen,
  checkSignature,
  checkSource,
  checkTrust,
  decodeFrame,
  findHandler,
  matchResponse,
  record,
  runHandler,
  REJECT,
} from '../src/stages/index.js'

const node = generateIdentity()
const peer = generateIdentity()
const verifier = createSignatureVerifier()

function makeCore(init: Partial<RouterInit> = {}, o: { trust?: TrustEngine; clock?: Clock } = {}): RouterCore {
  const clock = o.clock ?? systemClock
  const now = (): number => clock.now()
  const core = new RouterCore({
    authority: 'node.mesh.kai',
    signer: node.signer,
    verifier,
    trust: o.trust ?? staticTrustEngine(),
    clock,
    log: { debug() {}, info() {}, warn() {}, error() {} },
    cfg: resolveConfig({ authority: 'node.mesh.kai', ...init }),
    table: new RoutingTable({ now, maxHops: 8 }),
    replay: new ReplayWindow({ now }),
    responses: new ResponseCache({ now }),
    queue: new FairScheduler<QueueItem>(),
    outbound: new OutboundQueues(),
  })
  core.started = true
  core.startedAt = clock.now()
  return core
}

function slotOf(core: RouterCore): Slot {
  const controller = new AbortController()
  return { controller, options: { signal: controller.signal }, gen: core.gen }
}

async function signed(init: Partial<Parameters<typeof createMessage>[0]> = {}, id: Identity = peer): Promise<KLPMessage> {
  return signMessage(createMessage({ type: KLPMessageType.TASK_REQUEST, source: 'klp://peer.mesh.kai/', target: 'klp://node.mesh.kai/', data: 'x', ...init }), id.signer)
}

const frameOf = (m: KLPMessage): Uint8Array => encodeEnvelope(EnvelopeKind.MESSAGE, 0, 0, encodeMessage(m))

describe('stage: frame (envelope and size, rate)', () => {
  it('refuses oversized frames, a peer over its rate, and bad envelopes; passes a good frame', async () => {
    const core = makeCore({ maxFrameBytes: 2000, rateLimit: { ratePerSec: 1, burst: 2 } })
    const f = frameOf(await signed())
    expect(checkFrame(core, 'did:p', new Uint8Array(3000), 0)).toBe(REJECT.FRAME_TOO_LARGE)
    expect(checkFrame(core, 'did:p', f, 0)).toBeUndefined()
    const bad = f.slice()
    bad[0] = 0
    expect(checkFrame(core, 'did:p', bad, 0)).toBe(REJECT.MALFORMED)
    expect(checkFrame(core, 'did:p', f, 0)).toBe(REJECT.RATE_LIMITED) // the bucket of 2 is spent (the bad frame took a token)
    expect(checkFrame(core, 'did:other', f, 0)).toBeUndefined()
  })
})

describe('stage: decode', () => {
  it('decodes a valid frame with views into it and refuses garbage', async () => {
    const core = makeCore()
    const f = frameOf(await signed({ data: new Uint8Array(64) }))
    const m = decodeFrame(core, f) as KLPMessage
    expect(m.type).toBe(KLPMessageType.TASK_REQUEST)
    expect((m.payload.data as Uint8Array).buffer).toBe(f.buffer)
    expect(decodeFrame(core, encodeEnvelope(EnvelopeKind.MESSAGE, 0, 0, new Uint8Array([0xff, 1, 2])))).toBe(REJECT.MALFORMED)
  })
})

describe('stage: expiry and ttl', () => {
  it('refuses a ttl over the bound, expired and future messages, and applies the maximum age', async () => {
    const core = makeCore({ maxTtlSeconds: 3600, maxMessageAgeSeconds: 60, clockSkewMs: 1000 })
    const now = Date.now()
    expect(checkExpiry(core, await signed({ ttl: 7200 }), now)).toBe(REJECT.TTL_TOO_LONG)
    expect(checkExpiry(core, await signed({ ttl: 60, timestamp: now - 70_000 }), now)).toBe(REJECT.EXPIRED)
    expect(checkExpiry(core, await signed({ ttl: 60, timestamp: now + 5000 }), now)).toBe(REJECT.EXPIRED)
    // a ttl of an hour is capped by the 60 s maximum age
    expect(checkExpiry(core, await signed({ ttl: 3600, timestamp: now - 70_000 }), now)).toBe(REJECT.EXPIRED)
    expect(checkExpiry(core, await signed({ ttl: 3600, timestamp: now - 30_000 }), now)).toBeUndefined()
  })

  it('refuses messages from before the router started unless acceptBeforeStart', async () => {
    const old = await signed({ ttl: 600, timestamp: Date.now() - 120_000 })
    expect(checkBeforeStart(makeCore(), old)).toBe(REJECT.REPLAY)
    expect(checkBeforeStart(makeCore({ acceptBeforeStart: true }), old)).toBeUndefined()
  })
})

describe('stage: replay', () => {
  it('records once, then refuses the same signer + id and answers it from the response cache', async () => {
    const core = makeCore()
    const key = `${peer.did} id1`
    expect(checkSeen(core, key)).toBeUndefined()
    expect(record(core, key, Date.now() + 60_000, peer.did)).toBeUndefined()
    expect(record(core, key, Date.now() + 60_000, peer.did)).toBe(REJECT.REPLAY)
    core.responses.set(key, new Uint8Array(10), 'peer.mesh.kai', Date.now() + 60_000)
    expect(checkSeen(core, key)).toBe(REJECT.REPLAY)
    expect(core.counters.cachedResponses).toBe(1)
    // another signer with the same id is another key
    expect(checkSeen(core, `${node.did} id1`)).toBeUndefined()
  })
})

describe('stage: signature', () => {
  it('passes a valid signature, refuses a tampered one and an unknown key', async () => {
    const core = makeCore()
    const m = await signed()
    expect(await checkSignature(core, m, slotOf(core))).toBeUndefined()
    const sig = m.signature.slice()
    sig[0]! ^= 1
    expect(await checkSignature(core, { ...m, signature: sig }, slotOf(core))).toBe(REJECT.INVALID_SIGNATURE)
    expect(await checkSignature(core, { ...m, signer: 'did:web:example.com#k' }, slotOf(core))).toBe(REJECT.UNKNOWN_KEY)
  })

  it('gives null when the router stopped while verifying', async () => {
    const core = makeCore()
    const slot = slotOf(core)
    core.gen++
    expect(await checkSignature(core, await signed(), slot)).toBeNull()
  })
})

describe('stage: source binding', () => {
  it('refuses a source authority pinned to another DID, and a response nobody waits for or handles', async () => {
    const core = makeCore()
    core.table.pin('peer.mesh.kai', node.did)
    expect(checkSource(core, await signed(), peer.did)).toBe(REJECT.SOURCE_MISMATCH)
    const free = makeCore()
    expect(checkSource(free, await signed(), peer.did)).toBeUndefined()
    expect(checkSource(free, await signed({ correlation_id: 'c1', type: KLPMessageType.TASK_RESPONSE }), peer.did)).toBe(REJECT.UNSOLICITED_RESPONSE)
    free.handlers.set(KLPMessageType.TASK_RESPONSE, () => ({ status: ProcessingStatus.PROCESSED }))
    expect(checkSource(free, await signed({ correlation_id: 'c1', type: KLPMessageType.TASK_RESPONSE }), peer.did)).toBeUndefined()
  })
})

describe('stage: revocation', () => {
  it('refuses a signer the engine says is revoked; engines without isRevoked revoke nobody', () => {
    const revoked = new Set([peer.did])
    const core = makeCore({}, { trust: { check: () => ({ passed: true, score: 0, endorsements: 0 }), isRevoked: (d) => revoked.has(d) } })
    expect(checkRevoked(core, peer.did)).toBe(REJECT.REVOKED)
    expect(checkRevoked(core, node.did)).toBeUndefined()
    expect(REJECT.REVOKED).toMatchObject({ reason: 'revoked', answer: false })
    expect(checkRevoked(makeCore(), peer.did)).toBeUndefined()
  })
})

describe('stage: trust', () => {
  it('checks the message requirements with the receiver policy (stricter wins), sync and async, and a failing engine', async () => {
    const trust = staticTrustEngine()
    trust.set(peer.did, { trust_score: 4, verification_level: VerificationLevel.CRYPTOGRAPHIC })
    const core = makeCore({}, { trust })
    const needs = (score: number) => ({ trust_requirements: { minimum_trust_score: score, required_endorsements: 0, verification_level: VerificationLevel.NONE } })
    expect(checkTrust(core, await signed(needs(3)), peer.did, slotOf(core))).toBeUndefined()
    expect(checkTrust(core, await signed(needs(5)), peer.did, slotOf(core))).toBe(REJECT.INSUFFICIENT_TRUST)
    const strict = makeCore({ trustPolicy: { [KLPMessageType.TASK_REQUEST]: { minimum_trust_score: 5, required_endorsements: 0, verification_level: VerificationLevel.NONE } } }, { trust })
    expect(checkTrust(strict, await signed(needs(0)), peer.did, slotOf(strict))).toBe(REJECT.INSUFFICIENT_TRUST)
    const asyncCore = makeCore({}, { trust: { check: async () => ({ passed: true, score: 9, endorsements: 0 }) } })
    expect(await checkTrust(asyncCore, await signed(), peer.did, slotOf(asyncCore))).toBeUndefined()
    const broken = makeCore({}, { trust: { check: () => { throw new Error('down') } } })
    expect(checkTrust(broken, await signed(), peer.did, slotOf(broken))).toBe(REJECT.INSUFFICIENT_TRUST)
    expect(REJECT.INSUFFICIENT_TRUST.answer).toBe(true)
  })
})

describe('stage: response matching', () => {
  it('resolves a pending request only from its target, with its type and signer; a mismatch keeps it pending', async () => {
    const core = makeCore()
    core.table.pin('peer.mesh.kai', peer.did)
    let got: KLPMessage | undefined
    core.pending.set('req1', { resolve: (m) => { got = m }, reject: () => {}, target: 'peer.mesh.kai', responseType: KLPMessageType.TASK_RESPONSE, expectedSigner: undefined, explicitSigner: false, reliesOnPin: true })
    const other = generateIdentity()
    const forged = await signed({ type: KLPMessageType.TASK_RESPONSE, correlation_id: 'req1' }, other)
    expect(matchResponse(core, forged, other.did)).toBe(REJECT.RESPONSE_MISMATCH)
    const wrongType = await signed({ type: KLPMessageType.VECTOR_SYNC, correlation_id: 'req1' })
    expect(matchResponse(core, wrongType, peer.did)).toBe(REJECT.RESPONSE_MISMATCH)
    expect(core.pending.has('req1')).toBe(true)
    const genuine = await signed({ type: KLPMessageType.TASK_RESPONSE, correlation_id: 'req1' })
    expect(matchResponse(core, genuine, peer.did)).toBe('matched')
    expect(got).toBe(genuine)
    expect(core.pending.has('req1')).toBe(false)
    expect(core.table.pinEntries().find((p) => p.authority === 'peer.mesh.kai')?.firm).toBe(true)
    expect(matchResponse(core, await signed(), peer.did)).toBe('none')
  })
})

describe('stage: dispatch', () => {
  it('finds the handler of the longest matching path, else the type default, else refuses', async () => {
    const core = makeCore()
    const calls: string[] = []
    core.handlers.set(KLPMessageType.TASK_REQUEST, () => { calls.push('default'); return { status: ProcessingStatus.PROCESSED } })
    core.handlers.set(KLPMessageType.TASK_REQUEST, () => { calls.push('bulk'); return { status: ProcessingStatus.PROCESSED } }, { path: '/bulk' })
    core.handlers.set(KLPMessageType.TASK_REQUEST, () => { calls.push('bulk/x'); return { status: ProcessingStatus.PROCESSED } }, { path: '/bulk/x' })
    const ctx: MessageContext = { fromPeer: peer.did, signerDid: peer.did, receivedAt: 0 }
    for (const path of ['/bulk', '/bulk/x/y', '/bulkx', '/']) {
      const m = await signed({ target: `klp://node.mesh.kai${path}` })
      const h = findHandler(core, m)
      expect(typeof h).toBe('function')
      await runHandler(core, h as never, m, ctx)
    }
    expect(calls).toEqual(['bulk', 'bulk/x', 'default', 'default'])
    const unsupported = findHandler(core, await signed({ type: KLPMessageType.VECTOR_SYNC }))
    expect(unsupported).toMatchObject({ reason: 'unsupported_message_type', answer: true })
    expect(findHandler(core, await signed({ type: KLPMessageType.VECTOR_SYNC, correlation_id: 'c' }))).toBe(REJECT.UNSOLICITED_RESPONSE)
  })

  it('turns a throwing, a non-result and a too slow handler into handler_error (the timeout on the router clock)', async () => {
    const network = createMemoryNetwork({ time: 'virtual' })
    const core = makeCore({ handlerTimeoutMs: 1000 }, { clock: network.clock })
    const ctx: MessageContext = { fromPeer: peer.did, signerDid: peer.did, receivedAt: 0 }
    const m = await signed()
    expect(await runHandler(core, () => { throw new Error('boom') }, m, ctx)).toBe(REJECT.HANDLER_ERROR)
    expect(await runHandler(core, () => 42 as never, m, ctx)).toBe(REJECT.HANDLER_ERROR)
    const slow = runHandler(core, () => new Promise(() => {}), m, ctx)
    await network.runFor(999)
    let done = false
    void slow.then(() => { done = true })
    await new Promise((r) => setImmediate(r))
    expect(done).toBe(false)
    await network.runFor(2)
    expect(await slow).toBe(REJECT.HANDLER_ERROR)
  })
})
