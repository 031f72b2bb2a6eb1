/**
 * libp2p kad-dht as a peer-discovery source: 3 kos-mesh hosts (servers) and 2 stock js-libp2p nodes
 * on loopback. Node records live under `/kos/<PeerId>` with a validator that checks the KLP
 * signature; capabilities are kad-dht provider records. Interop: a stock node (libp2p + tcp + noise +
 * yamux + identify + ping + kad-dht, none of our code) finds our node's record and providers.
 */
// the package entry first: it installs the Promise.withResolvers polyfill the libp2p code below needs
import { capabilityCid, createNodeRecordValidator, kosDhtRecordOptions, libp2pDhtSource, nodeRecordKey, privateKeyFromIdentity, type Libp2pDhtSource } from '../src/index.js'
import { createSignatureVerifier, generateIdentity, type Identity } from '@kos-mesh/did-security'
import type { FederatedNode, NodeCapabilities } from '@kos-mesh/interface'
import { PeerRegistry, createNodeRecord, createRecordPeek, createRecordVerifier } from '@kos-mesh/peer-discovery'
import { identify } from '@libp2p/identify'
import type { Libp2p } from '@libp2p/interface'
import { kadDHT, passthroughMapper, type SingleKadDHT } from '@libp2p/kad-dht'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

type DhtHost = Libp2p<{ identify: unknown; ping: unknown; dht: SingleKadDHT }>

const signatureVerifier = createSignatureVerifier()
const recordVerifier = createRecordVerifier({ signatureVerifier })
const enc = new TextEncoder()

function makeNode(did: string, caps: Partial<NodeCapabilities> = {}): FederatedNode {
  return {
    node_id: did,
    node_type: 'PeerNode',
    capabilities: { agent_hosting: false, vector_storage: false, relay_services: false, validation_services: false, archive_services: false, bandwidth_mbps: 100, storage_gb: 10, compute_units: 4, ...caps },
    network_info: {
      addresses: [{ protocol: 'libp2p', address: '127.0.0.1', port: 0, is_public: false, is_relay: false }],
      protocols_supported: ['klp/1'],
      nat_type: 'open',
      connectivity_status: 'connected',
      latency_ms: 0,
    },
    trust_profile: { trust_score: 5, endorsements: 0, verification_level: 'basic' },
    last_seen: Date.now(),
  }
}

/** A kos-mesh host: the identity's key is the PeerId; kad-dht server (with or without our options up front). */
async function kosHost(identity: Identity, withOptions: boolean): Promise<DhtHost> {
  return createLibp2p({
    privateKey: privateKeyFromIdentity(identity),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({ clientMode: false, peerInfoMapper: passthroughMapper, ...(withOptions ? kosDhtRecordOptions({ recordVerifier }) : {}) }),
    },
  }) as Promise<DhtHost>
}

/**
 * A stock js-libp2p node: libp2p + tcp + noise + yamux + identify + ping + kad-dht, none of our code.
 * `kos` configures kad-dht to accept the `kos` namespace (libp2p drops values of a namespace it has
 * no validator for), with an accept-anything validator: the real check is our verifier afterwards.
 */
