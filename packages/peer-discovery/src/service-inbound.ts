/**
 * The discovery service's inbound side: the PEER_DISCOVERY handler that merges announced records and
 * answers `get_peers` with this node's record and the best matching records of the registry.
 */
import { DiscoveryMethod, ProcessingStatus } from '@kos-mesh/interface'
import type { KLPMessage, MessageHandler, ProcessingResult } from '@kos-mesh/interface'
import { discoveryPayloadValue, knownKeyOf, knownSet, parseDiscoveryPayload } from './protocol.js'
import { errName } from './service-util.js'
import type { DiscoveryContext } from './service-util.js'
import { hasCapabilities } from './validate.js'

/** The PEER_DISCOVERY message handler of the service sharing `discovery`. */
export function createDiscoveryHandler(discovery: DiscoveryContext): MessageHandler {
  return async (msg: KLPMessage, ctx): Promise<ProcessingResult> => {
    let payload
    try {
      payload = parseDiscoveryPayload(msg.payload.data, discovery.limits)
    } catch (err) {
      discovery.counters.invalidMessages++
      discovery.log.debug('invalid discovery message', { from: ctx.fromPeer, err: errName(err) })
      return { status: ProcessingStatus.REJECTED, reason: 'invalid_discovery_message' }
    }
    discovery.registry.touch(ctx.signerDid)
    // A signal of our own per message: the router's signal is shared by every handler in flight.
    const signal = ctx.signal === undefined ? undefined : AbortSignal.any([ctx.signal])
    switch (payload.action) {
      case 'announce': {
        await discovery.registry.merge([payload.record], { source: ctx.fromPeer, method: DiscoveryMethod.DIRECT, ...(signal ? { signal } : {}) })
        return { status: ProcessingStatus.PROCESSED }
      }
      case 'get_peers': {
        if (payload.record !== undefined) {
          await discovery.registry.merge([payload.record], { source: ctx.fromPeer, method: DiscoveryMethod.DIRECT, ...(signal ? { signal } : {}) })
        }
        const max = Math.min(payload.max ?? discovery.limits.maxRecordsPerMessage, discovery.limits.maxRecordsPerMessage)
        const records: Uint8Array[] = []
        let bytes = 0
        const add = (b: Uint8Array): boolean => {
          if (records.length >= max || bytes + b.length > discovery.limits.maxResponseBytes) return false
          records.push(b)
          bytes += b.length
          return true
        }
        const required = payload.capabilities ?? []
        const known = payload.known === undefined ? undefined : knownSet(payload.known)
        const wanted = (b: Uint8Array): boolean => known?.has(knownKeyOf(b)) !== true
        const own = discovery.localRecord()
        if (own !== undefined && hasCapabilities(own.node.capabilities, required) && wanted(own.bytes)) add(own.bytes)
        const exclude = new Set([ctx.signerDid, ctx.fromPeer])
        for (const b of discovery.registry.recordBytes({ requiredCapabilities: required, exclude })) {
          if (wanted(b) && !add(b)) break
        }
        discovery.counters.requestsServed++
        const response = await discovery.router.createResponse(msg, discoveryPayloadValue({ action: 'peers', records }))
        return { status: ProcessingStatus.PROCESSED, response }
      }
      case 'peers':
        // A late response (its request timed out): the records are still worth merging.
        await discovery.registry.merge(payload.records, { source: ctx.fromPeer, method: DiscoveryMethod.DIRECT, ...(signal ? { signal } : {}) })
        return { status: ProcessingStatus.PROCESSED }
    }
  }
}
