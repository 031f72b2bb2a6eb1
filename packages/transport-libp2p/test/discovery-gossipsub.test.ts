/**
 * KLP broadcasts over libp2p gossipsub: 3 hosts on loopback subscribe `/kos/broadcast/1.0.0`; a signed
 * BROADCAST_ANNOUNCE reaches the others once; tampered, unsigned-type and foreign-signature messages
 * are rejected by the topic validator (not delivered, not forwarded).
 */
// the package entry first: it installs the Promise.withResolvers polyfill the libp2p code below needs
import { KOS_BROADCAST_TOPIC, gossipsubBroadcast, privateKeyFromIdentity, type GossipsubBroadcast, type ReceivedBroadcast } from '../src/index.js'
import { createSignatureVerifier, generateIdentity, type Identity } from '@kos-mesh/did-security'
import { KLPMessageType, MessagePriority, VerificationLevel, type KLPMessage } from '@kos-mesh/interface'
import { createMessage, encodeMessage, parseAddress, signMessage } from '@kos-mesh/klp-codec'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import type { Libp2p } from '@libp2p/interface'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

type PubsubHost = Libp2p<{ identify: unknown; pubsub: GossipSub }>

const signatureVerifier = createSignatureVerifier()

async function host(identity: Identity): Promise<PubsubHost> {
  return createLibp2p({
    privateKey: privateKeyFromIdentity(identity),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), pubsub: gossipsub() },
  }) as Promise<PubsubHost>
}

/** gossipsub's mesh peers of our topic (a GossipSub method outside its exported interface) */
function meshPeers(h: PubsubHost): unknown[] {
  return (h.services.pubsub as unknown as { getMeshPeers(topic: string): unknown[] }).getMeshPeers(KOS_BROADCAST_TOPIC)
}

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

async function announce(identity: Identity, data: string, type: KLPMessageType = KLPMessageType.BROADCAST_ANNOUNCE): Promise<KLPMessage> {
  return signMessage(createMessage({
    type,
    source: parseAddress('klp://node-a/trust'),
    target: parseAddress('klp://node-a/trust'),
    data: { op: 'revoke', note: data },
    ttl: 300,
    timestamp: Date.now(),
    priority: MessagePriority.HIGH,
    trust_requirements: { minimum_trust_score: 0, required_endorsements: 0, verification_level: VerificationLevel.NONE },
  }), identity.signer)
}

