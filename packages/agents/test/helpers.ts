/**
 * A test double of the interface's `MessageRouter`: what the task service needs of a router and
 * nothing else. Handlers are kept by (type, path), requests are answered by a function the test
 * sets, and every message is really signed (klp-codec + a did:key identity), so handlers see what
 * they would see on a real router.
 */
import { generateIdentity, type Identity } from '@kos-mesh/did-security'
import {
  KLPMessageType,
  type HandleOptions,
  type KLPMessage,
  type KLPMessageType as KLPMessageTypeT,
  type KLPValue,
  type MessageContext,
  type MessageHandler,
  type MessageInit,
  type MessageRouter,
  type PeerInfo,
  type RequestOptions,
} from '@kos-mesh/interface'
import { createMessage, signMessage } from '@kos-mesh/klp-codec'

export interface SentRequest {
  init: MessageInit
  options: RequestOptions | undefined
}

export class FakeRouter implements MessageRouter {
  readonly identity: Identity = generateIdentity()
  readonly did = this.identity.did
  readonly handlers = new Map<string, MessageHandler>()
  readonly requests: SentRequest[] = []
  /** authority -> DID pins, what `didOf` / `authorityOf` read. */
  readonly pins = new Map<string, string>()
  /** How `request()` answers; default: it never does (the test sets it). */
  respond: (init: MessageInit, options: RequestOptions | undefined) => Promise<KLPMessage> = () => new Promise(() => {})

  constructor(readonly authority = 'fake.mesh.kai') {}

  private key(type: KLPMessageTypeT, options?: HandleOptions): string {
    return `${type} ${options?.path ?? ''}`
  }

  handle(type: KLPMessageTypeT, handler: MessageHandler, options?: HandleOptions): void {
    const k = this.key(type, options)
    if (this.handlers.has(k)) throw new Error(`duplicate handler ${k}`)
    this.handlers.set(k, handler)
  }

  unhandle(type: KLPMessageTypeT, options?: HandleOptions): void {
    this.handlers.delete(this.key(type, options))
  }

  handler(type: KLPMessageTypeT, path?: string): MessageHandler | undefined {
    return this.handlers.get(this.key(type, path === undefined ? undefined : { path }))
  }

  async request(init: MessageInit, options?: RequestOptions): Promise<KLPMessage> {
    this.requests.push({ init, options })
    return this.respond(init, options)
  }

  async createResponse(request: KLPMessage, data: KLPValue, options?: { type?: KLPMessageTypeT }): Promise<KLPMessage> {
    const type = options?.type ?? (request.type === KLPMessageType.TASK_REQUEST ? KLPMessageType.TASK_RESPONSE : request.type)
    return signMessage(createMessage({ type, source: `klp://${this.authority}/`, target: request.source, data, correlation_id: request.metadata.message_id }), this.identity.signer)
  }

  didOf(authority: string): string | undefined {
    return authority === this.authority ? this.did : this.pins.get(authority)
  }

  authorityOf(did: string): string | undefined {
    if (did === this.did) return this.authority
    for (const [a, d] of this.pins) if (d === did) return a
    return undefined
  }

  addrs(): string[] {
    return []
  }

  peers(): PeerInfo[] {
    return []
  }

  dial(): Promise<PeerInfo> {
    throw new Error('not used by the task service')
  }

  send(): Promise<KLPMessage> {
    throw new Error('not used by the task service')
  }

  broadcast(): Promise<KLPMessage> {
    throw new Error('not used by the task service')
  }

  setBroadcastStrategy(): void {}
  addEventListener(): void {}
  removeEventListener(): void {}
}

/** A TASK_REQUEST signed by `from`, to `klp://<authority><path>`. */
export async function taskMessage(from: Identity, data: KLPValue, target = 'klp://fake.mesh.kai/'): Promise<KLPMessage> {
  return signMessage(createMessage({ type: KLPMessageType.TASK_REQUEST, source: 'klp://client.mesh.kai/', target, data }), from.signer)
}

/** The context a router hands a handler, for a message signed and sent by `from`. */
export function contextOf(from: Identity, receivedAt: number, signal?: AbortSignal): MessageContext {
  return { fromPeer: from.did, signerDid: from.did, receivedAt, ...(signal === undefined ? {} : { signal }) }
}
