import { generateIdentity, type Identity } from '@kos-mesh/did-security'
import { MessagePriority, VerificationLevel, type Connection, type KLPMessage, type KLPMessageType } from '@kos-mesh/interface'
import { createMessage, decodeMessage, encodeMessage, signMessage, type CreateMessageInit } from '@kos-mesh/klp-codec'
import { memoryTransport, type MemoryNetwork } from '@kos-mesh/transport-memory'
import { EnvelopeKind, decodeEnvelope, encodeEnvelope } from '../src/envelope.js'

/** A hand-driven peer on the memory network: sends crafted frames, collects what it receives. */
export interface RawPeer {
  identity: Identity
  authority: string
  conn: Connection
  received: KLPMessage[]
  sign(init: Partial<CreateMessageInit> & { type: KLPMessageType; target: string }, identity?: Identity): Promise<KLPMessage>
  frame(msg: KLPMessage, hops?: number): Uint8Array
  send(frame: Uint8Array): Promise<void>
  close(): Promise<void>
}

export async function rawPeer(network: MemoryNetwork, addr: string, remotePeer: string, authority = 'rogue.mesh.kai'): Promise<RawPeer> {
  const identity = generateIdentity()
  const transport = memoryTransport({ peerId: identity.did, network })
  const conn = await transport.dial(addr, { remotePeer })
  const received: KLPMessage[] = []
  void (async () => {
    try {
      for await (const f of conn) {
        const env = decodeEnvelope(f)
        if (env.kind === EnvelopeKind.MESSAGE) received.push(decodeMessage(env.body))
      }
    } catch {}
  })()
  const sign = async (init: Partial<CreateMessageInit> & { type: KLPMessageType; target: string }, id = identity): Promise<KLPMessage> =>
    signMessage(createMessage({ source: `klp://${authority}/`, data: null, ...init }), id.signer)
  const hello = await sign({
    type: 'PEER_DISCOVERY',
    target: `klp://${authority}/.router/hello`,
    content_type: 'application/vnd.kos-mesh.router-hello+cbor',
    priority: MessagePriority.CRITICAL,
    data: { authority, known: true, routes: [] },
  })
  await conn.send(encodeEnvelope(EnvelopeKind.HELLO, 0, 0, encodeMessage(hello)))
  return {
    identity,
    authority,
    conn,
    received,
    sign,
    frame: (msg, hops = 0) => encodeEnvelope(EnvelopeKind.MESSAGE, hops, 0, encodeMessage(msg)),
    send: (frame) => conn.send(frame),
    close: async () => {
      await transport.close()
    },
  }
}

export async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('waitFor timed out')
    await new Promise((r) => setTimeout(r, 5))
  }
}

export const TRUST_NONE = { minimum_trust_score: 0, required_endorsements: 0, verification_level: VerificationLevel.NONE }
