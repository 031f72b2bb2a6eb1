/**
 * The router and its trust engine: revocation (`isRevoked`: reason `revoked`, before the signature,
 * not forwarded, not relayed, connections closed) and observations (`observe`: forged and invalid
 * messages blamed on the peer that sent them, request timeouts on the DID the request was bound
 * to). The engine is a small test double implementing the TrustEngine contract.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createSignatureVerifier, generateIdentity, type Identity } from '@kos-mesh/did-security'
import {
  KLPMessageType,
  ProcessingStatus,
  TrustObservation,
  type KLPMessage,
  type SignatureVerifier,
  type TrustCheck,
  type TrustEngine,
  type TrustRequirements,
} from '@kos-mesh/interface'
import { encodeMessage } from '@kos-mesh/klp-codec'
import { createMemoryNetwork, memoryTransport, type MemoryNetwork, type MemoryTransport } from '@kos-mesh/transport-memory'
import { meetsRequirements } from '@kos-mesh/trust'
import { EnvelopeKind, encodeEnvelope } from '../src/envelope.js'
import { klpRouter, type Router } from '../src/router.js'
import { rawPeer, waitFor, type RawPeer } from './helpers.js'

/** A TrustEngine double: zero trust for everybody, a revocation set, and a log of observations. */
class TestEngine implements TrustEngine {
  readonly revoked = new Set<string>()
  readonly observed: Array<[string, TrustObservation]> = []
  throwOnObserve = false
  check(_subject: string, requirements: TrustRequirements): TrustCheck {
    return meetsRequirements({ trust_score: 0, endorsements: 0, verification_level: 'none' }, requirements)
  }
  isRevoked(subject: string): boolean {
    return this.revoked.has(subject)
  }
  observe(subject: string, outcome: TrustObservation): void {
    this.observed.push([subject, outcome])
    if (this.throwOnObserve) throw new Error('observer down')
  }
}

interface Node {
  name: string
  authority: string
  address: string
  identity: Identity
  did: string
  router: Router
  engine: TestEngine
  /** Signature checks the router asked for. */
  verifies: number
}

let network: MemoryNetwork
const transports: MemoryTransport[] = []
const routers: Router[] = []
const raws: RawPeer[] = []
afterEach(async () => {
  for (const p of raws.splice(0)) await p.close()
  for (const r of routers.splice(0)) await r.stop()
  for (const t of transports.splice(0)) await t.close()
})

async function node(name: string, requestTimeoutMs?: number): Promise<Node> {
  network ??= createMemoryNetwork()
  const identity = generateIdentity()
  const transport = memoryTransport({ peerId: identity.did, network })
  transports.push(transport)
  const engine = new TestEngine()
  const inner = createSignatureVerifier()
  const n = { name, authority: `${name}.mesh.kai`, address: `memory://${name}-${identity.did.slice(-8)}`, identity, did: identity.did, engine, verifies: 0 } as Node
  const verifier: SignatureVerifier = {
    verifySignature(keyId, data, sig, options) {
      n.verifies++
      return inner.verifySignature(keyId, data, sig, options)
    },
  }
  n.router = klpRouter({ authority: n.authority, listen: [n.address], ...(requestTimeoutMs === undefined ? {} : { requestTimeoutMs, requestRetries: 0 }) })({
    signer: identity.signer,
    signatureVerifier: verifier,
    trustEngine: engine,
    transports: [transport],
  })
  await n.router.start()
  routers.push(n.router)
  return n
}

async function raw(n: Node, authority: string): Promise<RawPeer> {
  const p = await rawPeer(network, n.address, n.did, authority)
  raws.push(p)
  await waitFor(() => n.router.routingTable.didOf(authority) !== undefined)
  return p
}

function handler(n: Node, type: KLPMessageType = KLPMessageType.TASK_REQUEST): KLPMessage[] {
  const calls: KLPMessage[] = []
  n.router.handle(type, (msg) => {
    calls.push(msg)
    return { status: ProcessingStatus.PROCESSED }
  })
  return calls
}

const rejects = (n: Node): Record<string, number> => n.router.metrics().rejects
const settle = (ms = 100): Promise<void> => new Promise((r) => setTimeout(r, ms))

