/**
 * The DHT service: Kademlia over KLP PEER_DISCOVERY messages (path `/dht`), signed node and
 * provider records, a DiscoverySource (method `dht`) for the peer registry.
 */
export { dhtService } from './service.js'
export type { DhtService, DhtInit, DhtComponents, DhtBootstrapResult, DhtProvider, DhtStats } from './service.js'
export { createProviderRecord, createProviderVerifier, providerKey, checkProviderName, PROVIDER_TARGET, DEFAULT_PROVIDER_TTL_SECONDS, DEFAULT_MAX_PROVIDER_TTL_SECONDS, DEFAULT_MAX_PROVIDER_RECORD_BYTES, MAX_PROVIDER_NAME_LENGTH } from './provider.js'
export type { SignedProviderRecord, ProviderVerifier, ProviderVerifierInit, CreateProviderRecordOptions } from './provider.js'
export { parseDhtPayload, parseDhtRequest, parseDhtResponse, dhtPayloadValue, DHT_PATH, DEFAULT_DHT_WIRE_LIMITS, DHT_REQUEST_ACTIONS, DHT_RESPONSE_ACTIONS } from './wire.js'
export type { DhtPayload, DhtRequestPayload, DhtResponsePayload, DhtWireLimits, ProviderEntry } from './wire.js'
export { DhtRejectReason } from './serve.js'
export { DEFAULT_CONTACT_PREFIX } from './store.js'
export * from './errors.js'
