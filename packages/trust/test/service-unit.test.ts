/**
 * The trust service on test doubles of the MessageRouter (a tiny in-process net that really signs
 * messages and round-trips payloads through DAG-CBOR), in the memory transport's virtual time:
 * init checks, the handler never throws, the publish timer on the injected clock, stop() undoing
 * start(), bounded answers, sync on connect, abort.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { createSignatureVerifier, generateIdentity, type Identity } from '@kos-mesh/did-security'
import {
  KLPMessageType,
  ProcessingStatus,
  type HandleOptions,
  type KLPMessage,
  type KLPValue,
  type MessageHandler,
  type MessageInit,
  type MessageRouter,
  type MessageRouterEvents,
  type PeerInfo,
  type ProcessingResult,
  type RequestOptions,
} from '@kos-mesh/interface'
import { createMessage, signMessage } from '@kos-mesh/klp-codec'
import { createMemoryNetwork } from '@kos-mesh/transport-memory'
import { describe, expect, it } from 'vitest'
import { createTrustEngine } from '../src/engine/index.js'
import { trustService, type TrustServiceMetrics } from '../src/service.js'
import type { KeyValueStore } from '@kos-mesh/interface'
import type { SignedStatement, TrustGraphEngine, TrustService, TrustServiceInit } from '../src/index.js'

class FakeNet {
  readonly routers = new Map<string, FakeRouter>()
  readonly log: Array<{ from: string; to: string; type: string; data: unknown }> = []
}

class FakeRouter implements MessageRouter {
  readonly events = new EventTarget()
  readonly did: string
  readonly handlers = new Map<string, MessageHandler>()
  readonly links = new Set<FakeRouter>()
  readonly results: ProcessingResult[] = []

  constructor(readonly net: FakeNet, readonly identity: Identity, readonly authority: string) {
    this.did = identity.did
    net.routers.set(authority, this)
  }

  link(other: FakeRouter): void {
    this.links.add(other)
    other.links.add(this)
    this.events.dispatchEvent(new CustomEvent('peer:identify', { detail: { did: other.did, authority: other.authority, connectionId: `${this.authority}-${other.authority}` } }))
    other.events.dispatchEvent(new CustomEvent('peer:identify', { detail: { did: this.did, authority: this.authority, connectionId: `${other.authority}-${this.authority}` } }))
  }

  handle(type: string, handler: MessageHandler, options?: HandleOptions): void {
    const k = `${type} ${options?.path ?? ''}`
    if (this.handlers.has(k)) throw new Error(`duplicate handler ${k}`)
    this.handlers.set(k, handler)
  }

  unhandle(type: string, options?: HandleOptions): void {
    this.handlers.delete(`${type} ${options?.path ?? ''}`)
  }

  addrs(): string[] {
    return []
  }

  async dial(): Promise<PeerInfo> {
    throw new Error('not in the fake')
  }

  async #deliver(init: MessageInit, correlation?: string): Promise<{ msg: KLPMessage; result: ProcessingResult | undefined }> {
    const target = String(init.target)
    const authority = target.slice('klp://'.length, target.indexOf('/', 'klp://'.length))
    const path = target.slice(target.indexOf('/', 'klp://'.length))
    // what the wire does to the payload
    const data = dagCbor.decode(dagCbor.encode(init.data)) as KLPValue
    const msg = await signMessage(createMessage({ type: init.type, source: `klp://${this.authority}${init.sourcePath ?? '/'}`, target, data, ...(correlation === undefined ? {} : { correlation_id: correlation }) }), this.identity.signer)
    const to = this.net.routers.get(authority)
    this.net.log.push({ from: this.authority, to: authority, type: init.type, data })
    const handler = to?.handlers.get(`${init.type} ${path}`)
    if (to === undefined || handler === undefined) return { msg, result: undefined }
    const result = await handler(msg, { fromPeer: this.did, signerDid: this.did, receivedAt: 0 })
    to.results.push(result)
    return { msg, result }
  }

  async send(init: MessageInit | KLPMessage): Promise<KLPMessage> {
    const { msg } = await this.#deliver(init as MessageInit)
    return msg
  }

  async request(init: MessageInit, _options?: RequestOptions): Promise<KLPMessage> {
    const { result } = await this.#deliver(init)
    if (result?.status === ProcessingStatus.REJECTED) throw Object.assign(new Error('rejected'), { name: 'RemoteRejectedError', reason: result.reason })
    if (result?.response === undefined) throw Object.assign(new Error('no answer'), { name: 'RequestTimeoutError' })
    return result.response
  }

  async broadcast(): Promise<KLPMessage> {
    throw new Error('not in the fake')
  }

  async createResponse(request: KLPMessage, data: KLPValue): Promise<KLPMessage> {
    return signMessage(createMessage({ type: request.type, source: `klp://${this.authority}/trust`, target: request.source, data: dagCbor.decode(dagCbor.encode(data)) as KLPValue, correlation_id: request.metadata.message_id }), this.identity.signer)
  }

  peers(): PeerInfo[] {
    return [...this.links].map((r) => ({ did: r.did, authority: r.authority, connectionId: `${this.authority}-${r.authority}` }))
  }

  didOf(authority: string): string | undefined {
    return this.net.routers.get(authority)?.did
  }

  authorityOf(did: string): string | undefined {
    for (const r of this.links) if (r.did === did) return r.authority
    return undefined
  }

  setBroadcastStrategy(): void {}

  addEventListener<K extends keyof MessageRouterEvents>(type: K, listener: (evt: MessageRouterEvents[K]) => void): void {
    this.events.addEventListener(type, listener as (evt: Event) => void)
  }

  removeEventListener<K extends keyof MessageRouterEvents>(type: K, listener: (evt: MessageRouterEvents[K]) => void): void {
    this.events.removeEventListener(type, listener as (evt: Event) => void)
  }
}

class MapStore implements KeyValueStore {
  readonly map = new Map<string, Uint8Array>()
  async get(k: string): Promise<Uint8Array | undefined> {
    return this.map.get(k)
  }
  async put(k: string, v: Uint8Array): Promise<void> {
    this.map.set(k, v)
  }
  async delete(k: string): Promise<void> {
    this.map.delete(k)
  }
  async has(k: string): Promise<boolean> {
    return this.map.has(k)
  }
  async *query(prefix: string): AsyncIterable<{ key: string; value: Uint8Array }> {
    for (const key of [...this.map.keys()].filter((k) => k.startsWith(prefix)).sort()) yield { key, value: this.map.get(key)! }
  }
}

interface Node {
  router: FakeRouter
  engine: TrustGraphEngine
  service: TrustService
  store: MapStore
  identity: Identity
}

function setup(count: number, init: TrustServiceInit = {}) {
  const network = createMemoryNetwork({ time: 'virtual' })
  const clock = network.clock
  const net = new FakeNet()
  const verifier = createSignatureVerifier()
  const nodes: Node[] = Array.from({ length: count }, (_, i) => {
    const identity = generateIdentity()
    const router = new FakeRouter(net, identity, `n${i}.mesh.kai`)
    const engine = createTrustEngine({ self: identity.did }, { clock })
    const store = new MapStore()
    const service = trustService(init)({ router, engine, signer: identity.signer, verifier, store, clock, ...(process.env.DBG ? { logger: { debug: console.log, info: console.log, warn: console.log, error: console.log } } : {}) })
    return { router, engine, service, store, identity }
  })
  return { network, clock, net, nodes, verifier }
}

/** Polls (wall time, a failure bound only) until `check()` holds. */
async function eventually(check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 5))
}

