/**
 * The Kademlia core's data model (sans-I/O): ids, contacts, the RPCs, and the options. The core
 * (routing table, lookups, provider store) never does I/O: a driver sends its requests — the
 * simulator in sim/, or the DHT service over KLP PEER_DISCOVERY messages — and feeds it the answers
 * and the time (an injected Clock).
 */

/** A 256-bit node or key id: SHA-256 of the DID (UTF-8), or of a provider key's name. */
export type KadId = Uint8Array

/** Length of a KadId in bytes. */
export const KAD_ID_BYTES = 32

/** A node as the core knows it. */
export interface Contact {
  /** sha256(did): the node cannot choose it freely (it would have to choose its key). */
  readonly id: KadId
  readonly did: string
  /** Where to reach it (transport addresses from its signed record). The core only carries them. */
  readonly addrs: readonly string[]
  /** The node's signed record bytes, when known: passed on as-is in answers, verified by every receiver. */
  readonly record?: Uint8Array
}

/** A provider record: `provider` offers `key` (a service type or capability) until `expiresAt`. */
export interface ProviderRecord {
  /** sha256 of the provider key's name, e.g. `capability:vector_storage`, `agent:summarizer`. */
  readonly key: KadId
  readonly provider: Contact
  /** ms since the epoch. */
  readonly expiresAt: number
  /** The signed provider record bytes (signed by the provider itself), when known. */
  readonly signed?: Uint8Array
}

/** A Kademlia request of the core. */
export type KadRequest =
  | { type: 'ping' }
  | { type: 'find_node'; target: KadId }
  | { type: 'get_providers'; key: KadId }
  | { type: 'add_provider'; record: ProviderRecord }

/** A Kademlia answer of the core. */
export type KadResponse =
  | { type: 'pong' }
  | { type: 'nodes'; closer: Contact[] }
  | { type: 'providers'; providers: ProviderRecord[]; closer: Contact[] }
  | { type: 'ok' }

/** Sends one request to a contact and resolves with its answer; rejects on timeout or failure. */
export type KadRpc = (to: Contact, request: KadRequest, options: { signal: AbortSignal }) => Promise<KadResponse>

/** Kademlia options. */
export interface KadInit {
  /** Bucket size and lookup result size. Default 20. */
  k?: number
  /** Parallel requests per lookup path. Default 3. */
  alpha?: number
  /** Disjoint lookup paths (S/Kademlia); 1 is plain Kademlia. Default 4 (d = 4 of the S/Kademlia paper's evaluation; disjoint paths hold when some nodes lie). */
  disjointPaths?: number
  /** Entries kept per bucket's replacement cache. Default 20. */
  replacementCacheSize?: number
  /** A bucket not touched for this long is refreshed (a lookup of a random id in it). Default 1 hour. */
  refreshIntervalMs?: number
  /** Failed requests after which a contact is dropped (replaced from the cache). Default 2. */
  maxFailures?: number
  /** Per-request timeout of lookups, ms. Default 2,000. */
  requestTimeoutMs?: number
  /**
   * Diversity: at most this many contacts of one group per bucket (and 4x that in the whole table),
   * so one operator (one network prefix) cannot fill the table. Default 2.
   */
  maxPerGroupPerBucket?: number
  /** The group of a contact (default: the /24 (IPv4) or /48 (IPv6) prefix of its first tcp address, else its first address's host). */
  groupOf?: (contact: Contact) => string
  /** Provider records kept in all / per key. Default 65,536 / 64. */
  maxProviders?: number
  maxProvidersPerKey?: number
  /** Lifetime of a provider record; providers republish before it ends. Default 24 hours; republish every 12 hours. */
  providerTtlMs?: number
}