describe('revocation', () => {
  it('rejects a revoked signer with `revoked` before the signature check and before the handler runs', async () => {
    const a = await node('a')
    const calls = handler(a)
    const p = await raw(a, 'p.mesh.kai')
    const revoked = generateIdentity()
    a.engine.revoked.add(revoked.did)
    const verifiesBefore = a.verifies
    await p.send(p.frame(await p.sign({ type: KLPMessageType.TASK_REQUEST, target: `klp://${a.authority}/` }, revoked)))
    await waitFor(() => rejects(a).revoked === 1)
    await settle()
    expect(calls).toHaveLength(0)
    expect(a.verifies).toBe(verifiesBefore) // no verify spent on it
    expect(p.received.filter((m) => m.type === KLPMessageType.TASK_RESPONSE)).toHaveLength(0) // no error response either
    // the peer that passed it on is not revoked: its connection stays, and its own messages pass
    await p.send(p.frame(await p.sign({ type: KLPMessageType.TASK_REQUEST, target: `klp://${a.authority}/` })))
    await waitFor(() => calls.length === 1)
    expect(a.router.peers().map((x) => x.did)).toContain(p.identity.did)
  })

  it('a relay neither forwards a revoked DID\'s messages nor relays its broadcasts', async () => {
    const b = await node('b')
    const c = await node('c')
    await b.router.dial(c.address, { remotePeer: c.did })
    const tasks = handler(c)
    const broadcasts = handler(c, KLPMessageType.BROADCAST_ANNOUNCE)
    const p = await raw(b, 'p.mesh.kai')
    const revoked = generateIdentity()
    b.engine.revoked.add(revoked.did)
    await p.send(p.frame(await p.sign({ type: KLPMessageType.TASK_REQUEST, target: `klp://${c.authority}/` }, revoked)))
    await p.send(p.frame(await p.sign({ type: KLPMessageType.BROADCAST_ANNOUNCE, target: `klp://${b.authority}/broadcast` }, revoked)))
    await waitFor(() => rejects(b).revoked === 2)
    await settle()
    expect(tasks).toHaveLength(0)
    expect(broadcasts).toHaveLength(0)
    expect(b.router.metrics().forwarded).toBe(0)
    // the same from a signer that is not revoked goes through the relay
    await p.send(p.frame(await p.sign({ type: KLPMessageType.TASK_REQUEST, target: `klp://${c.authority}/` })))
    await p.send(p.frame(await p.sign({ type: KLPMessageType.BROADCAST_ANNOUNCE, target: `klp://${b.authority}/broadcast` })))
    await waitFor(() => tasks.length === 1 && broadcasts.length === 1)
    expect(b.router.metrics().forwarded).toBe(2)
  })

  it('closes the connection of a peer whose DID is revoked when it connects', async () => {
    const a = await node('a')
    const connects: string[] = []
    a.router.addEventListener('peer:connect', (e) => connects.push(e.detail.did))
    const revoked = generateIdentity()
    a.engine.revoked.add(revoked.did)
    const t = memoryTransport({ peerId: revoked.did, network })
    transports.push(t)
    const conn = await t.dial(a.address, { remotePeer: a.did })
    await conn.closed
    expect(rejects(a).revoked).toBe(1)
    expect(connects).toEqual([])
    expect(a.router.peers()).toEqual([])
  })

  it('dial() refuses a revoked peer with PeerRevokedError', async () => {
    const a = await node('a')
    const b = await node('b')
    a.engine.revoked.add(b.did)
    await expect(a.router.dial(b.address, { remotePeer: b.did })).rejects.toMatchObject({ name: 'PeerRevokedError', code: 'ERR_PEER_REVOKED' })
    expect(rejects(a).revoked).toBe(1)
    await waitFor(() => b.router.peers().length === 0)
  })

  it('closes an open peer\'s connection at its next message once its DID is revoked (disconnect reason `revoked`)', async () => {
    const a = await node('a')
    const calls = handler(a)
    const p = await raw(a, 'p.mesh.kai')
    const reasons: string[] = []
    a.router.addEventListener('peer:disconnect', (e) => reasons.push(e.detail.reason ?? ''))
    await p.send(p.frame(await p.sign({ type: KLPMessageType.TASK_REQUEST, target: `klp://${a.authority}/` })))
    await waitFor(() => calls.length === 1)
    a.engine.revoked.add(p.identity.did)
    await p.send(p.frame(await p.sign({ type: KLPMessageType.TASK_REQUEST, target: `klp://${a.authority}/` })))
    await p.conn.closed
    await waitFor(() => reasons.length === 1)
    expect(reasons).toEqual(['revoked'])
    expect(calls).toHaveLength(1)
    expect(rejects(a).revoked).toBe(1)
    expect(a.router.peers()).toEqual([])
  })
})