const m = (s: TrustService): TrustServiceMetrics => s.counters as TrustServiceMetrics

describe('trust service (unit, fake routers, virtual time)', () => {
  it('checks its init and components with InvalidParametersError', () => {
    const { nodes, verifier } = setup(1)
    const n = nodes[0]!
    const c = { router: n.router, engine: n.engine, signer: n.identity.signer, verifier }
    for (const init of [{ maxStatementsPerMessage: 0 }, { maxStatementsPerMessage: 65 }, { publishIntervalMs: -1 }, { syncOnConnect: 1.5 }, { queryTimeoutMs: 0 }, { storePrefix: '' }, { flood: 'yes' as never }]) {
      expect(() => trustService(init)({ ...c, store: new MapStore() })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    }
    expect(() => trustService()({ ...c, router: undefined as never })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    expect(() => trustService()({ ...c, signer: generateIdentity().signer })).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
  })

  it('start registers both handlers on /trust, stop removes them and the listener; both idempotent', async () => {
    const { nodes } = setup(1)
    const n = nodes[0]!
    await n.service.start()
    await n.service.start()
    expect([...n.router.handlers.keys()].sort()).toEqual(['REPUTATION_DELTA /trust', 'TRUST_ATTESTATION /trust'])
    await n.service.stop()
    await n.service.stop()
    expect(n.router.handlers.size).toBe(0)
  })

  it('the handler never throws: malformed payloads are rejected invalid_trust_message and counted', async () => {
    const { nodes } = setup(2)
    const [a, b] = nodes as [Node, Node]
    await b.service.start()
    const target = `klp://${b.router.authority}/trust`
    for (const data of [null, 1, 'x', { op: 'x' }, { op: 'push' }, { op: 'push', statements: [1] }, { op: 'query', limit: 65 }]) {
      await a.router.send({ type: KLPMessageType.TRUST_ATTESTATION, target, data: data as KLPValue })
    }
    expect(b.router.results.map((r) => r.reason)).toEqual(Array(7).fill('invalid_trust_message'))
    expect(m(b.service).invalidMessages).toBe(7)
    // garbage statements in a well-formed push: rejected by error name, reason invalid_statements
    await a.router.send({ type: KLPMessageType.TRUST_ATTESTATION, target, data: { op: 'push', statements: [new Uint8Array([1, 2, 3]), new Uint8Array(2000)] } })
    expect(b.router.results.at(-1)).toEqual({ status: ProcessingStatus.REJECTED, reason: 'invalid_statements' })
    expect(b.service.counters.rejected).toEqual({ InvalidStatementError: 1, StatementTooLargeError: 1 })
  })

  it('a delta in TRUST_ATTESTATION (or an attestation in REPUTATION_DELTA) is refused', async () => {
    const { nodes } = setup(2)
    const [a, b] = nodes as [Node, Node]
    await b.service.start()
    const s = await a.service.attest({ subject: b.router.did })
    await a.router.send({ type: KLPMessageType.REPUTATION_DELTA, target: `klp://${b.router.authority}/trust`, data: { op: 'push', statements: [s.bytes] } })
    expect(b.engine.has(s.id)).toBe(false)
    expect(b.service.counters.rejected).toEqual({ InvalidTrustMessageError: 1 })
    await a.router.send({ type: KLPMessageType.TRUST_ATTESTATION, target: `klp://${b.router.authority}/trust`, data: { op: 'push', statements: [s.bytes] } })
    expect(b.engine.has(s.id)).toBe(true)
  })

  it('floods new statements to every neighbour but the sender, batched (maxStatementsPerMessage), duplicates not re-sent', async () => {
    const { nodes, net } = setup(3, { maxStatementsPerMessage: 2 })
    const [a, b, c] = nodes as [Node, Node, Node]
    for (const n of nodes) await n.service.start()
    a.router.link(b.router)
    b.router.link(c.router)
    const list: SignedStatement[] = []
    for (let i = 0; i < 5; i++) list.push(await a.service.attest({ subject: c.router.did, context: `ctx${i}` }))
    net.log.length = 0
    // b ingests the five from the CLI (fromPeer a): new ones go to c only, in batches of 2
    const other = setup(1).nodes[0]!
    const fresh: SignedStatement[] = []
    for (let i = 0; i < 5; i++) fresh.push(await other.service.attest({ subject: c.router.did, context: `x${i}` }))
    const r = await b.service.ingest(fresh.map((s) => s.bytes), { fromPeer: a.router.did })
    expect(r).toEqual({ added: 5, duplicates: 0, rejected: 0, rateLimited: 0 })
    const fromB = net.log.filter((l) => l.from === b.router.authority)
    expect(fromB.map((l) => l.to)).toEqual(Array(3).fill(c.router.authority))
    expect(fromB.map((l) => (l.data as { statements: unknown[] }).statements.length)).toEqual([2, 2, 1])
    // c passes them on to nobody (b is its only neighbour, and the sender)
    expect(net.log.filter((l) => l.from === c.router.authority)).toEqual([])
    // again: all duplicates, nothing sent, nothing verified again
    net.log.length = 0
    expect(await b.service.ingest(fresh.map((s) => s.bytes))).toEqual({ added: 0, duplicates: 5, rejected: 0, rateLimited: 0 })
    expect(net.log).toEqual([])
    expect(list.every((s) => c.engine.has(s.id))).toBe(true)
  })

  it('a statement over its issuer\'s rate is refused before its signature is checked (a flood buys no verifies)', async () => {
    const { nodes, clock } = setup(1)
    const b = nodes[0]!
    let verifies = 0
    const counting = { verifySignature: async (keyId: string, data: Uint8Array, sig: Uint8Array) => { verifies++; return await createSignatureVerifier().verifySignature(keyId, data, sig) } }
    const engine = createTrustEngine({ self: b.identity.did }, { clock })
    const service = trustService()({ router: b.router, engine, signer: b.identity.signer, verifier: counting, clock })
    const issuer = setup(1).nodes[0]!
    const flood: Uint8Array[] = []
    for (let i = 0; i < 200; i++) flood.push((await issuer.service.attest({ subject: generateIdentity().did })).bytes)
    const r = await service.ingest(flood)
    expect(r.added).toBe(60) // the engine's default rate: 60 per issuer per minute
    expect(r.rateLimited).toBe(140)
    expect(verifies).toBe(60)
  })

  it('sync on connect pushes revocations and own attestations (at most syncOnConnect) to a new neighbour', async () => {
    const { nodes } = setup(3, { syncOnConnect: 3 })
    const [a, b, c] = nodes as [Node, Node, Node]
    for (const n of nodes) await n.service.start()
    const att: SignedStatement[] = []
    for (let i = 0; i < 4; i++) att.push(await a.service.attest({ subject: b.router.did, context: `c${i}` }))
    const rev = await a.service.revoke({ subject: c.router.did })
    a.router.link(b.router)
    await eventually(() => b.engine.has(rev.id) && att.filter((s) => b.engine.has(s.id)).length >= 2)
    expect(b.engine.has(rev.id)).toBe(true)
    expect(att.filter((s) => b.engine.has(s.id)).length).toBe(2)
    expect(m(a.service).syncs).toBe(1)
    void c
  })

  it('answers queries bounded by limit; fetch ingests the answer', async () => {
    const { nodes } = setup(2)
    const [a, b] = nodes as [Node, Node]
    for (const n of nodes) await n.service.start()
    for (let i = 0; i < 70; i++) await a.service.attest({ subject: b.router.did, context: `c${i}` })
    b.router.links.add(a.router)
    a.router.links.add(b.router)
    const r = await b.service.fetch(a.router.did, { issuer: a.router.did, kind: 'attestation' })
    // an answer holds at most 64; b's engine takes at most 60 per issuer per minute
    expect(r.added + r.rateLimited).toBe(64)
    expect(r.rateLimited).toBe(4)
    const r2 = await b.service.fetch(a.router.did, { issuer: a.router.did, limit: 3 })
    expect(r2.added + r2.duplicates + r2.rateLimited).toBe(3)
    await expect(b.service.fetch(a.router.did, { limit: 0 })).rejects.toMatchObject({ name: 'InvalidParametersError' })
    await expect(b.service.fetch('did:key:zUnknown', {})).rejects.toMatchObject({ name: 'UnreachableError' })
  })

  it('the publish timer runs on the injected clock every publishIntervalMs, and stops with stop()', async () => {
    const { nodes, network } = setup(2, { publishIntervalMs: 60_000 })
    const [a, b] = nodes as [Node, Node]
    for (const n of nodes) await n.service.start()
    a.router.link(b.router)
    a.engine.observe(b.router.did, 'task_ok')
    await network.runFor(59_999)
    expect(a.service.counters.published).toBe(0)
    await network.runFor(1)
    await eventually(() => b.engine.statements({ kind: 'delta', issuer: a.router.did }).length === 1)
    expect(a.service.counters.published).toBe(1)
    expect(b.engine.statements({ kind: 'delta', issuer: a.router.did }).length).toBe(1)
    await a.service.stop()
    a.engine.observe(b.router.did, 'task_failed')
    await network.runFor(120_000)
    await new Promise((r) => setTimeout(r, 20))
    expect(a.service.counters.published).toBe(1)
  })

  it('persists new statements and reloads them (a corrupt entry skipped and deleted); ingest honours abort', async () => {
    const { nodes, clock, verifier } = setup(1)
    const a = nodes[0]!
    await a.service.start()
    const s1 = await a.service.attest({ subject: generateIdentity().did })
    const s2 = await a.service.revoke({ subject: generateIdentity().did })
    expect([...a.store.map.keys()].sort()).toEqual([`trust-statement/${s1.id}`, `trust-statement/${s2.id}`].sort())
    a.store.map.set('trust-statement/bogus', new Uint8Array([9, 9, 9]))
    a.store.map.set(`trust-statement/${s1.id}x`, s1.bytes) // a statement under another id's key
    const engine2 = createTrustEngine({ self: a.router.did }, { clock })
    await a.service.stop()
    const service2 = trustService()({ router: a.router, engine: engine2, signer: a.identity.signer, verifier, store: a.store, clock })
    await service2.start()
    expect(engine2.has(s1.id) && engine2.has(s2.id)).toBe(true)
    expect(m(service2).loaded).toBe(2)
    expect(m(service2).loadSkipped).toBe(2)
    expect(a.store.map.size).toBe(2)
    const ac = new AbortController()
    ac.abort()
    await expect(service2.ingest([s1.bytes], { signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' })
    await expect(service2.ingest(['x' as never])).rejects.toMatchObject({ name: 'InvalidParametersError' })
  })
})
