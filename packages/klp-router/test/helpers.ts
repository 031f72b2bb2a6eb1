import { generateIdentity, type Identity } from '@kos-mesh/did-security'
import { MessagePriority, VerificationLevel, type Connection, type KLPMessage, type KLPMessageType, type Transport, mulberry32 } from '@kos-mesh/interface'
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

/**
 * A connection fed by hand (unit tests and the fuzz only): frames pushed in are read by the
 * router's read loop in order, without a transport in between.
 */
export class FeedConnection implements Connection {
  readonly id: string
  readonly direction = 'inbound' as const
  readonly remoteAddr = 'feed://test'
  status: 'open' | 'closing' | 'closed' = 'open'
  readonly closed: Promise<void>
  readonly sent: Uint8Array[] = []
  private closeResolve!: () => void
  private queue: Uint8Array[] = []
  private head = 0
  private wake: ((r: IteratorResult<Uint8Array>) => void) | undefined
  constructor(readonly remotePeer: string, id = 'feed') {
    this.id = id
    this.closed = new Promise((r) => { this.closeResolve = r })
  }
  push(frames: readonly Uint8Array[]): void {
    let i = 0
    if (this.wake !== undefined && frames.length > 0) {
      const w = this.wake
      this.wake = undefined
      w({ value: frames[i++]!, done: false })
    }
    for (; i < frames.length; i++) this.queue.push(frames[i]!)
  }
  async send(frame: Uint8Array): Promise<void> {
    this.sent.push(frame)
  }
  async close(): Promise<void> {
    this.abort()
  }
  abort(): void {
    this.status = 'closed'
    const w = this.wake
    this.wake = undefined
    w?.({ value: undefined, done: true })
    this.closeResolve()
  }
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => {
        if (this.head < this.queue.length) {
          const value = this.queue[this.head++]!
          if (this.head === this.queue.length) {
            this.queue = []
            this.head = 0
          }
          return Promise.resolve({ value, done: false })
        }
        if (this.status !== 'open') return Promise.resolve({ value: undefined, done: true })
        return new Promise((r) => { this.wake = r })
      },
    }
  }
}

/** A transport whose listener hands its connection handler to `onListen` (feed connections). */
export function feedTransport(onListen: (h: (c: Connection) => void) => void): Transport {
  return {
    name: 'feed',
    canDial: (a) => a.startsWith('feed://'),
    dial: async () => {
      throw new Error('not dialable')
    },
    listen: async (_a, handler) => {
      onListen(handler)
      return { addrs: () => ['feed://test'], close: async () => {} }
    },
    close: async () => {},
  }
}

/** Seeded PRNG (mulberry32, from @kos-mesh/interface). */
export const prng = mulberry32
