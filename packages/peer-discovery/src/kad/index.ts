/**
 * The Kademlia core (sans-I/O): ids bound to DIDs, k-buckets with replacement caches and
 * diversity limits, iterative lookups over disjoint paths, a bounded provider store, and KadNode.
 */
export * from './types.js'
export { kadIdOf, providerKeyOf, isKadId, assertKadId, idKey, idEquals, xorDistance, compareDistance, commonPrefixLength, randomIdInBucket, contactIdMatchesDid, shortId } from './id.js'
export { defaultGroupOf } from './group.js'
export { RoutingTable } from './routing-table.js'
export type { RoutingTableInit, TableEntry, AddResult as TableAddResult, AddStatus as TableAddStatus, RejectReason as TableRejectReason } from './routing-table.js'
export { Lookup, runLookup } from './lookup.js'
export type { LookupInit, LookupQuery, LookupResult, RunLookupOptions, RunLookupResult } from './lookup.js'
export { ProviderStore } from './providers.js'
export type { ProviderStoreInit, PutStatus as ProviderPutStatus } from './providers.js'
export { KadNode, KAD_DEFAULTS } from './node.js'
export type { KadNodeInit, KadNodeStats, LookupOptions as KadLookupOptions, KadLookupResult, FindProvidersResult } from './node.js'
export { InvalidKadIdError, KadRequestTimeoutError, KadNoContactsError, InvalidProviderRecordError, UnexpectedKadResponseError } from './errors.js'