async function stockHost(kos: boolean): Promise<DhtHost> {
  return createLibp2p({
    addresses: { listen: [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({ clientMode: true, peerInfoMapper: passthroughMapper, ...(kos ? { validators: { kos: async () => {} }, selectors: { kos: () => 0 } } : {}) }),
    },
  }) as Promise<DhtHost>
}

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function errorOf(p: Promise<unknown>): Promise<{ name?: string }> {
  return p.then(() => { throw new Error('expected a rejection, got success') }, (e: unknown) => e as { name?: string })
}

describe('libp2p kad-dht discovery source', () => {
  const idA = generateIdentity()
  const idB = generateIdentity()
  const idC = generateIdentity()
  let a: DhtHost, b: DhtHost, c: DhtHost, stock: DhtHost, plain: DhtHost
  let srcA: Libp2pDhtSource, srcB: Libp2pDhtSource, srcC: Libp2pDhtSource
  let recA: Awaited<ReturnType<typeof createNodeRecord>>
  let recC: Awaited<ReturnType<typeof createNodeRecord>>
  const hosts: DhtHost[] = []

  beforeAll(async () => {
    // B is the bootstrap node; B's kad-dht learns the namespace from libp2pDhtSource, not its options
    b = await kosHost(idB, false)
    a = await kosHost(idA, true)
    c = await kosHost(idC, true)
    stock = await stockHost(true)
    plain = await stockHost(false)
    hosts.push(a, b, c, stock, plain)
    srcA = libp2pDhtSource()({ libp2p: a, recordVerifier })
    srcB = libp2pDhtSource()({ libp2p: b, recordVerifier })
    srcC = libp2pDhtSource()({ libp2p: c, recordVerifier })
    const bootstrap = b.getMultiaddrs()
    for (const h of [a, c, stock, plain]) await h.dial(bootstrap)
    await c.dial(a.getMultiaddrs()) // a second path, so A and C are each other's DHT peers too
    await until(() => [a, b, c, stock, plain].every((h) => h.services.dht.routingTable.size >= 1) && b.services.dht.routingTable.size >= 2, 'routing tables')

    recA = await createNodeRecord(makeNode(idA.did, { vector_storage: true }), idA.signer)
    recC = await createNodeRecord(makeNode(idC.did, { vector_storage: true, agent_hosting: true }), idC.signer)
    const recB = await createNodeRecord(makeNode(idB.did), idB.signer) // B does not have vector_storage ...
    const pa = await srcA.publishRecord(recA.bytes)
    expect(pa.peers).toBeGreaterThanOrEqual(1) // stored on remote servers, not only locally
    await srcA.provide('vector_storage')
    await srcB.publishRecord(recB.bytes)
    await srcB.provide('vector_storage') // ... but claims it anyway: findPeers must drop it
    await srcC.publishRecord(recC.bytes)
  }, 30_000)

  afterAll(async () => {
    await Promise.all(hosts.map(async (h) => { try { await h.stop() } catch { /* already stopped */ } }))
  })

  it('registers the kos validator and selector on a host created without them', () => {
    expect(typeof b.services.dht.validators.kos).toBe('function')
    expect(typeof b.services.dht.selectors.kos).toBe('function')
    expect(srcB.method).toBe('dht')
    expect(srcB.name).toBe('libp2p-kad-dht')
  })

  it('C finds A by capability; the bytes verify with peer-discovery\'s verifier and a registry takes them', async () => {
    const found: Uint8Array[] = []
    for await (const bytes of srcC.findPeers({ requiredCapabilities: ['vector_storage'] }, { signal: AbortSignal.timeout(15_000) })) found.push(bytes)
    const verified = await Promise.all(found.map((x) => recordVerifier(x)))
    expect(verified.map((r) => r.peerId)).toEqual([idA.did]) // B provided the capability but its record lacks it
    expect(verified[0]!.messageId).toBe(recA.messageId)
    expect(verified[0]!.node.capabilities.vector_storage).toBe(true)

    // the registry verifies everything itself
    const registry = new PeerRegistry({ verifyRecord: recordVerifier, peekRecord: createRecordPeek(), localPeerId: idC.did })
    const res = await registry.mergeFrom(srcC, { requiredCapabilities: ['vector_storage'] })
    expect(res.added).toBe(1)
    expect(registry.get(idA.did)?.discoveryMethod).toBe('dht')
  })

  it('findPeers({}) finds nodes through the mesh:node provider key; getRecord by DID', async () => {
    const found = []
    for await (const bytes of srcA.findPeers({}, { signal: AbortSignal.timeout(15_000) })) found.push((await recordVerifier(bytes)).peerId)
    expect(new Set(found)).toEqual(new Set([idB.did, idC.did])) // never itself
    const r = await srcB.getRecord(idC.did)
    expect(r?.messageId).toBe(recC.messageId)
    expect(await srcB.getRecord(generateIdentity().did, { signal: AbortSignal.timeout(5_000) })).toBeUndefined()
  })

  it('the validator refuses forged records; a forged PUT is refused by our nodes and never returned', async () => {
    const validate = createNodeRecordValidator(recordVerifier)
    const keyC = nodeRecordKey(idC.did)
    const mallory = generateIdentity()
    const forged = (await createNodeRecord(makeNode(mallory.did, { vector_storage: true }), mallory.signer)).bytes
    // validly signed, but by someone else than the key names
    expect((await errorOf(validate(keyC, forged))).name).toBe('DhtKeyMismatchError')
    // C's own record with one byte of the signature flipped
    const tampered = recC.bytes.slice()
    tampered[tampered.length - 1]! ^= 1
    expect((await errorOf(validate(keyC, tampered))).name).toMatch(/Signature|Decode|Invalid/)
    expect((await errorOf(validate(keyC, enc.encode('not a record')))).name).toBeDefined()
    expect((await errorOf(validate(enc.encode('/kos/not-a-peer-id'), recC.bytes))).name).toBe('InvalidDhtKeyError')
    await validate(keyC, recC.bytes) // the genuine one passes

    // a stock node PUTs the forgery under C's key: our servers refuse it (no PUT_VALUE answer)
    const ours = new Set([a.peerId.toString(), b.peerId.toString(), c.peerId.toString()])
    const accepted: string[] = []
    for await (const ev of plain.services.dht.put(keyC, forged, { signal: AbortSignal.timeout(10_000) })) {
      if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'PUT_VALUE' && ours.has(ev.from.toString())) accepted.push(ev.from.toString())
    }
    expect(accepted).toEqual([])
    // and the genuine record is what everyone gets
    expect((await srcA.getRecord(idC.did))?.messageId).toBe(recC.messageId)
  })

  it('INTEROP: a stock js-libp2p node finds our record through its own kad-dht, and our providers', async () => {
    const key = enc.encode(`/kos/${a.peerId.toString()}`) // computed by hand: no code of ours
    let value: Uint8Array | undefined
    for await (const ev of stock.services.dht.get(key, { signal: AbortSignal.timeout(10_000) })) {
      if (ev.name === 'VALUE') value = ev.value
    }
    expect(value).toBeDefined()
    const rec = await recordVerifier(value!)
    expect(rec.peerId).toBe(idA.did)
    expect(rec.messageId).toBe(recA.messageId)

    // provider records need no namespace: even a stock node with default kad-dht options finds A
    const cid = CID.createV1(0x55, await sha256.digest(enc.encode('capability:vector_storage')))
    expect(cid.equals(capabilityCid('vector_storage'))).toBe(true)
    const providers = new Set<string>()
    for await (const ev of plain.services.dht.findProviders(cid, { signal: AbortSignal.timeout(10_000) })) {
      if (ev.name === 'PROVIDER') for (const p of ev.providers) providers.add(p.id.toString())
    }
    expect(providers.has(a.peerId.toString())).toBe(true)

    // ... but such a node drops values of a namespace it has no validator for (libp2p's rule)
    let plainValue: Uint8Array | undefined
    for await (const ev of plain.services.dht.get(key, { signal: AbortSignal.timeout(10_000) })) {
      if (ev.name === 'VALUE') plainValue = ev.value
    }
    expect(plainValue).toBeUndefined()
  })
})