describe('KLP broadcasts over gossipsub', () => {
  const ids = [generateIdentity(), generateIdentity(), generateIdentity()]
  const hosts: PubsubHost[] = []
  const bcasts: GossipsubBroadcast[] = []
  const got: ReceivedBroadcast[][] = [[], [], []]

  beforeAll(async () => {
    for (const id of ids) hosts.push(await host(id))
    hosts.forEach((h, i) => {
      const b = gossipsubBroadcast()({ libp2p: h, signatureVerifier })
      b.onBroadcast((x) => { got[i]!.push(x) })
      b.start()
      bcasts.push(b)
    })
    // a line A - B - C: C hears A only through B's forwarding
    await hosts[0]!.dial(hosts[1]!.getMultiaddrs())
    await hosts[2]!.dial(hosts[1]!.getMultiaddrs())
    await until(() => hosts[1]!.services.pubsub.getSubscribers(KOS_BROADCAST_TOPIC).length === 2 &&
      hosts[0]!.services.pubsub.getSubscribers(KOS_BROADCAST_TOPIC).length === 1 &&
      hosts[2]!.services.pubsub.getSubscribers(KOS_BROADCAST_TOPIC).length === 1, 'subscriptions')
    // wait for the mesh (a heartbeat grafts the peers): forwarding goes through mesh peers
    await until(() => hosts.every((h, i) => meshPeers(h).length === (i === 1 ? 2 : 1)), 'gossipsub mesh')
  }, 30_000)

  afterAll(async () => {
    bcasts.forEach((b) => b.stop())
    await Promise.all(hosts.map(async (h) => { try { await h.stop() } catch { /* already stopped */ } }))
  })

  it('a signed BROADCAST_ANNOUNCE reaches every other host once, verified', async () => {
    const msg = await announce(ids[0]!, 'hello')
    const r = await bcasts[0]!.publish(msg)
    expect(r.recipients).toBe(1)
    await until(() => got[1]!.length === 1 && got[2]!.length === 1, 'delivery to B and C')
    for (const i of [1, 2]) {
      const x = got[i]![0]!
      expect(x.message.metadata.message_id).toBe(msg.metadata.message_id)
      expect(x.message.signer).toBe(ids[0]!.signer.keyId)
      expect(x.bytes).toEqual(encodeMessage(msg))
      expect(x.publisher).toBe(ids[0]!.did)
    }
    expect(got[0]).toHaveLength(0) // not delivered back to the publisher
    // republishing the same KLP message (another gossipsub id) is a duplicate for the receivers
    await hosts[2]!.services.pubsub.publish(KOS_BROADCAST_TOPIC, encodeMessage(msg))
    await until(() => bcasts[1]!.stats.duplicates === 1, 'duplicate at B')
    expect(got[1]).toHaveLength(1)
  })

  it('tampered and wrong-type messages are rejected and not forwarded; a later valid one still arrives', async () => {
    const before = got.map((g) => g.length)
    const tampered = encodeMessage(await announce(ids[0]!, 'revoke key X')).slice()
    tampered[tampered.length - 1]! ^= 1 // the signature's last byte
    const notBroadcast = encodeMessage(await announce(ids[0]!, 'a request', KLPMessageType.PEER_DISCOVERY))
    // published around our checks, straight through gossipsub
    await hosts[0]!.services.pubsub.publish(KOS_BROADCAST_TOPIC, tampered)
    await hosts[0]!.services.pubsub.publish(KOS_BROADCAST_TOPIC, notBroadcast)
    await hosts[0]!.services.pubsub.publish(KOS_BROADCAST_TOPIC, new TextEncoder().encode('garbage'))
    const ok = await announce(ids[0]!, 'after')
    await bcasts[0]!.publish(ok)
    await until(() => got[2]!.some((x) => x.message.metadata.message_id === ok.metadata.message_id), 'the valid one at C')
    const rejectedAtB = (): number => Object.values(bcasts[1]!.stats.rejected).reduce((s, n) => s + n, 0)
    await until(() => rejectedAtB() === 3, 'three rejections at B') // validation may finish out of order
    expect(bcasts[1]!.stats.rejected.InvalidBroadcastError).toBeGreaterThanOrEqual(1)
    // B refused them, so C (behind B) never even saw them
    expect(Object.values(bcasts[2]!.stats.rejected).reduce((s, n) => s + n, 0)).toBe(0)
    expect(got[1]!.length - before[1]!).toBe(1)
    expect(got[2]!.length - before[2]!).toBe(1)
    // our publish() refuses them before they leave
    await expect(bcasts[0]!.publish(tampered)).rejects.toMatchObject({ name: expect.stringMatching(/Signature/) })
    await expect(bcasts[0]!.publish(notBroadcast)).rejects.toMatchObject({ name: 'InvalidBroadcastError' })
  })

  it('bridgeStrategy publishes the node\'s own broadcasts and keeps KLP relaying', async () => {
    const msg = await announce(ids[2]!, 'from the router')
    const strategy = bcasts[2]!.bridgeStrategy()
    expect(strategy.relay(msg, { fromPeer: undefined, hops: 0, neighbours: ['did:key:x'] })).toEqual(['did:key:x'])
    expect(strategy.relay(msg, { fromPeer: 'did:key:y', hops: 1, neighbours: ['did:key:x', 'did:key:y'] })).toEqual(['did:key:x', 'did:key:y'])
    await until(() => got[0]!.some((x) => x.message.metadata.message_id === msg.metadata.message_id), 'the bridged broadcast at A')
    expect(bcasts[2]!.stats.published).toBe(1)
  })
})
