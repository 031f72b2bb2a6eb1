/**
 * Builds and signs the messages this node creates: addresses parsed once and cached, timestamps
 * from the router's clock, and a `nonce` routing hint only when the same content would otherwise
 * get the same content-addressed id twice in one millisecond. Internal.
 */
import { InvalidParametersError, MessagePriority, type KLPAddress, type KLPMessage, type KLPMessageType, type KLPValue, type MessageInit, type UnsignedKLPMessage } from '@kos-mesh/interface'
import { parseAddress, signMessage } from '@kos-mesh/klp-codec'
import type { RouterCore } from './core.js'
import { NO_TRUST, responseTypeFor } from './messages.js'

const ADDRESS_CACHE_SIZE = 256

export class MessageBuilder {
  /** Parsed outbound target addresses (bounded, frozen). */
  private readonly addressCache = new Map<string, KLPAddress>()
  private readonly sourceAddresses = new Map<string, KLPAddress>()
  private idMs = -1
  private readonly idsThisMs = new Set<string>()
  private nonce = 0

  constructor(private readonly core: RouterCore) {}

  /** A target address; strings are parsed once and cached (bounded, frozen). */
  address(a: string | KLPAddress): KLPAddress {
    if (typeof a !== 'string') return a
    let parsed = this.addressCache.get(a)
    if (parsed === undefined) {
      parsed = Object.freeze(parseAddress(a))
      if (this.addressCache.size >= ADDRESS_CACHE_SIZE) this.addressCache.delete(this.addressCache.keys().next().value as string)
      this.addressCache.set(a, parsed)
    }
    return parsed
  }

  /** This node's address with a path (cached, bounded, frozen). */
  private sourceAddress(path: string): KLPAddress {
    let a = this.sourceAddresses.get(path)
    if (a === undefined) {
      a = Object.freeze({ scheme: 'klp', authority: this.core.authority, path })
      if (this.sourceAddresses.size >= ADDRESS_CACHE_SIZE) this.sourceAddresses.delete(this.sourceAddresses.keys().next().value as string)
      this.sourceAddresses.set(path, a)
    }
    return a
  }

  async build(init: MessageInit): Promise<KLPMessage> {
    if (init.target === undefined) throw new InvalidParametersError('expected a target address, got undefined')
    const core = this.core
    const unsigned: UnsignedKLPMessage = {
      version: '1.0',
      type: init.type,
      source: this.sourceAddress(init.sourcePath ?? '/'),
      target: this.address(init.target),
      payload: {
        content_type: init.contentType ?? 'application/cbor',
        data: init.data,
        encryption: { enabled: false },
        compression: { enabled: false },
      },
      metadata: {
        priority: init.priority ?? MessagePriority.NORMAL,
        ttl: init.ttl ?? core.cfg.defaultTtlSeconds,
        routing_hints: init.routingHints ?? [],
        trust_requirements: init.trustRequirements ?? NO_TRUST,
        ...(init.correlationId === undefined ? {} : { correlation_id: init.correlationId }),
      },
      timestamp: Math.floor(core.clock.now()),
    }
    let msg = await signMessage(unsigned, core.signer)
    // Ids are content addresses: the same content built twice in one millisecond would get the same
    // id (and the second copy would be dropped as a replay). Make such a message unique with a
    // `nonce` routing hint (only on collision, so ordinary messages carry nothing extra).
    if (unsigned.timestamp !== this.idMs) {
      this.idMs = unsigned.timestamp
      this.idsThisMs.clear()
    }
    while (this.idsThisMs.has(msg.metadata.message_id)) {
      const hints = unsigned.metadata.routing_hints.filter((h) => h.kind !== 'nonce')
      hints.push({ kind: 'nonce', value: (++this.nonce).toString(36) })
      unsigned.metadata.routing_hints = hints
      msg = await signMessage(unsigned, core.signer)
    }
    this.idsThisMs.add(msg.metadata.message_id)
    return msg
  }

  /** The signed response to `request` (correlation id, target = the request's source). */
  createResponse(request: KLPMessage, data: KLPValue, options: { type?: KLPMessageType; priority?: MessagePriority } = {}): Promise<KLPMessage> {
    return this.build({
      type: options.type ?? responseTypeFor(request.type),
      target: request.source,
      sourcePath: request.target.path,
      data,
      priority: options.priority ?? request.metadata.priority,
      correlationId: request.metadata.message_id,
    })
  }
}