describe('observations', () => {
  it('a forged message is blamed on the peer that sent it (forged_message), not on the DID it claims', async () => {
    const a = await node('a')
    const calls = handler(a)
    const p = await raw(a, 'p.mesh.kai')
    const victim = generateIdentity()
    const genuine = await p.sign({ type: KLPMessageType.TASK_REQUEST, target: `klp://${a.authority}/` }, victim)
    const sig = genuine.signature.slice()
    sig[0] = sig[0]! ^ 1
    await p.send(p.frame({ ...genuine, signature: sig }))
    await waitFor(() => rejects(a).invalid_signature === 1)
    expect(calls).toHaveLength(0)
    expect(a.engine.observed).toEqual([[p.identity.did, TrustObservation.FORGED_MESSAGE]])
  })

  it('a malformed frame is blamed on the peer that sent it (invalid_message)', async () => {
    const a = await node('a')
    const p = await raw(a, 'p.mesh.kai')
    await p.send(encodeEnvelope(EnvelopeKind.MESSAGE, 0, 0, new Uint8Array([0xa1, 0x61, 0x78, 0xff])))
    const bad = p.frame(await p.sign({ type: KLPMessageType.TASK_REQUEST, target: `klp://${a.authority}/` }))
    bad[0] = 0 // bad envelope magic
    await p.send(bad)
    await waitFor(() => rejects(a).malformed === 2)
    expect(a.engine.observed).toEqual([[p.identity.did, TrustObservation.INVALID_MESSAGE], [p.identity.did, TrustObservation.INVALID_MESSAGE]])
  })

  it('a request that times out is blamed on the DID it was bound to (timeout); a throwing observer changes nothing', async () => {
    const a = await node('a', 150)
    const b = await node('b')
    await a.router.dial(b.address, { remotePeer: b.did })
    b.router.handle(KLPMessageType.TASK_REQUEST, () => new Promise(() => {})) // never answers
    a.engine.throwOnObserve = true
    await expect(a.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${b.authority}/`, data: null })).rejects.toMatchObject({ name: 'RequestTimeoutError' })
    expect(a.engine.observed).toEqual([[b.did, TrustObservation.TIMEOUT]])
    // an answered request reports nothing
    a.engine.throwOnObserve = false
    b.router.unhandle(KLPMessageType.TASK_REQUEST)
    b.router.handle(KLPMessageType.TASK_REQUEST, async (msg) => ({ status: ProcessingStatus.PROCESSED, response: await b.router.createResponse(msg, 'ok') }))
    const r = await a.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${b.authority}/`, data: null })
    expect(r.payload.data).toBe('ok')
    expect(a.engine.observed).toHaveLength(1)
  })

  it('a throwing observer never breaks the pipeline', async () => {
    const a = await node('a')
    const calls = handler(a)
    const p = await raw(a, 'p.mesh.kai')
    a.engine.throwOnObserve = true
    await p.send(encodeEnvelope(EnvelopeKind.MESSAGE, 0, 0, encodeMessage(await p.sign({ type: KLPMessageType.TASK_REQUEST, target: `klp://${a.authority}/` })).subarray(0, 10)))
    await p.send(p.frame(await p.sign({ type: KLPMessageType.TASK_REQUEST, target: `klp://${a.authority}/` })))
    await waitFor(() => calls.length === 1)
    expect(a.engine.observed).toEqual([[p.identity.did, TrustObservation.INVALID_MESSAGE]])
  })
})
